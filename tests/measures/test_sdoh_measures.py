"""SDOH_SCREEN and SDOH_POSITIVE: AHC HRSN / PRAPARE answers -> domain facts -> measure rows.

Answers are LOINC question/answer codes from ``reference/data/sdoh_screening_items.csv``; the
expected domain results below are worked out by hand from the AHC HRSN scoring rules.
"""
from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from equity_pipeline.measures.engine import evaluate
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.standards.sdoh import domain_results, screening_events
from tests.measures.helpers import MY, covered, person

MEMBER_SCHEMA = {"member_id": pl.String, "sex": pl.String, "birth_date": pl.Date, "death_date": pl.Date}
SPAN_SCHEMA = {"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
               "enrollment_start": pl.Date, "enrollment_end": pl.Date}
SCREEN_SCHEMA = {"member_id": pl.String, "screening_id": pl.String, "screening_date": pl.Date, "instrument": pl.String,
                 "question_code": pl.String, "answer_code": pl.String}

#: a complete AHC HRSN screening with no need in any domain
NO_NEED = {"71802-3": "LA31993-1", "96778-6": "LA9-3", "88122-7": "LA28398-8", "88123-5": "LA28398-8",
           "93030-5": "LA32-8", "96779-4": "LA32-8",
           "95618-5": "LA6270-8", "95617-7": "LA6270-8", "95616-9": "LA6270-8", "95615-1": "LA6270-8"}
#: safety item answer codes by score (Never=1 ... Frequently=5)
SCORE = {1: "LA6270-8", 2: "LA10066-1", 3: "LA10082-8", 4: "LA16644-9", 5: "LA6482-9"}
SAFETY_ITEMS = ("95618-5", "95617-7", "95616-9", "95615-1")


def screening(mid: str, answers: dict[str, str], d: date = date(2025, 3, 1), sid: str | None = None, instrument: str = "ahc_hrsn") -> list[dict]:
    return [{"member_id": mid, "screening_id": sid or f"{mid}-{d}", "screening_date": d, "instrument": instrument,
             "question_code": q, "answer_code": a} for q, a in answers.items()]


def results(rows: list[dict]) -> dict[str, dict]:
    df = domain_results(pl.DataFrame(rows, schema=SCREEN_SCHEMA).lazy()).collect()
    return {r["domain"]: r for r in df.iter_rows(named=True)}


def safety(*scores: int) -> dict[str, str]:
    return dict(zip(SAFETY_ITEMS, (SCORE[s] for s in scores)))


@pytest.mark.parametrize("scores, positive", [
    ((5, 3, 1, 1), False),   # sum 10 is not above 10
    ((5, 3, 2, 1), True),    # 11
    ((1, 1, 1, 1), False),
    ((3, 3, 3, 3), True),    # 12
])
def test_ahc_interpersonal_safety_sums_items_7_to_10(scores, positive):
    r = results(screening("A", NO_NEED | safety(*scores)))
    assert r["interpersonal_safety"]["positive"] is positive
    assert all(not r[d]["positive"] for d in ("housing", "food", "transportation", "utilities"))


def test_one_positive_item_makes_the_domain_positive():
    r = results(screening("A", NO_NEED | {"88123-5": "LA6729-3"}))   # food did not last: sometimes true
    assert r["food"]["positive"] and r["food"]["screened"]
    assert not r["housing"]["positive"]


def test_declined_is_distinct_from_screened_and_not_asked():
    answers = {q: a for q, a in NO_NEED.items() if q not in ("93030-5",)}
    answers["96779-4"] = "ASKU"                                    # utilities asked, declined
    r = results(screening("A", answers))
    assert r["utilities"]["declined"] and not r["utilities"]["screened"] and not r["utilities"]["positive"]
    assert "transportation" not in r                                # not asked at all: no fact
    assert r["housing"]["screened"] and not r["housing"]["declined"]


def test_prapare_material_security_item_covers_food_and_utilities():
    r = results(screening("A", {"93031-3": "LA30125-1"}, instrument="prapare"))
    assert r["food"]["positive"] and r["utilities"]["screened"] and not r["utilities"]["positive"]


def test_screening_events_one_per_member_day_fact_and_domain():
    # two screenings of A on one day (food positive in one of them) give one event per fact and domain;
    # a screening on another day gives its own; the events have the measure-events columns and types
    from equity_pipeline.events import EVENT_SCHEMA

    food = NO_NEED | {"88122-7": "LA28397-0"}
    rows = (screening("A", NO_NEED, sid="s1") + screening("A", food, sid="s2")
            + screening("A", NO_NEED, d=date(2025, 6, 1)) + screening("B", {"96779-4": "ASKU"}))
    events = screening_events(pl.DataFrame(rows, schema=SCREEN_SCHEMA).lazy()).collect()
    assert events.schema == pl.Schema(EVENT_SCHEMA)
    got = sorted((r["member_id"], r["event_date"], r["value_set"], r["code"]) for r in events.iter_rows(named=True))
    want = sorted([("A", d, f"sdoh_screened_{dom}", dom) for d in (date(2025, 3, 1), date(2025, 6, 1))
                   for dom in ("housing", "food", "transportation", "utilities", "interpersonal_safety")]
                  + [("A", date(2025, 3, 1), "sdoh_positive_food", "food"), ("B", date(2025, 3, 1), "sdoh_declined_utilities", "utilities")])
    assert got == want
    assert events.select((pl.col("code_system") == "SDOH").all() & (pl.col("source") == "clinical").all()
                         & pl.col("value_numeric").is_null().all()).item()


