"""audit/: validation summary, row and member reconciliation, suppression log, manifest copy and
lineage per published cell, with checksums and an offline index; counts, versions and hashes only."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.report.audit import FILES, LINEAGE_COLUMNS, input_set_sha256, suppression_log, write_audit_pack
from equity_pipeline.stratify import KEY
from equity_pipeline.suppression import COMPLEMENTARY_REASON, PRIMARY_REASON, PUBLIC_REASON, publishable_reasons, suppression_detail
from tests.report.test_report_html import _parsed, sample_rates
from tests.report.test_workbook import sample_disparities

SHA_MEMBERS, SHA_CLAIMS = "a1" * 32, "b2" * 32
MANIFEST = {
    "run_id": "run-audit-1", "created_at": "2025-01-14T10:15:00Z", "package_version": "0.1.0",
    "inputs": [{"table": "members", "file": "/secret/path/members.csv", "sha256": SHA_MEMBERS, "rows": 105},
               {"table": "medical_claims", "file": "claims.csv", "sha256": SHA_CLAIMS, "rows": 1000}],
    "suites": {"members": "2026.1", "medical_claims": "2026.2"},
    "measure_specs": {"BCS-E": "2025.1", "ED": "2025.1", "PCR": "2024.9"},
    "tables": {
        "members": {"read": 105, "used": 100, "quarantined": 5, "rules": {"invalid_date_birth_date": 5}, "suite_version": "2026.1"},
        "medical_claims": {"read": 1000, "used": 990, "quarantined": 10, "rules": {"orphan_member": 10}, "suite_version": "2026.2",
                           "adjudication": {"final": 950, "superseded": 30, "voided": 10}},
    },
    "measures": {
        "BCS-E": {"measure_id": "BCS-E", "measure_version": "2025.1", "period": "2024", "members_in": 100,
                  "not_eligible": {"not_age": 60}, "excluded": {"hospice": 2}, "denominator": 38, "numerator": 20},
        "ED": {"measure_id": "ED", "measure_version": "2025.1", "period": "2024", "members_in": 100,
               "not_eligible": {"no_member_months": 3}, "excluded": {}, "denominator": 90, "numerator": 40},  # 3 + 90 != 100
    },
}
VALIDATION = {
    "members": {"table": "members", "file": "members.csv", "sha256": SHA_MEMBERS, "suite_version": "2026.1", "read": 105,
                "used": 100, "quarantined": 5, "rule_counts": {"invalid_date_birth_date": 5},
                "extra_columns": ["favourite_colour"], "missing_optional_columns": []},
    "medical_claims": {"table": "medical_claims", "file": "claims.csv", "sha256": SHA_CLAIMS, "suite_version": "2026.2",
                       "read": 1000, "used": 990, "quarantined": 10, "rule_counts": {"orphan_member": 10},
                       "extra_columns": [], "missing_optional_columns": []},
}
REPORT = {"tables": [{
    "table": "members", "suite": {"version": "2026.1", "sha256": "c3" * 32},
    "summary": {"expectations": 3, "failed": 1, "failed_block": 0},
    "expectations": [
        {"rule": "member_id_present", "type": "expect_column_to_exist", "column": "member_id", "severity": "block", "result": "pass",
         "unexpected_count": None},
        {"rule": "invalid_date_birth_date", "type": "expect_column_values_to_match_strftime_format", "column": "birth_date",
         "severity": "quarantine", "result": "fail", "unexpected_count": 5},
    ],
}]}
MEASURE_INPUTS = {"BCS-E": ["members", "medical_claims"], "ED": ["members", "medical_claims", "providers"],
                  "PCR": ["members", "medical_claims"], "CHL": ["members"], "TCOC": ["members"], "PCS": ["members"]}


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("run")
    (root / "validation").mkdir()
    for name, result in VALIDATION.items():
        (root / "validation" / f"{name}.json").write_text(json.dumps(result))
    (root / "validation" / "validation_report.json").write_text(json.dumps(REPORT))
    (root / "manifest.json").write_text(json.dumps(MANIFEST))
    # the kinds as suppression.suppress records them (restricted): the sample's complementary rows, the rest primary
    kinds = sample_rates().with_columns(
        suppression_reason=pl.when(pl.col("suppression_reason") == COMPLEMENTARY_REASON).then(pl.lit(COMPLEMENTARY_REASON))
        .when(pl.col("suppressed")).then(pl.lit(PRIMARY_REASON)))
    rates = publishable_reasons(kinds).with_columns(pl.lit("M-0001234").alias("member_id"))  # must never reach the pack
    tables = {"rates": rates, "disparities": sample_disparities()}
    details = {"rates": suppression_detail(kinds, KEY)}   # restricted/suppression/rates.parquet
    (root / "audit").mkdir()
    (root / "audit" / "stale.csv").write_text("from an earlier run\n")
    result = write_audit_pack(root / "audit", manifest=MANIFEST, manifest_path=root / "manifest.json",
                              validation_dir=root / "validation", tables=tables, measure_inputs=MEASURE_INPUTS,
                              input_tables=["members", "enrollment", "medical_claims"], suppression_details=details)
    return root / "audit", {"result": result, "kinds": kinds, **tables}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_files_and_checksums(pack: tuple[Path, dict]) -> None:
    out, _ = pack
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # the stale file of an earlier run is gone
    lines = (out / "checksums.sha256").read_text().splitlines()
    assert len(lines) == len(FILES) - 1
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    assert (out / "manifest.json").read_bytes() == (out.parent / "manifest.json").read_bytes()
    assert not list(out.parent.glob(".audit*"))  # no temporary folders left


def test_validation_summary(pack: tuple[Path, dict]) -> None:
    out, _ = pack
    tables = {r["table"]: r for r in _csv(out / "validation_summary.csv")}
    assert set(tables) == {"members", "medical_claims"}  # enrollment has no result: left out
    m = tables["members"]
    assert (m["read"], m["used"], m["quarantined"], m["reconciles"]) == ("105", "100", "5", "true")
    assert (m["suite_sha256"], m["expectations"], m["expectations_failed"], m["extra_columns"]) == ("c3" * 32, "3", "1", "1")
    assert m["file"] == "members.csv" and m["sha256"] == SHA_MEMBERS
    rules = {(r["table"], r["rule"]): r for r in _csv(out / "validation_rules.csv")}
    assert rules[("members", "invalid_date_birth_date")]["quarantined_rows"] == "5"
    assert rules[("members", "member_id_present")]["result"] == "pass"
    assert rules[("medical_claims", "orphan_member")] == {  # from rule counts alone
        "table": "medical_claims", "rule": "orphan_member", "expectation": "", "column": "", "severity": "quarantine",
        "result": "fail", "quarantined_rows": "10", "unexpected_count": ""}
    text = (out / "validation_summary.json").read_text()
    assert "favourite_colour" not in text  # extra input columns are counted, not named


def test_reconciliation(pack: tuple[Path, dict]) -> None:
    out, t = pack
    rows = {r["table"]: r for r in _csv(out / "row_reconciliation.csv")}
    assert rows["medical_claims"]["adjudication_final"] == "950" and rows["members"]["adjudication_final"] == ""
    assert all(r["reconciles"] == "true" for r in rows.values())
    measures = {r["measure_id"]: r for r in _csv(out / "member_reconciliation.csv")}
    assert measures["BCS-E"]["reconciles"] == "true" and measures["BCS-E"]["not_eligible"] == "60"
    assert measures["ED"]["reconciles"] == "false"
    assert t["result"]["measures_reconcile"] is False and t["result"]["tables_reconcile"] is True
    detail = json.loads((out / "reconciliation.json").read_text())
    assert detail["measures"][0]["excluded_by_reason"] == {"hospice": 2}
    html = (out / "index.html").read_text()
    assert "NO: see member reconciliation" in html


def test_suppression_log_counts_every_cell(pack: tuple[Path, dict]) -> None:
    out, t = pack
    log = _csv(out / "suppression_log.csv")
    for name in ("rates", "disparities"):
        frame = t[name]
        rows = [r for r in log if r["table"] == name]
        assert sum(int(r["cells"]) for r in rows) == frame.height
        assert sum(int(r["cells"]) for r in rows if r["status"] == "suppressed") == int(frame["suppressed"].sum())
    # the public rates say one reason; the log counts the kinds from the restricted suppression log
    assert set(t["rates"]["suppression_reason"].drop_nulls()) == {PUBLIC_REASON}
    bcs = {(r["status"], r["reason"]): int(r["cells"]) for r in log if r["table"] == "rates" and r["measure_id"] == "BCS-E"}
    want = t["kinds"].filter(pl.col("measure_id") == "BCS-E")
    assert bcs[("suppressed", PRIMARY_REASON)] == want.filter(pl.col("suppression_reason") == PRIMARY_REASON).height > 0
    assert bcs[("suppressed", COMPLEMENTARY_REASON)] == want.filter(pl.col("suppression_reason") == COMPLEMENTARY_REASON).height > 0
    assert bcs[("published", "")] == want.filter(~pl.col("suppressed")).height
    assert not any(r["reason"] == PUBLIC_REASON for r in log if r["table"] == "rates")
    assert json.loads((out / "suppression_log.json").read_text()) == [{**r, "cells": int(r["cells"])} for r in log]


def test_suppression_log_without_the_restricted_log_says_the_public_reason(pack: tuple[Path, dict]) -> None:
    _, t = pack
    log = suppression_log({"rates": t["rates"]})
    assert {r["reason"] for r in log if r["status"] == "suppressed"} == {PUBLIC_REASON}
    assert sum(r["cells"] for r in log if r["status"] == "suppressed") == int(t["rates"]["suppressed"].sum())


def test_lineage_one_row_per_cell(pack: tuple[Path, dict]) -> None:
    out, t = pack
    lineage = pl.read_csv(out / "lineage.csv", infer_schema=False)
    assert tuple(lineage.columns) == LINEAGE_COLUMNS
    assert lineage.height == t["rates"].height + t["disparities"].height
    key = ["table", "measure_id", "submeasure", "unit_level", "unit_id", "stratifier", "stratum", "metric"]
    assert lineage.select(key).n_unique() == lineage.height
    bcs = lineage.filter((pl.col("measure_id") == "BCS-E") & (pl.col("table") == "rates")).row(0, named=True)
    sources = json.loads((out / "lineage_sources.json").read_text())
    assert bcs["spec_version"] == "2025.1" and bcs["input_tables"] == "members;medical_claims"
    assert bcs["suite_versions"] == "members=2026.1;medical_claims=2026.2"
    assert bcs["input_set_sha256"] == sources["BCS-E"]["input_set_sha256"]
    expected = hashlib.sha256(f"members={SHA_MEMBERS}\nmedical_claims={SHA_CLAIMS}\n".encode()).hexdigest()
    assert bcs["input_set_sha256"] == expected == input_set_sha256(sources["BCS-E"]["inputs"])
    ed = sources["ED"]["inputs"]
    assert [i["table"] for i in ed] == ["members", "medical_claims", "providers"] and ed[2]["sha256"] is None
    assert sources["BCS-E"]["inputs"][0] == {"table": "members", "file": "members.csv", "sha256": SHA_MEMBERS,
                                             "suite_version": "2026.1", "suite_sha256": "c3" * 32}
    published = lineage.filter(pl.col("table") == "rates")["published"].to_list()
    assert published == [("false" if s else "true") for s in t["rates"]["suppressed"].to_list()]
    # PCR cells carry version 2025.1 while the manifest's spec says 2024.9
    assert t["result"]["spec_version_mismatches"] == t["rates"].filter(pl.col("measure_id") == "PCR").height > 0


def test_counts_only_and_offline_index(pack: tuple[Path, dict]) -> None:
    out, _ = pack
    for p in out.iterdir():
        if p.name == "manifest.json":  # the manifest copy is byte-identical (it keeps its input paths)
            continue
        text = p.read_text(encoding="utf-8")
        assert "M-0001234" not in text and "member_id\n" not in text and "/secret/path" not in text, p.name
    html = (out / "index.html").read_text()
    assert "<script" not in html.lower() and "<link" not in html.lower()
    for tag, name, value in _parsed(html).attrs:
        assert name not in ("src", "href"), (tag, name, value)
    assert "run-audit-1" in html and "105" in html and "1,000" in html


# ---------------------------------------------------------------------------------------------------
# equity-plan tables in the lineage and the suppression log

def _plan_rows(plan: str, cells: list[tuple]) -> pl.DataFrame:
    """Plan rows from (metric_id, measure_id, unit_level, unit_id, payer, stratifier, stratum, suppressed)."""
    from equity_pipeline.equity_plans.table import COLUMNS

    rows = []
    for metric, measure, level, uid, payer, strat, stratum, hidden in cells:
        rows.append({**{c: None for c in COLUMNS}, "plan": plan, "metric_id": metric, "measure_id": measure,
                     "submeasure": "all", "period": "2024", "unit_level": level, "unit_id": uid, "payer": payer,
                     "stratifier": strat, "stratum": stratum, "suppressed": hidden,
                     "suppression_reason": PUBLIC_REASON if hidden else None, "members": None if hidden else 120,
                     "rate": None if hidden else 0.25})
    return pl.DataFrame(rows, schema=COLUMNS)


def test_plan_tables_in_lineage_and_suppression_log(tmp_path: Path) -> None:
    from equity_pipeline.pipeline import TABLES, plan_metric_input_tables
    from equity_pipeline.report.audit import plan_source_key

    state = _plan_rows("state", [
        ("PCR", "PCR", "state", "MD", "medicaid", "race_ethnicity", "White", False),
        ("PCR", "PCR", "state", "MD", "medicare", "race_ethnicity", "White", True),   # same cell key but the payer
        ("REL_RACE_ETHNICITY", None, "population", "all", "all", "collection_status", "declined", True),
    ])
    hospital = _plan_rows("hospital", [
        ("HOSP_READMISSION", "PCR", "facility", "210009", "all", "dual_eligible", "Dual eligible", False),
        ("DUAL_SHARE", None, "facility", "210009", "all", "dual_eligible", "Dual eligible", False),
    ])
    specs = {"PCR": type("Spec", (), {"kind": "readmission"})()}
    inputs, spec_of = dict(MEASURE_INPUTS), {}
    for frame in (state, hospital):
        for plan, metric, measure in frame.select("plan", "metric_id", "measure_id").unique().rows():
            inputs[plan_source_key(plan, metric)] = plan_metric_input_tables(plan, metric, measure, specs)
            if measure:
                spec_of[plan_source_key(plan, metric)] = measure
    # the tables behind each plan metric (docs/equity_plans.md): state PCR = the measure's; REL = members
    # and the member attributes; hospital: claims (facility patients) + attributes, readmission also the events
    assert inputs["state:PCR"] == [t for t in TABLES if t in {"members", "enrollment", "medical_claims", "pharmacy_claims",
                                                              "sdoh_screenings", "clinical_observations"}]
    assert inputs["state:REL_RACE_ETHNICITY"] == [t for t in TABLES if t in {"members", "enrollment", "sdoh_screenings"}]
    assert inputs["hospital:DUAL_SHARE"] == [t for t in TABLES if t in {"members", "enrollment", "medical_claims", "sdoh_screenings"}]
    assert "clinical_observations" in inputs["hospital:HOSP_READMISSION"]
    (tmp_path / "validation").mkdir()
    write_audit_pack(tmp_path / "audit", manifest=MANIFEST, manifest_path=None, validation_dir=tmp_path / "validation",
                     tables={"rates": sample_rates(), "state_metrics": state, "hospital_metrics": hospital},
                     measure_inputs=inputs, input_tables=["members", "medical_claims"], spec_of=spec_of)
    lineage = pl.read_csv(tmp_path / "audit" / "lineage.csv", infer_schema=False).fill_null("")
    assert tuple(lineage.columns) == LINEAGE_COLUMNS
    for name, frame in (("state_metrics", state), ("hospital_metrics", hospital)):
        rows = lineage.filter(pl.col("table") == name)
        assert rows.height == frame.height
        key = ["metric", "unit_level", "unit_id", "payer", "stratifier", "stratum"]
        assert rows.select(key).n_unique() == rows.height  # the payer tells the two MD rows apart
        assert rows["metric"].to_list() == frame["metric_id"].to_list()
        assert rows["measure_id"].to_list() == frame["measure_id"].fill_null("").to_list()
        assert rows["published"].to_list() == [("false" if s else "true") for s in frame["suppressed"]]
    sources = json.loads((tmp_path / "audit" / "lineage_sources.json").read_text())
    by_metric = {(r["table"], r["metric"], r["payer"]): r for r in lineage.iter_rows(named=True) if r["table"] != "rates"}
    readmit = by_metric[("hospital_metrics", "HOSP_READMISSION", "all")]
    assert readmit["spec_version"] == "2024.9"  # the PCR spec's version in the manifest
    assert readmit["input_tables"] == ";".join(inputs["hospital:HOSP_READMISSION"])
    want = hashlib.sha256("".join(f"{t}={ {'members': SHA_MEMBERS, 'medical_claims': SHA_CLAIMS}.get(t, 'absent')}\n"
                                  for t in inputs["hospital:HOSP_READMISSION"]).encode()).hexdigest()
    assert readmit["input_set_sha256"] == want == sources["hospital:HOSP_READMISSION"]["input_set_sha256"]
    assert sources["hospital:HOSP_READMISSION"]["measure_id"] == "PCR"
    assert readmit["suite_versions"].startswith("members=2026.1;")
    rel = by_metric[("state_metrics", "REL_RACE_ETHNICITY", "all")]
    assert rel["spec_version"] == "" and rel["input_tables"] == "members;enrollment;sdoh_screenings"
    assert "measure_id" not in sources["state:REL_RACE_ETHNICITY"]
    # the suppression log counts the plan tables per metric
    log = _csv(tmp_path / "audit" / "suppression_log.csv")
    plan_log = {(r["table"], r["measure_id"], r["status"]): int(r["cells"]) for r in log if r["table"].endswith("_metrics")}
    assert plan_log == {("state_metrics", "PCR", "published"): 1, ("state_metrics", "PCR", "suppressed"): 1,
                        ("state_metrics", "REL_RACE_ETHNICITY", "suppressed"): 1,
                        ("hospital_metrics", "HOSP_READMISSION", "published"): 1,
                        ("hospital_metrics", "DUAL_SHARE", "published"): 1}
