"""Directly standardised rates (DSR) with Dobson or Fay-Feuer gamma confidence intervals.

References:
  Dobson AJ, Kuulasmaa K, Eberle E, Scherer J. Confidence intervals for weighted sums of Poisson
  parameters. Stat Med 1991;10:457-462.
  Fay MP, Feuer EJ. Confidence intervals for directly standardized rates: a method based on the
  gamma distribution. Stat Med 1997;16:791-801.
  UKHSA PHEindicatormethods ``phe_dsr`` / ``calculate_dsr`` (Dobson with Byar's limits; DSR not
  reported when the total count is below 10). Tested against its workbook ``testresults_DSR``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy.stats import gamma

from equity_pipeline.stats._common import ArrayLike, as_float_array, check_alpha
from equity_pipeline.stats.rates import byars_lower, byars_upper

ESP2013: tuple[int, ...] = (5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000,
                            7000, 6500, 6000, 5500, 5000, 4000, 2500, 1500, 1000)
"""European Standard Population 2013, 19 five-year bands 0-4 ... 85-89, 90+ (Eurostat 2013)."""

DSR_MIN_COUNT = 10
"""Dobson DSRs are not reported (NaN) when the total count is below this (PHE rule)."""

DsrMethod = Literal["dobson", "fay_feuer"]


@dataclass(frozen=True)
class DirectlyStandardisedRate:
    """A DSR per ``per`` population with its interval; NaN estimate when not reportable."""

    estimate: float
    ci_lower: float
    ci_upper: float
    total_count: float
    total_population: float
    method: str


def _strata(counts: ArrayLike, populations: ArrayLike, standard_population: ArrayLike):
    x = np.nan_to_num(as_float_array(counts, "counts"), nan=0.0)  # missing counts are 0 (PHE na.zero)
    n = as_float_array(populations, "populations")
    std = as_float_array(standard_population, "standard_population")
    if not (x.ndim == n.ndim == std.ndim == 1 and x.shape == n.shape == std.shape):
        raise ValueError(
            f"counts, populations and standard_population need one value per stratum "
            f"(got {x.size}, {n.size} and {std.size})")
    if np.any(x < 0):
        raise ValueError("counts must all be >= 0")
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise ValueError("populations must all be > 0 (every stratum needs a population)")
    if np.any(~np.isfinite(std)) or np.any(std < 0) or std.sum() <= 0:
        raise ValueError("standard_population values must be >= 0 and not all 0")
    return x, n, std / std.sum()


def _dobson(x: np.ndarray, n: np.ndarray, w: np.ndarray, alpha: float) -> tuple[float, float, float]:
    dsr = float(np.sum(w * x / n))
    total = float(x.sum())
    if total < DSR_MIN_COUNT:
        return np.nan, np.nan, np.nan
    half_width_scale = np.sqrt(np.sum(x * (w / n) ** 2) / total)
    lower = dsr + half_width_scale * (float(byars_lower(total, alpha)) - total)
    upper = dsr + half_width_scale * (float(byars_upper(total, alpha)) - total)
    return dsr, lower, upper


def _fay_feuer(x: np.ndarray, n: np.ndarray, w: np.ndarray, alpha: float) -> tuple[float, float, float]:
    dsr = float(np.sum(w * x / n))
    var = float(np.sum(x * (w / n) ** 2))
    w_max = float(np.max(w / n))
    lower = 0.0 if dsr == 0 else float(gamma.ppf(alpha / 2.0, dsr ** 2 / var, scale=var / dsr))
    upper = float(gamma.ppf(1.0 - alpha / 2.0, (dsr + w_max) ** 2 / (var + w_max ** 2),
                            scale=(var + w_max ** 2) / (dsr + w_max)))
    return dsr, lower, upper


def direct_standardised_rate(counts: ArrayLike, populations: ArrayLike,
                             standard_population: ArrayLike = ESP2013, *, per: float = 100_000,
                             alpha: float = 0.05, method: DsrMethod = "dobson") -> DirectlyStandardisedRate:
    """Directly standardised rate over strata (e.g. age bands) of one area or group.

    ``DSR = sum(w_i * O_i / n_i) * per`` with ``w_i = standard_i / sum(standard)``; strata are matched
    by position.

    - ``method="dobson"``: ``DSR + sqrt(var/O) * (L(O) - O)`` with var = ``sum(O_i (w_i/n_i)^2)`` and
      L Byar's limit for the total count O (Dobson 1991), as PHEindicatormethods ``phe_dsr``; NaN
      when O < ``DSR_MIN_COUNT``.
    - ``method="fay_feuer"``: gamma limits of Fay & Feuer (1997); defined for any count, including 0.
    """
    alpha = check_alpha(alpha)
    if method not in ("dobson", "fay_feuer"):
        raise ValueError(f"method must be 'dobson' or 'fay_feuer' (got {method!r})")
    x, n, w = _strata(counts, populations, standard_population)
    dsr, lower, upper = (_dobson if method == "dobson" else _fay_feuer)(x, n, w, alpha)
    if np.isnan(dsr) or np.isnan(lower):
        dsr = lower = upper = np.nan
    return DirectlyStandardisedRate(float(dsr * per), float(lower * per), float(upper * per),
                                    float(x.sum()), float(n.sum()), method)


def dsr_by_group(df: pl.DataFrame, by: str | list[str], *, count: str, population: str,
                 standard_population: str, per: float = 100_000, alpha: float = 0.05,
                 method: DsrMethod = "dobson") -> pl.DataFrame:
    """One DSR row per group of ``by``: ``total_count, total_population, rate, ci_lower, ci_upper, method``.

    Each group's strata must appear in the same order as in the standard (rows are matched by
    position within the group, as in PHEindicatormethods).
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*keys, count, population, standard_population] if c not in df.columns]
    if missing:
        raise ValueError(f"columns not found: {', '.join(missing)}")
    rows = []
    for key, part in df.group_by(keys, maintain_order=True):
        result = direct_standardised_rate(part[count], part[population], part[standard_population],
                                          per=per, alpha=alpha, method=method)
        rows.append({**dict(zip(keys, key, strict=True)), "total_count": result.total_count,
                     "total_population": result.total_population, "rate": result.estimate,
                     "ci_lower": result.ci_lower, "ci_upper": result.ci_upper, "method": result.method})
    return pl.DataFrame(rows).fill_nan(None)
