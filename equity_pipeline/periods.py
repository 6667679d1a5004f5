"""Measurement periods and ages: one implementation, shared by every measure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl


@dataclass(frozen=True)
class MeasurementPeriod:
    begin: date
    end: date

    @classmethod
    def calendar_year(cls, year: int) -> "MeasurementPeriod":
        return cls(date(year, 1, 1), date(year, 12, 31))

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


def age_at(birth_date: pl.Expr, on: date) -> pl.Expr:
    """Age in completed years on date ``on`` (birthday not yet reached that year -> one less)."""
    years = pl.lit(on.year) - birth_date.dt.year()
    before_birthday = (birth_date.dt.month() > on.month) | (
        (birth_date.dt.month() == on.month) & (birth_date.dt.day() > on.day)
    )
    return (years - before_birthday.cast(pl.Int32)).cast(pl.Int32)
