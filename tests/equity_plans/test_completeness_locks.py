"""The plan's REL unit totals are locked to what a reader of public/completeness knows.

Regression: a unit's total (its members) was locked as hidden whenever none of the unit's categories
of *that* attribute was shown. But the total is the same for both attributes and public/completeness
prints it with every shown category of either one; and the states add up to the population. In the
1,500-member PHI-scan run (seed 11) every language category of one state was hidden while its
race/ethnicity rows, the population and every other state showed their totals: the plan was asked to
protect a public number, every entry of the all-payer states -> population margin was locked, and
``no_suppressed_cell_revealed`` failed (``lock_conflicts`` 1, ``unprotected_margins`` 1).

World: ``world.py``'s (MD 200 members, NM 80; MD is the program state) with languages changed so that
public/completeness hides every MD language category (declined 5, unknown 5, so reported's rest is 10)
and shows the population's and NM's language totals (population: reported; NM: declined, a zero),
while MD's race/ethnicity rows are shown (total 200).
"""
from __future__ import annotations

import polars as pl
import pytest

from equity_pipeline.equity_plans.rules import resolve_rules
from equity_pipeline.equity_plans.state import completeness_totals_known, state_metrics
from equity_pipeline.report.completeness import rel_completeness
from tests.equity_plans.world import build


@pytest.fixture(scope="module")
def world():
    w = build()
    m = w["members"].with_row_index("_i")
    declined = m.filter(pl.col("language") == "ASKU")["_i"].to_list()          # the 10 MD Medicaid members
    nm = m.filter(pl.col("county_fips") == "35001")["_i"].to_list()
    unknown = declined[5:] + nm[:11]
    members = m.with_columns(language=pl.when(pl.col("_i").is_in(unknown)).then(pl.lit("UNK")).otherwise("language")).drop("_i")
    return {**w, "members": members, "completeness": rel_completeness(members, 2025)}


def shown(completeness: pl.DataFrame, unit_id: str, attribute: str) -> list[str]:
    rows = completeness.filter(pl.col("unit_id") == unit_id, pl.col("attribute") == attribute, ~pl.col("suppressed"))
    return sorted(rows["category"].to_list())


def test_the_world_has_the_pattern(world):
    c = world["completeness"]
    assert shown(c, "MD", "language") == []
    assert shown(c, "MD", "race_ethnicity") and shown(c, "all", "language") and shown(c, "NM", "language")


def test_a_total_shown_for_the_other_attribute_is_known_and_nothing_is_revealed(world):
    rules = resolve_rules({"overrides": {"states": ["MD"]}}, 2025, measures=("PQI90",))
    table, stats = state_metrics(rates=world["rates"], attributes=world["attributes"], members=world["members"],
                                 results=world["results"], specs=world["specs"], rules=rules, year=2025,
                                 completeness=world["completeness"])
    assert (stats["lock_conflicts"], stats["unprotected_margins"], stats["small_cells"]) == (0, 0, 0)
    assert completeness_totals_known(world["completeness"])[("state", "MD")]
    # the all-payer REL rows are public/completeness's cells, shown and hidden identically
    plan = table.filter(pl.col("metric_id") == "REL_LANGUAGE", pl.col("payer") == "all", pl.col("unit_id").is_in(["all", "MD"]))
    theirs = world["completeness"].filter(pl.col("attribute") == "language")
    joined = plan.join(theirs, left_on=["unit_level", "unit_id", "stratum"], right_on=["unit_level", "unit_id", "category"])
    assert joined.height == plan.height == 6
    assert joined["derived_from"].unique().to_list() == ["public/completeness"]
    assert joined["suppressed"].equals(joined["suppressed_right"], check_names=False)
    assert joined.filter(~pl.col("suppressed")).select((pl.col("numerator") == pl.col("members_right"))
                                                       & (pl.col("denominator") == pl.col("total"))).to_series().all()


def test_a_total_with_no_category_shown_is_known_by_subtraction_along_the_states():
    def completeness(hidden: dict[str, bool]) -> pl.DataFrame:
        rows = [{"unit_level": "population" if u == "all" else "state", "unit_id": u, "attribute": a, "category": c,
                 "suppressed": hidden[u]}
                for u in hidden for a, cats in (("race_ethnicity", ("self_reported", "unknown")), ("language", ("reported", "unknown")))
                for c in cats]
        return pl.DataFrame(rows)

    # population, AA and BB shown: CC, with nothing shown in either attribute, is population - AA - BB
    known = completeness_totals_known(completeness({"all": False, "AA": False, "BB": False, "CC": True}))
    assert known == {("population", "all"): True, ("state", "AA"): True, ("state", "BB"): True, ("state", "CC"): True}
    # two states hidden: neither is known (only their sum)
    known = completeness_totals_known(completeness({"all": False, "AA": False, "BB": True, "CC": True}))
    assert not known[("state", "BB")] and not known[("state", "CC")]
    # every state shown: the population is their sum
    assert completeness_totals_known(completeness({"all": True, "AA": False, "BB": False}))[("population", "all")]
