"""The hospital plan on hand-built claims: attribution by facility, readmission (index stay at the
facility, readmission anywhere), 7-day ED revisit, SDOH screening at the facility, safety-net shares,
REL completeness and the within-hospital gap (answers worked out in the comments)."""
from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from equity_pipeline.equity_plans.hospital import (
    ed_revisit_index, facility_patients, hospital_metrics, readmission_index, sdoh_by_facility)
from equity_pipeline.equity_plans.rules import resolve_rules
from equity_pipeline.equity_plans.table import KEY
from equity_pipeline.encounters import ed_visits, inpatient_stays
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.periods import MeasurementPeriod
from equity_pipeline.stratify import member_attributes
from equity_pipeline.suppression import COMPLEMENTARY_REASON, PUBLIC_REASON, suppression_detail, told_reasons

MY = MeasurementPeriod.calendar_year(2025)
F1, F2, F3 = "220001", "220002", "220003"
CLAIM_SCHEMA = {"claim_id": pl.String, "claim_line": pl.Int64, "member_id": pl.String, "claim_type": pl.String, "bill_type": pl.String,
                "admit_date": pl.Date, "discharge_date": pl.Date, "claim_from_date": pl.Date, "claim_thru_date": pl.Date,
                "diagnosis_code_1": pl.String, "discharge_status": pl.String, "facility_ccn": pl.String, "payer": pl.String,
                "paid_amount": pl.Float64, "revenue_code": pl.String, "place_of_service": pl.String, "hcpcs_code": pl.String}
_ids = iter(range(1, 10**6))


def stay(mid, admit, discharge, facility, status="01", dx="J189"):
    return {"claim_id": f"S{next(_ids)}", "claim_line": 1, "member_id": mid, "claim_type": "institutional", "bill_type": "111",
            "admit_date": admit, "discharge_date": discharge, "claim_from_date": admit, "claim_thru_date": discharge,
            "diagnosis_code_1": dx, "discharge_status": status, "facility_ccn": facility, "payer": "medicare", "paid_amount": 1000.0}


def ed(mid, day, facility):
    return {"claim_id": f"E{next(_ids)}", "claim_line": 1, "member_id": mid, "claim_type": "institutional", "bill_type": "131",
            "claim_from_date": day, "claim_thru_date": day, "revenue_code": "0450", "facility_ccn": facility, "payer": "medicare",
            "paid_amount": 300.0}


def claims(rows):
    return pl.DataFrame([{**{k: None for k in CLAIM_SCHEMA}, **r} for r in rows], schema=CLAIM_SCHEMA)


NO_EVENTS = pl.LazyFrame(schema={"member_id": pl.String, "value_set": pl.String, "event_date": pl.Date})
PEOPLE = pl.DataFrame({"member_id": ["A", "B", "C", "D"], "birth_date": [date(1960, 1, 1), date(1960, 1, 1), date(2015, 1, 1), date(1960, 1, 1)],
                       "death_date": [None, None, None, date(2025, 4, 5)]})


def test_patients_are_attributed_by_inpatient_stays_and_ed_visits_in_the_year():
    c = claims([stay("A", date(2025, 3, 1), date(2025, 3, 5), F1), ed("A", date(2025, 6, 1), F2),
                stay("B", date(2024, 3, 1), date(2024, 3, 5), F1),              # last year only: not a patient
                stay("C", date(2024, 12, 28), date(2025, 1, 3), F3)])           # a stay across New Year counts
    stays = inpatient_stays(c.lazy()).collect()
    visits = ed_visits(c.lazy(), stays.lazy().head(0)).collect()
    got = set(facility_patients(stays, visits, MY).iter_rows())
    assert got == {("A", F1), ("A", F2), ("C", F3)}


