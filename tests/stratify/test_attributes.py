"""Member attributes: hand-built members whose strata can be read off the rule in the comment."""
from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from equity_pipeline import attributes as attr
from equity_pipeline.periods import MeasurementPeriod
from equity_pipeline.stratify import DEFAULT_STRATIFIERS, STRATIFIERS, member_attributes

YEAR = 2025
PERIOD = MeasurementPeriod.calendar_year(YEAR)


def members(rows: list[dict]) -> pl.LazyFrame:
    base = {"race_ethnicity_codes": "2106-3", "language": "en", "interpreter_needed": False, "sex": "F",
            "birth_date": date(1970, 6, 15), "county_fips": "24510"}
    full = [{**base, "member_id": f"M{i}", **r} for i, r in enumerate(rows)]
    schema = {"member_id": pl.String, "race_ethnicity_codes": pl.String, "language": pl.String,
              "interpreter_needed": pl.Boolean, "sex": pl.String, "birth_date": pl.Date, "county_fips": pl.String}
    return pl.DataFrame(full, schema=schema).lazy()


def column(rows: list[dict], name: str, **kw) -> list[str]:
    return member_attributes(members(rows), YEAR, **kw).sort("member_id", descending=False)[name].to_list()


@pytest.mark.parametrize("codes, ethnicity", [
    ("2135-2", "Hispanic or Latino"),              # Hispanic alone
    ("2148-5|2106-3", "Hispanic or Latino"),       # Mexican (Hispanic detail) + White
    ("2106-3", "Not Hispanic or Latino"),          # combined question: White only, Hispanic not selected
    ("2186-5", "Not Hispanic or Latino"),          # legacy ethnicity answer without a race
    ("2054-5|2186-5", "Not Hispanic or Latino"),   # legacy two-question answer
    ("ASKU", "Declined"),                          # asked, declined
    ("UNK", "Unknown"),                            # not collected
    (None, "Unknown"),                             # empty
])
def test_ethnicity(codes, ethnicity):
    assert column([{"race_ethnicity_codes": codes}], "ethnicity") == [ethnicity]


def test_race_alone_or_in_combination_is_one_partition_per_category():
    rows = [{"race_ethnicity_codes": c} for c in ("2054-5|2106-3", "2054-5", "2106-3", "2135-2", "ASKU", "UNK", "2186-5")]
    black = column(rows, "race_aic_black")
    white = column(rows, "race_aic_white")
    # the Black + White member counts in both categories' stratifiers, once in each
    assert black == ["Black or African American alone or in combination", "Black or African American alone or in combination",
                     "Not Black or African American", "Not Black or African American", "Declined", "Unknown",
                     "Unknown"]  # 2186-5 alone names no race: Unknown
    assert white == ["White alone or in combination", "Not White", "White alone or in combination", "Not White", "Declined",
                     "Unknown", "Unknown"]
    # one stratum per member per stratifier, so each AIC stratifier adds up to the whole
    assert len(black) == len(rows)


@pytest.mark.parametrize("language, interpreter, lep", [
    ("es", True, "Limited English proficiency"),   # interpreter needed
    ("en", True, "Limited English proficiency"),   # interpreter needed wins over the language
    ("es", False, "English proficient"),           # no interpreter needed
    ("es-MX", None, "Limited English proficiency"),  # interpreter unknown: non-English preferred language
    ("en-US", None, "English proficient"),         # interpreter unknown: English
    ("ASKU", None, "Declined"),
    ("UNK", None, "Unknown"),
    (None, None, "Unknown"),
])
def test_limited_english_proficiency(language, interpreter, lep):
    assert column([{"language": language, "interpreter_needed": interpreter}], "lep") == [lep]


@pytest.mark.parametrize("sex, label", [("F", "Female"), ("M", "Male"), ("X", "Non-binary or other (X)"), ("U", "Unknown"),
                                        (None, "Unknown")])
def test_sex(sex, label):
    assert column([{"sex": sex}], "sex") == [label]


