"""Pairwise disparities against published intervals and exact identities."""
from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from equity_pipeline.stats.disparities import (
    OVERALL,
    RESULT_SCHEMA,
    pairwise_disparities,
    rate_difference,
    rate_ratio,
    reference_group,
)


def two_groups(x1: int, n1: int, x0: int, n0: int) -> pl.DataFrame:
    return pl.DataFrame({"group": ["g", "ref"], "numerator": [x1, x0], "denominator": [n1, n0]})


# Newcombe RG. Interval estimation for the difference between independent proportions: comparison of
# eleven methods. Stat Med 1998;17:873-890, Table II, method 10 (score, no continuity correction).
NEWCOMBE_1998 = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_1998)
def test_difference_interval_matches_newcombe_1998(counts, published) -> None:
    row = rate_difference(two_groups(*counts), reference="ref", higher_is_better=True).row(0, named=True)
    assert row["estimate"] == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (round(row["ci_lower"], 4), round(row["ci_upper"], 4)) == published


def test_output_has_the_stackable_columns() -> None:
    out = pairwise_disparities(two_groups(56, 70, 48, 80), reference="ref", higher_is_better=True)
    assert dict(out.schema) == RESULT_SCHEMA
    assert out["metric"].to_list() == ["rate_difference", "rate_ratio"]


SUMMARY = pl.DataFrame({"group": ["White", "Black", "Asian", "Hispanic"],
                        "numerator": [700, 300, 45, 12], "denominator": [1000, 500, 50, 30]})


@pytest.mark.parametrize(("policy", "higher_is_better", "expected"), [
    ("best", True, "Asian"),      # 90% is the highest rate
    ("best", False, "Hispanic"),  # 40% is the lowest rate
    ("largest", True, "White"),   # largest denominator
    ("overall", True, OVERALL),
    ("Black", True, "Black"),
])
def test_reference_policies(policy, higher_is_better, expected) -> None:
    assert reference_group(SUMMARY, policy, higher_is_better=higher_is_better) == expected


def test_unknown_reference_group_says_which_groups_exist() -> None:
    with pytest.raises(ValueError, match="reference group 'Martian' not found; groups are: White, Black"):
        rate_ratio(SUMMARY, reference="Martian", higher_is_better=True)


def test_bad_summary_is_rejected_in_one_line() -> None:
    with pytest.raises(ValueError, match="missing column"):
        rate_ratio(SUMMARY.drop("denominator"), reference="best", higher_is_better=True)
    with pytest.raises(ValueError, match="denominator > 0"):
        rate_ratio(SUMMARY.with_columns(denominator=pl.lit(0)), reference="best", higher_is_better=True)


def test_difference_against_overall_is_group_minus_population_rate() -> None:
    out = rate_difference(SUMMARY, reference="overall", higher_is_better=True).to_dicts()
    overall = SUMMARY["numerator"].sum() / SUMMARY["denominator"].sum()
    for row in out:
        g = SUMMARY.filter(pl.col("group") == row["group"]).row(0, named=True)
        assert row["estimate"] == pytest.approx(g["numerator"] / g["denominator"] - overall)
        assert row["ci_lower"] <= row["estimate"] <= row["ci_upper"]
    ratios = rate_ratio(SUMMARY, reference="overall", higher_is_better=True).to_dicts()
    for row in ratios:
        g = SUMMARY.filter(pl.col("group") == row["group"]).row(0, named=True)
        assert row["estimate"] == pytest.approx(g["numerator"] / g["denominator"] / overall)
        assert row["ci_lower"] <= row["estimate"] <= row["ci_upper"]


def test_multiplicity_adjustment_never_lowers_p_values() -> None:
    for adjust in ("holm", "fdr_bh", "bonferroni"):
        out = rate_ratio(SUMMARY, reference="White", higher_is_better=True, adjust=adjust)
        assert (out["p_adjusted"] >= out["p_value"] - 1e-15).all()
    raw = rate_ratio(SUMMARY, reference="White", higher_is_better=True, adjust="none")
    assert raw["p_adjusted"].to_list() == raw["p_value"].to_list()
    # Holm with three comparisons: the smallest p-value is multiplied by 3
    holm = rate_ratio(SUMMARY, reference="White", higher_is_better=True, adjust="holm")
    smallest = raw["p_value"].min()
    assert holm.filter(pl.col("p_value") == smallest)["p_adjusted"].item() == pytest.approx(min(1, 3 * smallest))


@st.composite
def count_pair(draw):
    n1, n0 = draw(st.integers(1, 2000)), draw(st.integers(1, 2000))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n0)), n0


@given(count_pair(), st.sampled_from(["proportion", "rate"]))
def test_intervals_contain_the_estimate_even_at_zero_and_full_rates(counts, outcome) -> None:
    out = pairwise_disparities(two_groups(*counts), reference="ref", higher_is_better=True, outcome=outcome)
    for row in out.iter_rows(named=True):
        assert 0.0 <= row["p_value"] <= 1.0
        if math.isnan(row["estimate"]) or math.isnan(row["ci_lower"]):
            continue
        assert row["ci_lower"] - 1e-9 <= row["estimate"] <= row["ci_upper"] + 1e-9, row
