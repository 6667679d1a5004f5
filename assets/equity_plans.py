"""Health-equity plan tables: the statewide plan and the hospital plan (docs/equity_plans.md)."""

import dagster as dg

from assets.constants import EQUITY_PLANS_GROUP, OWNERS
from assets.measures import measure_assets, measure_events
from assets.resources import PipelineResource
from assets.stratification import disparities, member_attributes, public_rates
from equity_pipeline import pipeline
from equity_pipeline.publish import check_description

_SMALL = "no published count between 1 and 10 (shares: count, total, rest; stays and visits: patients, with and without the event; event rates: members, events)"
_REVEALED = ("no margin (strata -> total, states -> population, payers -> all-payer, regions, identities between strata found "
             "in the data) in which a suppressed cell can be recovered by subtraction, counting cells shown in public/rates "
             "and public/completeness as known; a cell locked to public/rates must show the counts rates shows")


def _result(meta: dict, *, asset: str) -> dg.MaterializeResult:
    # the same counts decided, before writing, whether the table reached public/ (else restricted/withheld/)
    checks = pipeline.plan_checks(meta)
    small, revealed = checks["no_small_cells"], checks["no_suppressed_cell_revealed"]
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[
            dg.AssetCheckResult(asset_key=asset, check_name="no_small_cells", passed=small == 0,
                                metadata={"small_cells": small}, description=check_description(meta)),
            dg.AssetCheckResult(asset_key=asset, check_name="no_suppressed_cell_revealed", passed=revealed == 0,
                                metadata={"unprotected_margins": int(meta.get("unprotected_margins", 0)),
                                          "lock_conflicts": int(meta.get("lock_conflicts", 0)),
                                          "lock_mismatches": int(meta.get("lock_mismatches", 0))},
                                description=check_description(meta)),
        ],
    )


@dg.asset(
    group_name=EQUITY_PLANS_GROUP, owners=OWNERS, kinds={"polars", "parquet"},
    deps=[public_rates, disparities, member_attributes, *measure_assets, "rel_completeness", "members"],
    description="public/equity_plan/state_metrics.parquet: statewide (AHEAD-style) plan per state, region and payer: PQI90 "
                "per 100,000 by race/ethnicity with the gap to the reference group, configured measures by race/ethnicity, "
                "language and geography, REL completeness and SDOH screening by payer, TCOC PMPM and primary-care share, "
                "change against a baseline and targets; suppressed like public/rates and consistent with it.",
    check_specs=[dg.AssetCheckSpec("no_small_cells", asset="state_metrics", blocking=True, description=_SMALL),
                 dg.AssetCheckSpec("no_suppressed_cell_revealed", asset="state_metrics", blocking=True, description=_REVEALED)],
)
def state_metrics(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return _result(pipeline.build_state_metrics(pipeline_config.layout, pipeline_config.program), asset="state_metrics")


@dg.asset(
    group_name=EQUITY_PLANS_GROUP, owners=OWNERS, kinds={"polars", "parquet"},
    deps=[member_attributes, measure_events, "members", "sdoh_screenings"],
    description="public/equity_plan/hospital_metrics.parquet: hospital plan per facility (CCN of its inpatient/ED "
                "encounters): REL completeness, SDOH screening and positive rates by domain, 30-day readmission and 7-day "
                "ED revisit by race/ethnicity and dual status with the within-hospital gap, safety-net shares (dual, "
                "high-SVI); suppressed.",
    check_specs=[dg.AssetCheckSpec("no_small_cells", asset="hospital_metrics", blocking=True, description=_SMALL),
                 dg.AssetCheckSpec("no_suppressed_cell_revealed", asset="hospital_metrics", blocking=True, description=_REVEALED)],
)
def hospital_metrics(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return _result(pipeline.build_hospital_metrics(pipeline_config.layout, pipeline_config.program), asset="hospital_metrics")


equity_plan_assets = [state_metrics, hospital_metrics]