@pytest.mark.parametrize("birth, band", [
    (date(2008, 1, 1), "0-17"),    # 17 on 2025-12-31
    (date(2007, 12, 31), "18-44"),  # turns 18 on the last day of the period
    (date(1981, 1, 1), "18-44"),   # 44
    (date(1980, 12, 31), "45-64"),  # 45 on 2025-12-31
    (date(1960, 12, 31), "65-74"),  # 65
    (date(1950, 12, 31), "75+"),   # 75
    (date(2026, 3, 1), "Unknown"),  # born after the period
    (None, "Unknown"),
])
def test_age_band_at_period_end(birth, band):
    assert column([{"birth_date": birth}], "age_band") == [band]


def test_age_bands_from_config():
    rows = [{"birth_date": date(2000, 1, 1)}, {"birth_date": date(1940, 1, 1)}]  # 25 and 85
    assert column(rows, "age_band", age_bands=(0, 21, 65)) == ["21-64", "65+"]
    assert attr.age_band_labels((0, 21, 65)) == ["0-20", "21-64", "65+"]


# County figures from the public files (USDA ERS RUCC 2013; CDC/ATSDR SVI 2018 county RPL_THEMES),
# chosen to sit on the rules' boundaries; test_county_context_matches_the_public_files checks them.
@pytest.mark.parametrize("fips, rurality, svi", [
    ("08039", "Metro", "Q1 (least vulnerable)"),           # Elbert CO: RUCC 1, SVI 0.0
    ("55119", "Nonmetro urban", "Q1 (least vulnerable)"),  # Taylor WI: RUCC 6, SVI 0.2 (upper bound inclusive)
    ("36115", "Metro", "Q2"),                              # Washington NY: RUCC 3, SVI 0.4
    ("47087", "Nonmetro rural", "Q3"),                     # Jackson TN: RUCC 8, SVI 0.6
    ("45029", "Nonmetro urban", "Q4"),                     # Colleton SC: RUCC 6, SVI 0.8
    ("48047", "Nonmetro urban", "Q5 (most vulnerable)"),   # Brooks TX: RUCC 7, SVI 1.0
    ("01023", "Nonmetro rural", "Q5 (most vulnerable)"),   # Choctaw AL: RUCC 9, SVI 0.8748
    ("35039", "Nonmetro urban", "Unknown"),                # Rio Arriba NM: RUCC 4, SVI -999 (missing)
    ("46102", "Nonmetro urban", "Q5 (most vulnerable)"),   # Oglala Lakota SD: RUCC 6 filed under old 46113; SVI 0.9943
    ("99999", "Unknown", "Unknown"),                       # not a county
    (None, "Unknown", "Unknown"),
])
def test_rurality_and_svi_quintile(fips, rurality, svi):
    got = member_attributes(members([{"county_fips": fips}]), YEAR)
    assert got["rurality"].to_list() == [rurality]
    assert got["svi_quintile"].to_list() == [svi]


def test_ct_planning_regions_have_no_2013_rurality():
    # from 2022 Connecticut's county-equivalents are planning regions: valid counties, no RUCC 2013 / SVI 2018 row
    got = member_attributes(members([{"county_fips": "09110"}]), YEAR)
    assert got.select("county", "rurality", "svi_quintile").row(0) == ("09110", "Unknown", "Unknown")


def test_regions_may_cross_state_lines():
    regions = {"Capital": ("24031", "24033", "11001"), "Shore": ("24039",)}
    rows = [{"county_fips": f} for f in ("24031", "11001", "24039", "24510", "99999")]
    assert column(rows, "region", regions=regions) == ["Capital", "Capital", "Shore", "No region", "Unknown"]
    # without regions every valid county is in no region
    assert column(rows, "region") == ["No region"] * 4 + ["Unknown"]


def spans(rows: list[tuple]) -> pl.LazyFrame:
    return pl.DataFrame(
        [{"member_id": m, "payer": p, "line_of_business": lob, "dual_status": d, "enrollment_start": s, "enrollment_end": e}
         for m, p, lob, d, s, e in rows],
        schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                "enrollment_start": pl.Date, "enrollment_end": pl.Date}, orient="row",
    ).lazy()


