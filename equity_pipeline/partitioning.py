"""Partitioned runs: measurement period x state slices, and period roll-ups from slice aggregates.

A *partition* is one measurement period (a calendar year, ``"2024"``, or a rolling 12 months ending a
quarter or month, ``"2025-Q1"`` / ``"2025-03"``: :func:`check_period`) and one *state key*: the USPS
code of the state of a member's county (first two digits of ``members.county_fips``, when it is five
digits and names a state), or :data:`UNKNOWN_STATE` for members without one. Every input row lands
in exactly one state slice, so the slices add up to the whole input:

* members: the state of the member id's first row (all rows of a repeated id go to one slice, so the
  uniqueness rule judges them together, as in a whole run); rows without an id: ``unknown``;
* enrollment, claims, screenings, observations: the slice of their member id; ids that are not in the
  members file (orphans, quarantined by validation) and rows without an id: ``unknown``;
* providers (reference data, not member data): whole, in every slice.

:func:`run_partition` validates one slice and runs the library's per-slice steps (the same
``pipeline`` functions as the unpartitioned job: ingest, events, measures, member attributes,
stratified counts) into ``OUT/partitions/period=<p>/state=<s>/``. Beside the member-level data it
writes three *aggregates* (restricted: unsuppressed) that are all a roll-up reads:

* ``stratified_counts.parquet``: the additive sums per measure x unit x stratifier x stratum;
* ``partition/strata_cells.parquet``: denominator members counted per measure x sub-measure x state
  x combination of stratifier labels (what the cross-stratifier suppression identities are found in);
* ``partition/completeness_cells.parquet``: members counted per state x REL completeness categories;
* ``partition/member_cells.parquet``: denominator rows of the measures with standardised rates counted
  per age x values x stratifier labels x capped comorbidity count, with a readmission measure's
  index stays as risk-model cells (:func:`member_cells`);
* ``partition/imputed_counts.parquet`` and ``partition/concordance_cells.parquet`` (BISG track on):
  probability-weighted sums per stratum and members per self-reported x imputed category;
* ``partition/plan_state_metrics_{counts,labels}.parquet`` and ``plan_hospital_metrics_*`` (equity-plan
  rules in effect): the plan tables' cell counts per unit (state, region, facility) x payer x stratum
  before shares, rates, locks and suppression, and members per label combination
  (:func:`plan_counts`);
* ``partition/summary.json``: input hashes and slice row counts, validation counts per table and
  rule, and the per-measure member reconciliation (counts only).

:func:`rollup_period` combines the partitions of one period (all state keys) into
``OUT/periods/<p>/``: public rates, disparities, disparity summary, REL completeness, standardised
rates with O/E (the readmission risk model refitted on every partition's stay cells), imputed-race
rates and concordance, and the equity-plan tables (state and hospital), equal to those of an
unpartitioned run of that period on the same input (docs/operations.md says which outputs and why),
with the restricted suppression logs and the combined counts; plus the period's report, workbook,
state plan document, FHIR MeasureReports, manifest and audit pack written from them. It never reads
input rows or member-level results.

No Dagster imports here: ``assets/partitions.py`` wraps these functions.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline.config import ConfigError, ProgramConfig
from equity_pipeline.errors import StructuralError
from equity_pipeline.io import find_input, scan_text, sha256_file, write_json_atomic, write_parquet_atomic
from equity_pipeline.layout import OutputLayout
from equity_pipeline.periods import MeasurementPeriod, period_from_key
from equity_pipeline.publish import publish_checked, remove_withheld, withheld_metadata, withheld_outputs
from equity_pipeline.suites import TABLES

UNKNOWN_STATE = "unknown"
#: tables whose rows belong to a member (sliced by state); the others (providers) go whole to every slice
MEMBER_TABLES = ("members", "enrollment", "medical_claims", "pharmacy_claims", "sdoh_screenings", "clinical_observations")
PARTITIONS_DIR = "partitions"
PERIODS_DIR = "periods"
_STATE_KEY = "__state_key"


# ------------------------------------------------------------------------------------ keys and paths
def check_period(period: str) -> MeasurementPeriod:
    """The measurement period of a period key: ``"2024"`` (calendar year), ``"2025-Q1"`` or
    ``"2025-03"`` (the rolling 12 months ending 2025-03-31); see ``periods.period_from_key``."""
    try:
        return period_from_key(period)
    except ValueError:
        raise ConfigError(f"period {period!r}: partition keys are YYYY (a measurement year), YYYY-Qn or YYYY-MM "
                          "(the rolling 12 months ending that quarter or month; docs/operations.md)") from None


def period_config(config: ProgramConfig, period: str) -> ProgramConfig:
    """``config`` with the measurement period of the key ``period`` (checked as config.py does)."""
    p = check_period(period)
    if not 2000 <= p.year <= config.run_date.year:
        raise ConfigError(f"period {period}: the period must end in a year between 2000 and the run date's year ({config.run_date.year})")
    return replace(config, measurement_year=p.year, period_end=None if p.is_calendar_year else p.end)


def partition_layout(out: Path, period: str, state: str) -> OutputLayout:
    """``OUT/partitions/period=<p>/state=<s>/``: one partition's outputs (an OutputLayout of its own)."""
    return OutputLayout(Path(out) / PARTITIONS_DIR / f"period={period}" / f"state={state}")


def period_layout(out: Path, period: str) -> OutputLayout:
    """``OUT/periods/<p>/``: the roll-up of every state partition of one period."""
    return OutputLayout(Path(out) / PERIODS_DIR / str(period))


def _slice_dir(layout: OutputLayout) -> Path:
    return layout.restricted / "input"


def _partition_dir(layout: OutputLayout) -> Path:
    return layout.restricted / "partition"


def summary_path(layout: OutputLayout) -> Path:
    return _partition_dir(layout) / "summary.json"


def strata_cells_path(layout: OutputLayout) -> Path:
    return _partition_dir(layout) / "strata_cells.parquet"


def completeness_cells_path(layout: OutputLayout) -> Path:
    return _partition_dir(layout) / "completeness_cells.parquet"


def member_cells_path(layout: OutputLayout) -> Path:
    return _partition_dir(layout) / "member_cells.parquet"


