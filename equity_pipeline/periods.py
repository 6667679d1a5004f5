"""Measurement periods and ages: one implementation, shared by every measure.

A period is a calendar year (``measurement_year: 2024``, label ``"2024"``) or a rolling 12-month
window ending at a month end (``measurement_period: {end: 2025-03-31}``: 2024-04-01 to 2025-03-31,
label ``"2024-04-01/2025-03-31"``), the usual monthly refresh of HEDIS-style measures. Every date
rule of a measure spec is relative to the period (:meth:`MeasurementPeriod.resolve`); vintage
look-ups (county lists, equity-plan rules) use the year of the period end (:attr:`MeasurementPeriod.year`).

Partition period keys (:func:`period_from_key`): ``"2024"`` (calendar year), ``"2025-Q1"``
(12 months ending 2025-03-31), ``"2025-03"`` (12 months ending 2025-03-31).
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl


#: months in a rolling measurement period
ROLLING_MONTHS = 12
#: partition period granularities (docs/operations.md "Rolling measurement periods")
PERIOD_GRANULARITIES = ("year", "quarter", "month")


@dataclass(frozen=True)
class MeasurementPeriod:
    begin: date
    end: date

    @classmethod
    def calendar_year(cls, year: int) -> "MeasurementPeriod":
        return cls(date(year, 1, 1), date(year, 12, 31))

    @classmethod
    def rolling(cls, end: date, months: int = ROLLING_MONTHS) -> "MeasurementPeriod":
        """The ``months`` whole months ending on ``end`` (a month end): 2025-03-31 -> 2024-04-01..2025-03-31."""
        if not is_month_end(end):
            raise ValueError(f"a rolling period ends on a month end, not {end.isoformat()}")
        total = end.year * 12 + end.month - months  # months since year 0 of the first month (0-based)
        return cls(date(total // 12, total % 12 + 1, 1), end)

    @property
    def year(self) -> int:
        """The year of the period end: the vintage of county lists and equity-plan rules."""
        return self.end.year

    @property
    def is_calendar_year(self) -> bool:
        return self.begin == date(self.begin.year, 1, 1) and self.end == date(self.begin.year, 12, 31)

    @property
    def label(self) -> str:
        if self.begin.month == 1 and self.begin.day == 1 and self.end == date(self.begin.year, 12, 31):
            return str(self.begin.year)
        return f"{self.begin.isoformat()}/{self.end.isoformat()}"

    def months_before_begin(self, months: int) -> date:
        """First day of the month ``months`` months before the period begins (Oct 1 two years prior = 15)."""
        total = self.begin.year * 12 + (self.begin.month - 1) - months
        return date(total // 12, total % 12 + 1, 1)

    def resolve(self, anchor: str | dict) -> date:
        """Turn a spec anchor ('period_begin', 'period_end', {'months_before_begin': 15}) into a date."""
        if anchor == "period_begin":
            return self.begin
        if anchor == "period_end":
            return self.end
        if anchor == "before_period_begin":
            return self.begin - timedelta(days=1)
        if isinstance(anchor, dict) and "months_before_begin" in anchor:
            return self.months_before_begin(int(anchor["months_before_begin"]))
        if isinstance(anchor, dict) and "years_before_begin" in anchor:
            y = int(anchor["years_before_begin"])
            return date(self.begin.year - y, self.begin.month, self.begin.day)
        if isinstance(anchor, dict) and "years_before_end" in anchor:
            y = int(anchor["years_before_end"])
            return date(self.end.year - y, self.end.month, self.end.day)
        if isinstance(anchor, str):
            return date.fromisoformat(anchor)
        raise ValueError(f"unknown date anchor {anchor!r}")


def as_period(year_or_period: "int | MeasurementPeriod") -> MeasurementPeriod:
    """A :class:`MeasurementPeriod` from a period, or from a measurement year (its calendar year)."""
    if isinstance(year_or_period, MeasurementPeriod):
        return year_or_period
    if isinstance(year_or_period, bool) or not isinstance(year_or_period, int):
        raise TypeError(f"expected a measurement year or a MeasurementPeriod, got {type(year_or_period).__name__}")
    return MeasurementPeriod.calendar_year(year_or_period)


def is_month_end(d: date) -> bool:
    return d.day == calendar.monthrange(d.year, d.month)[1]


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def period_from_key(key: str) -> MeasurementPeriod:
    """The period of a partition key: ``"2024"`` (calendar year 2024), ``"2025-Q1"`` (12 months ending
    2025-03-31), ``"2025-03"`` (12 months ending 2025-03-31). ValueError for anything else."""
    key = str(key)
    if m := re.fullmatch(r"(\d{4})", key):
        return MeasurementPeriod.calendar_year(int(m[1]))
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", key):
        return MeasurementPeriod.rolling(month_end(int(m[1]), 3 * int(m[2])))
    if m := re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", key):
        return MeasurementPeriod.rolling(month_end(int(m[1]), int(m[2])))
    raise ValueError(f"period key {key!r} is not YYYY, YYYY-Qn or YYYY-MM")


def period_key(period: MeasurementPeriod, granularity: str) -> str:
    """The partition key of ``period`` at ``granularity`` (inverse of :func:`period_from_key`)."""
    if granularity == "year" and period.is_calendar_year:
        return str(period.year)
    if granularity == "quarter" and period == MeasurementPeriod.rolling(period.end) and period.end.month % 3 == 0:
        return f"{period.end.year}-Q{period.end.month // 3}"
    if granularity == "month" and period == MeasurementPeriod.rolling(period.end):
        return f"{period.end.year}-{period.end.month:02d}"
    raise ValueError(f"period {period.label} has no {granularity} key")


def quarter_keys(first_year: int, today: date) -> list[str]:
    """Quarter keys from ``first_year``-Q1 to the last quarter that ended before ``today``."""
    out = []
    for year in range(first_year, today.year + 1):
        for q in range(1, 5):
            if month_end(year, 3 * q) < today:
                out.append(f"{year}-Q{q}")
    return out


def age_at(birth_date: pl.Expr, on: date) -> pl.Expr:
    """Age in completed years on date ``on`` (birthday not yet reached that year -> one less)."""
    years = pl.lit(on.year) - birth_date.dt.year()
    before_birthday = (birth_date.dt.month() > on.month) | (
        (birth_date.dt.month() == on.month) & (birth_date.dt.day() > on.day)
    )
    return (years - before_birthday.cast(pl.Int32)).cast(pl.Int32)
