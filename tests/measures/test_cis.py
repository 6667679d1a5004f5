"""CIS on hand-built children: each antigen's dose count and window from birth, history-of-illness
alternatives, combination vaccines, and the combo10 row. Measurement year 2025."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.measures.helpers import covered, line, person, run

BIRTH = date(2023, 4, 10)            # second birthday 2025-04-10; 42 days old on 2023-05-22


def d(days: int) -> date:
    return BIRTH + timedelta(days=days)


FIRST_BIRTHDAY, SECOND_BIRTHDAY = date(2024, 4, 10), date(2025, 4, 10)
#: Combination 3 with exactly the minimum doses, each antigen on its own code
COMBO3 = {
    "dtap": [("90700", d(61)), ("90700", d(122)), ("90700", d(183)), ("90700", d(460))],
    "ipv": [("90713", d(61)), ("90713", d(122)), ("90713", d(183))],
    "mmr": [("90707", FIRST_BIRTHDAY)],
    "hib": [("90648", d(61)), ("90648", d(122)), ("90648", d(400))],
    "hepb": [("90744", d(1)), ("90744", d(61)), ("90744", d(183))],
    "vzv": [("90716", d(400))],
    "pcv": [("90670", d(61)), ("90670", d(122)), ("90670", d(183)), ("90670", d(450))],
}
COMBO10_EXTRA = {
    "hepa": [("90633", d(400))],
    "rv": [("90681", d(61)), ("90681", d(122))],
    "flu": [("90685", d(200)), ("90685", d(240))],
}


def _claims(doses: dict[str, list[tuple[str, date]]], **replace) -> list[dict]:
    doses = {**doses, **replace}
    return [line("K", when, hcpcs=code) for shots in doses.values() for code, when in shots]


def _rows(claims: list[dict], birth: date = BIRTH) -> dict[str, bool]:
    results, counts = run("CIS", [person("K", birth)], [covered("K", start=birth)], claims)
    assert counts.reconciles()
    return {r["submeasure"]: r["in_numerator"] for r in results.iter_rows(named=True)}


def test_minimum_doses_meet_combo3_not_combo10():
    assert _rows(_claims(COMBO3)) == {"all": True, "combo10": False}


def test_combo10_adds_hepa_rotavirus_and_influenza():
    assert _rows(_claims({**COMBO3, **COMBO10_EXTRA})) == {"all": True, "combo10": True}


@pytest.mark.parametrize("replace, combo3", [
    ({"dtap": [("90700", d(41)), *COMBO3["dtap"][1:]]}, False),        # first DTaP at 41 days old does not count
    ({"dtap": [("90700", d(42)), *COMBO3["dtap"][1:]]}, True),         # 42 days old is the first day a dose counts
    ({"mmr": [("90707", FIRST_BIRTHDAY - timedelta(days=1))]}, False),  # MMR the day before the first birthday
    ({"mmr": [("90707", SECOND_BIRTHDAY)]}, True),                      # MMR on the second birthday
    ({"mmr": [("90707", SECOND_BIRTHDAY + timedelta(days=1))]}, False), # after the second birthday
    ({"pcv": COMBO3["pcv"][:3]}, False),                                 # 3 PCV doses are not enough
    ({"hepb": COMBO3["hepb"][:2] + [("90744", d(61))]}, False),        # two claims on one date are one dose
    ({"vzv": [("90710", d(400))]}, True),                                # MMRV counts as varicella
])
def test_antigen_windows_and_counts(replace, combo3):
    assert _rows(_claims(COMBO3, **replace))["all"] is combo3


def test_combination_vaccine_counts_for_each_antigen():
    # DTaP-IPV/Hib (90698) given 3 times + a 4th DTaP: covers DTaP, IPV and Hib
    combo = [("90698", d(61)), ("90698", d(122)), ("90698", d(183))]
    claims = _claims(COMBO3, dtap=[*combo, ("90700", d(460))], ipv=[], hib=[])
    assert _rows(claims)["all"] is True


def test_newborn_hepb_procedure_counts_as_a_dose():
    claims = _claims(COMBO3, hepb=[("90744", d(61)), ("90744", d(183))]) + [line("K", d(0), pcs="3E0234Z")]
    assert _rows(claims)["all"] is True


@pytest.mark.parametrize("history, combo3", [
    (["B059", "B269", "B069"], True),   # measles, mumps and rubella history replaces the MMR vaccine
    (["B059", "B269"], False),          # rubella missing
])
def test_mmr_history_of_illness(history, combo3):
    claims = _claims(COMBO3, mmr=[]) + [line("K", d(300), dx=dx) for dx in history]
    assert _rows(claims)["all"] is combo3


def test_varicella_history_replaces_the_vaccine():
    assert _rows(_claims(COMBO3, vzv=[]) + [line("K", d(500), dx="B019")])["all"] is True


@pytest.mark.parametrize("rv, combo10", [
    ([("90680", d(61)), ("90680", d(122)), ("90680", d(183))], True),   # 3 doses of the 3-dose vaccine
    ([("90680", d(61)), ("90680", d(122))], False),                     # only 2 of the 3-dose vaccine
    ([("90681", d(61)), ("90680", d(122)), ("90680", d(183))], True),   # mixed schedule: 3 doses
])
def test_rotavirus_schedules(rv, combo10):
    assert _rows(_claims({**COMBO3, **COMBO10_EXTRA}, rv=rv))["combo10"] is combo10


def test_influenza_needs_180_days_of_age():
    flu = [("90685", d(179)), ("90685", d(240))]
    assert _rows(_claims({**COMBO3, **COMBO10_EXTRA}, flu=flu))["combo10"] is False


@pytest.mark.parametrize("birth, eligible", [
    (date(2023, 1, 1), True),     # turns 2 on the first day of the year
    (date(2023, 12, 31), True),   # turns 2 on the last day
    (date(2022, 12, 31), False),  # 3 on Dec 31
    (date(2024, 1, 1), False),    # 1 on Dec 31
])
def test_children_turning_two_in_the_year(birth, eligible):
    results, counts = run("CIS", [person("K", birth)], [covered("K", start=birth)], [])
    assert (results.height > 0) is eligible
    assert counts.not_eligible["not_age"] == (0 if eligible else 1)


def test_enrollment_is_the_year_before_the_second_birthday():
    # coverage starts 46 days after the first birthday: lead gap too long
    _, counts = run("CIS", [person("K", BIRTH)], [covered("K", start=FIRST_BIRTHDAY + timedelta(days=46))], _claims(COMBO3))
    assert counts.not_eligible["not_continuously_enrolled"] == 1
    results, _ = run("CIS", [person("K", BIRTH)], [covered("K", start=FIRST_BIRTHDAY)], _claims(COMBO3))
    assert results.filter(submeasure="all")["in_numerator"].to_list() == [True]   # doses before coverage still count
