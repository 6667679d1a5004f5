"""Every measure the generator plants is recovered by the pipeline (issue 4's done-when).

One generated dataset (messy, so quarantine and claim adjudication are exercised) goes through the
pipeline's own steps - the functions the Dagster assets call, in asset order, without the Dagster run
machinery, which the end-to-end test already covers - and for every planted measure:

* the published (suppressed) race/ethnicity rates at the population unit contain the planted value in
  their 95% CI for at least 90% of the unsuppressed groups, every row of the measure included;
* the restricted, unsuppressed counts equal the generator's ``expected`` counts exactly, cell by cell;
* the check has teeth: the same rates judged against a shifted truth fail it.

The planted value of a group is ``truth.json["measures"][ID]["rates"]`` (per stratum, or per row and
stratum); for the ``all`` row of a measure with age rows it is the group's ``expected_rate`` (the
mean planted probability over the members in that group's denominator). The generator plants with
fixed margins (``generate/margins.py``), so group totals equal the planted rates up to rounding and
the CI check tests the pipeline rather than sampling luck.
"""
from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest

from equity_pipeline import pipeline as steps
from equity_pipeline.config import load_config
from equity_pipeline.generate import generate
from equity_pipeline.generate.planted import planted_measures
from equity_pipeline.layout import OutputLayout
from equity_pipeline.suites import TABLES

MEMBERS = 40_000  # most groups publishable for most measures; about 40 s on 2 cores
SEED = 20_240_601
PLANTED = [m.MEASURE_ID for m in planted_measures()]
# sparse measures (one birth year, index stays, admissions): fewer groups reach 11 events at this size;
# every other measure needs at least 8 published groups (of 11 strata, times its rows)
MIN_PUBLISHED = {"PQI90": 5, "PCR": 4, "CIS": 6}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("planted")
    generate(MEMBERS, SEED, root / "input", messy_share=0.02)
    cfg_file = root / "config.yaml"
    cfg_file.write_text(
        "measurement_year: 2025\nrun_date: 2026-11-22\nstratifiers: [race_ethnicity]\n"
        f"measures: [{', '.join(PLANTED)}]\n", encoding="utf-8")
    config = load_config(cfg_file, run_date=date(2026, 11, 22))
    layout = OutputLayout(root / "out")
    for table in ("members", *[t for t in TABLES if t != "members"]):
        steps.ingest(table, root / "input", layout, config)
    steps.build_events(layout, config)
    for measure in config.measures:
        steps.evaluate_measure(measure, layout, config)
    steps.build_member_attributes(layout, config)
    steps.build_stratified_counts(layout, config)
    steps.build_public_rates(layout, config)
    population = (pl.col("unit_level") == "population") & (pl.col("stratifier") == "race_ethnicity")
    return {
        "truth": json.loads((root / "input" / "truth.json").read_text()),
        "rates": pl.read_parquet(layout.rates).filter(population),
        "counts": pl.read_parquet(layout.stratified_counts).filter(population),
    }


def planted_value(entry: dict, submeasure: str, stratum: str) -> float:
    rates = entry["rates"]
    if not entry.get("rows"):
        return rates[stratum]
    if submeasure in rates:
        return rates[submeasure][stratum]
    return entry["expected"][submeasure][stratum]["expected_rate"]


def coverage(entry: dict, rates: pl.DataFrame, shift: float = 0.0) -> tuple[int, int, list]:
    published = rates.filter(~pl.col("suppressed"))
    inside, misses = 0, []
    for row in published.iter_rows(named=True):
        target = planted_value(entry, row["submeasure"], row["stratum"]) * (1.0 + shift)
        if row["ci_lower"] <= target <= row["ci_upper"]:
            inside += 1
        else:
            misses.append((row["submeasure"], row["stratum"], round(target, 4), round(row["rate"], 4),
                           round(row["ci_lower"], 4), round(row["ci_upper"], 4)))
    return inside, published.height, misses


def test_every_planted_measure_has_truth_and_public_rates(run):
    assert set(PLANTED) <= set(run["truth"]["measures"])
    assert set(PLANTED) <= set(run["rates"]["measure_id"].unique())


@pytest.mark.parametrize("measure", PLANTED)
def test_planted_value_inside_published_ci(run, measure):
    entry = run["truth"]["measures"][measure]
    inside, published, misses = coverage(entry, run["rates"].filter(pl.col("measure_id") == measure))
    assert published >= MIN_PUBLISHED.get(measure, 8), f"only {published} groups published"
    assert inside / published >= 0.9, misses


@pytest.mark.parametrize("measure", PLANTED)
def test_restricted_counts_equal_expected_truth_exactly(run, measure):
    entry = run["truth"]["measures"][measure]
    counts = run["counts"].filter(pl.col("measure_id") == measure)
    rows = ["all", *entry.get("rows", [])] if entry.get("rows") else ["all"]
    checked = 0
    for row in rows:
        block = entry["expected"][row] if entry.get("rows") else entry["expected"]
        for stratum, want in block.items():
            cell = counts.filter((pl.col("submeasure") == row) & (pl.col("stratum") == stratum))
            if entry.get("kind") == "cost":  # dollars (and member months): sums of cents, so within a dollar
                got = (float(cell["numerator"].sum()), float(cell["denominator"].sum()))
                assert got == (pytest.approx(want["numerator"], abs=1.0), pytest.approx(want["denominator"], abs=1.0)), (stratum, got)
            elif entry.get("kind") == "event_rate":
                expected = (want["events"], want[entry["exposure"]])
                got = (int(cell["numerator"].sum()), float(cell["denominator"].sum()))
                assert got[0] == expected[0] and got[1] == pytest.approx(expected[1], abs=1e-6), (row, stratum, got, expected)
            else:
                got = (int(cell["numerator"].sum()), int(cell["denominator"].sum()))
                assert got == (want["numerator"], want["denominator"]), (row, stratum, got)
            checked += 1
    assert checked >= 11


@pytest.mark.parametrize("measure", ["BCS", "CCS", "CBP", "W30", "IET", "ED_VISITS", "PQI90", "PCR", "SDOH_POSITIVE",
                                     "TCOC_PMPM", "PRIMARY_CARE_SHARE"])
def test_the_check_fails_against_a_shifted_truth(run, measure):
    """A planted value 50 % off (a biased pipeline, or a wrong truth) must not pass."""
    entry = run["truth"]["measures"][measure]
    inside, published, _ = coverage(entry, run["rates"].filter(pl.col("measure_id") == measure), shift=0.5)
    assert inside / published < 0.9