def test_payer_line_of_business_and_dual_status():
    d = date
    enrollment = spans([
        # A: commercial all year
        ("A", "commercial", "commercial_group", "none", d(2020, 1, 1), None),
        # B: Medicaid Jan-Jul (212 days) then commercial Aug-Dec (153 days) -> medicaid
        ("B", "medicaid", "medicaid_managed_care", "none", d(2024, 1, 1), d(2025, 7, 31)),
        ("B", "commercial", "commercial_individual", "none", d(2025, 8, 1), None),
        # C: spans clipped to 2025: 181 days commercial (Jan-Jun), 184 days medicare (Jul-Dec) -> medicare
        ("C", "commercial", "commercial_group", "none", d(2019, 1, 1), d(2025, 6, 30)),
        ("C", "medicare", "medicare_ffs", "none", d(2025, 7, 1), d(2030, 12, 31)),
        # D: full dual all year (Medicare Advantage + Medicaid)
        ("D", "medicare", "medicare_advantage", "full", d(2023, 1, 1), None),
        ("D", "medicaid", "medicaid_managed_care", "full", d(2023, 1, 1), None),
        # E: overlapping Medicare and Medicaid spans without a dual flag -> dual, level not reported
        ("E", "medicare", "medicare_ffs", None, d(2025, 1, 1), d(2025, 12, 31)),
        ("E", "medicaid", "medicaid_ffs", "none", d(2025, 12, 1), d(2025, 12, 31)),
        # F: Medicare and Medicaid one after the other (no overlap), partial flag on the Medicaid span
        ("F", "medicaid", "medicaid_ffs", "partial", d(2025, 1, 1), d(2025, 3, 31)),
        ("F", "medicare", "medicare_ffs", "none", d(2025, 4, 1), None),
        # G: enrolled only before the measurement year -> Unknown everywhere
        ("G", "commercial", "commercial_group", "none", d(2020, 1, 1), d(2024, 12, 31)),
        # H: 10 days commercial, 10 days Medicaid (no line of business): a tie
        ("H", "commercial", "commercial_group", "none", d(2025, 1, 1), d(2025, 1, 10)),
        ("H", "medicaid", None, "none", d(2025, 1, 11), d(2025, 1, 20)),
    ])
    got = {r["member_id"]: (r["payer"], r["line_of_business"], r["dual_status"])
           for r in attr.coverage_attributes(enrollment, PERIOD).iter_rows(named=True)}
    assert got["A"] == ("commercial", "commercial_group", "none")
    assert got["B"] == ("medicaid", "medicaid_managed_care", "none")
    assert got["C"] == ("medicare", "medicare_ffs", "none")
    # duals: their own payer stratum; line of business of their Medicare coverage; dual level from the flag
    assert got["D"] == ("medicare_medicaid_dual", "medicare_advantage", "full")
    assert got["E"] == ("medicare_medicaid_dual", "medicare_ffs", "level_not_reported")
    assert got["F"] == ("medicare_medicaid_dual", "medicare_ffs", "partial")
    assert "G" not in got
    # 10 days each: tie goes to medicaid over commercial (priority medicare > medicaid > commercial);
    # its line of business is empty -> Unknown
    assert got["H"] == ("medicaid", "Unknown", "none")
    # through member_attributes: G (no coverage in the year) is Unknown in all three
    m = members([{}] * 8).collect().with_columns(member_id=pl.Series(list("ABCDEFGH")))
    table = member_attributes(m.lazy(), YEAR, enrollment=enrollment).sort("member_id")
    assert table.filter(pl.col("member_id") == "G").select("payer", "line_of_business", "dual_status").row(0) == ("Unknown",) * 3
    # every member counted once in the all-payer population
    assert table["member_id"].n_unique() == table.height == 8


