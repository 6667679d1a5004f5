"""The plan's payer rows are locked to the ``payer`` strata of public/rates: both must be the same members.

Regression: member results carry the measure engine's own ``payer`` (anchor date, duals under
Medicare), and ``stratify`` once read that column instead of the ``payer`` stratifier (the payer and
dual rule: duals in their own stratum). Rates then had no dual stratum and a Medicare stratum with
the duals in it, all shown; the plan locked its payer rows to those strata as published values, so
its small dual cell was ``all - commercial - medicaid - medicare`` and no unlocked cell was left to
hide (``lock_conflicts`` 1 in the 20,000-member demo, state MD).

World (MD, 2025, one member-year each):

=====  ======================  =======  ==========
race   payer                   members  admissions
=====  ======================  =======  ==========
White  commercial              100      20
White  medicare                40       15
Black  medicaid                95       38
Black  medicare_medicaid_dual  5        2           small (members 5, events 2)
=====  ======================  =======  ==========
"""
from __future__ import annotations

import polars as pl
import pytest

from equity_pipeline.equity_plans.rules import resolve_rules
from equity_pipeline.equity_plans.state import state_metrics
from equity_pipeline.stratify import public_rates, strata_identities, stratified_counts
from tests.equity_plans.world import STRATIFIERS, build

GROUPS = [("MD", "White", "commercial", 100, 20), ("MD", "White", "medicare", 40, 15),
          ("MD", "Black", "medicaid", 95, 38), ("MD", "Black", "dual", 5, 2)]
DUAL = "medicare_medicaid_dual"


@pytest.fixture(scope="module")
def world():
    return build(groups=GROUPS)


def plan(world, rates: pl.DataFrame):
    rules = resolve_rules({"overrides": {"states": ["MD"]}}, 2025, measures=("PQI90",))
    return state_metrics(rates=rates, attributes=world["attributes"], members=world["members"], results=world["results"],
                         specs=world["specs"], rules=rules, year=2025, completeness=world["completeness"])


def payer_rows(table: pl.DataFrame, unit_id: str) -> dict[str, dict]:
    rows = table.filter(pl.col("metric_id") == "PQI90", pl.col("unit_id") == unit_id, pl.col("stratifier") == "overall")
    return {r["payer"]: r for r in rows.to_dicts()}


def test_rates_payer_strata_follow_the_payer_rule_not_the_result_column(world):
    results = world["results"]["PQI90"]
    assert results.filter(pl.col("payer") == "medicare").height == 45          # the engine puts the duals under Medicare
    rates = world["rates"].filter(pl.col("unit_id") == "MD", pl.col("stratifier") == "payer")
    by_payer = {r["stratum"]: r for r in rates.to_dicts()}
    assert set(by_payer) == {"commercial", "medicaid", "medicare", DUAL}
    assert by_payer[DUAL]["suppressed"]
    assert by_payer["medicare"]["suppressed"] or by_payer["medicare"]["members"] == 40


def test_payer_rows_show_what_rates_shows_and_the_dual_cell_is_protected(world):
    table, stats = plan(world, world["rates"])
    assert stats["lock_conflicts"] == 0 and stats["lock_mismatches"] == 0
    assert stats["unprotected_margins"] == 0 and stats["small_cells"] == 0
    rates = world["rates"].filter(pl.col("measure_id") == "PQI90", pl.col("unit_id") == "MD",
                                  pl.col("stratifier").is_in(["overall", "payer"]))
    mine = payer_rows(table, "MD")
    for r in rates.to_dicts():
        row = mine["all" if r["stratifier"] == "overall" else r["stratum"]]
        assert row["derived_from"] == "public/rates" and row["suppressed"] == r["suppressed"]
        assert row["members"] == r["members"] and row["numerator"] == r["numerator"]
    # the dual cell is hidden, and with it another payer cell, so all-payer minus the shown ones is not the dual cell
    assert mine[DUAL]["suppressed"] and not mine["all"]["suppressed"]
    hidden = [p for p, r in mine.items() if p != "all" and r["suppressed"] and r["payer"] != "Unknown"]
    assert len(hidden) >= 2


def test_a_lock_to_a_rates_cell_of_other_members_fails_the_check(world):
    # rates as the old stratify made them: payer strata by the results' own payer column (duals under Medicare)
    results = world["results"]["PQI90"]
    attrs = world["attributes"].drop("payer").join(results.select("member_id", "payer"), on="member_id")
    old = public_rates(stratified_counts(results, attrs, STRATIFIERS), {"PQI90": world["specs"]["PQI90"]}, {"PQI90": "claims"},
                       strata_identities(results, attrs, STRATIFIERS))
    strata = old.filter(pl.col("unit_id") == "MD", pl.col("stratifier") == "payer")
    assert set(strata["stratum"]) == {"commercial", "medicaid", "medicare"} and not strata["suppressed"].any()
    table, stats = plan(world, old)
    # the plan's Medicare row (40, no duals) is locked to the rates' Medicare stratum (45, duals included) ...
    assert stats["lock_mismatches"] >= 1
    # ... so the dual cell is recoverable from the published payer rows, and the check says so
    assert stats["lock_conflicts"] + stats["unprotected_margins"] >= 1
    mine = payer_rows(table, "MD")
    shown = sum(r["members"] for p, r in mine.items() if p != "all" and not r["suppressed"])
    assert mine[DUAL]["suppressed"] and mine["all"]["members"] - shown == 5
