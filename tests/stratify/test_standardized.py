"""Age/sex-standardised rates and O/E beside the crude rate and gap.

Independent figures: the PHE workbook ``testresults_DSR`` (testdata_multiarea, ESP 2013, Dobson),
reached here through the whole member-level path (members -> cells -> DSR); the US 2000 standard
million (NCHS Statistical Notes 20: 19 groups summing to 1,000,000); and the classical indirect
standardisation against the run's own band rates, which a logistic model saturated in age band
reproduces exactly (oracle: ``stats.rates.indirectly_standardised_ratio``, tested against PHE ISR).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from equity_pipeline import standardized as st
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.stats.rates import indirectly_standardised_ratio
from equity_pipeline.stratify import public_rates, stratified_counts

PHE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "phe_indicator_methods" / "xlsx_as_csv"
ESP_BANDS = tuple(range(0, 95, 5))


def _run(rows: list[tuple[str, int, str, int, int]], **options):
    """rows: (stratum, age, sex, members, events) -> (table, info) through public_rates and standardized_rates."""
    ids, strata, ages, sexes, y = [], [], [], [], []
    k = 0
    for stratum, age, sex, n, x in rows:
        for i in range(n):
            ids.append(f"M{k:07d}"), strata.append(stratum), ages.append(age), sexes.append(sex), y.append(1.0 if i < x else 0.0)
            k += 1
    results = pl.DataFrame({"member_id": ids, "measure_id": "BCS", "measure_version": "1", "submeasure": "all", "period": "2025",
                            "age": ages, "in_denominator": True, "numerator_value": y, "denominator_value": 1.0})
    attributes = pl.DataFrame({"member_id": ids, "state": "MD", "race_ethnicity": strata, "sex": sexes})
    specs = {"BCS": load_specs()["BCS"]}
    rates = public_rates(stratified_counts(results, attributes, ("race_ethnicity",)), specs, {"BCS": "claims"})
    return st.standardized_rates(results, attributes, rates, None, specs, **options)


def test_us2000_standard_million():
    assert sum(w for *_, w in st.US2000) == 1_000_000
    w = st.standard_weights("us2000", (0, 18, 65), 0, 110)
    assert w == pytest.approx({"0-17": 13_818 + 55_317 + 72_533 + 73_032 + 72_169 * 3 / 5,
                               "18-64": 72_169 * 2 / 5 + 66_478 + 64_529 + 71_044 + 80_762 + 81_851 + 72_118 + 62_716 + 48_454 + 38_793,
                               "65+": 34_264 + 31_773 + 26_999 + 17_842 + 15_508})
    assert st.standard_weights("us2000", (0, 18, 25, 35, 45, 55, 65, 75, 85), 50, 74) == pytest.approx(
        {"45-54": 62_716, "55-64": 48_454 + 38_793, "65-74": 34_264 + 31_773})
    with pytest.raises(ValueError, match="open group 85"):
        st.standard_weights("us2000", (0, 18, 90), 0, 100)


@pytest.mark.skipif(not PHE.is_dir(), reason="../shared not present (fresh clone)")
def test_dsr_from_member_rows_matches_the_phe_workbook():
    data = pl.read_csv(PHE / "testdata_DSR_ISR__testdata_multiarea.csv")
    expected = pl.read_csv(PHE / "testdata_DSR_ISR__testresults_DSR.csv").filter(pl.col("statistic") == "dsr per 100000")
    rows = []
    # the 9-event area is a small cell (suppressed, and PHE reports no DSR for it); it is left out so
    # that no complementary suppression hides one of the two areas compared
    for area, band, count, pop in data.filter(pl.col("area") != "testdata_tiny").select("area", "ageband", "count", "pop").iter_rows():
        lo = int(band.split("-")[0].rstrip("+"))
        rows.append((area, lo, "Female", int(pop), int(count or 0)))   # a missing count is 0 (PHE na.zero)
    table, info = _run(rows, standard="esp2013", age_bands=ESP_BANDS)
    assert info["standard"] == "esp2013"
    for area in ("testdata_big", "testdata_small"):
        want = expected.filter(pl.col("area") == area).row(0, named=True)
        got = table.filter(pl.col("stratum") == area).row(0, named=True)
        assert got["standardized_rate"] * 100_000 == pytest.approx(want["value"], rel=1e-9)
        assert got["standardized_ci_lower"] * 100_000 == pytest.approx(want["lower95_0cl"], rel=1e-9)
        assert got["standardized_ci_upper"] * 100_000 == pytest.approx(want["upper95_0cl"], rel=1e-9)


def test_o_over_e_with_a_saturated_age_model_is_classical_indirect_standardisation():
    # two age bands, women only: the logistic model on band is saturated, fitted = the run's band rates
    rows = [("A", 30, "Female", 200, 60), ("A", 60, "Female", 50, 30), ("B", 30, "Female", 60, 24), ("B", 60, "Female", 190, 120)]
    table, info = _run(rows, age_bands=(0, 45))
    assert info["models"]["BCS/all"]["method"] == "logistic"
    ref_counts, ref_pops = [60 + 24, 30 + 120], [260, 240]
    for stratum, pops, obs in (("A", [200, 50], [60, 30]), ("B", [60, 190], [24, 120])):
        want = indirectly_standardised_ratio(obs, pops, ref_counts, ref_pops)
        got = table.filter(pl.col("stratum") == stratum).row(0, named=True)
        assert got["oe_ratio"] == pytest.approx(want.estimate, rel=1e-6)
        assert got["oe_ci_lower"] == pytest.approx(want.ci_lower, rel=1e-6) and got["oe_ci_upper"] == pytest.approx(want.ci_upper, rel=1e-6)
    overall = table.filter(pl.col("stratifier") == "overall").row(0, named=True)
    assert overall["oe_ratio"] == pytest.approx(1.0)   # in-sample


def test_run_standard_age_sex_and_gaps():
    # B is older; within each age x sex cell both groups have the same rate -> standardised gap 0, crude gap not
    rows = [("A", 30, "Female", 100, 20), ("A", 30, "Male", 100, 20), ("A", 70, "Female", 20, 16), ("A", 70, "Male", 20, 16),
            ("B", 30, "Female", 20, 4), ("B", 30, "Male", 20, 4), ("B", 70, "Female", 100, 80), ("B", 70, "Male", 100, 80)]
    table, _ = _run(rows, age_bands=(0, 50))
    # the reference of the gaps comes from the disparity table; without one, gaps are null
    assert table["reference_stratum"].null_count() == table.height
    a, b, overall = (table.filter(pl.col("stratum") == s).row(0, named=True) for s in ("A", "B", "all"))
    assert overall["standardized_rate"] == pytest.approx(overall["crude_rate"])   # run standard: overall = crude
    assert a["standardized_rate"] == pytest.approx(b["standardized_rate"])
    assert a["crude_rate"] == pytest.approx(72 / 240) and b["crude_rate"] == pytest.approx(168 / 240)


def test_gap_columns_against_the_disparity_reference():
    rows = [("A", 30, "Female", 100, 20), ("A", 70, "Female", 20, 16), ("B", 30, "Female", 20, 4), ("B", 70, "Female", 100, 80)]
    table, _ = _run(rows, age_bands=(0, 50))
    disparities = table.filter(pl.col("stratifier") != "overall").select(
        "measure_id", "submeasure", "unit_level", "unit_id", "stratifier", reference_stratum=pl.lit("A"))
    specs = {"BCS": load_specs()["BCS"]}
    # rerun with a reference table saying A is the reference
    ids, strata, ages, y = [], [], [], []
    k = 0
    for stratum, age, _, n, x in rows:
        for i in range(n):
            ids.append(f"M{k:05d}"), strata.append(stratum), ages.append(age), y.append(1.0 if i < x else 0.0)
            k += 1
    results = pl.DataFrame({"member_id": ids, "measure_id": "BCS", "measure_version": "1", "submeasure": "all", "period": "2025",
                            "age": ages, "in_denominator": True, "numerator_value": y, "denominator_value": 1.0})
    attributes = pl.DataFrame({"member_id": ids, "state": "MD", "race_ethnicity": strata, "sex": "Female"})
    pub = public_rates(stratified_counts(results, attributes, ("race_ethnicity",)), specs, {"BCS": "claims"})
    table, _ = st.standardized_rates(results, attributes, pub, disparities, specs, age_bands=(0, 50))
    b = table.filter((pl.col("stratum") == "B") & (pl.col("unit_level") == "population")).row(0, named=True)
    a = table.filter((pl.col("stratum") == "A") & (pl.col("unit_level") == "population")).row(0, named=True)
    assert b["reference_stratum"] == "A"
    assert b["crude_difference"] == pytest.approx(84 / 120 - 36 / 120)
    assert b["standardized_difference"] == pytest.approx(b["standardized_rate"] - a["standardized_rate"])
    assert b["standardized_difference"] == pytest.approx(0.0, abs=1e-12) and b["crude_difference"] > 0.3
    assert b["crude_ratio"] == pytest.approx(84 / 36)


def test_empty_cells_and_suppression_follow_public_rates():
    rows = [("A", 30, "Female", 100, 40), ("A", 70, "Female", 100, 50), ("B", 30, "Female", 200, 100), ("E", 30, "Female", 80, 30),
            ("E", 70, "Female", 80, 40), ("C", 30, "Female", 5, 2)]
    table, _ = _run(rows, age_bands=(0, 50))
    get = lambda s: table.filter((pl.col("stratum") == s) & (pl.col("unit_level") == "population")).row(0, named=True)  # noqa: E731
    b = get("B")   # nobody aged 50+: no standardised rate, the crude one stays
    assert b["standardized_rate"] is None and b["standardized_note"] == "empty_cell" and b["crude_rate"] == pytest.approx(0.5)
    c, e = get("C"), get("E")   # C small, E its complement (the smallest other stratum)
    assert c["suppressed"] and c["crude_rate"] is None and c["oe_ratio"] is None
    # the one public reason: whether E is small or complementary is not told (suppression.PUBLIC_REASON)
    assert e["suppressed"] and e["suppression_reason"] == "cell-size policy" and e["standardized_rate"] is None
    assert c["suppression_reason"] == "cell-size policy"
    assert get("A")["standardized_rate"] is not None


def test_generated_run_table_and_leak_check(generated_bcs):
    from datetime import date

    from equity_pipeline import pipeline
    from equity_pipeline.config import config_from_dict
    from tests.stratify.conftest import SETTINGS

    _, layout, _ = generated_bcs
    meta = pipeline.build_standardized_rates(layout, config_from_dict(SETTINGS, run_date=date(2026, 11, 22)))
    assert meta["revealed"] == 0 and meta["standardized"] > 0 and meta["oe"] > 0
    table = pl.read_parquet(layout.standardized_rates)
    assert table.columns == st.STANDARDIZED_COLUMNS
    assert set(table["stratifier"]) == {"overall", "race_ethnicity"}
    shown = table.filter(~pl.col("suppressed") & (pl.col("stratifier") != "overall") & pl.col("crude_rate").is_not_null())
    assert shown["crude_difference"].null_count() < shown.height   # gaps next to the adjusted ones
    # tamper: a value on a suppressed row is caught
    tampered = table.with_columns(pl.when(pl.col("suppressed")).then(0.5).otherwise(pl.col("crude_rate")).alias("crude_rate"))
    tampered.write_parquet(layout.standardized_rates)
    assert pipeline.standardized_leaks(layout) > 0
    table.write_parquet(layout.standardized_rates)
    assert pipeline.standardized_leaks(layout) == 0


def test_assets_are_registered_with_blocking_checks():
    import dagster as dg

    from assets.constants import STRATIFICATION_GROUP
    from assets.definitions import ALL_ASSETS, defs

    graph = defs.resolve_asset_graph()
    for name, check, parents in (("standardized_rates", "no_suppressed_cell_revealed", {"public_rates", "disparities"}),
                                 ("imputed_race_rates", "no_small_effective_cells", {"public_rates", "stratified_counts"})):
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == STRATIFICATION_GROUP
        assert {dg.AssetKey(p) for p in parents} <= node.parent_keys
        asset = next(a for a in ALL_ASSETS if dg.AssetKey(name) in a.keys)
        assert {(s.name, s.blocking) for s in asset.check_specs} == {(check, True)}


def _run_with_comorbidity(rows: list[tuple[str, int, int, int, int]], **options):
    """rows: (stratum, age, comorbidities, members, events), women only -> (table, info); the
    comorbidity frame lists only members with at least one comorbidity (the others must count 0)."""
    ids, strata, ages, y, com = [], [], [], [], {}
    for stratum, age, c, n, x in rows:
        for i in range(n):
            mid = f"M{len(ids):07d}"
            ids.append(mid), strata.append(stratum), ages.append(age), y.append(1.0 if i < x else 0.0)
            if c:
                com[mid] = c
    results = pl.DataFrame({"member_id": ids, "measure_id": "BCS", "measure_version": "1", "submeasure": "all", "period": "2025",
                            "age": ages, "in_denominator": True, "numerator_value": y, "denominator_value": 1.0})
    attributes = pl.DataFrame({"member_id": ids, "state": "MD", "race_ethnicity": strata, "sex": "Female"})
    specs = {"BCS": load_specs()["BCS"]}
    rates = public_rates(stratified_counts(results, attributes, ("race_ethnicity",)), specs, {"BCS": "claims"})
    disparities = rates.filter(pl.col("stratifier") == "race_ethnicity").select(
        "measure_id", "submeasure", "unit_level", "unit_id", "stratifier", reference_stratum=pl.lit("A")).unique()
    comorbidities = pl.DataFrame({"member_id": list(com), "comorbidities": list(com.values())}, schema={"member_id": pl.String,
                                                                                                       "comorbidities": pl.Int64})
    return st.standardized_rates(results, attributes, rates, disparities, specs, age_bands=(0, 60), comorbidities=comorbidities, **options)


def test_comorbidity_adjusted_o_over_e_removes_a_gap_driven_by_comorbidity():
    # the outcome depends on comorbidity only (0 -> 20 %, 2 -> 60 %), the same at both ages;
    # B carries far more comorbidity than A: a large crude gap that risk adjustment explains away
    rows = [("A", 55, 0, 100, 20), ("A", 65, 0, 100, 20), ("A", 55, 2, 25, 15), ("A", 65, 2, 25, 15),
            ("B", 55, 0, 25, 5), ("B", 65, 0, 25, 5), ("B", 55, 2, 100, 60), ("B", 65, 2, 100, 60)]
    table, info = _run_with_comorbidity(rows)
    model = info["models"]["BCS/all"]
    assert model["method"] == "logistic" and "comorbidities" in model["coefficients"] and model["comorbidity_cap"] == 4
    assert model["coefficients"]["comorbidities"] > 0
    get = lambda s: table.filter((pl.col("stratum") == s) & (pl.col("unit_level") == "population")).row(0, named=True)  # noqa: E731
    a, b, overall = get("A"), get("B"), get("all")
    assert b["risk_model"] == "age band, comorbidity count"   # sex does not vary here (women only): dropped
    assert a["crude_rate"] == pytest.approx(70 / 250) and b["crude_rate"] == pytest.approx(130 / 250)
    assert b["crude_difference"] == pytest.approx(60 / 250)   # the unadjusted gap stays beside the adjusted one
    # outcome depends only on comorbidity: every group's expected count is its observed one
    assert a["oe_ratio"] == pytest.approx(1.0, abs=1e-6) and b["oe_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert overall["oe_ratio"] == pytest.approx(1.0)
    # without the comorbidity term the O/E keeps the crude gap, in the crude direction
    plain, _ = _run([(s, age, "Female", n, x) for s, age, _, n, x in rows], age_bands=(0, 60))
    pa, pb = (plain.filter((pl.col("stratum") == s) & (pl.col("unit_level") == "population")).row(0, named=True) for s in "AB")
    assert pa["risk_model"] == "age band" and pa["oe_ratio"] == pytest.approx(70 / 100) and pb["oe_ratio"] == pytest.approx(130 / 100)
    # the adjusted gap shrinks toward zero (same direction, B above A, before adjustment)
    assert pb["oe_ratio"] - pa["oe_ratio"] == pytest.approx(0.6) and abs(b["oe_ratio"] - a["oe_ratio"]) < 1e-6


def test_comorbidity_model_that_cannot_be_fitted_falls_back_to_age_sex():
    # comorbidity separates the outcome perfectly: the logistic fit fails, the age/sex model is used
    rows = [("A", 55, 0, 60, 0), ("A", 65, 0, 60, 0), ("A", 55, 1, 20, 20), ("A", 65, 1, 40, 40),
            ("B", 55, 0, 20, 0), ("B", 65, 0, 20, 0), ("B", 55, 1, 60, 60), ("B", 65, 1, 40, 40)]
    table, info = _run_with_comorbidity(rows)
    model = info["models"]["BCS/all"]
    assert model["method"] == "logistic" and "comorbidities" not in model["coefficients"]
    assert model["risk_model"].startswith("age band (comorbidity model failed: logistic fit failed")
    assert set(table["risk_model"]) == {model["risk_model"]}
    assert table.filter(pl.col("stratifier") == "overall")["oe_ratio"].to_list() == pytest.approx([1.0, 1.0])