def test_readmission_index_stay_at_the_facility_readmission_anywhere():
    pcr = load_specs()["PCR"]
    c = claims([
        stay("A", date(2025, 3, 1), date(2025, 3, 5), F1), stay("A", date(2025, 4, 4), date(2025, 4, 6), F2),  # 30 days later, at F2
        stay("B", date(2025, 5, 1), date(2025, 5, 5), F1), stay("B", date(2025, 6, 5), date(2025, 6, 7), F1),  # 31 days: not readmitted
        stay("C", date(2025, 3, 1), date(2025, 3, 5), F1),                                                     # age 10: not an adult
        stay("D", date(2025, 4, 1), date(2025, 4, 5), F1, status="20"),                                        # died in hospital
        stay("A", date(2025, 12, 10), date(2025, 12, 12), F1),                                                 # after Dec 1: no follow-up
    ])
    stays = inpatient_stays(c.lazy()).collect()
    index = readmission_index(stays, PEOPLE, pcr, 30, MY, NO_EVENTS)
    got = sorted(index.select("member_id", "facility", "numerator_value").iter_rows())
    # A's readmission stay (at F2, Apr 4-6) is itself an index stay of F2; B's second stay of F1
    assert got == [("A", F1, 1.0), ("A", F2, 0.0), ("B", F1, 0.0), ("B", F1, 0.0)]
    # a shorter window: A's readmission 30 days after discharge no longer counts
    assert readmission_index(stays, PEOPLE, pcr, 29, MY, NO_EVENTS)["numerator_value"].sum() == 0


def test_ed_revisit_within_seven_days_anywhere():
    c = claims([
        ed("A", date(2025, 6, 1), F1), ed("A", date(2025, 6, 8), F2),     # 7 days later at F2: a revisit
        ed("B", date(2025, 7, 1), F1), ed("B", date(2025, 7, 9), F1),     # 8 days: none (and Jul 9 is an index of its own)
        ed("C", date(2025, 8, 1), F1), stay("C", date(2025, 8, 2), date(2025, 8, 4), F1),  # admitted: not an index visit
        ed("D", date(2025, 12, 28), F1),                                  # after Dec 24: no full follow-up window
    ])
    stays = inpatient_stays(c.lazy()).collect()
    got = sorted(ed_revisit_index(c.lazy(), stays, 7, MY).select("member_id", "facility", "numerator_value").iter_rows())
    assert got == [("A", F1, 1.0), ("A", F2, 0.0), ("B", F1, 0.0), ("B", F1, 0.0)]


def screening(mid, sid, day, facility, setting, answers):
    return [{"member_id": mid, "screening_id": sid, "screening_date": day, "instrument": "ahc_hrsn", "question_code": q,
             "answer_code": a, "setting": setting, "facility_ccn": facility} for q, a in answers]


ALL_FIVE = [("71802-3", "LA31994-9"), ("88122-7", "LA28398-8"), ("93030-5", "LA32-8"), ("96779-4", "LA32-8"), ("95618-5", "LA6270-8")]


def test_sdoh_counts_where_the_screening_happened():
    rows = (screening("A", "s1", date(2025, 2, 1), F1, "inpatient", ALL_FIVE)               # housing positive, the rest negative
            + screening("B", "s2", date(2025, 2, 1), None, "community", ALL_FIVE)           # community: no facility
            + screening("C", "s3", date(2024, 2, 1), F1, "inpatient", ALL_FIVE)             # last year
            + screening("D", "s4", date(2025, 3, 1), F1, "outpatient", [("71802-3", "ASKU")]))  # declined: not screened
    got = sdoh_by_facility(pl.DataFrame(rows).lazy(), MY, ("inpatient", "ed", "outpatient")).sort("member_id", "domain")
    a = {d: (s, p) for _, _, d, s, p in got.filter(pl.col("member_id") == "A").iter_rows()}
    assert a == {"housing": (True, True), "food": (True, False), "transportation": (True, False), "utilities": (True, False),
                 "interpersonal_safety": (True, False)}
    assert set(got["member_id"]) == {"A", "D"} and not got.filter(pl.col("member_id") == "D")["screened"].any()
    assert sdoh_by_facility(pl.DataFrame(rows).lazy(), MY, ("ed",)).height == 0


