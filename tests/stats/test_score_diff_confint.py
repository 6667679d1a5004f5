"""The disparities' own score interval for a rate difference is statsmodels' computation, bit for bit."""
import math
import warnings

import numpy as np
import pytest
from statsmodels.stats.rates import confint_poisson_2indep

from equity_pipeline.stats.disparities import _score_diff_poisson_confint


def _cases():
    rng = np.random.default_rng(20261201)
    fixed = [(0.0, 100.0, 5.0, 100.0), (5.0, 100.0, 0.0, 100.0), (0.0, 10.0, 0.0, 10.0), (3.0, 1e5, 700.0, 3e6), (12.0, 480.0, 30.0, 1500.0)]
    drawn = []
    for _ in range(25):
        t1, t0 = rng.uniform(1, 1e5), rng.uniform(1, 1e6)
        drawn.append((float(rng.poisson(t1 * rng.uniform(0, 0.05))), t1, float(rng.poisson(t0 * rng.uniform(0, 0.05))), t0))
    return fixed + drawn


def _assert_statsmodels_limits(x1, t1, x0, t0, alpha):
    args = tuple(np.float64(v) for v in (x1, t1, x0, t0))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = confint_poisson_2indep(*args, method="score", compare="diff", alpha=alpha)
        got = _score_diff_poisson_confint(*args, alpha)
    for e, g in zip(expected, got):
        assert (np.isnan(e) and np.isnan(g)) or float(e) == float(g), (x1, t1, x0, t0, alpha, expected, got)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_same_limits_as_statsmodels(alpha):
    for x1, t1, x0, t0 in _cases():
        _assert_statsmodels_limits(x1, t1, x0, t0, alpha)


def _random_counts(seed: int, n: int):
    """Counts and person-time across scales, a quarter of the groups with no events."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t1, t0 = rng.uniform(0.5, 1e5) ** rng.uniform(0.3, 1), rng.uniform(0.5, 1e6) ** rng.uniform(0.3, 1)
        x1 = float(rng.poisson(t1 * rng.uniform(0, 0.3) * rng.choice([0, 1, 1, 1])))
        x0 = float(rng.poisson(t0 * rng.uniform(0, 0.3) * rng.choice([0, 1, 1, 1])))
        out.append((x1, t1, x0, t0, float(rng.choice([0.01, 0.05, 0.1]))))
    return out


def test_same_limits_as_statsmodels_on_many_random_counts():
    for case in _random_counts(20261203, 300):
        _assert_statsmodels_limits(*case)


def _same(a, b) -> bool:
    return bool((np.isnan(a) and np.isnan(b)) or (a == b and np.signbit(a) == np.signbit(b)))


# objectives of one variable written for arrays (as fmin calls them) that also take a float64:
# smooth, flat (ties), NaN on one side or everywhere, infinite, many minima, never converging
_OBJECTIVES = [
    lambda x: (x - 3.3) ** 2, lambda x: np.ones_like(x), lambda x: np.full_like(x, np.nan),
    lambda x: np.where(x > 0, np.nan, x ** 2), lambda x: np.sin(x * 50), lambda x: -np.abs(x),
    lambda x: np.floor(x * 10) ** 2, lambda x: np.abs(x - 1e-3) ** 0.5, lambda x: np.exp(-x) * 1e300,
    lambda x: np.where(np.abs(x) < 1, 0.0, np.inf),
]


@pytest.mark.parametrize("index", range(len(_OBJECTIVES)))
def test_fmin_1d_takes_fmins_steps(index):
    from scipy import optimize

    from equity_pipeline.stats.disparities import _fmin_1d

    f = _OBJECTIVES[index]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x0 in (0.0, -0.0, 1.0, -2.5, 1e-12, 1e12, 7.0, np.inf, np.nan):
            for xtol in (1e-4, 1e-8):
                want = optimize.fmin(f, x0, xtol=xtol, disp=False)[0]
                got = _fmin_1d(lambda v: float(np.asarray(f(np.array([v]))).item()), x0, xtol=xtol)
                assert _same(want, got), (index, x0, xtol, want, got)


def test_fmin_1d_on_the_score_objective_as_statsmodels_writes_it():
    """The objective of statsmodels' score interval, on arrays, minimised by fmin and by _fmin_1d
    from both waldccv starts: the same points, including where the objective is flat or NaN."""
    from scipy import optimize, stats

    from equity_pipeline.stats.disparities import _fmin_1d

    for x1, t1, x0, t0, alpha in _random_counts(7, 200) + [(0.0, 10.0, 0.0, 10.0, 0.05), (1.0, 1.0, 0.0, 1.0, 0.05)]:
        y1, n1, y2, n2 = (np.asarray(np.float64(v)) for v in (x1, t1, x0, t0))
        rate1, rate2, pooled = y1 / n1, y2 / n2, (y1 + y2) / (n1 + n2)

        def objective(value):
            dt = pooled - value
            r2 = 0.5 * (dt + np.sqrt(dt**2 + 4 * value * y2 / (n1 + n2)))
            stat = (rate1 - rate2 - value) / np.sqrt((r2 + value) / n1 + r2 / n2)
            return (stats.norm.sf(np.abs(stat)) * 2 - alpha) ** 2

        half = stats.norm.isf(0.025) * np.sqrt((y1 + 0.5) / n1**2 + (y2 + 0.5) / n2**2)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for start in (rate1 - rate2 - half, rate1 - rate2 + half):
                want = optimize.fmin(objective, start, xtol=1e-8, disp=False)[0]
                got = _fmin_1d(lambda v: float(np.asarray(objective(np.array([v]))).item()), start, xtol=1e-8)
                assert _same(want, got), (x1, t1, x0, t0, alpha, want, got)


@pytest.mark.parametrize("index", [0, 3, 4, 5])
def test_fmin_1d_stops_where_fmin_stops_on_the_call_limit(index):
    """With few calls allowed, the step the limit interrupts leaves the vertices as fmin leaves them
    (a call past the limit ends the step before it changes anything)."""
    from scipy import optimize

    from equity_pipeline.stats.disparities import _fmin_1d

    f = _OBJECTIVES[index]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for maxfun in range(1, 40):
            for x0 in (1.0, -2.5, 0.0):
                want = optimize.fmin(f, x0, xtol=1e-8, maxfun=maxfun, disp=False)[0]
                got = _fmin_1d(lambda v: float(np.asarray(f(np.array([v]))).item()), x0, xtol=1e-8, maxfun=maxfun, maxiter=math.inf)
                assert _same(want, got), (index, maxfun, x0, want, got)
