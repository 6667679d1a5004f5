"""REL data completeness (public/completeness.parquet): one category per member and attribute,
every category in every unit, zero published, small cells and their complements suppressed."""
from __future__ import annotations

import polars as pl
import pytest

from equity_pipeline.report.completeness import (
    CATEGORIES,
    COMPLETENESS_COLUMNS,
    completeness_counts,
    completeness_small_cells,
    member_categories,
    rel_completeness,
)
from equity_pipeline.stats.proportions import wilson_interval
from equity_pipeline.suppression import COMPLEMENTARY_REASON, PRIMARY_REASON, PUBLIC_REASON, told_reasons
from tests.report.frames import members

NY, MD = "36047", "24031"  # Kings County NY, Montgomery County MD


def sample_members() -> pl.DataFrame:
    return members([
        # NY: 200 members
        ("2106-3", "self_reported", "en", NY, 120),
        ("2054-5", "imputed", "es-MX", NY, 40),
        ("ASKU", "self_reported", "ASKU", NY, 25),  # declined race (whatever the source) and language
        ("UNK", "unknown", None, NY, 10),  # unknown race, unknown language
        ("2028-9", "unknown", "UNK", NY, 5),  # a race code whose source is not stated
        # MD: 60 members
        ("2106-3", "self_reported", "en", MD, 50),
        ("2135-2|2106-3", "imputed", "en", MD, 4),
        ("", "unknown", "en", MD, 6),  # empty codes: unknown
        # no valid county: state unit Unknown (30 members)
        ("2106-3", "self_reported", "en", "99999", 30),
    ])


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return rel_completeness(sample_members(), 2024)


def test_member_categories_follow_the_stratum_rules() -> None:
    cats = member_categories(sample_members(), 2024)
    race = cats.group_by("race_ethnicity").len().sort("race_ethnicity").rows()
    assert dict(race) == {"self_reported": 200, "imputed": 44, "declined": 25, "unknown": 16, "source_unknown": 5}
    lang = dict(cats.group_by("language").len().rows())
    assert lang == {"reported": 250, "declined": 25, "unknown": 15}
    assert dict(cats.group_by("state").len().rows()) == {"NY": 200, "MD": 60, "Unknown": 30}


def test_every_category_in_every_unit_and_counts_add_up() -> None:
    counts = completeness_counts(member_categories(sample_members(), 2024))
    units = counts.select("unit_level", "unit_id").unique()
    assert units.height == 4  # population + NY, MD, Unknown
    for attribute, categories in CATEGORIES.items():
        part = counts.filter(pl.col("attribute") == attribute)
        assert part.height == 4 * len(categories)
        sums = part.group_by("unit_id").agg(pl.col("members").sum(), pl.col("total").first())
        assert (sums["members"] == sums["total"]).all()
    population = counts.filter((pl.col("unit_id") == "all") & (pl.col("attribute") == "race_ethnicity"))
    assert population["total"].unique().to_list() == [290]


def test_public_columns_and_no_member_data(table: pl.DataFrame) -> None:
    assert tuple(table.columns) == COMPLETENESS_COLUMNS
    text = table.write_csv()
    assert "T000" not in text and "member_id" not in text


def test_shares_and_wilson_ci(table: pl.DataFrame) -> None:
    row = table.filter((pl.col("unit_id") == "all") & (pl.col("attribute") == "race_ethnicity")
                       & (pl.col("category") == "self_reported")).row(0, named=True)
    assert (row["members"], row["total"]) == (200, 290)
    ci = wilson_interval(200, 290)
    assert row["share"] == pytest.approx(200 / 290)
    assert (row["ci_lower"], row["ci_upper"]) == pytest.approx((float(ci.ci_lower), float(ci.ci_upper)))


def test_zero_is_published(table: pl.DataFrame) -> None:
    zero = table.filter((pl.col("unit_id") == "MD") & (pl.col("attribute") == "language") & (pl.col("category") == "declined"))
    assert zero.row(0, named=True)["members"] == 0 and not zero.row(0, named=True)["suppressed"]


