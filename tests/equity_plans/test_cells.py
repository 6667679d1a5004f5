"""Suppression of the plan tables' own cells: the CMS 1-10 rule with complementary suppression
(``suppression.suppress``), cells locked to another public table, forced and linked cells, region
parts and identities between strata found in the data."""
from __future__ import annotations

import polars as pl

from equity_pipeline.equity_plans import cells as C


def frame(rows: list[tuple]) -> pl.DataFrame:
    """rows: (stratifier, stratum, denominator, numerator[, lock[, force]]) of one proportion family."""
    return C.cell_frame([
        {"family": "F", "submeasure": "all", "unit_level": "population", "unit_id": "all", "payer": "all",
         "stratifier": r[0], "stratum": r[1], "kind": "proportion", "members": None, "denominator": r[2], "numerator": r[3],
         "lock": r[4] if len(r) > 4 else None, "force": r[5] if len(r) > 5 else False, "lock_reason": "suppressed in public/rates"
         if len(r) > 4 and r[4] == "suppressed" else None}
        for r in rows])


def flags(out: pl.DataFrame) -> dict[str, bool]:
    return dict(zip(out["stratum"], out["suppressed"]))


def test_small_cell_and_its_complement_around_a_locked_total():
    cells = frame([("overall", "all", 100, 50, "published"), ("race", "A", 5, 2), ("race", "B", 95, 48)])
    margins = C.partition_margins(cells)
    assert margins == [([1, 2], 0)]
    out, conflicts = C.protect(cells, margins)
    # A is small; B must go too (else A = total - B); the total is shown in public/rates and stays shown
    assert flags(out) == {"all": False, "A": True, "B": True}
    # the restricted reasons (the plan tables publish suppression.PUBLIC_REASON instead)
    assert out["suppression_reason"].to_list() == [None, "small cell (1-10)", "complementary"]
    assert conflicts == 0 and C.unprotected_margins(out, margins) == 0


def test_a_zero_cell_protects_a_hidden_cell_equal_to_a_locked_total():
    # A holds everyone (A = total) and must be hidden (forced); the total is public elsewhere
    with_zero = frame([("overall", "all", 40, 20, "published"), ("race", "A", 40, 20, None, True), ("race", "Z", 0, 0)])
    out, conflicts = C.protect(with_zero, C.partition_margins(with_zero))
    assert flags(out) == {"all": False, "A": True, "Z": True} and conflicts == 0
    assert C.unprotected_margins(out, C.partition_margins(with_zero)) == 0
    # without the zero row A *is* the public total (a one-cell margin): it cannot be hidden, and the
    # conflict is reported (the asset check fails on it) rather than passed over
    alone = frame([("overall", "all", 40, 20, "published"), ("race", "A", 40, 20, None, True)])
    out, conflicts = C.protect(alone, C.partition_margins(alone))
    assert conflicts == 1
    assert flags(out) == {"all": False, "A": False}


def test_a_cell_suppressed_in_the_other_table_stays_hidden_and_needs_a_complement():
    cells = frame([("overall", "all", 100, 50), ("race", "A", 50, 25, "suppressed"), ("race", "B", 50, 25)])
    out, _ = C.protect(cells, C.partition_margins(cells))
    assert flags(out) == {"all": False, "A": True, "B": True}
    assert out["suppression_reason"].to_list() == [None, "suppressed in public/rates", "complementary"]


def test_one_way_link_hides_the_dependent_cell_only():
    # screened 95 of 100 (5 not screened: small) -> hidden; the positive rate among those 95 reveals it
    cells = frame([("overall", "screen", 100, 95), ("overall", "positive", 95, 40),
                   ("overall", "screen2", 100, 50), ("overall", "positive2", 50, 3)])
    out, _ = C.protect(cells, [], links=[(0, 1), (2, 3)])
    assert flags(out) == {"screen": True, "positive": True, "screen2": False, "positive2": True}
    assert out.filter(pl.col("stratum") == "positive")["suppression_reason"][0] == "complementary"


def test_identity_between_strata_of_two_stratifiers_is_a_margin():
    # the 12 Asian members are exactly the 12 dual eligible members: two cells, one set of people
    labels = pl.DataFrame({
        "member_id": [f"m{i}" for i in range(45)],
        "race": ["Asian"] * 12 + ["Black"] * 3 + ["White"] * 30,
        "dual": ["Dual"] * 12 + ["Not dual"] * 33,
    }).with_columns(submeasure=pl.lit("all"), unit_level=pl.lit("population"), unit_id=pl.lit("all"), payer=pl.lit("all"))
    cells = frame([("overall", "all", 45, 0), ("race", "Asian", 12, 0), ("race", "Black", 3, 0), ("race", "White", 30, 0),
                   ("dual", "Dual", 12, 0), ("dual", "Not dual", 33, 0)]).sort(C.COORDS)
    found = C.identity_margins(cells, labels, ["submeasure", "unit_level", "unit_id", "payer"],
                               {"race": ("F", "race"), "dual": ("F", "dual")})
    idx = {s: i for i, s in enumerate(cells["stratum"])}
    assert ([idx["Asian"]], idx["Dual"]) in found and ([idx["Dual"]], idx["Asian"]) in found
    # Not dual = Black + White (both lie wholly inside it and cover it)
    assert (sorted([idx["Black"], idx["White"]]), idx["Not dual"]) in found
    plain = C.partition_margins(cells)
    # Black is small; Asian (the smallest other race) hides it; then Dual (= Asian) must go too
    out, _ = C.protect(cells, plain)
    assert flags(out)["Asian"] and not flags(out)["Dual"]            # without the identity: Dual reveals Asian
    out, _ = C.protect(cells, plain + found)
    assert flags(out)["Asian"] and flags(out)["Dual"] and flags(out)["Not dual"]
    assert C.unprotected_margins(out, plain + found) == 0


def test_region_parts_link_regions_and_states():
    rows = []
    for level, uid in (("population", "all"), ("state", "MD"), ("state", "DC"), ("region", "Capital"),
                       ("region_part", "Capital | MD"), ("region_part", "Capital | DC"), ("state_rest", "MD")):
        rows.append({"family": "F", "submeasure": "all", "unit_level": level, "unit_id": uid, "payer": "all", "stratifier": "overall",
                     "stratum": "all", "kind": "proportion", "denominator": 10.0, "numerator": 1.0})
    cells = C.cell_frame(rows)
    margins = sorted(C.region_margins(cells))
    # Capital = its MD part + its DC part; MD = its Capital part + its rest; DC = its Capital part
    assert margins == sorted([([4, 5], 3), ([4, 6], 1), ([5], 2)])
    assert C.unit_margins(cells) == [([1, 2], 0)]


def test_small_published_counts_only_shown_rows():
    cells = frame([("overall", "all", 100, 50), ("race", "A", 5, 2)]).with_columns(
        suppressed=pl.Series([False, False]), publish=pl.Series([True, True]))
    assert C.small_published(cells) == 1
    assert C.small_published(cells.with_columns(publish=pl.Series([True, False]))) == 0
