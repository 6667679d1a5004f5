"""Coded events and one member-level results asset per measure spec."""

import dagster as dg

from assets.constants import MEASURES_GROUP, OWNERS
from assets.resources import PipelineResource
from equity_pipeline import pipeline
from equity_pipeline.measures.spec import MeasureSpec, load_specs


@dg.asset(
    group_name=MEASURES_GROUP, owners=OWNERS, kinds={"polars"},
    deps=["medical_claims", "pharmacy_claims", "clinical_observations", "sdoh_screenings", "enrollment", "providers"],
    description="Final claim versions (adjustments applied, voids removed), the coded events every measure's value sets need, "
                "and the frames several measures share (inpatient stays, member months, payer in the period, paid amounts; "
                "members continuously enrolled under a fixed-date rule, payer on a fixed date).",
)
def measure_events(pipeline_config: PipelineResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=pipeline.build_events(pipeline_config.layout, pipeline_config.program))


def build_measure_asset(spec: MeasureSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{spec.measure_id}_member_results",
        group_name=MEASURES_GROUP, owners=OWNERS, kinds={"polars"},
        deps=["members", "enrollment", "pharmacy_claims", "providers", measure_events],
        description=f"{spec.title} (v{spec.version}): member-level denominator, exclusions and numerator. {spec.description}",
        check_specs=[dg.AssetCheckSpec("members_reconcile", asset=f"{spec.measure_id}_member_results", blocking=True,
                                       description="members in = not eligible + excluded + denominator")],
    )
    def _asset(pipeline_config: PipelineResource) -> dg.MaterializeResult:
        program = pipeline_config.program
        if spec.measure_id not in program.measures:
            return dg.MaterializeResult(metadata={"skipped": "not in the program config"},
                                        check_results=[dg.AssetCheckResult(check_name="members_reconcile", passed=True)])
        out = pipeline.evaluate_measure(spec.measure_id, pipeline_config.layout, program)
        meta = {k: out[k] for k in ("members_in", "denominator", "numerator")}
        return dg.MaterializeResult(
            metadata={**meta, "excluded": out["excluded"], "not_eligible": out["not_eligible"]},
            check_results=[dg.AssetCheckResult(check_name="members_reconcile", passed=out["reconciles"], metadata=meta)],
        )

    return _asset


measure_assets = [build_measure_asset(s) for s in load_specs().values()]
