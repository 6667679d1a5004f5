"""The disparities' own score interval for a rate difference is statsmodels' computation, bit for bit."""
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


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_same_limits_as_statsmodels(alpha):
    for x1, t1, x0, t0 in _cases():
        args = tuple(np.float64(v) for v in (x1, t1, x0, t0))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = confint_poisson_2indep(*args, method="score", compare="diff", alpha=alpha)
            got = _score_diff_poisson_confint(*args, alpha)
        for e, g in zip(expected, got):
            assert (np.isnan(e) and np.isnan(g)) or float(e) == float(g), (x1, t1, x0, t0, alpha, expected, got)
