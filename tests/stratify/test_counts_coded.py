"""The stratified counts and strata identities group on integer codes of the strata
(``stratify._Coded``); this checks them, bit for bit, against the plain computation on the labels
(the implementation they replaced, kept here as the oracle) on a synthetic population built to be
awkward: members absent from the attributes, null labels, a label containing the intersection
separator, sub-measures rolled up into ``all``, cost sums that are not whole numbers (float order
matters), expected values for one measure only, measures whose rows are not contiguous."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from equity_pipeline import stratify
from equity_pipeline.standards.race_ethnicity import UNKNOWN
from equity_pipeline.stratify import INTERSECTION_SEPARATOR, KEY, STRATIFIERS, SUMS, all_stratifiers, stratum_expr

STRATS = ("race_ethnicity", "language", "county", "rurality", "payer", "sex")
INTERSECTIONS = (("race_ethnicity", "language"), ("county", "rurality"))


# ------------------------------------------------------------------ the oracle: group on the labels
def _ref_denominators(results, attributes, stratifiers):
    used = sorted({STRATIFIERS[part] for s in stratifiers for part in s.split(INTERSECTION_SEPARATOR)})
    attributes = attributes.select(c for c in attributes.columns if c in {"member_id", "state", *used})
    shadowed = [c for c in attributes.columns if c != "member_id" and c in results.columns]
    base = (results.filter(pl.col("in_denominator")).drop(*shadowed)
            .join(attributes, on="member_id", how="left").with_columns(pl.col(c).fill_null(UNKNOWN) for c in ("state", *used)))
    has_all = base.filter(pl.col("submeasure") == "all")["measure_id"].unique().to_list()
    base = pl.concat([base, base.filter((pl.col("submeasure") != "all") & ~pl.col("measure_id").is_in(has_all)).with_columns(submeasure=pl.lit("all"))])
    return base.sort("measure_id", "submeasure", "member_id", "numerator_value", "denominator_value")


def _ref_counts(base, stratifiers):
    expected = {"expected": pl.when(pl.col("expected_value").is_not_null().any()).then(pl.col("expected_value").sum())}
    parts = []
    for unit_level, unit_id in ((pl.lit("population"), pl.lit("all")), (pl.lit("state"), pl.col("state"))):
        for stratifier in ("overall", *stratifiers):
            stratum = pl.lit("all") if stratifier == "overall" else stratum_expr(stratifier)
            parts.append(base.group_by("measure_id", "measure_version", "submeasure", "period", unit_level.alias("unit_level"),
                                       unit_id.alias("unit_id"), stratum.alias("stratum"), maintain_order=True)
                         .agg(members=pl.len().cast(pl.Float64), denominator=pl.col("denominator_value").sum(),
                              numerator=pl.col("numerator_value").sum(), sum_num_sq=(pl.col("numerator_value") ** 2).sum(),
                              sum_num_den=(pl.col("numerator_value") * pl.col("denominator_value")).sum(),
                              sum_den_sq=(pl.col("denominator_value") ** 2).sum(), **expected)
                         .with_columns(stratifier=pl.lit(stratifier)))
    return pl.concat(parts, how="diagonal").select(*KEY, *SUMS, "expected").sort(KEY)


def _ref_identities(base, names):
    """Every (t, cells) identity by brute force over the labels: t of stratifier T is the sum of
    strata s of S when the members of t are exactly the union of the s-strata lying wholly in t."""
    labels = base.select("measure_id", "submeasure", "period", "state", *[stratum_expr(n).alias(n) for n in names])
    frames = [labels.with_columns(unit_level=pl.lit("population"), unit_id=pl.lit("all")),
              labels.with_columns(unit_level=pl.lit("state"), unit_id=pl.col("state"))]
    rows = []
    for (key, group) in pl.concat(frames).group_by(stratify.IDENTITY_KEY):
        for outer in names:
            for inner in names:
                if inner == outer:
                    continue
                pure = group.group_by(inner).agg(pl.col(outer).n_unique().alias("u"), pl.col(outer).first().alias("t"), n=pl.len())
                pure = pure.filter(pl.col("u") == 1)
                totals = dict(group.group_by(outer).len().iter_rows())
                covered = pure.group_by("t").agg(cells=pl.col(inner), n=pl.col("n").sum())
                for t, cells, n in covered.iter_rows():
                    if totals.get(t) == n:
                        rows.append((*key, outer, t, inner, sorted(cells)))
    rows.sort(key=lambda r: r[:8])
    out = []
    for identity, (*key, outer, t, inner, cells) in enumerate(rows):
        out.append((*key, identity, "total", outer, t))
        out.extend((*key, identity, "cell", inner, c) for c in cells)
    schema = {**{k: pl.String for k in stratify.IDENTITY_KEY}, "identity": pl.UInt32, "role": pl.String, "stratifier": pl.String, "stratum": pl.String}
    return pl.DataFrame(out, schema=schema, orient="row").sort("identity", "role", "stratum")


# ------------------------------------------------------------------ an awkward population
def _population(seed: int = 11, members: int = 1500):
    rng = np.random.default_rng(seed)
    ids = [f"M{i:05d}" for i in range(members)]

    def pick(values, p=None):
        return [values[i] for i in rng.choice(len(values), members, p=p)]

    counties = ["01001", "01003", "01005", "13001", "13003", UNKNOWN]
    attrs = pl.DataFrame({
        "member_id": ids,
        "race_ethnicity": pick(["White", "Black or African American", "Asian", "Hispanic or Latino", UNKNOWN, None]),
        # a label with the intersection separator: "Other | A" x "B" and "Other" x "A | B" are one stratum
        "language": pick(["English", "Spanish", "Other | A", "Other", "A | B", None], p=[.5, .2, .1, .1, .05, .05]),
        "county": pick(counties),
        "payer": pick(["Medicaid", "Medicare", "Commercial", UNKNOWN]),
        "sex": pick(["Female", "Male", UNKNOWN]),
    })
    rurality = {"01001": "Metro", "01003": "Metro", "01005": "Nonmetro rural", "13001": "Nonmetro urban", "13003": "Metro", UNKNOWN: UNKNOWN}
    attrs = attrs.with_columns(rurality=pl.col("county").replace_strict(rurality),
                               state=pl.col("county").str.slice(0, 2).replace_strict({"01": "AL", "13": "GA", "Un": UNKNOWN}))
    attrs = attrs.with_columns(pl.when(pl.col("language") == "A | B").then(pl.lit("Other")).otherwise(pl.col("race_ethnicity")).alias("race_ethnicity"))
    # 3% of the members have no attributes row at all
    attrs = attrs.filter(pl.Series(rng.random(members) > 0.03))
    frames = []
    for measure, share, kind in (("BCS", 0.5, "binary"), ("TCOC_PMPM", 0.9, "cost"), ("CHL", 0.2, "sub"), ("PCR", 0.1, "expected")):
        chosen = [m for m in ids if rng.random() < share]
        n = len(chosen)
        if kind == "cost":
            den = rng.integers(1, 13, n).astype(float)
            num = np.round(rng.gamma(1.5, 400.0, n) * den, 2)
        else:
            den = np.ones(n)
            num = (rng.random(n) < 0.4).astype(float)
        frames.append(pl.DataFrame({
            "member_id": chosen, "measure_id": measure, "measure_version": "2025", "period": "2025",
            "submeasure": ([["16-20", "21-24"][i % 2] for i in range(n)] if kind == "sub" else ["all"] * n),
            "in_denominator": rng.random(n) < 0.95, "numerator_value": num, "denominator_value": den,
            "expected_value": (rng.random(n) * 0.3 if kind == "expected" else [None] * n),
            "payer": "shadowed",   # a result column of an attribute's name: the attribute wins
        }, schema_overrides={"expected_value": pl.Float64}))
    return pl.concat(frames, how="vertical_relaxed"), attrs


@pytest.fixture(scope="module")
def population():
    return _population()


def test_counts_equal_the_label_group_bys_bit_for_bit(population):
    results, attrs = population
    names = all_stratifiers(STRATS, INTERSECTIONS)
    want = _ref_counts(_ref_denominators(results, attrs, names), names)
    got = stratify.stratified_counts(results, attrs, STRATS, INTERSECTIONS)
    assert got.schema == want.schema
    assert got.equals(want, null_equal=True)
    # the awkward parts are there: a merged intersection stratum, members without attributes, cents
    assert want.filter((pl.col("stratifier") == "race_ethnicity x language") & (pl.col("stratum") == "Other | A | B")).height
    assert want.filter((pl.col("stratifier") == "county") & (pl.col("stratum") == UNKNOWN)).height
    cost = want.filter(pl.col("measure_id") == "TCOC_PMPM")["numerator"]
    assert (cost != cost.round(0)).any()


def test_counts_and_identities_per_measure_equal_the_oracle(population):
    results, attrs = population
    names = all_stratifiers(STRATS, INTERSECTIONS)
    # rows of one measure not contiguous: the per-measure split must not depend on the row order
    shuffled = results.sample(fraction=1.0, shuffle=True, seed=3)
    want_counts = _ref_counts(_ref_denominators(results, attrs, names), names)
    per_measure = []
    offset = 0
    for measure in sorted(results["measure_id"].unique()):
        found = _ref_identities(_ref_denominators(results.filter(pl.col("measure_id") == measure), attrs, names), names)
        per_measure.append(found.with_columns(pl.col("identity") + offset))
        offset += found["identity"].n_unique()
    want = pl.concat(per_measure).sort("identity", "role", "stratum")
    for frame in (results, shuffled):
        counts, identities = stratify.counts_and_identities(frame, attrs, STRATS, INTERSECTIONS)
        assert counts.equals(want_counts, null_equal=True)
        assert identities.schema == want.schema
        assert identities.equals(want)
        assert want.filter(pl.col("stratifier") == "county").height   # counties add up to rurality classes


def test_strata_identities_alone_equal_the_oracle(population):
    results, attrs = population
    names = all_stratifiers(STRATS, INTERSECTIONS)
    bcs = results.filter(pl.col("measure_id") == "BCS")
    assert stratify.strata_identities(bcs, attrs, STRATS, INTERSECTIONS).equals(_ref_identities(_ref_denominators(bcs, attrs, names), names))


def test_whole_population_cost_sum_keeps_its_bits_at_scale():
    """A cell of every row of a large measure: polars sums one large group of cents differently
    depending on how the group is keyed (seen on the 200k benchmark), so the whole-population row keeps
    the label keys of before; a single integer key for it gives other last bits here."""
    rng = np.random.default_rng(20261201)
    n = 50_000
    ids = [f"M{i:06d}" for i in range(n)]
    attrs = pl.DataFrame({"member_id": ids, "sex": rng.choice(["Female", "Male", UNKNOWN], n), "state": "AL",
                          "county": rng.choice(["01001", "01003", "01005"], n)})
    den = rng.integers(1, 13, n).astype(float)
    results = pl.DataFrame({"member_id": ids, "measure_id": "TCOC_PMPM", "measure_version": "2025", "period": "2025",
                            "submeasure": "all", "in_denominator": True, "numerator_value": np.round(rng.gamma(1.5, 400.0, n) * den, 2),
                            "denominator_value": den, "expected_value": pl.Series([None] * n, dtype=pl.Float64)})
    names = ("sex", "county")
    want = _ref_counts(_ref_denominators(results, attrs, names), names)
    got, _ = stratify.counts_and_identities(results, attrs, names)
    # (checked when written: with the whole-population row grouped on an integer key like the other
    # cells, this comparison fails in the last bits of that row's numerator)
    assert got.equals(want, null_equal=True)
