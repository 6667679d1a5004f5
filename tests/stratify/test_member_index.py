"""Members found by position, one integer sort for the fixed row order, collapsed cells for whole
numbers (``stratify.MemberIndex``, ``rolled_up_in_order(position=...)``, ``_exact_sums``/``_collapse``;
docs/performance.md "Stratification and equity plans: members by position").

Each faster path keeps its plain form as a fallback: a join on member_id, the sort on the columns,
sums of the member rows. The oracle here is that plain form, reached by switching the faster paths
off (``MemberIndex.of`` -> None, ``_exact_sums`` -> False), and the frames must be equal bit for bit:
the counts, identities, imputed and standardised tables of a synthetic population whose members
all have attributes (so the faster paths are taken: asserted), with sub-measures rolled up, whole
and fractional values."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from equity_pipeline import imputation, standardized, stratify
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.stratify import MemberIndex

STRATS = ("race_ethnicity", "language", "county", "rurality", "sex")
INTERSECTIONS = (("race_ethnicity", "sex"),)


def _population(seed: int = 5, members: int = 1200):
    rng = np.random.default_rng(seed)
    ids = [f"M{i:05d}" for i in rng.permutation(members)]   # not in member order

    def pick(values):
        return [values[i] for i in rng.integers(0, len(values), members)]

    attrs = pl.DataFrame({"member_id": ids, "race_ethnicity": pick(["White", "Black or African American", "Asian", "Unknown"]),
                          "language": pick(["English", "Spanish", "Other"]), "county": pick(["01001", "01003", "13001", "Unknown"]),
                          "sex": pick(["Female", "Male", "Unknown"])})
    attrs = attrs.with_columns(rurality=pl.col("county").replace_strict({"01001": "Metro", "01003": "Nonmetro rural", "13001": "Metro",
                                                                         "Unknown": "Unknown"}),
                               state=pl.col("county").str.slice(0, 2).replace_strict({"01": "AL", "13": "GA", "Un": "Unknown"}))
    frames = []
    for measure, share, kind in (("BCS", 0.6, "binary"), ("CHL", 0.3, "sub"), ("ED_VISITS", 0.8, "events"),
                                 ("TCOC_PMPM", 0.7, "cost"), ("PCR", 0.2, "expected")):
        chosen = [m for m in ids if rng.random() < share]
        n = len(chosen)
        den = rng.integers(1, 13, n).astype(float) if kind in ("events", "cost") else np.ones(n)
        num = {"cost": np.round(rng.gamma(1.5, 400.0, n) * den, 2), "events": rng.poisson(0.6, n).astype(float)}.get(
            kind, (rng.random(n) < 0.4).astype(float))
        frames.append(pl.DataFrame({
            "member_id": chosen, "measure_id": measure, "measure_version": "2025", "period": "2025", "age": rng.integers(18, 90, n),
            "submeasure": ([["16-20", "21-24"][i % 2] for i in range(n)] if kind == "sub" else ["all"] * n),
            "in_denominator": rng.random(n) < 0.9, "numerator_value": num, "denominator_value": den,
            "expected_value": (rng.random(n) * 0.3 if kind == "expected" else [None] * n),
        }, schema_overrides={"expected_value": pl.Float64, "age": pl.Int64}))
    return pl.concat(frames, how="vertical_relaxed"), attrs


@pytest.fixture(scope="module")
def population():
    return _population()


@pytest.fixture
def plain(monkeypatch):
    """Switch the faster paths off: joins, the sort on the columns and sums of the member rows."""
    def off():
        monkeypatch.setattr(stratify.MemberIndex, "of", classmethod(lambda cls, frame: None))
        monkeypatch.setattr(stratify, "_exact_sums", lambda base: False)
    return off


# ------------------------------------------------------------------ the pieces
def test_left_join_by_position_equals_the_join():
    rng = np.random.default_rng(1)
    right = pl.DataFrame({"member_id": [f"M{i:04d}" for i in rng.permutation(500)], "x": rng.integers(0, 9, 500),
                          "label": rng.choice(["a", "b", None], 500)})
    left = pl.DataFrame({"member_id": [f"M{i:04d}" for i in rng.integers(0, 560, 2000)], "v": rng.random(2000)})  # some absent
    index = MemberIndex.of(right)
    assert index is not None and index.frame["member_id"].is_sorted()
    got = index.left_join(left, position="_p")
    want = left.join(right, on="member_id", how="left", maintain_order="left")
    assert got.drop("_p").equals(want, null_equal=True)
    # positions: null exactly for the absent members, else the row of the sorted frame
    absent = ~left["member_id"].is_in(right["member_id"].implode())
    assert got["_p"].is_null().equals(absent)
    found = got.filter(pl.col("_p").is_not_null())
    assert index.frame["member_id"].gather(found["_p"]).equals(found["member_id"], check_names=False)
    # repeated or missing ids: no index (a join is the right tool)
    assert MemberIndex.of(pl.DataFrame({"member_id": ["A", "B", "A"]})) is None
    assert MemberIndex.of(pl.DataFrame({"member_id": ["A", None]})) is None


def test_a_member_key_hint_is_taken_only_when_it_holds_the_ids(monkeypatch):
    """``member_key`` of the results (positions among the members' sorted ids) stands for the search
    when every hinted row holds its id; a wrong, null or out-of-range hint is not taken."""
    frame = pl.DataFrame({"member_id": [f"M{i:04d}" for i in range(300)], "x": range(300)})
    index = MemberIndex.of(frame)
    rng = np.random.default_rng(2)
    rows = pl.DataFrame({"member_id": [f"M{i:04d}" for i in rng.integers(0, 300, 1000)], "v": rng.random(1000)})
    want = index.left_join(rows, position="_p")
    keys = index.position(rows["member_id"])
    assert keys.null_count() == 0
    searches = []
    search = pl.Series.search_sorted
    monkeypatch.setattr(pl.Series, "search_sorted", lambda self, *a, **k: searches.append(1) or search(self, *a, **k))
    got = index.left_join(rows.with_columns(member_key=keys), position="_p")
    assert got.equals(want) and not searches            # the hint taken: no search, and member_key not kept
    for bad in (keys.scatter([5], [(keys[5] + 1) % 300]), keys.scatter([7], [None]), keys.scatter([9], [300])):
        searches.clear()
        assert index.left_join(rows.with_columns(member_key=bad), position="_p").equals(want) and searches
    # a member absent from the frame has no position, whatever its hint
    absent = pl.DataFrame({"member_id": ["M0001", "ZZZ"], "member_key": pl.Series([1, 2], dtype=pl.UInt32)})
    assert index.left_join(absent, position="_p")["_p"].to_list() == [1, None]


def test_order_by_position_equals_the_sort_on_the_columns(population):
    results, attrs = population
    index = MemberIndex.of(attrs.select("member_id", "state"))
    rows = index.left_join(results.filter(pl.col("in_denominator")), position="_position")
    assert stratify._member_order(rows, "_position") is not None          # the integer sort is taken here
    fast = stratify.rolled_up_in_order(rows, "_position").drop("_position")
    assert fast.equals(stratify.rolled_up_in_order(rows.drop("_position")), null_equal=True)
    # a member twice in one sub-measure: the later keys (values) decide, so the columns are sorted
    twice = pl.concat([rows, rows.head(1).with_columns(numerator_value=pl.lit(-1.0))])
    assert stratify._member_order(twice, "_position") is None
    assert stratify.rolled_up_in_order(twice, "_position").drop("_position").equals(
        stratify.rolled_up_in_order(twice.drop("_position")), null_equal=True)


def test_rows_already_in_member_order_are_kept_as_they_are(population):
    """One measure's rows of one sub-measure, by member id (as its results file holds them), are in the
    counts' order already: no sort and no gather; any other order is sorted, with the same result."""
    results, attrs = population
    index = MemberIndex.of(attrs.select("member_id", "state"))
    rows = index.left_join(results.filter(pl.col("in_denominator")), position="_position")
    one = rows.filter((pl.col("measure_id") == rows["measure_id"][0]) & (pl.col("submeasure") == "all")).sort("member_id")
    assert one.height > 10
    assert stratify._member_order(one, "_position") is stratify.IN_ORDER
    assert stratify.rolled_up_in_order(one, "_position").equals(one, null_equal=True)
    shuffled = one.sample(fraction=1.0, shuffle=True, seed=3)
    assert stratify._member_order(shuffled, "_position") is not stratify.IN_ORDER
    for frame in (one, shuffled):
        assert stratify.rolled_up_in_order(frame, "_position").drop("_position").equals(
            stratify.rolled_up_in_order(frame.drop("_position")), null_equal=True)


def test_exact_sums_only_for_whole_numbers_within_2_53():
    def base(num, den):
        return pl.DataFrame({"numerator_value": num, "denominator_value": den}, schema={"numerator_value": pl.Float64,
                                                                                       "denominator_value": pl.Float64})
    assert stratify._exact_sums(base([0.0, 1.0, 3.0, None], [1.0, 12.0, 7.0, 1.0]))
    assert not stratify._exact_sums(base([0.5, 1.0], [1.0, 1.0]))                 # cents, member years
    assert not stratify._exact_sums(base([float("nan"), 1.0], [1.0, 1.0]))
    assert not stratify._exact_sums(base([2.0 ** 26, 1.0], [1.0, 1.0]))           # 2 x (2^26)^2 = 2^53: squares could round
    assert stratify._exact_sums(base([2.0 ** 25, 1.0], [1.0, 1.0]))
    with_expected = base([1.0], [1.0]).with_columns(expected_value=pl.lit(0.2))
    assert not stratify._exact_sums(with_expected)


# ------------------------------------------------------------------ whole steps: fast equals plain
def test_counts_and_identities_equal_the_plain_path(population, plain):
    results, attrs = population
    counts, identities = stratify.counts_and_identities(results, attrs, STRATS, INTERSECTIONS)
    coded = stratify._Coded(attrs, stratify.all_stratifiers(STRATS, INTERSECTIONS))
    exact = {m: stratify._exact_sums(stratify._coded_denominators(results.filter(pl.col("measure_id") == m), coded))
             for m in results["measure_id"].unique()}
    assert coded.index is not None
    assert exact == {"BCS": True, "CHL": True, "ED_VISITS": True, "TCOC_PMPM": False, "PCR": False}
    plain()
    want_counts, want_identities = stratify.counts_and_identities(results, attrs, STRATS, INTERSECTIONS)
    assert counts.schema == want_counts.schema and counts.equals(want_counts, null_equal=True)
    assert identities.equals(want_identities)
    assert identities.height and counts.filter(pl.col("measure_id") == "PCR")["expected"].is_not_null().all()
    assert counts.filter(pl.col("measure_id") == "BCS")["expected"].is_null().all()


def test_imputed_counts_equal_the_plain_path(population, plain):
    results, attrs = population
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(7), attrs.height)
    probs = pl.DataFrame({"member_id": attrs["member_id"], **{c: p[:, i] for i, c in enumerate(imputation.PROBABILITY_COLUMNS)}})
    together = imputation.imputed_counts(results, attrs, probs)   # one index for both (same members)
    # probabilities of one more member than the attributes: two indexes
    extra = pl.concat([probs, probs.head(1).with_columns(member_id=pl.lit("Z9999"))])
    apart = imputation.imputed_counts(results, attrs, extra)
    plain()
    want = imputation.imputed_counts(results, attrs, probs)
    assert together.equals(want, null_equal=True)
    assert apart.equals(want, null_equal=True)


def test_standardized_rates_equal_the_plain_path(population, plain):
    results, attrs = population
    specs = {m: load_specs()[m] for m in ("BCS", "CHL", "ED_VISITS")}
    results = results.filter(pl.col("measure_id").is_in(list(specs)))
    comorbidities = pl.DataFrame({"member_id": attrs["member_id"].head(400), "comorbidities": [i % 4 for i in range(400)]})

    def run():
        rates = stratify.public_rates(stratify.stratified_counts(results, attrs, ("race_ethnicity",)), specs,
                                      {m: "claims" for m in specs})
        return standardized.standardized_rates(results, attrs, rates, None, specs, stratifiers=("race_ethnicity",),
                                               age_bands=(0, 50, 65), comorbidities=comorbidities)[0]

    fast = run()
    plain()
    want = run()
    assert fast.height and fast.equals(want, null_equal=True)
