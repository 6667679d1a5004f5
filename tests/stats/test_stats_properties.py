"""Property tests: intervals contain their estimates, proportions stay in [0, 1], rates combine.

Each property is a mathematical fact independent of our implementation (e.g. the Fay-Feuer interval
of a single stratum is the exact Poisson interval; a DSR of strata with equal rates is that rate).
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2

from equity_pipeline.stats import summary as S
from equity_pipeline.stats.proportions import wilson_interval, with_wilson
from equity_pipeline.stats.rates import event_rate, poisson_count_interval
from equity_pipeline.stats.standardization import direct_standardised_rate

settings.register_profile("stats", parent=settings.default, max_examples=60, deadline=None)
settings.load_profile("stats")

alphas = st.sampled_from([0.1, 0.05, 0.01, 0.002])


@st.composite
def proportion(draw):
    denominator = draw(st.integers(1, 10**7))
    return draw(st.integers(0, denominator)), denominator


@given(proportion(), alphas)
def test_wilson_contains_the_proportion_and_stays_in_unit_interval(case, alpha) -> None:
    numerator, denominator = case
    ci = wilson_interval(numerator, denominator, alpha=alpha)
    assert 0.0 <= ci.ci_lower <= ci.rate <= ci.ci_upper <= 1.0
    assert ci.rate == numerator / denominator


@given(st.lists(proportion(), min_size=1, max_size=8))
def test_partitions_combine_to_the_whole(parts) -> None:
    """Summing numerators and denominators of partitions gives the rate of the whole."""
    numerators = np.array([p[0] for p in parts], dtype=float)
    denominators = np.array([p[1] for p in parts], dtype=float)
    whole = wilson_interval(numerators.sum(), denominators.sum())
    frame = with_wilson(pl.DataFrame({"x": numerators, "n": denominators}), "x", "n")
    pooled = frame.select(pl.col("x").sum() / pl.col("n").sum()).item()
    assert whole.rate == pytest.approx(pooled, rel=1e-12)
    assert whole.rate == pytest.approx(np.average(frame["rate"].to_numpy(), weights=denominators), rel=1e-9)
    rate = event_rate(numerators.sum(), denominators.sum(), per=1)
    assert rate.rate == pytest.approx(np.average(numerators / denominators, weights=denominators), rel=1e-9)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=5))
def test_zero_denominators_give_missing_not_errors(numerators) -> None:
    denominators = [0] * len(numerators)
    ci = wilson_interval([0] * len(numerators), denominators)
    assert np.all(np.isnan(ci.rate)) and np.all(np.isnan(ci.ci_lower)) and np.all(np.isnan(ci.ci_upper))
    frame = with_wilson(pl.DataFrame({"x": [0] * len(numerators), "n": denominators}), "x", "n", prefix="p_")
    assert frame["p_rate"].null_count() == len(numerators)


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="larger than its denominator"):
        wilson_interval(5, 4)
    with pytest.raises(ValueError, match=">= 0"):
        wilson_interval(-1, 4)


@given(st.integers(0, 100_000), st.floats(1, 1e7), alphas)
def test_rate_interval_contains_the_rate(count, population, alpha) -> None:
    res = event_rate(count, population, per=100_000, alpha=alpha)
    assert 0.0 <= res.ci_lower <= res.rate <= res.ci_upper


@given(st.integers(0, 9), alphas)
def test_small_counts_use_the_exact_poisson_limits(count, alpha) -> None:
    lower, upper, method = poisson_count_interval(count, alpha)
    assert method[0] == "exact"
    # Garwood limits via the chi-square quantiles, written out independently
    want_lower = 0.0 if count == 0 else chi2.ppf(alpha / 2, 2 * count) / 2
    want_upper = chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    assert lower[0] == pytest.approx(want_lower) and upper[0] == pytest.approx(want_upper)


@given(st.integers(0, 500), st.floats(10, 1e6), alphas)
def test_fay_feuer_for_one_stratum_is_the_exact_poisson_interval(count, population, alpha) -> None:
    """Fay & Feuer (1997): with a single stratum the gamma interval reduces to Garwood's exact interval."""
    res = direct_standardised_rate([count], [population], [1.0], per=1.0, alpha=alpha, method="fay_feuer")
    want_lower = 0.0 if count == 0 else chi2.ppf(alpha / 2, 2 * count) / 2 / population
    want_upper = chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2 / population
    assert res.estimate == pytest.approx(count / population)
    assert res.ci_lower == pytest.approx(want_lower, rel=1e-6, abs=1e-15)
    assert res.ci_upper == pytest.approx(want_upper, rel=1e-6)


