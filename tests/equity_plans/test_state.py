"""The statewide plan on the hand-built world of ``world.py`` (answers worked out in its docstring)."""
from __future__ import annotations

import math

import polars as pl
import pytest

from equity_pipeline.equity_plans.rules import resolve_rules
from equity_pipeline.equity_plans.state import rates_rows, state_metrics
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.suppression import MIN_CELL, PUBLIC_REASON, told_reasons
from tests.equity_plans.world import build

BLACK = "Black or African American"


@pytest.fixture(scope="module")
def world():
    return build()


def run(world, **overrides):
    settings = {"overrides": {"states": ["MD"], **overrides.pop("rules", {})}, **overrides}
    rules = resolve_rules(settings, 2025, measures=("PQI90",))
    return state_metrics(rates=world["rates"], attributes=world["attributes"], members=world["members"], results=world["results"],
                         specs=world["specs"], rules=rules, year=2025, completeness=world["completeness"])


def cell(table: pl.DataFrame, **key) -> dict:
    rows = table.filter(*[pl.col(k) == v for k, v in key.items()])
    assert rows.height == 1, (key, rows.height)
    return rows.row(0, named=True)


def test_pqi_by_race_per_100000_with_the_gap_to_white(world):
    table, stats = run(world)
    white = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="race_ethnicity", stratum="White")
    black = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="race_ethnicity", stratum=BLACK)
    overall = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="overall")
    assert white["rate"] == pytest.approx(20_000) and black["rate"] == pytest.approx(40_000)
    assert overall["rate"] == pytest.approx(30_000) and overall["members"] == 200
    assert white["ci_lower"] < 20_000 < white["ci_upper"]
    # gap against the program's reference group (White): ratio 2, difference 20,000 per 100,000
    assert black["reference_stratum"] == "White" and white["is_reference"] and not black["is_reference"]
    assert black["ratio"] == pytest.approx(2.0) and black["difference"] == pytest.approx(20_000)
    assert black["ratio_ci_lower"] < 2.0 < black["ratio_ci_upper"]
    assert black["difference_ci_lower"] < 20_000 < black["difference_ci_upper"]
    assert white["ratio"] is None and white["difference"] is None
    assert white["data_source"] == "claims" and white["rate_type"] == "per_member_years" and white["rate_per"] == 100_000
    assert stats["unprotected_margins"] == 0 and stats["small_cells"] == 0 and stats["lock_conflicts"] == 0


def test_cells_also_in_public_rates_show_what_rates_shows(world):
    table, _ = run(world)
    rates = world["rates"].filter(pl.col("unit_id").is_in(["all", "MD"]))
    mine = table.filter(pl.col("metric_id") == "PQI90")
    for r in rates.to_dicts():
        if r["stratifier"] == "payer":
            key = {"payer": r["stratum"], "stratifier": "overall", "stratum": "all"}
        else:
            key = {"payer": "all", "stratifier": r["stratifier"], "stratum": r["stratum"]}
        row = cell(mine, unit_id=r["unit_id"], **key)
        assert row["suppressed"] == r["suppressed"], key
        assert row["derived_from"] == "public/rates"
        for c in ("members", "numerator", "denominator", "rate", "ci_lower", "ci_upper"):
            assert row[c] == (None if r[c] is None else pytest.approx(r[c])), (key, c)


