"""``attributes.coverage_attributes`` decides members with one span in the period row by row and
groups only members with several (docs/performance.md, "Stratification and equity plans"). The
oracle is the grouped rule for every member (the implementation it replaced, kept here verbatim),
on random spans with the awkward values: null payer, dual status and line of business, payers
outside the priority list, duals from a dual flag on a commercial span, spans outside the period,
open ends; plus hand-worked single-span members."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from equity_pipeline.attributes import (
    DUAL,
    DUAL_LEVEL_NOT_REPORTED,
    NOT_DUAL,
    PAYERS,
    UNKNOWN,
    _text,
    coverage_attributes,
)
from equity_pipeline.periods import MeasurementPeriod

PERIOD = MeasurementPeriod.calendar_year(2025)


def _grouped(enrollment: pl.LazyFrame, period: MeasurementPeriod) -> pl.DataFrame:
    """The rule grouped per member for everyone (as before the single-span rows)."""
    begin, end = pl.lit(period.begin), pl.lit(period.end)
    spans = (
        enrollment.select(
            "member_id",
            payer=_text(pl.col("payer")).str.to_lowercase(),
            line_of_business=_text(pl.col("line_of_business")).str.to_lowercase(),
            dual_status=_text(pl.col("dual_status")).str.to_lowercase(),
            start=pl.max_horizontal(pl.col("enrollment_start"), begin),
            end=pl.min_horizontal(pl.col("enrollment_end").fill_null(end), end),
        )
        .filter(pl.col("start") <= pl.col("end"))
        .with_columns(days=(pl.col("end") - pl.col("start")).dt.total_days() + 1)
        .collect()
    )
    care = spans.filter(pl.col("payer") == "medicare").select("member_id", s1="start", e1="end")
    caid = spans.filter(pl.col("payer") == "medicaid").select("member_id", s2="start", e2="end")
    overlap = (
        care.join(caid, on="member_id")
        .filter(pl.max_horizontal("s1", "s2") <= pl.min_horizontal("e1", "e2"))
        .select("member_id").unique().with_columns(overlap=pl.lit(True))
    )
    flags = spans.group_by("member_id").agg(
        full=(pl.col("dual_status") == "full").any(),
        partial=(pl.col("dual_status") == "partial").any(),
        has_medicare=(pl.col("payer") == "medicare").any(),
    ).join(overlap, on="member_id", how="left").with_columns(pl.col("overlap").fill_null(False))
    flags = flags.with_columns(dual=pl.col("full") | pl.col("partial") | pl.col("overlap"))
    priority = {p: i for i, p in enumerate(PAYERS)}
    by_payer = (
        spans.group_by("member_id", "payer").agg(days=pl.col("days").sum())
        .with_columns(rank=pl.col("payer").replace_strict(priority, default=len(PAYERS), return_dtype=pl.Int32))
        .sort("member_id", "days", "rank", descending=[False, True, False])
        .group_by("member_id", maintain_order=True).agg(main_payer=pl.col("payer").first())
    )
    out = flags.join(by_payer, on="member_id", how="left").with_columns(
        lob_payer=pl.when(pl.col("dual")).then(pl.when(pl.col("has_medicare")).then(pl.lit("medicare")).otherwise(pl.lit("medicaid")))
        .otherwise(pl.col("main_payer"))
    )
    lob = (
        spans.join(out.select("member_id", "lob_payer"), on="member_id")
        .filter(pl.col("payer") == pl.col("lob_payer"))
        .group_by("member_id", "line_of_business").agg(days=pl.col("days").sum())
        .sort("member_id", "days", "line_of_business", descending=[False, True, False], nulls_last=True)
        .group_by("member_id", maintain_order=True).agg(lob=pl.col("line_of_business").first())
    )
    return out.join(lob, on="member_id", how="left").select(
        "member_id",
        payer=pl.when(pl.col("dual")).then(pl.lit(DUAL)).otherwise(pl.col("main_payer")).fill_null(UNKNOWN),
        line_of_business=pl.col("lob").fill_null(UNKNOWN),
        dual_status=pl.when(pl.col("full")).then(pl.lit("full")).when(pl.col("partial")).then(pl.lit("partial"))
        .when(pl.col("overlap")).then(pl.lit(DUAL_LEVEL_NOT_REPORTED)).otherwise(pl.lit(NOT_DUAL)),
    )


def _enrollment(seed: int, members: int = 3000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(members):
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            start = date(2024, 6, 1) + timedelta(days=int(rng.integers(0, 700)))
            end = None if rng.random() < 0.2 else start + timedelta(days=int(rng.integers(0, 400)))
            rows.append({
                "member_id": f"M{i:05d}",
                # one payer per member mostly, so that most members have one span in the period
                "payer": [" Medicare", "medicaid", "Commercial", "tricare", None][int(rng.choice(5, p=[.3, .3, .3, .05, .05]))],
                "line_of_business": ["HMO", "ffs", None][int(rng.integers(0, 3))],
                "dual_status": ["full", "PARTIAL", "none", None][int(rng.choice(4, p=[.1, .1, .5, .3]))],
                "enrollment_start": start, "enrollment_end": end,
            })
    return pl.DataFrame(rows, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String,
                                      "dual_status": pl.String, "enrollment_start": pl.Date, "enrollment_end": pl.Date})


def test_single_span_rows_equal_the_grouped_rule():
    for seed in (1, 2):
        enrollment = _enrollment(seed)
        got = coverage_attributes(enrollment.lazy(), PERIOD).sort("member_id")
        want = _grouped(enrollment.lazy(), PERIOD).sort("member_id")
        assert got.schema == want.schema
        assert got.equals(want)
        # both kinds of member are there
        in_period = enrollment.filter((pl.col("enrollment_start") <= PERIOD.end)
                                      & (pl.col("enrollment_end").fill_null(PERIOD.end) >= PERIOD.begin))
        spans = in_period.group_by("member_id").len()
        assert (spans["len"] == 1).sum() > 1000 and (spans["len"] > 1).sum() > 100


def test_single_span_members_by_hand():
    rows = [
        ("A", "Commercial", "HMO", "full"),    # dual flag on a commercial span: dual, line of business from Medicaid: none
        ("B", "medicare", "ffs", None),        # Medicare only
        ("C", None, "hmo", "none"),            # no payer
        ("D", "medicare", None, "partial"),    # dual on Medicare, no line of business
    ]
    enrollment = pl.DataFrame([(m, p, lob, d, date(2025, 1, 1), None) for m, p, lob, d in rows], orient="row",
                              schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                                      "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    got = {r["member_id"]: (r["payer"], r["line_of_business"], r["dual_status"])
           for r in coverage_attributes(enrollment.lazy(), PERIOD).iter_rows(named=True)}
    assert got == {"A": (DUAL, UNKNOWN, "full"), "B": ("medicare", "ffs", NOT_DUAL), "C": (UNKNOWN, UNKNOWN, NOT_DUAL),
                   "D": (DUAL, UNKNOWN, "partial")}
