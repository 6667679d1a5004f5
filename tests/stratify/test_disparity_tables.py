"""Disparity tables on hand-built public rates whose differences and ratios are worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from equity_pipeline.disparity_tables import (
    DISPARITY_COLUMNS,
    SUMMARY_COLUMNS,
    DisparityOptions,
    adjust_p_values,
    disparity_table,
    leaked_cells,
    summary_table,
)
from equity_pipeline.stratify import RATES_COLUMNS

Z = 1.959963984540054


def rates_table(cells: list[tuple], *, overall: tuple[float, float], direction: str = "higher_is_better",
                rate_type: str = "proportion", per: float = 1.0, stratifier: str = "race", measure: str = "BCS",
                members: dict[str, float] | None = None) -> pl.DataFrame:
    """cells: (stratum, denominator, numerator, suppressed). Proportions: members = denominator."""
    rows = []
    for stratum, den, num, hidden in [("all", *overall, False), *cells]:
        mem = (members or {}).get(stratum, den)
        rows.append({
            "measure_id": measure, "measure_title": measure, "measure_version": "1", "submeasure": "all", "period": "2025",
            "unit_level": "population", "unit_id": "all", "stratifier": "overall" if stratum == "all" else stratifier,
            "stratum": stratum, "members": None if hidden else int(mem), "denominator": None if hidden else float(den),
            "numerator": None if hidden else float(num), "rate": None if hidden else num / den * per,
            "ci_lower": None, "ci_upper": None, "rate_type": rate_type, "rate_per": per, "suppressed": hidden,
            "suppression_reason": "cell-size policy" if hidden else None, "data_source": "claims", "direction": direction,
        })
    return pl.DataFrame(rows).select(RATES_COLUMNS)


def row(table: pl.DataFrame, stratum: str) -> dict:
    return table.filter(pl.col("stratum") == stratum).row(0, named=True)


def test_difference_interval_matches_newcombe_and_ratio_is_arithmetic():
    # Newcombe RG, Stat Med 1998;17:873-890, Table II, example (a), method 10: 56/70 - 48/80 = 0.2000,
    # 95% CI 0.0524 to 0.3339
    rates = rates_table([("A", 70, 56, False), ("B", 80, 48, False), ("C", 100, 90, False)], overall=(250, 194))
    out = disparity_table(rates, DisparityOptions(reference={"race": "B"}), kinds={"BCS": "proportion"})
    assert list(out.columns) == list(DISPARITY_COLUMNS)
    a = row(out, "A")
    assert a["reference_stratum"] == "B" and a["reference_policy"] == "B" and a["status"] == "compared"
    assert a["difference"] == pytest.approx(0.2, abs=1e-12)
    assert (round(a["difference_ci_lower"], 4), round(a["difference_ci_upper"], 4)) == (0.0524, 0.3339)
    assert a["ratio"] == pytest.approx((56 / 70) / (48 / 80))
    assert a["ratio_ci_lower"] < a["ratio"] < a["ratio_ci_upper"]
    assert (a["rate"], a["reference_rate"]) == pytest.approx((0.8, 0.6))
    c = row(out, "C")
    assert c["difference"] == pytest.approx(0.3) and c["ratio"] == pytest.approx(1.5)
    # Holm over the two comparisons, as statsmodels computes it
    expected = multipletests([a["p_value"], c["p_value"]], method="holm")[1]
    assert [a["p_adjusted"], c["p_adjusted"]] == pytest.approx(list(expected))
    b = row(out, "B")
    assert b["is_reference"] and b["status"] == "reference" and b["difference"] is None
    # B is worse than both (higher is better) but it is the reference; A and C are better, never "worse"
    assert a["worse_than_reference"] is False and c["worse_than_reference"] is False


def test_best_reference_needs_enough_members_and_flags_worse_groups():
    rates = rates_table([
        ("C", 100, 90, False),   # 0.90: best among groups with >= 30 members -> reference
        ("D", 20, 19, False),    # 0.95 but only 20 members: not eligible as reference; insufficient
        ("E", 40, 10, False),    # 0.25: clearly worse than 0.90
        ("F", 28, 12, False),    # 0.43: clearly worse, but 28 members < 30 -> insufficient, not flagged
    ], overall=(188, 131))
    out = disparity_table(rates, DisparityOptions(default_reference="best", min_denominator=30), kinds={"BCS": "proportion"})
    assert set(out["reference_stratum"]) == {"C"}
    e, f, d = row(out, "E"), row(out, "F"), row(out, "D")
    assert e["significant"] and e["worse_than_reference"] and not e["insufficient_data"]
    assert f["significant"] and f["insufficient_data"] and f["worse_than_reference"] is False
    assert d["insufficient_data"] and d["worse_than_reference"] is False
    assert e["difference"] == pytest.approx(0.25 - 0.90)


def test_largest_and_lower_is_better():
    # an adverse outcome (lower is better): the largest group is the reference, higher rates are worse
    rates = rates_table([("A", 400, 40, False), ("B", 100, 30, False), ("C", 90, 5, False)], overall=(590, 75),
                        direction="lower_is_better", measure="HBD")
    out = disparity_table(rates, DisparityOptions(default_reference="largest"), kinds={"HBD": "proportion"})
    assert set(out["reference_stratum"]) == {"A"}
    b = row(out, "B")
    assert b["difference"] == pytest.approx(0.3 - 0.1) and b["ratio"] == pytest.approx(3.0)
    assert b["significant"] and b["worse_than_reference"]
    c = row(out, "C")
    assert c["difference"] < 0 and c["worse_than_reference"] is False


def test_overall_reference_is_difference_from_the_whole_population():
    rates = rates_table([("A", 70, 56, False), ("B", 80, 48, False), ("S", 6, 3, True)], overall=(156, 107))
    out = disparity_table(rates, DisparityOptions(default_reference="overall"), kinds={"BCS": "proportion"})
    a = row(out, "A")
    assert a["reference_stratum"] == "overall" and a["reference_rate"] == pytest.approx(107 / 156)
    assert a["difference"] == pytest.approx(56 / 70 - 107 / 156)
    assert a["ratio"] == pytest.approx((56 / 70) / (107 / 156))
    assert a["difference_ci_lower"] < a["difference"] < a["difference_ci_upper"]
    assert row(out, "S")["status"] == "suppressed"


def test_suppressed_strata_never_leak():
    # G is suppressed in the public table; its true counts (only in the restricted counts) would be the best rate
    cells = [("A", 200, 150, False), ("B", 150, 90, False), ("G", 9, 9, True), ("H", 8, 4, True)]
    rates = rates_table(cells, overall=(367, 253))
    for policy in ("best", "largest", "overall"):
        options = DisparityOptions(default_reference=policy)
        out = disparity_table(rates, options, kinds={"BCS": "proportion"})
        summary = summary_table(rates, out, options, kinds={"BCS": "proportion"})
        for hidden in ("G", "H"):
            r = row(out, hidden)
            assert r["suppressed"] and r["status"] == "suppressed"
            assert all(r[c] is None for c in ("rate", "reference_rate", "difference", "ratio", "p_value", "p_adjusted",
                                              "difference_ci_lower", "ratio_ci_upper"))
        assert "G" not in set(out["reference_stratum"].drop_nulls())
        assert all("G" not in used and "H" not in used for used in summary["strata_used"].to_list())
        assert leaked_cells(out, summary, rates) == 0
    # moving hidden counts between the suppressed cells (the published total stays) changes nothing published
    counts = _counts_for(cells, overall=(367, 253))
    moved = _counts_for([("A", 200, 150, False), ("B", 150, 90, False), ("G", 12, 5, True), ("H", 5, 8 - 5 + 3, True)],
                        overall=(367, 253))
    for policy in ("best", "overall"):
        options = DisparityOptions(default_reference=policy)
        one = disparity_table(rates, options, counts, {"BCS": "proportion"})
        two = disparity_table(rates, options, moved, {"BCS": "proportion"})
        assert one.equals(two)
        assert summary_table(rates, one, options, counts, {"BCS": "proportion"}).equals(
            summary_table(rates, two, options, moved, {"BCS": "proportion"}))


def _counts_for(cells, overall) -> pl.DataFrame:
    rows = []
    for stratum, den, num, _ in [("all", *overall, False), *cells]:
        rows.append({"measure_id": "BCS", "measure_version": "1", "submeasure": "all", "period": "2025",
                     "unit_level": "population", "unit_id": "all", "stratifier": "overall" if stratum == "all" else "race",
                     "stratum": stratum, "members": float(den), "denominator": float(den), "numerator": float(num),
                     "sum_num_sq": float(num), "sum_num_den": float(num), "sum_den_sq": float(den)})
    return pl.DataFrame(rows)


def test_a_suppressed_named_reference_gives_no_comparison():
    rates = rates_table([("A", 70, 56, False), ("B", 8, 4, True)], overall=(78, 60))
    out = disparity_table(rates, DisparityOptions(reference={"race": "B"}), kinds={"BCS": "proportion"})
    a = row(out, "A")
    assert a["status"] == "no_reference" and a["reference_stratum"] is None
    assert a["rate"] == pytest.approx(0.8) and a["difference"] is None and a["reference_rate"] is None


def test_unknown_and_declined_are_compared_outside_the_family_and_never_the_reference():
    rates = rates_table([("A", 100, 60, False), ("B", 100, 50, False), ("Unknown", 100, 95, False),
                         ("Declined", 50, 20, False)], overall=(350, 225))
    out = disparity_table(rates, DisparityOptions(), kinds={"BCS": "proportion"})
    assert set(out["reference_stratum"]) == {"A"}  # Unknown has the best rate but is never the reference
    u = row(out, "Unknown")
    assert u["status"] == "unknown_group" and u["difference"] == pytest.approx(0.35)
    assert u["p_value"] is not None and u["p_adjusted"] is None and u["significant"] is None
    b = row(out, "B")
    assert b["p_adjusted"] == pytest.approx(b["p_value"])  # a family of one comparison (B vs A)
    summary = summary_table(rates, out, DisparityOptions(), kinds={"BCS": "proportion"})
    assert set(summary["strata_used"].explode()) == {"A", "B"}
    assert set(summary["groups_used"]) == {2}


def test_event_rates_are_compared_per_person_time_on_the_published_scale():
    # ED visits per 1,000 member-months: A 120 visits / 2,000 mm = 60; B 45 / 1,500 = 30
    rates = rates_table([("A", 2000, 120, False), ("B", 1500, 45, False)], overall=(3500, 165), rate_type="per_member_months",
                        per=1000.0, direction="lower_is_better", measure="ED_VISITS", members={"A": 180, "B": 130, "all": 310})
    out = disparity_table(rates, DisparityOptions(reference={"race": "B"}), kinds={"ED_VISITS": "event_rate"})
    a = row(out, "A")
    assert (a["rate"], a["reference_rate"]) == pytest.approx((60.0, 30.0))
    assert a["difference"] == pytest.approx(30.0) and a["ratio"] == pytest.approx(2.0)
    assert a["difference_ci_lower"] < 30.0 < a["difference_ci_upper"]
    assert a["worse_than_reference"]  # more ED visits, lower is better


def test_cost_measures_use_the_linearised_standard_error():
    # TCOC per member month: numerator dollars, denominator member-months; SE from the member-level sums
    cells = {"A": dict(members=50, denominator=600.0, numerator=300_000.0, sum_num_sq=2.5e9, sum_num_den=3.7e6, sum_den_sq=7300.0),
             "B": dict(members=40, denominator=480.0, numerator=168_000.0, sum_num_sq=9.0e8, sum_num_den=1.7e6, sum_den_sq=5800.0)}
    total = {k: cells["A"][k] + cells["B"][k] for k in cells["A"]}
    rates = rates_table([(s, c["denominator"], c["numerator"], False) for s, c in cells.items()],
                        overall=(total["denominator"], total["numerator"]), rate_type="usd_pmpm", direction="lower_is_better",
                        measure="TCOC_PMPM", members={"A": 50, "B": 40, "all": 90})
    counts = pl.DataFrame([{"measure_id": "TCOC_PMPM", "measure_version": "1", "submeasure": "all", "period": "2025",
                            "unit_level": "population", "unit_id": "all", "stratifier": "overall" if s == "all" else "race",
                            "stratum": s, **{k: float(v) for k, v in c.items()}}
                           for s, c in [("all", total), *cells.items()]])
    out = disparity_table(rates, DisparityOptions(reference={"race": "B"}), counts, {"TCOC_PMPM": "cost"})

    def se(c):  # sqrt(n/(n-1) * sum (y - r m)^2) / sum m, the squares expanded
        r = c["numerator"] / c["denominator"]
        resid = c["sum_num_sq"] - 2 * r * c["sum_num_den"] + r * r * c["sum_den_sq"]
        return math.sqrt(resid * c["members"] / (c["members"] - 1)) / c["denominator"]

    a = row(out, "A")
    diff = 500.0 - 350.0
    half = Z * math.sqrt(se(cells["A"]) ** 2 + se(cells["B"]) ** 2)
    assert a["difference"] == pytest.approx(diff)
    assert (a["difference_ci_lower"], a["difference_ci_upper"]) == pytest.approx((diff - half, diff + half))
    log_se = math.sqrt((se(cells["A"]) / 500) ** 2 + (se(cells["B"]) / 350) ** 2)
    assert a["ratio_ci_lower"] == pytest.approx(500 / 350 * math.exp(-Z * log_se))
    # a suppressed stratum's restricted sums are never used: changing them changes nothing
    hidden_rates = pl.concat(how="vertical_relaxed", items=[rates, rates_table([("H", 9, 1, True)], overall=(1, 1), rate_type="usd_pmpm", measure="TCOC_PMPM",
                                                 direction="lower_is_better").filter(pl.col("stratum") == "H")])
    def with_hidden(value: float) -> pl.DataFrame:
        return pl.concat([counts, counts.filter(pl.col("stratum") == "A").with_columns(
            stratum=pl.lit("H"), numerator=pl.lit(value), sum_num_sq=pl.lit(value * value))])
    for policy in ("overall", "largest"):
        options = DisparityOptions(default_reference=policy)
        one = disparity_table(hidden_rates, options, with_hidden(10.0), {"TCOC_PMPM": "cost"})
        two = disparity_table(hidden_rates, options, with_hidden(9e6), {"TCOC_PMPM": "cost"})
        assert one.equals(two) and row(one, "H")["status"] == "suppressed"
    # without the restricted counts there is no standard error: no comparison rather than a wrong one
    bare = disparity_table(rates, DisparityOptions(reference={"race": "B"}), None, {"TCOC_PMPM": "cost"})
    assert row(bare, "A")["status"] == "no_comparison" and row(bare, "A")["difference"] is None


def test_summary_measures_over_published_strata():
    cells = [("A", 200, 160, False), ("B", 100, 60, False), ("C", 100, 50, False), ("S", 5, 1, True), ("Unknown", 40, 20, False)]
    rates = rates_table(cells, overall=(445, 291))
    options = DisparityOptions(simulations=200)
    out = disparity_table(rates, options, kinds={"BCS": "proportion"})
    summary = summary_table(rates, out, options, kinds={"BCS": "proportion"})
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    by = {r["summary_measure"]: r for r in summary.iter_rows(named=True)}
    # between-group variance: sum p_j (y_j - mu)^2 over A, B, C with population shares (Unknown and S excluded)
    y, n = np.array([0.8, 0.6, 0.5]), np.array([200, 100, 100])
    p = n / n.sum()
    mu = (p * y).sum()
    assert by["between_group_variance"]["value"] == pytest.approx((p * (y - mu) ** 2).sum())
    assert by["between_group_variance"]["groups_used"] == 3
    assert by["between_group_variance"]["strata_used"] == ["A", "B", "C"]
    assert by["between_group_variance"]["reference_stratum"] == "A"
    # mean difference from the reference (A, the best): mean |y_j - 0.8| over the three
    assert by["mean_difference_from_reference"]["value"] == pytest.approx(np.abs(y - 0.8).mean())
    assert {"range_difference", "range_ratio", "index_of_disparity", "theil_index"} <= set(by)


def test_ordered_stratifier_gets_ordered_measures():
    cells = [("Q1 (least vulnerable)", 100, 80, False), ("Q2", 100, 75, False), ("Q3", 100, 70, False), ("Q4", 100, 65, False),
             ("Q5 (most vulnerable)", 100, 60, False)]
    rates = rates_table(cells, overall=(500, 350), stratifier="svi_quintile")
    summary = summary_table(rates, None, DisparityOptions(simulations=200), kinds={"BCS": "proportion"})
    by = {r["summary_measure"]: r for r in summary.iter_rows(named=True)}
    assert by["slope_index_of_inequality"]["ordered"]
    # rates fall steadily from Q1 to Q5: the most advantaged (Q1) do better, the slope is positive on the
    # order scale (1 = most disadvantaged = Q5)
    assert by["slope_index_of_inequality"]["value"] > 0
    assert "between_group_variance" not in by


@pytest.mark.parametrize("method, sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjusted_p_values_match_statsmodels(method, sm):
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 17):
        p = rng.uniform(0, 0.2, size)
        p[rng.integers(0, size)] = 0.001
        assert adjust_p_values(p, method) == pytest.approx(multipletests(p, method=sm)[1])
    with_nan = np.array([0.01, np.nan, 0.04])
    got = adjust_p_values(with_nan, method)
    assert math.isnan(got[1]) and got[[0, 2]] == pytest.approx(multipletests([0.01, 0.04], method=sm)[1])


def test_mean_comparison_same_bits_as_scipys_normal_distribution():
    """``_mean_comparison`` takes the normal quantile once (cached) and the two-sided p-value from
    ``special.ndtr``: the same figures, bit for bit, as ``norm.ppf`` / ``norm.sf`` on every call."""
    import math

    from scipy.stats import norm

    from equity_pipeline.disparity_tables import _mean_comparison

    rng = np.random.default_rng(7)
    cases = [(120.0, 8.0, 100.0, 6.0), (100.0, 0.0, 100.0, 0.0), (100.0, 0.0, 90.0, 0.0), (0.0, 1.0, 50.0, 2.0), (5.0, 1e-9, 5.0 + 1e-3, 1e-9)]
    cases += [(float(a), float(b), float(c), float(d)) for a, b, c, d in zip(rng.gamma(2, 50, 300), rng.gamma(1, 5, 300),
                                                                             rng.gamma(2, 50, 300), rng.gamma(1, 5, 300))]
    for alpha in (0.05, 0.1):
        z = float(norm.ppf(1 - alpha / 2))
        for x1, se1, x0, se0 in cases:
            se_d = math.sqrt(se1 ** 2 + se0 ** 2)
            p = float(2 * norm.sf(abs(x1 - x0) / se_d)) if se_d > 0 else (1.0 if x1 == x0 else 0.0)
            d = _mean_comparison(x1, se1, x0, se0, "rate_difference", alpha)
            assert d[0] == x1 - x0 and d[2] == x1 - x0 - z * se_d and d[3] == x1 - x0 + z * se_d and d[4] == p
            r = _mean_comparison(x1, se1, x0, se0, "rate_ratio", alpha)
            assert r[4] == p
            if x1 > 0 and x0 > 0:
                se_l = math.sqrt((se1 / x1) ** 2 + (se0 / x0) ** 2)
                assert r[2] == x1 / x0 * math.exp(-z * se_l) and r[3] == x1 / x0 * math.exp(z * se_l)
