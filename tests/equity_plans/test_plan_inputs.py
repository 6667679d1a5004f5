"""The cheaper paths of the plan steps (docs/performance.md) give what the plain ones give: one join
with the units for several families, label cells without member-level label rows, the encounters
collected together, and projected reads of the member tables."""
from __future__ import annotations

import random
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from equity_pipeline.attributes import NEGATIVE, POSITIVE
from equity_pipeline.encounters import ed_visits, every_ed_visit, inpatient_stays
from equity_pipeline.equity_plans import cells as C
from equity_pipeline.equity_plans.hospital import collect_encounters, ed_revisit_index
from equity_pipeline.equity_plans.inputs import MEMBER_COLUMNS, read_denominator_results, read_members
from equity_pipeline.equity_plans.rules import resolve_rules
from equity_pipeline.equity_plans.state import (
    aggregate, aggregate_rows, member_units, rel_counts, sdoh_domain_counts, unit_rows)
from equity_pipeline.periods import MeasurementPeriod
from equity_pipeline.report.completeness import member_categories
from equity_pipeline.standards.race_ethnicity import UNKNOWN
from equity_pipeline.standards.sdoh import CORE_DOMAINS
from tests.equity_plans.test_hospital import F1, F2, claims, ed, stay
from tests.equity_plans.world import build

