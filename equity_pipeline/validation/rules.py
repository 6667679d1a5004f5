"""Fast row-level evaluator of the GX suites, in polars.

GX 1.x validates pandas frames; at claims scale that costs a pandas copy per batch. This module
reads the *same* suite JSON and turns every row-level expectation into a polars expression that is
true where a row fails, with GX's semantics (nulls are ignored except by ``not_be_null``;
``be_unique`` fails every copy of a repeated value). A test runs both engines on the same frames and
checks that the unexpected counts agree.

At scale the ingest evaluates the rules batch by batch in polars' streaming engine. Two things a
batch cannot see are supplied from the whole table: the parsed date of each date column (computed
once per row and shared by the format, bound and pair rules: ``dates``) and, for uniqueness rules,
the values that occur more than once in the whole column (``repeated``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from equity_pipeline.suites import Suite

#: expectations that describe the table's shape, checked before any row is looked at
STRUCTURAL = {"expect_column_to_exist"}
SUPPORTED = STRUCTURAL | {
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_match_strftime_format",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
    "expect_column_pair_values_a_to_be_greater_than_b",
}


@dataclass(frozen=True)
class RowRule:
    """One row-level expectation of a suite, ready to evaluate."""
    index: int          # position in the suite
    rule: str           # short reason id written on quarantined rows
    type: str
    column: str         # main column (column_A for pairs)
    severity: str
    why: str
    kwargs: dict[str, Any]
    #: (column, strftime format) for every date column of the suite: date comparisons parse first
    date_formats: tuple[tuple[str, str], ...] = ()


#: Python's strptime pattern for %Y-%m-%d (``_strptime.TimeRE``): 4-digit year, month 1-12 and day
#: 1-31 with an optional leading zero (day also space-padded); ASCII digits only. GX calls strptime;
#: polars' ``str.to_date`` alone is laxer (1-3 or 5+ digit years, signs, year 0).
STRPTIME_ISO = r"^[0-9]{4}-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9])$"


def strptime_date(col: pl.Expr, fmt: str = "%Y-%m-%d") -> pl.Expr:
    """The date ``datetime.strptime(value, fmt)`` would give, null where it would raise."""
    parsed = col.str.to_date(fmt, strict=False)
    if fmt != "%Y-%m-%d":
        return parsed
    return pl.when(col.str.contains(STRPTIME_ISO) & ~col.str.starts_with("0000")).then(parsed).otherwise(None)


def _as_date(v: Any) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v))


def date_formats(suite: Suite) -> dict[str, str]:
    """strftime format per date column of the contract (the column's own strftime rule, else ISO)."""
    formats = {c.name: "%Y-%m-%d" for c in suite.columns if c.type == "date"}
    for e in suite.expectations:
        if e["type"] == "expect_column_values_to_match_strftime_format" and e["kwargs"]["column"] in formats:
            formats[e["kwargs"]["column"]] = e["kwargs"]["strftime_format"]
    return formats


def resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """Substitute GX suite parameters ``{"$PARAMETER": name}``."""
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        if name not in parameters:
            raise KeyError(f"suite parameter {name!r} was not supplied")
        return parameters[name]
    return value


def row_rules(suite: Suite, present: set[str]) -> list[RowRule]:
    """Row-level rules whose columns are present in the frame (absent optional columns are all-null)."""
    rules = []
    formats = tuple(sorted(date_formats(suite).items()))
    for i, e in enumerate(suite.expectations):
        etype = e["type"]
        if etype not in SUPPORTED:
            raise ValueError(f"{suite.path.name}: expectation #{i} type {etype} has no polars evaluator")
        if etype in STRUCTURAL:
            continue
        kw = e["kwargs"]
        column = kw.get("column") or kw.get("column_A")
        cols = [c for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B")) if c]
        if not all(c in present for c in cols):
            continue
        meta = e.get("meta", {})
        rules.append(RowRule(i, meta.get("rule", f"{etype}:{column}"), etype, column, meta.get("severity", "quarantine"), meta.get("why", ""), kw, formats))
    return rules


def failure_expr(
    rule: RowRule,
    parameters: dict[str, Any],
    *,
    dates: dict[str, pl.Expr] | None = None,
    repeated: dict[str, pl.Series] | None = None,
) -> pl.Expr:
    """Polars expression, true on rows that fail ``rule``.

    ``dates``: column -> expression of its strptime-parsed date (default: :func:`strptime_date` of
    the column with its format), so a date is parsed once per row however many rules look at it.
    ``repeated``: column -> the non-empty values occurring more than once in the *whole* column; with
    it a uniqueness rule is row-local (``is_in``) and can run batch by batch. Without it the rule uses
    ``is_duplicated`` on the frame it is evaluated on. Both give the same result on the whole table.
    """
    kw = {k: resolve(v, parameters) for k, v in rule.kwargs.items()}
    t = rule.type
    c = pl.col(rule.column)
    formats = dict(rule.date_formats)

    def parsed(name: str) -> pl.Expr:
        if dates is not None and name in dates:
            return dates[name]
        return strptime_date(pl.col(name), formats[name])
    if t == "expect_column_values_to_not_be_null":
        return c.is_null()
    if t == "expect_column_values_to_be_in_set":
        return c.is_not_null() & ~c.is_in(list(kw["value_set"]))
    if t == "expect_column_values_to_match_regex":
        return c.is_not_null() & ~c.str.contains(kw["regex"])
    if t == "expect_column_values_to_match_strftime_format":
        if formats.get(rule.column) == kw["strftime_format"]:
            return c.is_not_null() & parsed(rule.column).is_null()
        return c.is_not_null() & strptime_date(c, kw["strftime_format"]).is_null()
    if t == "expect_column_values_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if rule.column in formats:  # compare as dates, as GX does with ISO bounds; non-dates are the format rule's
            v = parsed(rule.column)
            lo = None if lo is None else _as_date(lo)
            hi = None if hi is None else _as_date(hi)
            considered = v.is_not_null()
        else:  # pandas/GX treat NaN as missing
            v = c
            considered = c.is_not_null() & ~c.cast(pl.Float64, strict=False).is_nan().fill_null(False)
        fail = pl.lit(False)
        if lo is not None:
            fail = fail | ((v <= lo) if kw.get("strict_min") else (v < lo))
        if hi is not None:
            fail = fail | ((v >= hi) if kw.get("strict_max") else (v > hi))
        return considered & fail
    if t == "expect_column_values_to_be_unique":
        if repeated is not None and rule.column in repeated:
            return c.is_not_null() & c.is_in(repeated[rule.column].implode())
        return c.is_not_null() & c.is_duplicated()
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a_name, b_name = kw["column_A"], kw["column_B"]
        a, b = pl.col(a_name), pl.col(b_name)
        if a_name in formats and b_name in formats:
            a, b = parsed(a_name), parsed(b_name)
        ok = (a >= b) if kw.get("or_equal") else (a > b)
        return a.is_not_null() & b.is_not_null() & ~ok
    raise ValueError(f"no evaluator for {t}")


def rule_ids(rules: list[RowRule]) -> list[str]:
    """The distinct rule ids of ``rules``, in suite order (the order of ``quarantine_reasons``)."""
    return list(dict.fromkeys(r.rule for r in rules))


def unique_columns(rules: list[RowRule]) -> list[str]:
    """Columns with a uniqueness rule (they need the whole column: see ``repeated``)."""
    return list(dict.fromkeys(r.column for r in rules if r.type == "expect_column_values_to_be_unique"))
