"""Planted truth: the generator plants BCS screening rates per race/ethnicity stratum (truth.json);
the published disparities against White must recover them."""
from __future__ import annotations

import json

import polars as pl
import pytest

from equity_pipeline import pipeline
from equity_pipeline.disparity_tables import DISPARITY_COLUMNS, SUMMARY_COLUMNS


def bcs_race(layout, name: str) -> pl.DataFrame:
    return pl.read_parquet(getattr(layout, name)).filter(
        (pl.col("measure_id") == "BCS") & (pl.col("unit_level") == "population") & (pl.col("stratifier") == "race_ethnicity"))


def test_ratio_ci_covers_the_planted_ratio_against_white(generated_bcs):
    input_dir, layout, _ = generated_bcs
    truth = json.loads((input_dir / "truth.json").read_text())["measures"]["BCS"]
    planted, expected = truth["rates"], truth["expected"]
    table = bcs_race(layout, "disparities")
    assert set(table["reference_stratum"]) == {"White"} and set(table["reference_policy"]) == {"White"}
    compared = table.filter(pl.col("status") == "compared")
    assert compared.height >= 3, compared.select("stratum", "status")
    inside = []
    for r in compared.iter_rows(named=True):
        g, w = expected[r["stratum"]], expected["White"]
        # independent arithmetic from the counts a correct pipeline finds (truth.json "expected")
        assert r["rate"] == pytest.approx(g["numerator"] / g["denominator"])
        assert r["reference_rate"] == pytest.approx(w["numerator"] / w["denominator"])
        assert r["ratio"] == pytest.approx((g["numerator"] / g["denominator"]) / (w["numerator"] / w["denominator"]))
        assert r["difference"] == pytest.approx(g["numerator"] / g["denominator"] - w["numerator"] / w["denominator"])
        true_ratio = planted[r["stratum"]] / planted["White"]
        inside.append(r["ratio_ci_lower"] <= true_ratio <= r["ratio_ci_upper"])
    # 95% intervals: at most one of the few published groups may miss the planted ratio by chance
    assert sum(inside) >= len(inside) - 1, list(zip(compared["stratum"], compared["ratio"], inside))


def test_unknown_and_declined_are_shown_but_not_in_the_family(generated_bcs):
    _, layout, _ = generated_bcs
    table = bcs_race(layout, "disparities")
    for stratum in ("Unknown", "Declined"):
        r = table.filter(pl.col("stratum") == stratum).row(0, named=True)
        assert r["status"] in ("unknown_group", "suppressed")
        assert r["p_adjusted"] is None and not r["is_reference"]
    summary = pl.read_parquet(layout.disparity_summary)
    assert not summary["strata_used"].explode().is_in(["Unknown", "Declined", "Not screened"]).any()


def test_outputs_are_complete_aggregate_and_leak_free(generated_bcs):
    _, layout, meta = generated_bcs
    table, summary = pl.read_parquet(layout.disparities), pl.read_parquet(layout.disparity_summary)
    rates = pl.read_parquet(layout.rates)
    assert dict(table.schema) == DISPARITY_COLUMNS and dict(summary.schema) == SUMMARY_COLUMNS
    # one disparity row per non-overall rates row, the intersection included
    assert table.height == rates.filter(pl.col("stratifier") != "overall").height
    assert "race_ethnicity x rurality" in set(table["stratifier"])
    assert pipeline.disparity_leaks(layout) == 0
    assert pipeline.published_small_cells(layout) == 0
    hidden = rates.filter(pl.col("suppressed")).height - rates.filter(pl.col("suppressed") & (pl.col("stratifier") == "overall")).height
    assert table["suppressed"].sum() == hidden > 0
    # metadata is counts only
    assert all(isinstance(v, int) for v in meta.values()) and meta["rows"] == table.height
    # no member id anywhere in the public tables
    ids = set(pl.read_parquet(layout.table("members"))["member_id"].head(500))
    for frame in (table, summary):
        for col, dtype in frame.schema.items():
            if dtype == pl.String:
                assert not frame[col].is_in(list(ids)).any(), col
    # every summary row names the strata it used, all published in public/rates
    assert (summary["groups_used"] == summary["strata_used"].list.len()).all()


def test_every_stratifier_partitions_each_measure(generated_bcs):
    _, layout, _ = generated_bcs
    counts = pl.read_parquet(layout.stratified_counts)
    overall = counts.filter(pl.col("stratifier") == "overall").select("measure_id", "unit_level", "unit_id", total="denominator")
    sums = (counts.filter(pl.col("stratifier") != "overall").group_by("measure_id", "unit_level", "unit_id", "stratifier")
            .agg(pl.col("denominator").sum()).join(overall, on=["measure_id", "unit_level", "unit_id"]))
    assert sums.height > 0 and (sums["denominator"] == sums["total"]).all()
    # state units add up to the population for every stratum
    states = (counts.filter(pl.col("unit_level") == "state").group_by("measure_id", "stratifier", "stratum")
              .agg(pl.col("denominator").sum()))
    pop = counts.filter(pl.col("unit_level") == "population").select("measure_id", "stratifier", "stratum", total="denominator")
    assert states.join(pop, on=["measure_id", "stratifier", "stratum"]).select((pl.col("denominator") == pl.col("total")).all()).item()
