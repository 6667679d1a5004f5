"""Shared fixtures: one GX context per test session (``import great_expectations`` costs ~4-5 s)."""
from __future__ import annotations

from pathlib import Path

import pytest

#: ../shared next to the repo (CI has it there too)
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REALDATA = SHARED / "realdata"


@pytest.fixture(scope="session")
def gx_ctx():
    from equity_pipeline.validation.gx_runner import gx_context

    return gx_context()


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"shared real data not found at {REALDATA} (expected ../shared/realdata next to the repo)")
    return REALDATA
