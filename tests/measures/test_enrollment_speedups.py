"""enrollment._with_prev_max (running maximum of earlier span ends per key, without a window
expression) against the window expression it replaces, and against figures reasoned by hand."""
from datetime import date, timedelta

import numpy as np
import pytest
import polars as pl

from equity_pipeline.enrollment import _with_prev_max, continuously_enrolled
from equity_pipeline.periods import MeasurementPeriod


def _by_window(spans: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    return spans.sort(*key, "s").with_columns(prev_max=pl.col("e").cum_max().shift(1).over(key))


def test_prev_max_by_hand():
    spans = pl.DataFrame({
        "member_id": ["b", "a", "a", "a", "b"],
        "s": [date(2025, 3, 1), date(2025, 1, 1), date(2025, 2, 1), date(2025, 6, 1), date(2025, 1, 1)],
        "e": [date(2025, 3, 31), date(2025, 12, 31), date(2025, 2, 28), date(2025, 6, 30), date(2025, 1, 31)],
    })
    got = _with_prev_max(spans.lazy(), ["member_id"]).collect()
    # a: 1 Jan-31 Dec, 1-28 Feb (prev max 31 Dec), 1-30 Jun (prev max still 31 Dec: a running maximum)
    # b: 1-31 Jan, then 1-31 Mar (prev max 31 Jan); a's 31 Dec never reaches b's first span
    assert got["member_id"].to_list() == ["a", "a", "a", "b", "b"]
    assert got["prev_max"].to_list() == [None, date(2025, 12, 31), date(2025, 12, 31), None, date(2025, 1, 31)]


def test_prev_max_equals_the_window_expression_on_random_spans():
    rng = np.random.default_rng(7)
    n = 5_000
    base = date(1965, 1, 1)   # days before 1970 are negative: the packing must keep them apart
    starts = [base + timedelta(days=int(d)) for d in rng.integers(0, 25_000, n)]
    spans = pl.DataFrame({
        "member_id": [f"m{int(i)}" for i in rng.integers(0, 700, n)],
        "stay_id": [f"s{int(i)}" for i in rng.integers(0, 3, n)],
        "s": starts,
        "e": [s + timedelta(days=int(d)) for s, d in zip(starts, rng.integers(0, 400, n))],
    })
    for key in (["member_id"], ["member_id", "stay_id"]):
        got = _with_prev_max(spans.lazy(), key).collect()
        want = _by_window(spans, key)
        # equal starts of one key may come in either order; prev_max of the later one differs then,
        # so compare on rows whose (key, s) is unique, plus the per-key multiset of values
        assert got.height == want.height
        assert got.select(*key, "s").equals(want.select(*key, "s"))
        unique = ~pl.struct(*key, "s").is_duplicated()
        assert got.filter(unique).equals(want.filter(unique))
        assert got["prev_max"].null_count() == want["prev_max"].null_count() == spans.select(key).unique().height


def test_continuous_enrollment_by_hand():
    spans = pl.DataFrame({
        "member_id": ["ok", "ok", "gap2", "gap2", "gap2", "long"],
        "enrollment_start": [date(2025, 1, 1), date(2025, 7, 1), date(2025, 1, 1), date(2025, 3, 1), date(2025, 6, 1), date(2025, 1, 1)],
        "enrollment_end": [date(2025, 6, 15), None, date(2025, 1, 31), date(2025, 4, 30), date(2025, 12, 31), date(2025, 9, 30)],
    })
    got = continuously_enrolled(spans.lazy(), date(2025, 1, 1), date(2025, 12, 31), allowed_gaps=1, max_gap_days=45,
                                anchor=date(2025, 12, 31)).collect()
    # ok: one gap of 15 days (16-30 Jun); gap2: two gaps (Feb, May); long: not covered on 31 Dec
    assert got["member_id"].to_list() == ["ok"]


@pytest.mark.parametrize("period", [MeasurementPeriod.calendar_year(2025), MeasurementPeriod(date(2024, 3, 16), date(2025, 12, 31)),
                                    MeasurementPeriod(date(2020, 1, 1), date(2025, 12, 31)),   # 72 months: the join
                                    MeasurementPeriod(date(2025, 1, 16), date(2025, 2, 14))])  # no 15th inside
def test_member_months_bit_masks_equal_the_cross_join(period):
    # member months from each span's bit mask of covered months equal the cross join of the spans with
    # the 15th of every month: overlapping spans (counted once), open ends, null starts, a null member id
    from equity_pipeline.encounters import _check_dates, _member_months_joined, member_months

    rng = np.random.default_rng(11)
    n = 4_000
    start = [date(2019, 6, 1) + timedelta(days=int(d)) for d in rng.integers(0, 2_400, n)]
    length = rng.integers(0, 900, n)
    spans = pl.DataFrame({
        "member_id": [None if i % 997 == 0 else f"m{i}" for i in rng.integers(0, 600, n)],
        "enrollment_start": [None if i % 211 == 0 else s for i, s in enumerate(start)],
        "enrollment_end": [None if i % 13 == 0 else s + timedelta(days=int(k)) for i, (s, k) in enumerate(zip(start, length))],
    }, schema={"member_id": pl.String, "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    got = member_months(spans.lazy(), period).collect().sort("member_id")
    want = _member_months_joined(spans.lazy(), _check_dates(period)).collect().sort("member_id")
    assert got.schema == want.schema and got.equals(want)
    assert got.height or not _check_dates(period)
    assert got["member_months"].max() is None or got["member_months"].max() <= len(_check_dates(period))


def test_member_months_by_hand():
    from equity_pipeline.encounters import member_months

    spans = pl.DataFrame({"member_id": ["a", "a", "b", "c"],
                          "enrollment_start": [date(2025, 1, 1), date(2025, 3, 1), date(2025, 11, 16), date(2024, 1, 1)],
                          "enrollment_end": [date(2025, 6, 30), None, date(2025, 12, 31), date(2025, 1, 14)]})
    # a: January-June and March onwards overlap: all 12 months once; b: 16 Nov starts after the 15th, so
    # December only; c: ends the 14th of January, no month
    got = member_months(spans.lazy(), MeasurementPeriod.calendar_year(2025)).collect().sort("member_id")
    assert got.rows() == [("a", 12), ("b", 1)]