MY = MeasurementPeriod.calendar_year(2025)
#: a cell's coordinates (the grid's row order is not fixed: the plan sorts its cells by these)
COORDS = ["family", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum"]


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(COORDS)


def _values(n: int = 400, seed: int = 7) -> pl.DataFrame:
    """Members with fractional member-years (sums depend on their order) and two numerators."""
    rng = random.Random(seed)
    return pl.DataFrame({
        "member_id": [f"M{i:04d}" for i in rng.sample(range(n), n)],
        "payer": [rng.choice(["medicare", "medicaid", "commercial"]) for _ in range(n)],
        "race": [rng.choice(["White", "Black", "Asian"]) for _ in range(n)],
        "numerator_value": [float(rng.randint(0, 3)) for _ in range(n)],
        "second": [float(rng.randint(0, 1)) for _ in range(n)],
        "denominator_value": [rng.randint(1, 12) / 12 for _ in range(n)],
    })


def _units(values: pl.DataFrame) -> pl.DataFrame:
    attrs = values.select("member_id", state=pl.when(pl.col("member_id") < "M0200").then(pl.lit("MD")).otherwise(pl.lit("NM")))
    return member_units(attrs, ("MD",), {})


def test_several_submeasures_from_one_join_equal_one_aggregate_each():
    values = _values()
    units = _units(values)
    one_by_one = pl.concat([
        aggregate(values, units, family="F", submeasure="a", stratifiers=["race"]),
        aggregate(values.with_columns(numerator_value=pl.col("second")), units, family="F", submeasure="b", stratifiers=["race"]),
    ])
    together = aggregate_rows(unit_rows(values, units), units, family="F", submeasures={"a": "numerator_value", "b": "second"},
                              stratifiers={"race": "race"})
    assert_frame_equal(_sorted(together), _sorted(one_by_one))
    # and the counts are the members' sums, worked out without polars
    rows = values.to_dicts()
    md_black = [r for r in rows if r["member_id"] < "M0200" and r["race"] == "Black"]
    cell = together.filter((pl.col("submeasure") == "b") & (pl.col("unit_id") == "MD") & (pl.col("payer") == "all")
                           & (pl.col("stratum") == "Black")).row(0, named=True)
    assert cell["members"] == len(md_black)
    assert cell["numerator"] == sum(r["second"] for r in md_black)
    assert abs(cell["denominator"] - sum(r["denominator_value"] for r in md_black)) < 1e-9


def test_rel_label_cells_equal_the_label_cells_of_member_level_labels():
    world = build()
    members, attributes = world["members"], world["attributes"]
    units = member_units(attributes, ("MD",), {})
    counts, labels = rel_counts(members, attributes, units, 2025)
    # the plain way: one label row per member x unit, for all payers and for the member's payer
    cats = member_categories(members, 2025).select(_race="race_ethnicity", _lang="language").with_columns(member_id=members["member_id"])
    labelled = cats.join(attributes.select("member_id", "payer"), on="member_id", how="left").with_columns(
        pl.col("payer").fill_null(UNKNOWN))
    placed = labelled.join(units.select("member_id", "unit_level", "unit_id"), on="member_id")
    member_rows = pl.concat([placed.with_columns(payer=pl.lit("all")), placed], how="diagonal").with_columns(submeasure=pl.lit("all"))
    assert_frame_equal(labels, C.label_cells(member_rows))
    # 280 members in the population, 200 in MD (world.py), each counted once per payer grouping
    population = labels.filter((pl.col("unit_level") == "population") & (pl.col("payer") == "all"))
    assert population["n"].sum() == 280
    assert labels.filter((pl.col("unit_id") == "MD") & (pl.col("payer") != "all"))["n"].sum() == 200
    # the REL families are the same as aggregating each family on its own
    for family, column in (("REL_RACE_ETHNICITY", "_race"), ("REL_LANGUAGE", "_lang")):
        alone = aggregate(labelled.select("member_id", "payer", collection_status=column, numerator_value=pl.lit(1.0),
                                          denominator_value=pl.lit(1.0)), units, family=family, submeasure="all",
                          stratifiers=["collection_status"],
                          strata={"collection_status": sorted(set(counts.filter(pl.col("family") == family)["stratum"]) - {"all"})})
        assert_frame_equal(_sorted(counts.filter(pl.col("family") == family)), _sorted(alone))


def test_sdoh_domains_together_equal_one_domain_at_a_time():
    world = build()
    attributes = world["attributes"]
    members = attributes["member_id"].to_list()
    # some members screened in some domains (answered positive/negative), others not
    rng = random.Random(3)
    attributes = attributes.with_columns(**{f"sdoh_need_{d}": pl.Series([rng.choice([POSITIVE, NEGATIVE, "Declined", None])
                                                                         for _ in members], dtype=pl.String) for d in CORE_DOMAINS})
    results = pl.DataFrame({"member_id": members, "in_denominator": [i % 3 != 0 for i in range(len(members))],
                            "submeasure": ["all"] * len(members)})
    units = member_units(attributes, ("MD",), {})
    together = sdoh_domain_counts(results, attributes, units)
    den = results.filter("in_denominator").select("member_id")
    for d in CORE_DOMAINS:
        got = together.filter(pl.col("submeasure") == d)
        screened = den.join(attributes, on="member_id").filter(pl.col(f"sdoh_need_{d}").is_in([POSITIVE, NEGATIVE]))
        overall = got.filter((pl.col("unit_level") == "population") & (pl.col("payer") == "all")).row(0, named=True)
        assert overall["numerator"] == screened.height
        assert overall["denominator"] == overall["members"] == den.height


def _encounter_claims() -> pl.DataFrame:
    return claims([
        stay("A", date(2025, 3, 2), date(2025, 3, 5), F1), ed("A", date(2025, 3, 1), F2),    # ED visit ending in the stay
        ed("A", date(2025, 6, 1), F2), ed("A", date(2025, 6, 4), F1),                        # a revisit 3 days later
        ed("B", date(2025, 7, 1), F1), stay("B", date(2025, 8, 1), date(2025, 8, 3), F2),
    ])


def test_encounters_collected_together_equal_each_collected_alone():
    c = _encounter_claims().lazy()
    stays, every, not_admitted = collect_encounters(c)
    alone = inpatient_stays(c).collect()
    order = {"stays": ["member_id", "stay_id"], "visits": ["member_id", "visit_date"]}
    assert_frame_equal(stays.sort(order["stays"]), alone.sort(order["stays"]))
    assert_frame_equal(every.sort(order["visits"]), ed_visits(c, alone.lazy().head(0)).collect().sort(order["visits"]))
    assert_frame_equal(not_admitted.sort(order["visits"]), ed_visits(c, alone.lazy()).collect().sort(order["visits"]))
    assert every.height == 4 and not_admitted.height == 3          # A's 1 March visit ended in an admission
    plain = ed_revisit_index(c, stays, 7, MY).sort(pl.all())
    reused = ed_revisit_index(None, stays, 7, MY, visits=(every, not_admitted)).sort(pl.all())
    assert_frame_equal(reused, plain)
    assert sorted(reused.select("member_id", "facility", "numerator_value").iter_rows()) == [
        ("A", F1, 0.0), ("A", F2, 1.0), ("B", F1, 0.0)]


def test_encounters_with_the_shared_stays_frame_equal_those_computed_from_the_claims():
    """build_events writes the stays of the final claims (restricted/measure_base, sorted by member
    and stay); given them, only the ED lines are read, and the visits are the same."""
    c = _encounter_claims().lazy()
    computed = collect_encounters(c)
    shared = inpatient_stays(c).collect().sort("member_id", "stay_id")
    given = collect_encounters(c, shared)
    assert given[0] is shared
    for got, want, key in zip(given, computed, (["member_id", "stay_id"], ["member_id", "visit_date"], ["member_id", "visit_date"])):
        assert_frame_equal(got.sort(key), want.sort(key))
    assert computed[1].height == 4 and computed[2].height == 3


def test_encounters_with_the_shared_ed_visits_frame_equal_those_computed_from_the_claims():
    """build_events also writes every ED visit of the final claims: given it (with or without the
    stays), the visits and those not ending in an admission are the same, and with both frames the
    claims are not read at all."""
    c = _encounter_claims().lazy()
    computed = collect_encounters(c)
    stays = inpatient_stays(c).collect().sort("member_id", "stay_id")
    every = every_ed_visit(c).collect().sort("member_id", "visit_date")
    unreadable = pl.LazyFrame({"member_id": ["A"]})   # no claim columns: reading it would fail
    for given in (collect_encounters(c, None, every), collect_encounters(c, stays, every), collect_encounters(unreadable, stays, every)):
        assert given[1] is every
        for got, want, key in zip(given, computed, (["member_id", "stay_id"], ["member_id", "visit_date"], ["member_id", "visit_date"])):
            assert_frame_equal(got.sort(key), want.sort(key))
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        collect_encounters(unreadable, stays)


def test_projected_reads_keep_only_what_the_plans_use(tmp_path):
    members = pl.DataFrame({"member_id": ["A", "B"], "first_name": ["x", "y"], "street_address": ["1 Main", "2 Main"],
                            "race_ethnicity_codes": ["2106-3", None], "race_ethnicity_source": ["self", None],
                            "language": ["en", None], "county_fips": ["24031", None], "birth_date": [date(1960, 1, 1)] * 2})
    members.write_parquet(tmp_path / "members.parquet")
    got = read_members(tmp_path / "members.parquet")
    assert got.columns == [c for c in MEMBER_COLUMNS if c in members.columns]     # no death_date column: none read
    assert "first_name" not in got.columns and "street_address" not in got.columns
    results = pl.DataFrame({"member_id": ["A", "A", "B", "C"], "submeasure": ["all", "x", "all", "all"],
                            "in_denominator": [True, True, False, None], "numerator_value": [1.0, 2.0, 3.0, 4.0],
                            "denominator_value": [1.0] * 4, "payer": ["medicare"] * 4})
    results.write_parquet(tmp_path / "results.parquet")
    assert read_denominator_results(tmp_path / "results.parquet").to_dicts() == [
        {"member_id": "A", "submeasure": "all", "in_denominator": True, "numerator_value": 1.0, "denominator_value": 1.0}]


def test_the_state_plan_is_the_same_from_projected_reads(tmp_path):
    world = build()
    rules = resolve_rules({"overrides": {"states": ["MD"]}}, 2025, measures=("PQI90",))
    from equity_pipeline.equity_plans.state import state_metrics

    world["members"].write_parquet(tmp_path / "members.parquet")
    world["results"]["PQI90"].write_parquet(tmp_path / "pqi.parquet")
    common = dict(rates=world["rates"], attributes=world["attributes"], specs=world["specs"], rules=rules, year=2025,
                  completeness=world["completeness"])
    whole, _ = state_metrics(members=world["members"], results=world["results"], **common)
    projected, _ = state_metrics(members=read_members(tmp_path / "members.parquet"),
                                 results={"PQI90": read_denominator_results(tmp_path / "pqi.parquet")}, **common)
    assert_frame_equal(projected, whole)
