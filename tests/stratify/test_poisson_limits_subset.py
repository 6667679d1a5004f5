"""``stats.rates.poisson_count_interval`` evaluates the exact (chi-square) limits only for the
counts below 10 that use them (the standardised rates' O/E intervals call it once per row; scipy's
quantile is the costly part): the same limits as taking both for every count and choosing, which
is the oracle here, element by element, including 0, NaN, fractional counts and the boundary."""
from __future__ import annotations

import numpy as np
from scipy.stats import chi2

from equity_pipeline.stats.rates import BYARS_MIN_COUNT, byars_lower, byars_upper, poisson_count_interval


def _both_then_choose(x, alpha=0.05):
    x = np.atleast_1d(np.asarray(x, dtype=float))
    with np.errstate(invalid="ignore"):
        lo = np.where(x == 0, 0.0, chi2.ppf(alpha / 2.0, 2.0 * x) / 2.0)
    hi = chi2.ppf(1.0 - alpha / 2.0, 2.0 * x + 2.0) / 2.0
    exact = x < BYARS_MIN_COUNT
    return (np.where(exact, lo, np.atleast_1d(byars_lower(x, alpha))), np.where(exact, hi, np.atleast_1d(byars_upper(x, alpha))),
            np.where(exact, "exact", "byar"))


def test_limits_equal_both_computed_then_chosen():
    counts = np.concatenate([np.arange(0, 40, dtype=float), [9.5, 9.999, 10.0, 10.5, 2.25, np.nan, 1e6]])
    for alpha in (0.05, 0.1):
        got, want = poisson_count_interval(counts, alpha), _both_then_choose(counts, alpha)
        for g, w in zip(got, want):
            assert np.array_equal(g, w, equal_nan=True) if g.dtype.kind == "f" else (g == w).all()
    # a single count, as standardised_ratio passes it; only Byar's, only exact
    for x in (3.0, 25.0):
        got, want = poisson_count_interval(x), _both_then_choose(x)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
        assert got[2][0] == ("exact" if x < BYARS_MIN_COUNT else "byar")