def test_payer_cells_add_up_and_nothing_small_or_recoverable_is_shown(world):
    table, _ = run(world)
    pqi = table.filter(pl.col("metric_id") == "PQI90", pl.col("unit_id") == "all", pl.col("stratum") == BLACK)
    shown = pqi.filter(~pl.col("suppressed"))
    assert (shown["members"].filter(shown["members"] > 0) >= MIN_CELL).all()
    # the 5 dual Black members are a small cell; Black all-payer (100 + 30 = 130) is shown in rates, so at
    # least one more payer cell of Black must be hidden (else dual = 130 - the others)
    by_payer = {r["payer"]: r for r in pqi.to_dicts()}
    assert not by_payer["all"]["suppressed"] and by_payer["all"]["members"] == 130
    assert by_payer["medicare_medicaid_dual"]["suppressed"]
    assert sum(r["suppressed"] for p, r in by_payer.items() if p != "all") >= 2
    # commercial Black is NM's 30 members: 12 admissions -> 40,000
    com = cell(table, metric_id="PQI90", unit_id="all", payer="commercial", stratifier="race_ethnicity", stratum=BLACK)
    assert com["suppressed"] or (com["members"] == 30 and com["rate"] == pytest.approx(40_000))
    # small (the dual cell) and complementary cells alike give the one public reason, and only they do
    assert told_reasons(table) == [PUBLIC_REASON]
    hidden = table["suppressed"]
    assert table.filter(hidden)["suppression_reason"].null_count() == 0
    assert table.filter(~hidden)["suppression_reason"].null_count() == int((~hidden).sum())


def test_only_program_states_are_published(world):
    table, _ = run(world)
    assert set(table.filter(pl.col("unit_level") == "state")["unit_id"]) == {"MD"}
    # NM still counts in the population unit
    assert cell(table, metric_id="PQI90", unit_id="all", payer="all", stratifier="overall")["members"] == 280


def test_rel_completeness_by_payer(world):
    table, _ = run(world)
    imputed = cell(table, metric_id="REL_RACE_ETHNICITY", unit_id="MD", payer="all", stratum="imputed")
    assert imputed["numerator"] == 20 and imputed["denominator"] == 200 and imputed["rate"] == pytest.approx(0.1)
    assert imputed["derived_from"] == "public/completeness" and imputed["members"] == 200   # people in the unit
    # packaged target: self-reported share >= 0.8; MD 180 of 200
    self_reported = cell(table, metric_id="REL_RACE_ETHNICITY", unit_id="MD", payer="all", stratum="self_reported")
    assert (self_reported["rate"], self_reported["target_basis"], self_reported["target_status"]) == (0.9, "rate >= 0.8", "met")
    # all 20 imputed members are MD commercial White: 20 of the 100 MD commercial members
    com = cell(table, metric_id="REL_RACE_ETHNICITY", unit_id="MD", payer="commercial", stratum="imputed")
    assert (com["numerator"], com["denominator"], com["derived_from"]) == (20, 100, "computed")
    # 10 declined languages (small) are hidden, and so is their complement, as in public/completeness
    declined = cell(table, metric_id="REL_LANGUAGE", unit_id="MD", payer="all", stratum="declined")
    reported = cell(table, metric_id="REL_LANGUAGE", unit_id="MD", payer="all", stratum="reported")
    assert declined["suppressed"] and reported["suppressed"]
    assert table.filter(pl.col("metric_id").str.starts_with("REL_"), pl.col("stratifier") == "overall").height == 0


def test_sdoh_domain_screening_share(world):
    attrs = world["attributes"].with_columns(
        sdoh_need_housing=pl.when(pl.col("member_id") <= "M0040").then(pl.lit("Positive"))
        .when(pl.col("member_id") <= "M0120").then(pl.lit("Negative")).otherwise(pl.lit("Not screened")))
    screen = world["results"]["PQI90"].with_columns(measure_id=pl.lit("SDOH_SCREEN"))
    rules = resolve_rules({"overrides": {"states": ["MD"]}}, 2025, measures=("PQI90", "SDOH_SCREEN"))
    table, _ = state_metrics(rates=world["rates"], attributes=attrs, members=world["members"],
                             results={"SDOH_SCREEN": screen}, specs=world["specs"], rules=rules, year=2025)
    housing = cell(table, metric_id="SDOH_SCREEN_DOMAIN", submeasure="housing", unit_id="all", payer="all")
    # members M0001-M0120 (all MD White commercial) were screened for housing: 120 of 280
    assert (housing["numerator"], housing["denominator"]) == (120, 280)
    assert housing["rate"] == pytest.approx(120 / 280) and housing["data_source"] == "clinical"
    food = cell(table, metric_id="SDOH_SCREEN_DOMAIN", submeasure="food", unit_id="all", payer="all")
    assert food["numerator"] == 0 and not food["suppressed"]


