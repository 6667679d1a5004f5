"""Where a run writes what, under ``--out``. Stable paths: documented in README and docs/outputs.md.

    public/       suppressed aggregates only (rates.parquet, rates.csv)
    restricted/   member-level data, owner-only permissions (tables/, quarantine/, measures/, ...)
    validation/   per-table validation results: counts per rule, never values
    report/       index.html for people, equity_report.xlsx (workbook of the public tables)
    audit/        the auditor's pack: validation summary, reconciliation, suppression log, lineage
    manifest.json run id, inputs with hashes, config, versions, reconciled counts

Partitioned runs (``equity_pipeline/partitioning.py``) add ``partitions/period=<p>/state=<s>/`` and
``periods/<p>/``, each an OutputLayout of its own with the same paths inside.
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
    def claim_adjudication(self) -> Path:
        """The medical claim lines adjudication drops (superseded or voided), by input row number
        ``_row`` (``measures.extract.ADJUDICATION_SCHEMA``); the final lines are the used lines
        without them: ``pipeline.final_medical_claims``."""
        return self.restricted / "claims" / "medical_claims_adjudication.parquet"

    @property
    def pharmacy_adjudication(self) -> Path:
        """The same for pharmacy claims (``pipeline.final_pharmacy_claims``)."""
        return self.restricted / "claims" / "pharmacy_claims_adjudication.parquet"

    @property
    def events(self) -> Path:
        """Coded events; ``member_key`` for the member, the position of its member id in :attr:`event_members`."""
        return self.restricted / "events.parquet"

    @property
    def event_members(self) -> Path:
        """The member ids of the events' member keys (``member_id``, sorted: key = row number)."""
        return self.restricted / "event_members.parquet"

    @property
    def adjudication(self) -> Path:
        return self.validation / "claims_adjudication.json"

    @property
    def completeness_thresholds(self) -> Path:
        """Configured REL completeness levels evaluated per reporting unit (counts and shares only)."""
        return self.validation / "completeness_thresholds.json"

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
    def strata_identities(self) -> Path:
        """Cross-stratifier additive identities found in the data (margins for suppression)."""
        return self.restricted / "strata_identities.parquet"

    def suppression_detail(self, table: str) -> Path:
        """Restricted suppression log of a public table (``rates``, ``completeness``, the plan tables
        ``state_metrics`` and ``hospital_metrics``): the key and the kind of each suppressed cell
        (primary or complementary; for the plan tables also e.g. ``suppressed in public/rates``), which
        the public table does not tell; the audit pack counts those of rates and completeness per measure."""
        return self.restricted / "suppression" / f"{table}.parquet"

    @property
    def disparities(self) -> Path:
        """Each published stratum vs its reference: difference, ratio, CIs, p-values, flags."""
        return self.public / "disparities.parquet"

    @property
    def disparity_summary(self) -> Path:
        """Summary disparity measures per measure x unit x stratifier over published strata."""
        return self.public / "disparity_summary.parquet"

    @property
    def rates(self) -> Path:
        return self.public / "rates.parquet"

    @property
    def rates_csv(self) -> Path:
        return self.public / "rates.csv"

    @property
    def completeness(self) -> Path:
        """REL data completeness by reporting unit (aggregate, suppressed)."""
        return self.public / "completeness.parquet"

    @property
    def completeness_csv(self) -> Path:
        return self.public / "completeness.csv"

    @property
    def bisg_probabilities(self) -> Path:
        """Member-level BISG race/ethnicity probabilities (restricted)."""
        return self.restricted / "bisg_probabilities.parquet"

    @property
    def rates_imputed_race(self) -> Path:
        """Probability-weighted rates by BISG-imputed race/ethnicity (separate from self-reported)."""
        return self.public / "rates_imputed_race.parquet"

    @property
    def race_concordance(self) -> Path:
        """Self-reported x imputed (most probable) race/ethnicity among members with both, suppressed."""
        return self.public / "race_concordance.parquet"

    @property
    def standardized_rates(self) -> Path:
        """Crude, age/sex directly standardised rates and O/E ratios, with crude and adjusted gaps."""
        return self.public / "standardized_rates.parquet"

    @property
    def standardization_models(self) -> Path:
        """Standard population and the expected-count models used (aggregates only)."""
        return self.root / "counts" / "standardization.json"

    @property
    def equity_plan(self) -> Path:
        """Health-equity plan tables (aggregate, suppressed): see docs/equity_plans.md."""
        return self.public / "equity_plan"

    @property
    def state_metrics(self) -> Path:
        """Statewide (AHEAD-style) equity-plan metrics by state, region, payer and group."""
        return self.equity_plan / "state_metrics.parquet"

    @property
    def hospital_metrics(self) -> Path:
        """Hospital equity-plan metrics per facility (CCN)."""
        return self.equity_plan / "hospital_metrics.parquet"

    @property
    def state_plan_report(self) -> Path:
        """The equity-plan tables as a print-ready filing document (docs/reports.md)."""
        return self.report / "state_plan.html"

    @property
    def workbook(self) -> Path:
        return self.report / "equity_report.xlsx"

    @property
    def audit(self) -> Path:
        """The auditor's pack: counts, versions and hashes only (see docs/reports.md)."""
        return self.root / "audit"

    def prepare(self) -> "OutputLayout":
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_restricted_dir(self.restricted)
        for p in (self.public, self.validation, self.report, self.root / "counts"):
            p.mkdir(parents=True, exist_ok=True)
        return self
