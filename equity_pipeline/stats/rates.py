"""Event rates and observed/expected ratios with Poisson confidence intervals.

Methods follow UKHSA PHEindicatormethods (``phe_rate``, ``byars_lower``/``byars_upper``,
``phe_isr``/``calculate_ISRatio``/``calculate_ISRate``): for an observed count below 10 the exact
Poisson limits (chi-square form) are used; from 10 upward Byar's approximation.

References:
  Breslow NE, Day NE. Statistical methods in cancer research, vol. II: the design and analysis of
  cohort studies. IARC Sci Publ 1987 (Byar's approximation, p. 69).
  Armitage P, Berry G, Matthews JNS. Statistical methods in medical research, 4th ed. 2002
  (exact Poisson limits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.stats import chi2

from equity_pipeline.stats._common import ArrayLike, as_float_array, check_alpha, scalar_or_array, z_value

BYARS_MIN_COUNT = 10
"""Counts at or above this use Byar's approximation; below it the exact Poisson limits (PHE rule)."""


class RateCI(NamedTuple):
    """Rates (per ``per``) with interval and the CI method used per row ("exact" or "byar")."""

    rate: np.ndarray | float
    ci_lower: np.ndarray | float
    ci_upper: np.ndarray | float
    method: np.ndarray | str


@dataclass(frozen=True)
class IndirectlyStandardised:
    """An indirectly standardised ratio or rate for one area or group.

    ``reference_rate`` is the reference population's crude rate: per person for a ratio, per ``per``
    for a rate (the factor that turns the ratio into the rate).
    """

    estimate: float
    ci_lower: float
    ci_upper: float
    observed: float
    expected: float
    reference_rate: float
    method: str


def _counts(count: ArrayLike) -> np.ndarray:
    x = as_float_array(count, "count")
    if np.any(x < 0):
        raise ValueError("observed counts must be >= 0")
    return x


