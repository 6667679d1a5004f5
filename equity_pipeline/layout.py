"""Where a run writes what, under ``--out``. Stable paths: documented in README and docs/outputs.md.

    public/       suppressed aggregates only (rates.parquet, rates.csv)
    restricted/   member-level data, owner-only permissions (tables/, quarantine/, measures/, ...)
    validation/   per-table validation results: counts per rule, never values
    report/       index.html for people
    manifest.json run id, inputs with hashes, config, versions, reconciled counts
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from equity_pipeline.io import ensure_restricted_dir


@dataclass(frozen=True)
class OutputLayout:
    root: Path

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def restricted(self) -> Path:
        return self.root / "restricted"

    @property
    def validation(self) -> Path:
        return self.root / "validation"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def table(self, name: str) -> Path:
        return self.restricted / "tables" / f"{name}.parquet"

    def quarantine(self, name: str) -> Path:
        return self.restricted / "quarantine" / f"{name}.parquet"

    def table_result(self, name: str) -> Path:
        return self.validation / f"{name}.json"

    @property
    def final_medical_claims(self) -> Path:
        return self.restricted / "claims" / "medical_claims_final.parquet"

    @property
    def events(self) -> Path:
        return self.restricted / "events.parquet"

    @property
    def adjudication(self) -> Path:
        return self.validation / "claims_adjudication.json"

    def member_results(self, measure_id: str) -> Path:
        return self.restricted / "measures" / f"{measure_id}.parquet"

    def measure_counts(self, measure_id: str) -> Path:
        return self.root / "counts" / f"{measure_id}.json"

    @property
    def member_attributes(self) -> Path:
        return self.restricted / "member_attributes.parquet"

    @property
    def stratified_counts(self) -> Path:
        return self.restricted / "stratified_counts.parquet"

    @property
    def rates(self) -> Path:
        return self.public / "rates.parquet"

    @property
    def rates_csv(self) -> Path:
        return self.public / "rates.csv"

    def prepare(self) -> "OutputLayout":
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_restricted_dir(self.restricted)
        for p in (self.public, self.validation, self.report, self.root / "counts"):
            p.mkdir(parents=True, exist_ok=True)
        return self
