"""What people read (report, workbook, completeness panel) and what auditors read (manifest, audit pack)."""

import dagster as dg

from assets.constants import OWNERS, REPORTS_GROUP
from assets.ingest import table_assets
from assets.resources import PipelineResource
from assets.stratification import disparities, public_rates
from assets.validation import validation_report
from equity_pipeline import pipeline
from equity_pipeline.publish import check_description


@dg.asset(
    group_name=REPORTS_GROUP, owners=OWNERS, kinds={"polars", "parquet", "csv"}, deps=["members"],
    description="public/completeness.parquet and .csv: how race/ethnicity (self-reported, imputed, declined, unknown) "
                "and language were collected, by reporting unit; small cells (1-10) and their complements suppressed.",
    check_specs=[dg.AssetCheckSpec("no_small_cells", asset="rel_completeness", blocking=True,
                                   description="no published count, total or remainder between 1 and 10"),
                 dg.AssetCheckSpec("completeness_thresholds", asset="rel_completeness", blocking=False,
                                   description="configured REL completeness levels (completeness_thresholds) per "
                                               "reporting unit: WARN below a warn level, ERROR below a fail level")],
)
def rel_completeness(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    meta = pipeline.build_completeness(pipeline_config.layout, pipeline_config.program)
    levels = pipeline.build_completeness_thresholds(pipeline_config.layout, pipeline_config.program)["summary"]
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(check_name="no_small_cells", passed=meta["small_cells"] == 0,
                                           metadata={"small_cells": meta["small_cells"]}, description=check_description(meta)),
                       dg.AssetCheckResult(check_name="completeness_thresholds", passed=levels["warn"] + levels["fail"] == 0,
                                           severity=dg.AssetCheckSeverity.ERROR if levels["fail"] else dg.AssetCheckSeverity.WARN,
                                           metadata={f"units_{k}": v for k, v in levels.items()})],
    )


@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"html"}, deps=[public_rates, disparities, rel_completeness],
          description="report/index.html: self-contained page with rates by group, CI whiskers, suppression marks, "
                      "largest significant gaps and rate-ratio forest plots (when disparities exist), REL completeness.")
def equity_report(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_report(pipeline_config.layout, pipeline_config.program, context.run.run_id))


@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"excel"},
          deps=[public_rates, disparities, rel_completeness, "state_metrics", "hospital_metrics"],
          description="report/equity_report.xlsx: one sheet per public table (rates, disparities, summary, completeness, "
                      "equity-plan state_metrics and hospital_metrics) plus README; frozen headers, number formats by "
                      "rate type, suppressed cells marked, autofilter.")
def equity_workbook(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_workbook(pipeline_config.layout, pipeline_config.program, context.run.run_id))


@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"json"}, deps=[public_rates],
          description="public/fhir/measure_reports.ndjson: the public rates as FHIR R4 MeasureReport resources (summary, "
                      "one per measure x period x unit; populations, measure score and stratifiers with strata); "
                      "suppressed cells carry no count or score (data-absent-reason 'masked').")
def fhir_measure_reports(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_fhir_measure_reports(pipeline_config.layout, pipeline_config.program, context.run.run_id))


# string deps: assets/equity_plans.py imports the stratification assets, not this module; strings keep
# the two modules free of each other
@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"html"}, deps=["state_metrics", "hospital_metrics"],
          description="report/state_plan.html: print-ready, self-contained filing document of the equity-plan tables: "
                      "per state and region PQI90 by race/ethnicity with CI, ratio to the reference and target status "
                      "(one chart per state), REL completeness, SDOH, TCOC; per facility readmission and ED revisit "
                      "gaps, safety-net shares, SDOH, REL completeness; suppressed cells labelled.")
def state_plan_report(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_state_plan(pipeline_config.layout, pipeline_config.program, context.run.run_id))


@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"json"}, deps=[equity_report, validation_report, *table_assets],
          description="manifest.json: run id, input hashes, config, package versions, reconciled row and member counts.")
def run_manifest(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_manifest(pipeline_config.layout, pipeline_config.program, context.run.run_id, pipeline_config.input_path))


@dg.asset(group_name=REPORTS_GROUP, owners=OWNERS, kinds={"csv", "json", "html"},
          deps=[run_manifest, validation_report, public_rates, disparities, rel_completeness, "state_metrics", "hospital_metrics"],
          description="audit/: validation summary, row and member reconciliation, suppression log, manifest copy and "
                      "lineage from every published cell (equity-plan rows included) to spec version, suite versions "
                      "and input hashes; counts only.")
def audit_pack(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_audit_pack(pipeline_config.layout, pipeline_config.program, context.run.run_id))


report_assets = [rel_completeness, equity_report, equity_workbook, state_plan_report, fhir_measure_reports, run_manifest, audit_pack]
