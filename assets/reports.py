"""The report people read and the run manifest auditors read."""

import dagster as dg

from assets.constants import OWNERS, REPORTS_GROUP
from assets.ingest import table_assets
from assets.resources import PipelineResource
from assets.stratification import public_rates
from assets.validation import validation_report
from equity_pipeline import pipeline


@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"html"}, deps=[public_rates],
          description="report/index.html: self-contained page with rates by group, CI whiskers and suppression marks.")
def equity_report(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_report(pipeline_config.layout, pipeline_config.program, context.run.run_id))


@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"json"}, deps=[equity_report, validation_report, *table_assets],
          description="manifest.json: run id, input hashes, config, package versions, reconciled row and member counts.")
def run_manifest(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_manifest(pipeline_config.layout, pipeline_config.program, context.run.run_id, pipeline_config.input_path))