def test_small_cells_and_complements_suppressed(table: pl.DataFrame) -> None:
    # the kinds of suppression, as recorded for the restricted suppression log
    detailed = rel_completeness(sample_members(), 2024, with_reasons=True)

    def unit(frame: pl.DataFrame, uid: str) -> dict[str, dict]:
        return {r["category"]: r for r in frame.filter((pl.col("unit_id") == uid)
                                                       & (pl.col("attribute") == "race_ethnicity")).iter_rows(named=True)}

    md, ny = unit(detailed, "MD"), unit(detailed, "NY")
    # MD: imputed 4 and unknown 6 are 1-10; self-reported 50 of 60 leaves a complement of 10
    for category in ("imputed", "unknown", "self_reported"):
        assert md[category]["suppressed"] and md[category]["suppression_reason"] == PRIMARY_REASON, category
    assert not md["declined"]["suppressed"] and md["declined"]["members"] == 0
    # NY: unknown 10 and source not stated 5 are primary; complementary cells keep them from being
    # worked out from the population's figures
    assert ny["unknown"]["suppression_reason"] == PRIMARY_REASON
    assert ny["source_unknown"]["suppression_reason"] == PRIMARY_REASON
    assert any(r["suppression_reason"] == COMPLEMENTARY_REASON for r in detailed.iter_rows(named=True))
    assert not ny["declined"]["suppressed"] and ny["declined"]["members"] == 25
    # the public table: the same cells suppressed, all with the one public reason
    assert table.drop("suppression_reason").equals(detailed.drop("suppression_reason"))
    assert told_reasons(table) == [PUBLIC_REASON]
    assert table.filter(pl.col("suppressed"))["suppression_reason"].null_count() == 0
    assert table.filter(~pl.col("suppressed"))["suppression_reason"].null_count() == table.filter(~pl.col("suppressed")).height
    for r in table.filter(pl.col("suppressed")).iter_rows(named=True):
        assert all(r[c] is None for c in ("members", "total", "share", "ci_lower", "ci_upper"))
    assert completeness_small_cells(table) == 0


def _true_counts() -> pl.DataFrame:
    return completeness_counts(member_categories(sample_members(), 2024))


def test_no_suppressed_count_recoverable_by_subtraction(table: pl.DataFrame) -> None:
    """Every margin (a unit's categories -> its total; the states' cells of a category -> the
    population's) with a hidden cell has at least two hidden entries, and unless the margin's total is
    hidden too, the hidden cells' true counts add up to 0 or 11+: no hidden count can be worked out."""
    truth = _true_counts().join(table.select("unit_id", "attribute", "category", "suppressed"),
                                on=["unit_id", "attribute", "category"])
    checked = 0
    for _, cells in truth.group_by("unit_id", "attribute"):
        hidden = cells.filter(pl.col("suppressed"))
        if hidden.height:
            checked += 1
            assert hidden.height >= 2 and not 1 <= hidden["members"].sum() <= 10, cells
    for (attribute, category), cells in truth.group_by("attribute", "category"):
        states = cells.filter(pl.col("unit_id") != "all")
        population_hidden = cells.filter(pl.col("unit_id") == "all")["suppressed"].item()
        hidden = states.filter(pl.col("suppressed"))
        if hidden.height + population_hidden:
            checked += 1
            assert hidden.height + population_hidden >= 2, cells
            assert population_hidden or not 1 <= hidden["members"].sum() <= 10, cells
    assert checked >= 4


# --------------------------------------------------------------------------------------------------
# a unit's total is one value: hidden in the states -> population margin, it is hidden in every row

WY, CA, NM = "56001", "06037", "35001"  # Albany County WY, Los Angeles County CA, Bernalillo County NM


