"""W30 on hand-built children: cohorts by month-age, visits counted on distinct dates in windows
measured from birth, and per-cohort continuous enrollment. Measurement year 2025."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.measures.helpers import covered, line, person, run


def _child(birth: date, visits: list[date], *, start: date | None = None, end: date | None = None, spans=None):
    kid = person("K", birth, sex="M")
    results, counts = run("W30", [kid], spans or [covered("K", start=start or birth, end=end)], [line("K", d, hcpcs="99391") for d in visits])
    assert counts.reconciles()
    return results, counts


@pytest.mark.parametrize("birth, row", [
    (date(2023, 10, 1), "first_15_months"),   # 15-month birthday 2025-01-01: first day of the year
    (date(2023, 9, 30), None),                # 15-month birthday 2024-12-30; 27 months old on Dec 31
    (date(2024, 9, 30), "first_15_months"),   # 15-month birthday 2025-12-30
    (date(2024, 10, 1), None),                # 15-month birthday 2026-01-01: next year's cohort
    (date(2022, 7, 1), "months_15_30"),       # 30-month birthday 2025-01-01
    (date(2022, 6, 30), None),                # 30-month birthday 2024-12-30
    (date(2023, 6, 30), "months_15_30"),      # 30-month birthday 2025-12-30
    (date(2023, 7, 1), None),                 # 29 months on Dec 31: between the cohorts
])
def test_cohort_is_the_month_birthday_falling_in_the_year(birth, row):
    results, counts = _child(birth, [])
    if row is None:
        assert results.height == 0 and counts.not_eligible["not_age"] == 1
    else:
        assert results["submeasure"].to_list() == [row]


BIRTH = date(2024, 6, 10)           # 15-month birthday 2025-09-10
FIVE = [date(2024, 6, 20), date(2024, 8, 10), date(2024, 10, 10), date(2024, 12, 10), date(2025, 3, 10)]


@pytest.mark.parametrize("sixth, numerator", [
    (date(2025, 9, 10), True),    # sixth visit on the 15-month birthday counts
    (date(2025, 9, 11), False),   # one day after the 15-month birthday
    (date(2025, 3, 10), False),   # a second claim on the same date is one visit
])
def test_first_15_months_needs_six_visits_by_the_birthday(sixth, numerator):
    results, _ = _child(BIRTH, [*FIVE, sixth])
    assert results.row(0, named=True)["in_numerator"] is numerator


def test_visits_are_counted_from_birth():
    # six visits, the first on the day of birth (e.g. newborn check in the first week)
    results, _ = _child(BIRTH, [BIRTH, *FIVE])
    assert results.row(0, named=True)["in_numerator"] is True


def test_month_end_birthdays_clamp():
    # born Aug 31: the 15-month birthday is Nov 30, 2025 (November has 30 days)
    birth = date(2024, 8, 31)
    base = [date(2024, 9, 5), date(2024, 11, 5), date(2025, 1, 5), date(2025, 3, 5), date(2025, 6, 5)]
    assert _child(birth, [*base, date(2025, 11, 30)])[0]["in_numerator"].to_list() == [True]
    assert _child(birth, [*base, date(2025, 12, 1)])[0]["in_numerator"].to_list() == [False]


OLDER = date(2023, 1, 5)            # 15-month birthday 2024-04-05, 30-month birthday 2025-07-05


@pytest.mark.parametrize("visits, numerator", [
    ([date(2024, 4, 6), date(2025, 7, 5)], True),    # day after the 15-month birthday .. the 30-month birthday
    ([date(2024, 4, 5), date(2025, 7, 5)], False),   # a visit on the 15-month birthday belongs to the first window
    ([date(2024, 4, 6), date(2025, 7, 6)], False),   # a day after the 30-month birthday
    ([date(2024, 6, 1)], False),                     # one visit is not enough
])
def test_months_15_30_needs_two_visits_in_the_window(visits, numerator):
    results, _ = _child(OLDER, visits)
    assert results.row(0, named=True)["submeasure"] == "months_15_30"
    assert results.row(0, named=True)["in_numerator"] is numerator


@pytest.mark.parametrize("start, enrolled", [
    (BIRTH + timedelta(days=31), True),                       # enrollment needed from 31 days of age
    (BIRTH + timedelta(days=31 + 45), True),                  # a 45-day lead gap is the one allowed gap
    (BIRTH + timedelta(days=31 + 46), False),                 # 46 days is too long
])
def test_first_15_months_enrollment_starts_at_31_days(start, enrolled):
    results, counts = _child(BIRTH, FIVE, start=start)
    assert (results.height == 1) is enrolled
    assert counts.not_eligible["not_continuously_enrolled"] == (0 if enrolled else 1)


def test_enrollment_ending_before_the_15_month_birthday_fails():
    _, counts = _child(BIRTH, FIVE, end=date(2025, 9, 9))   # not covered on the anchor (15-month birthday)
    assert counts.not_eligible["not_continuously_enrolled"] == 1


def test_payer_is_the_one_covering_the_cohort_anchor():
    # Medicaid through the 15-month birthday, then commercial: reported under Medicaid (anchor 2025-09-10)
    spans = [covered("K", start=BIRTH, end=date(2025, 9, 10), payer="medicaid"), covered("K", start=date(2025, 9, 11), payer="commercial")]
    results, _ = _child(BIRTH, FIVE, spans=spans)
    assert results["payer"].to_list() == ["medicaid"]


def test_two_cohorts_reconcile_and_each_uses_its_own_rule():
    members = [person("Y", BIRTH), person("O", OLDER)]
    spans = [covered("Y", start=BIRTH), covered("O", start=OLDER)]
    claims = [line("O", d, hcpcs="99392") for d in (date(2024, 5, 1), date(2025, 1, 1))]   # 2 visits: enough for O only
    claims += [line("Y", d, hcpcs="99391") for d in (date(2024, 7, 1), date(2025, 1, 1))]
    results, counts = run("W30", members, spans, claims)
    assert {r["member_id"]: (r["submeasure"], r["in_numerator"]) for r in results.iter_rows(named=True)} == {
        "Y": ("first_15_months", False), "O": ("months_15_30", True)}
    assert counts.reconciles() and counts.denominator == 2 and counts.numerator == 1
