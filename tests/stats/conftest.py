"""Locate the shared reference figures (the sibling folder ``../shared`` of the repository)."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
WHO = SHARED / "reference" / "who_healthequal"
PHE = SHARED / "reference" / "phe_indicator_methods" / "xlsx_as_csv"


def _require(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip("../shared not present (fresh clone): reference figures unavailable")
    return folder


@pytest.fixture
def who_dir() -> Path:
    """WHO healthequal test inputs and expected values."""
    return _require(WHO)


@pytest.fixture
def phe_dir() -> Path:
    """UKHSA PHEindicatormethods test workbooks, one CSV per sheet."""
    return _require(PHE)
