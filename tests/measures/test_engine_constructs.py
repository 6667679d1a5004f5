"""Generic spec constructs used by W30, CIS, IET and PCR: member date anchors and offsets, ages in
months, composite events, condition trees, and the checks that reject malformed specs."""
from __future__ import annotations

import re
from datetime import date, timedelta

import polars as pl
import pytest
import yaml

from equity_pipeline.errors import ConfigError
from equity_pipeline.measures.engine import add_months, age_in_months, bound, with_composites
from equity_pipeline.measures.spec import Composite, load_specs, parse_spec
from equity_pipeline.periods import MeasurementPeriod

MY = MeasurementPeriod.calendar_year(2025)


def test_new_measures_are_in_the_catalog():
    specs = load_specs()
    assert {"IET", "W30", "CIS", "PCR"} <= set(specs)
    assert [r.submeasure for r in specs["IET"].rows] == ["initiation", "engagement"]
    assert [r.submeasure for r in specs["W30"].rows] == ["first_15_months", "months_15_30"]
    assert specs["PCR"].kind == "readmission"


@pytest.mark.parametrize("start, months, expected", [
    (date(2024, 8, 31), 15, date(2025, 11, 30)),   # clamped to the month's last day
    (date(2024, 1, 31), 1, date(2024, 2, 29)),     # leap year
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2025, 12, 31), -1, date(2025, 11, 30)),
])
def test_add_months(start, months, expected):
    assert add_months(start, months) == expected


def test_age_in_months_agrees_with_month_birthdays():
    # completed months on a date = the largest n whose n-month birthday (add_months) is on or before it
    births = [date(2023, 1, 31), date(2023, 2, 28), date(2024, 2, 29), date(2023, 8, 31), date(2023, 6, 15)]
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(0, 365, 3)]
    frame = pl.DataFrame([(b, d) for b in births for d in days], schema={"b": pl.Date, "d": pl.Date}, orient="row")
    got = frame.select(age_in_months(pl.col("b"), pl.col("d"))).to_series().to_list()
    want = [max(n for n in range(0, 60) if add_months(b, n) <= d) for b, d in frame.iter_rows()]
    assert got == want


def test_bound_offsets_period_and_member_anchors():
    frame = pl.DataFrame({"birth_date": [date(2024, 8, 31)], "_at_index": [date(2025, 3, 1)]})
    got = frame.select(
        a=bound({"anchor": "period_end", "days": -47}, MY),      # IET intake end: Nov 14
        b=bound({"anchor": "birth", "months": 15, "days": 1}, MY),
        c=bound({"anchor": "index", "days": -194}, MY),
        d=bound({"anchor": "birth", "years": 2}, MY),
    ).row(0)
    assert got == (date(2025, 11, 14), date(2025, 12, 1), date(2024, 8, 19), date(2026, 8, 31))


def test_same_day_composite_needs_every_set_on_one_date():
    events = pl.DataFrame({
        "member_id": ["A", "A", "A", "B"], "event_date": [date(2025, 1, 1), date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)],
        "value_set": ["visit", "dx", "visit", "service"], "code_system": [None] * 4, "code": [None] * 4,
        "source": ["claims"] * 4, "value_numeric": [None] * 4,
    }, schema_overrides={"code_system": pl.String, "code": pl.String, "value_numeric": pl.Float64})
    comps = (Composite("visit_dx", (("same_day", ("visit", "dx")),)), Composite("treat", (("any_of", ("visit_dx", "service")),)))
    out = with_composites(events.lazy(), comps).collect()
    got = sorted((r["member_id"], r["event_date"], r["value_set"]) for r in out.filter(pl.col("value_set").is_in(["visit_dx", "treat"])).iter_rows(named=True))
    assert got == [("A", date(2025, 1, 1), "treat"), ("A", date(2025, 1, 1), "visit_dx"), ("B", date(2025, 1, 3), "treat")]


BASE = """
measure_id: T
title: t
version: "1"
direction: higher_is_better
eligible_population: {age: {min: 1}}
"""


@pytest.mark.parametrize("extra, message", [
    ("numerator: {events: {any_of: [hospice], from: index}}", "unknown date anchor 'index'"),
    ("numerator: {anchor: initiation}", "unknown anchor 'initiation'"),
    ("numerator: {events: {any_of: [hospice]}, anchor: birth}", "exactly one of events, anchor, any, all"),
    ("composite_events: {b: [{any_of: [a]}], a: [{any_of: [hospice]}]}\nnumerator: {events: {any_of: [b]}}", "uses ['a'] before it is defined"),
    ("rows: [{submeasure: x, age: {min: 1, max: 2}}, {submeasure: y, numerator: {any_of: [hospice]}}]\nnumerator: {events: {any_of: [hospice]}}",
     "cannot be mixed"),
    ("rows: [{submeasure: x, age: {min: 1, max: 2}}]", "every age row has its own numerator"),
    ("exclusions: [{reason: r, discharge_status: ['20']}]\nnumerator: {events: {any_of: [hospice]}}", "apply to kind readmission only"),
    ("numerator: {events: {any_of: [hospice], to: {anchor: birth, weeks: 2}}}", "unknown offset keys"),
    ("rows: [{submeasure: x, age: {min: 1, unit: weeks}, numerator: {any_of: [hospice]}}]", "age unit must be years or months"),
    ("numerator: {events: {any_of: [no_such_set]}}", "value sets not found"),
])
def test_malformed_specs_are_rejected(extra, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        parse_spec(yaml.safe_load(BASE + extra), "T.yaml")


POPULATION_EVENTS = """
measure_id: T
title: t
version: "1"
direction: higher_is_better
numerator: {events: {any_of: [hospice]}}
eligible_population:
  events:
"""


@pytest.mark.parametrize("criterion, reason", [
    ("{any_of: [esrd]}", "no_esrd"),
    ("{any_of: [esrd, organ_transplant]}", "no_esrd_or_organ_transplant"),
    ("{all_of: [esrd, organ_transplant]}", "no_esrd_and_organ_transplant"),
    ("{all_of: [esrd, organ_transplant], reason: not_both}", "not_both"),
])
def test_eligible_population_events_name_their_not_eligible_reason(criterion, reason):
    """A member without the population's events is not eligible for a reason that names every value
    set of the criterion (or the spec's own ``reason``), not only the first set."""
    spec = parse_spec(yaml.safe_load(POPULATION_EVENTS + f"    - {criterion}\n"), "T.yaml")
    assert spec.denominator_events[0].not_eligible_reason == reason


@pytest.mark.parametrize("where, message", [
    ("eligible_population:\n  events:\n    - {any_of: [esrd], reason: Not eligible}\n", "reason must be a lower-case identifier"),
    ("eligible_population:\n  events:\n    - {any_of: [esrd], reason: 3}\n", "reason must be a lower-case identifier"),
    ("eligible_population: {age: {min: 1}}\nexclusions: [{reason: r, events: {any_of: [esrd], reason: x}}]\n", "unknown keys ['reason']"),
])
def test_a_criterion_reason_is_an_identifier_and_only_for_the_population(where, message):
    raw = POPULATION_EVENTS.split("eligible_population:")[0] + where
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_spec(yaml.safe_load(raw), "T.yaml")


def test_rows_with_their_own_numerator_need_no_spec_numerator():
    spec = parse_spec(yaml.safe_load(BASE + "rows: [{submeasure: x, age: {min: 1, max: 2}, numerator: {any_of: [hospice]}}]"), "T.yaml")
    assert spec.numerator == () and spec.rows[0].numerator is not None
