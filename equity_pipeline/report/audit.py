"""The auditor's pack, ``audit/``: what was read, what was checked, what was published and withheld.

Files (CSV for tables, JSON for the same content with its structure, one offline HTML index):

=============================  =====================================================================
file                           contents
=============================  =====================================================================
``index.html``                 overview and every table below, self-contained (no scripts, no links out)
``manifest.json``              copy of the run manifest
``validation_summary.csv``     per input table: file, SHA-256, suite version and hash, rows read /
                               used / quarantined, expectations run and failed
``validation_rules.csv``       per rule: table, rule id, expectation, column name, severity, result,
                               rows quarantined by it, unexpected count
``validation_summary.json``    both of the above
``row_reconciliation.csv``     per input table: read = used + quarantined (and the medical-claims
                               adjudication: final, superseded, voided)
``member_reconciliation.csv``  per measure: members in = not eligible + excluded + denominator
``reconciliation.json``        both, with the per-reason counts
``suppression_log.csv/.json``  per published table and measure: cells published and suppressed, by
                               reason (primary ``small cell (1-10)`` or ``complementary``, from the
                               restricted suppression logs where the run has them: the public tables
                               give one reason, ``cell-size policy``, for every suppressed cell)
``lineage.csv``                one row per published cell (measure_id, submeasure, unit, payer, stratifier,
                               stratum[, metric]; equity-plan rows: metric = metric_id, measure_id = the
                               spec behind it) -> its measure spec version, the input tables it was
                               computed from, their suite versions and ``input_set_sha256``, the
                               SHA-256 of those tables' file hashes (see :func:`input_set_sha256`)
``lineage_sources.json``       per measure: spec version, input set hash and, per input table, file
                               name, file SHA-256, suite version and suite file SHA-256
``checksums.sha256``           SHA-256 of every other file (``sha256sum -c checksums.sha256``)
=============================  =====================================================================

Counts only: nothing here comes from a member-level row. The pack holds whole-population counts
(the same as ``manifest.json`` and ``counts/``), which can be small (e.g. a measure's 3 excluded
members), so it is for auditors, not for publication; the stratified figures in it are the public,
suppressed ones, plus how many suppressed cells of each table and measure are primary and how many
complementary (counts only: which cell is which stays in ``restricted/suppression/``).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline.io import sha256_file

#: Tables with a ``suppressed`` column that the suppression log and lineage cover, in order.
PUBLIC_TABLES: tuple[str, ...] = ("rates", "disparities", "disparity_summary", "completeness", "state_metrics", "hospital_metrics")
#: Tables with these columns are equity-plan tables: a cell's sources are its metric's (``<plan>:<metric_id>``)
PLAN_COLUMNS: tuple[str, ...] = ("plan", "metric_id")

FILES: dict[str, str] = {
    "index.html": "This overview (offline, self-contained).",
    "manifest.json": "Copy of the run manifest: run id, inputs with SHA-256, config, package and suite versions, reconciled counts.",
    "validation_summary.csv": "Per input table: file, SHA-256, suite version and hash, rows read, used and quarantined, expectations failed.",
    "validation_rules.csv": "Per validation rule: severity, result and the number of rows it quarantined.",
    "validation_summary.json": "The validation summary and rules as JSON.",
    "row_reconciliation.csv": "Per input table: rows read = used + quarantined; medical-claims adjudication counts.",
    "member_reconciliation.csv": "Per measure: members in = not eligible + excluded + denominator.",
    "reconciliation.json": "Both reconciliations as JSON, with counts per reason.",
    "suppression_log.csv": "Per public table and measure: cells published and suppressed, by reason (primary or complementary).",
    "suppression_log.json": "The suppression log as JSON.",
    "lineage.csv": "One row per published cell: measure spec version, input tables, suite versions, hash of the input files.",
    "lineage_sources.json": "Per measure: spec version, input set hash, input tables with file names, SHA-256, suite versions and hashes.",
    "checksums.sha256": "SHA-256 of every other file in this folder (sha256sum -c checksums.sha256).",
}

LINEAGE_COLUMNS: tuple[str, ...] = (
    "table", "measure_id", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum", "metric", "published",
    "measure_version", "spec_version", "input_tables", "suite_versions", "input_set_sha256",
)


# ---------------------------------------------------------------------------------------------------
# pieces (pure: dicts and frames in, rows out)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def validation_summary(validation_dir: Path, tables: Iterable[str]) -> dict[str, Any]:
    """Per-table and per-rule validation counts from ``validation/<table>.json`` and, when present,
    ``validation/validation_report.json`` (the auditor view: suite hashes, expectation results)."""
    validation_dir = Path(validation_dir)
    report = _read_json(validation_dir / "validation_report.json") or {}
    by_table = {t.get("table"): t for t in report.get("tables", []) if isinstance(t, dict)}
    table_rows, rule_rows = [], []
    for table in tables:
        result = _read_json(validation_dir / f"{table}.json")
        entry = by_table.get(table) or {}
        if result is None and not entry:
            continue
        result = result or {}
        recon = entry.get("reconciliation") or {}
        read, used, quarantined = (_int(result.get(k, recon.get(k))) for k in ("read", "used", "quarantined"))
        suite = entry.get("suite") or {}
        summary = entry.get("summary") or {}
        table_rows.append({
            "table": table,
            "file": Path(str(result.get("file") or (entry.get("input") or {}).get("file") or "")).name,
            "sha256": result.get("sha256") or (entry.get("input") or {}).get("sha256") or "",
            "suite_version": result.get("suite_version") or suite.get("version") or "",
            "suite_sha256": suite.get("sha256") or "",
            "read": read, "used": used, "quarantined": quarantined,
            "reconciles": None if None in (read, used, quarantined) else read == used + quarantined,
            "expectations": _int(summary.get("expectations")),
            "expectations_failed": _int(summary.get("failed")),
            "failed_blocking": _int(summary.get("failed_block")),
            "extra_columns": len(result.get("extra_columns") or []) if "extra_columns" in result else _int(entry.get("extra_column_count")),
            "missing_optional_columns": len(result.get("missing_optional_columns") or entry.get("missing_optional_columns") or []),
            "engine": entry.get("engine") or "",
        })
        rule_counts = result.get("rule_counts") or entry.get("quarantine_reasons") or {}
        seen = set()
        for e in entry.get("expectations") or []:
            rule = e.get("rule") or ""
            seen.add(rule)
            rule_rows.append({
                "table": table, "rule": rule, "expectation": e.get("type") or "", "column": e.get("column") or "",
                "severity": e.get("severity") or "", "result": e.get("result") or "",
                "quarantined_rows": _int(rule_counts.get(rule, e.get("quarantined_rows_for_rule"))),
                "unexpected_count": _int(e.get("unexpected_count")),
            })
        for rule, n in sorted(rule_counts.items()):  # rules without an expectation row (e.g. duplicates)
            if rule not in seen:
                rule_rows.append({"table": table, "rule": rule, "expectation": "", "column": "", "severity": "quarantine",
                                  "result": "fail" if n else "pass", "quarantined_rows": _int(n), "unexpected_count": None})
    return {
        "all_tables_reconcile": all(r["reconciles"] for r in table_rows if r["reconciles"] is not None),
        "source": "validation/<table>.json" + (" and validation/validation_report.json" if report else ""),
        "tables": table_rows,
        "rules": rule_rows,
    }


ADJUDICATION_KEYS = ("final", "superseded", "voided")


def reconciliation(manifest: dict[str, Any]) -> dict[str, Any]:
    """Row reconciliation per input table and member reconciliation per measure, from the manifest."""
    tables = []
    for name, t in (manifest.get("tables") or {}).items():
        read, used, quarantined = (_int(t.get(k)) for k in ("read", "used", "quarantined"))
        adj = t.get("adjudication") or {}
        tables.append({
            "table": name, "read": read, "used": used, "quarantined": quarantined,
            "reconciles": None if None in (read, used, quarantined) else read == used + quarantined,
            **{f"adjudication_{k}": _int(adj.get(k)) for k in ADJUDICATION_KEYS},
            "quarantine_reasons": {str(k): _int(v) for k, v in (t.get("rules") or {}).items()},
        })
    measures = []
    for mid, m in (manifest.get("measures") or {}).items():
        not_eligible = {str(k): _int(v) for k, v in (m.get("not_eligible") or {}).items()}
        excluded = {str(k): _int(v) for k, v in (m.get("excluded") or {}).items()}
        members_in, den = _int(m.get("members_in")), _int(m.get("denominator"))
        total_ne, total_ex = sum(v or 0 for v in not_eligible.values()), sum(v or 0 for v in excluded.values())
        measures.append({
            "measure_id": mid, "measure_version": m.get("measure_version") or "", "period": str(m.get("period") or ""),
            "members_in": members_in, "not_eligible": total_ne, "excluded": total_ex, "denominator": den,
            "numerator": _int(m.get("numerator")),
            "reconciles": None if None in (members_in, den) else members_in == total_ne + total_ex + den,
            "not_eligible_by_reason": not_eligible, "excluded_by_reason": excluded,
        })
    return {
        "all_tables_reconcile": all(t["reconciles"] for t in tables if t["reconciles"] is not None),
        "all_measures_reconcile": all(m["reconciles"] for m in measures if m["reconciles"] is not None),
        "tables": tables,
        "measures": measures,
    }


def _measure_key(frame: pl.DataFrame) -> str:
    if set(PLAN_COLUMNS) <= set(frame.columns):
        return "metric_id"  # plan tables: per metric (its measure_id is null for e.g. REL completeness)
    return "measure_id" if "measure_id" in frame.columns else ("attribute" if "attribute" in frame.columns else "")


def plan_source_key(plan: str, metric_id: str) -> str:
    """The ``lineage_sources.json`` key of an equity-plan metric: ``state:PQI90``, ``hospital:HOSP_READMISSION``."""
    return f"{plan}:{metric_id}"


def suppression_log(tables: dict[str, pl.DataFrame], details: dict[str, pl.DataFrame] | None = None) -> list[dict[str, Any]]:
    """Cells per public table x measure x status (published / suppressed) x reason.

    The public tables give one reason for every suppressed cell (``suppression.PUBLIC_REASON``).
    ``details`` maps a table name to its restricted suppression log (``suppression.suppression_detail``:
    the cell key and ``suppression_reason``, primary or complementary); a suppressed cell found there
    is counted under that reason instead. Only the counts leave the restricted log."""
    details = details or {}
    rows = []
    for name, frame in tables.items():
        if "suppressed" not in frame.columns:
            continue
        key = _measure_key(frame)
        reason = pl.col("suppression_reason") if "suppression_reason" in frame.columns else pl.lit(None, pl.String)
        detail = details.get(name)
        on = [c for c in detail.columns if c != "suppression_reason"] if detail is not None else []
        if detail is not None and "suppression_reason" in detail.columns and on and set(on) <= set(frame.columns):
            kinds = (detail.select(*[pl.col(c).cast(pl.String) for c in on], _kind=pl.col("suppression_reason").cast(pl.String))
                     .unique(subset=on, keep="first"))
            frame = frame.join(kinds, left_on=[pl.col(c).cast(pl.String) for c in on], right_on=on, how="left", suffix="_detail")
            reason = pl.coalesce(pl.col("_kind"), reason)
        grouped = (frame.select(measure_id=pl.col(key).cast(pl.String) if key else pl.lit(""),
                                status=pl.when(pl.col("suppressed")).then(pl.lit("suppressed")).otherwise(pl.lit("published")),
                                reason=pl.when(pl.col("suppressed")).then(reason.fill_null("not stated")).otherwise(pl.lit("")))
                   .group_by("measure_id", "status", "reason").agg(cells=pl.len())
                   .sort("measure_id", "status", "reason"))
        rows += [{"table": name, **r} for r in grouped.iter_rows(named=True)]
    return rows


def _col(frame: pl.DataFrame, *names: str, default: str = "") -> pl.Expr:
    for n in names:
        if n in frame.columns:
            return pl.col(n).cast(pl.String).fill_null("")
    return pl.lit(default)


def lineage(tables: dict[str, pl.DataFrame], sources: dict[str, dict[str, Any]]) -> pl.DataFrame:
    """One row per published cell (suppressed ones too, flagged ``published = false``).

    ``sources`` maps a measure id (or, for completeness, the attribute; for an equity-plan metric
    :func:`plan_source_key`) to ``{"spec_version", "inputs": [{"table", "sha256", "suite_version", ...}]}``.
    Equity-plan rows (tables with ``plan`` and ``metric_id``) give the metric as ``metric``, the
    measure spec behind it (if any) as ``measure_id``, and their ``payer``."""
    parts = []
    for name, frame in tables.items():
        plan = set(PLAN_COLUMNS) <= set(frame.columns)
        key = "measure_id" if plan else _measure_key(frame)
        measure = _col(frame, key) if key else pl.lit("")
        cells = frame.select(
            table=pl.lit(name),
            measure_id=measure,
            submeasure=_col(frame, "submeasure", default="all"),
            unit_level=_col(frame, "unit_level", default="population"),
            unit_id=_col(frame, "unit_id", default="all"),
            payer=_col(frame, "payer"),
            stratifier=_col(frame, "stratifier", "attribute"),
            stratum=_col(frame, "stratum", "group", "category"),
            metric=_col(frame, "metric_id") if plan else _col(frame, "metric", "summary_measure"),
            published=~pl.col("suppressed") if "suppressed" in frame.columns else pl.lit(True),
            measure_version=_col(frame, "measure_version"),
            _source=(pl.concat_str([_col(frame, "plan"), pl.lit(":"), _col(frame, "metric_id")]) if plan else measure),
        )
        parts.append(cells)
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in LINEAGE_COLUMNS})
    cells = pl.concat(parts, how="vertical_relaxed")
    meta = pl.DataFrame(
        [(k, str(v.get("spec_version") or ""),
          ";".join(i["table"] for i in v.get("inputs", [])),
          ";".join(f"{i['table']}={i.get('suite_version') or ''}" for i in v.get("inputs", [])),
          str(v.get("input_set_sha256") or ""))
         for k, v in sources.items()],
        schema={"_source": pl.String, "spec_version": pl.String, "input_tables": pl.String,
                "suite_versions": pl.String, "input_set_sha256": pl.String},
        orient="row",
    )
    return cells.join(meta, on="_source", how="left").with_columns(
        pl.col(c).fill_null("") for c in ("spec_version", "input_tables", "suite_versions", "input_set_sha256")
    ).select(LINEAGE_COLUMNS)


def input_set_sha256(inputs: list[dict[str, Any]]) -> str:
    """One hash for a set of input files: SHA-256 of the UTF-8 text with one line ``table=sha256``
    per input table in the listed order (``absent`` for a table without a file), each line ending
    in a newline. Recompute it from ``lineage_sources.json`` to check a cell's inputs."""
    text = "".join(f"{i['table']}={i.get('sha256') or 'absent'}\n" for i in inputs)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lineage_sources(manifest: dict[str, Any], measure_inputs: dict[str, list[str]],
                    suite_hashes: dict[str, str] | None = None, spec_of: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Per measure (or completeness attribute, or equity-plan metric): spec version and, per input
    table it was computed from, the file name, its SHA-256 and the suite version (and suite file hash)
    it was validated with. ``spec_of`` maps a key that is not itself a measure id (a plan metric,
    :func:`plan_source_key`) to the measure whose spec version it carries; such entries also say
    ``measure_id``."""
    spec_of = spec_of or {}
    files = {i.get("table"): i for i in manifest.get("inputs") or []}
    suites = manifest.get("suites") or {}
    specs = manifest.get("measure_specs") or {}
    suite_hashes = suite_hashes or {}
    out = {}
    for mid, tables in measure_inputs.items():
        out[mid] = {
            **({"measure_id": spec_of[mid]} if mid in spec_of else {}),
            "spec_version": specs.get(spec_of.get(mid, mid), ""),
            "inputs": [{
                "table": t,
                "file": Path(str((files.get(t) or {}).get("file") or "")).name or None,
                "sha256": (files.get(t) or {}).get("sha256"),
                "suite_version": suites.get(t),
                "suite_sha256": suite_hashes.get(t),
            } for t in tables],
        }
        out[mid]["input_set_sha256"] = input_set_sha256(out[mid]["inputs"])
    return out


# ---------------------------------------------------------------------------------------------------
# writing


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else ("true" if r.get(k) is True else "false" if r.get(k) is False else r.get(k)))
                    for k in columns})
    return buf.getvalue()


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("equity_pipeline.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["n"] = lambda v: "" if v is None else f"{v:,}"  # counts with thousands separators
    return env


def _pivot(log: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Suppression log as one row per table x measure with a column per reason."""
    reasons = sorted({r["reason"] for r in log if r["status"] == "suppressed"})
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in log:
        row = rows.setdefault((r["table"], r["measure_id"]), {"table": r["table"], "measure_id": r["measure_id"],
                                                               "cells": 0, "published": 0, **{x: 0 for x in reasons}})
        row["cells"] += r["cells"]
        if r["status"] == "published":
            row["published"] += r["cells"]
        else:
            row[r["reason"]] += r["cells"]
    return reasons, list(rows.values())


def write_audit_pack(out_dir: Path, *, manifest: dict[str, Any], manifest_path: Path | None, validation_dir: Path,
                     tables: dict[str, pl.DataFrame], measure_inputs: dict[str, list[str]],
                     input_tables: Iterable[str], suppression_details: dict[str, pl.DataFrame] | None = None,
                     spec_of: dict[str, str] | None = None) -> dict[str, Any]:
    """Write the pack into ``out_dir`` (replaced whole: built in a temporary sibling folder, then
    swapped in). ``tables`` are the public tables present (name -> frame); ``measure_inputs`` maps
    each measure id (and completeness attribute) to the input tables it was computed from;
    ``suppression_details`` the restricted suppression logs (name -> frame, see :func:`suppression_log`)
    that the suppression log counts primary and complementary cells from; ``spec_of`` maps plan-metric
    source keys to their measure (see :func:`lineage_sources`)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        validation = validation_summary(validation_dir, input_tables)
        recon = reconciliation(manifest)
        log = suppression_log(tables, suppression_details)
        suite_hashes = {t["table"]: t["suite_sha256"] for t in validation["tables"] if t.get("suite_sha256")}
        sources = lineage_sources(manifest, measure_inputs, suite_hashes, spec_of)
        cells = lineage(tables, sources)

        def put(name: str, text: str) -> None:
            (tmp / name).write_text(text, encoding="utf-8")

        if manifest_path is not None and Path(manifest_path).is_file():
            shutil.copyfile(manifest_path, tmp / "manifest.json")
        else:
            put("manifest.json", _json_text(manifest))
        table_cols = ["table", "file", "sha256", "suite_version", "suite_sha256", "read", "used", "quarantined", "reconciles",
                      "expectations", "expectations_failed", "failed_blocking", "extra_columns", "missing_optional_columns", "engine"]
        rule_cols = ["table", "rule", "expectation", "column", "severity", "result", "quarantined_rows", "unexpected_count"]
        put("validation_summary.csv", _csv_text(validation["tables"], table_cols))
        put("validation_rules.csv", _csv_text(validation["rules"], rule_cols))
        put("validation_summary.json", _json_text(validation))
        recon_cols = ["table", "read", "used", "quarantined", "reconciles", *[f"adjudication_{k}" for k in ADJUDICATION_KEYS]]
        member_cols = ["measure_id", "measure_version", "period", "members_in", "not_eligible", "excluded", "denominator",
                       "numerator", "reconciles"]
        put("row_reconciliation.csv", _csv_text(recon["tables"], recon_cols))
        put("member_reconciliation.csv", _csv_text(recon["measures"], member_cols))
        put("reconciliation.json", _json_text(recon))
        put("suppression_log.csv", _csv_text(log, ["table", "measure_id", "status", "reason", "cells"]))
        put("suppression_log.json", _json_text(log))
        cells.write_csv(tmp / "lineage.csv")
        put("lineage_sources.json", _json_text(sources))

        mismatched = cells.filter((pl.col("measure_version") != "") & (pl.col("spec_version") != "")
                                  & (pl.col("measure_version") != pl.col("spec_version"))).height
        reasons, pivot = _pivot(log)
        listed = [(name, FILES[name], (tmp / name).stat().st_size, sha256_file(tmp / name))
                  for name in FILES if name not in ("index.html", "checksums.sha256") and (tmp / name).is_file()]
        published = sum(r["cells"] for r in log if r["status"] == "published")
        suppressed = sum(r["cells"] for r in log if r["status"] == "suppressed")
        html = _environment().get_template("audit.html.j2").render(
            run_id=str(manifest.get("run_id", "")), created_at=str(manifest.get("created_at", "")),
            package_version=str(manifest.get("package_version", "")),
            validation=validation, recon=recon, reasons=reasons, pivot=pivot, sources=sources,
            files=[{"name": n, "description": d, "size": s, "sha256": h} for n, d, s, h in listed],
            cells=cells.height, published=published, suppressed=suppressed, version_mismatches=mismatched,
            tables=list(tables),
        )
        put("index.html", html)
        sums = "".join(f"{sha256_file(tmp / n)}  {n}\n" for n in FILES if n != "checksums.sha256" and (tmp / n).is_file())
        put("checksums.sha256", sums)
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; the pack's files keep the umask's mode
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return {
        "files": len(FILES),
        "cells": cells.height,
        "published": published,
        "suppressed": suppressed,
        "tables_reconcile": recon["all_tables_reconcile"] and validation["all_tables_reconcile"],
        "measures_reconcile": recon["all_measures_reconcile"],
        "spec_version_mismatches": mismatched,
    }
