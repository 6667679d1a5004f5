"""IET on hand-built members: the new-episode index date (negative history, intake period),
initiation within 14 days and engagement within 34 days after initiation. Measurement year 2025."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.measures.helpers import covered, line, person, run

INDEX = date(2025, 3, 1)


def on(days: int) -> date:
    return INDEX + timedelta(days=days)


def episode(d: date = INDEX) -> dict:
    return line("A", d, hcpcs="99284", dx="F1120")          # ED visit with opioid dependence


def visit(d: date, dx: str = "F1120") -> dict:
    return line("A", d, hcpcs="99213", dx=dx)               # office visit; an SUD visit only with an SUD diagnosis


def _rows(claims: list[dict], birth: date = date(1990, 1, 1), spans=None) -> tuple[dict[str, bool], object]:
    results, counts = run("IET", [person("A", birth)], spans or [covered("A")], claims)
    assert counts.reconciles()
    return {r["submeasure"]: r["in_numerator"] for r in results.iter_rows(named=True)}, counts


@pytest.mark.parametrize("prior_days, eligible", [
    (194, False),   # an SUD diagnosis 194 days before: not a new episode
    (195, True),    # 195 days before: outside the negative-history window
])
def test_negative_history_194_days(prior_days, eligible):
    rows, counts = _rows([line("A", on(-prior_days), dx="F1020"), episode()])
    assert bool(rows) is eligible
    assert counts.not_eligible["no_index"] == (0 if eligible else 1)


def test_medication_treatment_counts_as_history():
    _, counts = _rows([line("A", on(-30), hcpcs="J0572", dx="Z79891"), episode()])
    assert counts.not_eligible["no_index"] == 1


def test_a_later_new_episode_is_the_index():
    # Feb 1 is not new (Dec 1 history); Sep 1 is (212 days after Feb 1); initiation on Sep 1 via an SUD service
    claims = [line("A", date(2024, 12, 1), dx="F1020"), line("A", date(2025, 2, 1), dx="F1020"),
              line("A", date(2025, 9, 1), dx="F1020"), line("A", date(2025, 9, 1), hcpcs="H0001", dx="F1020")]
    rows, _ = _rows(claims)
    assert rows["initiation"] is True


@pytest.mark.parametrize("day, eligible", [
    (date(2025, 11, 14), True),    # last day of the intake period
    (date(2025, 11, 15), False),
    (date(2024, 12, 31), False),   # last year's episode is history, not an index
])
def test_intake_period(day, eligible):
    _, counts = _rows([episode(day)])
    assert counts.not_eligible["no_index"] == (0 if eligible else 1)


@pytest.mark.parametrize("birth, eligible", [
    (date(2012, 3, 1), True),    # 13th birthday on the episode date
    (date(2012, 3, 2), False),   # still 12 on the episode date
])
def test_age_13_at_the_episode(birth, eligible):
    _, counts = _rows([episode()], birth=birth)
    assert counts.not_eligible["not_age"] == (0 if eligible else 1)


@pytest.mark.parametrize("claims, initiated", [
    ([visit(on(13))], True),                                    # 13 days after the episode: 14th day
    ([visit(on(14))], False),                                   # too late
    ([visit(on(5), dx="J069")], False),                         # a visit without an SUD diagnosis is not SUD treatment
    ([visit(on(0))], False),                                    # a visit on the episode date is the episode itself
    ([line("A", on(0), hcpcs="H0001", dx="F1120")], True),      # an SUD assessment on the episode date
    ([line("A", on(3), hcpcs="J0572", dx="Z79891")], True),     # buprenorphine/naloxone (medication treatment)
    ([line("A", on(2), pos="57", dx="F1120")], True),           # non-residential SUD facility with an SUD diagnosis
])
def test_initiation_within_14_days(claims, initiated):
    rows, _ = _rows([episode(), *claims])
    assert rows["initiation"] is initiated


def test_inpatient_sud_stay_on_the_episode_date_is_initiation():
    rows, _ = _rows([line("A", INDEX, dx="F1020", pos=None, bill_type="111")])    # institutional inpatient claim
    assert rows["initiation"] is True


def test_daily_hospital_visits_during_the_stay_are_not_engagement():
    # admitted on the episode date (initiation); the attending's daily inpatient visits are part of the stay
    claims = [line("A", INDEX, dx="F10239", pos=None, bill_type="111"), line("A", INDEX, hcpcs="99223", pos="21", dx="F10239"),
              line("A", on(1), hcpcs="99232", pos="21", dx="F10239"), line("A", on(2), hcpcs="99238", pos="21", dx="F10239")]
    rows, _ = _rows(claims)
    assert rows == {"all": False, "engagement": False, "initiation": True}
    rows, _ = _rows([*claims, visit(on(10)), visit(on(20))])     # two outpatient SUD visits after discharge engage
    assert rows["engagement"] is True


@pytest.mark.parametrize("claims, engaged", [
    ([visit(on(20)), visit(on(38))], True),              # two events within 34 days of initiation (day 4)
    ([visit(on(20)), visit(on(39))], False),             # 35 days after initiation
    ([visit(on(20)), visit(on(20))], False),             # two claims on one date are one event
    ([line("A", on(30), hcpcs="J2315", dx="F1020")], True),  # one long-acting injection (naltrexone depot)
    ([visit(on(2)), visit(on(3))], True),                # initiation is day 2; day 3 and day 4 (below) engage
])
def test_engagement_after_initiation(claims, engaged):
    rows, _ = _rows([episode(), visit(on(4)), *claims])
    assert rows["initiation"] is True
    assert rows["engagement"] is engaged
    assert rows["all"] is engaged       # the whole-measure row is engagement


def test_no_initiation_no_engagement():
    rows, _ = _rows([episode(), visit(on(20)), visit(on(25)), visit(on(30))])   # treatment, but none within 14 days
    assert rows == {"all": False, "engagement": False, "initiation": False}


@pytest.mark.parametrize("end_days, enrolled", [
    (47, True),     # enrolled through 47 days after the episode
    (46, False),    # ends a day early: no gaps allowed
])
def test_enrollment_window_around_the_episode(end_days, enrolled):
    _, counts = _rows([episode()], spans=[covered("A", end=on(end_days))])
    assert counts.not_eligible["not_continuously_enrolled"] == (0 if enrolled else 1)


def test_hospice_excludes_from_every_row():
    results, counts = run("IET", [person("A", date(1990, 1, 1))], [covered("A")], [episode(), visit(on(4)), line("A", on(60), hcpcs="Q5003")])
    assert counts.excluded == {"hospice": 1} and counts.denominator == 0
    assert results["exclusion_reason"].to_list() == ["hospice"] * 3 and results["in_numerator"].null_count() == 3


def test_value_sets_read_only_through_composites_are_dropped_after_them(monkeypatch):
    """IET reads its visits and inpatient stays only as parts of composites (with an SUD diagnosis the
    same day): the engine drops their events once those composites are built, with the same results
    as keeping them."""
    from equity_pipeline.measures import engine
    from equity_pipeline.measures.spec import load_specs

    assert engine.composite_only_value_sets(load_specs()["IET"]) == {"sud_visit", "inpatient_stay"}
    people = [person(m, date(1990, 1, 1)) for m in "ABCDE"]
    claims = [
        line("A", INDEX, hcpcs="99284", dx="F1120"), line("A", on(4), hcpcs="99213", dx="F1120"),
        line("A", on(20), hcpcs="99213", dx="F1120"), line("A", on(30), hcpcs="99213", dx="F1120"),
        line("B", INDEX, dx="F1020", pos=None, bill_type="111"), line("B", on(10), hcpcs="99213", dx="F1020"),
        line("B", on(12), hcpcs="99213", dx="E119"), line("B", on(15), hcpcs="99213", dx="F1020"),
        line("C", INDEX, hcpcs="99284", dx="F1120"), line("C", on(3), hcpcs="99213", dx="I10"),
        line("D", on(-100), hcpcs="99213", dx="F1120"), line("D", INDEX, hcpcs="99213", dx="F1120"),
        line("E", on(5), hcpcs="99213", dx="E119"),
    ]
    spans = [covered(m) for m in "ABCDE"]
    kept = run("IET", people, spans, claims)
    monkeypatch.setattr(engine, "composite_only_value_sets", lambda spec: set())
    full = run("IET", people, spans, claims)
    assert kept[0].equals(full[0]) and kept[1] == full[1]
    assert kept[1].denominator >= 3 and kept[0]["in_numerator"].fill_null(False).sum() >= 2   # not vacuous
