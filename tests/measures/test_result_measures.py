"""CBP and HBD: the latest result decides, from CPT II codes on claims or from clinical values."""
from __future__ import annotations

from datetime import date

import pytest

from tests.measures.helpers import covered, line, person, run

HTN = [line("A", date(2024, 5, 1), dx="I10"), line("A", date(2025, 2, 1), dx="I10")]
DM = [line("A", date(2024, 5, 1), dx="E119"), line("A", date(2025, 2, 1), dx="E1165")]


def obs(d: date, loinc: str, value: float) -> dict:
    return {"member_id": "A", "observation_date": d, "loinc_code": loinc, "value_numeric": value}


@pytest.mark.parametrize("claims, observations, controlled, source", [
    ([line("A", date(2025, 6, 1), hcpcs="3074F"), line("A", date(2025, 6, 1), hcpcs="3078F")], [], True, "claims"),   # 128/78 by CPT II
    ([line("A", date(2025, 6, 1), hcpcs="3077F"), line("A", date(2025, 6, 1), hcpcs="3078F")], [], False, "claims"),  # systolic >= 140
    ([], [obs(date(2025, 9, 1), "8480-6", 150), obs(date(2025, 9, 1), "8462-4", 85),
          obs(date(2025, 11, 1), "8480-6", 132), obs(date(2025, 11, 1), "8462-4", 84)], True, "clinical"),      # latest date wins
    ([], [obs(date(2025, 11, 1), "8480-6", 139.9), obs(date(2025, 11, 1), "8462-4", 90)], False, "clinical"),   # 90 is not < 90
    ([], [obs(date(2025, 11, 1), "8480-6", 150), obs(date(2025, 11, 1), "8480-6", 130),
          obs(date(2025, 11, 1), "8462-4", 80)], True, "clinical"),                                             # lowest reading of the day
    ([line("A", date(2025, 3, 1), hcpcs="3075F"), line("A", date(2025, 3, 1), hcpcs="3079F")],
     [obs(date(2025, 10, 1), "8480-6", 160), obs(date(2025, 10, 1), "8462-4", 95)], False, "clinical"),         # later clinical reading beats earlier claim
    ([], [obs(date(2025, 11, 1), "8480-6", 120)], False, None),                                                 # systolic only: no complete reading
    ([], [], False, None),                                                                                      # no reading: not controlled
])
def test_cbp_latest_reading(claims, observations, controlled, source):
    results, counts = run("CBP", [person("A", date(1960, 1, 1))], [covered("A")], HTN + claims, observations)
    row = results.row(0, named=True)
    assert row["in_numerator"] is controlled and row["evidence_source"] == source
    assert counts.reconciles()


def test_cbp_needs_two_hypertension_dates():
    _, counts = run("CBP", [person("A", date(1960, 1, 1))], [covered("A")], HTN[:1])
    assert counts.not_eligible["no_essential_hypertension"] == 1


@pytest.mark.parametrize("claims, observations, poor", [
    ([line("A", date(2025, 6, 1), hcpcs="3046F")], [], True),            # CPT II > 9.0
    ([line("A", date(2025, 6, 1), hcpcs="3052F")], [], False),           # CPT II 8.0-9.0
    ([], [obs(date(2025, 6, 1), "4548-4", 9.0)], False),                 # exactly 9.0 is not poor control
    ([], [obs(date(2025, 6, 1), "4548-4", 9.1)], True),
    ([], [], True),                                                      # no result: counted as poor control
    ([], [obs(date(2024, 12, 1), "4548-4", 6.5)], True),                 # last year's result does not count
])
def test_hbd_poor_control(claims, observations, poor):
    results, _ = run("HBD", [person("A", date(1970, 1, 1))], [covered("A")], DM + claims, observations)
    assert results.row(0, named=True)["in_numerator"] is poor
