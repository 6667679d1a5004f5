"""Utilization and cost measures: event rates (ED visits, PQI admissions), cost PMPM, spend shares.

These specs have ``kind`` event_rate, cost or cost_share. Their member-level output has the same
columns as proportion measures plus ``numerator_value`` (events or dollars) and
``denominator_value`` (member months, member-years or dollars), so stratification sums values the
same way for every kind. Every member with at least one member month in the period and in the age
band is in the denominator; there are no exclusions.
"""
from __future__ import annotations

import polars as pl

from equity_pipeline.encounters import every_ed_visit, inpatient_stays, member_months, not_admitted
from equity_pipeline.enrollment import OPEN_END, PAYER_PRIORITY
from equity_pipeline.events import _tag, value_set_frame
from equity_pipeline.measures.engine import ALL_ROWS, MeasureCounts, _age_on_event
from equity_pipeline.measures.spec import MeasureSpec
from equity_pipeline.periods import MeasurementPeriod, age_at

RESULT_COLUMNS = [
    "member_id", "measure_id", "measure_version", "submeasure", "period", "age", "payer", "line_of_business", "dual_status",
    "is_excluded", "exclusion_reason", "in_denominator", "in_numerator", "evidence_date", "evidence_source",
    "numerator_value", "denominator_value",
]


def payer_in_period(enrollment: pl.LazyFrame, period: MeasurementPeriod) -> pl.LazyFrame:
    """Payer of the member's latest span overlapping the period (priority medicare > medicaid > commercial on ties)."""
    spans = enrollment.with_columns(end=pl.col("enrollment_end").fill_null(OPEN_END)).filter(
        (pl.col("enrollment_start") <= period.end) & (pl.col("end") >= period.begin)
    ).with_columns(_rank=pl.col("payer").replace_strict(PAYER_PRIORITY, default=9, return_dtype=pl.Int32))
    dual = spans.group_by("member_id").agg(
        dual_status=pl.when(pl.col("dual_status").is_in(["full"]).any()).then(pl.lit("full"))
        .when(pl.col("dual_status").is_in(["partial"]).any()).then(pl.lit("partial")).otherwise(pl.lit("none"))
    )
    latest = spans.sort("member_id", "end", "_rank", descending=[False, True, False]).group_by("member_id", maintain_order=True).agg(
        payer=pl.col("payer").first(), line_of_business=pl.col("line_of_business").first()
    )
    return latest.join(dual, on="member_id", how="left")


def _stay_counts(spec: MeasureSpec, period: MeasurementPeriod, all_stays: pl.LazyFrame, births: pl.LazyFrame) -> pl.LazyFrame:
    stays = all_stays.filter(pl.col("admit_date").is_between(period.begin, period.end))
    components = spec.counting.get("principal_diagnosis")
    if components:
        codes = value_set_frame(c["value_set"] for c in components)
        tagged = _tag(stays.select("member_id", "stay_id", "admit_date", "principal_dx"), "principal_dx", "ICD10CM", codes)
        tagged = tagged.join(births, on="member_id").with_columns(age=_age_on_event(pl.col("birth_date"), pl.col("admit_date")))
        keep = pl.lit(False)
        for c in components:
            age = c.get("age", {})
            keep = keep | ((pl.col("value_set") == c["value_set"]) & pl.col("age").is_between(age.get("min", -1), age.get("max", 200)))
        stays = tagged.filter(keep).select("member_id", "stay_id").unique()
    return stays.group_by("member_id").agg(numerator_value=pl.len().cast(pl.Float64))


def _exact_sum(amount: pl.Expr) -> pl.Expr:
    """Sum of money amounts independent of row order (exact decimal sum, back to Float64)."""
    return amount.cast(pl.Decimal(38, 6)).sum().cast(pl.Float64)


def _paid(claims: pl.LazyFrame, fills: pl.LazyFrame, period: MeasurementPeriod, primary_care: pl.LazyFrame | None) -> pl.LazyFrame:
    paid = pl.when(pl.col("claim_status") == "denied").then(0.0).otherwise(pl.col("paid_amount").fill_null(0.0))
    med = claims.filter(pl.col("claim_from_date").is_between(period.begin, period.end)).select("member_id", "billing_npi", paid=paid)
    rx = fills.filter(pl.col("fill_date").is_between(period.begin, period.end)).select("member_id", pl.lit(None, dtype=pl.String).alias("billing_npi"), paid=paid)
    lines = pl.concat([med, rx])
    if primary_care is not None:
        # a membership test, not a join of every line with the providers (the same flag; no line order to keep)
        ids = primary_care.select("provider_id").collect()["provider_id"]
        lines = lines.with_columns(_pc=pl.col("billing_npi").is_in(ids.implode()))
    else:
        lines = lines.with_columns(_pc=pl.lit(False))
    # Money is summed exactly (decimal, 6 places) so the total does not depend on row order: float addition
    # is not associative, join output order varies run to run, and in a lazy plan the optimiser drops a
    # sort placed before the sum. Same bytes on every run.
    return lines.group_by("member_id").agg(
        total_paid=_exact_sum(pl.col("paid")),
        primary_care_paid=_exact_sum(pl.when(pl.col("_pc").fill_null(False)).then(pl.col("paid")).otherwise(0.0)),
    )


def _primary_care(providers: pl.LazyFrame) -> pl.LazyFrame:
    return providers.filter(pl.col("is_primary_care").fill_null(False)).select("provider_id").unique()


#: the frames of :func:`shared_frames`, and the spec kinds that use each
SHARED = {"inpatient_stays": ("event_rate", "readmission"), "ed_visits": ("event_rate",),
          "member_months": ("event_rate", "cost", "cost_share"), "payers": ("event_rate", "cost", "cost_share"),
          "paid": ("cost", "cost_share")}
