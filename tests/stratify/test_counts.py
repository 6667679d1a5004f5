"""Stratified counts: every stratifier (and intersection) partitions the denominator; cross-stratifier
identities are found and protected by suppression."""
from __future__ import annotations

from datetime import date

import polars as pl

from equity_pipeline.stratify import (
    STRATIFIERS,
    identity_margins,
    member_attributes,
    public_rates,
    strata_identities,
    stratified_counts,
)
from equity_pipeline.measures.spec import load_specs

YEAR = 2025


def hand_built(n: int = 60) -> tuple[pl.DataFrame, pl.DataFrame]:
    """n members cycling through REL, geography, sex, age, coverage and SDOH values; one BCS-like result each."""
    codes = ["2106-3", "2054-5", "2135-2|2106-3", "ASKU", "UNK", "2028-9", "2186-5"]
    langs = ["en", "es", "vi", "ASKU", None]
    counties = ["24510", "24005", "35039", "36005", "15001", "99999", None]
    rows = [{"member_id": f"M{i:03d}", "race_ethnicity_codes": codes[i % 7], "language": langs[i % 5],
             "interpreter_needed": [True, False, None][i % 3], "sex": "FMXU"[i % 4], "county_fips": counties[i % 7],
             "birth_date": date(1940 + i % 70, 1 + i % 12, 1)} for i in range(n)]
    m = pl.DataFrame(rows, schema={"member_id": pl.String, "race_ethnicity_codes": pl.String, "language": pl.String,
                                   "interpreter_needed": pl.Boolean, "sex": pl.String, "county_fips": pl.String,
                                   "birth_date": pl.Date})
    payers = ["commercial", "medicaid", "medicare"]
    spans = [{"member_id": f"M{i:03d}", "payer": payers[i % 3], "line_of_business": None, "dual_status": ["none", "full"][i % 2],
              "enrollment_start": date(2024, 1, 1), "enrollment_end": None} for i in range(0, n, 2)]
    enrollment = pl.DataFrame(spans, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String,
                                             "dual_status": pl.String, "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    screenings = pl.DataFrame(
        [{"member_id": f"M{i:03d}", "screening_id": f"S{i}", "screening_date": date(2025, 3, 1), "instrument": "ahc_hrsn",
          "question_code": "88122-7", "answer_code": ["LA28397-0", "LA28398-8", "ASKU"][i % 3]} for i in range(0, n, 3)],
        schema={"member_id": pl.String, "screening_id": pl.String, "screening_date": pl.Date, "instrument": pl.String,
                "question_code": pl.String, "answer_code": pl.String})
    attrs = member_attributes(m.lazy(), YEAR, enrollment=enrollment.lazy(), screenings=screenings.lazy(),
                              regions={"Central": ("24510", "36005")})
    results = results_for(m["member_id"].to_list(), numerator=lambda i: i % 3 != 0)
    return attrs, results


def results_for(ids: list[str], numerator, measure: str = "BCS") -> pl.DataFrame:
    return pl.DataFrame({
        "member_id": ids, "measure_id": measure, "measure_version": "1", "submeasure": "all", "period": str(YEAR),
        "in_denominator": True, "numerator_value": [float(numerator(i)) for i in range(len(ids))],
        "denominator_value": 1.0,
    })


def test_every_stratifier_and_intersection_adds_up_to_overall():
    attrs, results = hand_built()
    names = tuple(STRATIFIERS)
    counts = stratified_counts(results, attrs, names, intersections=[("race_ethnicity", "rurality"), ("payer", "sex")])
    overall = counts.filter(pl.col("stratifier") == "overall").select("unit_level", "unit_id", o_members="members",
                                                                      o_den="denominator", o_num="numerator")
    sums = (counts.filter(pl.col("stratifier") != "overall")
            .group_by("unit_level", "unit_id", "stratifier")
            .agg(pl.col("members").sum(), pl.col("denominator").sum(), pl.col("numerator").sum()))
    joined = sums.join(overall, on=["unit_level", "unit_id"])
    assert set(joined["stratifier"]) == {*names, "race_ethnicity x rurality", "payer x sex"}
    assert joined.filter((pl.col("members") != pl.col("o_members")) | (pl.col("denominator") != pl.col("o_den"))
                         | (pl.col("numerator") != pl.col("o_num"))).height == 0
    # independent: 60 members, numerator when i % 3 != 0 -> 40
    pop = counts.filter((pl.col("stratifier") == "overall") & (pl.col("unit_level") == "population")).row(0, named=True)
    assert (pop["denominator"], pop["numerator"]) == (60.0, 40.0)


