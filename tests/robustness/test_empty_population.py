"""Inputs that are well-formed but leave nobody to measure (a header-only members file, or every
member quarantined). Every step still runs: the public tables are written empty with the schema a
run with members gives them, the report says there is no data and why, and the manifest reconciles.
(Before the fix the run failed in public_rates with ``cannot concat empty list``, after
``public/completeness.*`` had been written.)"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from equity_pipeline import cli, pipeline
from equity_pipeline.config import load_config
from equity_pipeline.layout import OutputLayout
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.stratify import RATES_COLUMNS, public_rates, stratified_counts
from equity_pipeline.suites import TABLES
from equity_pipeline.suppression import suppress
from tests.builders import claim, member, span, write_table

RESULTS = {"member_id": pl.String, "measure_id": pl.String, "measure_version": pl.String, "submeasure": pl.String,
           "period": pl.String, "in_denominator": pl.Boolean, "numerator_value": pl.Float64, "denominator_value": pl.Float64}
ATTRIBUTES = {"member_id": pl.String, "state": pl.String, "race_ethnicity": pl.String}
#: every measure (the default), the BISG track on (members have surnames) and an intersection stratifier
CONFIG = "measurement_year: 2025\nrun_date: 2026-11-22\nimputed_race: true\nintersections: [[race_ethnicity, rurality]]\n"
#: public tables that hold one row per measured cell: empty when nobody is measured
CELL_TABLES = ("rates", "disparities", "disparity_summary", "standardized_rates", "rates_imputed_race",
               "equity_plan/state_metrics", "equity_plan/hospital_metrics")


def test_no_member_to_measure_gives_an_empty_rates_table():
    counts = stratified_counts(pl.DataFrame(schema=RESULTS), pl.DataFrame(schema=ATTRIBUTES), ("race_ethnicity",))
    assert counts.height == 0
    rates = public_rates(counts, {"BCS": load_specs()["BCS"]}, {})
    assert rates.height == 0 and rates.columns == RATES_COLUMNS
    assert rates.schema["rate"] == pl.Float64 and rates.schema["suppressed"] == pl.Boolean


def test_suppress_an_empty_table():
    empty = pl.DataFrame(schema={"measure_id": pl.String, "submeasure": pl.String, "period": pl.String, "unit_level": pl.String,
                                 "unit_id": pl.String, "stratifier": pl.String, "stratum": pl.String, "kind": pl.String,
                                 "members": pl.Float64, "denominator": pl.Float64, "numerator": pl.Float64})
    out = suppress(empty)
    assert out.height == 0 and out.schema["suppressed"] == pl.Boolean and out.schema["suppression_reason"] == pl.String


def _members(mode: str) -> list[dict]:
    people = [member(f"M{i:03d}", last_name="Garcia") for i in range(12)]
    return {"with_members": people, "header_only": [], "all_quarantined": [dict(m, sex="??") for m in people]}[mode]


def _run_steps(root: Path, mode: str) -> OutputLayout:
    """Every step the Dagster assets call, in order, without Dagster (a failing step fails the test)."""
    inp = root / "in"
    people = [member(f"M{i:03d}") for i in range(12)]
    write_table(inp, "members", _members(mode))
    write_table(inp, "enrollment", [span(m["member_id"]) for m in people])
    write_table(inp, "medical_claims", [claim(m["member_id"], "2025-03-01", hcpcs="77067") for m in people[:6]])
    (root / "program.yaml").write_text(CONFIG, encoding="utf-8")
    config = load_config(root / "program.yaml")
    layout = OutputLayout(root / "out")
    pipeline.convert_input("canonical", inp, layout)
    for table in TABLES:
        pipeline.ingest(table, inp, layout, config)
    pipeline.build_events(layout, config)
    for m in config.measures:
        pipeline.evaluate_measure(m, layout, config)
    pipeline.build_member_attributes(layout, config)
    pipeline.build_stratified_counts(layout, config)
    pipeline.build_public_rates(layout, config)
    assert pipeline.published_small_cells(layout) == 0
    pipeline.build_disparities(layout, config)
    assert pipeline.disparity_leaks(layout) == 0
    pipeline.build_completeness(layout, config)
    assert pipeline.build_imputed_race(layout, config)["enabled"] == 1
    assert pipeline.build_standardized_rates(layout, config)["revealed"] == 0
    pipeline.build_state_metrics(layout, config)
    pipeline.build_hospital_metrics(layout, config)
    pipeline.build_report(layout, config, "run-1")
    pipeline.build_workbook(layout, config, "run-1")
    assert pipeline.build_manifest(layout, config, "run-1", inp)["reconciled"]
    assert pipeline.manifest_reconciliation(layout, config)["passed"]
    pipeline.build_audit_pack(layout, config, "run-1")
    return layout


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, OutputLayout]:
    root = tmp_path_factory.mktemp("empty_population")
    return {mode: _run_steps(root / mode, mode) for mode in ("with_members", "header_only", "all_quarantined")}


def _public_parquet(layout: OutputLayout) -> dict[str, Path]:
    return {str(p.relative_to(layout.public).with_suffix("")): p for p in sorted(layout.public.rglob("*.parquet"))}


@pytest.mark.parametrize("mode", ["header_only", "all_quarantined"])
def test_every_public_table_is_written_with_the_schema_of_a_run_with_members(runs, mode):
    reference, empty = _public_parquet(runs["with_members"]), _public_parquet(runs[mode])
    assert set(empty) == set(reference)
    for name, path in reference.items():
        assert pl.read_parquet_schema(empty[name]) == pl.read_parquet_schema(path), name
    for name in CELL_TABLES:
        assert pl.read_parquet(empty[name]).height == 0, name
    assert pl.read_parquet(reference["rates"]).height > 0  # the reference run does measure someone
    csv = (runs[mode].public / "rates.csv").read_text(encoding="utf-8").splitlines()
    assert csv == [",".join(RATES_COLUMNS)]


@pytest.mark.parametrize("mode", ["header_only", "all_quarantined"])
def test_the_report_says_there_is_no_data_and_why(runs, mode):
    html = (runs[mode].report / "index.html").read_text(encoding="utf-8")
    assert 'id="no-data"' in html and "the members table has no validated member" in html
    assert ("12 quarantined" in html) == (mode == "all_quarantined")
    assert "No measures in this run" not in html and "Measurement period</dt><dd>2025" in html
    assert (runs[mode].report / "equity_report.xlsx").is_file() and (runs[mode].root / "audit").is_dir()
    assert 'id="no-data"' not in (runs["with_members"].report / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_header_only_members_through_the_cli(tmp_path, capfd, monkeypatch):
    """The whole Dagster run on tiny inputs: exit 0, empty rates, a warning naming the members table."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    inp = tmp_path / "in"
    people = [member(f"M{i:03d}") for i in range(12)]
    write_table(inp, "members", [])
    write_table(inp, "enrollment", [span(m["member_id"]) for m in people])
    write_table(inp, "medical_claims", [claim(m["member_id"], "2025-03-01", hcpcs="77067") for m in people[:6]])
    cfg = tmp_path / "program.yaml"
    cfg.write_text("measurement_year: 2025\nrun_date: 2026-11-22\nmeasures: [BCS, ED_VISITS]\n", encoding="utf-8")
    out = tmp_path / "out"
    code = cli.main(["run", "--input", str(inp), "--out", str(out), "--config", str(cfg)])
    err = capfd.readouterr().err
    assert code == 0, err[-2000:]
    assert "warning: no validated member (members: 0 rows read, 0 quarantined)" in err
    assert pl.read_parquet(out / "public" / "rates.parquet").height == 0
    assert 'id="no-data"' in (out / "report" / "index.html").read_text(encoding="utf-8")
    assert (out / "manifest.json").is_file()
