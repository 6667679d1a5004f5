"""``canonical_input``: the conversion step from a source format (Synthea CSV, FHIR R4) to the
canonical tables the ingest assets validate. For canonical input it is a no-op that points the
ingest assets at ``input_dir``. Metadata and the check carry counts and reason codes only."""

import dagster as dg

from assets.constants import INGEST_GROUP, OWNERS
from assets.resources import PipelineResource
from equity_pipeline import pipeline


@dg.asset(
    name="canonical_input",
    group_name=INGEST_GROUP,
    owners=OWNERS,
    kinds={"polars", "parquet"},
    description=(
        "Maps the input folder from its source format (resource setting `source`: canonical, synthea, fhir) to the canonical "
        "tables under restricted/canonical_input/ (owner-only); canonical input is read where it is. Every source row is "
        "mapped or quarantined with a reason: validation/source_reconciliation.json (in manifest.json under `source`)."
    ),
    check_specs=[dg.AssetCheckSpec("source_rows_reconcile", asset="canonical_input", blocking=True,
                                   description="per source file: rows read = rows mapped + rows quarantined")],
)
def canonical_input(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    result = pipeline.convert_input(pipeline_config.source, pipeline_config.source_input_path, pipeline_config.layout)
    for code in result["warnings"]:
        context.log.warning(f"source {result['source']}: {code}")
    per_file = {k: {"read": v["read"], "mapped": v["mapped"], "quarantined": v["quarantined"]} for k, v in result["files"].items()}
    return dg.MaterializeResult(
        metadata={
            "source": result["source"],
            **result["totals"],
            "warnings": dg.MetadataValue.json(sorted(result["warnings"])),
            "files": dg.MetadataValue.json(per_file),
            "tables_written": dg.MetadataValue.json(result["tables_written"]),
        },
        check_results=[dg.AssetCheckResult(check_name="source_rows_reconcile", passed=bool(result["reconciles"]),
                                           metadata={"files": len(per_file), **result["totals"]})],
    )
