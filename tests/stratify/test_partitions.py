"""Counts computed on disjoint member partitions and added up are the whole run's counts, exactly,
and intervals recomputed from the combined counts are the whole run's intervals.

This is what lets a program stratify by state or by payer in separate runs (or Dagster partitions)
and combine: every kept sum (``stratify.SUMS``; the imputed track's ``IMPUTED_SUMS``) is additive
over members. Checked on the generated run (proportions) and on a hand-built member table with an
event rate and a cost measure (floats; the ratio-estimator CI needs the squared sums).
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from equity_pipeline import imputation
from equity_pipeline.stratify import KEY, SUMS, rate_and_ci, stratified_counts
from tests.stratify.conftest import SETTINGS


def _combine(parts: list[pl.DataFrame], sums) -> pl.DataFrame:
    return pl.concat(parts).group_by(KEY).agg([pl.col(c).sum() for c in sums]).sort(KEY)


def _partitioned(results, attributes, by: str, count, sums) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    whole = count(results, attributes)
    parts = []
    for (value,), members in attributes.group_by(by):
        ids = members["member_id"]
        parts.append(count(results.filter(pl.col("member_id").is_in(ids.implode())), members))
    return whole.select(*KEY, *sums).sort(KEY), _combine(parts, sums), len(parts)


@pytest.mark.parametrize("by", ["state", "payer"])
def test_generated_run_counts_add_up_over_partitions(generated_bcs, by):
    _, layout, _ = generated_bcs
    results = pl.concat([pl.read_parquet(layout.member_results(m)) for m in SETTINGS["measures"]], how="diagonal_relaxed")
    attributes = pl.read_parquet(layout.member_attributes)
    count = lambda r, a: stratified_counts(r, a, SETTINGS["stratifiers"], [tuple(p) for p in SETTINGS["intersections"]])  # noqa: E731
    whole, combined, n_parts = _partitioned(results, attributes, by, count, SUMS)
    assert n_parts >= 3
    assert whole.height == combined.height > 500
    assert whole.equals(combined), whole.join(combined, on=KEY, how="full").head()   # exact: integer-valued floats
    meta = pl.DataFrame({"measure_id": SETTINGS["measures"], "kind": ["proportion"] * 2, "rate_per": [1.0, 1.0]})
    a, b = rate_and_ci(whole.join(meta, on="measure_id")).sort(KEY), rate_and_ci(combined.join(meta, on="measure_id")).sort(KEY)
    assert a.select("rate", "ci_lower", "ci_upper").equals(b.select("rate", "ci_lower", "ci_upper"))


def _hand_built(seed: int = 3, members: int = 600) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Member results for an event rate (visits per member-month) and a cost measure (dollars per
    member-month) with float values, and attributes with state, payer and race."""
    rng = np.random.default_rng(seed)
    ids = [f"M{i:05d}" for i in range(members)]
    months = rng.integers(1, 13, members).astype(float)
    visits = rng.poisson(0.3 * months).astype(float)
    dollars = np.round(rng.gamma(0.6, 400.0, members) * months / 12, 2)
    results = pl.concat([
        pl.DataFrame({"member_id": ids, "measure_id": m, "measure_version": "1", "submeasure": "all", "period": "2025",
                      "in_denominator": True, "numerator_value": y, "denominator_value": months})
        for m, y in (("VISITS", visits), ("COST", dollars))
    ])
    attributes = pl.DataFrame({
        "member_id": ids, "state": rng.choice(["MD", "VA", "DC", "Unknown"], members),
        "payer": rng.choice(["medicaid", "medicare", "commercial"], members),
        "race_ethnicity": rng.choice(["White", "Black or African American", "Asian", "Unknown"], members),
        "sex": rng.choice(["Female", "Male"], members),
    })
    return results, attributes


@pytest.mark.parametrize("by", ["state", "payer"])
def test_event_and_cost_sums_and_intervals_combine(by):
    results, attributes = _hand_built()
    count = lambda r, a: stratified_counts(r, a, ("race_ethnicity", "sex"))  # noqa: E731
    whole, combined, _ = _partitioned(results, attributes, by, count, SUMS)
    assert whole.select(KEY).equals(combined.select(KEY))
    for c in SUMS:   # float sums in another order: equal to rounding
        np.testing.assert_allclose(combined[c].to_numpy(), whole[c].to_numpy(), rtol=1e-12, atol=1e-9)
    meta = pl.DataFrame({"measure_id": ["VISITS", "COST"], "kind": ["event_rate", "cost"], "rate_per": [1000.0, 1.0]})
    a, b = rate_and_ci(whole.join(meta, on="measure_id")).sort(KEY), rate_and_ci(combined.join(meta, on="measure_id")).sort(KEY)
    for c in ("rate", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(b[c].to_numpy(), a[c].to_numpy(), rtol=1e-10)
    # the event-rate interval is the Poisson one of the combined count, not a sum of intervals
    row = a.filter((pl.col("measure_id") == "VISITS") & (pl.col("stratifier") == "overall") & (pl.col("unit_level") == "population"))
    assert row["numerator"][0] == results.filter(pl.col("measure_id") == "VISITS")["numerator_value"].sum()


@pytest.mark.parametrize("by", ["state", "payer"])
def test_imputed_weighted_sums_and_intervals_combine(by):
    results, attributes = _hand_built(seed=5)
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(6), attributes.height)
    probs = pl.DataFrame({"member_id": attributes["member_id"], "bisg_source": "surname_and_geography",
                          **{c: p[:, i] for i, c in enumerate(list(imputation.PROBABILITY_COLUMNS)[:-1])}, "p_none": 0.0})
    count = lambda r, a: imputation.imputed_counts(r, a, probs)  # noqa: E731
    whole, combined, _ = _partitioned(results, attributes, by, count, imputation.IMPUTED_SUMS)
    assert whole.select(KEY).equals(combined.select(KEY))
    for c in imputation.IMPUTED_SUMS:
        np.testing.assert_allclose(combined[c].to_numpy(), whole[c].to_numpy(), rtol=1e-12, atol=1e-9)
    meta = pl.DataFrame({"measure_id": ["VISITS", "COST"], "kind": ["event_rate", "cost"], "rate_per": [1000.0, 1.0]})
    a = imputation.weighted_rate_and_ci(whole.join(meta, on="measure_id")).sort(KEY)
    b = imputation.weighted_rate_and_ci(combined.join(meta, on="measure_id")).sort(KEY)
    for c in ("rate", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(b[c].to_numpy(), a[c].to_numpy(), rtol=1e-9)
