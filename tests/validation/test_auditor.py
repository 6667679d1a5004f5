"""The auditor view: complete (every suite, expectation, hash, reconciliation), offline, counts only."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation import gx_runner
from equity_pipeline.validation.auditor import build_report, write_auditor_view
from equity_pipeline.validation.ingest import ingest_table
from tests.validation import planted

INPUT_TABLES = ("members", "enrollment", "medical_claims", "sdoh_screenings")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def run_folder(inp: Path, out: Path, *, with_gx: bool, ctx=None) -> tuple[dict, dict | None]:
    """Ingest (polars) every table of ``inp`` like the pipeline does, and optionally GX; as the assets do."""
    table_results, gx_results = {}, {}
    for t in TABLES:
        known = pl.scan_parquet(out / "restricted" / "tables" / "members.parquet") if t != "members" else None
        table_results[t] = ingest_table(t, inp, out / "restricted", parameters=planted.PARAMETERS, known_members=known).to_dict()
        (out / "validation").mkdir(parents=True, exist_ok=True)
        (out / "validation" / f"{t}.json").write_text(json.dumps(table_results[t]))
        if with_gx:
            gx_results[t] = gx_runner.run_table_cached(t, inp, out, planted.PARAMETERS, context=ctx)
    return table_results, (gx_results if with_gx else None)


def input_values(inp: Path) -> set[str]:
    """Every distinct cell value of the input files (the things that must never be shown)."""
    values: set[str] = set()
    for p in inp.glob("*.csv"):
        df = pl.read_csv(p, infer_schema=False)
        for c in df.columns:
            values.update(v.strip() for v in df[c].drop_nulls().to_list() if v.strip())
    return values


def suites_text() -> str:
    return "\n".join(load_suite(t).path.read_text() for t in TABLES)


def assert_no_input_values(text: str, values: set[str], *, min_len: int = 4) -> None:
    """No input value (long enough to be recognisable, and not also a constant of a suite) in ``text``."""
    constants = suites_text()
    leaked = sorted(v for v in values if len(v) >= min_len and v not in constants and v in text)
    assert leaked == [], leaked[:10]


@pytest.fixture(scope="module")
def auditor_run(tmp_path_factory, gx_ctx):
    root = tmp_path_factory.mktemp("auditor")
    inp, out = root / "input", root / "out"
    inp.mkdir()
    for t in INPUT_TABLES:
        planted.planted_table(t).write_csv(inp / f"{t}.csv")
    table_results, gx_results = run_folder(inp, out, with_gx=True, ctx=gx_ctx)
    path = write_auditor_view(out, table_results, gx_results)
    return {"inp": inp, "out": out, "html": path.read_text(), "json_text": (out / "validation" / "validation_report.json").read_text(),
            "report": json.loads((out / "validation" / "validation_report.json").read_text()),
            "table_results": table_results, "gx_results": gx_results}


def test_html_opens_offline(auditor_run):
    html = auditor_run["html"]
    assert not re.search(r"https?://", html, re.I)
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed", "base"), tag
        for name in ("src", "href", "action", "srcset"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
    assert "<style>" in html and "@import" not in html and "url(" not in html


def test_html_and_json_hold_no_input_values(auditor_run):
    values = input_values(auditor_run["inp"])
    for must in (*planted.PHI_NAMES[:2], *planted.PHI_BIRTH_DATES, *planted.KNOWN_MEMBERS[:5]):
        assert must in values  # the scan below is meaningful: these are in the input
    for text in (auditor_run["html"], auditor_run["json_text"]):
        for v in (*planted.PHI_NAMES, *planted.PHI_BIRTH_DATES, *planted.KNOWN_MEMBERS):
            assert v not in text
        assert_no_input_values(text, values)


def test_every_suite_and_expectation_listed(auditor_run):
    report, html = auditor_run["report"], auditor_run["html"]
    assert [t["table"] for t in report["tables"]] == list(TABLES)
    for entry in report["tables"]:
        suite = load_suite(entry["table"])
        assert entry["suite"]["version"] == suite.version and len(entry["suite"]["sha256"]) == 64
        assert [e["rule"] for e in entry["expectations"]] == [e["meta"]["rule"] for e in suite.expectations]
        assert f'id="t-{entry["table"]}"' in html and suite.version in html
        for e in entry["expectations"]:
            assert {"type", "column", "rule", "severity", "why", "result", "unexpected_count", "unexpected_percent", "thresholds"} <= set(e)
            assert e["rule"] in html
        if entry["input"]["present"]:
            assert entry["engine"] == "great_expectations"
            assert entry["input"]["sha256"] == auditor_run["table_results"][entry["table"]]["sha256"]
            assert entry["input"]["sha256"] in html
            assert all(e["result"] in ("pass", "fail") for e in entry["expectations"])
    members = next(t for t in report["tables"] if t["table"] == "members")
    dup = next(e for e in members["expectations"] if e["rule"] == "duplicate_member_id")
    assert dup["result"] == "fail" and dup["unexpected_count"] == 5 and dup["evaluated_on"] == "full_column"
    future = next(e for e in members["expectations"] if e["rule"] == "future_birth_date")
    assert future["thresholds"]["max_value"] == {"parameter": "run_date", "value": planted.RUN_DATE}


def test_reconciliation_per_table(auditor_run):
    report = auditor_run["report"]
    assert report["all_tables_reconcile"] is True
    for entry in report["tables"]:
        r, tr = entry["reconciliation"], auditor_run["table_results"][entry["table"]]
        assert (r["read"], r["used"], r["quarantined"]) == (tr["read"], tr["used"], tr["quarantined"])
        assert r["reconciles"] is True
        assert entry["quarantine_reasons"] == tr["rule_counts"]
    assert report["totals"]["read"] == sum(t["read"] for t in auditor_run["table_results"].values())


def test_polars_fallback_without_gx(auditor_run, tmp_path):
    """Without GX results the view still lists every expectation, with per-rule quarantine counts."""
    report = build_report(auditor_run["table_results"], None)
    members = next(t for t in report["tables"] if t["table"] == "members")
    assert members["engine"] == "polars"
    by_rule = {e["rule"]: e for e in members["expectations"]}
    assert by_rule["duplicate_member_id"]["result"] == "fail" and by_rule["duplicate_member_id"]["unexpected_count"] == 5
    assert by_rule["member_id_present"]["result"] == "pass"
    claims = next(t for t in report["tables"] if t["table"] == "medical_claims")
    icd = [e for e in claims["expectations"] if e["rule"] == "invalid_icd10cm"]
    assert len(icd) == 12 and all(e["unexpected_count"] is None and e["rule_shared_by"] == 12 for e in icd)
    absent = next(t for t in report["tables"] if t["table"] == "pharmacy_claims")
    assert all(e["result"] == "not evaluated" for e in absent["expectations"])
    path = write_auditor_view(tmp_path, auditor_run["table_results"], None)
    assert "polars evaluator" in path.read_text()


def test_untrusted_fields_are_dropped(auditor_run, tmp_path):
    """Values smuggled into results (value lists, messages, odd file names) never reach the page."""
    secret = "Quinzella-1957-03-19"
    tr = {t: dict(v) for t, v in auditor_run["table_results"].items()}
    tr["members"].update(file=f"{secret}.csv", sha256=secret, extra_columns=[secret], suite_version=secret,
                         rule_counts={**tr["members"]["rule_counts"], secret: 3})
    gx = {t: json.loads(json.dumps(v)) for t, v in auditor_run["gx_results"].items()}
    for o in gx["members"]["expectations"]:
        o.update(partial_unexpected_list=[secret], unexpected_list=[secret], error=o["error"] or None,
                 evaluated_on=o["evaluated_on"], why=secret, rule=secret, column=secret)
        o["thresholds"] = {k: {"parameter": "run_date", "value": secret} for k in o["thresholds"]}
    gx["members"]["expectations"][5]["error"] = f"ValueError: {secret}"
    gx["members"]["expectations"][6]["unexpected_count"] = secret
    path = write_auditor_view(tmp_path, tr, gx)
    for text in (path.read_text(), (tmp_path / "validation" / "validation_report.json").read_text()):
        assert secret not in text and "Quinzella" not in text


def test_gx_results_hold_counts_only(auditor_run):
    values = input_values(auditor_run["inp"])
    blob = json.dumps(auditor_run["gx_results"])
    assert_no_input_values(blob, values)
    for run in auditor_run["gx_results"].values():
        for o in run["expectations"]:
            assert set(o) == set(gx_runner.OUTCOME_FIELDS)
