"""One asset per canonical input table: validated rows in restricted/tables, the rest quarantined."""

import dagster as dg

from assets.constants import INGEST_GROUP, OWNERS
from assets.resources import PipelineResource
from equity_pipeline import pipeline
from equity_pipeline.suites import TABLES, load_suite


def build_table_asset(table: str) -> dg.AssetsDefinition:
    suite = load_suite(table)

    @dg.asset(
        name=table,
        group_name=INGEST_GROUP,
        owners=OWNERS,
        deps=["canonical_input"] if table == "members" else ["members"],
        description=f"{suite.description} Validated against expectations/{table}.json (suite {suite.version}); failing rows go to restricted/quarantine/{table}.parquet.",
        check_specs=[dg.AssetCheckSpec("rows_reconcile", asset=table, blocking=True, description="rows read = rows used + rows quarantined")],
        kinds={"polars", "parquet"},
    )
    def _asset(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
        result = pipeline.ingest(table, pipeline_config.input_path, pipeline_config.layout, pipeline_config.program)
        counts = {k: result[k] for k in ("read", "used", "quarantined")}
        return dg.MaterializeResult(
            metadata={**counts, "suite_version": result["suite_version"], "quarantine_reasons": result["rule_counts"]},
            check_results=[dg.AssetCheckResult(check_name="rows_reconcile", passed=counts["read"] == counts["used"] + counts["quarantined"], metadata=counts)],
        )

    return _asset


table_assets = [build_table_asset(t) for t in TABLES]
