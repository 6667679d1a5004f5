"""The report assets in the Dagster graph, and one small run through it: the workbook, the audit
pack and the completeness table come out consistent with the public rates."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.builders import claim, member, span, write_table

REPORT_ASSETS = {"rel_completeness", "equity_report", "equity_workbook", "fhir_measure_reports", "run_manifest", "audit_pack"}


def test_report_assets_in_the_graph() -> None:
    from assets.definitions import defs

    graph = defs.resolve_asset_graph()
    by_name = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
    assert REPORT_ASSETS <= set(by_name)
    for name in REPORT_ASSETS:
        assert graph.get(by_name[name]).group_name == "reports", name

    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(by_name[name]).parent_keys}

    assert {"public_rates", "disparities", "rel_completeness"} <= parents("equity_report")
    assert {"public_rates", "disparities", "rel_completeness"} <= parents("equity_workbook")
    assert {"run_manifest", "validation_report", "public_rates", "disparities", "rel_completeness"} <= parents("audit_pack")
    assert "members" in parents("rel_completeness")
    assert "public_rates" in parents("fhir_measure_reports")
    assert {"state_metrics", "hospital_metrics"} <= parents("audit_pack")


def test_measure_input_tables_by_kind() -> None:
    from equity_pipeline.pipeline import measure_input_tables

    assert measure_input_tables("proportion") == ["members", "enrollment", "medical_claims", "pharmacy_claims",
                                                  "sdoh_screenings", "clinical_observations"]
    assert "providers" in measure_input_tables("cost") and "clinical_observations" not in measure_input_tables("cost")
    assert "sdoh_screenings" in measure_input_tables("event_rate")  # the SDOH stratifier reads screenings


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from equity_pipeline.cli import run_pipeline

    root = tmp_path_factory.mktemp("run")
    inp = root / "in"
    members = ([member(f"M{i:03d}") for i in range(40)]
               + [member(f"S{i:03d}", race_ethnicity_codes="2054-5", race_ethnicity_source="imputed", language="es") for i in range(20)]
               + [member(f"D{i:03d}", race_ethnicity_codes="ASKU", language="ASKU") for i in range(5)]
               + [member(f"U{i:03d}", race_ethnicity_codes="UNK", race_ethnicity_source="unknown") for i in range(12)])
    write_table(inp, "members", members)
    write_table(inp, "enrollment", [span(m["member_id"]) for m in members])
    write_table(inp, "medical_claims", [claim(f"M{i:03d}", "2025-03-01", hcpcs="77067") for i in range(0, 40, 2)])
    out = root / "out"
    config = root / "config.yaml"
    config.write_text("measures: [BCS]\nmeasurement_year: 2025\n")
    run_pipeline(inp, out, str(config), run_date="2026-11-22", quiet=True)
    return out


def test_run_writes_workbook_audit_pack_and_completeness(run_out: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    rates = pl.read_parquet(run_out / "public" / "rates.parquet")
    completeness = pl.read_parquet(run_out / "public" / "completeness.parquet")
    assert (run_out / "public" / "completeness.csv").is_file()
    race = {r["category"]: r for r in completeness.filter((pl.col("unit_id") == "all")
                                                         & (pl.col("attribute") == "race_ethnicity")).iter_rows(named=True)}
    assert race["self_reported"]["members"] == 40 and race["imputed"]["members"] == 20
    # declined: 5 members (primary); unknown: the smallest other category (12, complementary). The
    # public table says the same for both; the kinds are in the restricted suppression log only
    assert race["declined"]["suppression_reason"] == race["unknown"]["suppression_reason"] == "cell-size policy"
    for name in ("rates", "completeness"):
        public = pl.read_parquet(run_out / "public" / f"{name}.parquet")
        assert set(public["suppression_reason"].drop_nulls()) <= {"cell-size policy"}, name
    kinds = pl.read_parquet(run_out / "restricted" / "suppression" / "completeness.parquet")
    kind = {(r["unit_id"], r["attribute"], r["category"]): r["suppression_reason"] for r in kinds.iter_rows(named=True)}
    assert kind[("all", "race_ethnicity", "declined")] == "small cell (1-10)"
    assert kind[("all", "race_ethnicity", "unknown")] == "complementary"

    wb = openpyxl.load_workbook(run_out / "report" / "equity_report.xlsx", read_only=True)
    assert wb.sheetnames[:2] == ["README", "rates"] and "completeness" in wb.sheetnames
    assert wb["rates"].max_row == rates.height + 1
    run_id = json.loads((run_out / "manifest.json").read_text())["run_id"]
    readme = " ".join(str(v) for r in wb["README"].iter_rows(values_only=True) for v in r if v is not None)
    assert run_id in readme

    audit = run_out / "audit"
    assert (audit / "manifest.json").read_bytes() == (run_out / "manifest.json").read_bytes()
    lineage = pl.read_csv(audit / "lineage.csv", infer_schema=False)
    assert lineage.filter(pl.col("table") == "rates").height == rates.height
    assert lineage.filter(pl.col("table") == "completeness").height == completeness.height
    bcs = lineage.filter(pl.col("measure_id") == "BCS").row(0, named=True)
    assert bcs["spec_version"] and bcs["spec_version"] == bcs["measure_version"]
    assert bcs["input_tables"].startswith("members;enrollment;medical_claims")
    # the audit pack counts the kinds from the restricted logs: the same totals as the public tables
    log = pl.read_csv(audit / "suppression_log.csv", infer_schema=False).with_columns(pl.col("cells").cast(pl.Int64))
    for name, frame, detail in (("rates", rates, "rates"), ("completeness", completeness, "completeness")):
        counted = log.filter((pl.col("table") == name) & (pl.col("status") == "suppressed"))
        want = pl.read_parquet(run_out / "restricted" / "suppression" / f"{detail}.parquet")["suppression_reason"].value_counts()
        assert dict(counted.group_by("reason").agg(pl.col("cells").sum()).iter_rows()) == dict(want.iter_rows()), name
        assert counted["cells"].sum() == int(frame["suppressed"].sum())
    assert set(log.filter(pl.col("table") == "completeness")["reason"].drop_nulls()) - {""} == {"small cell (1-10)", "complementary"}
    recon = {r["table"]: r for r in pl.read_csv(audit / "row_reconciliation.csv", infer_schema=False).iter_rows(named=True)}
    assert recon["members"]["read"] == "77" and recon["members"]["reconciles"] == "true"
    # the disparities step ran before the workbook and the audit pack, which include its tables
    disparities = pl.read_parquet(run_out / "public" / "disparities.parquet")
    assert "disparities" in wb.sheetnames and wb["disparities"].max_row == disparities.height + 1
    assert lineage.filter(pl.col("table") == "disparities").height == disparities.height
    html = (run_out / "report" / "index.html").read_text(encoding="utf-8")
    assert 'id="completeness"' in html
    plan = (run_out / "report" / "state_plan.html").read_text(encoding="utf-8")  # the state_plan_report asset ran
    assert "<script" not in plan.lower() and "Health equity plan" in plan
    for p in [*audit.iterdir(), run_out / "public" / "completeness.csv"]:
        text = p.read_text(encoding="utf-8", errors="replace")
        assert "M001" not in text and "S001" not in text, p


def test_run_writes_fhir_and_plan_lineage(run_out: Path) -> None:
    from fhir.resources.R4B.measurereport import MeasureReport

    rates = pl.read_parquet(run_out / "public" / "rates.parquet")
    lines = (run_out / "public" / "fhir" / "measure_reports.ndjson").read_text(encoding="utf-8").splitlines()
    units = rates.select("measure_id", "period", "unit_level", "unit_id").unique()
    assert len(lines) == units.height
    def masked_entry(entry: dict) -> bool:  # no count, no score value, data-absent-reason 'masked'
        score = entry["measureScore"]
        return ("population" not in entry and "value" not in score
                and [e["valueCode"] for e in score.get("extension", [])] == ["masked"])

    strata, masked, masked_groups = 0, 0, 0
    for line in lines:
        resource = json.loads(line)
        MeasureReport.model_validate(resource)
        for g in resource["group"]:
            masked_groups += masked_entry(g)
            for st in g.get("stratifier", []):
                strata += len(st["stratum"])
                masked += sum(masked_entry(s) for s in st["stratum"])
    assert strata == rates.filter(pl.col("stratifier") != "overall").height
    # exactly the suppressed cells of public/rates carry no count and no score
    assert masked == rates.filter((pl.col("stratifier") != "overall") & pl.col("suppressed")).height > 0
    assert masked_groups == rates.filter((pl.col("stratifier") == "overall") & pl.col("suppressed")).height
    lineage = pl.read_csv(run_out / "audit" / "lineage.csv", infer_schema=False)
    for name in ("state_metrics", "hospital_metrics"):
        plan = pl.read_parquet(run_out / "public" / "equity_plan" / f"{name}.parquet")
        rows = lineage.filter(pl.col("table") == name)
        assert rows.height == plan.height, name
        assert rows["metric"].to_list() == plan["metric_id"].to_list()
        from_measure = rows.filter(pl.col("measure_id").is_not_null())
        assert (from_measure["spec_version"].is_not_null()).all()  # every measure-based metric names its spec version
    assert lineage.filter(pl.col("table") == "state_metrics").height > 0  # AHEAD rules are in effect for 2025


def test_report_and_workbook_trend_from_an_earlier_run(run_out: Path, tmp_path: Path) -> None:
    """build_report / build_workbook with config trend.history: an earlier run's public rates (here
    this run's rates relabelled 2024, with the overall BCS rate suppressed) join this run's."""
    openpyxl = pytest.importorskip("openpyxl")
    import shutil

    from equity_pipeline.config import load_config
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.pipeline import build_report, build_workbook

    rates = pl.read_parquet(run_out / "public" / "rates.parquet")
    prior = rates.with_columns(period=pl.lit("2024"))
    overall = (pl.col("stratifier") == "overall") & (pl.col("unit_id") == "all") & (pl.col("submeasure") == "all")
    prior = prior.with_columns(suppressed=pl.col("suppressed") | overall,
                               suppression_reason=pl.when(overall).then(pl.lit("cell-size policy")).otherwise(pl.col("suppression_reason")))
    (tmp_path / "prior").mkdir()
    prior.write_parquet(tmp_path / "prior" / "rates.parquet")  # numbers left in on purpose: they must not show
    config = tmp_path / "config.yaml"
    config.write_text("measures: [BCS]\nmeasurement_year: 2025\ntrend: {history: [prior/rates.parquet]}\n")
    out = tmp_path / "out"
    shutil.copytree(run_out, out, ignore=shutil.ignore_patterns(".dagster"))
    layout = OutputLayout(out)
    meta = build_report(layout, load_config(config, run_date=date(2026, 11, 22)), "run-trend")
    assert meta["trend_periods"] == 2
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    section = html[html.index('id="bcs-trend"'):]
    section = section[:section.index("</section>")]
    assert "<img" in section and "2024" in section and "2025" in section
    assert "suppressed (cell-size policy)" in section
    build_workbook(layout, load_config(config, run_date=date(2026, 11, 22)), "run-trend")
    ws = openpyxl.load_workbook(out / "report" / "equity_report.xlsx", read_only=True)["trends"]
    values = list(ws.iter_rows(values_only=True))
    cols = {c: i for i, c in enumerate(values[0])}
    old = [v for v in values[1:] if v[cols["period"]] == "2024" and v[cols["stratifier"]] == "overall"]
    assert len(old) == 1 and old[0][cols["rate"]] == "suppressed (cell-size policy)"