#: the per-member frames of :func:`shared_frames` that a run writes with member keys for member ids
#: (``pipeline._measure_base``: ``<name>_keyed``), read by the utilisation and cost measures, which
#: join and sort integers instead of member id strings (about half their CPU)
KEYED_SHARED = ("member_months", "payers", "paid")
#: sort keys of the frames as written (one row per key), so that the files are the same every run
SHARED_KEYS = {"inpatient_stays": ["member_id", "stay_id"], "ed_visits": ["member_id", "visit_date"], "member_months": ["member_id"],
               "payers": ["member_id"], "paid": ["member_id"]}


def shared_frames(period: MeasurementPeriod, enrollment: pl.LazyFrame, claims: pl.LazyFrame, fills: pl.LazyFrame,
                  providers: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """The frames several utilisation, cost and readmission specs need whatever the spec, so that a run
    can compute them once (``pipeline.build_events``) instead of once per measure: the inpatient stays
    of the final claims (``encounters.inpatient_stays``: PQI admissions, ED visits that resulted in an
    admission, readmission index stays), every ED visit of the final claims (``encounters.every_ed_visit``:
    the ED visits measure and the hospital plan), and per member for ``period`` the member months, the
    payer in the period and the paid amounts (total and primary care)."""
    return {
        "inpatient_stays": inpatient_stays(claims),
        "ed_visits": every_ed_visit(claims),
        "member_months": member_months(enrollment, period),
        "payers": payer_in_period(enrollment, period),
        "paid": _paid(claims, fills, period, _primary_care(providers)),
    }


def evaluate_utilization(
    spec: MeasureSpec,
    period: MeasurementPeriod,
    members: pl.LazyFrame,
    enrollment: pl.LazyFrame,
    claims: pl.LazyFrame,
    fills: pl.LazyFrame,
    providers: pl.LazyFrame,
    shared: dict[str, pl.LazyFrame] | None = None,
) -> tuple[pl.DataFrame, MeasureCounts]:
    """Member-level values for an event_rate / cost / cost_share spec and reconciliation counts.
    ``shared``: the frames of :func:`shared_frames` for ``period`` when already computed (the same
    frames, read instead of recomputed); those missing are computed here."""
    shared = {**shared_frames(period, enrollment, claims, fills, providers), **(shared or {})}
    people = members.select("member_id", "birth_date").with_columns(age=age_at(pl.col("birth_date"), period.resolve(spec.age_at)))
    births = members.select("member_id", "birth_date")
    members_in = people.select(pl.len()).collect().item()
    not_eligible: dict[str, int] = {}
    eligible = people
    if spec.age_min is not None or spec.age_max is not None:
        keep = pl.col("age").is_between(spec.age_min if spec.age_min is not None else -1, spec.age_max if spec.age_max is not None else 200)
        before = eligible.select(pl.len()).collect().item()
        eligible = eligible.filter(keep)
        not_eligible["not_age"] = int(before - eligible.select(pl.len()).collect().item())
    before = eligible.select(pl.len()).collect().item()
    eligible = eligible.join(shared["member_months"], on="member_id", how="inner").collect().lazy()
    not_eligible["no_member_months"] = int(before - eligible.select(pl.len()).collect().item())

    rate_type = spec.rate.get("type")
    if spec.kind == "event_rate":
        what = spec.counting["count"]
        if what == "ed_visits":
            num = not_admitted(shared["ed_visits"], shared["inpatient_stays"]).filter(pl.col("visit_date").is_between(period.begin, period.end)) \
                .group_by("member_id").agg(numerator_value=pl.len().cast(pl.Float64))
        elif what == "inpatient_stays":
            num = _stay_counts(spec, period, shared["inpatient_stays"], births)
        else:
            raise ValueError(f"{spec.measure_id}: unknown count {what!r}")
        den = pl.col("member_months").cast(pl.Float64) / (12.0 if rate_type == "per_member_years" else 1.0)
    else:
        money = shared["paid"].collect().lazy()
        column = spec.counting["sum"]
        num = money.select("member_id", numerator_value=pl.col("total_paid" if column == "paid_amount" else column))
        den = pl.col("member_months").cast(pl.Float64) if spec.kind == "cost" else pl.col("total_paid").fill_null(0.0)
        eligible = eligible.join(money.select("member_id", "total_paid"), on="member_id", how="left")

    result = (
        eligible.join(num, on="member_id", how="left")
        .join(shared["payers"], on="member_id", how="left")
        .with_columns(numerator_value=pl.col("numerator_value").fill_null(0.0), denominator_value=den)
        .select(
            "member_id", pl.lit(spec.measure_id).alias("measure_id"), pl.lit(spec.version).alias("measure_version"),
            pl.lit(ALL_ROWS).alias("submeasure"), pl.lit(period.label).alias("period"),
            "age", "payer", "line_of_business", "dual_status",
            pl.lit(False).alias("is_excluded"), pl.lit(None, dtype=pl.String).alias("exclusion_reason"),
            pl.lit(True).alias("in_denominator"), (pl.col("numerator_value") > 0).alias("in_numerator"),
            pl.lit(None, dtype=pl.Date).alias("evidence_date"), pl.lit("claims").alias("evidence_source"),
            "numerator_value", "denominator_value",
        )
        .sort("member_id")
        .collect()
    )
    counts = MeasureCounts(members_in=members_in, not_eligible=not_eligible, excluded={},
                           denominator=result.height, numerator=int(result["in_numerator"].sum()))
    return result, counts