def test_baseline_change_and_targets(world, tmp_path):
    baseline = tmp_path / "baseline.csv"
    baseline.write_text("metric_id,unit_level,unit_id,stratifier,stratum,rate,suppressed\n"
                        "PQI90,state,MD,overall,all,35000,false\n"
                        f"PQI90,state,MD,race_ethnicity,{BLACK},,true\n")
    targets = [{"metric_id": "PQI90", "stratifier": "overall", "statistic": "change", "operator": "<=", "value": 0},
               {"metric_id": "PQI90", "stratifier": "race_ethnicity", "statistic": "ratio", "operator": "<=", "value": 1.2},
               {"metric_id": "PQI90", "stratifier": "race_ethnicity", "statistic": "rate", "operator": "<=", "value": 50000}]
    table, _ = run(world, rules={"targets": targets},
                   baseline={"year": 2024, "path": str(baseline),
                             "values": [{"metric_id": "PQI90", "unit_level": "state", "unit_id": "MD", "stratifier": "race_ethnicity",
                                         "stratum": "White", "value": 21000.0}]})
    md = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="overall")
    assert md["baseline_value"] == 35000 and md["baseline_period"] == "2024"
    assert md["change"] == pytest.approx(-5000) and md["target_basis"] == "change <= 0" and md["target_status"] == "met"
    black = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="race_ethnicity", stratum=BLACK)
    # a suppressed baseline is not publishable: no change; ratio 2 > 1.2 (first matching target wins)
    assert black["baseline_value"] is None and black["change"] is None
    assert (black["target"], black["target_status"]) == (1.2, "not_met")
    white = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="race_ethnicity", stratum="White")
    assert white["change"] == pytest.approx(-1000)          # config value: 20,000 now vs 21,000
    # the reference has no ratio, so the ratio target does not apply to it; the next matching one does
    assert (white["target_basis"], white["target_status"]) == ("rate <= 50000", "met")
    asian = cell(table, metric_id="PQI90", unit_id="all", payer="commercial", stratifier="race_ethnicity", stratum="Asian")
    assert asian["members"] == 0 and asian["target_status"] == "insufficient_data"  # nobody there: no rate, no ratio


def test_rates_rows_are_reshaped_into_the_plan_shape():
    spec_rows = [
        ("population", "all", "overall", "all", False), ("population", "all", "payer", "medicaid", False),
        ("population", "all", "payer", "Unknown", False),   # no enrollment in the year: not a payer of the plan
        ("population", "all", "payer x race_ethnicity", "medicaid | White", True), ("population", "all", "race_ethnicity", "White", False),
        ("population", "all", "region", "Capital", False), ("population", "all", "region", "No region", False),
        ("state", "MD", "region", "Capital", False), ("state", "NM", "overall", "all", False), ("state", "MD", "sex", "Female", False),
        ("population", "all", "race_ethnicity x rurality", "White | Metro", False),
    ]
    rates = pl.DataFrame([{"measure_id": "BCS", "measure_title": "Breast Cancer Screening", "measure_version": "1", "submeasure": "all",
                           "period": "2025", "unit_level": u, "unit_id": i, "stratifier": s, "stratum": x, "members": 50,
                           "denominator": 50.0, "numerator": 25.0, "rate": 0.5, "ci_lower": 0.4, "ci_upper": 0.6,
                           "rate_type": "proportion", "rate_per": 1.0, "suppressed": sup, "suppression_reason": "cell-size policy" if sup else None,
                           "data_source": "claims", "direction": "higher_is_better"} for u, i, s, x, sup in spec_rows])
    rules = resolve_rules({"overrides": {"states": ["MD"], "state_plan": {"measures": ["BCS"], "stratifiers": ["race_ethnicity", "rurality"]}}}, 2025)
    out = rates_rows(rates, load_specs(), rules, {"Capital": ("24031",)})
    got = {(r["unit_level"], r["unit_id"], r["payer"], r["stratifier"], r["stratum"], r["suppressed"]) for r in out.to_dicts()}
    assert got == {
        ("population", "all", "all", "overall", "all", False),
        ("population", "all", "medicaid", "overall", "all", False),
        ("population", "all", "medicaid", "race_ethnicity", "White", True),
        ("population", "all", "all", "race_ethnicity", "White", False),
        ("region", "Capital", "all", "overall", "all", False),
    }
    assert set(out["derived_from"]) == {"public/rates"} and set(out["metric_id"]) == {"BCS"}
    # the restricted reason says where the cell was hidden (rates tells no kind)
    assert set(zip(out["suppressed"], out["suppression_reason"])) == {(True, "suppressed in public/rates"), (False, None)}
    assert not math.isnan(out["rate"].drop_nulls()[0])