def test_intersection_strata_are_joined_labels_and_add_up_to_each_margin():
    attrs, results = hand_built()
    counts = stratified_counts(results, attrs, ("race_ethnicity", "rurality"), intersections=[("race_ethnicity", "rurality")])
    pop = counts.filter(pl.col("unit_level") == "population")
    cross = pop.filter(pl.col("stratifier") == "race_ethnicity x rurality")
    assert "White | Metro" in cross["stratum"].to_list()
    # member i is White when i % 7 == 0 and lives in 24510 (RUCC 1, Metro) then: all White members are Metro
    white_metro = cross.filter(pl.col("stratum") == "White | Metro")["denominator"].item()
    assert white_metro == pop.filter((pl.col("stratifier") == "race_ethnicity") & (pl.col("stratum") == "White"))["denominator"].item()
    margin = (cross.with_columns(race=pl.col("stratum").str.split(" | ").list.first())
              .group_by("race").agg(pl.col("denominator").sum()).sort("race"))
    race = pop.filter(pl.col("stratifier") == "race_ethnicity").select(race="stratum", d="denominator").sort("race")
    assert margin["denominator"].to_list() == race["d"].to_list()


def region_case() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Four Maryland counties in two regions. 24510 has 5 members (a small cell); the others 30, 40, 50."""
    sizes = {"24510": 5, "24005": 30, "24031": 40, "24033": 50}
    rows = [(f"{fips}-{k}", fips) for fips, n in sizes.items() for k in range(n)]
    m = pl.DataFrame({"member_id": [r[0] for r in rows], "county_fips": [r[1] for r in rows], "sex": "F",
                      "race_ethnicity_codes": "2106-3"})
    attrs = member_attributes(m.lazy(), YEAR, regions={"North": ("24510", "24031"), "South": ("24005", "24033")})
    # numerator: every other member (24510: 3 of 5)
    results = results_for(m["member_id"].to_list(), numerator=lambda i: i % 2 == 0)
    return attrs, results


def leaks(rates: pl.DataFrame, identities: pl.DataFrame) -> list[str]:
    """Margins (strata -> overall per stratifier, and the identities) with exactly one hidden entry."""
    out = []
    pop = rates.filter(pl.col("unit_level") == "population")
    hidden = dict(zip(zip(pop["stratifier"], pop["stratum"]), pop["suppressed"]))
    for stratifier in set(pop["stratifier"]) - {"overall"}:
        entries = [hidden[("overall", "all")]] + [h for (s, _), h in hidden.items() if s == stratifier]
        if sum(entries) == 1:
            out.append(stratifier)
    ids = identities.filter(pl.col("unit_level") == "population")
    for (ident,), g in ids.group_by("identity"):
        entries = [hidden[(s, t)] for s, t in zip(g["stratifier"], g["stratum"])]
        if sum(entries) == 1:
            out.append(f"identity {ident}: {sorted(zip(g['stratifier'], g['stratum']))}")
    return out


def test_counties_inside_regions_are_an_identity_suppression_respects():
    attrs, results = region_case()
    identities = strata_identities(results, attrs, ("county", "region"))
    pop = identities.filter(pl.col("unit_level") == "population")
    found = {tuple(sorted(g.filter(pl.col("role") == "cell")["stratum"])): g.filter(pl.col("role") == "total")["stratum"].item()
             for _, g in pop.group_by("identity")}
    assert found == {("24031", "24510"): "North", ("24005", "24033"): "South"}
    counts = stratified_counts(results, attrs, ("county", "region"))
    specs = {"BCS": load_specs()["BCS"]}
    without = public_rates(counts, specs, {"BCS": "claims"})
    # the county margin alone hides 24510 and the next smallest county (24005), but North = 24510 + 24031 is
    # published with 24031: 24510 = North - 24031 could be recovered
    assert leaks(without, identities), "the test case must leak without the identities"
    north = without.filter((pl.col("unit_level") == "population") & (pl.col("stratum").is_in(["North", "24031"])))
    assert north["suppressed"].to_list() == [False, False]
    protected = public_rates(counts, specs, {"BCS": "claims"}, identities)
    assert leaks(protected, identities) == []
    assert protected.filter(pl.col("stratifier") == "county")["suppressed"].all()


def test_identity_margins_point_at_table_rows():
    attrs, results = region_case()
    identities = strata_identities(results, attrs, ("county", "region"))
    table = stratified_counts(results, attrs, ("county", "region"))
    margins = identity_margins(table, identities)
    # population and state (MD) units: two identities each
    assert len(margins) == 4
    for cells, total in margins:
        assert table["denominator"][total] == sum(table["denominator"][i] for i in cells)