@given(st.lists(st.integers(10, 100_000), min_size=2, max_size=19), alphas)
def test_fay_feuer_with_no_events_uses_the_largest_stratum_weight(populations, alpha) -> None:
    """With every count 0 the upper limit is a gamma(1, w_max) quantile: w_max * -ln(alpha/2)."""
    populations = np.array(populations, dtype=float)
    standard = np.arange(1, populations.size + 1, dtype=float)
    res = direct_standardised_rate(np.zeros(populations.size), populations, standard, per=1.0, alpha=alpha,
                                   method="fay_feuer")
    w_max = np.max(standard / standard.sum() / populations)
    assert res.estimate == 0.0 and res.ci_lower == 0.0
    assert res.ci_upper == pytest.approx(w_max * -math.log(alpha / 2))


@given(st.lists(st.integers(100, 100_000), min_size=2, max_size=19), st.floats(0.001, 0.2),
       st.sampled_from(["dobson", "fay_feuer"]))
def test_dsr_of_strata_sharing_one_rate_is_that_rate(populations, rate, method) -> None:
    populations = np.array(populations, dtype=float)
    counts = populations * rate  # expected counts (fractional) at a common rate
    standard = np.arange(1, populations.size + 1, dtype=float)
    res = direct_standardised_rate(counts, populations, standard, per=1.0, method=method)
    if res.total_count >= 10 or method == "fay_feuer":
        assert res.estimate == pytest.approx(rate, rel=1e-9)
        assert res.ci_lower <= res.estimate <= res.ci_upper


def test_dobson_dsr_is_not_reported_below_ten_events() -> None:
    res = direct_standardised_rate([3, 6], [1000, 1000], [1, 1])
    assert math.isnan(res.estimate) and res.total_count == 9


# --- summary measures -------------------------------------------------------------------------------

@st.composite
def subgroups(draw, min_size=3, max_size=8):
    k = draw(st.integers(min_size, max_size))
    est = draw(st.lists(st.floats(1, 99), min_size=k, max_size=k))
    pop = draw(st.lists(st.integers(50, 5000), min_size=k, max_size=k))
    se = draw(st.lists(st.floats(0.1, 5), min_size=k, max_size=k))
    return np.array(est), np.array(pop, dtype=float), np.array(se)


@given(subgroups())
def test_analytic_intervals_contain_the_estimate(groups) -> None:
    est, pop, se = groups
    order = np.arange(1, est.size + 1)
    results = [S.between_group_variance(est, pop, se=se), S.theil_index(est, pop, se=se),
               S.mean_log_deviation(est, pop, se=se),
               S.population_attributable_risk(est, pop, favourable=True, scale=100),
               S.population_attributable_fraction(est, pop, favourable=False, scale=100),
               S.absolute_concentration_index(est, pop, order), S.relative_concentration_index(est, pop, order),
               S.range_difference(est, favourable=True, se=se), S.range_ratio(est, favourable=True, se=se)]
    for r in results:
        assert r.ci_lower <= r.estimate <= r.ci_upper, r


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.PerfectSeparationWarning")
@given(subgroups())
def test_sii_and_rii_intervals_contain_the_estimate(groups) -> None:
    est, pop, _ = groups
    order = np.arange(1, est.size + 1)
    for model in ("logistic", "linear"):
        sii = S.slope_index_of_inequality(est, pop, order, scale=100, model=model)
        rii = S.relative_index_of_inequality(est, pop, order, scale=100, model=model)
        assert sii.ci_lower <= sii.estimate <= sii.ci_upper
        if not math.isnan(rii.estimate):
            assert rii.ci_lower <= rii.estimate <= rii.ci_upper


@given(subgroups(), st.floats(0.5, 20))
def test_relative_measures_ignore_the_unit_and_absolute_ones_scale_with_it(groups, factor) -> None:
    est, pop, _ = groups
    assert S.theil_index(est * factor, pop).estimate == pytest.approx(S.theil_index(est, pop).estimate, abs=1e-9)
    assert S.mean_log_deviation(est * factor, pop).estimate == pytest.approx(
        S.mean_log_deviation(est, pop).estimate, abs=1e-9)
    assert S.index_of_disparity(est * factor, pop).estimate == pytest.approx(S.index_of_disparity(est, pop).estimate)
    assert S.between_group_variance(est * factor, pop).estimate == pytest.approx(
        factor ** 2 * S.between_group_variance(est, pop).estimate)
    bgsd = S.between_group_standard_deviation(est, pop).estimate
    assert bgsd ** 2 == pytest.approx(S.between_group_variance(est, pop).estimate)