def imputed_counts_path(layout: OutputLayout) -> Path:
    return _partition_dir(layout) / "imputed_counts.parquet"


def concordance_cells_path(layout: OutputLayout) -> Path:
    return _partition_dir(layout) / "concordance_cells.parquet"


#: the equity-plan tables rolled up from partition counts (``equity_plans.state`` / ``.hospital``)
PLAN_TABLES = ("state_metrics", "hospital_metrics")


def plan_counts_path(layout: OutputLayout, table: str) -> Path:
    return _partition_dir(layout) / f"plan_{table}_counts.parquet"


def plan_labels_path(layout: OutputLayout, table: str) -> Path:
    return _partition_dir(layout) / f"plan_{table}_labels.parquet"


def read_summary(layout: OutputLayout) -> dict[str, Any]:
    """A partition's summary.json (counts and hashes only)."""
    return json.loads(summary_path(layout).read_text(encoding="utf-8"))


def measure_reconciles(counts: dict[str, Any]) -> bool:
    """members in = not eligible + excluded + denominator, and numerator <= denominator."""
    return (counts["members_in"] == sum(counts["not_eligible"].values()) + sum(counts["excluded"].values()) + counts["denominator"]
            and counts["numerator"] <= counts["denominator"])


# ------------------------------------------------------------------------------------ state slices
def _scan(path: Path) -> pl.LazyFrame:
    return scan_text(path)


def _collect(lf: pl.LazyFrame, name: str) -> pl.DataFrame:
    try:
        return lf.collect()
    except pl.exceptions.ComputeError:
        # polars' message can quote the offending line (member data): name the fault, never the text
        raise StructuralError(name, "cannot be parsed (malformed rows) while slicing the input by state") from None


def member_state_keys(input_dir: Path) -> pl.DataFrame:
    """``member_id`` (as validation normalises it: stripped) -> ``state`` key, one row per distinct id."""
    from equity_pipeline.standards.geography import state_postal_by_fips

    path = find_input(Path(input_dir), "members")
    if path is None:
        raise StructuralError("members.csv|.parquet", "required input table members not found in the input folder")
    lf = _scan(path)
    names = lf.collect_schema().names()
    if "member_id" not in names:
        raise StructuralError(path.name, "required column missing for table members", column="member_id")
    fips = pl.col("county_fips").str.strip_chars() if "county_fips" in names else pl.lit(None, dtype=pl.String)
    states = state_postal_by_fips()
    key = (pl.when(fips.str.contains(r"^\d{5}$").fill_null(False))
           .then(fips.str.slice(0, 2).replace_strict(states, default=UNKNOWN_STATE, return_dtype=pl.String))
           .otherwise(pl.lit(UNKNOWN_STATE)))
    frame = _collect(lf.select("_row", member_id=pl.col("member_id").str.strip_chars(), state=key), path.name)
    return (frame.filter(pl.col("member_id").is_not_null() & (pl.col("member_id") != ""))
            .sort("_row").unique("member_id", keep="first", maintain_order=True).select("member_id", "state"))


def state_keys(input_dir: Path) -> list[str]:
    """Every state key of the input's members, sorted, and always :data:`UNKNOWN_STATE` (orphan rows and
    members without a state go there, so the partitions add up to the whole input)."""
    keys = set(member_state_keys(input_dir)["state"].to_list())
    return sorted(keys - {UNKNOWN_STATE}) + [UNKNOWN_STATE]


