"""Locate the Synthea samples in ../shared (next to the repository; CI has it there too)."""
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SYNTHEA = SHARED / "realdata" / "synthea"
SETS = {
    "ca59": SYNTHEA / "ca59_with_fhir" / "csv",
    "ma27": SYNTHEA / "dbt_seeds_ma27",
    "ma107": SYNTHEA / "ma107_cancer_screening" / "csv",
    "ma555": SYNTHEA / "ma555_partial" / "csv",
}
FHIR_SUBSET = SYNTHEA / "ca59_with_fhir" / "fhir_subset"


def need(path: Path) -> Path:
    """``path`` if the shared samples are there, else skip (a fresh clone has no ../shared)."""
    if not path.exists():
        pytest.skip(f"shared Synthea samples not found at {path} (expected ../shared/realdata/synthea next to the repo)")
    return path