@given(st.floats(1, 99), st.lists(st.integers(50, 5000), min_size=3, max_size=8))
def test_no_inequality_gives_zero(value, pops) -> None:
    est, pop = np.full(len(pops), value), np.array(pops, dtype=float)
    reference = np.arange(len(pops)) == 0
    for r in (S.between_group_variance(est, pop), S.theil_index(est, pop), S.mean_log_deviation(est, pop),
              S.index_of_disparity(est, pop), S.index_of_disparity_weighted(est, pop),
              S.mean_difference_from_best(est, favourable=True), S.mean_difference_from_mean_weighted(est, pop),
              S.mean_difference_from_reference(est, reference=reference),
              S.population_attributable_risk(est, pop, favourable=True, scale=100),
              S.range_difference(est, favourable=False)):
        assert r.estimate == pytest.approx(0.0, abs=1e-9), r.measure


@given(subgroups(), st.randoms(use_true_random=False))
def test_non_ordered_measures_do_not_depend_on_row_order(groups, rnd) -> None:
    est, pop, se = groups
    perm = np.array(rnd.sample(range(est.size), est.size))
    for fn in (S.between_group_variance, S.theil_index, S.mean_log_deviation, S.index_of_disparity_weighted):
        assert fn(est[perm], pop[perm], se=se[perm]).estimate == pytest.approx(fn(est, pop, se=se).estimate)


def test_favourable_direction_picks_the_right_reference() -> None:
    est, pop = np.array([80.0, 60.0, 70.0]), np.array([100.0, 100.0, 100.0])
    # favourable: best is the highest (80); adverse: best is the lowest (60)
    assert S.mean_difference_from_best(est, favourable=True).estimate == pytest.approx((0 + 20 + 10) / 3)
    assert S.mean_difference_from_best(est, favourable=False).estimate == pytest.approx((20 + 0 + 10) / 3)
    # PAR: best minus the mean (70), zero when no group beats the mean in the good direction
    assert S.population_attributable_risk(est, pop, favourable=True, scale=100).estimate == pytest.approx(10)
    assert S.population_attributable_risk(est, pop, favourable=False, scale=100).estimate == pytest.approx(-10)


def test_ordered_range_difference_is_advantaged_minus_disadvantaged() -> None:
    est, order = np.array([30.0, 50.0, 70.0]), np.array([1, 2, 3])
    assert S.range_difference(est, favourable=True, order=order).estimate == 40
    assert S.range_difference(est, favourable=False, order=order).estimate == -40
    assert S.range_ratio(est, favourable=True, order=order).estimate == pytest.approx(70 / 30)


def test_sii_and_rii_of_one_table_share_one_fit(monkeypatch) -> None:
    """The SII and RII of a table of groups come from one regression, fitted once; the results are
    those of fitting it for each (the fit is reused, not changed), and other inputs are fitted anew."""
    est, pop, order = np.array([20.0, 30.0, 40.0, 55.0]), np.array([100.0, 200.0, 150.0, 120.0]), np.arange(1, 5)
    def fitted_alone(measure, model):
        S._FITS.clear()
        return measure(est, pop, order, scale=100, model=model)

    fresh = {model: (fitted_alone(S.slope_index_of_inequality, model), fitted_alone(S.relative_index_of_inequality, model))
             for model in ("logistic", "linear")}
    S._FITS.clear()
    real, fits = S._sii_model, []
    monkeypatch.setattr(S, "_sii_model", lambda *a: fits.append(a[-1]) or real(*a))
    for model in ("logistic", "linear"):
        shared = S.all_summaries(pl.DataFrame({"estimate": est, "population": pop, "order": order}), favourable=True,
                                 ordered=True, scale=100, sii_model=model)
        assert (shared["slope_index_of_inequality"], shared["relative_index_of_inequality"]) == fresh[model]
    assert fits == ["logistic", "linear"]
    S.slope_index_of_inequality(est * 1.1, pop, order, scale=100, model="linear")
    assert fits == ["logistic", "linear", "linear"]


def test_all_summaries_applicability() -> None:
    groups = pl.DataFrame({"group": ["a", "b", "c", "d"], "estimate": [20.0, 30.0, 40.0, 55.0],
                           "population": [100, 200, 150, 120], "se": [2.0, 3.0, 2.5, 4.0], "order": [1, 2, 3, 4]})
    ordered = S.all_summaries(groups, favourable=True, ordered=True, simulations=200)
    non_ordered = S.all_summaries(groups, favourable=True, ordered=False, reference="b", simulations=200)
    assert {"slope_index_of_inequality", "relative_index_of_inequality", "absolute_concentration_index",
            "relative_concentration_index"} <= set(ordered)
    assert "between_group_variance" not in ordered
    assert {"between_group_variance", "theil_index", "mean_difference_from_reference_weighted"} <= set(non_ordered)
    assert "slope_index_of_inequality" not in non_ordered
    two = S.all_summaries(groups.head(2), favourable=True, ordered=False)
    assert set(two) == {"range_difference", "range_ratio"}
    frame = S.summaries_frame(non_ordered)
    assert frame.columns == ["measure", "estimate", "se", "ci_lower", "ci_upper", "method"]
    assert frame.height == len(non_ordered)
