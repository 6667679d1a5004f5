"""Invariant checks on the run's outputs (blocking: a failure fails the run).

``no_small_cells`` lives with ``public_rates`` (assets/stratification.py); the manifest's
reconciliation is checked here, after ``run_manifest`` wrote it.
"""

import dagster as dg

from assets.reports import run_manifest
from assets.resources import PipelineResource
from equity_pipeline import pipeline


@dg.asset_check(
    asset=run_manifest,
    name="manifest_reconciles",
    blocking=True,
    description=(
        "manifest.json adds up: every input table has rows read = used + quarantined (medical claim lines "
        "used = final + superseded + voided); every configured measure has members in = members used = "
        "not eligible + excluded + denominator, and numerator <= denominator. Metadata: counts, table names and measure ids only."
    ),
)
def manifest_reconciles(pipeline_config: PipelineResource) -> dg.AssetCheckResult:
    result = pipeline.manifest_reconciliation(pipeline_config.layout, pipeline_config.program)
    return dg.AssetCheckResult(
        passed=result["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "tables_checked": result["tables_checked"],
            "tables_not_reconciling": result["tables_not_reconciling"],
            "measures_checked": result["measures_checked"],
            "measures_not_reconciling": result["measures_not_reconciling"],
            "failing_tables": dg.MetadataValue.json(result["failing_tables"]),
            "failing_measures": dg.MetadataValue.json(result["failing_measures"]),
        },
    )


invariant_checks = [manifest_reconciles]
