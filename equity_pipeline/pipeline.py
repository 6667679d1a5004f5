"""The pipeline's steps as plain functions over an :class:`OutputLayout`.

Each Dagster asset in ``assets/`` calls exactly one of these. They read their inputs from the
layout's files and write their outputs there atomically, so any step can be re-run alone.
Return values are small dicts of counts (safe for logs and Dagster metadata: no values, no ids).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline import __version__
from equity_pipeline.claims import adjudication_counts, final_claims
from equity_pipeline.config import ProgramConfig
from equity_pipeline.events import claim_events, observation_events, pharmacy_events, value_set_frame
from equity_pipeline.io import write_csv_atomic, write_parquet_atomic, write_text_atomic
from equity_pipeline.layout import OutputLayout
from equity_pipeline.measures.engine import evaluate
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.measures.utilization import evaluate_utilization
from equity_pipeline.periods import MeasurementPeriod
from equity_pipeline.standards.geography import valid_county_fips
from equity_pipeline.standards.sdoh import screening_events
from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation.ingest import TableResult, ingest_table


def _dump(obj: Any, path: Path) -> None:
    write_text_atomic(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def suite_parameters(config: ProgramConfig) -> dict[str, Any]:
    return {"run_date": config.run_date.isoformat(), "valid_county_fips": valid_county_fips(config.measurement_year)}


def ingest(table: str, input_dir: Path, layout: OutputLayout, config: ProgramConfig) -> dict[str, Any]:
    """Validate one input table; members must be ingested before the others (orphan check)."""
    layout.prepare()
    known = pl.scan_parquet(layout.table("members")) if table != "members" else None
    result = ingest_table(table, input_dir, layout.restricted, parameters=suite_parameters(config), known_members=known)
    _dump(result.to_dict(), layout.table_result(table))
    return result.to_dict()


def build_events(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """Adjudicate medical claims and extract the coded events every configured measure needs."""
    specs = load_specs()
    lines = pl.scan_parquet(layout.table("medical_claims"))
    counts = adjudication_counts(lines)
    write_parquet_atomic(final_claims(lines), layout.final_medical_claims)
    names = set().union(*(specs[m].value_set_names for m in config.measures))
    codes = value_set_frame(names)
    events = pl.concat(
        [
            claim_events(pl.scan_parquet(layout.final_medical_claims), codes),
            observation_events(pl.scan_parquet(layout.table("clinical_observations")), codes),
            pharmacy_events(final_claims(pl.scan_parquet(layout.table("pharmacy_claims"))), codes),
            screening_events(pl.scan_parquet(layout.table("sdoh_screenings"))),
        ]
    )
    write_parquet_atomic(events.collect(), layout.events)
    _dump(counts, layout.adjudication)
    return {**counts, "events": pl.scan_parquet(layout.events).select(pl.len()).collect().item()}


def evaluate_measure(measure_id: str, layout: OutputLayout, config: ProgramConfig) -> dict[str, Any]:
    spec = load_specs()[measure_id]
    period = MeasurementPeriod.calendar_year(config.measurement_year)
    members, enrollment = pl.scan_parquet(layout.table("members")), pl.scan_parquet(layout.table("enrollment"))
    if spec.kind == "proportion":
        results, counts = evaluate(spec, period, members, enrollment, pl.scan_parquet(layout.events))
    else:
        results, counts = evaluate_utilization(
            spec, period, members, enrollment, pl.scan_parquet(layout.final_medical_claims),
            final_claims(pl.scan_parquet(layout.table("pharmacy_claims"))), pl.scan_parquet(layout.table("providers")),
        )
    write_parquet_atomic(results, layout.member_results(measure_id))
    out = {"measure_id": measure_id, "measure_version": spec.version, "period": period.label, **counts.__dict__, "reconciles": counts.reconciles()}
    _dump(out, layout.measure_counts(measure_id))
    return out


def build_member_attributes(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    from equity_pipeline.stratify import member_attributes

    attrs = member_attributes(pl.scan_parquet(layout.table("members")), config.measurement_year)
    write_parquet_atomic(attrs, layout.member_attributes)
    return {"members": attrs.height}


def build_stratified_counts(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    from equity_pipeline.stratify import stratified_counts

    results = pl.concat([pl.read_parquet(layout.member_results(m)) for m in config.measures], how="vertical")
    counts = stratified_counts(results, pl.read_parquet(layout.member_attributes), config.stratifiers)
    write_parquet_atomic(counts, layout.stratified_counts)
    return {"cells": counts.height}


def build_public_rates(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    from equity_pipeline.stratify import data_source_of, public_rates

    specs = {m: load_specs()[m] for m in config.measures}
    clinical_rows = pl.scan_parquet(layout.table("clinical_observations")).select(pl.len()).collect().item()
    sources = {m: data_source_of(s, clinical_rows) for m, s in specs.items()}
    rates = public_rates(pl.read_parquet(layout.stratified_counts), specs, sources)
    write_parquet_atomic(rates, layout.rates)
    write_csv_atomic(rates, layout.rates_csv)
    return {"rows": rates.height, "suppressed": int(rates["suppressed"].sum())}


def published_small_cells(layout: OutputLayout) -> int:
    """Rows of public/rates.parquet still showing a checked count of 1-10 (must be 0).

    The counts checked depend on the measure kind (see ``suppression.CHECKED``): dollars and
    member-months are not counts of people."""
    from equity_pipeline.suppression import primary_flags

    rates = pl.read_parquet(layout.rates).filter(~pl.col("suppressed"))
    specs = load_specs()
    kinds = pl.DataFrame({"measure_id": list(specs), "kind": [s.kind for s in specs.values()]})
    return int(primary_flags(rates.join(kinds, on="measure_id", how="left")).sum())


def build_report(layout: OutputLayout, config: ProgramConfig, run_id: str) -> dict[str, Any]:
    from equity_pipeline.report import render_report

    specs = {m: load_specs()[m] for m in config.measures}
    manifest = build_manifest_dict(layout, config, run_id, input_dir=None)
    measures = {m: {"title": s.title, "description": s.description, "ids": s.ids, "version": s.version, "notes": s.notes} for m, s in specs.items()}
    path = render_report(pl.read_parquet(layout.rates), manifest, layout.report, measures=measures)
    return {"path": str(path.relative_to(layout.root))}


def _package_versions() -> dict[str, str]:
    out = {"equity-pipeline": __version__}
    for pkg in ("polars", "pyarrow", "dagster", "great-expectations", "statsmodels", "matplotlib", "numpy", "pandas"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def build_manifest_dict(layout: OutputLayout, config: ProgramConfig, run_id: str, input_dir: Path | None) -> dict[str, Any]:
    tables, inputs = {}, []
    for t in TABLES:
        p = layout.table_result(t)
        if not p.is_file():
            continue
        r = TableResult(**json.loads(p.read_text()))
        tables[t] = {"read": r.read, "used": r.used, "quarantined": r.quarantined, "rules": r.rule_counts, "suite_version": r.suite_version}
        if r.file:
            inputs.append({"table": t, "file": r.file, "sha256": r.sha256, "rows": r.read})
    measures = {}
    for m in config.measures:
        p = layout.measure_counts(m)
        if p.is_file():
            measures[m] = json.loads(p.read_text())
    if layout.adjudication.is_file() and "medical_claims" in tables:
        tables["medical_claims"]["adjudication"] = json.loads(layout.adjudication.read_text())
    return {
        "run_id": run_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
        "package_versions": _package_versions(),
        "input_dir": str(input_dir) if input_dir else None,
        "inputs": inputs,
        "config": config.to_dict(),
        "suites": {t: load_suite(t).version for t in TABLES},
        "measure_specs": {m: load_specs()[m].version for m in config.measures},
        "tables": tables,
        "measures": measures,
    }


def build_manifest(layout: OutputLayout, config: ProgramConfig, run_id: str, input_dir: Path) -> dict[str, Any]:
    manifest = build_manifest_dict(layout, config, run_id, input_dir)
    _dump(manifest, layout.manifest)
    reconciled = all(v["read"] == v["used"] + v["quarantined"] for v in manifest["tables"].values())
    return {"tables": len(manifest["tables"]), "reconciled": reconciled}