def slice_input(input_dir: Path, dest: Path, state: str) -> dict[str, dict[str, Any]]:
    """Write the rows of state key ``state`` of every input table to ``dest/<table>.parquet`` (all
    columns as text, as the input reader sees them; providers copied whole). Returns per table
    ``{file, sha256, rows_total, rows}`` (counts and hashes only)."""
    input_dir, dest = Path(input_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    keys = member_state_keys(input_dir)
    out: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        path = find_input(input_dir, table)
        for old in dest.glob(f"{table}.*"):  # a slice left by an earlier run of another format
            old.unlink()
        if path is None:
            continue
        info: dict[str, Any] = {"file": path.name, "sha256": sha256_file(path)}
        if table not in MEMBER_TABLES:
            shutil.copyfile(path, dest / path.name)
            rows = _collect(_scan(path).select(pl.len()), path.name).item()
            out[table] = {**info, "rows_total": rows, "rows": rows, "sliced": False}
            continue
        lf = _scan(path)
        names = lf.collect_schema().names()
        ids = pl.col("member_id").str.strip_chars() if "member_id" in names else pl.lit(None, dtype=pl.String)
        keyed = (lf.with_columns(ids.alias("__member_key"))
                 .join(keys.lazy().rename({"member_id": "__member_key", "state": _STATE_KEY}), on="__member_key", how="left")
                 .with_columns(pl.col(_STATE_KEY).fill_null(UNKNOWN_STATE)))
        # only this state's rows are held in memory; input order kept (the join does not keep it)
        part = _collect(keyed.filter(pl.col(_STATE_KEY) == state).sort("_row").drop("_row", "__member_key", _STATE_KEY), path.name)
        write_parquet_atomic(part, dest / f"{table}.parquet")
        total = _collect(lf.select(pl.len()), path.name).item()
        out[table] = {**info, "rows_total": total, "rows": part.height, "sliced": True}
    return out


# ------------------------------------------------------------------------------------ one partition
def _used_attribute_columns(config: ProgramConfig) -> list[str]:
    from equity_pipeline.stratify import INTERSECTION_SEPARATOR, STRATIFIERS, all_stratifiers

    names = all_stratifiers(config.stratifiers, config.intersections)
    return sorted({STRATIFIERS[part] for s in names for part in s.split(INTERSECTION_SEPARATOR)})


def strata_cells(results: pl.DataFrame, attributes: pl.DataFrame, config: ProgramConfig) -> pl.DataFrame:
    """Denominator members counted per measure x sub-measure x period x state x combination of the
    configured stratifiers' labels (``n``): enough to find the cross-stratifier identities
    (``stratify.strata_identities``) of any union of partitions. Aggregate, but fine-grained: restricted."""
    from equity_pipeline.standards.race_ethnicity import UNKNOWN

    used = _used_attribute_columns(config)
    base = (results.filter(pl.col("in_denominator")).select("member_id", "measure_id", "submeasure", "period")
            .join(attributes.select("member_id", "state", *used), on="member_id", how="left")
            .with_columns(pl.col(c).fill_null(UNKNOWN) for c in ("state", *used)))
    keys = ["measure_id", "submeasure", "period", "state", *used]
    return base.group_by(keys).agg(n=pl.len()).sort(keys)


def _cell_attribute_columns(config: ProgramConfig) -> list[str]:
    """Attribute columns of the member cells: those of the counts' stratifiers, the standardisation
    stratifiers and sex (the standardised rates' age x sex cells)."""
    from equity_pipeline.stratify import INTERSECTION_SEPARATOR, STRATIFIERS, all_stratifiers

    names = (*all_stratifiers(config.stratifiers, config.intersections), *config.standardization_stratifiers, "sex")
    return sorted({STRATIFIERS[part] for s in names for part in s.split(INTERSECTION_SEPARATOR)})


#: a readmission measure's index stay as a risk-model cell ``age:male:comorbidities:readmitted`` (the
#: count capped as the model caps it); a member's stays sorted and joined by ``;``
_STAY_SEPARATOR, _STAY_FIELD_SEPARATOR = ";", ":"


def member_cells(results: pl.DataFrame, attributes: pl.DataFrame, comorbidities: pl.DataFrame,
                 risk_stays: dict[str, pl.DataFrame], config: ProgramConfig, specs: dict, comorbidity_cap: int) -> pl.DataFrame:
    """Denominator rows of the measures with standardised rates (``standardized.KINDS``) counted (``n``)
    per measure x sub-measure x period x age x numerator and denominator value x state x the
    :func:`_cell_attribute_columns` x comorbidity count (capped at ``comorbidity_cap``, as every model
    caps it) x ``stays``: for a readmission measure the member's index stays as risk-model cells (the
    member-level ``expected_value`` is left out: the roll-up refits the model on the stays of every
    partition). All that the standardised rates, the readmission risk model and its O/E read of member
    rows, with the members replaced by counts. Aggregate, but fine-grained (up to one row per member
    and measure): restricted."""
    from equity_pipeline.standardized import KINDS

    kinds = [m for m in config.measures if specs[m].kind in KINDS]
    used = _cell_attribute_columns(config)
    capped = pl.min_horizontal(pl.col("comorbidities"), pl.lit(comorbidity_cap)).cast(pl.Int64)
    base = (results.filter(pl.col("in_denominator") & pl.col("measure_id").is_in(kinds))
            .select("member_id", "measure_id", "measure_version", "submeasure", "period", "age", "numerator_value", "denominator_value")
            .join(attributes.select("member_id", "state", *used), on="member_id", how="left")
            .join(comorbidities.select("member_id", comorbidities=capped), on="member_id", how="left")
            .with_columns(pl.col("comorbidities").fill_null(0)))
    profiles = [pl.DataFrame(schema={"member_id": pl.String, "measure_id": pl.String, "stays": pl.String})]
    for m, stays in risk_stays.items():
        cap = int(specs[m].risk_model.get("comorbidity_cap", 4))
        stay = pl.concat_str([pl.col("age").cast(pl.String), (pl.col("sex") == "M").fill_null(False).cast(pl.Int8).cast(pl.String),
                              pl.min_horizontal(pl.col("comorbidities"), pl.lit(cap)).cast(pl.String),
                              pl.col("readmitted").cast(pl.Int8).cast(pl.String)], separator=_STAY_FIELD_SEPARATOR)
        profiles.append(stays.select("member_id", measure_id=pl.lit(m), _stay=stay)
                        .group_by("member_id", "measure_id").agg(stays=pl.col("_stay").sort().str.join(_STAY_SEPARATOR)))
    base = base.join(pl.concat(profiles, how="vertical_relaxed"), on=["member_id", "measure_id"], how="left")
    keys = [c for c in base.columns if c != "member_id"]
    return base.group_by(keys).agg(n=pl.len()).sort(keys)


def concordance_cells(members: pl.LazyFrame, attributes: pl.DataFrame, probabilities: pl.DataFrame) -> pl.DataFrame:
    """Members counted (``n``) per state x self-reported race/ethnicity (and its source) x most probable
    imputed category: what ``imputation.concordance`` counts, without the members."""
    from equity_pipeline.imputation import argmax_category

    src = members.select("member_id", "race_ethnicity_source").collect()
    both = (attributes.select("member_id", "state", "race_ethnicity").join(src, on="member_id", how="inner")
            .join(probabilities.with_columns(imputed=argmax_category(probabilities)).select("member_id", "imputed"), on="member_id", how="inner"))
    keys = ["state", "race_ethnicity", "race_ethnicity_source", "imputed"]
    return both.group_by(keys).agg(n=pl.len()).sort(keys)


def run_partition(input_dir: Path, out: Path, period: str, state: str, config: ProgramConfig) -> dict[str, Any]:
    """Slice the input to ``state``, validate it and run the per-slice steps for measurement year
    ``period``; write the partition's aggregates. Returns counts for logs and Dagster metadata."""
    from equity_pipeline import imputation, pipeline
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.report.completeness import member_categories
    from equity_pipeline.stratify import stratified_counts

    config = period_config(config, period)
    layout = partition_layout(out, period, state).prepare()
    slices = slice_input(input_dir, _slice_dir(layout), state)
    tables = {t: pipeline.ingest(t, _slice_dir(layout), layout, config) for t in TABLES}  # members first (TABLES order)
    pipeline.build_events(layout, config)
    measures, risk_stays = {}, {}
    for m in config.measures:
        stays: list[pl.DataFrame] = []  # a readmission measure's risk-model input per stay
        measures[m] = pipeline.evaluate_measure(m, layout, config, risk_stays=stays)
        if stays:
            risk_stays[m] = stays[0]
    pipeline.build_member_attributes(layout, config)
    results = pl.concat([pl.read_parquet(layout.member_results(m)) for m in config.measures], how="diagonal_relaxed")
    attrs = pl.read_parquet(layout.member_attributes)
    counts = stratified_counts(results, attrs, config.stratifiers, config.intersections)
    write_parquet_atomic(counts, layout.stratified_counts)
    write_parquet_atomic(strata_cells(results, attrs, config), strata_cells_path(layout))
    members = pl.scan_parquet(layout.table("members"))
    categories = member_categories(members, config.period)
    write_parquet_atomic(categories.group_by(categories.columns).agg(n=pl.len()).sort(categories.columns), completeness_cells_path(layout))
    # standardised rates and readmission O/E: member cells (comorbidities as pipeline.build_standardized_rates counts them)
    specs = load_specs()
    denominators = pipeline._all_member_results(layout, config)
    comorbidities, comorbidity_info = pipeline.standardization_comorbidities(layout, config, denominators.select("member_id").unique())
    write_parquet_atomic(member_cells(results, attrs, comorbidities, risk_stays, config, specs, comorbidity_info["comorbidity_cap"]),
                         member_cells_path(layout))
    # imputed race (BISG): probabilities are per member (surname, ZIP), so the weighted sums add up
    surnames = imputation.has_surnames(members)
    for path in (imputed_counts_path(layout), concordance_cells_path(layout)):
        path.unlink(missing_ok=True)
    if config.imputed_race is not False:
        probs = imputation.bisg_probabilities(members)
        write_parquet_atomic(imputation.imputed_counts(denominators, attrs, probs), imputed_counts_path(layout))
        write_parquet_atomic(concordance_cells(members, attrs, probs), concordance_cells_path(layout))
    plan_counts(layout, config, specs)
    summary = {
        "period": str(period), "state": state, "measurement_year": config.measurement_year,
        "config": config.to_dict(),
        "inputs": slices,
        "tables": {t: {"read": r["read"], "used": r["used"], "quarantined": r["quarantined"], "rules": r.get("rule_counts", {})}
                   for t, r in tables.items()},
        "measures": {m: {k: c[k] for k in ("measure_version", "period", "members_in", "not_eligible", "excluded", "denominator", "numerator")}
                     for m, c in measures.items()},
        "comorbidity": comorbidity_info, "has_surnames": surnames,
    }
    write_json_atomic(summary, summary_path(layout))
    member_rows = tables["members"]
    return {"period": str(period), "state": state, "members_read": member_rows["read"], "members_used": member_rows["used"],
            "rows_read": sum(r["read"] for r in tables.values()), "rows_quarantined": sum(r["quarantined"] for r in tables.values()),
            "count_cells": counts.height, "measures": len(measures)}


def plan_counts(layout: OutputLayout, config: ProgramConfig, specs: dict) -> dict[str, int]:
    """The equity-plan tables' step (a) on this slice (``state_counts``, ``hospital_counts``, the same
    functions the whole run's tables start with): cell counts and label cells, no ids. Nothing (and any
    earlier files removed) when no plan rules are in effect for the period."""
    from equity_pipeline import pipeline
    from equity_pipeline.equity_plans.hospital import hospital_counts
    from equity_pipeline.equity_plans.inputs import read_denominator_results, read_members
    from equity_pipeline.equity_plans.state import state_counts

    for table in PLAN_TABLES:
        plan_counts_path(layout, table).unlink(missing_ok=True)
        plan_labels_path(layout, table).unlink(missing_ok=True)
    rules = pipeline._plan_rules(config)
    if rules is None:
        return {}
    # the projected reads of the whole-run plan steps (equity_plans/inputs.py): no names or addresses
    members, attributes = read_members(layout.table("members")), pl.read_parquet(layout.member_attributes)
    results = {m: read_denominator_results(layout.member_results(m)) for m in sorted({rules.pqi_measure, "SDOH_SCREEN"})
               if m in config.measures}
    written = {}
    for table, (counts, labels) in (
            ("state_metrics", state_counts(attributes=attributes, members=members, results=results, specs=specs, rules=rules,
                                           year=config.period, regions=config.region_map)),
            ("hospital_metrics", hospital_counts(claims=pipeline.final_medical_claims(layout), members=members,
                                                 attributes=attributes, screenings=pl.scan_parquet(layout.table("sdoh_screenings")),
                                                 events=pipeline.read_events(layout), specs=specs, rules=rules, year=config.period))):
        write_parquet_atomic(counts, plan_counts_path(layout, table))
        write_parquet_atomic(labels, plan_labels_path(layout, table))
        written[table] = counts.height
    return written


# ------------------------------------------------------------------------------------ roll-up
class PartitionsIncomplete(RuntimeError):
    """The partitions of a period do not add up to one input (missing, stale or inconsistent)."""


def _as_json(obj: Any) -> Any:
    """``obj`` as it reads back from summary.json (dates as text, tuples as lists)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {k: _add(a.get(k, 0), b.get(k, 0)) for k in sorted({*a, *b})}
    return a + b


def combine_summaries(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Check that the partitions of one period cover one input exactly and add up their counts.

    Raises :class:`PartitionsIncomplete` when they were cut from different input files (hashes), with
    different configs, or when the slices' rows do not add up to the input files' rows."""
    if not summaries:
        raise PartitionsIncomplete("no partition to roll up")
    first = next(iter(summaries.values()))
    problems = []
    for state, s in summaries.items():
        if {t: i["sha256"] for t, i in s["inputs"].items()} != {t: i["sha256"] for t, i in first["inputs"].items()}:
            problems.append(f"partition {state} was cut from other input files (content hashes differ)")
        if s["config"] != first["config"]:
            problems.append(f"partition {state} ran with another program config")
    inputs = {}
    for table, info in first["inputs"].items():
        rows = sum(s["inputs"][table]["rows"] for s in summaries.values() if table in s["inputs"])
        expected = info["rows_total"] * (1 if info["sliced"] else len(summaries))
        if rows != expected:
            problems.append(f"{table}: the slices hold {rows} rows, the input file {info['rows_total']}")
        inputs[table] = {"file": info["file"], "sha256": info["sha256"], "rows": info["rows_total"],
                         "rows_per_partition": {st: s["inputs"][table]["rows"] for st, s in summaries.items()}}
    if problems:
        raise PartitionsIncomplete("; ".join(problems))
    tables: dict[str, Any] = {}
    for table in first["tables"]:
        if not first["inputs"].get(table, {"sliced": True})["sliced"]:
            tables[table] = first["tables"][table]  # reference data validated whole in every slice: counted once
            continue
        tables[table] = {"read": 0, "used": 0, "quarantined": 0, "rules": {}}
        for s in summaries.values():
            tables[table] = _add(tables[table], s["tables"][table])
    measures: dict[str, Any] = {}
    for m, c in first["measures"].items():
        total = {k: c[k] for k in ("measure_version", "period")}
        for k in ("members_in", "not_eligible", "excluded", "denominator", "numerator"):
            total[k] = c[k]
            for s in list(summaries.values())[1:]:
                total[k] = _add(total[k], s["measures"][m][k])
        total["reconciles"] = measure_reconciles(total)
        measures[m] = total
    return {"period": first["period"], "states": sorted(summaries), "config": first["config"],
            "inputs": inputs, "tables": tables, "measures": measures}


def partitions_digest(out: Path, period: str, states: list[str]) -> str | None:
    """A short hash of the summaries of the partitions ``states`` of ``period`` when all are there and
    add up to one input (:func:`combine_summaries`), else None: what a roll-up would combine (the
    roll-up sensor requests one roll-up per digest)."""
    import hashlib

    layouts = [partition_layout(out, period, s) for s in sorted(states)]
    if not layouts or not all(summary_path(lay).is_file() for lay in layouts):
        return None
    try:
        combine_summaries({lay.root.name: read_summary(lay) for lay in layouts})
    except (PartitionsIncomplete, KeyError, ValueError):
        return None
    digest = hashlib.sha256()
    for lay in layouts:
        digest.update(summary_path(lay).read_bytes())
    return digest.hexdigest()[:16]


def combine_counts(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Sum partitions' stratified counts per KEY (every kept sum is additive over disjoint members).

    ``expected`` (PCR's O/E, from a risk model fitted on each slice) is not additive across separately
    fitted models and is left out here: :func:`rollup_period` recomputes it from the model refitted
    on every partition's stays (:func:`pseudo_members`)."""
    from equity_pipeline.stratify import KEY, SUMS

    stacked = pl.concat([f.select(*KEY, *SUMS) for f in frames], how="vertical_relaxed")
    return stacked.group_by(KEY, maintain_order=True).agg(pl.col(s).sum() for s in SUMS).sort(KEY)


def _expand(cells: pl.DataFrame) -> pl.DataFrame:
    """One row per counted member of an aggregate with count column ``n`` (no ids: row numbers)."""
    keys = [c for c in cells.columns if c != "n"]
    return cells.select(pl.col(keys).repeat_by(pl.col("n").cast(pl.UInt32))).explode(keys)


def identities_from_cells(cells: pl.DataFrame, config: ProgramConfig) -> pl.DataFrame:
    """``stratify.strata_identities`` of the members behind summed :func:`strata_cells` (pseudo-members
    numbered by row; the identities depend on the label combinations and counts only)."""
    from equity_pipeline.stratify import strata_identities

    used = _used_attribute_columns(config)
    rows = _expand(cells).with_row_index("member_id")
    results = rows.select("member_id", "measure_id", "submeasure", "period", in_denominator=pl.lit(True),
                          numerator_value=pl.lit(0.0), denominator_value=pl.lit(0.0))
    attributes = rows.select("member_id", "state", *used)
    return strata_identities(results, attributes, config.stratifiers, config.intersections)


def _summed(paths: list[Path]) -> pl.DataFrame:
    """Partition aggregates with count column ``n`` stacked and summed per key, sorted."""
    cells = pl.concat([pl.read_parquet(p) for p in paths], how="vertical_relaxed")
    keys = [c for c in cells.columns if c != "n"]
    return cells.group_by(keys).agg(pl.col("n").sum()).sort(keys)


def pseudo_members(cells: pl.DataFrame, specs: dict) -> tuple[pl.DataFrame, dict[str, dict[str, Any]]]:
    """The rows behind summed :func:`member_cells` (pseudo-members numbered by row, no ids) with
    ``expected_value`` of the readmission measures recomputed: each measure's risk model
    (``measures.readmission.fit_expected``, the measure's own code and fallbacks) refitted on the index
    stays of every partition (one row per stay, from the stay cells: the covariates are age bands, sex
    and a capped count, so the cells hold all the model reads), a member's expected = the sum over
    their stays. Returns the rows and each readmission measure's model summary."""
    from equity_pipeline.measures.readmission import fit_expected

    rows = _expand(cells).with_row_index("member_id").with_columns(pl.col("member_id").cast(pl.String).str.zfill(12))
    parts = [pl.DataFrame(schema={"member_id": pl.String, "measure_id": pl.String, "expected_value": pl.Float64})]
    models: dict[str, dict[str, Any]] = {}
    for m in sorted(rows.filter(pl.col("stays").is_not_null())["measure_id"].unique().to_list()):
        field = pl.col("_f").list
        stays = (rows.filter((pl.col("measure_id") == m) & pl.col("stays").is_not_null()).select("member_id", "stays")
                 .with_columns(pl.col("stays").str.split(_STAY_SEPARATOR)).explode("stays")
                 .with_columns(_f=pl.col("stays").str.split(_STAY_FIELD_SEPARATOR))
                 .select("member_id", age=field.get(0).cast(pl.Int32), sex=pl.when(field.get(1) == "1").then(pl.lit("M")).otherwise(pl.lit("F")),
                         comorbidities=field.get(2).cast(pl.Int64), readmitted=field.get(3) == "1"))
        p, models[m] = fit_expected(stays, specs[m].risk_model)
        parts.append(stays.select("member_id", measure_id=pl.lit(m), _p=pl.Series(p, dtype=pl.Float64))
                     .group_by("member_id", "measure_id", maintain_order=True).agg(expected_value=pl.col("_p").sum()))
    return rows.join(pl.concat(parts), on=["member_id", "measure_id"], how="left"), models


def pseudo_inputs(rows: pl.DataFrame, config: ProgramConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(results, attributes, comorbidities) of :func:`pseudo_members` rows, shaped as the pipeline's
    denominator results, member attributes and ``standardization_comorbidities``."""
    results = rows.select("member_id", "measure_id", "measure_version", "submeasure", "period", "age", in_denominator=pl.lit(True),
                          numerator_value="numerator_value", denominator_value="denominator_value", expected_value="expected_value")
    return results, rows.select("member_id", "state", *_cell_attribute_columns(config)), rows.select("member_id", "comorbidities")


def rollup_manifest(config: ProgramConfig, combined: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The period's manifest: run metadata, input files (name, hash, rows), per-table and per-measure
    counts of the combined partitions, the states rolled up (counts and hashes only)."""
    from datetime import datetime, timezone

    from equity_pipeline import __version__, pipeline
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.suites import load_suite

    return {
        "run_id": run_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__, "package_versions": pipeline._package_versions(), "input_dir": None,
        "inputs": [{"table": t, "file": i["file"], "sha256": i["sha256"], "rows": i["rows"]} for t, i in combined["inputs"].items()],
        "config": config.to_dict(), "suites": {t: load_suite(t).version for t in TABLES},
        "measure_specs": {m: load_specs()[m].version for m in config.measures}, "standards": pipeline._standards_versions(),
        "tables": {t: {**c, "suite_version": load_suite(t).version} for t, c in combined["tables"].items()},
        "measures": combined["measures"],
        "partitions": {"period": combined["period"], "states": combined["states"]},
    }


def other_period_rates(out: Path, period: str) -> list[Path]:
    """public/rates.parquet of the other rolled-up periods under ``OUT/periods/``, by period key."""
    root = Path(out) / PERIODS_DIR
    return sorted(p for p in root.glob("*/public/rates.parquet") if p.parent.parent.name != str(period))


def rollup_period(out: Path, period: str, states: list[str], config: ProgramConfig, run_id: str | None = None) -> dict[str, Any]:
    """Combine the partitions ``states`` of ``period`` into ``OUT/periods/<p>/`` (see the module
    docstring); raises :class:`PartitionsIncomplete` when one is missing or they do not add up."""
    from equity_pipeline import pipeline
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.report.completeness import COMPLETENESS_KEY, completeness_counts, completeness_small_cells, completeness_with_reasons
    from equity_pipeline.stratify import KEY, data_source_of, rates_with_reasons, stratified_counts
    from equity_pipeline.suppression import publishable_reasons, suppression_detail

    config = period_config(config, period)
    run_id = run_id or f"rollup-{period}"
    layouts = {s: partition_layout(out, period, s) for s in sorted(states)}
    missing = sorted(s for s, lay in layouts.items() if not summary_path(lay).is_file())
    if missing:
        raise PartitionsIncomplete(f"period {period}: partition(s) {', '.join(missing)} not materialized; materialize them first")
    summaries = {s: read_summary(lay) for s, lay in layouts.items()}
    old = sorted(s for s, lay in layouts.items() if "comorbidity" not in summaries[s] or not member_cells_path(lay).is_file())
    if old:
        raise PartitionsIncomplete(f"period {period}: partition(s) {', '.join(old)} lack the member cells (written by an earlier "
                                   "version); materialize them again")
    if summaries[next(iter(summaries))]["config"] != _as_json(config.to_dict()):
        raise PartitionsIncomplete(f"period {period}: the partitions ran with another program config than this roll-up")
    combined = combine_summaries(summaries)
    target = period_layout(out, period).prepare()

    specs = {m: load_specs()[m] for m in config.measures}
    # member cells -> pseudo-members with the readmission risk models refitted on every partition's stays
    rows, risk_models = pseudo_members(_summed([member_cells_path(lay) for lay in layouts.values()]), specs)
    pseudo_results, pseudo_attrs, pseudo_comorbidities = pseudo_inputs(rows, config)

    # rates: summed counts -> the same rate, CI and suppression functions as pipeline.build_public_rates
    counts = combine_counts([pl.read_parquet(lay.stratified_counts) for lay in layouts.values()])
    if any(s.kind == "readmission" for s in specs.values()):  # expected readmissions per stratum (restricted), from the refitted model
        expected = stratified_counts(pseudo_results.filter(pl.col("expected_value").is_not_null()), pseudo_attrs,
                                     config.stratifiers, config.intersections)
        counts = counts.join(expected.select(*KEY, "expected"), on=KEY, how="left")
    write_parquet_atomic(counts, target.stratified_counts)
    cells = pl.concat([pl.read_parquet(strata_cells_path(lay)) for lay in layouts.values()], how="vertical_relaxed")
    cells = cells.group_by([c for c in cells.columns if c != "n"]).agg(pl.col("n").sum())
    cells = cells.sort(cells.columns)
    identities = identities_from_cells(cells, config)
    write_parquet_atomic(identities, target.strata_identities)
    clinical_rows = combined["tables"].get("clinical_observations", {}).get("used", 0)
    sources = {m: data_source_of(s, clinical_rows) for m, s in specs.items()}
    detailed = rates_with_reasons(counts, specs, sources, identities)
    write_parquet_atomic(suppression_detail(detailed, KEY), target.suppression_detail("rates"))
    rates = publishable_reasons(detailed)
    # every public table of the period is published only when its privacy check passes on the frame
    # (else restricted/withheld/, docs/design.md, Privacy); the steps that read a withheld table do not run
    meta: dict[str, Any] = {
        "period": str(period), "partitions": len(layouts), "rates_rows": rates.height, "rates_suppressed": int(rates["suppressed"].sum()),
        "small_cells": 0, "disparity_leaks": 0, "completeness_small_cells": 0, "standardized_leaks": 0, "imputed_small_cells": 0,
        "plan_small_cells": 0, "plan_unprotected_margins": 0, "plan_revealed": 0,
        "tables_reconciled": all(t["read"] == t["used"] + t["quarantined"] for t in combined["tables"].values()),
        "measures_reconciled": all(c["reconciles"] for c in combined["measures"].values()),
    }
    published = publish_checked(target, {target.rates: rates, target.rates_csv: rates},
                                {"no_small_cells": lambda: pipeline.rates_small_cells(rates)})
    meta["small_cells"] = published.checks["no_small_cells"]
    if not published.passed:
        return {**meta, **withheld_metadata(published), "stopped_after": "rates"}
    # disparities read public rates and restricted counts only: the pipeline step itself
    disparities = pipeline.build_disparities(target, config)
    meta.update(disparity_rows=disparities["rows"], disparity_leaks=disparities["leaks"])
    if disparities.get("withheld"):
        return {**meta, "withheld": disparities["withheld"], "stopped_after": "disparities"}

    # REL completeness: summed member counts per state x category -> the same counting and suppression
    categories = pl.concat([pl.read_parquet(completeness_cells_path(lay)) for lay in layouts.values()], how="vertical_relaxed")
    categories = categories.group_by([c for c in categories.columns if c != "n"]).agg(pl.col("n").sum())
    categories = categories.sort(categories.columns)
    detailed_c = completeness_with_reasons(completeness_counts(_expand(categories)), config.period.label)
    write_parquet_atomic(suppression_detail(detailed_c, COMPLETENESS_KEY), target.suppression_detail("completeness"))
    completeness = publishable_reasons(detailed_c)
    published = publish_checked(target, {target.completeness: completeness, target.completeness_csv: completeness},
                                {"no_small_cells": lambda: completeness_small_cells(completeness)})
    meta.update(completeness_rows=completeness.height, completeness_small_cells=published.checks["no_small_cells"])
    if not published.passed:
        return {**meta, **withheld_metadata(published), "stopped_after": "completeness"}

    first = summaries[next(iter(summaries))]
    standardized = rollup_standardized(target, config, specs, pseudo_results, pseudo_attrs, pseudo_comorbidities, first["comorbidity"])
    enabled = config.imputed_race if config.imputed_race is not None else any(s.get("has_surnames") for s in summaries.values())
    imputed = rollup_imputed(target, config, specs, sources, list(layouts.values()), counts, rates, enabled=enabled)

    plans = rollup_plans(target, config, list(layouts.values()))
    for m, c in combined["measures"].items():
        write_json_atomic({"measure_id": m, **c, **({"details": {"risk_model": risk_models[m]}} if m in risk_models else {})}, target.measure_counts(m))
    write_json_atomic(combined, target.validation / "partitions.json")
    reports = rollup_reports(out, target, config, specs, combined, rates, run_id)
    # the later tables' checks: a withheld one is listed (the reports are built from the published tables)
    withheld = ", ".join(w for w in (standardized.pop("withheld", ""), imputed.pop("withheld", ""), plans.pop("withheld", "")) if w)
    return {**meta, **standardized, **imputed, **plans, **reports, **({"withheld": withheld} if withheld else {})}


def rollup_standardized(target: OutputLayout, config: ProgramConfig, specs: dict, results: pl.DataFrame, attributes: pl.DataFrame,
                        comorbidities: pl.DataFrame, comorbidity_info: dict[str, Any]) -> dict[str, int]:
    """public/standardized_rates.parquet and counts/standardization.json of the period: the pipeline's
    ``standardized_rates`` on the pseudo-members (as ``pipeline.build_standardized_rates``)."""
    from equity_pipeline import pipeline
    from equity_pipeline.standardized import standardized_rates

    table, info = standardized_rates(
        results, attributes, pl.read_parquet(target.rates), pl.read_parquet(target.disparities), specs,
        stratifiers=config.standardization_stratifiers, standard=config.standard_population, age_bands=config.standardization_age_bands,
        method=config.standardization_method, comorbidities=comorbidities, comorbidity_cap=comorbidity_info["comorbidity_cap"])
    info["comorbidity"] = comorbidity_info
    published = publish_checked(target, {target.standardized_rates: table}, {
        "no_suppressed_cell_revealed": lambda: pipeline.standardized_revealed(table, pl.read_parquet(target.rates))})
    write_json_atomic(info, target.standardization_models)
    return {"standardized_rows": table.height, "standardized_leaks": published.checks["no_suppressed_cell_revealed"],
            **withheld_metadata(published)}


def rollup_imputed(target: OutputLayout, config: ProgramConfig, specs: dict, sources: dict[str, str], layouts: list[OutputLayout],
                   counts: pl.DataFrame, rates: pl.DataFrame, *, enabled: bool) -> dict[str, int]:
    """public/rates_imputed_race.parquet and public/race_concordance.parquet of the period from the
    partitions' probability-weighted sums (added per cell) and concordance cells; removed when the
    track is off (as ``pipeline.build_imputed_race``)."""
    from equity_pipeline import imputation

    if not enabled:
        for path in (target.rates_imputed_race, target.race_concordance):
            path.unlink(missing_ok=True)
        remove_withheld(target, target.rates_imputed_race)
        return {"imputed_rows": 0, "imputed_small_cells": 0}
    missing = [lay.root.name for lay in layouts if not imputed_counts_path(lay).is_file()]
    if missing:
        raise PartitionsIncomplete(f"partition(s) {', '.join(missing)} have no imputed-race sums (run with imputed_race off?)")
    key = [c for c in imputation._KEY]
    summed = (pl.concat([pl.read_parquet(imputed_counts_path(lay)) for lay in layouts], how="vertical_relaxed")
              .group_by(key, maintain_order=True).agg(pl.col(c).sum() for c in imputation.IMPUTED_SUMS).sort(key))
    write_parquet_atomic(summed, target.restricted / "imputed_counts.parquet")
    table = imputation.imputed_rates(summed, counts, rates, specs, sources)
    published = publish_checked(target, {target.rates_imputed_race: table}, {
        "no_small_effective_cells": lambda: imputation.imputed_small_cells(table, {m: s.kind for m, s in specs.items()})})
    rows = _expand(_summed([concordance_cells_path(lay) for lay in layouts])).with_row_index("member_id")
    probs = rows.select("member_id", *[(pl.col("imputed") == label).cast(pl.Float64).alias(col)
                                       for col, label in imputation.PROBABILITY_COLUMNS.items()])
    concordance = imputation.concordance(rows.select("member_id", "race_ethnicity_source"), rows.select("member_id", "state", "race_ethnicity"),
                                         probs, config.period.label)
    write_parquet_atomic(concordance, target.race_concordance)
    return {"imputed_rows": table.height, "imputed_small_cells": published.checks["no_small_effective_cells"], **withheld_metadata(published)}


def rollup_plans(target: OutputLayout, config: ProgramConfig, layouts: list[OutputLayout]) -> dict[str, int]:
    """public/equity_plan/state_metrics.parquet and hospital_metrics.parquet of the period (and their
    restricted suppression logs): the partitions' plan counts and label cells added up, then the plan
    tables' step (b) (``state_metrics_from_counts``, ``hospital_metrics_from_counts``) on the sums with
    the roll-up's public rates, completeness and disparities, as ``pipeline.build_state_metrics`` /
    ``build_hospital_metrics``. Empty tables when no plan rules are in effect (as a whole run)."""
    from equity_pipeline import pipeline
    from equity_pipeline.equity_plans import cells as C
    from equity_pipeline.equity_plans.hospital import hospital_metrics_from_counts
    from equity_pipeline.equity_plans.state import state_metrics_from_counts
    from equity_pipeline.equity_plans.table import empty
    from equity_pipeline.measures.spec import load_specs

    rules = pipeline._plan_rules(config)
    if rules is None:
        for table in PLAN_TABLES:
            pipeline._write_plan_table(empty(), target, table, getattr(target, table))
        return {"plan_rules_in_effect": False, "plan_small_cells": 0, "plan_unprotected_margins": 0, "plan_revealed": 0}
    missing = sorted({lay.root.name for lay in layouts for t in PLAN_TABLES
                      if not plan_counts_path(lay, t).is_file() or not plan_labels_path(lay, t).is_file()})
    if missing:
        raise PartitionsIncomplete(f"partition(s) {', '.join(missing)} have no equity-plan counts (written by an earlier version); "
                                   "materialize them again")

    def summed(table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        return (C.sum_counts([pl.read_parquet(plan_counts_path(lay, table)) for lay in layouts]),
                C.sum_label_cells([pl.read_parquet(plan_labels_path(lay, table)) for lay in layouts]))

    optional = pipeline._optional_public
    counts, labels = summed("state_metrics")
    state, s_stats = state_metrics_from_counts(
        counts, labels, rates=pl.read_parquet(target.rates), specs=load_specs(), rules=rules, year=config.period,
        regions=config.region_map, completeness=optional(target.completeness), disparities=optional(target.disparities), with_reasons=True)
    s_published = pipeline._write_plan_table(state, target, "state_metrics", target.state_metrics, s_stats)
    counts, labels = summed("hospital_metrics")
    hospital, h_stats = hospital_metrics_from_counts(counts, labels, rules=rules, year=config.period, with_reasons=True)
    h_published = pipeline._write_plan_table(hospital, target, "hospital_metrics", target.hospital_metrics, h_stats)
    withheld = ", ".join(w for w in (withheld_metadata(s_published).get("withheld"), withheld_metadata(h_published).get("withheld")) if w)
    return {"plan_rules_in_effect": True, "state_plan_rows": state.height, "hospital_plan_rows": hospital.height,
            "plan_facilities": h_stats["facilities"],
            "plan_small_cells": s_stats["small_cells"] + h_stats["small_cells"],
            "plan_unprotected_margins": s_stats["unprotected_margins"] + h_stats["unprotected_margins"],
            # the plan tables' no_suppressed_cell_revealed: margins, lock conflicts and mismatches (pipeline.plan_checks)
            "plan_revealed": s_published.checks["no_suppressed_cell_revealed"] + h_published.checks["no_suppressed_cell_revealed"],
            **({"withheld": withheld} if withheld else {})}


def rollup_reports(out: Path, target: OutputLayout, config: ProgramConfig, specs: dict, combined: dict[str, Any], rates: pl.DataFrame,
                   run_id: str) -> dict[str, Any]:
    """The period's validation/<table>.json (combined counts), manifest.json, report/index.html (trend
    section: the config's history, then the other rolled-up periods' public rates),
    report/equity_report.xlsx, public/fhir/ and audit/, from the roll-up's public tables and combined
    counts; the workbook's plan sheets, report/state_plan.html and the plan cells' lineage from the
    rolled-up plan tables."""
    from equity_pipeline import pipeline
    from equity_pipeline.report import render_report
    from equity_pipeline.report.trends import trend_rates
    from equity_pipeline.report.workbook import write_workbook

    from equity_pipeline.suites import load_suite

    for table, counts in combined["tables"].items():  # combined validation counts, as a whole run's validation/<table>.json (TableResult fields)
        source = combined["inputs"].get(table, {})
        write_json_atomic({"table": table, "file": source.get("file"), "sha256": source.get("sha256"), "read": counts["read"], "used": counts["used"],
               "quarantined": counts["quarantined"], "rule_counts": counts["rules"], "suite_version": load_suite(table).version},
              target.table_result(table))
    manifest = rollup_manifest(config, combined, run_id)
    manifest["withheld"] = withheld_outputs(target)  # tables a privacy check held back from public/ (as pipeline.build_manifest_dict)
    write_json_atomic(manifest, target.manifest)
    trends = trend_rates(rates, [*config.trend_history, *other_period_rates(out, combined["period"])])
    measures = {m: {"title": s.title, "description": s.description, "ids": s.ids, "version": s.version, "notes": s.notes} for m, s in specs.items()}
    optional = pipeline._optional_public
    render_report(rates, manifest, target.report, measures=measures, disparities=optional(target.disparities),
                  completeness=optional(target.completeness), trends=trends)
    write_workbook(target.workbook, rates, manifest, disparities=optional(target.disparities),
                   disparity_summary=optional(target.disparity_summary), completeness=optional(target.completeness),
                   state_metrics=optional(target.state_metrics), hospital_metrics=optional(target.hospital_metrics), trends=trends.table)
    state_plan = pipeline.build_state_plan(target, config, run_id)
    fhir = pipeline.build_fhir_measure_reports(target, config, run_id)
    audit = pipeline.build_audit_pack(target, config, run_id)  # reads manifest.json, validation/, the public tables and suppression logs
    return {"trend_periods": trends.table.get_column("period").n_unique(), "fhir_resources": fhir.get("resources", 0),
            "state_plan_sections": state_plan["state_sections"] + state_plan["facility_sections"],
            "audit_files": audit["files"], "audit_reconciles": bool(audit["tables_reconcile"] and audit["measures_reconcile"])}
