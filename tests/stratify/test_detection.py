"""Planted disparities are found; groups planted equal are flagged at the configured error rate.

1. On generated data, the BCS rate ratio planted against the reference (truth.json) lies inside the
   published 95% interval for the published race/ethnicity strata (a miss or two by chance allowed,
   the allowance taken from the binomial distribution).
2. Simulation (deterministic seed): R independent reporting units, each with k groups of n members
   and the *same* true rate, through the real library (``public_rates`` -> ``disparity_table``).
   With every null hypothesis true, Holm and Benjamini-Hochberg both bound the chance of at least
   one flag per family (measure x unit x stratifier) by alpha. The count of flagged families is
   Binomial(R, <= alpha): it must not exceed the 99.9% quantile of Binomial(R, alpha) (nor fall
   below the 0.1% quantile of Binomial(R, alpha/2), which would mean a test that never fires). The
   unadjusted per-comparison rejection rate must be alpha within the same binomial band (R units).
"""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy.stats import binom

from equity_pipeline.disparity_tables import DisparityOptions, disparity_table
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.stratify import public_rates

ALPHA = 0.05
R, K, N, P = 1000, 5, 200, 0.6
SEED = 20251130


def test_planted_bcs_ratio_against_the_reference_is_covered(generated_bcs):
    input_dir, layout, _ = generated_bcs
    truth = json.loads((input_dir / "truth.json").read_text())["measures"]["BCS"]["rates"]
    table = pl.read_parquet(layout.disparities).filter(
        (pl.col("measure_id") == "BCS") & (pl.col("unit_level") == "population") & (pl.col("stratifier") == "race_ethnicity")
        & (pl.col("status") == "compared"))
    assert table.height >= 3
    reference = table["reference_stratum"][0]
    misses = [r["stratum"] for r in table.iter_rows(named=True)
              if not r["ratio_ci_lower"] <= truth[r["stratum"]] / truth[reference] <= r["ratio_ci_upper"]]
    allowed = int(binom.ppf(0.99, table.height, ALPHA))   # misses of independent-ish 95% intervals
    assert len(misses) <= allowed, (misses, allowed)


@pytest.fixture(scope="module")
def null_rates() -> pl.DataFrame:
    """R units (unit_id r0000...) with K equal-rate groups each, through public_rates (no cell is small)."""
    x = np.random.default_rng(SEED).binomial(N, P, size=(R, K))
    rows = []
    for r in range(R):
        rows.append((f"r{r:04d}", "overall", "all", N * K, int(x[r].sum())))
        rows += [(f"r{r:04d}", "race_ethnicity", f"G{g}", N, int(x[r, g])) for g in range(K)]
    counts = pl.DataFrame(rows, schema=["unit_id", "stratifier", "stratum", "denominator", "numerator"], orient="row").with_columns(
        measure_id=pl.lit("BCS"), measure_version=pl.lit("1"), submeasure=pl.lit("all"), period=pl.lit("2025"), unit_level=pl.lit("state"),
        members=pl.col("denominator").cast(pl.Float64), denominator=pl.col("denominator").cast(pl.Float64),
        numerator=pl.col("numerator").cast(pl.Float64),
    ).with_columns(sum_num_sq=pl.col("numerator"), sum_num_den=pl.col("numerator"), sum_den_sq=pl.col("denominator"))
    rates = public_rates(counts, {"BCS": load_specs()["BCS"]}, {"BCS": "claims"})
    assert not rates["suppressed"].any()
    return rates


def _error_rates(rates: pl.DataFrame, options: DisparityOptions) -> tuple[int, float]:
    table = disparity_table(rates, options, None, {"BCS": "proportion"}).filter(pl.col("status") == "compared")
    assert table["unit_id"].n_unique() == R
    flagged = table.group_by("unit_id").agg(pl.col("significant").any())["significant"].sum()
    return int(flagged), float((table["p_value"] < ALPHA).mean())


def _check(flagged: int, raw: float) -> None:
    assert flagged <= binom.ppf(0.999, R, ALPHA), f"{flagged} of {R} equal-rate families flagged (alpha {ALPHA})"
    assert flagged >= binom.ppf(0.001, R, ALPHA / 2), f"only {flagged} of {R} families flagged: the test never fires"
    assert binom.ppf(0.001, R, ALPHA) / R <= raw <= binom.ppf(0.999, R, ALPHA) / R, raw


@pytest.mark.parametrize("adjust", ["holm", "bh"])
@pytest.mark.parametrize("reference", ["G0", "largest", "overall"])
def test_equal_groups_are_flagged_at_the_configured_rate(null_rates, reference, adjust):
    named = reference.startswith("G")
    options = DisparityOptions(reference={"race_ethnicity": reference} if named else {},
                               default_reference="best" if named else reference, adjust=adjust, alpha=ALPHA)
    _check(*_error_rates(null_rates, options))


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "known property of reference policy 'best' (not the default; documented in docs/stratification.md): the reference is the best *observed* group, "
    "so with equal true rates every comparison is against the sample maximum; Holm/BH over the k-1 comparisons "
    "ignore that selection and about 2x alpha of equal-rate families get a flag (0.097 at k=5, n=200)"))
@pytest.mark.parametrize("adjust", ["holm", "bh"])
def test_best_reference_keeps_the_family_error_rate(null_rates, adjust):
    _check(*_error_rates(null_rates, DisparityOptions(default_reference="best", adjust=adjust, alpha=ALPHA)))
