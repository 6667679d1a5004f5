"""CCS, COL, CHL, WCV and CDF on hand-built members; each case names the spec rule it checks."""
from __future__ import annotations

from datetime import date

import pytest

from tests.measures.helpers import covered, line, person, run


def _one(measure, member, claims, observations=None):
    results, counts = run(measure, [member], [covered(member["member_id"])], claims, observations)
    assert counts.reconciles()
    return results, counts


# ---------------- CCS
@pytest.mark.parametrize("birth, claims, numerator", [
    (date(1980, 1, 1), [line("A", date(2023, 1, 1), hcpcs="88142")], True),    # cytology on the first day of the 3-year window
    (date(1980, 1, 1), [line("A", date(2022, 12, 31), hcpcs="88142")], False),  # cytology a day too early
    (date(1980, 1, 1), [line("A", date(2021, 1, 1), hcpcs="87624")], True),    # hrHPV 5-year window, age 40 at test
    (date(1995, 6, 1), [line("A", date(2024, 6, 1), hcpcs="87624")], False),   # hrHPV at age 29: does not count
    (date(1980, 1, 1), [line("A", date(2025, 3, 1), snomed="171149006")], True),  # SNOMED (Synthea-style) evidence
])
def test_ccs_numerator(birth, claims, numerator):
    results, _ = _one("CCS", person("A", birth), claims)
    assert results["in_numerator"].to_list() == [numerator]


def test_ccs_hysterectomy_excludes_and_men_are_not_eligible():
    results, counts = _one("CCS", person("A", date(1980, 1, 1)), [line("A", date(2018, 1, 1), dx="Z90710")])
    assert results["exclusion_reason"].to_list() == ["hysterectomy_no_residual_cervix"]
    _, counts = _one("CCS", person("B", date(1980, 1, 1), sex="M"), [])
    assert counts.not_eligible["not_sex"] == 1


# ---------------- COL
@pytest.mark.parametrize("claims, numerator", [
    ([line("A", date(2016, 1, 1), hcpcs="45378")], True),     # colonoscopy 10 years back (MY-9 .. MY)
    ([line("A", date(2015, 12, 31), hcpcs="45378")], False),  # colonoscopy 11 years back
    ([line("A", date(2025, 5, 1), hcpcs="82274")], True),     # FIT in the measurement year
    ([line("A", date(2024, 12, 31), hcpcs="82274")], False),  # FIT the year before does not count
    ([line("A", date(2021, 2, 1), hcpcs="45330")], True),     # flexible sigmoidoscopy within 5 years
    ([line("A", date(2023, 2, 1), hcpcs="81528")], True),     # FIT-DNA within 3 years
    ([line("A", date(2022, 12, 1), hcpcs="81528")], False),   # FIT-DNA 4 years back
    ([line("A", date(2020, 2, 1), snomed="73761001")], True), # Synthea colonoscopy (SNOMED)
])
def test_col_numerator_windows(claims, numerator):
    results, _ = _one("COL", person("A", date(1960, 3, 3), sex="M"), claims)
    assert results["in_numerator"].to_list() == [numerator]


@pytest.mark.parametrize("dx, reason", [
    ("C184", "colorectal_cancer"),   # prefix C18*: malignant neoplasm of transverse colon
    ("C20", "colorectal_cancer"),
    ("C50911", None),                # breast cancer does not exclude
])
def test_col_cancer_exclusion_by_prefix(dx, reason):
    results, _ = _one("COL", person("A", date(1960, 3, 3)), [line("A", date(2019, 1, 1), dx=dx)])
    assert results["exclusion_reason"].to_list() == [reason]


# ---------------- CHL
def test_chl_needs_sexual_activity_and_reports_age_rows():
    members = [person("Y", date(2007, 6, 1)), person("O", date(2002, 6, 1)), person("N", date(2005, 6, 1))]
    spans = [covered(m["member_id"]) for m in members]
    claims = [
        line("Y", date(2025, 2, 1), hcpcs="81025"),   # urine pregnancy test: sexually active, age 18
        line("Y", date(2025, 2, 1), hcpcs="87491"),   # chlamydia NAAT
        line("O", date(2025, 4, 1), dx="Z3041"),      # contraceptive surveillance (prefix Z30): age 23
        # N has no sexual-activity evidence: not in the eligible population
    ]
    results, counts = run("CHL", members, spans, claims)
    rows = {r["member_id"]: (r["submeasure"], r["in_numerator"]) for r in results.iter_rows(named=True)}
    assert rows == {"Y": ("16-20", True), "O": ("21-24", False)}
    assert counts.not_eligible["no_sexual_activity"] == 1


# ---------------- WCV
@pytest.mark.parametrize("birth, row", [(date(2020, 5, 5), "3-11"), (date(2010, 5, 5), "12-17"), (date(2005, 5, 5), "18-21")])
def test_wcv_rows(birth, row):
    results, _ = _one("WCV", person("K", birth), [line("K", date(2025, 9, 1), hcpcs="99393")])
    assert results.row(0, named=True)["submeasure"] == row and results["in_numerator"][0]


# ---------------- CDF
def test_cdf_requires_an_encounter_and_counts_g_codes():
    members = [person("S", date(1990, 1, 1)), person("U", date(1990, 1, 1)), person("X", date(1990, 1, 1)), person("D", date(1990, 1, 1))]
    spans = [covered(m["member_id"]) for m in members]
    claims = [
        line("S", date(2025, 3, 1), hcpcs="99213"), line("S", date(2025, 3, 1), hcpcs="G8510"),  # visit + negative screen
        line("U", date(2025, 3, 1), hcpcs="99213"),                                               # visit, not screened
        line("D", date(2025, 3, 1), hcpcs="99213"), line("D", date(2024, 3, 1), dx="F331"),       # prior depression: excluded
        # X had no visit: not in the population
    ]
    results, counts = run("CDF", members, spans, claims)
    got = {r["member_id"]: (r["in_numerator"], r["exclusion_reason"]) for r in results.iter_rows(named=True)}
    assert got == {"S": (True, None), "U": (False, None), "D": (None, "depression_or_bipolar_before_period")}
    assert counts.not_eligible["no_outpatient_encounter"] == 1
