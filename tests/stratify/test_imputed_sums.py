"""The imputed-race track's probability-weighted sums (``imputation.imputed_counts``) summed with
``np.bincount`` in blocks (docs/performance.md, "fifth session").

The sums are no longer polars group-by sums (which add in an order of their own), so they are
checked against the exactly rounded sums of the same member terms (``math.fsum``) within the error
bound of the summation actually done: rows added in order within blocks of ``stats._common.BLOCK`` rows, the
blocks' sums in order, then (population) the states' sums in order, so at most
``BLOCK + blocks + states`` additions along any path, each rounding by at most one unit
``u = 2**-53`` of the running magnitude: ``|error| <= (BLOCK + blocks + states) * u * sum |terms|``.
The block length is set small here so that every cell spans many blocks. Member counts are exact.
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from equity_pipeline import imputation
from equity_pipeline.stats import _common

STATES = {"01": "AL", "13": "GA", "48": "TX"}
U = 2.0 ** -53


def _population(seed: int = 11, members: int = 3000):
    rng = np.random.default_rng(seed)
    ids = [f"M{i:05d}" for i in rng.permutation(members)]
    attrs = pl.DataFrame({"member_id": ids, "state": [["AL", "GA", "TX", "Unknown"][i] for i in rng.integers(0, 4, members)]})
    frames = []
    for measure, share, kind in (("BCS", 0.7, "binary"), ("CHL", 0.5, "sub"), ("ED_VISITS", 0.8, "events"), ("TCOC_PMPM", 0.6, "cost")):
        chosen = [m for m in ids if rng.random() < share] + [f"X{i}" for i in range(5)]   # 5 members without attributes
        n = len(chosen)
        den = rng.integers(1, 13, n).astype(float) if kind in ("events", "cost") else np.ones(n)
        num = {"cost": np.round(rng.gamma(1.5, 400.0, n) * den, 2), "events": rng.poisson(0.6, n).astype(float)}.get(
            kind, (rng.random(n) < 0.4).astype(float))
        frames.append(pl.DataFrame({
            "member_id": chosen, "measure_id": measure, "measure_version": "2025", "period": "2025",
            "submeasure": ([["16-20", "21-24"][i % 2] for i in range(n)] if kind == "sub" else ["all"] * n),
            "in_denominator": rng.random(n) < 0.9, "numerator_value": num, "denominator_value": den,
        }))
    results = pl.concat(frames)
    p = rng.dirichlet(np.full(7, 0.7), members)
    p[rng.random(members) < 0.1] = [0, 0, 0, 0, 0, 0, 1.0]   # not imputed
    probs = pl.DataFrame({"member_id": ids, **{c: p[:, i] for i, c in enumerate(imputation.PROBABILITY_COLUMNS)}})
    return results, attrs, probs


def _terms(w, y, d):
    return {"members": w, "denominator": w * d, "numerator": w * y, "n_members": (w > 0).astype(float), "sum_w2": w * w,
            "sum_w2_den": w * w * d, "sum_w2_num": w * w * y, "sum_w2_num_sq": w * w * y * y, "sum_w2_num_den": w * w * y * d,
            "sum_w2_den_sq": w * w * d * d}


def _oracle(results, attrs, probs):
    """Per cell (measure, sub-measure, unit, category): the member rows' terms, from the definition:
    denominator rows, the member's state (Unknown without attributes), sub-measure rows also counted
    in ``all``, members without probabilities Not imputed."""
    rows = results.filter(pl.col("in_denominator")).join(attrs, on="member_id", how="left").join(probs, on="member_id", how="left")
    rows = rows.with_columns(pl.col("state").fill_null("Unknown"), *[pl.col(c).fill_null(0.0) for c in list(imputation.PROBABILITY_COLUMNS)[:-1]],
                             p_none=pl.col("p_none").fill_null(1.0))
    rows = pl.concat([rows, rows.filter(pl.col("submeasure") != "all").with_columns(submeasure=pl.lit("all"))])
    cells = {}
    for unit_level, unit in (("population", None), ("state", "state")):
        keys = ["measure_id", "submeasure"] + ([unit] if unit else [])
        for key, part in rows.group_by(keys):
            y, d = part["numerator_value"].to_numpy(), part["denominator_value"].to_numpy()
            for c, label in imputation.PROBABILITY_COLUMNS.items():
                cells[(key[0], key[1], unit_level, key[2] if unit else "all", label)] = _terms(part[c].to_numpy(), y, d)
    return cells


@pytest.fixture(scope="module")
def population():
    return _population()


def test_sums_within_the_bound_of_the_exact_sums(population, monkeypatch):
    block = 64
    monkeypatch.setattr(_common, "BLOCK", block)
    results, attrs, probs = population
    got = imputation.imputed_counts(results, attrs, probs)
    want = _oracle(results, attrs, probs)
    # the cells: every (cell, category) some member has a weight in, and no other
    present = {k for k, t in want.items() if t["n_members"].sum() > 0}
    rows = {(r["measure_id"], r["submeasure"], r["unit_level"], r["unit_id"], r["stratum"]): r for r in got.iter_rows(named=True)}
    assert set(rows) == present
    assert got["stratifier"].unique().to_list() == [imputation.IMPUTED_STRATIFIER]
    n_states = attrs["state"].n_unique()
    checked = 0
    for key, row in rows.items():
        terms = want[key]
        n = len(terms["members"])
        steps = block + math.ceil(n / block) + n_states
        assert row["n_members"] == terms["n_members"].sum()   # whole numbers: exact
        for name in imputation.IMPUTED_SUMS:
            exact, magnitude = math.fsum(terms[name]), math.fsum(np.abs(terms[name]))
            assert abs(row[name] - exact) <= steps * U * magnitude, (key, name, row[name], exact)
            checked += 1
    assert checked > 2000
    # a sum taken of the wrong terms is caught: w * y is not w * d in the cost measure
    cost = next(k for k in rows if k[0] == "TCOC_PMPM" and k[2] == "population")
    assert abs(rows[cost]["numerator"] - math.fsum(want[cost]["denominator"])) > 1.0


def test_proportions_reuse_sums_of_equal_terms_bit_for_bit(population, monkeypatch):
    """For a proportion (every d = 1, y 0 or 1) w*d is w, w*w*y*y is w*w*y ..., value for value: the sums
    taken once and reused equal the sums of the terms computed one by one, to the bit."""
    results, attrs, probs = population
    binary = results.filter(pl.col("measure_id").is_in(["BCS", "CHL"]))
    fast = imputation.imputed_counts(binary, attrs, probs)
    general = imputation._weighted_products
    monkeypatch.setattr(imputation, "_weighted_products", lambda w, y, d, zero_one: general(w, y, d, False))
    slow = imputation.imputed_counts(binary, attrs, probs)
    assert fast.equals(slow)
    # and the general path is taken whenever one value breaks the rule
    one_off = binary.with_columns(denominator_value=pl.when(pl.col("in_denominator") & (pl.col("in_denominator").cum_sum() == 1)).then(2.0).otherwise(pl.col("denominator_value")))
    calls = []
    monkeypatch.setattr(imputation, "_weighted_products", lambda w, y, d, zero_one: calls.append(zero_one) or general(w, y, d, zero_one))
    imputation.imputed_counts(one_off, attrs, probs)
    assert calls and calls.count(False) == len(imputation.PROBABILITY_COLUMNS) and calls.count(True) == len(imputation.PROBABILITY_COLUMNS)


def test_same_sums_whatever_the_input_row_order(population):
    """The rows are put in a fixed order before they are summed: shuffled input, the same bits."""
    results, attrs, probs = population
    a = imputation.imputed_counts(results, attrs, probs)
    b = imputation.imputed_counts(results.sample(fraction=1.0, shuffle=True, seed=3), attrs.reverse(), probs.reverse())
    assert a.equals(b)


def test_no_denominator_rows_no_cells(population):
    results, attrs, probs = population
    empty = imputation.imputed_counts(results.with_columns(in_denominator=pl.lit(False)), attrs, probs)
    assert empty.height == 0 and empty.columns == [*imputation._KEY, *imputation.IMPUTED_SUMS]
    assert all(empty.schema[s] == pl.Float64 for s in imputation.IMPUTED_SUMS)
