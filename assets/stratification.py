"""Stratified counts (restricted) and the suppressed public rates."""

import dagster as dg

from assets.constants import OWNERS, STRATIFICATION_GROUP
from assets.measures import measure_assets
from assets.resources import PipelineResource
from equity_pipeline import pipeline


@dg.asset(group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars"}, deps=["members"],
          description="One stratum label per member and stratifier (race/ethnicity rollup, language, county, state).")
def member_attributes(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_member_attributes(pipeline_config.layout, pipeline_config.program))


@dg.asset(group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars"}, deps=[member_attributes, *measure_assets],
          description="Unsuppressed denominators and numerators per measure x unit x stratifier x stratum (restricted).")
def stratified_counts(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_stratified_counts(pipeline_config.layout, pipeline_config.program))


@dg.asset(
    group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars", "parquet", "csv"}, deps=[stratified_counts],
    description="public/rates.parquet and .csv: rates with Wilson 95% CIs, small cells (1-10) and their complements suppressed.",
    check_specs=[dg.AssetCheckSpec("no_small_cells", asset="public_rates", blocking=True,
                                   description="no published count between 1 and 10 (proportions: denominator, numerator, complement; event rates: members, events; costs: members)")],
)
def public_rates(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    layout = pipeline_config.layout
    meta = pipeline.build_public_rates(layout, pipeline_config.program)
    small = pipeline.published_small_cells(layout)
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(check_name="no_small_cells", passed=small == 0, metadata={"small_cells": small})],
    )
