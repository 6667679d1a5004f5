"""Small helpers shared by the statistics modules: array coercion and normal quantiles."""
from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import polars as pl
from scipy.stats import norm

ArrayLike = np.ndarray | pl.Series | Iterable[float] | float | int


def as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a float64 numpy array (nulls become NaN); a one-line ValueError if not numeric."""
    if isinstance(values, pl.Series):
        if not values.dtype.is_numeric() and values.dtype != pl.Null:
            raise ValueError(f"{name} must be numeric (got polars dtype {values.dtype})")
        return values.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric") from None


def check_alpha(alpha: float) -> float:
    """``alpha`` if it is a usable two-sided significance level, else ValueError."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1 (got {alpha})")
    return float(alpha)


def z_value(alpha: float) -> float:
    """Two-sided standard normal critical value, e.g. 1.959964 for alpha=0.05."""
    return _z_value(check_alpha(alpha))


@lru_cache(maxsize=64)
def _z_value(alpha: float) -> float:
    # cached: scipy's distribution methods cost about 0.1 ms a call (argument checks), and the
    # disparity summaries ask for the same few levels thousands of times
    return float(norm.ppf(1.0 - alpha / 2.0))


def scalar_or_array(template: np.ndarray, values: np.ndarray) -> np.ndarray | float:
    """Return a float when the caller passed a scalar, otherwise the array."""
    return float(values) if template.ndim == 0 else values
