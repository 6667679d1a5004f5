"""The disparities' own copies of statsmodels intervals (Wilson, Newcombe's hybrid score interval for a
difference of proportions, the Koopman / Miettinen-Nurminen score interval for their ratio) give
statsmodels' limits bit for bit, including at 0% and 100% and where the ratio interval fails."""
import warnings

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from equity_pipeline.stats.disparities import _koopman_ratio_confint, _newcombe_diff_confint, _wilson_confint


def _cases():
    rng = np.random.default_rng(20261201)
    fixed = [(0.0, 100.0, 5.0, 100.0), (5.0, 100.0, 0.0, 100.0), (0.0, 10.0, 0.0, 10.0), (10.0, 10.0, 10.0, 10.0),
             (10.0, 10.0, 3.0, 12.0), (1.0, 1.0, 0.0, 1.0), (3.0, 1e5, 700.0, 3e6), (12.0, 480.0, 30.0, 1500.0),
             (11.0, 11.0, 0.0, 40.0), (0.0, 11.0, 40.0, 40.0)]
    drawn = []
    for _ in range(60):
        n1, n0 = float(rng.integers(1, 5000)), float(rng.integers(1, 50000))
        drawn.append((float(rng.binomial(int(n1), rng.uniform(0, 1))), n1, float(rng.binomial(int(n0), rng.uniform(0, 1))), n0))
    return [tuple(np.float64(v) for v in case) for case in fixed + drawn]


def _same(expected, got) -> bool:
    e, g = complex(expected), complex(got)
    return (e == g) or (np.isnan(e) and np.isnan(g))


def _both(call):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call(), None
        except Exception as exc:  # noqa: BLE001 - the same failure is part of the contract
            return None, type(exc)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_wilson_and_newcombe_same_as_statsmodels(alpha):
    for x1, n1, x0, n0 in _cases():
        for count, nobs in ((x1, n1), (x0, n0)):
            expected = proportion_confint(count, nobs, alpha=alpha, method="wilson")
            got = _wilson_confint(count, nobs, alpha)
            assert all(_same(e, g) for e, g in zip(expected, got)), (count, nobs, alpha, expected, got)
        expected, _ = _both(lambda: confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff", alpha=alpha))
        got, _ = _both(lambda: _newcombe_diff_confint(x1, n1, x0, n0, alpha))
        assert all(_same(e, g) for e, g in zip(expected, got)), (x1, n1, x0, n0, alpha, expected, got)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_koopman_ratio_same_as_statsmodels(alpha):
    failures = 0
    for x1, n1, x0, n0 in _cases():
        expected, expected_error = _both(lambda: confint_proportions_2indep(x1, n1, x0, n0, method="score", compare="ratio", alpha=alpha))
        got, got_error = _both(lambda: _koopman_ratio_confint(x1, n1, x0, n0, alpha))
        assert expected_error is got_error, (x1, n1, x0, n0, alpha, expected_error, got_error)
        if expected_error is not None:
            failures += 1
            continue
        assert all(_same(e, g) for e, g in zip(expected, got)), (x1, n1, x0, n0, alpha, expected, got)
    assert failures < len(_cases())


@pytest.mark.parametrize("outcome", ["proportion", "rate"])
def test_score_test_p_values_same_as_statsmodels(outcome):
    from statsmodels.stats.proportion import test_proportions_2indep
    from statsmodels.stats.rates import test_poisson_2indep

    from equity_pipeline.stats.disparities import _poisson_score_test_p, _proportion_score_test_p

    test, ours = ((test_proportions_2indep, _proportion_score_test_p) if outcome == "proportion"
                  else (test_poisson_2indep, _poisson_score_test_p))
    nan = 0
    for x1, n1, x0, n0 in _cases():
        expected, _ = _both(lambda: test(x1, n1, x0, n0, method="score", compare="diff").pvalue)
        got, _ = _both(lambda: ours(x1, n1, x0, n0))
        nan += bool(np.isnan(expected))
        assert _same(expected, got), (outcome, x1, n1, x0, n0, expected, got)
    assert nan < len(_cases())   # mostly real p-values, not NaN = NaN


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_log_adjusted_ratio_and_clopper_pearson_same_as_statsmodels(alpha):
    """The ratio's log-adjusted fallback and the Clopper-Pearson limits behind the exact conditional
    rate-ratio interval: statsmodels' limits bit for bit, with its 0 / 1 at 0% and 100% (and NaN
    where a beta shape is not positive)."""
    from equity_pipeline.stats.disparities import _clopper_pearson_confint, _log_adjusted_ratio_confint

    boundary = 0
    for x1, n1, x0, n0 in _cases():
        expected, _ = _both(lambda: confint_proportions_2indep(x1, n1, x0, n0, method="log-adjusted", compare="ratio", alpha=alpha))
        got, _ = _both(lambda: _log_adjusted_ratio_confint(x1, n1, x0, n0, alpha))
        assert all(_same(e, g) for e, g in zip(expected, got)), (x1, n1, x0, n0, alpha, expected, got)
        # as _rate_interval calls it: x1 events out of the pair's total
        for count, nobs in ((x1, x1 + x0), (x0, x1 + x0), (x1, n1), (x0, n0)):
            if nobs == 0:
                continue
            expected = proportion_confint(count, nobs, alpha=alpha, method="beta")
            got = _clopper_pearson_confint(count, nobs, alpha)
            boundary += count in (0, nobs)
            assert all(_same(e, g) and type(float(e)) is type(float(g)) for e, g in zip(expected, got)), (count, nobs, alpha, expected, got)
    assert boundary > 0


def test_exact_conditional_rate_ratio_interval_maps_the_clopper_pearson_limits():
    """The rate-ratio interval from the copy is the one from statsmodels' limits (its formula)."""
    from equity_pipeline.stats.disparities import _rate_interval

    for x1, t1, x0, t0 in ((3.0, 1200.0, 9.0, 2000.0), (0.0, 500.0, 4.0, 800.0), (7.0, 300.0, 0.0, 900.0), (250.0, 9e4, 410.0, 1.2e5)):
        lo, hi = proportion_confint(x1, x1 + x0, alpha=0.05, method="beta")
        ratio = lambda pi: (pi / (1 - pi)) * (t0 / t1) if pi < 1 else np.inf  # noqa: E731
        got = _rate_interval(x1, t1, x0, t0, "ratio", 0.05)
        assert got[:2] == (ratio(float(lo)), ratio(float(hi))) and got[2] == "exact conditional"
