"""The auditor view of a run's validation: ``<out>/validation/validation_report.json`` and ``index.html``.

For every suite: its version and file hash, the input file's name and SHA-256, the row reconciliation
(rows read = used + quarantined), quarantined rows per rule, and every expectation with its type,
column, rule id, severity, reason, settings (thresholds) and result: pass/fail, unexpected count and
percent. Results come from Great Expectations when ``gx_results`` has the table (see
:mod:`equity_pipeline.validation.gx_runner`), otherwise from the polars ingest's per-rule counts.

What GX evaluated is stated per table: every row (mode ``full``) or a seeded sample plus the rows the
polars evaluator found failing each expectation (mode ``sample``), with the numbers. Next to GX's
counts on the rows it evaluated, each expectation shows the polars evaluator's count over every row
(the authoritative count that decided quarantine) and whether both engines agree on the rows GX saw.

No data values, by construction: every text on the page comes from the suite files (types, columns,
rule ids, reasons, settings) or from fixed vocabularies; from ``table_results`` and ``gx_results``
only numbers, booleans, SHA-256 digests and validated identifiers are taken (a field that does not
look like what it should is dropped, not printed). Extra input columns are counted, not named (a
header can hold data when a file has none).

The HTML opens offline and air-gapped: inline CSS, no scripts, fonts, images or external links.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from equity_pipeline import __version__
from equity_pipeline.io import write_text_atomic
from equity_pipeline.suites import TABLES, Suite, load_suite
from equity_pipeline.validation.ingest import DUPLICATE_ROW, WRONG_FIELD_COUNT

REPORT_JSON = "validation_report.json"
INDEX_HTML = "index.html"
TEMPLATE_NAME = "auditor.html.j2"
DUPLICATE_ROW_WHY = "Exact copy of an earlier row; the first copy is validated, later copies are quarantined."
#: reasons the reader gives, not a suite expectation
READER_RULES_WHY = {
    DUPLICATE_ROW: DUPLICATE_ROW_WHY,
    WRONG_FIELD_COUNT: "The CSV row has fewer fields than the header line (e.g. a file cut short), so its values "
                       "cannot be placed in their columns.",
}

PHI_POLICY = (
    "This view holds counts only: no member identifier, name, date, code or any other value from the "
    "input files appears in it. Texts come from the suites in expectations/ (rule ids, reasons, settings); "
    "numbers are row counts. Member-level rows, including quarantined ones and their reasons, stay in "
    "restricted/ (owner-only permissions)."
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,80}$")
_EVALUATED_ON = {"header", "text", "typed", "full_column", "skipped"}
_FULL, _SAMPLE = "full", "sample"
_SAMPLE_FIELDS = ("seed", "table_rows", "random_rows", "failing_rows", "failing_rows_per_expectation", "rows_evaluated")
_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".txt")
_EVALUATED_ON_LABELS = {
    "header": "file header",
    "text": "text values (batched)",
    "typed": "parsed dates (batched)",
    "full_column": "whole column",
    "skipped": "column absent",
}


# ---------------------------------------------------------------------------------------------------
# sanitising helpers: only numbers, booleans and validated identifiers leave this module


def _count(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v if v >= 0 else None
    if isinstance(v, float) and v.is_integer() and v >= 0:
        return int(v)
    return None


def _pct(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return round(float(v), 4) if 0 <= v <= 100 else None


def _bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _sha(v: Any) -> str | None:
    return v if isinstance(v, str) and _SHA256.match(v) else None


def _ident(v: Any) -> str | None:
    return v if isinstance(v, str) and _IDENT.match(v) else None


def _seconds(v: Any) -> float | None:
    return round(float(v), 1) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None


def _file_name(v: Any, table: str) -> str | None:
    """The input file name, only when it is one the reader looks for (``<table>.<suffix>``)."""
    return v if isinstance(v, str) and v in {f"{table}{s}" for s in _SUFFIXES} else None


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json_safe(v: Any) -> Any:
    """Suite constants (thresholds) as JSON-safe values."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return str(v)


