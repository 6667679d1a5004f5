"""PCR on hand-built stays: index window, transfers merged, 30-day readmission boundaries, planned
readmissions, per-stay exclusions and enrollment, and the observed/expected risk model.
Measurement year 2025 (index discharges January 1 - December 1)."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from equity_pipeline.measures.readmission import design_matrix, fit_expected, observed_expected
from tests.measures.helpers import covered, line, person, run_readmission, stay

ADMIT, DISCHARGE = date(2025, 3, 1), date(2025, 3, 5)


def after(days: int) -> date:
    return DISCHARGE + timedelta(days=days)


def _one(claims: list[dict], birth: date = date(1970, 6, 1), spans=None, death: date | None = None):
    results, counts = run_readmission("PCR", [person("A", birth, sex="M", death=death)], spans or [covered("A")], claims)
    assert counts.reconciles()
    return results, counts


@pytest.mark.parametrize("readmit_day, readmitted, index_stays", [
    (30, True, 2),    # admitted 30 days after discharge: a readmission (and an index stay of its own)
    (31, False, 2),   # 31 days: not a readmission
    (2, True, 2),     # 2 days after discharge: the earliest readmission
    (1, False, 1),    # admitted the day after discharge: a direct transfer, merged into one stay
])
def test_readmission_window(readmit_day, readmitted, index_stays):
    claims = [stay("A", ADMIT, DISCHARGE), stay("A", after(readmit_day), after(readmit_day + 3))]
    results, counts = _one(claims)
    row = results.row(0, named=True)
    assert row["denominator_value"] == index_stays
    assert row["numerator_value"] == (1 if readmitted else 0)
    assert counts.details["denominator_stays"] == index_stays


@pytest.mark.parametrize("dx, pcs, planned", [
    ("Z5111", None, True),       # chemotherapy encounter: planned
    ("J189", "0TY00Z0", True),   # kidney transplant during the stay: planned
    ("J189", None, False),       # pneumonia: unplanned
])
def test_planned_readmissions_do_not_count(dx, pcs, planned):
    claims = [stay("A", ADMIT, DISCHARGE), stay("A", after(10), after(12), dx=dx, pcs=pcs)]
    results, _ = _one(claims)
    assert results.row(0, named=True)["numerator_value"] == (0 if planned else 1)


@pytest.mark.parametrize("discharge, index", [
    (date(2025, 12, 1), True),    # last index discharge date
    (date(2025, 12, 2), False),   # its 30-day follow-up would leave the year
    (date(2025, 1, 1), True),
])
def test_index_discharge_window(discharge, index):
    _, counts = _one([stay("A", discharge - timedelta(days=3), discharge)])
    assert counts.not_eligible["no_index_stay"] == (0 if index else 1)


@pytest.mark.parametrize("birth, eligible", [
    (date(1960, 3, 6), True),     # 64 until 2025-03-06: 64 on the discharge date (Mar 5)
    (date(1960, 3, 5), False),    # 65th birthday on the discharge date
    (date(2007, 3, 5), True),     # 18th birthday on the discharge date
])
def test_age_at_discharge(birth, eligible):
    _, counts = _one([stay("A", ADMIT, DISCHARGE)], birth=birth)
    assert counts.not_eligible["not_age"] == (0 if eligible else 1)


@pytest.mark.parametrize("index_claims, reason", [
    ([stay("A", ADMIT, DISCHARGE, status="20")], "died_in_hospital"),
    ([stay("A", ADMIT, DISCHARGE, status="02")], "transfer_out"),    # sent to another acute hospital, no claim from it
    ([stay("A", ADMIT, ADMIT)], "same_day_stay"),
    ([stay("A", ADMIT, DISCHARGE, dx="O800")], "pregnancy"),
    ([stay("A", ADMIT, DISCHARGE, status="20", dx="O800")], "died_in_hospital"),    # first reason in spec order wins
    ([stay("A", ADMIT, DISCHARGE), line("A", date(2025, 11, 1), hcpcs="Q5003")], "hospice"),
])
def test_index_stay_exclusions(index_claims, reason):
    results, counts = _one(index_claims)
    assert results["exclusion_reason"].to_list() == [reason]
    assert counts.excluded == {reason: 1} and counts.denominator == 0


def test_member_death_before_discharge_excludes():
    _, counts = _one([stay("A", ADMIT, DISCHARGE)], death=DISCHARGE)
    assert counts.excluded == {"deceased": 1}


def test_one_excluded_stay_leaves_the_member_in_with_the_other():
    claims = [stay("A", ADMIT, DISCHARGE, dx="O800"), stay("A", date(2025, 7, 1), date(2025, 7, 4))]
    results, counts = _one(claims)
    row = results.row(0, named=True)
    assert (row["is_excluded"], row["denominator_value"]) == (False, 1.0)
    assert counts.details["stays_excluded"] == {"pregnancy": 1}


@pytest.mark.parametrize("spans, enrolled", [
    ([covered("A", start=DISCHARGE - timedelta(days=365), end=after(30))], True),   # exactly 365 before .. 30 after
    ([covered("A", start=DISCHARGE - timedelta(days=365), end=after(29))], False),  # a 1-day gap after discharge: none allowed
    ([covered("A", start=DISCHARGE - timedelta(days=320), end=after(30))], True),   # a 45-day lead gap is allowed
    ([covered("A", start=DISCHARGE - timedelta(days=319), end=after(30))], False),  # 46 days is not
])
def test_enrollment_around_discharge(spans, enrolled):
    _, counts = _one([stay("A", ADMIT, DISCHARGE)], spans=spans)
    assert counts.not_eligible["not_continuously_enrolled"] == (0 if enrolled else 1)


def test_members_reconcile_across_reasons():
    members = [person(m, date(1970, 1, 1)) for m in "ABCDE"] + [person("F", date(1950, 1, 1))]
    claims = [stay("A", ADMIT, DISCHARGE), stay("A", after(5), after(8)),     # A: 2 index stays, 1 readmitted
              stay("B", ADMIT, DISCHARGE, status="20"),                       # B: excluded
              stay("C", ADMIT, DISCHARGE),                                     # C: 1 stay, not readmitted
              stay("F", ADMIT, DISCHARGE)]                                     # F: 75, not_age; D and E: no stay
    results, counts = run_readmission("PCR", members, [covered(m["member_id"]) for m in members], claims)
    assert counts.reconciles()
    assert counts.not_eligible == {"no_index_stay": 2, "not_age": 1, "not_continuously_enrolled": 0}
    assert (counts.denominator, counts.numerator, counts.excluded) == (2, 1, {"died_in_hospital": 1})
    den = results.filter(pl.col("in_denominator"))
    assert den["denominator_value"].sum() == 3 and den["numerator_value"].sum() == 1
    # few readmissions: every stay gets the observed rate (intercept only); expected adds up to observed
    assert counts.details["risk_model"]["method"] == "intercept_only"
    assert den["expected_value"].sum() == pytest.approx(1.0)


# ---------------- risk model
def _stays(groups: list[tuple[str, int, int, int, int]]) -> pl.DataFrame:
    """(sex, age, comorbidities, stays, readmitted) -> one row per stay."""
    rows = []
    for sex, age, comorb, n, k in groups:
        rows += [{"sex": sex, "age": age, "comorbidities": comorb, "readmitted": i < k} for i in range(n)]
    return pl.DataFrame(rows)


MODEL = {"age_bands": [18, 45, 55], "sex": True, "comorbidities": ["x"], "comorbidity_cap": 4, "min_events": 10}


def test_saturated_logistic_model_reproduces_group_rates():
    # one covariate varies (sex): the fitted probabilities are the group rates, 10/20 and 4/20,
    # and the male coefficient is logit(0.5) - logit(0.2) = ln(4)
    stays = _stays([("M", 50, 1, 20, 10), ("F", 50, 1, 20, 4)])
    p, summary = fit_expected(stays, MODEL)
    assert summary["method"] == "logistic" and summary["covariates"] == ["male"]
    assert p[:20] == pytest.approx([0.5] * 20) and p[20:] == pytest.approx([0.2] * 20)
    assert summary["coefficients"]["male"] == pytest.approx(np.log(4), abs=1e-5)
    assert summary["expected"] == pytest.approx(14.0)      # in sample, expected = observed
    assert 0.5 < summary["c_statistic"] < 1


def test_design_matrix_bands_and_cap():
    stays = _stays([("M", 44, 0, 1, 0), ("F", 45, 7, 1, 1), ("M", 64, 2, 1, 0)])
    x, names = design_matrix(stays, MODEL)
    assert names == ["const", "age_45_54", "age_55_plus", "male", "comorbidities"]
    assert x.tolist() == [[1, 0, 0, 1, 0], [1, 1, 0, 0, 4], [1, 0, 1, 1, 2]]


@pytest.mark.parametrize("groups, reason", [
    ([("M", 50, 1, 20, 9), ("F", 50, 1, 20, 0)], "fewer than 10"),          # 9 readmissions
    ([("M", 50, 1, 30, 15)], "no covariate varies"),
    ([("M", 50, 1, 20, 20), ("F", 50, 1, 20, 0)], "logistic fit failed"),   # perfect separation by sex
])
def test_intercept_only_fallback(groups, reason):
    stays = _stays(groups)
    p, summary = fit_expected(stays, MODEL)
    assert summary["method"] == "intercept_only" and summary["reason"].startswith(reason)
    assert p == pytest.approx(np.full(stays.height, stays["readmitted"].mean()))


def test_expected_is_carried_per_member_and_higher_with_comorbidities():
    # 40 members, one stay each; members with heart failure (I509) in the year before are readmitted more often
    members, claims, spans = [], [], []
    for i in range(40):
        mid = f"M{i:02d}"
        members.append(person(mid, date(1970, 1, 1), sex="M" if i % 2 else "F"))
        spans.append(covered(mid))
        sick = i < 20
        claims.append(stay(mid, ADMIT, DISCHARGE))
        if sick:
            claims.append(line(mid, date(2024, 10, 1), dx="I509"))
        if (sick and i < 14) or (not sick and i >= 34):     # 14/20 sick readmitted, 6/20 others
            claims.append(stay(mid, after(10), after(12)))
    results, counts = run_readmission("PCR", members, spans, claims)
    model = counts.details["risk_model"]
    assert model["method"] == "logistic" and "comorbidities" in model["covariates"]
    expected = dict(zip(results["member_id"], results["expected_value"]))
    assert expected["M00"] > expected["M39"]                       # heart failure raises the expected risk
    observed = results["numerator_value"].sum()
    assert results["expected_value"].sum() == pytest.approx(observed, rel=1e-6)   # overall O/E = 1 in sample


def test_observed_expected_ratio_and_poisson_interval():
    # O = 12, E = 10: Byar's limits (O >= 10) divided by E, computed by hand:
    # lower = 12 (1 - 1/108 - 1.96/(3 sqrt 12))^3 / 10, upper = 13 (1 - 1/117 + 1.96/(3 sqrt 13))^3 / 10
    counts = pl.DataFrame({"numerator": [12.0, 3.0, None], "expected": [10.0, 0.0, 5.0]})
    out = observed_expected(counts)
    assert out["oe_ratio"][0] == pytest.approx(1.2)
    assert out["oe_ci_lower"][0] == pytest.approx(0.61936, abs=1e-4)
    assert out["oe_ci_upper"][0] == pytest.approx(2.0963, abs=1e-3)
    assert out["oe_ratio"][1:].to_list() == [None, None]      # no expected / suppressed count: no ratio


# ---------------- downstream: stratified counts carry expected; public rates are Wilson proportions of stays
def _results(rows: list[tuple[str, str, str, float, float, float | None]]) -> pl.DataFrame:
    """(member, measure, stratum, index stays, readmitted, expected) -> member-level results."""
    return pl.DataFrame([
        {"member_id": m, "measure_id": mid, "measure_version": "1", "submeasure": "all", "period": "2025", "in_denominator": True,
         "denominator_value": n, "numerator_value": x, "expected_value": e, "_stratum": s}
        for m, mid, s, n, x, e in rows
    ])


def test_stratified_counts_carry_expected_and_rates_use_stays():
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.stats.proportions import wilson_interval
    from equity_pipeline.stratify import public_rates, rates_with_reasons, stratified_counts
    from equity_pipeline.suppression import COMPLEMENTARY_REASON, PRIMARY_REASON, PUBLIC_REASON

    # stratum A: 30 members with 2 stays each (60 stays, 15 readmitted, expected 0.4 per member = 12);
    # stratum B: 5 members with 3 stays each (15 stays, but 5 members is a small cell of people);
    # stratum C: 24 members with 1 stay each, 12 readmitted (smaller than A: complementary suppression takes it)
    rows = [(f"A{i}", "PCR", "A", 2.0, 1.0 if i < 15 else 0.0, 0.4) for i in range(30)]
    rows += [(f"B{i}", "PCR", "B", 3.0, 1.0 if i < 2 else 0.0, 0.4) for i in range(5)]
    rows += [(f"C{i}", "PCR", "C", 1.0, 1.0 if i < 12 else 0.0, 0.3) for i in range(24)]
    rows += [(f"A{i}", "CHL", "A", 1.0, 1.0, None) for i in range(15)]
    results = _results(rows)
    attrs = results.select("member_id", state=pl.lit("MA"), race_ethnicity=pl.col("_stratum")).unique("member_id")
    counts = stratified_counts(results.drop("_stratum"), attrs, ("race_ethnicity",))
    pop = counts.filter(unit_level="population")
    pcr = {r["stratum"]: r for r in pop.filter(measure_id="PCR").iter_rows(named=True)}
    assert (pcr["all"]["denominator"], pcr["all"]["numerator"], pcr["all"]["members"]) == (99.0, 29.0, 59.0)
    assert pcr["A"]["expected"] == pytest.approx(12.0) and pcr["all"]["expected"] == pytest.approx(21.2)
    assert pop.filter(measure_id="CHL")["expected"].null_count() == pop.filter(measure_id="CHL").height   # no risk model

    oe = observed_expected(pop.filter(measure_id="PCR", stratum="A"))
    assert oe["oe_ratio"][0] == pytest.approx(15 / 12)

    specs = {m: load_specs()[m] for m in ("PCR", "CHL")}
    rates = public_rates(counts, specs, {"PCR": "claims", "CHL": "claims"}).filter(unit_level="population", measure_id="PCR")
    a = rates.filter(stratum="A").row(0, named=True)
    lo, hi = wilson_interval(15.0, 60.0)[1:3]
    assert (a["rate"], a["ci_lower"], a["ci_upper"]) == pytest.approx((0.25, float(lo), float(hi)))
    b = rates.filter(stratum="B").row(0, named=True)
    assert b["suppressed"] and b["suppression_reason"] == PUBLIC_REASON
    assert rates.filter(stratum="C")["suppression_reason"].to_list() == [PUBLIC_REASON]   # the public table never tells which kind
    kinds = rates_with_reasons(counts, specs, {"PCR": "claims", "CHL": "claims"}).filter(unit_level="population", measure_id="PCR")
    assert kinds.filter(stratum="B")["suppression_reason"].to_list() == [PRIMARY_REASON]   # 15 stays but only 5 members
    assert kinds.filter(stratum="C")["suppression_reason"].to_list() == [COMPLEMENTARY_REASON]