def screening(member: str, sid: str, day: date, answers: list[tuple[str, str]], instrument: str = "ahc_hrsn") -> list[dict]:
    return [{"member_id": member, "screening_id": sid, "screening_date": day, "instrument": instrument,
             "question_code": q, "answer_code": a} for q, a in answers]


def test_sdoh_need():
    d = date(2025, 5, 1)
    rows = (
        # A: food insecure (88122-7 "Often true") -> need; food Positive, housing Negative (steady place)
        screening("A", "s1", d, [("88122-7", "LA28397-0"), ("71802-3", "LA31993-1")])
        # B: screened, nothing positive -> no need
        + screening("B", "s2", d, [("88122-7", "LA28398-8"), ("93030-5", "LA32-8")])
        # C: declined every question -> Declined
        + screening("C", "s3", d, [("88122-7", "ASKU"), ("93030-5", "ASKU")])
        # D: positive only in a screening before the measurement year -> Not screened
        + screening("D", "s4", date(2024, 12, 31), [("88122-7", "LA28397-0")])
        # E: negative in May, transport positive in October -> need
        + screening("E", "s5", d, [("93030-5", "LA32-8")]) + screening("E", "s6", date(2025, 10, 1), [("93030-5", "LA33-6")])
    )
    frame = pl.DataFrame(rows, schema={"member_id": pl.String, "screening_id": pl.String, "screening_date": pl.Date,
                                       "instrument": pl.String, "question_code": pl.String, "answer_code": pl.String})
    m = members([{}] * 6).collect().with_columns(member_id=pl.Series(list("ABCDEF")))
    got = member_attributes(m.lazy(), YEAR, screenings=frame.lazy()).sort("member_id")
    assert got["sdoh_need"].to_list() == ["Need identified", "No need identified", "Declined", "Not screened",
                                          "Need identified", "Not screened"]
    assert got["sdoh_need_food"].to_list() == ["Positive", "Negative", "Declined", "Not screened", "Not screened", "Not screened"]
    assert got["sdoh_need_housing"].to_list() == ["Negative", "Not screened", "Not screened", "Not screened", "Not screened",
                                                  "Not screened"]
    assert got["sdoh_need_transportation"].to_list()[4] == "Positive"


def test_every_stratifier_labels_every_member_once():
    rows = [{"race_ethnicity_codes": c, "language": lang, "county_fips": f, "sex": s, "interpreter_needed": i,
             "birth_date": b}
            for c, lang, f, s, i, b in [("2106-3", "en", "24510", "F", False, date(1960, 1, 1)),
                                        (None, None, None, None, None, None),
                                        ("ASKU", "ASKU", "99999", "U", None, date(2030, 1, 1))]]
    table = member_attributes(members(rows), YEAR)
    assert set(STRATIFIERS) <= set(table.columns) and set(DEFAULT_STRATIFIERS) <= set(STRATIFIERS)
    assert table.height == 3
    for name in STRATIFIERS:
        assert table[name].null_count() == 0, name
    # a member with nothing known is Unknown / Not screened everywhere, never dropped
    blank = table.row(1, named=True)
    assert {blank[s] for s in STRATIFIERS if s != "region"} <= {"Unknown", "Not screened"}


def test_disability_where_present_and_unknown_where_not():
    """The optional members column: true -> Disability, false -> No disability, empty -> Unknown; a
    members table without the column gives Unknown for everyone (the stratifier is opt-in)."""
    m = pl.DataFrame({"member_id": ["M0", "M1", "M2"], "disability": [True, False, None]},
                     schema={"member_id": pl.String, "disability": pl.Boolean})
    got = member_attributes(m.lazy(), YEAR).sort("member_id")["disability"].to_list()
    assert got == [attr.DISABILITY, attr.NO_DISABILITY, attr.UNKNOWN]
    assert column([{}, {}], "disability") == [attr.UNKNOWN, attr.UNKNOWN]
    assert "disability" in STRATIFIERS and "disability" not in DEFAULT_STRATIFIERS
