"""Great Expectations asset checks on the input tables, and the auditor view (group ``validation``).

``gx_<table>``: runs the table's suite in GX 1.x on the same normalised text frame the polars ingest
validated (counts only, never values) and reports per-rule unexpected counts as metadata. GX runs on
every row of tables up to ``EQUITY_GX_FULL_ROWS`` rows; on larger tables on a seeded sample plus the
rows the polars evaluator found failing each expectation (``gx_runner.Sampling``); the metadata says
which (``gx_mode``, ``gx_rows_evaluated``, ``gx_sample``). The polars evaluator's counts over every
row (``quarantined_rows_by_rule``) are the authoritative ones.
Severity: WARN when quarantine-level rules failed (those rows are already quarantined, the run goes
on); ERROR when a block-level rule failed or GX could not evaluate an expectation. A check is
``blocking`` only if its suite has block-level *row* rules: block-level structural rules (required
columns) are enforced by the ingest asset itself, which fails before any check runs, so making every
GX check blocking would only put GX's run time on the critical path of the measures.

``validation_report``: writes ``validation/validation_report.json`` and ``validation/index.html``.
GX results are shared with the checks through ``validation/gx/<table>.json`` (reused when the input,
suite, parameters and members are unchanged; computed otherwise).

GX is imported inside the check bodies (``import great_expectations`` costs ~4-5 s).
"""

import json

import dagster as dg

from assets.constants import OWNERS, VALIDATION_GROUP
from assets.resources import PipelineResource
from equity_pipeline import pipeline
from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation.gx_runner import STRUCTURAL_TYPES


def _blocking(table: str) -> bool:
    return any(
        e.get("meta", {}).get("severity") == "block" and e["type"] not in STRUCTURAL_TYPES
        for e in load_suite(table).expectations
    )


def build_gx_check(table: str) -> dg.AssetChecksDefinition:
    suite = load_suite(table)

    @dg.asset_check(
        asset=table,
        name=f"gx_{table}",
        blocking=_blocking(table),
        description=(
            f"Great Expectations 1.x runs expectations/{table}.json (suite {suite.version}) on the normalised input: "
            "every row of a small table; on a large one a seeded sample plus rows the polars evaluator found failing "
            "each expectation (metadata gx_mode, gx_rows_evaluated). "
            "WARN: quarantine-level rules failed (rows quarantined, run continues); ERROR: a block-level rule failed. "
            "Metadata: counts per rule only."
        ),
    )
    def _check(pipeline_config: PipelineResource) -> dg.AssetCheckResult:
        from equity_pipeline.validation import gx_runner

        layout, program = pipeline_config.layout, pipeline_config.program
        run = gx_runner.run_table_cached(table, pipeline_config.input_path, layout.root, pipeline.suite_parameters(program))
        summary = gx_runner.summarize(run["expectations"])
        ingest_path = layout.table_result(table)
        rule_counts = json.loads(ingest_path.read_text())["rule_counts"] if ingest_path.is_file() else {}
        on_rows = list(run.get("gx_polars_differ") or [])  # same rows, both engines
        full = run.get("mode", gx_runner.FULL) == gx_runner.FULL
        disagree = sorted({*on_rows, *(gx_runner.compare_with_ingest(run["expectations"], rule_counts) if run["file"] and full else [])})
        failed = summary["failed"] > 0
        severity = dg.AssetCheckSeverity.ERROR if (summary["failed_block"] or summary["errors"]) else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(
            passed=not failed,
            severity=severity,
            metadata={
                "rows": run["rows"],
                "input_present": run["file"] is not None,
                "gx_mode": run.get("mode", gx_runner.FULL),
                "gx_rows_evaluated": run.get("rows_evaluated", run["rows"]),
                "gx_sample": dg.MetadataValue.json(run.get("sample") or {}),
                "quarantined_rows_by_rule": dg.MetadataValue.json(rule_counts),
                "suite_version": run["suite_version"],
                "expectations_evaluated": summary["evaluated"],
                "failed_expectations": summary["failed"],
                "failed_block_rules": dg.MetadataValue.json(summary["failed_block"]),
                "failed_quarantine_rules": dg.MetadataValue.json(summary["failed_quarantine"]),
                "gx_errors": dg.MetadataValue.json(summary["errors"]),
                "unexpected_rows_by_rule": dg.MetadataValue.json(summary["unexpected_by_rule"]),
                "rules_where_gx_and_ingest_differ": dg.MetadataValue.json(disagree),
                "rules_where_gx_and_polars_differ_on_evaluated_rows": dg.MetadataValue.json(on_rows),
                "gx_seconds": float(run["seconds"]),
            },
        )

    return _check


gx_checks = [build_gx_check(t) for t in TABLES]


@dg.asset(
    name="validation_report",
    group_name=VALIDATION_GROUP,
    owners=OWNERS,
    kinds={"html", "json"},
    deps=list(TABLES),
    description=(
        "validation/index.html and validation_report.json for auditors: every suite, its version and the input file "
        "hashes, every expectation with its GX result (unexpected count and percent), row reconciliation per table. "
        "Counts only; opens offline."
    ),
)
def validation_report(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    from equity_pipeline.validation import gx_runner
    from equity_pipeline.validation.auditor import REPORT_JSON, write_auditor_view

    layout, program = pipeline_config.layout, pipeline_config.program
    parameters = pipeline.suite_parameters(program)
    table_results = {t: json.loads(layout.table_result(t).read_text()) for t in TABLES if layout.table_result(t).is_file()}
    gx_results = {t: gx_runner.run_table_cached(t, pipeline_config.input_path, layout.root, parameters) for t in table_results}
    path = write_auditor_view(layout.root, table_results, gx_results)
    report = json.loads((path.parent / REPORT_JSON).read_text())
    return dg.MaterializeResult(
        metadata={
            "path": str(path.relative_to(layout.root)),
            "tables": len(report["tables"]),
            "all_tables_reconcile": report["all_tables_reconcile"] is True,
            "failed_expectations": sum(t["summary"]["failed"] for t in report["tables"]),
            "failed_block_expectations": sum(t["summary"]["failed_block"] for t in report["tables"]),
        }
    )


validation_assets = [validation_report]
