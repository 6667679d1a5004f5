"""Summary measures of health inequality, after WHO ``healthequal`` (and NCI HD*Calc).

One function per measure; each returns a :class:`SummaryResult`. Inputs are one value per
population subgroup: ``est`` (the indicator, in its own units, e.g. percent), ``pop`` (subgroup
population), optional ``se`` (standard error of ``est``), ``order`` (ordered dimensions: 1 = most
disadvantaged ... k = most advantaged), ``reference`` (boolean mask marking one reference subgroup).
``favourable=True`` means higher values are better (e.g. screening coverage); ``False`` means adverse
(e.g. mortality).

Definitions and confidence intervals follow healthequal 1.0.x (Antiporta, Menendez, Kirkby,
Hosseinpoor; WHO 2024), which cites Schlotheuber A, Hosseinpoor AR. Summary measures of health
inequality: a review of existing measures and their application. Int J Environ Res Public Health
2022;19:3697, Ahn J et al. JCO Clin Cancer Inform 2018;2:1-19 (analytic SEs) and Ahn J et al. PLoS One
2019;14:e0219542 (Monte Carlo CIs). Figures are tested against healthequal's own expected values.

Deliberate differences from healthequal, all in the direction of internal consistency:

* ``se`` is always on the scale of ``estimate`` (ratios: of ``log(estimate)``) and every analytic CI is
  ``estimate -/+ z * se``. healthequal reports the SII, MLD, Theil and PAF standard errors on an
  unscaled basis (proportion, or before the x1000 / x100 multiplier) and, for MLD, Theil and PAF,
  builds its CI from that unscaled SE, so its intervals for those three are 1000x / 100x too narrow.
  Here those SEs are multiplied by the same factor as the estimate.
* Monte Carlo intervals use numpy's generator (default 1,000 draws, seed 123456) rather than R's, so
  they match healthequal in method, not draw for draw; the weighted index of disparity recomputes the
  setting average in every draw (healthequal reuses the observed one there, unlike its other measures).
* The range difference without a reference subgroup is max - min for favourable and adverse
  indicators alike (healthequal ``d()`` returns nothing for favourable indicators in that case).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
import statsmodels.api as sm

from equity_pipeline.stats._common import ArrayLike, as_float_array, check_alpha, z_value

MIN_GROUPS_COMPLEX = 3
"""Complex measures (all but range difference/ratio) need at least this many subgroups (healthequal)."""

DEFAULT_SIMULATIONS = 1000
DEFAULT_SEED = 123456
MLD_THEIL_MULTIPLIER = 1000
"""healthequal reports the Theil index and mean log deviation multiplied by 1000."""
ZERO_ESTIMATE_REPLACEMENT = 1e-6
"""healthequal replaces estimates of 0 by this before taking logs (Theil, MLD)."""

Model = Literal["logistic", "linear"]


@dataclass(frozen=True)
class SummaryResult:
    """One summary measure: estimate, standard error and interval (NaN where not defined)."""

    measure: str
    estimate: float
    se: float = math.nan
    ci_lower: float = math.nan
    ci_upper: float = math.nan
    method: str = ""

    def as_dict(self) -> dict[str, float | str | None]:
        """JSON-ready dict: NaN becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


# --------------------------------------------------------------------------------------------------
# input checks and shared pieces


def _estimates(est: ArrayLike, min_groups: int) -> np.ndarray:
    e = np.atleast_1d(as_float_array(est, "est"))
    if e.ndim != 1 or not np.all(np.isfinite(e)):
        raise ValueError("est needs one finite value per subgroup (missing estimates are not allowed)")
    if e.size < min_groups:
        raise ValueError(f"this measure needs at least {min_groups} subgroups (got {e.size})")
    return e


