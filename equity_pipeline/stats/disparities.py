"""Pairwise disparities: each group against a reference group, with tests and multiplicity control.

For proportions (screening, control, readmission ...) the interval and test come from statsmodels
``confint_proportions_2indep`` / ``test_proportions_2indep`` with the score method (Miettinen &
Nurminen 1985; Newcombe 1998); for event rates per person-time from ``confint_poisson_2indep`` /
``test_poisson_2indep`` (score method; Gu, Ng, Tang & Schucany 2008). Multiple comparisons are
adjusted with ``statsmodels.stats.multitest.multipletests`` (Holm 1979; Benjamini & Hochberg 1995).
The Newcombe, score-ratio and log-adjusted ratio intervals, the Clopper-Pearson limits of the exact
conditional rate ratio, the score tests and the score interval for a rate difference
repeat statsmodels' arithmetic here without its per-call overhead (most of the disparities step's
time, pair by pair): the same numbers bit for bit, compared with statsmodels in
``tests/stats/test_statsmodels_copies.py`` and ``test_score_diff_confint.py``.

References: Ahn J, Harper S, Yu M, Feuer EJ, Liu B, Luta G. Variance estimation and confidence
intervals for 11 commonly used health disparity measures. JCO Clin Cancer Inform 2018;2:1-19.
Keppel K et al. Methodological issues in measuring health disparities. Vital Health Stat 2(141), 2005
(choice of reference group).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
import polars as pl
from statsmodels.stats.multitest import multipletests

from equity_pipeline.stats._common import check_alpha

Metric = Literal["rate_difference", "rate_ratio"]
Outcome = Literal["proportion", "rate"]
Adjustment = Literal["holm", "fdr_bh", "bonferroni", "none"]
ReferencePolicy = Literal["best", "largest", "overall"]

OVERALL = "overall"
"""Name used for the reference when the comparison is against the whole population."""

RESULT_SCHEMA = {
    "group": pl.String, "reference_group": pl.String, "metric": pl.String, "estimate": pl.Float64,
    "se": pl.Float64, "ci_lower": pl.Float64, "ci_upper": pl.Float64, "p_value": pl.Float64,
    "p_adjusted": pl.Float64, "method": pl.String,
}
"""Every pairwise function returns exactly these columns."""


def _require_groups(summary: pl.DataFrame, group_col: str, numerator_col: str, denominator_col: str) -> None:
    """One shared check: columns present, groups unique, counts usable."""
    missing = [c for c in (group_col, numerator_col, denominator_col) if c not in summary.columns]
    if missing:
        raise ValueError(f"summary is missing column(s) {', '.join(missing)}; has {', '.join(summary.columns)}")
    if summary[group_col].null_count() or summary[group_col].n_unique() != summary.height:
        raise ValueError(f"column {group_col!r} must name each group once (no blanks or duplicates)")
    if summary.height < 2:
        raise ValueError("at least two groups are needed for a comparison")
    num, den = summary[numerator_col].cast(pl.Float64), summary[denominator_col].cast(pl.Float64)
    if num.null_count() or den.null_count() or (num < 0).any() or (den <= 0).any():
        raise ValueError("every group needs a numerator >= 0 and a denominator > 0")


def reference_group(summary: pl.DataFrame, policy: ReferencePolicy | str, *, higher_is_better: bool,
                    group_col: str = "group", numerator_col: str = "numerator",
                    denominator_col: str = "denominator") -> str:
    """The reference chosen by ``policy``.

    - ``"best"``: best-performing group (highest rate when ``higher_is_better``, else lowest; ties go
      to the larger denominator);
    - ``"largest"``: the group with the largest denominator (most precise rate);
    - ``"overall"``: the whole population (returns ``OVERALL``);
    - any other string: that group, which must exist.
    """
    _require_groups(summary, group_col, numerator_col, denominator_col)
    if policy == OVERALL:
        return OVERALL
    if policy == "largest":
        return str(summary.sort(denominator_col, descending=True)[group_col][0])
    if policy == "best":
        rate = (pl.col(numerator_col) / pl.col(denominator_col)).alias("_rate")
        ranked = summary.with_columns(rate).sort(["_rate", denominator_col], descending=[higher_is_better, True])
        return str(ranked[group_col][0])
    groups = summary[group_col].cast(pl.String).to_list()
    if policy not in groups:
        raise ValueError(f"reference group {policy!r} not found; groups are: {', '.join(groups)}")
    return policy


def _score_p_value(test, x1: float, n1: float, x0: float, n0: float) -> float:
    """Score-test p-value for no difference; 1.0 when both groups sit at the same boundary (0% or 100%).

    The score test for a zero difference and for a unit ratio is the same test, so both metrics share it.
    ``test`` is :func:`_proportion_score_test_p` or :func:`_poisson_score_test_p` (statsmodels' score
    tests, the same p-values without its per-call overhead).
    """
    p_value = float(test(x1, n1, x0, n0))
    return 1.0 if math.isnan(p_value) and x1 / n1 == x0 / n0 else p_value


def _two_sided_normal_p(zstat):
    """statsmodels' two-sided normal p-value ``stats.norm.sf(np.abs(zstat)) * 2``: scipy's ``norm.sf(x)``
    is ``special.ndtr(-x)`` (NaN stays NaN, +inf gives 0), without its per-call argument checks."""
    from scipy import special

    return special.ndtr(-np.abs(zstat)) * 2


def _proportion_score_test_p(count1, nobs1, count2, nobs2):
    """p-value of statsmodels' ``test_proportions_2indep(..., method="score", compare="diff")`` (no
    difference; Miettinen-Nurminen variance with its small-sample correction): the same operations on
    the same numpy types, so the same p-value bit for bit (version-pinned: statsmodels 0.15;
    ``tests/stats/test_statsmodels_copies.py`` compares them)."""
    count1, nobs1, count2, nobs2 = np.asarray(count1), np.asarray(nobs1), np.asarray(count2), np.asarray(nobs2)
    nobs = nobs1 + nobs2
    count = count1 + count2
    p1 = count1 / nobs1
    p0 = count2 / nobs2
    prop0 = prop1 = count / nobs
    var = prop1 * (1 - prop1) / nobs1 + prop0 * (1 - prop0) / nobs2
    var *= nobs / (nobs - 1)
    diff_stat = p1 - p0 - 0
    return _two_sided_normal_p(diff_stat / np.sqrt(var))


def _poisson_score_test_p(count1, exposure1, count2, exposure2):
    """p-value of statsmodels' ``test_poisson_2indep(..., method="score", compare="diff")`` (no
    difference): the same operations, so the same p-value bit for bit (version-pinned: statsmodels 0.15)."""
    y1, n1, y2, n2 = np.asarray(count1), np.asarray(exposure1), np.asarray(count2), np.asarray(exposure2)
    rate1, rate2 = y1 / n1, y2 / n2
    value = 0
    rate_pooled = (y1 + y2) / (n1 + n2)
    dt = rate_pooled - value
    r2_cmle = 0.5 * (dt + np.sqrt(dt**2 + 4 * value * y2 / (n1 + n2)))
    r1_cmle = r2_cmle + value
    stat = (rate1 - rate2 - value) / np.sqrt(r1_cmle / n1 + r2_cmle / n2)
    return _two_sided_normal_p(stat / 1)


def _proportion_interval(x1: float, n1: float, x0: float, n0: float, compare: str,
                         alpha: float) -> tuple[float, float, str]:
    """Newcombe hybrid score interval for a difference; Miettinen-Nurminen score for a ratio.

    statsmodels' score inversion can fail at 0% or 100% (an error, a complex or degenerate root, or
    limits that exclude the estimate); the ratio then falls back to the log-adjusted interval, and
    the method column says so.
    """
    if compare == "diff":
        lower, upper = _newcombe_diff_confint(x1, n1, x0, n0, alpha)
        return float(lower), float(upper), "newcomb"
    try:
        lower, upper = _koopman_ratio_confint(x1, n1, x0, n0, alpha)
        ratio = x1 / n1 / (x0 / n0) if x0 > 0 else math.inf
        if not np.iscomplexobj(np.array([lower, upper])) and np.isfinite(lower) and lower <= ratio <= upper:
            return float(lower), float(upper), "score"
    except (ValueError, ZeroDivisionError):
        pass
    lower, upper = _log_adjusted_ratio_confint(x1, n1, x0, n0, alpha)
    # the 0.5-adjusted interval sits around the adjusted ratio; keep the observed 0 (or infinity) inside it
    lower = 0.0 if x1 == 0 else float(lower)
    upper = math.inf if x0 == 0 and x1 > 0 else float(upper)
    return lower, upper, "log-adjusted"


@lru_cache(maxsize=32)
def _norm_isf(q: float):
    """``scipy.stats.norm.isf(q)`` (a numpy float64), cached: the distribution method's argument
    checks cost more than the intervals that need it."""
    from scipy import stats

    return stats.norm.isf(q)


def _wilson_confint(count, nobs, alpha: float) -> tuple[float, float]:
    """statsmodels' ``proportion_confint(count, nobs, alpha, method="wilson")`` for scalar counts, the
    same operations on the same numpy types (version-pinned: statsmodels 0.15), so the same limits
    bit for bit (``tests/stats/test_statsmodels_copies.py`` compares them)."""
    count_a, nobs_a = np.asarray(count, dtype=np.double), np.asarray(nobs, dtype=np.double)
    q_ = count_a / nobs_a
    crit = _norm_isf(alpha / 2.0)
    crit2 = crit**2
    denom = 1 + crit2 / nobs_a
    center = (q_ + crit2 / (2 * nobs_a)) / denom
    dist = crit * np.sqrt(q_ * (1.0 - q_) / nobs_a + crit2 / (4.0 * nobs_a**2))
    dist /= denom
    return float(np.clip(center - dist, 0, 1)), float(np.clip(center + dist, 0, 1))


def _newcombe_diff_confint(count1, nobs1, count2, nobs2, alpha: float):
    """statsmodels' ``confint_proportions_2indep(..., method="newcomb", compare="diff", alpha)``
    (Newcombe's hybrid score interval from two Wilson intervals) without its per-call overhead:
    the same arithmetic, so the same limits bit for bit (version-pinned: statsmodels 0.15)."""
    p1 = count1 / nobs1
    p2 = count2 / nobs2
    diff = p1 - p2
    low1, upp1 = _wilson_confint(count1, nobs1, alpha)
    low2, upp2 = _wilson_confint(count2, nobs2, alpha)
    d_low = np.sqrt((p1 - low1) ** 2 + (upp2 - p2) ** 2)
    d_upp = np.sqrt((p2 - low2) ** 2 + (upp1 - p1) ** 2)
    return diff - d_low, diff + d_upp


def _koopman_ratio_confint(count1, nobs1, count2, nobs2, alpha: float):
    """statsmodels' ``confint_proportions_2indep(..., method="score", compare="ratio", alpha)`` (the
    Koopman / Miettinen-Nurminen score interval, ``_confint_riskratio_koopman`` with its small-sample
    correction): the same arithmetic with the normal quantile cached, so the same limits bit for bit
    (version-pinned: statsmodels 0.15)."""
    x0, x1, n0, n1 = count2, count1, nobs2, nobs1
    x = x0 + x1
    n = n0 + n1
    z = _norm_isf(alpha / 2) ** 2
    z *= n / (n - 1)
    a1 = n0 * (n0 * n * x1 + n1 * (n0 + x1) * z)
    a2 = -n0 * (n0 * n1 * x + 2 * n * x0 * x1 + n1 * (n0 + x0 + 2 * x1) * z)
    a3 = 2 * n0 * n1 * x0 * x + n * x0 * x0 * x1 + n0 * n1 * x * z
    a4 = -n1 * x0 * x0 * x
    p_roots_ = np.sort(np.roots([a1, a2, a3, a4]))
    p_roots = p_roots_[:2][::-1]
    ci = (1 - (n1 - x1) * (1 - p_roots) / (x0 + n1 - n * p_roots)) / p_roots
    return ci[0], ci[1]


def _log_adjusted_ratio_confint(count1, nobs1, count2, nobs2, alpha: float):
    """statsmodels' ``confint_proportions_2indep(..., method="log-adjusted", compare="ratio", alpha)``
    (the ratio's log interval with 0.5 added to counts and totals) without its per-call overhead:
    the same arithmetic with the normal quantile cached, so the same limits bit for bit
    (``tests/stats/test_statsmodels_copies.py`` compares them with the installed statsmodels)."""
    addhalf = 0.5
    count1_, nobs1_ = count1 + addhalf, nobs1 + addhalf
    count2_, nobs2_ = count2 + addhalf, nobs2 + addhalf
    p1_ = count1_ / nobs1_
    p2_ = count2_ / nobs2_
    ratio_ = p1_ / p2_
    var = (1 / count1_) - 1 / nobs1_ + 1 / count2_ - 1 / nobs2_
    z = _norm_isf(alpha / 2)
    d_log = z * np.sqrt(var)
    low = np.exp(np.log(ratio_) - d_log)
    upp = np.exp(np.log(ratio_) + d_log)
    return low, upp


def _clopper_pearson_confint(count, nobs, alpha: float):
    """statsmodels' ``proportion_confint(count, nobs, alpha, method="beta")`` (Clopper-Pearson) for
    scalar counts: the same beta quantiles (``scipy.stats.beta.ppf`` is the ufunc ``_beta_ppf``,
    ``beta.isf`` is ``betainccinv``, NaN where a shape is not positive) without the distribution
    objects' per-call argument checks, and statsmodels' 0 / 1 at the boundaries (the lower limit by
    the public ``special.betaincinv``, which gives the same bits as ``beta.ppf``'s private ufunc); the
    same limits bit for bit as the installed statsmodels and scipy (``tests/stats/test_statsmodels_copies.py``
    compares them)."""
    from scipy import special

    count_a, nobs_a = np.asarray(count, dtype=np.double), np.asarray(nobs, dtype=np.double)
    q_ = count_a / nobs_a
    a2 = alpha / 2.0
    a, b = count_a, nobs_a - count_a + 1
    ci_low = special.betaincinv(a, b, a2) if (a > 0 and b > 0) else np.float64(np.nan)
    a, b = count_a + 1, nobs_a - count_a
    ci_upp = special.betainccinv(a, b, a2) if (a > 0 and b > 0) else np.float64(np.nan)
    ci_low = 0 if q_ == 0 else ci_low
    ci_upp = 1 if q_ == 1 else ci_upp
    return ci_low, ci_upp


def _rate_interval(x1: float, t1: float, x0: float, t0: float, compare: str,
                   alpha: float) -> tuple[float, float, str]:
    """Score interval for a rate difference; exact conditional (Clopper-Pearson) interval for a ratio.

    Conditional on the total count, ``x1 ~ Binomial(x1 + x0, pi)`` with ``pi = R t1 / (R t1 + t0)``;
    the Clopper-Pearson limits for pi map to limits for the rate ratio R (robust with zero counts).
    """
    if compare == "diff":
        lower, upper = _score_diff_poisson_confint(x1, t1, x0, t0, alpha)
        return float(lower), float(upper), "score"
    total = x1 + x0
    if total == 0:
        return math.nan, math.nan, "exact conditional"
    pi_lower, pi_upper = _clopper_pearson_confint(x1, total, alpha)

    def to_ratio(pi: float) -> float:
        return (pi / (1 - pi)) * (t0 / t1) if pi < 1 else math.inf

    return to_ratio(float(pi_lower)), to_ratio(float(pi_upper)), "exact conditional"


def _score_diff_poisson_confint(x1: float, t1: float, x0: float, t0: float, alpha: float) -> tuple[float, float]:
    """statsmodels' ``confint_poisson_2indep(x1, t1, x0, t0, method="score", compare="diff", alpha)``,
    the same computation without its per-call overhead (it was most of the disparities step's time).

    statsmodels inverts the score test (W2A) by Nelder-Mead (``scipy.optimize.fmin``, xtol 1e-8) on
    ``(p(value) - alpha)^2``, started at the ``waldccv`` limits (at alpha 0.05, as statsmodels does);
    here the objective is the same arithmetic, operation for operation, on float64 scalars instead of
    one-element arrays (``stats.norm.sf(z)`` is ``special.ndtr(-z)``; a square ``a**2`` of an array is
    ``a * a``), minimised by :func:`_fmin_1d`, fmin's steps for one variable, so the same points are
    tried and the same limits returned, bit for bit (tests compare them with statsmodels over many
    counts, and :func:`_fmin_1d` with fmin, at the installed versions: statsmodels 0.15, scipy 1.17)."""
    from scipy import special, stats

    y1, n1, y2, n2 = np.asarray(x1), np.asarray(t1), np.asarray(x0), np.asarray(t0)
    rate1, rate2 = y1 / n1, y2 / n2
    rate_pooled = (y1 + y2) / (n1 + n2)
    # the objective's constants as float64 scalars (values unchanged)
    s_rate, s_y2, s_n1, s_n2, s_n12 = (np.float64(v) for v in (rate1 - rate2, y2, n1, n2, n1 + n2))
    s_pooled, ndtr = np.float64(rate_pooled), special.ndtr

    def objective(value: np.float64) -> float:
        dt = s_pooled - value
        r2_cmle = 0.5 * (dt + np.sqrt(dt * dt + 4 * value * s_y2 / s_n12))
        r1_cmle = r2_cmle + value
        stat = (s_rate - value) / np.sqrt(r1_cmle / s_n1 + r2_cmle / s_n2)
        v = ndtr(-np.abs(stat)) * 2 - alpha
        return float(v * v)

    crit = stats.norm.isf(0.05 / 2)   # statsmodels starts from the waldccv interval at its default alpha
    center = rate1 - rate2
    half = crit * np.sqrt((x1 + 0.5) / n1**2 + (x0 + 0.5) / n2**2)
    return _fmin_1d(objective, center - half, xtol=1e-8), _fmin_1d(objective, center + half, xtol=1e-8)


class _TooManyCalls(Exception):
    """The objective was called ``maxfun`` times (scipy's ``_MaxFuncCallError``)."""


def _fmin_1d(objective, x0: float, *, xtol: float = 1e-4, ftol: float = 1e-4, maxfun: int = 200,
             maxiter: int = 200) -> np.float64:
    """``scipy.optimize.fmin(f, x0, xtol=xtol, ftol=ftol, disp=False)[0]`` for one variable, where
    ``objective(x)`` is ``f`` of the one-element array ``[x]`` as a float.

    The Nelder-Mead of scipy 1.17 (``_minimize_neldermead``: not adaptive, no bounds, default start
    simplex ``x0`` and ``1.05 x0``, or 0.00025 when ``x0`` is 0) with its two vertices held in two
    floats instead of arrays: the same points in the same arithmetic (reflection ``2 xbar - x1``,
    expansion ``3 xbar - 2 x1``, outside contraction ``1.5 xbar - 0.5 x1``, inside contraction
    ``0.5 xbar + 0.5 x1``, shrink ``x0 + 0.5 (x1 - x0)``; ``xbar`` is the best vertex), the vertices
    ordered after every step as ``np.argsort`` orders their values (ties kept in place, NaN last), the
    same stopping rules (``xtol`` on the vertices, ``ftol`` on their values, ``maxiter`` steps,
    ``maxfun`` calls, a call past the limit ending the step where it stands), so that the result is
    fmin's, bit for bit (``tests/stats/test_score_diff_confint.py`` compares them), without fmin's
    array work per step (about five sixths of the score interval's time)."""
    calls = 0

    def f(x: np.float64) -> float:
        nonlocal calls
        if calls >= maxfun:
            raise _TooManyCalls
        calls += 1
        return objective(x)

    def ordered(s0, f0, s1, f1):
        if f1 < f0 or (math.isnan(f0) and not math.isnan(f1)):
            return s1, f1, s0, f0
        return s0, f0, s1, f1

    s0 = np.float64(x0)
    s1 = (1 + 0.05) * s0 if s0 != 0 else np.float64(0.00025)
    f0 = f1 = math.inf
    try:
        f0 = f(s0)
        f1 = f(s1)
    except _TooManyCalls:
        pass
    s0, f0, s1, f1 = ordered(s0, f0, s1, f1)
    iterations = 1
    while calls < maxfun and iterations < maxiter:
        try:
            if abs(s1 - s0) <= xtol and abs(f0 - f1) <= ftol:
                break
            xbar = s0   # the centroid of every vertex but the worst: the best one
            xr = 2 * xbar - s1
            fxr = f(xr)
            shrink = False
            if fxr < f0:
                xe = 3 * xbar - 2 * s1
                fxe = f(xe)
                s1, f1 = (xe, fxe) if fxe < fxr else (xr, fxr)
            # (fmin's "better than the second worst" test is the same as the one above with two vertices)
            elif fxr < f1:
                xc = 1.5 * xbar - 0.5 * s1
                fxc = f(xc)
                if fxc <= fxr:
                    s1, f1 = xc, fxc
                else:
                    shrink = True
            else:
                xcc = 0.5 * xbar + 0.5 * s1
                fxcc = f(xcc)
                if fxcc < f1:
                    s1, f1 = xcc, fxcc
                else:
                    shrink = True
            if shrink:
                s1 = s0 + 0.5 * (s1 - s0)
                f1 = f(s1)
            iterations += 1
        except _TooManyCalls:
            pass
        s0, f0, s1, f1 = ordered(s0, f0, s1, f1)
    return s0


Comparison = tuple[float, float, float, float, float, str]
"""(estimate, se, ci_lower, ci_upper, p_value, interval method) of one group against the reference."""


def _compare(x1: float, n1: float, x0: float, n0: float, metric: Metric, outcome: Outcome,
             alpha: float) -> Comparison:
    """(estimate, se, lower, upper, p, ci method) for group 1 vs group 0; se is Wald (log scale for ratios)."""
    with np.errstate(all="ignore"):  # statsmodels divides by zero at 0% / 100% on its way to valid limits
        return _compare_counts(x1, n1, x0, n0, metric, outcome, alpha)


def _compare_counts(x1: float, n1: float, x0: float, n0: float, metric: Metric, outcome: Outcome,
                    alpha: float) -> Comparison:
    compare = "diff" if metric == "rate_difference" else "ratio"
    p1, p0 = x1 / n1, x0 / n0
    if outcome == "proportion":
        lower, upper, ci_method = _proportion_interval(x1, n1, x0, n0, compare, alpha)
        p_value = _score_p_value(_proportion_score_test_p, x1, n1, x0, n0)
        diff_var = p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0
        log_ratio_var = (1 - p1) / x1 + (1 - p0) / x0 if x1 > 0 and x0 > 0 else math.nan
    else:
        lower, upper, ci_method = _rate_interval(x1, n1, x0, n0, compare, alpha)
        p_value = _score_p_value(_poisson_score_test_p, x1, n1, x0, n0)
        diff_var = x1 / n1 ** 2 + x0 / n0 ** 2
        log_ratio_var = 1 / x1 + 1 / x0 if x1 > 0 and x0 > 0 else math.nan
    if metric == "rate_difference":
        return p1 - p0, math.sqrt(diff_var), lower, upper, p_value, ci_method
    estimate = p1 / p0 if p0 > 0 else (math.inf if p1 > 0 else math.nan)
    return estimate, math.sqrt(log_ratio_var), lower, upper, p_value, ci_method


def _versus_overall(share: float, metric: Metric, values: Comparison) -> Comparison:
    """Turn a group-vs-rest comparison into group-vs-overall.

    With ``w`` the group's share of the denominator, ``p - p_all = (1 - w)(p - p_rest)`` and
    ``p / p_all = 1 / (w + (1 - w) / (p / p_rest))``; both are increasing functions of the
    group-vs-rest contrast, so the interval endpoints map through them and the test is unchanged.
    """
    estimate, se, lower, upper, p_value, ci_method = values
    if metric == "rate_difference":
        return (estimate * (1 - share), se * (1 - share), lower * (1 - share), upper * (1 - share), p_value,
                ci_method)

    def to_overall(ratio: float) -> float:
        if math.isnan(ratio):
            return math.nan
        return 1.0 / share if math.isinf(ratio) else (0.0 if ratio == 0 else 1.0 / (share + (1 - share) / ratio))

    return to_overall(estimate), math.nan, to_overall(lower), to_overall(upper), p_value, ci_method


def pairwise_vs_reference(summary: pl.DataFrame, *, metric: Metric, reference: ReferencePolicy | str = "best",
                          higher_is_better: bool, outcome: Outcome = "proportion", alpha: float = 0.05,
                          adjust: Adjustment = "holm", group_col: str = "group",
                          numerator_col: str = "numerator", denominator_col: str = "denominator") -> pl.DataFrame:
    """Each group's rate difference or rate ratio against the reference, with CI, p-value and adjusted p.

    ``summary`` has one row per group with counts (numerator; denominator = persons for proportions,
    person-time for rates). ``reference`` is a policy (see :func:`reference_group`) or a group name.
    Against ``"overall"`` every group is compared with the whole population (interval and test from
    the group-vs-rest comparison, mapped exactly; see :func:`_versus_overall`). ``adjust`` corrects
    the p-values of the non-reference comparisons for multiplicity (``"none"`` copies them).
    Estimates are group minus/over reference, on the proportion (or per-unit-time) scale.
    """
    alpha = check_alpha(alpha)
    if metric not in ("rate_difference", "rate_ratio"):
        raise ValueError(f"metric must be 'rate_difference' or 'rate_ratio' (got {metric!r})")
    if outcome not in ("proportion", "rate"):
        raise ValueError(f"outcome must be 'proportion' or 'rate' (got {outcome!r})")
    if adjust not in ("holm", "fdr_bh", "bonferroni", "none"):
        raise ValueError(f"adjust must be one of holm, fdr_bh, bonferroni, none (got {adjust!r})")
    ref = reference_group(summary, reference, higher_is_better=higher_is_better, group_col=group_col,
                          numerator_col=numerator_col, denominator_col=denominator_col)
    groups = summary[group_col].cast(pl.String).to_list()
    num = summary[numerator_col].cast(pl.Float64).to_numpy()
    den = summary[denominator_col].cast(pl.Float64).to_numpy()
    rows = compare_groups(groups, num, den, ref, metric, outcome, alpha)
    p_values = np.array([r[7] for r in rows])
    # one comparison needs no adjustment (all methods return it unchanged), and multipletests is slow
    needs_adjustment = adjust != "none" and p_values.size > 1
    p_adjusted = multipletests(p_values, alpha=alpha, method=adjust)[1] if needs_adjustment else p_values
    return pl.DataFrame(
        [(*r[:8], float(p), f"{outcome}: {r[8]} interval, score test, {adjust} adjustment")
         for r, p in zip(rows, p_adjusted, strict=True)],
        schema=RESULT_SCHEMA, orient="row",
    )


def compare_groups(groups: list[str], num: np.ndarray, den: np.ndarray, ref: str, metric: Metric, outcome: Outcome,
                   alpha: float) -> list[tuple]:
    """The unadjusted comparisons of :func:`pairwise_vs_reference` once its reference ``ref`` (a group
    or ``OVERALL``) is known: ``(group, ref, metric, estimate, se, lower, upper, p, ci method)`` per
    group other than the reference, in order. ``num`` and ``den`` are float64 arrays (checked by
    the caller: one name per group, numerators >= 0, denominators > 0). For callers that compare
    many small tables (the disparity tables): no frame is built or validated per table."""
    rows = []
    for i, group in enumerate(groups):
        if group == ref:
            continue
        if ref == OVERALL:
            rest = np.arange(len(groups)) != i
            values = _compare(num[i], den[i], num[rest].sum(), den[rest].sum(), metric, outcome, alpha)
            values = _versus_overall(den[i] / den.sum(), metric, values)
        else:
            j = groups.index(ref)
            values = _compare(num[i], den[i], num[j], den[j], metric, outcome, alpha)
        rows.append((group, ref, metric, *values))
    return rows


def rate_difference(summary: pl.DataFrame, **options) -> pl.DataFrame:
    """Group rate minus reference rate; see :func:`pairwise_vs_reference` for the options."""
    return pairwise_vs_reference(summary, metric="rate_difference", **options)


def rate_ratio(summary: pl.DataFrame, **options) -> pl.DataFrame:
    """Group rate over reference rate (se is for the log ratio); see :func:`pairwise_vs_reference`."""
    return pairwise_vs_reference(summary, metric="rate_ratio", **options)


def pairwise_disparities(summary: pl.DataFrame, **options) -> pl.DataFrame:
    """Rate differences and rate ratios stacked, each with its own multiplicity adjustment."""
    return pl.concat([rate_difference(summary, **options), rate_ratio(summary, **options)])