def test_a_cell_hidden_in_public_rates_is_hidden_here(world):
    # pretend rates hid MD White: the plan must hide it as well. Rates would also have hidden a
    # complement; this pretend table did not (MD total and Black are shown there), so White can be
    # recovered from public/rates alone, and the plan's check says so instead of passing it over
    rates = world["rates"].with_columns(suppressed=pl.when(
        (pl.col("unit_id") == "MD") & (pl.col("stratifier") == "race_ethnicity") & (pl.col("stratum") == "White"))
        .then(True).otherwise(pl.col("suppressed")))
    args = dict(rates=rates, attributes=world["attributes"], members=world["members"], results=world["results"],
                specs=world["specs"], rules=resolve_rules({"overrides": {"states": ["MD"]}}, 2025, measures=("PQI90",)),
                year=2025, completeness=world["completeness"])
    table, stats = state_metrics(**args)
    white = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="race_ethnicity", stratum="White")
    black = cell(table, metric_id="PQI90", unit_id="MD", payer="all", stratifier="race_ethnicity", stratum=BLACK)
    assert white["suppressed"] and white["rate"] is None
    # public: the one reason; restricted: hidden because rates hides it (the lock keys on ``suppressed``)
    assert white["suppression_reason"] == PUBLIC_REASON and told_reasons(table) == [PUBLIC_REASON]
    detailed, _ = state_metrics(**args, with_reasons=True)
    assert cell(detailed, metric_id="PQI90", unit_id="MD", payer="all", stratifier="race_ethnicity",
                stratum="White")["suppression_reason"] == "suppressed in public/rates"
    assert detailed.select("suppressed").equals(table.select("suppressed"))
    assert not black["suppressed"] and black["ratio"] is None      # shown as in rates; no reference to compare with
    assert stats["unprotected_margins"] >= 1


def test_a_region_is_a_unit_and_a_region_equal_to_a_state_shows_what_the_state_shows(world):
    from equity_pipeline.stratify import member_attributes

    # every MD member lives in county 24031: the region "Capital" holds exactly the MD members
    regions = {"Capital": ("24031",)}
    attrs = member_attributes(world["members"].lazy(), 2025, regions=regions).drop("payer").join(
        world["attributes"].select("member_id", "payer"), on="member_id")
    rules = resolve_rules({"overrides": {"states": ["MD"]}}, 2025, measures=("PQI90",))
    table, stats = state_metrics(rates=world["rates"], attributes=attrs, members=world["members"], results=world["results"],
                                 specs=world["specs"], rules=rules, year=2025, regions=regions, completeness=world["completeness"])
    pqi = table.filter(pl.col("metric_id") == "PQI90")
    region = pqi.filter(pl.col("unit_level") == "region").drop("unit_level", "unit_id", "derived_from").sort("payer", "stratifier", "stratum")
    state = pqi.filter(pl.col("unit_id") == "MD").drop("unit_level", "unit_id", "derived_from").sort("payer", "stratifier", "stratum")
    assert region.height == state.height > 0
    assert region.select("payer", "stratum", "suppressed", "rate").equals(state.select("payer", "stratum", "suppressed", "rate"))
    assert cell(table, metric_id="PQI90", unit_level="region", unit_id="Capital", payer="all", stratifier="overall")["rate"] == pytest.approx(30_000)
    assert stats["regions"] == 1 and stats["unprotected_margins"] == 0 and stats["lock_conflicts"] == 0
