"""The collection standards as data: Great Expectations suites in ``expectations/``.

Each suite is one canonical input table. Its ``meta.columns`` block *is* the input contract
(column, type, required, PHI flag, description) and its ``expectations`` are the row rules. Nothing
else in the code base re-types either: the reader, the fast evaluator, the GX runner and the docs
all read these files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "expectations"

#: Load order matters: members first (other tables are checked against known members).
TABLES: tuple[str, ...] = (
    "members", "enrollment", "medical_claims", "pharmacy_claims",
    "sdoh_screenings", "clinical_observations", "providers",
)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # string | date | integer | decimal | boolean
    required: bool
    phi: bool
    description: str
    allowed: tuple[str, ...] | None = None
    multi_valued: bool = False
    normalize: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    description: str
    key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    expectations: tuple[dict, ...]
    path: Path

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"column {name!r} is not in the {self.name} contract")


def expectations_dir() -> Path:
    """Where the suites live: the repo's ``expectations/`` (installed editable) or packaged copy."""
    if EXPECTATIONS_DIR.is_dir():
        return EXPECTATIONS_DIR
    raise FileNotFoundError(f"expectations/ not found next to the package ({EXPECTATIONS_DIR})")


@lru_cache(maxsize=None)
def load_suite(table: str) -> Suite:
    path = expectations_dir() / f"{table}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    meta = raw["meta"]
    columns = tuple(
        ColumnSpec(
            name=name, type=c["type"], required=bool(c["required"]), phi=bool(c.get("phi", False)),
            description=c["description"], allowed=tuple(c["allowed"]) if c.get("allowed") else None,
            multi_valued=bool(c.get("multi_valued", False)), normalize=c.get("normalize"),
        )
        for name, c in meta["columns"].items()
    )
    return Suite(
        name=raw["name"], version=meta["suite_version"], description=meta["description"],
        key=tuple(meta["key"]), columns=columns, expectations=tuple(raw["expectations"]), path=path,
    )


def all_suites() -> list[Suite]:
    return [load_suite(t) for t in TABLES]