def small_state_members() -> pl.DataFrame:
    """WY has 7 members (every WY row is 1-10). Its total's complement along the states ->
    population margin is MD's (the smallest other state), but MD's race/ethnicity ``declined`` cell
    need not be hidden for that margin (CA's hidden ``declined`` 20 already covers WY's), so cell
    suppression alone leaves it shown, printing MD's total."""
    return members([
        ("2106-3", "self_reported", "en", WY, 7),
        ("2106-3", "self_reported", "en", MD, 200),     # MD: 300
        ("2054-5", "imputed", "es-MX", MD, 60),
        ("ASKU", "self_reported", "ASKU", MD, 40),
        ("2106-3", "self_reported", "en", CA, 375),     # CA: 400; imputed 5 is 1-10, declined its complement
        ("2054-5", "imputed", "en", CA, 5),
        ("ASKU", "self_reported", "ASKU", CA, 20),
        ("2106-3", "self_reported", "en", NM, 400),     # NM: 500
        ("2054-5", "imputed", "es-MX", NM, 100),
    ])


def recover_a_hidden_total(table: pl.DataFrame) -> dict[str, int]:
    """The attacker: every shown row prints its unit's total; the states add up to the population, so
    with the population's total shown and one state's unknown, that state's is the difference."""
    shown = table.filter(~pl.col("suppressed"))
    known = {uid: int(g["total"][0]) for (uid,), g in shown.group_by("unit_id")}
    states = table.filter(pl.col("unit_level") == "state")["unit_id"].unique().to_list()
    unknown = [s for s in states if s not in known]
    if "all" not in known or len(unknown) != 1:
        return {}
    return {unknown[0]: known["all"] - sum(known[s] for s in states if s in known)}


def test_the_small_state_world_has_the_pattern(monkeypatch) -> None:
    """Without tying each unit's rows to its total (cell suppression only), the attacker gets WY's 7."""
    import equity_pipeline.report.completeness as completeness

    monkeypatch.setattr(completeness, "_unit_total_links", lambda frame: (frame, []))
    table = completeness.rel_completeness(small_state_members(), 2024)
    assert recover_a_hidden_total(table) == {"WY": 7}


def test_a_hidden_unit_total_is_hidden_in_every_row_of_both_attributes() -> None:
    from equity_pipeline.equity_plans.state import completeness_totals_known

    table = rel_completeness(small_state_members(), 2024)
    assert recover_a_hidden_total(table) == {}
    truth = completeness_counts(member_categories(small_state_members(), 2024))
    hidden_units = []
    for (uid,), g in table.group_by("unit_id"):
        if g["suppressed"].all():
            hidden_units.append(uid)
        # a unit whose total is printed at all prints its true total in every shown row
        for r in g.filter(~pl.col("suppressed")).iter_rows(named=True):
            assert r["total"] == truth.filter(pl.col("unit_id") == uid)["total"][0]
    # WY (7) and its complement MD are hidden whole, race/ethnicity and language alike; CA and NM
    # keep their cell-level suppression only
    assert sorted(hidden_units) == ["MD", "WY"]
    detailed = rel_completeness(small_state_members(), 2024, with_reasons=True)
    md = detailed.filter(pl.col("unit_id") == "MD")
    assert md.height == 8 and md["suppression_reason"].unique().to_list() == [COMPLEMENTARY_REASON]
    assert not table.filter(pl.col("unit_id") == "CA")["suppressed"].all()
    # the hidden totals add up to 307, not to a 1-10 count
    totals = dict(truth.select("unit_id", "total").unique().rows())
    assert sum(totals[u] for u in hidden_units) == 307
    assert completeness_small_cells(table) == 0
    # the plan's completeness locks read the same: neither hidden state's total is known
    known = completeness_totals_known(table)
    assert not known[("state", "WY")] and not known[("state", "MD")]
    assert known[("population", "all")] and known[("state", "CA")] and known[("state", "NM")]


def test_no_hidden_unit_total_in_the_sample_table(table: pl.DataFrame) -> None:
    """The sample's states are all 11+ and none is a total's complement: no unit is hidden whole."""
    assert recover_a_hidden_total(table) == {}
    assert not any(g["suppressed"].all() for _, g in table.group_by("unit_id"))