def test_sdoh_among_pairs_keeps_their_results_and_drops_the_rest():
    """``among`` (the adult patients' member x facility pairs) gives exactly the pairs' rows of the full
    result: A at F1 is kept, A at F2 and B (not among) are dropped. Screening s5 has its first answer
    row at F2 and a later one at F1: the screening is F2's (its first row), so A's answers in it are
    not A-at-F1's even though one row says F1."""
    split = screening("A", "s5", date(2025, 4, 1), F2, "ed", ALL_FIVE[:2]) + screening("A", "s5", date(2025, 4, 1), F1, "ed", ALL_FIVE[2:])
    rows = (screening("A", "s1", date(2025, 2, 1), F1, "inpatient", ALL_FIVE) + split
            + screening("B", "s6", date(2025, 2, 1), F1, "inpatient", ALL_FIVE))
    frame = pl.DataFrame(rows).lazy()
    settings = ("inpatient", "ed", "outpatient")
    full = sdoh_by_facility(frame, MY, settings).sort("member_id", "facility", "domain")
    among = pl.DataFrame({"member_id": ["A", "A", "C"], "facility": [F1, F1, F3]})
    got = sdoh_by_facility(frame, MY, settings, among=among).sort("member_id", "facility", "domain")
    assert set(full.select("member_id", "facility").unique().iter_rows()) == {("A", F1), ("A", F2), ("B", F1)}
    assert got.to_dicts() == full.filter((pl.col("member_id") == "A") & (pl.col("facility") == F1)).to_dicts()
    assert got.height == 5 and got["positive"].sum() == 1   # s1 only: housing positive


