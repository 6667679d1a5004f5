"""Breast Cancer Screening on hand-built members: one member per spec rule, the answer reasoned out."""
from __future__ import annotations

from datetime import date

import pytest

from tests.measures.helpers import covered, line, person, run


def _run(members, spans, claims):
    return run("BCS", members, spans, claims)


def woman(mid: str, birth: date = date(1965, 5, 1), death: date | None = None) -> dict:
    return person(mid, birth, "F", death)


@pytest.mark.parametrize("birth, in_population", [
    (date(1975, 12, 31), True),   # turns 50 on the last day of the year: 50 at period end
    (date(1976, 1, 1), False),    # 49 at period end
    (date(1951, 1, 1), True),     # 74 at period end
    (date(1950, 12, 31), False),  # 75 at period end
])
def test_age_band_at_period_end(birth, in_population):
    results, counts = _run([woman("A", birth)], [covered("A")], [])
    assert (results.height == 1) is in_population
    assert counts.reconciles()


def test_men_are_not_in_the_population():
    results, counts = _run([{"member_id": "M", "sex": "M", "birth_date": date(1965, 1, 1), "death_date": None}], [covered("M")], [])
    assert results.height == 0 and counts.not_eligible["not_sex"] == 1


@pytest.mark.parametrize("spans, enrolled", [
    ([covered("A", start=date(2023, 10, 1))], True),                                   # exactly from Oct 1 two years prior
    ([covered("A", start=date(2023, 11, 15))], True),                                  # one 45-day gap at the start
    ([covered("A", start=date(2023, 11, 16))], False),                                 # a 46-day gap
    ([covered("A", end=date(2024, 5, 31)), covered("A", start=date(2024, 7, 1))], True),   # one 30-day gap
    ([covered("A", end=date(2024, 5, 31)), covered("A", start=date(2024, 7, 1), end=date(2025, 2, 28)),
      covered("A", start=date(2025, 4, 1))], False),                                   # two gaps
    ([covered("A", end=date(2025, 12, 30))], False),                                   # not enrolled on the anchor date Dec 31
    ([covered("A", end=date(2024, 12, 31), payer="medicaid"), covered("A", start=date(2025, 1, 1), payer="medicare")], True),  # payer switch, no gap
])
def test_continuous_enrollment(spans, enrolled):
    results, counts = _run([woman("A")], spans, [])
    assert (results.height == 1) is enrolled
    assert counts.reconciles()


@pytest.mark.parametrize("claims, numerator", [
    ([line("A", date(2025, 6, 1), hcpcs="77067")], True),        # screening mammogram in the MY
    ([line("A", date(2023, 10, 1), hcpcs="G0202")], True),       # first day of the 27-month lookback
    ([line("A", date(2023, 9, 30), hcpcs="77067")], False),      # one day before the lookback
    ([line("A", date(2026, 1, 2), hcpcs="77067")], False),       # after the period
    ([line("A", date(2025, 2, 1), rev="0403", hcpcs=None)], True),  # institutional screening mammography revenue code
    ([line("A", date(2025, 2, 1), pcs="BH02ZZZ")], True),        # ICD-10-PCS bilateral breast radiography
    ([line("A", date(2025, 2, 1), hcpcs="99213")], False),       # an office visit is not a mammogram
])
def test_numerator_window_and_value_set(claims, numerator):
    results, _ = _run([woman("A")], [covered("A")], claims)
    assert results["in_numerator"].to_list() == [numerator]


@pytest.mark.parametrize("member, claims, reason", [
    (woman("A", death=date(2025, 7, 1)), [], "deceased"),
    (woman("A"), [line("A", date(2025, 3, 1), rev="0651")], "hospice"),                       # hospice in the MY
    (woman("A"), [line("A", date(2024, 3, 1), rev="0651")], None),                            # hospice before the MY does not exclude
    (woman("A"), [line("A", date(2019, 3, 1), dx="Z9013")], "bilateral_mastectomy"),          # any time before period end
    (woman("A"), [line("A", date(2019, 3, 1), dx="Z9012"), line("A", date(2021, 3, 1), pcs="0HTT0ZZ")], "bilateral_mastectomy"),  # left + right
    (woman("A"), [line("A", date(2019, 3, 1), dx="Z9012")], None),                            # one side only
])
def test_exclusions(member, claims, reason):
    results, counts = _run([member], [covered("A")], claims)
    row = results.row(0, named=True)
    assert row["exclusion_reason"] == reason
    assert row["in_denominator"] is (reason is None)
    if reason:
        assert row["in_numerator"] is None and counts.excluded == {reason: 1}
    assert counts.reconciles()


def test_dual_counted_once_and_attributed_to_medicare():
    spans = [covered("A", payer="medicaid"), covered("A", payer="medicare")]
    spans[0]["dual_status"] = spans[1]["dual_status"] = "full"
    results, counts = _run([woman("A")], spans, [line("A", date(2025, 6, 1), hcpcs="77067")])
    assert results.height == 1 and counts.denominator == 1
    assert results.row(0, named=True)["payer"] == "medicare" and results.row(0, named=True)["dual_status"] == "full"