def _population_share(pop: ArrayLike, k: int) -> np.ndarray:
    p = np.atleast_1d(as_float_array(pop, "pop"))
    if p.shape != (k,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("pop needs one non-negative population per subgroup, not all zero")
    return p / p.sum()


def _standard_errors(se: ArrayLike | None, k: int) -> np.ndarray | None:
    """SEs, or None when absent or incomplete (then no interval is computed, as in healthequal)."""
    if se is None:
        return None
    s = np.atleast_1d(as_float_array(se, "se"))
    if s.shape != (k,):
        raise ValueError("se needs one value per subgroup")
    if np.any(s < 0):
        raise ValueError("standard errors must be >= 0")
    return s if np.all(np.isfinite(s)) else None


def _reference_index(reference: ArrayLike, k: int) -> int:
    mask = np.atleast_1d(np.asarray(reference)).astype(bool)
    if mask.shape != (k,) or mask.sum() != 1:
        raise ValueError("reference must mark exactly one subgroup (a boolean mask with one True)")
    return int(np.flatnonzero(mask)[0])


def _order(order: ArrayLike, k: int) -> np.ndarray:
    o = np.atleast_1d(as_float_array(order, "order"))
    if o.shape != (k,) or not np.all(np.isfinite(o)):
        raise ValueError("order needs one value per subgroup (1 = most disadvantaged)")
    return o


def _normal_ci(measure: str, estimate: float, se: float, alpha: float, method: str) -> SummaryResult:
    z = z_value(alpha)
    return SummaryResult(measure, float(estimate), float(se), float(estimate - z * se),
                         float(estimate + z * se), method)


def _truncated_draws(est: np.ndarray, se: np.ndarray, scale: float | None, simulations: int,
                     seed: int) -> np.ndarray:
    """Normal draws around each estimate, redrawn until >= 0 (and <= 100 when scale is 100).

    Same truncation rule as healthequal's simulation loop; shape ``(simulations, k)``.
    """
    rng = np.random.default_rng(seed)
    upper = 100.0 if scale == 100 else np.inf
    mean = np.broadcast_to(est, (simulations, est.size))
    sd = np.broadcast_to(se, (simulations, est.size))
    draws = rng.normal(mean, sd)
    for _ in range(1000):
        bad = (draws < 0) | (draws > upper)
        if not bad.any():
            break
        draws[bad] = rng.normal(mean[bad], sd[bad])
    return np.clip(draws, 0.0, upper)


_DRAWS: dict[tuple, np.ndarray] = {}


def _shared_draws(est: np.ndarray, se: np.ndarray, scale: float | None, simulations: int, seed: int) -> np.ndarray:
    """:func:`_truncated_draws`, kept for the last few inputs: every simulated measure of one table of
    groups draws from the same estimates, SEs and seed, so the same draws (read-only: no measure may
    change them for the next)."""
    est, se = np.asarray(est, dtype=np.float64), np.asarray(se, dtype=np.float64)
    key = (est.shape, est.tobytes(), se.tobytes(), scale, simulations, seed)
    draws = _DRAWS.get(key)
    if draws is None:
        draws = _truncated_draws(est, se, scale, simulations, seed)
        draws.setflags(write=False)
        if len(_DRAWS) >= 4:
            _DRAWS.pop(next(iter(_DRAWS)))
        _DRAWS[key] = draws
    return draws


def _simulated(measure: str, stat: Callable[[np.ndarray], np.ndarray], est: np.ndarray,
               se: np.ndarray | None, scale: float | None, alpha: float, simulations: int,
               seed: int) -> SummaryResult:
    """Point estimate ``stat(est)`` with a Monte Carlo percentile interval (Ahn et al. 2019)."""
    alpha = check_alpha(alpha)
    estimate = float(stat(est))
    if se is None:
        return SummaryResult(measure, estimate, method="no interval: standard errors missing")
    values = stat(_shared_draws(est, se, scale, simulations, seed))
    lower, upper = np.nanquantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return SummaryResult(measure, estimate, math.nan, float(lower), float(upper),
                         f"Monte Carlo percentile interval, {simulations} draws")


def _weighted_mean(e: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.sum(e * w, axis=-1, keepdims=True)


def _best(e: np.ndarray, favourable: bool) -> np.ndarray:
    return np.max(e, axis=-1, keepdims=True) if favourable else np.min(e, axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------------
# simple measures (two subgroups)


def _pair(est: np.ndarray, favourable: bool, order: ArrayLike | None,
          reference: ArrayLike | None) -> tuple[int, int]:
    """Indices (y1, y2) compared by healthequal ``d()``/``r()``."""
    k = est.size
    if order is not None:
        o = _order(order, k)
        top, bottom = int(np.argmax(o)), int(np.argmin(o))
        return (top, bottom) if favourable else (bottom, top)
    if reference is None:
        return int(np.argmax(est)), int(np.argmin(est))
    ref = _reference_index(reference, k)
    return (ref, int(np.argmin(est))) if favourable else (int(np.argmax(est)), ref)


def range_difference(est: ArrayLike, *, favourable: bool, se: ArrayLike | None = None,
                     order: ArrayLike | None = None, reference: ArrayLike | None = None,
                     alpha: float = 0.05) -> SummaryResult:
    """Difference D = y1 - y2 between two subgroups (healthequal ``d``).

    Ordered: most advantaged minus most disadvantaged (favourable), or the reverse (adverse).
    Non-ordered with a reference: reference minus the lowest (favourable) or highest minus reference
    (adverse). Otherwise highest minus lowest. SE ``sqrt(se1^2 + se2^2)``, normal CI.
    """
    e = _estimates(est, 2)
    i, j = _pair(e, favourable, order, reference)
    s = _standard_errors(se, e.size)
    estimate = e[i] - e[j]
    if s is None:
        return SummaryResult("range_difference", float(estimate))
    return _normal_ci("range_difference", estimate, math.hypot(s[i], s[j]), alpha, "normal (Wald)")


def range_ratio(est: ArrayLike, *, favourable: bool, se: ArrayLike | None = None,
                order: ArrayLike | None = None, reference: ArrayLike | None = None,
                alpha: float = 0.05) -> SummaryResult:
    """Ratio R = y1 / y2 of the same two subgroups as :func:`range_difference` (healthequal ``r``).

    SE of log R by the delta method ``sqrt(se1^2/y1^2 + se2^2/y2^2)`` (Ahn et al. 2018); CI
    ``exp(log R -/+ z se)``. ``se`` in the result is on the log scale.
    """
    e = _estimates(est, 2)
    i, j = _pair(e, favourable, order, reference)
    s = _standard_errors(se, e.size)
    if e[j] == 0:
        return SummaryResult("range_ratio", math.nan, method="undefined: denominator subgroup is 0")
    ratio = e[i] / e[j]
    if s is None or ratio <= 0:
        return SummaryResult("range_ratio", float(ratio))
    log_se = math.sqrt(s[i] ** 2 / e[i] ** 2 + s[j] ** 2 / e[j] ** 2)
    log_ci = _normal_ci("range_ratio", math.log(ratio), log_se, alpha, "log-normal (delta method)")
    return SummaryResult("range_ratio", float(ratio), log_se, math.exp(log_ci.ci_lower),
                         math.exp(log_ci.ci_upper), log_ci.method)


# --------------------------------------------------------------------------------------------------
# variance-type measures


def between_group_variance(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                           alpha: float = 0.05) -> SummaryResult:
    """BGV = sum p_j (y_j - mu)^2, mu the population-weighted mean (healthequal ``bgv``).

    Analytic SE of Ahn et al. (2018): ``sqrt(4 sum p^2 se^2 (y-mu)^2 + 2((sum p^2 se^2)^2 - sum p^4 se^4
    + sum p^2 (1-p)^2 se^4))``; normal CI.
    """
    e = _estimates(est, MIN_GROUPS_COMPLEX)
    w = _population_share(pop, e.size)
    s = _standard_errors(se, e.size)
    mu = float(np.sum(w * e))
    estimate = float(np.sum(w * (e - mu) ** 2))
    if s is None:
        return SummaryResult("between_group_variance", estimate)
    s2 = np.sum(w ** 2 * s ** 2)
    var = 4 * np.sum(w ** 2 * s ** 2 * (e - mu) ** 2) + 2 * (
        s2 ** 2 - np.sum(w ** 4 * s ** 4) + np.sum(w ** 2 * (1 - w) ** 2 * s ** 4))
    return _normal_ci("between_group_variance", estimate, math.sqrt(var), alpha, "analytic (Ahn 2018)")


def _bgsd_stat(w: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda e: np.sqrt(np.sum(w * (e - _weighted_mean(e, w)) ** 2, axis=-1))


def between_group_standard_deviation(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                                     scale: float | None = None, alpha: float = 0.05,
                                     simulations: int = DEFAULT_SIMULATIONS,
                                     seed: int = DEFAULT_SEED) -> SummaryResult:
    """BGSD = sqrt(BGV) (healthequal ``bgsd``); Monte Carlo percentile interval."""
    e = _estimates(est, MIN_GROUPS_COMPLEX)
    w = _population_share(pop, e.size)
    return _simulated("between_group_standard_deviation", _bgsd_stat(w), e, _standard_errors(se, e.size),
                      scale, alpha, simulations, seed)


def coefficient_of_variation(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                             scale: float | None = None, alpha: float = 0.05,
                             simulations: int = DEFAULT_SIMULATIONS, seed: int = DEFAULT_SEED) -> SummaryResult:
    """COV = 100 * BGSD / mu (healthequal ``covar``); Monte Carlo percentile interval."""
    e = _estimates(est, MIN_GROUPS_COMPLEX)
    w = _population_share(pop, e.size)
    bgsd = _bgsd_stat(w)
    return _simulated("coefficient_of_variation", lambda x: 100 * bgsd(x) / _weighted_mean(x, w)[..., 0],
                      e, _standard_errors(se, e.size), scale, alpha, simulations, seed)


# --------------------------------------------------------------------------------------------------
# index of disparity and mean differences (Monte Carlo intervals)


def _mean_abs_difference(e: np.ndarray, target: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    diff = np.abs(e - target)
    return np.mean(diff, axis=-1) if w is None else np.sum(w * diff, axis=-1)


def _disparity_measure(measure: str, est: ArrayLike, pop: ArrayLike | None, se: ArrayLike | None,
                       scale: float | None, alpha: float, simulations: int, seed: int, *,
                       target: Callable[[np.ndarray, np.ndarray | None], np.ndarray], weighted: bool,
                       relative: bool) -> SummaryResult:
    """Shared body of IDIS and the mean differences: average |y_j - target| (x 100 / mu if relative)."""
    e = _estimates(est, MIN_GROUPS_COMPLEX)
    w = None if pop is None else _population_share(pop, e.size)
    if (weighted or relative) and w is None:
        raise ValueError(f"{measure} needs subgroup populations (pop)")

    def stat(x: np.ndarray) -> np.ndarray:
        value = _mean_abs_difference(x, target(x, w), w if weighted else None)
        return 100 * value / _weighted_mean(x, w)[..., 0] if relative else value

    return _simulated(measure, stat, e, _standard_errors(se, e.size), scale, alpha, simulations, seed)


def index_of_disparity(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                       scale: float | None = None, alpha: float = 0.05,
                       simulations: int = DEFAULT_SIMULATIONS, seed: int = DEFAULT_SEED) -> SummaryResult:
    """IDISU = 100 * mean_j |y_j - mu| / mu, mu population-weighted (healthequal ``idisu``)."""
    return _disparity_measure("index_of_disparity", est, pop, se, scale, alpha, simulations, seed,
                              target=_weighted_mean, weighted=False, relative=True)


def index_of_disparity_weighted(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                                scale: float | None = None, alpha: float = 0.05,
                                simulations: int = DEFAULT_SIMULATIONS, seed: int = DEFAULT_SEED) -> SummaryResult:
    """IDISW = 100 * sum_j p_j |y_j - mu| / mu (healthequal ``idisw``)."""
    return _disparity_measure("index_of_disparity_weighted", est, pop, se, scale, alpha, simulations, seed,
                              target=_weighted_mean, weighted=True, relative=True)


def _best_target(favourable: bool) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    return lambda e, _w: _best(e, favourable)


def _reference_target(index: int) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    return lambda e, _w: e[..., index:index + 1]


def mean_difference_from_best(est: ArrayLike, *, favourable: bool, se: ArrayLike | None = None,
                              scale: float | None = None, alpha: float = 0.05,
                              simulations: int = DEFAULT_SIMULATIONS, seed: int = DEFAULT_SEED) -> SummaryResult:
    """MDBU = mean_j |y_j - best|, best the highest (favourable) or lowest (adverse) (``mdbu``)."""
    return _disparity_measure("mean_difference_from_best", est, None, se, scale, alpha, simulations, seed,
                              target=_best_target(favourable), weighted=False, relative=False)


def mean_difference_from_best_weighted(est: ArrayLike, pop: ArrayLike, *, favourable: bool,
                                       se: ArrayLike | None = None, scale: float | None = None,
                                       alpha: float = 0.05, simulations: int = DEFAULT_SIMULATIONS,
                                       seed: int = DEFAULT_SEED) -> SummaryResult:
    """MDBW = sum_j p_j |y_j - best| (healthequal ``mdbw``)."""
    return _disparity_measure("mean_difference_from_best_weighted", est, pop, se, scale, alpha, simulations,
                              seed, target=_best_target(favourable), weighted=True, relative=False)


def mean_difference_from_mean(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                              scale: float | None = None, alpha: float = 0.05,
                              simulations: int = DEFAULT_SIMULATIONS, seed: int = DEFAULT_SEED) -> SummaryResult:
    """MDMU = mean_j |y_j - mu|, mu population-weighted (healthequal ``mdmu``)."""
    return _disparity_measure("mean_difference_from_mean", est, pop, se, scale, alpha, simulations, seed,
                              target=_weighted_mean, weighted=False, relative=False)


def mean_difference_from_mean_weighted(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                                       scale: float | None = None, alpha: float = 0.05,
                                       simulations: int = DEFAULT_SIMULATIONS,
                                       seed: int = DEFAULT_SEED) -> SummaryResult:
    """MDMW = sum_j p_j |y_j - mu| (healthequal ``mdmw``)."""
    return _disparity_measure("mean_difference_from_mean_weighted", est, pop, se, scale, alpha, simulations,
                              seed, target=_weighted_mean, weighted=True, relative=False)


def mean_difference_from_reference(est: ArrayLike, *, reference: ArrayLike, se: ArrayLike | None = None,
                                   scale: float | None = None, alpha: float = 0.05,
                                   simulations: int = DEFAULT_SIMULATIONS,
                                   seed: int = DEFAULT_SEED) -> SummaryResult:
    """MDRU = mean_j |y_j - y_ref| (healthequal ``mdru``)."""
    index = _reference_index(reference, np.atleast_1d(np.asarray(est)).size)
    return _disparity_measure("mean_difference_from_reference", est, None, se, scale, alpha, simulations,
                              seed, target=_reference_target(index), weighted=False, relative=False)


def mean_difference_from_reference_weighted(est: ArrayLike, pop: ArrayLike, *, reference: ArrayLike,
                                            se: ArrayLike | None = None, scale: float | None = None,
                                            alpha: float = 0.05, simulations: int = DEFAULT_SIMULATIONS,
                                            seed: int = DEFAULT_SEED) -> SummaryResult:
    """MDRW = sum_j p_j |y_j - y_ref| (healthequal ``mdrw``)."""
    index = _reference_index(reference, np.atleast_1d(np.asarray(est)).size)
    return _disparity_measure("mean_difference_from_reference_weighted", est, pop, se, scale, alpha,
                              simulations, seed, target=_reference_target(index), weighted=True,
                              relative=False)


# --------------------------------------------------------------------------------------------------
# entropy measures (analytic SEs)


def _entropy_inputs(est: ArrayLike, pop: ArrayLike, se: ArrayLike | None):
    e = _estimates(est, MIN_GROUPS_COMPLEX)
    if np.any(e < 0):
        raise ValueError("Theil index and mean log deviation need non-negative estimates")
    e = np.where(e == 0, ZERO_ESTIMATE_REPLACEMENT, e)
    w = _population_share(pop, e.size)
    mu = float(np.sum(w * e))
    return e, w, _standard_errors(se, e.size), mu, e / mu


def theil_index(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                alpha: float = 0.05) -> SummaryResult:
    """Theil T = 1000 * sum p_j r_j ln r_j, r_j = y_j / mu (healthequal ``ti``).

    SE (Ahn et al. 2018): ``sqrt(sum (1 + ln r_j - sum p r (1 + ln r))^2 p_j^2 se_j^2 / mu^2)``, times
    1000 so that it is on the scale of the estimate.
    """
    e, w, s, mu, r = _entropy_inputs(est, pop, se)
    estimate = MLD_THEIL_MULTIPLIER * float(np.sum(w * r * np.log(r)))
    if s is None:
        return SummaryResult("theil_index", estimate)
    centre = np.sum(r * (1 + np.log(r)) * w)
    se_unit = math.sqrt(np.sum((1 + np.log(r) - centre) ** 2 * w ** 2 * s ** 2 / mu ** 2))
    return _normal_ci("theil_index", estimate, MLD_THEIL_MULTIPLIER * se_unit, alpha, "analytic (Ahn 2018)")


def mean_log_deviation(est: ArrayLike, pop: ArrayLike, *, se: ArrayLike | None = None,
                       alpha: float = 0.05) -> SummaryResult:
    """MLD = 1000 * sum p_j (-ln r_j), r_j = y_j / mu (healthequal ``mld``).

    SE (Ahn et al. 2018): ``sqrt(sum se_j^2 p_j^2 / mu^2 (1 - 1/r_j)^2)``, times 1000.
    """
    e, w, s, mu, r = _entropy_inputs(est, pop, se)
    estimate = MLD_THEIL_MULTIPLIER * float(np.sum(w * -np.log(r)))
    if s is None:
        return SummaryResult("mean_log_deviation", estimate)
    se_unit = math.sqrt(np.sum(s ** 2 * w ** 2 / mu ** 2 * (1 - 1 / r) ** 2))
    return _normal_ci("mean_log_deviation", estimate, MLD_THEIL_MULTIPLIER * se_unit, alpha,
                      "analytic (Ahn 2018)")


# --------------------------------------------------------------------------------------------------
# population attributable risk / fraction


def _attributable(est: ArrayLike, pop: ArrayLike, favourable: bool, order: ArrayLike | None, scale: float):
    """(difference ref - mu truncated at 0 in the wrong direction, mu, Walter SE of the fraction)."""
    e = _estimates(est, MIN_GROUPS_COMPLEX)
    p = np.atleast_1d(as_float_array(pop, "pop"))
    w = _population_share(p, e.size)
    if not scale or scale <= 0:
        raise ValueError("scale must be positive (e.g. 100 for percentages, 1000 for rates per 1,000)")
    if order is not None:
        o = _order(order, e.size)
        is_ref = o == o.max()
    else:
        is_ref = e == (e.max() if favourable else e.min())
    ref_est, ref_pop = float(e[is_ref].max()), float(p[is_ref].max())
    mu = float(np.sum(w * e))
    diff = ref_est - mu
    if (favourable and diff < 0) or (not favourable and diff > 0):
        diff = 0.0
    # Walter (1978) variance of the attributable fraction from the implied 2x2 table
    c = ref_est / scale * ref_pop
    d = ref_pop - c
    a = mu / scale * p.sum() - c
    b = p.sum() - a - ref_pop
    n = a + b + c + d
    with np.errstate(invalid="ignore", divide="ignore"):
        se_fraction = math.sqrt((c * n * (a * d * (n - c) + b * c ** 2)) / ((a + c) ** 3 * (c + d) ** 3))
    return diff, mu, se_fraction


def population_attributable_risk(est: ArrayLike, pop: ArrayLike, *, favourable: bool, scale: float,
                                 order: ArrayLike | None = None, alpha: float = 0.05) -> SummaryResult:
    """PAR = y_ref - mu (healthequal ``parisk``); 0 when no subgroup does better than the mean.

    Reference subgroup: most advantaged (highest ``order``) for ordered dimensions, else the best
    performing. SE = mu * SE(PAF as a fraction), Walter SD. Int J Epidemiol 1978;7:175-182.
    """
    diff, mu, se_fraction = _attributable(est, pop, favourable, order, scale)
    return _normal_ci("population_attributable_risk", diff, mu * se_fraction, alpha, "analytic (Walter 1978)")


def population_attributable_fraction(est: ArrayLike, pop: ArrayLike, *, favourable: bool, scale: float,
                                     order: ArrayLike | None = None, alpha: float = 0.05) -> SummaryResult:
    """PAF = 100 * (y_ref - mu) / mu, in percent (healthequal ``paf``); same reference as PAR.

    SE from Walter (1978), expressed in percent like the estimate (healthequal prints it as a fraction).
    """
    diff, mu, se_fraction = _attributable(est, pop, favourable, order, scale)
    return _normal_ci("population_attributable_fraction", 100 * diff / mu, 100 * se_fraction, alpha,
                      "analytic (Walter 1978)")


# --------------------------------------------------------------------------------------------------
# ordered dimensions: regression-based measures


def _ridit_ranks(order: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Midpoint of each subgroup's range in the cumulative population distribution (0..1).

    Subgroups sharing an order value share a rank, as in healthequal.
    """
    levels, inverse = np.unique(order, return_inverse=True)
    level_pop = np.bincount(inverse, weights=pop, minlength=levels.size)
    before = np.concatenate([[0.0], np.cumsum(level_pop)[:-1]])
    return ((before + level_pop / 2.0) / pop.sum())[inverse]


def _ordered_inputs(est: ArrayLike, pop: ArrayLike, order: ArrayLike):
    e = _estimates(est, MIN_GROUPS_COMPLEX)
    p = np.atleast_1d(as_float_array(pop, "pop"))
    _population_share(p, e.size)
    return e, p, _ridit_ranks(_order(order, e.size), p)


def _hc1_sandwich(x: np.ndarray, weights: np.ndarray, score_resid: np.ndarray) -> np.ndarray:
    """HC1 covariance ``n/(n-k) (X'WX)^-1 X' diag(u^2) X (X'WX)^-1`` (sandwich::vcovHC type HC1)."""
    bread = np.linalg.inv(x.T @ (weights[:, None] * x))
    u = score_resid[:, None] * x
    n, k = x.shape
    return bread @ (u.T @ u) @ bread * n / (n - k)


def _sii_model(est: np.ndarray, pop: np.ndarray, ranks: np.ndarray, scale: float, model: Model):
    """Fit the healthequal SII/RII regression; returns (predict(rank), gradient(rank), covariance) or None.

    logistic: quasi-binomial GLM of round(est/scale * ceil(pop)) successes out of ceil(pop) with prior
    weights ceil(pop) (R's ``glm(cbind(y, n - y) ~ rank, weights = pop)`` so the working weights are
    pop^2 p(1-p)); linear: weighted least squares of est/scale on rank, weights pop. Covariance is HC1.
    """
    x = sm.add_constant(ranks)
    y_prop = est / scale
    if model == "logistic":
        n = np.ceil(pop)
        events = np.round(y_prop * n)
        if np.any(events < 0) or np.any(events > n):
            return None
        prior = n * n
        fit = sm.GLM(events / n, x, family=sm.families.Binomial(), var_weights=prior).fit()
        mu = fit.fittedvalues
        cov = _hc1_sandwich(x, prior * mu * (1 - mu), prior * (events / n - mu))
        b = fit.params

        def predict(r: float) -> float:
            return 1.0 / (1.0 + math.exp(-(b[0] + b[1] * r)))

        def gradient(r: float) -> np.ndarray:
            p_r = predict(r)
            return np.array([p_r * (1 - p_r), p_r * (1 - p_r) * r])
    elif model == "linear":
        weights = np.ceil(pop)
        fit = sm.WLS(y_prop, x, weights=weights).fit()
        cov = _hc1_sandwich(x, weights, weights * fit.resid)
        b = fit.params

        def predict(r: float) -> float:
            return float(b[0] + b[1] * r)

        def gradient(r: float) -> np.ndarray:
            return np.array([1.0, r])
    else:
        raise ValueError(f"model must be 'logistic' or 'linear' (got {model!r})")
    return predict, gradient, cov


_FITS: dict[tuple, Any] = {}


def _shared_sii_model(est: np.ndarray, pop: np.ndarray, ranks: np.ndarray, scale: float, model: Model):
    """:func:`_sii_model`, kept for the last two inputs: the SII and the RII of one table of groups
    come from the same regression (one GLM fit instead of two; the fit's functions only read it)."""
    key = (est.shape, est.tobytes(), pop.tobytes(), ranks.tobytes(), float(scale), model)
    if key not in _FITS:
        if len(_FITS) >= 2:
            _FITS.pop(next(iter(_FITS)))
        _FITS[key] = _sii_model(est, pop, ranks, scale, model)
    return _FITS[key]


def slope_index_of_inequality(est: ArrayLike, pop: ArrayLike, order: ArrayLike, *, scale: float,
                              model: Model = "logistic", alpha: float = 0.05) -> SummaryResult:
    """SII: predicted value at the top of the social ranking minus the bottom (healthequal ``sii``).

    Ranks are the population midpoints of the ordered subgroups (1 = most disadvantaged). The SII is
    ``scale * (P(rank=1) - P(rank=0))`` from the :func:`_sii_model` regression; SE by the delta method
    with an HC1 covariance (as ``marginaleffects::avg_comparisons(vcov = "HC1")``), on the scale of
    the estimate. NaN if an estimate lies outside [0, scale] for the logistic model.
    """
    e, p, ranks = _ordered_inputs(est, pop, order)
    fitted = _shared_sii_model(e, p, ranks, scale, model)
    if fitted is None:
        return SummaryResult("slope_index_of_inequality", math.nan, method="undefined: estimate outside [0, scale]")
    predict, gradient, cov = fitted
    grad = gradient(1.0) - gradient(0.0)
    se = scale * math.sqrt(grad @ cov @ grad)
    return _normal_ci("slope_index_of_inequality", scale * (predict(1.0) - predict(0.0)), se, alpha,
                      f"{model} regression on ridit rank, HC1 delta-method SE")


def relative_index_of_inequality(est: ArrayLike, pop: ArrayLike, order: ArrayLike, *, scale: float,
                                 model: Model = "logistic", alpha: float = 0.05) -> SummaryResult:
    """RII = P(rank=1) / P(rank=0) from the same regression as the SII (healthequal ``rii``).

    SE of log RII by the delta method with HC1 covariance; CI ``exp(log RII -/+ z se)``; ``se`` is on
    the log scale.
    """
    e, p, ranks = _ordered_inputs(est, pop, order)
    fitted = _shared_sii_model(e, p, ranks, scale, model)
    if fitted is None:
        return SummaryResult("relative_index_of_inequality", math.nan,
                             method="undefined: estimate outside [0, scale]")
    predict, gradient, cov = fitted
    top, bottom = predict(1.0), predict(0.0)
    if top <= 0 or bottom <= 0:
        return SummaryResult("relative_index_of_inequality", math.nan,
                             method="undefined: non-positive fitted value at an end of the ranking")
    grad = gradient(1.0) / top - gradient(0.0) / bottom
    log_ci = _normal_ci("relative_index_of_inequality", math.log(top / bottom), math.sqrt(grad @ cov @ grad),
                        alpha, "")
    return SummaryResult("relative_index_of_inequality", top / bottom, log_ci.se, math.exp(log_ci.ci_lower),
                         math.exp(log_ci.ci_upper), f"{model} regression on ridit rank, HC1 delta-method SE (log)")


def _concentration(measure: str, est: ArrayLike, pop: ArrayLike, order: ArrayLike, relative: bool,
                   alpha: float) -> SummaryResult:
    """Convenient-regression concentration index (Kakwani, Wagstaff & van Doorslaer 1997), as healthequal.

    Regress ``2 sigma^2 y_j (/ mu if relative) sqrt(n_j)`` on ``[rank_j sqrt(n_j), sqrt(n_j)]`` without
    intercept; the first coefficient is the index, its OLS standard error the SE.
    """
    e, p, ranks = _ordered_inputs(est, pop, order)
    w = p / p.sum()
    sigma2 = float(np.sum(w * (ranks - 0.5) ** 2))
    root_n = np.sqrt(p)
    mu = float(np.sum(w * e))
    lhs = 2 * sigma2 * (e / mu if relative else e) * root_n
    fit = sm.OLS(lhs, np.column_stack([ranks * root_n, root_n])).fit()
    return _normal_ci(measure, float(fit.params[0]), float(fit.bse[0]), alpha,
                      "convenient regression (Kakwani 1997), OLS SE")


def absolute_concentration_index(est: ArrayLike, pop: ArrayLike, order: ArrayLike, *,
                                 alpha: float = 0.05) -> SummaryResult:
    """ACI = 2 cov(y, rank) (healthequal ``aci``); positive when the indicator concentrates at the top."""
    return _concentration("absolute_concentration_index", est, pop, order, False, alpha)


def relative_concentration_index(est: ArrayLike, pop: ArrayLike, order: ArrayLike, *,
                                 alpha: float = 0.05) -> SummaryResult:
    """RCI = ACI / mu, bounded by -1 and 1 (healthequal ``rci``)."""
    return _concentration("relative_concentration_index", est, pop, order, True, alpha)


ValueType = Literal["normal", "rate", "proportion"]
_TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "normal": (lambda v: v, lambda t: t),
    "rate": (np.log, np.exp),
    "proportion": (lambda v: np.log(v / (1 - v)), lambda t: 1 / (1 + np.exp(-t))),
}


def slope_index_simulated(value: ArrayLike, pop: ArrayLike, order: ArrayLike, *, se: ArrayLike | None = None,
                          lower_cl: ArrayLike | None = None, upper_cl: ArrayLike | None = None,
                          value_type: ValueType = "normal", multiplier: float = 1.0,
                          repetitions: int = 100_000, alpha: float = 0.05,
                          seed: int = DEFAULT_SEED) -> tuple[SummaryResult, SummaryResult]:
    """SII and RII by population-weighted linear regression with Monte Carlo intervals (UKHSA method).

    Low A, Low A. Measuring the gap: quantifying and comparing local health inequalities. J Public
    Health 2004;26:388-395; as PHEindicatormethods ``phe_sii``. The regression of ``value`` on the
    ridit rank, weighted by population share, gives SII = ``multiplier * slope`` and RII =
    ``(intercept + slope) / intercept`` (inverted when the multiplier is negative). For the interval
    each value is redrawn ``repetitions`` times from a normal distribution on the transformed scale
    (identity, log for rates, logit for proportions) with SD ``se`` (or ``(t(upper_cl) - t(lower_cl)) /
    (2 * 1.959964)``), back-transformed, and refitted; limits are the order statistics at
    ``round(repetitions * alpha/2)`` and ``round(repetitions * (1 - alpha/2))``.
    """
    e, p, ranks = _ordered_inputs(value, pop, order)
    forward, backward = _TRANSFORMS[value_type]
    if se is not None:
        sd = _standard_errors(se, e.size)
    elif lower_cl is not None and upper_cl is not None:
        lo = np.atleast_1d(as_float_array(lower_cl, "lower_cl"))
        hi = np.atleast_1d(as_float_array(upper_cl, "upper_cl"))
        sd = (forward(hi) - forward(lo)) / (2 * z_value(0.05))
    else:
        raise ValueError("give se, or lower_cl and upper_cl (95% limits)")
    if sd is None or not np.all(np.isfinite(sd)):
        raise ValueError("standard errors (or 95% limits) are needed for every subgroup")
    x = np.column_stack([np.ones_like(ranks), ranks])
    w = p / p.sum()
    solve = np.linalg.solve(x.T @ (w[:, None] * x), (w[:, None] * x).T)  # (X'WX)^-1 X'W, shape (2, k)
    intercept, slope = solve @ e
    draws = backward(np.random.default_rng(seed).normal(forward(e), sd, size=(repetitions, e.size)))
    sim_intercept, sim_slope = solve @ draws.T
    rii_sims = (sim_intercept + sim_slope) / sim_intercept
    rii = (intercept + slope) / intercept
    if multiplier < 0:
        rii, rii_sims = 1 / rii, 1 / rii_sims
    check_alpha(alpha)
    positions = [round(repetitions * alpha / 2) - 1, round(repetitions * (1 - alpha / 2)) - 1]
    sii_lo, sii_hi = np.sort(multiplier * sim_slope)[positions]
    rii_lo, rii_hi = np.sort(rii_sims)[positions]
    method = f"population-weighted linear regression (Low & Low 2004), {repetitions} simulations"
    return (SummaryResult("slope_index_of_inequality", float(multiplier * slope), math.nan, float(sii_lo),
                          float(sii_hi), method),
            SummaryResult("relative_index_of_inequality", float(rii), math.nan, float(rii_lo), float(rii_hi), method))


# --------------------------------------------------------------------------------------------------
# dispatcher



def _column(groups: pl.DataFrame, name: str) -> np.ndarray | None:
    return groups[name].cast(pl.Float64).to_numpy() if name in groups.columns else None


def all_summaries(groups: pl.DataFrame, *, favourable: bool, ordered: bool, reference: str | None = None,
                  scale: float = 100, alpha: float = 0.05, simulations: int = DEFAULT_SIMULATIONS,
                  seed: int = DEFAULT_SEED, sii_model: Model = "logistic") -> dict[str, SummaryResult]:
    """Every measure applicable to ``groups`` (one row per subgroup), keyed by snake_case name.

    Columns: ``estimate`` and ``population`` (required), ``se`` (optional; without it only intervals
    that need no SE are given), ``order`` (required when ``ordered``; 1 = most disadvantaged),
    ``reference`` (optional boolean column marking one reference subgroup) or the ``reference``
    argument naming a value of the ``group`` column.

    Applicability follows healthequal: range difference/ratio always; with at least three subgroups,
    the non-ordered measures (BGV, BGSD, COV, IDIS, mean differences, Theil, MLD) when not ordered and
    the ordered ones (SII, RII, ACI, RCI) when ordered; PAR and PAF for both. The mean differences
    from a reference need a reference subgroup.
    """
    missing = [c for c in ("estimate", "population") if c not in groups.columns]
    if missing:
        raise ValueError(f"groups is missing column(s): {', '.join(missing)}")
    est, pop, se = _column(groups, "estimate"), _column(groups, "population"), _column(groups, "se")
    order = _column(groups, "order") if ordered else None
    if ordered and order is None:
        raise ValueError("ordered=True needs an 'order' column (1 = most disadvantaged)")
    ref_mask = _reference_mask(groups, reference)
    out = [range_difference(est, favourable=favourable, se=se, order=order, reference=ref_mask, alpha=alpha),
           range_ratio(est, favourable=favourable, se=se, order=order, reference=ref_mask, alpha=alpha)]
    if est.size >= MIN_GROUPS_COMPLEX:
        sim = {"se": se, "scale": scale, "alpha": alpha, "simulations": simulations, "seed": seed}
        out += [population_attributable_risk(est, pop, favourable=favourable, scale=scale, order=order, alpha=alpha),
                population_attributable_fraction(est, pop, favourable=favourable, scale=scale, order=order,
                                                 alpha=alpha)]
        if ordered:
            out += [slope_index_of_inequality(est, pop, order, scale=scale, model=sii_model, alpha=alpha),
                    relative_index_of_inequality(est, pop, order, scale=scale, model=sii_model, alpha=alpha),
                    absolute_concentration_index(est, pop, order, alpha=alpha),
                    relative_concentration_index(est, pop, order, alpha=alpha)]
        else:
            out += [between_group_variance(est, pop, se=se, alpha=alpha),
                    between_group_standard_deviation(est, pop, **sim),
                    coefficient_of_variation(est, pop, **sim),
                    index_of_disparity(est, pop, **sim),
                    index_of_disparity_weighted(est, pop, **sim),
                    mean_difference_from_best(est, favourable=favourable, **sim),
                    mean_difference_from_best_weighted(est, pop, favourable=favourable, **sim),
                    mean_difference_from_mean(est, pop, **sim),
                    mean_difference_from_mean_weighted(est, pop, **sim),
                    theil_index(est, pop, se=se, alpha=alpha),
                    mean_log_deviation(est, pop, se=se, alpha=alpha)]
            if ref_mask is not None:
                out += [mean_difference_from_reference(est, reference=ref_mask, **sim),
                        mean_difference_from_reference_weighted(est, pop, reference=ref_mask, **sim)]
    return {result.measure: result for result in out}


def _reference_mask(groups: pl.DataFrame, reference: str | None) -> np.ndarray | None:
    if reference is not None:
        if "group" not in groups.columns:
            raise ValueError("a named reference needs a 'group' column")
        mask = (groups["group"].cast(pl.String) == reference).to_numpy()
        if mask.sum() != 1:
            raise ValueError(f"reference group {reference!r} must match exactly one row of 'group'")
        return mask
    if "reference" in groups.columns:
        mask = groups["reference"].cast(pl.Boolean).fill_null(False).to_numpy()
        if mask.sum() > 1:
            raise ValueError("the 'reference' column marks more than one subgroup; mark exactly one")
        return mask if mask.sum() == 1 else None
    return None


def summaries_frame(results: dict[str, SummaryResult]) -> pl.DataFrame:
    """The results of :func:`all_summaries` as one row per measure (stackable, healthequal-style)."""
    return pl.DataFrame([asdict(r) for r in results.values()],
                        schema={"measure": pl.String, "estimate": pl.Float64, "se": pl.Float64,
                                "ci_lower": pl.Float64, "ci_upper": pl.Float64, "method": pl.String})