def _evaluate(measure_id: str, members: list[dict], rows: list[dict]):
    spec = load_specs()[measure_id]
    events = screening_events(pl.DataFrame(rows, schema=SCREEN_SCHEMA).lazy())
    m = pl.DataFrame(members, schema=MEMBER_SCHEMA)
    spans = pl.DataFrame([covered(p["member_id"]) for p in members], schema=SPAN_SCHEMA)
    return evaluate(spec, MY, m.lazy(), spans.lazy(), events)


def test_sdoh_positive_rows_per_domain_and_any():
    members = [person("A"), person("B"), person("C"), person("K", birth=date(2012, 1, 1))]
    rows = (screening("A", NO_NEED | {"88122-7": "LA28397-0"} | safety(4, 4, 2, 1))   # food + safety positive
            + screening("B", NO_NEED)                                                 # screened, no need
            + screening("C", {q: a for q, a in NO_NEED.items() if q != "93030-5"})   # transportation not screened
            + screening("K", NO_NEED | {"93030-5": "LA33-6"}))                        # a child: not eligible (18+)
    res, counts = _evaluate("SDOH_POSITIVE", members, rows)
    assert counts.denominator == 2 and counts.numerator == 1        # A and B screened in all 5 domains; A positive
    # C's reason names the five-domain rule (the spec's reason), not the first domain's value set
    assert counts.not_eligible == {"not_age": 1, "not_screened_in_all_domains": 1}
    by = {(r["member_id"], r["submeasure"]): r["in_numerator"] for r in res.iter_rows(named=True)}
    assert by[("A", "all")] and by[("A", "food")] and by[("A", "interpersonal_safety")]
    assert not by[("A", "housing")] and not by[("A", "transportation")]
    assert not any(v for (mid, _), v in by.items() if mid == "B")
    assert {mid for mid, _ in by} == {"A", "B"}
    assert {sub for _, sub in by} == {"all", "housing", "food", "transportation", "utilities", "interpersonal_safety"}


def test_screening_outside_the_period_does_not_count():
    members = [person("A")]
    rows = screening("A", NO_NEED | {"88122-7": "LA28397-0"}, d=date(2024, 12, 31))
    _, counts = _evaluate("SDOH_POSITIVE", members, rows)
    assert counts.denominator == 0


def test_sdoh_screen_needs_all_five_domains_and_an_outpatient_visit():
    from equity_pipeline.events import value_set_frame
    from equity_pipeline.measures.extract import claim_events
    from tests.measures.helpers import CLAIM_SCHEMA, line

    spec = load_specs()["SDOH_SCREEN"]
    visits = [line(m, date(2025, 2, 1), hcpcs="99213") for m in ("A", "B", "C")]
    rows = (screening("A", NO_NEED)                                                            # all five: screened
            + screening("B", {q: a for q, a in NO_NEED.items() if q != "96779-4"})            # no utilities item
            + screening("C", {q: ("ASKU" if q == "93030-5" else a) for q, a in NO_NEED.items()})  # transportation declined
            + screening("D", NO_NEED))                                                         # no outpatient visit
    events = pl.concat([
        claim_events(pl.DataFrame(visits, schema=CLAIM_SCHEMA).lazy(), value_set_frame(spec.value_set_names)),
        screening_events(pl.DataFrame(rows, schema=SCREEN_SCHEMA).lazy()),
    ])
    members = [person(m) for m in "ABCD"]
    res, counts = evaluate(spec, MY, pl.DataFrame(members, schema=MEMBER_SCHEMA).lazy(),
                           pl.DataFrame([covered(m) for m in "ABCD"], schema=SPAN_SCHEMA).lazy(), events)
    assert counts.denominator == 3 and counts.numerator == 1
    assert res.filter(pl.col("in_numerator"))["member_id"].to_list() == ["A"]


@pytest.mark.parametrize("answer, positive", [("LA30190-5", True), ("LA30189-7", False)])
def test_prapare_housing_status(answer, positive):
    """PRAPARE 71802-3: LA30190-5 'I do not have housing' is a need; LA30189-7 'I have housing' is not
    (LOINC answer codes as Synthea's FHIR export and the HL7 SDOH Clinical Care IG use them)."""
    r = results(screening("A", {"71802-3": answer}, instrument="prapare"))
    assert r["housing"]["screened"] and r["housing"]["positive"] is positive