def build_hospital_world(white_screened: int = 0, with_reasons: bool = False):
    """60 adults with a stay at F1 (March 1-5): 30 White (Montgomery County MD, SVI Q2, not dual; 15 with
    race imputed), 12 of them readmitted at F2 on March 20; 30 Black (Baltimore city, SVI Q5, full
    duals), 18 readmitted at F2. The 30 Black patients were screened at F1 (inpatient) in all five
    domains, 15 of them positive for housing (and the first ``white_screened`` White patients, negative)."""
    members, spans, rows, screens = [], [], [], []
    for race, code, county, n, readmitted in (("W", "2106-3", "24031", 30, 12), ("B", "2054-5", "24510", 30, 18)):
        for i in range(n):
            mid = f"{race}{i:02d}"
            members.append({"member_id": mid, "race_ethnicity_codes": code,
                            "race_ethnicity_source": "imputed" if race == "W" and i < 15 else "self_reported",
                            "language": "en", "interpreter_needed": False, "sex": "F", "birth_date": date(1960, 1, 1),
                            "death_date": None, "county_fips": county})
            dual = race == "B"
            spans.append({"member_id": mid, "payer": "medicare", "line_of_business": "x", "dual_status": "full" if dual else "none",
                          "enrollment_start": date(2024, 1, 1), "enrollment_end": None})
            rows.append(stay(mid, date(2025, 3, 1), date(2025, 3, 5), F1))
            if i < readmitted:
                rows.append(stay(mid, date(2025, 3, 20), date(2025, 3, 22), F2))
            if race == "B" or i < white_screened:
                answers = [("71802-3", "LA31994-9" if race == "B" and i < 15 else "LA31993-1"), *ALL_FIVE[1:]]
                screens += screening(mid, f"x{i}", date(2025, 5, 1), F1, "inpatient", answers)
    m = pl.DataFrame(members)
    e = pl.DataFrame(spans, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                                     "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    attrs = member_attributes(m.lazy(), 2025, enrollment=e.lazy())
    table, stats = hospital_metrics(claims=claims(rows).lazy(), members=m, attributes=attrs, screenings=pl.DataFrame(screens).lazy(),
                                    events=NO_EVENTS, specs=load_specs(), rules=resolve_rules({}, 2025), year=2025,
                                    with_reasons=with_reasons)
    return table, stats


@pytest.fixture(scope="module")
def hospital_world():
    return build_hospital_world()


def row(table, **key):
    rows = table.filter(*[pl.col(k) == v for k, v in key.items()])
    assert rows.height == 1, key
    return rows.row(0, named=True)


def test_readmission_by_race_and_dual_status_with_the_within_hospital_gap(hospital_world):
    table, stats = hospital_world
    f1 = table.filter(pl.col("unit_id") == F1, pl.col("metric_id") == "HOSP_READMISSION")
    overall = row(f1, stratifier="overall")
    assert (overall["members"], overall["denominator"], overall["numerator"], overall["rate"]) == (60, 60, 30, 0.5)
    white, black = row(f1, stratum="White"), row(f1, stratum="Black or African American")
    assert (white["rate"], black["rate"]) == (pytest.approx(0.4), pytest.approx(0.6))
    # gap vs the reference group (White): 0.6 - 0.4, Newcombe 95% interval around it
    assert black["reference_stratum"] == "White" and black["difference"] == pytest.approx(0.2)
    assert black["difference_ci_lower"] < 0.2 < black["difference_ci_upper"] and black["ratio"] == pytest.approx(1.5)
    dual, not_dual = row(f1, stratum="Dual eligible"), row(f1, stratum="Not dual eligible")
    assert dual["reference_stratum"] == "Not dual eligible" and dual["difference"] == pytest.approx(0.2)
    assert not_dual["is_reference"] and not_dual["difference"] is None
    assert overall["data_source"] == "claims" and overall["unit_level"] == "facility" and overall["payer"] == "all"
    # target difference <= 0.02 from the packaged rules: 0.2 is not met
    assert (black["target_basis"], black["target_status"]) == ("difference <= 0.02", "not_met")
    # F2's index stays are the 30 readmission stays, none readmitted
    f2 = row(table, unit_id=F2, metric_id="HOSP_READMISSION", stratifier="overall")
    assert (f2["denominator"], f2["numerator"]) == (30, 0)
    assert stats["unprotected_margins"] == 0 and stats["small_cells"] == 0


def test_safety_net_and_rel_completeness_among_patients(hospital_world):
    table, _ = hospital_world
    f1 = table.filter(pl.col("unit_id") == F1)
    dual = row(f1, metric_id="DUAL_SHARE")
    svi = row(f1, metric_id="HIGH_SVI_SHARE")
    assert (dual["numerator"], dual["denominator"], dual["stratum"]) == (30, 60, "Dual eligible")
    assert (svi["numerator"], svi["denominator"], svi["stratum"]) == (30, 60, "High SVI")
    imputed = row(f1, metric_id="REL_RACE_ETHNICITY", stratum="imputed")
    declined = row(f1, metric_id="REL_RACE_ETHNICITY", stratum="declined")
    assert (imputed["numerator"], imputed["denominator"]) == (15, 60)
    assert (declined["numerator"], declined["suppressed"]) == (0, False)      # a zero is published
    assert row(f1, metric_id="REL_LANGUAGE", stratum="reported")["rate"] == 1.0
    # F2's 30 patients: 12 White (all not dual, 12 of the 15 imputed), 18 Black duals
    f2_dual = row(table, unit_id=F2, metric_id="DUAL_SHARE")
    assert (f2_dual["numerator"], f2_dual["denominator"]) == (18, 30)


def test_the_table_tells_one_suppression_reason(hospital_world):
    table, _ = hospital_world
    hidden = table.filter(pl.col("suppressed"))
    assert told_reasons(table) == ([PUBLIC_REASON] if hidden.height else [])
    assert hidden["suppression_reason"].null_count() == 0
    assert table.filter(~pl.col("suppressed"))["suppression_reason"].null_count() == table.height - hidden.height


def test_sdoh_screening_and_positive_rate_at_the_facility(hospital_world):
    table, _ = hospital_world
    f1 = table.filter(pl.col("unit_id") == F1)
    all_five = row(f1, metric_id="SDOH_SCREEN_FACILITY", submeasure="all")
    assert (all_five["numerator"], all_five["denominator"]) == (30, 60)
    housing = row(f1, metric_id="SDOH_POSITIVE_FACILITY", submeasure="housing")
    assert (housing["numerator"], housing["denominator"], housing["rate"]) == (15, 30, 0.5)
    food = row(f1, metric_id="SDOH_POSITIVE_FACILITY", submeasure="food")
    assert (food["numerator"], food["denominator"]) == (0, 30)
    # nobody was screened at F2: 0 of its 30 adult patients, and no positive-rate rows
    assert row(table, unit_id=F2, metric_id="SDOH_SCREEN_FACILITY", submeasure="all")["numerator"] == 0
    assert table.filter(pl.col("unit_id") == F2, pl.col("metric_id") == "SDOH_POSITIVE_FACILITY").height == 0


def test_a_hidden_screening_count_hides_the_positive_rate_built_on_it():
    # 55 of F1's 60 adults screened in every domain: 5 not screened is a small cell, so the screening
    # rows are hidden; the housing positive rate (15 of those 55) would show the 55, so it goes too
    table, stats = build_hospital_world(white_screened=25)
    f1 = table.filter(pl.col("unit_id") == F1)
    assert row(f1, metric_id="SDOH_SCREEN_FACILITY", submeasure="housing")["suppressed"]
    housing = row(f1, metric_id="SDOH_POSITIVE_FACILITY", submeasure="housing")
    # the public table does not say it is a complementary cell; the restricted log does
    assert housing["suppressed"] and housing["suppression_reason"] == PUBLIC_REASON
    assert told_reasons(table) == [PUBLIC_REASON]
    detailed, _ = build_hospital_world(white_screened=25, with_reasons=True)
    detail = suppression_detail(detailed, KEY)
    assert detail.select(KEY).equals(table.filter(pl.col("suppressed")).select(KEY))
    kind = detail.filter(pl.col("unit_id") == F1, pl.col("metric_id") == "SDOH_POSITIVE_FACILITY", pl.col("submeasure") == "housing")
    assert kind["suppression_reason"].to_list() == [COMPLEMENTARY_REASON]
    # "any domain": screened in at least one domain is 55 as well, so it goes too
    assert row(f1, metric_id="SDOH_POSITIVE_FACILITY", submeasure="any")["suppressed"]
    assert stats["links"] == 5 + 6   # each domain's rate on its screening row; "any" on all six screening rows


def test_small_facility_cells_are_hidden_with_a_complement():
    # 12 patients at F3: 9 White, 3 Black; one readmission each among 6 White stays... every stratum small
    members, spans, rows = [], [], []
    for i in range(12):
        mid = f"P{i:02d}"
        members.append({"member_id": mid, "race_ethnicity_codes": "2106-3" if i < 9 else "2054-5", "race_ethnicity_source": "self_reported",
                        "language": "en", "interpreter_needed": False, "sex": "M", "birth_date": date(1950, 1, 1), "death_date": None,
                        "county_fips": "24031"})
        spans.append({"member_id": mid, "payer": "medicare", "line_of_business": "x", "dual_status": "none",
                      "enrollment_start": date(2024, 1, 1), "enrollment_end": None})
        rows.append(stay(mid, date(2025, 2, 1), date(2025, 2, 3), F3))
    m = pl.DataFrame(members)
    e = pl.DataFrame(spans, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                                     "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    table, stats = hospital_metrics(claims=claims(rows).lazy(), members=m, attributes=member_attributes(m.lazy(), 2025, enrollment=e.lazy()),
                                    screenings=pl.DataFrame(schema={"member_id": pl.String, "screening_id": pl.String, "screening_date": pl.Date,
                                                                    "instrument": pl.String, "question_code": pl.String, "answer_code": pl.String,
                                                                    "setting": pl.String, "facility_ccn": pl.String}).lazy(),
                                    events=NO_EVENTS, specs=load_specs(), rules=resolve_rules({}, 2025), year=2025)
    r = table.filter(pl.col("metric_id") == "HOSP_READMISSION", pl.col("stratifier") == "race_ethnicity")
    s = dict(zip(r["stratum"], r["suppressed"]))
    # Black: 3 stays (small); White (9 stays, small too); the facility total (12 stays, 0 readmitted) is shown
    assert s == {"White": True, "Black or African American": True}
    assert not row(table, metric_id="HOSP_READMISSION", stratifier="overall")["suppressed"]
    assert stats["unprotected_margins"] == 0 and stats["small_cells"] == 0
    assert table.filter(pl.col("suppressed"))["numerator"].null_count() == table.filter(pl.col("suppressed")).height
    # one public reason, on suppressed rows only
    assert told_reasons(table) == [PUBLIC_REASON]
    assert table.filter(~pl.col("suppressed"))["suppression_reason"].null_count() == table.filter(~pl.col("suppressed")).height