# ---------------------------------------------------------------------------------------------------
# building the report (JSON-safe dict)


def _thresholds(kwargs: dict[str, Any], parameters_seen: dict[str, Any] | None) -> dict[str, Any]:
    """Settings of an expectation from the suite; suite parameters shown by name (+ value if GX gave it)."""
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if k in ("column", "column_A", "column_B", "mostly"):
            continue
        if isinstance(v, dict) and "$PARAMETER" in v:
            name = str(v["$PARAMETER"])
            seen = (parameters_seen or {}).get(k)
            value = seen.get("value") if isinstance(seen, dict) else None
            # only short scalars: run_date, or a "N values" summary of a long list
            if not (isinstance(value, (int, float)) or (isinstance(value, str) and re.match(r"^(\d{4}-\d{2}-\d{2}|\d+ values)$", value))):
                value = None
            out[k] = {"parameter": name, "value": value}
        else:
            out[k] = _json_safe(v)
    return out


def _rule_owners(suite: Suite) -> dict[str, list[int]]:
    owners: dict[str, list[int]] = {}
    for i, e in enumerate(suite.expectations):
        owners.setdefault(e.get("meta", {}).get("rule", ""), []).append(i)
    return owners


def _expectation_rows(suite: Suite, table_result: dict[str, Any] | None, gx: list[dict[str, Any]] | None,
                      polars_on_gx_rows: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    gx_by_index = {}
    for o in gx or []:
        idx = _count(o.get("index")) if isinstance(o, dict) else None
        if idx is not None and idx < len(suite.expectations):
            gx_by_index[idx] = o
    rule_counts = (table_result or {}).get("rule_counts") or {}
    expectation_counts = (table_result or {}).get("expectation_counts") or {}
    expectation_counts = expectation_counts if isinstance(expectation_counts, dict) else {}
    polars_on_gx_rows = polars_on_gx_rows if isinstance(polars_on_gx_rows, dict) else {}
    owners = _rule_owners(suite)
    read = _count((table_result or {}).get("read"))
    has_file = bool(table_result) and table_result.get("file") is not None
    rows = []
    for i, e in enumerate(suite.expectations):
        kw, meta = e["kwargs"], e.get("meta", {})
        rule = meta.get("rule", "")
        row: dict[str, Any] = {
            "index": i, "type": e["type"], "column": kw.get("column") or kw.get("column_A"), "column_B": kw.get("column_B"),
            "rule": rule, "severity": meta.get("severity", "quarantine"), "why": meta.get("why", ""),
            "mostly": _json_safe(kw.get("mostly")),
            "quarantined_rows_for_rule": _count(rule_counts.get(rule)) if rule in rule_counts else (0 if has_file and e["type"] != "expect_column_to_exist" else None),
            "rule_shared_by": len(owners.get(rule, [])),
            # the polars evaluator over every row (authoritative; decided quarantine)
            "table_unexpected_count": _count(expectation_counts.get(str(i))),
        }
        o = gx_by_index.get(i)
        if o is not None:
            success = _bool(o.get("success"))
            error = _ident(o.get("error"))
            evaluated_on = o.get("evaluated_on") if o.get("evaluated_on") in _EVALUATED_ON else None
            row.update(
                engine="great_expectations", evaluated_on=evaluated_on, error=error,
                element_count=_count(o.get("element_count")), missing_count=_count(o.get("missing_count")),
                unexpected_count=_count(o.get("unexpected_count")), unexpected_percent=_pct(o.get("unexpected_percent")),
                unexpected_percent_total=_pct(o.get("unexpected_percent_total")),
                thresholds=_thresholds(kw, o.get("thresholds") if isinstance(o.get("thresholds"), dict) else None),
                result="error" if error else ("not evaluated" if success is None else ("pass" if success else "fail")),
            )
            polars_n = _count(polars_on_gx_rows.get(str(i)))
            row["polars_unexpected_on_gx_rows"] = polars_n
            row["engines_agree"] = None if polars_n is None or row["unexpected_count"] is None else polars_n == row["unexpected_count"]
        else:
            row.update(engine="polars", evaluated_on=None, error=None, element_count=read, missing_count=None,
                       unexpected_count=None, unexpected_percent=None, unexpected_percent_total=None, thresholds=_thresholds(kw, None),
                       polars_unexpected_on_gx_rows=None, engines_agree=None)
            if not has_file:
                row["result"] = "not evaluated"
            elif e["type"] == "expect_column_to_exist":
                row["result"] = "pass"  # the reader stops the run when a required column is missing
            else:
                n = row["quarantined_rows_for_rule"] or 0
                if row["rule_shared_by"] == 1:
                    row["unexpected_count"] = n
                    row["unexpected_percent_total"] = round(100.0 * n / read, 4) if read else None
                row["result"] = "pass" if n == 0 else "fail"
        rows.append(row)
    return rows


def _table_entry(table: str, table_result: dict[str, Any] | None, gx_run: Any) -> dict[str, Any]:
    suite = load_suite(table)
    tr = table_result or {}
    gx_list = gx_run.get("expectations") if isinstance(gx_run, dict) else gx_run
    gx_list = gx_list if isinstance(gx_list, list) else None
    read, used, quarantined = _count(tr.get("read")), _count(tr.get("used")), _count(tr.get("quarantined"))
    known_rules = set(_rule_owners(suite)) | set(READER_RULES_WHY)
    reasons = {}
    for rule, n in sorted((tr.get("rule_counts") or {}).items()):
        if rule in known_rules and _count(n) is not None:
            reasons[rule] = _count(n)
    why = {r: READER_RULES_WHY.get(r) or next(e["meta"].get("why", "") for e in suite.expectations if e.get("meta", {}).get("rule") == r)
           for r in reasons}
    polars_on_gx_rows = gx_run.get("polars_unexpected") if isinstance(gx_run, dict) else None
    expectations = _expectation_rows(suite, table_result, gx_list, polars_on_gx_rows)
    gx_meta = None
    if isinstance(gx_run, dict) and gx_list is not None:
        rows = _count(gx_run.get("rows"))
        mode = gx_run.get("mode") if gx_run.get("mode") in (_FULL, _SAMPLE) else _FULL
        sample = gx_run.get("sample") if isinstance(gx_run.get("sample"), dict) else {}
        gx_meta = {
            "rows": rows, "seconds": _seconds(gx_run.get("seconds")),
            "blocked": _bool(gx_run.get("blocked")), "input_sha256": _sha(gx_run.get("sha256")),
            "matches_input": None if _sha(gx_run.get("sha256")) is None and _sha(tr.get("sha256")) is None
            else _sha(gx_run.get("sha256")) == _sha(tr.get("sha256")),
            # what GX evaluated: every row, or a seeded sample (numbers only)
            "mode": mode,
            "rows_evaluated": _count(gx_run.get("rows_evaluated")) if "rows_evaluated" in gx_run else rows,
            "sample": {k: _count(sample.get(k)) for k in _SAMPLE_FIELDS} if mode == _SAMPLE else None,
            "engines_differ_on": sorted({r for r in (gx_run.get("gx_polars_differ") or []) if isinstance(r, str) and r in known_rules}),
        }
    elif gx_list is not None:
        gx_meta = {"rows": None, "seconds": None, "blocked": None, "input_sha256": None, "matches_input": None,
                   "mode": None, "rows_evaluated": None, "sample": None, "engines_differ_on": []}
    failed = [x for x in expectations if x["result"] in ("fail", "error")]
    return {
        "table": table,
        "suite": {"name": suite.name, "version": suite.version, "file": f"expectations/{suite.path.name}",
                  "sha256": _file_sha256(suite.path), "description": suite.description,
                  "ingest_used_this_version": None if tr.get("suite_version") is None else tr.get("suite_version") == suite.version},
        "input": {"file": _file_name(tr.get("file"), table), "sha256": _sha(tr.get("sha256")), "present": tr.get("file") is not None},
        "reconciliation": {"read": read, "used": used, "quarantined": quarantined,
                           "reconciles": None if None in (read, used, quarantined) else read == used + quarantined},
        "quarantine_reasons": reasons,
        "quarantine_reasons_why": why,
        "extra_column_count": len(tr.get("extra_columns") or []),
        "missing_optional_columns": [c for c in (tr.get("missing_optional_columns") or []) if c in suite.column_names],
        "engine": "great_expectations" if gx_list is not None else "polars",
        "gx": gx_meta,
        "expectations": expectations,
        "summary": {"expectations": len(expectations), "failed": len(failed),
                    "failed_block": sum(1 for x in failed if x["severity"] == "block"),
                    "failed_quarantine": sum(1 for x in failed if x["severity"] != "block")},
    }


def build_report(table_results: dict[str, dict], gx_results: dict[str, Any] | None) -> dict[str, Any]:
    """The auditor report as a JSON-safe dict (what ``validation_report.json`` holds).

    ``table_results``: table -> ``TableResult.to_dict()`` (``validation/<table>.json``).
    ``gx_results``: table -> list of GX outcomes (:func:`gx_runner.run_suite`) or the dict
    :func:`gx_runner.run_table` returns; None or a missing table -> polars per-rule counts.
    """
    gx_results = gx_results or {}
    tables = [t for t in TABLES if t in table_results or t in gx_results]
    entries = [_table_entry(t, table_results.get(t), gx_results.get(t)) for t in tables]
    recon = [e["reconciliation"]["reconciles"] for e in entries if e["input"]["present"]]
    return {
        "report": "equity_pipeline validation (auditor view)",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
        "phi_policy": PHI_POLICY,
        "all_tables_reconcile": all(r is True for r in recon) if recon else None,
        "totals": {
            "read": sum(e["reconciliation"]["read"] or 0 for e in entries),
            "used": sum(e["reconciliation"]["used"] or 0 for e in entries),
            "quarantined": sum(e["reconciliation"]["quarantined"] or 0 for e in entries),
        },
        "tables": entries,
    }


# ---------------------------------------------------------------------------------------------------
# rendering


def _fmt_int(v: Any) -> str:
    return "\u2014" if v is None else f"{v:,}"


def _fmt_pct(v: Any) -> str:
    if v is None:
        return "\u2014"
    if v == 0:
        return "0%"
    return f"{v:.2f}%" if v >= 0.01 else "<0.01%"


def _fmt_setting(v: Any) -> str:
    if isinstance(v, dict) and "parameter" in v:
        return f"${v['parameter']}" + (f" = {v['value']}" if v.get("value") is not None else "")
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    return json.dumps(v) if not isinstance(v, str) else v


def render_html(report: dict[str, Any]) -> str:
    env = Environment(loader=PackageLoader("equity_pipeline.validation", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(int=_fmt_int, pct=_fmt_pct, setting=_fmt_setting, short=lambda t: t.removeprefix("expect_"))
    return env.get_template(TEMPLATE_NAME).render(r=report, evaluated_on_labels=_EVALUATED_ON_LABELS)


def write_auditor_view(layout_root: Path, table_results: dict[str, dict], gx_results: dict[str, list[dict]] | None) -> Path:
    """Write ``<layout_root>/validation/validation_report.json`` and ``index.html``; returns the HTML path."""
    out = Path(layout_root) / "validation"
    report = build_report(table_results, gx_results)
    write_text_atomic(json.dumps(report, indent=2, sort_keys=False) + "\n", out / REPORT_JSON)
    path = out / INDEX_HTML
    write_text_atomic(render_html(report), path)
    return path