def byars_lower(count: ArrayLike, alpha: float = 0.05) -> np.ndarray | float:
    """Lower limit for a Poisson count by Byar's approximation: ``O(1 - 1/(9O) - z/(3 sqrt O))^3``.

    Zero for a count of 0. Reference: Breslow & Day (1987); PHEindicatormethods ``byars_lower``.
    """
    x = _counts(count)
    z = z_value(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = x * (1.0 - 1.0 / (9.0 * x) - z / (3.0 * np.sqrt(x))) ** 3
    return scalar_or_array(x, np.where(x == 0, 0.0, lower))


def byars_upper(count: ArrayLike, alpha: float = 0.05) -> np.ndarray | float:
    """Upper limit for a Poisson count by Byar's approximation: ``(O+1)(1 - 1/(9(O+1)) + z/(3 sqrt(O+1)))^3``.

    Reference: Breslow & Day (1987); PHEindicatormethods ``byars_upper``.
    """
    x = _counts(count)
    z = z_value(alpha)
    x1 = x + 1.0
    return scalar_or_array(x, x1 * (1.0 - 1.0 / (9.0 * x1) + z / (3.0 * np.sqrt(x1))) ** 3)


def exact_poisson_interval(count: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) limits for a Poisson count: ``chi2(alpha/2, 2O)/2`` and ``chi2(1-alpha/2, 2O+2)/2``.

    Reference: Armitage, Berry & Matthews (2002); Garwood F. Biometrika 1936;28:437-442.
    """
    x = _counts(count)
    alpha = check_alpha(alpha)
    with np.errstate(invalid="ignore"):
        lower = np.where(x == 0, 0.0, chi2.ppf(alpha / 2.0, 2.0 * x) / 2.0)
    upper = chi2.ppf(1.0 - alpha / 2.0, 2.0 * x + 2.0) / 2.0
    return lower, upper


def poisson_count_interval(count: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Limits for observed counts: exact below ``BYARS_MIN_COUNT``, Byar's from there on (PHE rule).

    Returns ``(lower, upper, method)`` arrays; method is "exact" or "byar" per element, NaN count
    gives NaN limits.
    """
    x = np.atleast_1d(_counts(count))
    alpha = check_alpha(alpha)
    use_exact = x < BYARS_MIN_COUNT
    lower = np.array(np.atleast_1d(byars_lower(x, alpha)), dtype=float)
    upper = np.array(np.atleast_1d(byars_upper(x, alpha)), dtype=float)
    if use_exact.any():   # the chi-square quantiles (scipy, the costly part) only where they are used
        exact_lo, exact_hi = exact_poisson_interval(x[use_exact], alpha)
        lower[use_exact], upper[use_exact] = exact_lo, exact_hi
    method = np.where(use_exact, "exact", "byar")
    return lower, upper, method


def event_rate(count: ArrayLike, population: ArrayLike, *, per: float = 100_000,
               alpha: float = 0.05) -> RateCI:
    """Crude event rate ``count / population * per`` with exact (count < 10) or Byar's CI.

    ``population`` is persons or person-time. Rows with a zero or missing population give NaN.
    Counts may exceed the population (events, not persons). Reference: PHEindicatormethods
    ``phe_rate`` (tested against its workbook ``testdata_Rate``).
    """
    x_in = _counts(count)
    n_in = as_float_array(population, "population")
    if np.any(n_in < 0):
        raise ValueError("populations must be >= 0")
    x, n = np.broadcast_arrays(np.atleast_1d(x_in), np.atleast_1d(n_in))
    lower, upper, method = poisson_count_interval(x, alpha)
    valid = np.isfinite(x) & np.isfinite(n) & (n > 0)
    factor = np.where(valid, per / np.where(valid, n, 1.0), np.nan)
    rate, lower, upper = x * factor, lower * factor, upper * factor
    if x_in.ndim == 0 and n_in.ndim == 0:
        return RateCI(float(rate[0]), float(lower[0]), float(upper[0]), str(method[0]))
    return RateCI(rate, lower, upper, method)


def standardised_ratio(observed: float, expected: float, *, per: float = 1.0,
                       alpha: float = 0.05) -> tuple[float, float, float, str]:
    """Observed/expected ratio ``O/E * per`` with the Poisson limits of O divided by E.

    Returns ``(ratio, lower, upper, method)``. This is the standardised mortality/morbidity ratio
    interval used by PHEindicatormethods ``phe_smr``/``calculate_ISRatio``.
    """
    if not np.isfinite(expected) or expected <= 0:
        raise ValueError("expected count must be a positive number")
    lower, upper, method = poisson_count_interval(observed, alpha)
    return (observed / expected * per, float(lower[0]) / expected * per,
            float(upper[0]) / expected * per, str(method[0]))


def _expected_and_reference(populations: ArrayLike, reference_counts: ArrayLike,
                            reference_populations: ArrayLike) -> tuple[float, float]:
    # a missing stratum population or reference count contributes 0 expected events (PHE na.zero)
    pop = np.nan_to_num(as_float_array(populations, "populations"), nan=0.0)
    ref_x = np.nan_to_num(as_float_array(reference_counts, "reference_counts"), nan=0.0)
    ref_n = as_float_array(reference_populations, "reference_populations")
    if not (pop.shape == ref_x.shape == ref_n.shape):
        raise ValueError("populations, reference_counts and reference_populations need one value per stratum")
    if np.any(pop < 0) or np.any(ref_x < 0) or np.any(ref_n <= 0):
        raise ValueError("populations and reference counts must be >= 0 and reference populations > 0")
    expected = float(np.sum(pop * ref_x / ref_n))
    return expected, float(np.sum(ref_x) / np.sum(ref_n))


def _observed_total(counts: ArrayLike) -> float:
    return float(np.nansum(_counts(counts)))  # missing stratum counts count as 0 (PHE na.zero)


def indirectly_standardised_ratio(counts: ArrayLike, populations: ArrayLike, reference_counts: ArrayLike,
                                  reference_populations: ArrayLike, *, per: float = 1.0,
                                  alpha: float = 0.05) -> IndirectlyStandardised:
    """Indirectly standardised ratio (SMR-type) ``O / E * per`` over strata (e.g. age bands).

    ``E = sum(population_i * reference_count_i / reference_population_i)``; O is the sum of the
    stratum counts (missing counts as 0). CI: exact Poisson limits of O when O < 10, Byar's otherwise,
    divided by E. Reference: PHEindicatormethods ``phe_isr(refvalue="ratio")`` /
    ``calculate_ISRatio`` (tested against ``testresults_ISR``).
    """
    expected, reference_rate = _expected_and_reference(populations, reference_counts, reference_populations)
    observed = _observed_total(counts)
    ratio, lower, upper, method = standardised_ratio(observed, expected, per=per, alpha=alpha)
    return IndirectlyStandardised(ratio, lower, upper, observed, expected, reference_rate, method)


def indirectly_standardised_rate(counts: ArrayLike, populations: ArrayLike, reference_counts: ArrayLike,
                                 reference_populations: ArrayLike, *, per: float = 100_000,
                                 alpha: float = 0.05) -> IndirectlyStandardised:
    """Indirectly standardised rate: the ratio ``O/E`` times the reference population's crude rate.

    Reference rate = ``sum(reference_counts) / sum(reference_populations) * per``. CI scales the
    ratio's limits by the same factor. Reference: PHEindicatormethods ``phe_isr`` /
    ``calculate_ISRate`` (tested against ``testresults_ISR``).
    """
    ratio = indirectly_standardised_ratio(counts, populations, reference_counts, reference_populations,
                                          per=1.0, alpha=alpha)
    factor = ratio.reference_rate * per
    return IndirectlyStandardised(ratio.estimate * factor, ratio.ci_lower * factor, ratio.ci_upper * factor,
                                  ratio.observed, ratio.expected, factor, ratio.method)
