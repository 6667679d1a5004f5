"""The standardised rates' member-row sums by integer cell codes (``standardized._stratum_sums``) and
the O/E covariate patterns counted by code (``standardized._pattern_cells``); docs/performance.md,
"fifth session".

Oracles: the group-bys they replace (``_by_stratum``; the pattern group-by and join of
``_logistic``), which are still the fallback, and ``math.fsum`` for the float sums:

* the rows (keys, strata, bands, sexes) and their order are the group-bys' exactly;
* whole-number counts and populations are the same bits (exact sums in any order), and so is
  ``_has_e``; expected values (and fractional counts) are within the error bound of the summation
  done (rows in order within blocks of ``stats._common.BLOCK``, blocks in order, then cells in order:
  ``(BLOCK + blocks + cells) * 2**-53 * sum |terms|``) of their exactly rounded sums;
* the pattern cells and the probability each row gets are the group-by and join's, bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from equity_pipeline import standardized as st
from equity_pipeline.stats import _common

U = 2.0 ** -53
SUMS = ("count", "population", "_e")
STRATIFIERS = ("race_ethnicity", "language")


def _base(seed: int = 4, n: int = 9000, fractional: bool = False) -> pl.DataFrame:
    """Member rows as ``standardized._denominators`` leaves them (two sub-measures, strata, age band
    with nulls, sex), with expected values (some null) and whole or fractional values."""
    rng = np.random.default_rng(seed)
    num = rng.gamma(1.0, 2.0, n) if fractional else (rng.random(n) < 0.35).astype(float)
    den = rng.random(n) * 12 if fractional else np.ones(n)
    band = rng.choice(["18-44", "45-64", "65-74", "75+"], n).tolist()
    expected = rng.random(n) * 0.6
    frame = pl.DataFrame({
        "measure_id": "M", "measure_version": "2025", "period": "2025", "submeasure": rng.choice(["all", "a", "b"], n).tolist(),
        "state": rng.choice(["AL", "GA", "TX", "Unknown"], n).tolist(), "numerator_value": num, "denominator_value": den,
        "_expected": pl.Series(expected).set(pl.Series(rng.random(n) < 0.05), None),
        "_band": pl.Series(band, dtype=pl.String).set(pl.Series(rng.random(n) < 0.03), None),
        "_sex": rng.choice(["Female", "Male", "Unknown"], n).tolist(),
        "_s_race_ethnicity": rng.choice(["White", "Black or African American", "Asian", "Unknown"], n).tolist(),
        "_s_language": rng.choice(["English", "Spanish"], n).tolist(),
    })
    return frame


def _old(frame: pl.DataFrame, extra: list[str]) -> pl.DataFrame:
    return st._by_stratum(frame, STRATIFIERS, [pl.col("numerator_value").sum().alias("count"), pl.col("denominator_value").sum().alias("population"),
                                                pl.col("_expected").sum().alias("_e"), pl.col("_expected").is_not_null().any().alias("_has_e")], extra)


def _exact(frame: pl.DataFrame, row: dict, extra: list[str]) -> dict[str, tuple[float, float, int]]:
    """(exactly rounded sum, sum of magnitudes, rows) of each sum of the cell ``row`` names."""
    cond = pl.col("submeasure") == row["submeasure"]
    if row["unit_level"] == "state":
        cond &= pl.col("state") == row["unit_id"]
    if row["stratifier"] != "overall":
        cond &= pl.col(f"_s_{row['stratifier']}") == row["stratum"]
    for c in extra:
        cond &= pl.col(c).is_null() if row[c] is None else pl.col(c) == row[c]
    rows = frame.filter(cond)
    out = {}
    for name, column in zip(SUMS, ("numerator_value", "denominator_value", "_expected")):
        v = rows[column].drop_nulls().to_numpy()
        out[name] = (math.fsum(v), math.fsum(np.abs(v)), rows.height)
    return out


@pytest.mark.parametrize("extra", [["_band", "_sex"], ["_band"]])
def test_whole_numbers_the_same_bits_expected_values_within_the_bound(extra, monkeypatch):
    monkeypatch.setattr(_common, "BLOCK", 128)
    frame = _base()
    old, new = _old(frame, extra), st._stratum_sums(frame, STRATIFIERS, extra)
    assert new is not None
    assert new.columns == old.columns and new.schema == old.schema
    keys = [c for c in old.columns if c not in (*SUMS, "_has_e")]
    assert new.select(keys).equals(old.select(keys))   # the same cells in the same order
    assert new.select("count", "population", "_has_e").equals(old.select("count", "population", "_has_e"))
    checked = 0
    for row in new.iter_rows(named=True):
        for name, (exact, magnitude, n) in _exact(frame, row, extra).items():
            bound = (128 + math.ceil(frame.height / 128) + 64) * U * magnitude
            assert abs(row[name] - exact) <= bound, (row, name, exact)
            checked += 1
    assert checked > 500


def test_fractional_values_within_the_bound(monkeypatch):
    monkeypatch.setattr(_common, "BLOCK", 128)
    frame = _base(seed=8, fractional=True)
    old, new = _old(frame, ["_band", "_sex"]), st._stratum_sums(frame, STRATIFIERS, ["_band", "_sex"])
    keys = [c for c in old.columns if c not in (*SUMS, "_has_e")]
    assert new.select(keys).equals(old.select(keys)) and new["_has_e"].equals(old["_has_e"])
    for row in new.iter_rows(named=True):
        for name, (exact, magnitude, n) in _exact(frame, row, ["_band", "_sex"]).items():
            assert abs(row[name] - exact) <= (128 + math.ceil(frame.height / 128) + 64) * U * magnitude
    # and the bound is tight enough to catch a wrong column: population is not count
    assert not np.allclose(new["count"].to_numpy(), new["population"].to_numpy(), rtol=1e-6)


def test_falls_back_when_the_codes_do_not_apply():
    frame = _base(n=500)
    assert st._stratum_sums(frame.with_columns(pl.col("numerator_value").cast(pl.Int64)), STRATIFIERS, ["_band"]) is None
    assert st._stratum_sums(frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("submeasure")).alias("submeasure")),
                            STRATIFIERS, ["_band"]) is None
    assert st._stratum_sums(frame.clear(), STRATIFIERS, ["_band"]) is None


def _pattern_frame(seed: int, n: int = 20000, cap: int = 4) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = pl.Series(rng.integers(18, 95, n)).set(pl.Series(rng.random(n) < 0.02), None)
    part = pl.DataFrame({"age": age, "_sex": pl.Series(rng.choice(["Male", "Female", "U"], n).tolist()).set(pl.Series(rng.random(n) < 0.01), None),
                         "numerator_value": pl.Series((rng.random(n) < 0.3).astype(float)).set(pl.Series(rng.random(n) < 0.01), None),
                         "_comorbidities": rng.poisson(1.5, n)})
    return part.select(age=pl.col("age"), _male=(pl.col("_sex") == "Male").fill_null(False), _y=pl.col("numerator_value") > 0,
                       comorbidities=pl.min_horizontal(pl.col("_comorbidities"), pl.lit(cap)))


def test_pattern_cells_are_the_group_by_and_rows_get_their_cell():
    frame = _pattern_frame(3)
    pattern = ["age", "_male", "comorbidities"]
    want = frame.filter(pl.col("age").is_not_null()).group_by(pattern).agg(n=pl.len(), events=pl.col("_y").sum()).sort(pattern)
    cells, code, at = st._pattern_cells(frame, 4)
    assert cells.equals(want)
    # each row's cell is the row of its pattern (a join on the pattern), none without age
    fitted = np.arange(cells.height, dtype=float) / 7.0
    lookup = cells.select(*pattern, _p=pl.Series(fitted))
    joined = frame.join(lookup, on=pattern, how="left", maintain_order="left")["_p"].fill_null(np.nan).to_numpy()
    mine = np.where(code >= 0, fitted[at[np.maximum(code, 0)]], np.nan)
    np.testing.assert_array_equal(mine, joined)
    assert np.isnan(mine).sum() == frame["age"].null_count() > 0
    # codes outside what they stand for: the group-by again
    assert st._pattern_cells(frame.with_columns(comorbidities=pl.col("comorbidities") + 5), 4) is None


def test_logistic_probabilities_equal_the_join_path(monkeypatch):
    rng = np.random.default_rng(12)
    n = 8000
    age = rng.integers(18, 80, n)
    male = rng.random(n) < 0.5
    com = rng.poisson(1.0, n)
    y = rng.random(n) < 1 / (1 + np.exp(-(-1.2 + 0.02 * (age - 40) + 0.3 * male + 0.3 * np.minimum(com, 4))))
    part = pl.DataFrame({"age": pl.Series(age).set(pl.Series(rng.random(n) < 0.01), None), "_sex": np.where(male, "Male", "Female"),
                         "numerator_value": y.astype(float), "_comorbidities": com})
    bands = (18, 45, 65)
    p_new, s_new = st._logistic(part, bands, True, 4)
    monkeypatch.setattr(st, "_pattern_cells", lambda frame, cap: None)
    p_old, s_old = st._logistic(part, bands, True, 4)
    assert s_new == s_old and s_new["method"] == "logistic"
    np.testing.assert_array_equal(p_new, p_old)


def test_without_stratifiers_the_overall_cells():
    frame = _base(seed=6, n=3000)
    old = st._by_stratum(frame, (), [pl.col("numerator_value").sum().alias("count"), pl.col("denominator_value").sum().alias("population"),
                                     pl.col("_expected").sum().alias("_e"), pl.col("_expected").is_not_null().any().alias("_has_e")], ["_band", "_sex"])
    new = st._stratum_sums(frame, (), ["_band", "_sex"])
    assert new.drop("_e").equals(old.drop("_e"))
    np.testing.assert_allclose(new["_e"].to_numpy(), old["_e"].to_numpy(), rtol=1e-12)
