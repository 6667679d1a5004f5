"""Encounters built from final claim lines: inpatient stays, ED visits, member months.

* Inpatient stay: institutional claim with type of bill 11x (hospital inpatient). Lines are
  grouped by claim; stays of one member that overlap or touch (admission on or the day after the
  previous discharge: transfers and split bills) are merged into one stay keeping the first
  principal diagnosis and the last discharge status.
* ED visit: a line with revenue code 045x or 0981, place of service 23, or CPT 99281-99285; one
  visit per member per day; a visit followed by an inpatient admission the same or next day
  "resulted in admission" and is not counted as an ED visit (HEDIS AMB convention).
* Member months: months of the period in which the member is enrolled (any payer) on the 15th.
"""
from __future__ import annotations

from datetime import date

import polars as pl

from equity_pipeline.enrollment import OPEN_END
from equity_pipeline.periods import MeasurementPeriod

ED_REVENUE = [f"045{i}" for i in range(10)] + ["0981"]
ED_CPT = ["99281", "99282", "99283", "99284", "99285"]


def inpatient_stays(claims: pl.LazyFrame) -> pl.LazyFrame:
    """member_id, stay_id, admit_date, discharge_date, principal_dx, discharge_status, facility_ccn, payer, paid."""
    inst = claims.filter((pl.col("claim_type") == "institutional") & pl.col("bill_type").str.starts_with("11"))
    per_claim = inst.sort("claim_id", "claim_line").group_by("claim_id").agg(
        pl.col("member_id").first(),
        admit_date=pl.coalesce(pl.col("admit_date").min(), pl.col("claim_from_date").min()),
        discharge_date=pl.coalesce(pl.col("discharge_date").max(), pl.col("claim_thru_date").max(), pl.col("claim_from_date").max()),
        principal_dx=pl.col("diagnosis_code_1").drop_nulls().first(),
        discharge_status=pl.col("discharge_status").drop_nulls().last(),
        facility_ccn=pl.col("facility_ccn").drop_nulls().min(),
        payer=pl.col("payer").drop_nulls().first(),
        paid=pl.col("paid_amount").fill_null(0).sum(),
    )
    ordered = per_claim.sort("member_id", "admit_date", "claim_id").with_columns(
        prev_end=pl.col("discharge_date").cum_max().shift(1).over("member_id")
    ).with_columns(
        new_stay=pl.col("prev_end").is_null() | (pl.col("admit_date") > pl.col("prev_end") + pl.duration(days=1))
    ).with_columns(stay_no=pl.col("new_stay").cast(pl.Int32).cum_sum().over("member_id"))
    return ordered.group_by("member_id", "stay_no").agg(
        stay_id=pl.col("claim_id").first(),
        admit_date=pl.col("admit_date").min(),
        discharge_date=pl.col("discharge_date").max(),
        principal_dx=pl.col("principal_dx").first(),
        discharge_status=pl.col("discharge_status").last(),
        facility_ccn=pl.col("facility_ccn").first(),
        payer=pl.col("payer").first(),
        paid=pl.col("paid").sum(),
    ).drop("stay_no")


def every_ed_visit(claims: pl.LazyFrame) -> pl.LazyFrame:
    """member_id, visit_date, facility_ccn for every ED visit, admitted or not.

    One visit per member and day; when that day's ED lines name several facilities the visit is the
    lowest CCN's (a fixed rule, so the result never depends on row order)."""
    is_ed = (
        pl.col("revenue_code").is_in(ED_REVENUE).fill_null(False)
        | (pl.col("place_of_service") == "23").fill_null(False)
        | pl.col("hcpcs_code").is_in(ED_CPT).fill_null(False)
    )
    return claims.filter(is_ed).group_by("member_id", visit_date=pl.col("claim_from_date")).agg(
        facility_ccn=pl.col("facility_ccn").drop_nulls().min()
    )


def not_admitted(visits: pl.LazyFrame, stays: pl.LazyFrame) -> pl.LazyFrame:
    """The ED visits of ``visits`` (:func:`every_ed_visit`) that did not result in an admission: no
    stay of ``stays`` admitted on the visit's day or the next."""
    admitted = stays.select("member_id", "admit_date")
    resulted = visits.join(admitted, on="member_id", how="inner").filter(
        (pl.col("admit_date") >= pl.col("visit_date")) & (pl.col("admit_date") <= pl.col("visit_date") + pl.duration(days=1))
    ).select("member_id", "visit_date").unique()
    return visits.join(resulted, on=["member_id", "visit_date"], how="anti")


def ed_visits(claims: pl.LazyFrame, stays: pl.LazyFrame) -> pl.LazyFrame:
    """member_id, visit_date, facility_ccn for ED visits that did not result in an admission
    (:func:`every_ed_visit` of ``claims``, then :func:`not_admitted`)."""
    return not_admitted(every_ed_visit(claims), stays)


def _check_dates(period: MeasurementPeriod) -> list[date]:
    """The 15th of every month of ``period`` that falls inside it."""
    checks = []
    y, m = period.begin.year, period.begin.month
    while date(y, m, 15) <= period.end:
        if date(y, m, 15) >= period.begin:
            checks.append(date(y, m, 15))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return checks


def member_months(enrollment: pl.LazyFrame, period: MeasurementPeriod) -> pl.LazyFrame:
    """member_id, member_months: months of ``period`` with coverage on the 15th (any payer, counted once).

    Each span gets a bit mask of the months it covers (row local: no cross join of the spans with the
    months); a member's months are the set bits of the OR of their spans' masks (1M members' spans:
    0.12 s against 0.5-0.7 for the cross join). Periods of more than 64 months take the cross join
    (:func:`_member_months_joined`, the same rows)."""
    checks = _check_dates(period)
    if len(checks) > 64:
        return _member_months_joined(enrollment, checks)
    end = pl.col("enrollment_end").fill_null(OPEN_END)
    # a null start covers no month (the comparison is null, which the sum skips), as in the join's filter
    mask = pl.sum_horizontal([((pl.col("enrollment_start") <= c) & (end >= c)).cast(pl.UInt64) * pl.lit(1 << i, dtype=pl.UInt64)
                              for i, c in enumerate(checks)]) if checks else pl.lit(0, dtype=pl.UInt64)
    return (enrollment.select("member_id", _mask=mask).filter(pl.col("_mask") > 0)
            .group_by("member_id").agg(member_months=pl.col("_mask").bitwise_or().bitwise_count_ones().cast(pl.UInt32)))


def _member_months_joined(enrollment: pl.LazyFrame, checks: list[date]) -> pl.LazyFrame:
    """:func:`member_months` by a cross join of the spans with the check dates ``checks``."""
    days = pl.LazyFrame({"check_date": checks}, schema={"check_date": pl.Date})
    return (
        enrollment.select("member_id", "enrollment_start", end=pl.col("enrollment_end").fill_null(OPEN_END))
        .join(days, how="cross")
        .filter((pl.col("enrollment_start") <= pl.col("check_date")) & (pl.col("end") >= pl.col("check_date")))
        .group_by("member_id").agg(member_months=pl.col("check_date").n_unique())
    )
