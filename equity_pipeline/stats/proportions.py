"""Proportions with Wilson score confidence intervals.

Reference: Wilson EB. Probable inference, the law of succession, and statistical inference.
J Am Stat Assoc 1927;22:209-212. Newcombe RG. Two-sided confidence intervals for the single
proportion: comparison of seven methods. Stat Med 1998;17:857-872. Checked against the UKHSA
PHEindicatormethods test workbooks (``phe_proportion`` / ``wilson_lower`` / ``wilson_upper``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
from statsmodels.stats.proportion import proportion_confint

from equity_pipeline.stats._common import ArrayLike, as_float_array, check_alpha, scalar_or_array


class ProportionCI(NamedTuple):
    """A proportion and its interval; NaN where the denominator is zero or missing."""

    rate: np.ndarray | float
    ci_lower: np.ndarray | float
    ci_upper: np.ndarray | float


def wilson_interval(numerator: ArrayLike, denominator: ArrayLike, alpha: float = 0.05) -> ProportionCI:
    """Proportion ``numerator / denominator`` with its Wilson score interval, element-wise.

    Accepts scalars, numpy arrays or polars Series (broadcast against each other). Rows with a zero
    or missing denominator, or a missing numerator, give NaN for the rate and both bounds. Bounds
    always lie in [0, 1]. Numerators need not be integers (survey-weighted counts are allowed).

    Raises ValueError for negative values or a numerator larger than its denominator.

    Reference: Wilson (1927); Newcombe (1998) method 3. Same figures as UKHSA PHEindicatormethods
    ``phe_proportion`` (tested against its workbook ``testdata_Proportion``).
    """
    alpha = check_alpha(alpha)
    num = as_float_array(numerator, "numerator")
    den = as_float_array(denominator, "denominator")
    num, den = np.broadcast_arrays(num, den)
    if np.any(num < 0) or np.any(den < 0):
        raise ValueError("numerators and denominators must be >= 0")
    if np.any(num > den):
        raise ValueError("a numerator is larger than its denominator; a proportion cannot exceed 1")
    valid = np.isfinite(num) & np.isfinite(den) & (den > 0)
    rate = np.full(num.shape, np.nan)
    lower = np.full(num.shape, np.nan)
    upper = np.full(num.shape, np.nan)
    if valid.any():
        rate[valid] = num[valid] / den[valid]
        lo, hi = proportion_confint(count=num[valid], nobs=den[valid], alpha=alpha, method="wilson")
        # rounding can leave the x = 0 lower (x = n upper) bound a hair off 0 (1): pin them to the rate
        lower[valid] = np.clip(np.minimum(lo, rate[valid]), 0.0, 1.0)
        upper[valid] = np.clip(np.maximum(hi, rate[valid]), 0.0, 1.0)
    template = np.asarray(num)
    return ProportionCI(scalar_or_array(template, rate), scalar_or_array(template, lower),
                        scalar_or_array(template, upper))


def with_wilson(df: pl.DataFrame, num_col: str, den_col: str, prefix: str = "",
                alpha: float = 0.05) -> pl.DataFrame:
    """``df`` plus ``{prefix}rate``, ``{prefix}ci_lower``, ``{prefix}ci_upper`` (Wilson, proportion of 1).

    Example: ``with_wilson(counts, "numerator", "denominator")`` adds ``rate, ci_lower, ci_upper``.
    Null or zero denominators give null rates and bounds.
    """
    for col in (num_col, den_col):
        if col not in df.columns:
            raise ValueError(f"column {col!r} not found; available: {', '.join(df.columns)}")
    result = wilson_interval(df[num_col], df[den_col], alpha=alpha)
    names = (f"{prefix}rate", f"{prefix}ci_lower", f"{prefix}ci_upper")
    return df.with_columns(
        pl.Series(name, np.atleast_1d(values), dtype=pl.Float64, nan_to_null=True)
        for name, values in zip(names, result, strict=True)
    )
