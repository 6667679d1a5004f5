"""Generated datasets shared by the generator tests (built once per session, a few seconds each)."""
from __future__ import annotations

from pathlib import Path

import pytest

from equity_pipeline.generate import generate

MESSY = dict(members=12_000, seed=11, messy_share=0.02)
CLEAN = dict(members=4_000, seed=5, messy_share=0.0, fmt="csv")


@pytest.fixture(scope="session")
def messy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated_messy")
    generate(MESSY["members"], MESSY["seed"], out, messy_share=MESSY["messy_share"])
    return out


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated_clean_csv")
    generate(CLEAN["members"], CLEAN["seed"], out, messy_share=CLEAN["messy_share"], fmt=CLEAN["fmt"])
    return out
