"""truth.json is complete, and the planted BCS truth is recovered from the files by an independent count."""
from __future__ import annotations

import json
import math

import polars as pl
import pytest

from equity_pipeline.generate import GENERATOR_VERSION, TABLES
from equity_pipeline.generate.geography import valid_county_fips
from equity_pipeline.generate.planted import planted_measures
from equity_pipeline.standards.race_ethnicity import RACE_ETHNICITY_STRATA

from .bcs_reference import bcs_counts, read


def load_truth(out) -> dict:
    return json.loads((out / "truth.json").read_text())


def test_truth_json_layout(messy_run):
    truth = load_truth(messy_run)
    assert truth["seed"] == 11 and truth["members"] == 12_000 and truth["measurement_year"] == 2025
    assert truth["generator_version"] == GENERATOR_VERSION
    assert set(truth["row_counts"]) == set(TABLES)
    for table in TABLES:
        assert truth["row_counts"][table] == read(messy_run, table).height
    bcs = truth["measures"]["BCS"]
    assert bcs["stratifier"] == "race_ethnicity" and bcs["depends_only_on"] == "race_ethnicity"
    assert set(bcs["rates"]) == set(RACE_ETHNICITY_STRATA)
    assert len(set(bcs["rates"].values())) > 5  # distinct planted rates
    for key in ("planted", "expected"):
        assert set(bcs[key]) == set(RACE_ETHNICITY_STRATA)
    assert set(bcs["exclusion_counts"]) == {"bilateral_mastectomy", "hospice", "death"}
    assert all(v > 0 for v in bcs["exclusion_counts"].values())
    members = pl.read_parquet(messy_run / bcs["member_file"])
    assert int(members["numerator"].sum()) == bcs["planted_total"]["numerator"]
    assert int(members.filter(~pl.col("quarantined"))["denominator"].sum()) == bcs["expected_total"]["denominator"]
    assert set(truth["defects"]) == set(truth["defect_details"])


@pytest.mark.parametrize("run", ["messy_run", "clean_run"])
def test_independent_count_equals_expected_truth_exactly(run, request):
    out = request.getfixturevalue(run)
    expected = load_truth(out)["measures"]["BCS"]["expected"]
    got = bcs_counts(out, set(valid_county_fips()))
    for stratum in RACE_ETHNICITY_STRATA:
        g = got.get(stratum, dict(eligible=0, excluded=0, denominator=0, numerator=0))
        assert g == {k: expected[stratum][k] for k in g}, stratum


def test_clean_run_expected_equals_planted(clean_run):
    bcs = load_truth(clean_run)["measures"]["BCS"]
    assert bcs["expected"] == bcs["planted"]


def test_planted_rates_recovered_within_binomial_tolerance(messy_run):
    bcs = load_truth(messy_run)["measures"]["BCS"]
    got = bcs_counts(messy_run, set(valid_county_fips()))
    checked = 0
    for stratum, p in bcs["rates"].items():
        n = got.get(stratum, {}).get("denominator", 0)
        if n < 30:
            continue
        rate = got[stratum]["numerator"] / n
        assert abs(rate - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1 / n, (stratum, rate, p, n)
        checked += 1
    assert checked >= 6


# ---------------------------------------------------------------------------------- every planted measure
PLANTED = [m.MEASURE_ID for m in planted_measures()]


def _blocks(entry: dict, key: str) -> dict[str, dict]:
    """{row: {stratum: counts}} whatever the layout (measures without rows have the single row 'all')."""
    return entry[key] if entry.get("rows") else {"all": entry[key]}


@pytest.mark.parametrize("measure", PLANTED)
def test_planted_measure_truth_layout(messy_run, measure):
    truth = load_truth(messy_run)
    entry = truth["measures"][measure]
    assert entry["measure_id"] == measure and entry["stratifier"] == "race_ethnicity"
    planted_rates = entry["rates"] if entry.get("rows") and isinstance(next(iter(entry["rates"].values())), dict) else {"all": entry["rates"]}
    for row, rates in planted_rates.items():
        assert set(rates) == set(RACE_ETHNICITY_STRATA), row
        assert len(set(rates.values())) >= 4, f"{row}: planted rates must differ by stratum"
    for key in ("planted", "expected"):
        blocks = _blocks(entry, key)
        assert set(blocks) == {"all", *entry.get("rows", [])}
        for block in blocks.values():
            assert set(block) == set(RACE_ETHNICITY_STRATA)
    members = pl.read_parquet(messy_run / entry["member_file"])
    if entry.get("kind") == "cost":
        assert members.filter(pl.col("denominator")).height == sum(b["members"] for b in entry["planted"].values())
    elif entry.get("kind") == "event_rate":
        assert int(members.filter(pl.col("denominator"))["events"].sum()) == entry["planted_total"]["events"]
        assert sum(b["events"] for b in entry["expected"].values()) == entry["expected_total"]["events"]
    else:
        main = members.filter(pl.col("submeasure") == "all") if "submeasure" in members.columns and entry.get("rows") \
            and members["submeasure"].is_in(["all"]).any() else members
        assert int(main["numerator"].sum()) == entry["planted_total"]["numerator"]
        assert int(main.filter(~pl.col("quarantined"))["denominator"].sum()) == entry["expected_total"]["denominator"]
        assert sum(b["denominator"] for b in _blocks(entry, "expected")["all"].values()) == entry["expected_total"]["denominator"]


def test_clean_run_expected_equals_planted_for_every_measure(clean_run):
    truth = load_truth(clean_run)
    assert set(PLANTED) <= set(truth["measures"])
    for measure in PLANTED:
        entry = truth["measures"][measure]
        assert entry["expected"] == entry["planted"], measure


@pytest.mark.parametrize("measure", PLANTED)
def test_fixed_margins_hold(messy_run, measure):
    """Numerators (events) per group equal the planted probability (rate) summed over the group's
    denominator (exposure), up to rounding per chunk and the odd member whose evidence found no day."""
    entry = load_truth(messy_run)["measures"][measure]
    checked = 0
    for row, block in _blocks(entry, "planted").items():
        for stratum, cell in block.items():
            if entry.get("kind") == "cost":  # exact to the cent in `planted` unless a tiny group already overspent
                if cell["denominator"]:
                    assert cell["rate"] == pytest.approx(entry["rates"][stratum], rel=1e-4) or cell["members"] < 100, (stratum, cell)
                    checked += 1
                continue
            if entry.get("kind") == "event_rate":
                rate = entry["rates"][stratum] / entry["rate_per"]
                want, got, size = rate * cell[entry["exposure"]], cell["events"], cell[entry["exposure"]] * rate
            else:
                p = cell["expected_rate"] if "expected_rate" in cell else entry["rates"][stratum]
                if not cell["denominator"] or p is None:
                    continue
                want, got, size = p * cell["denominator"], cell["numerator"], cell["denominator"]
            assert abs(got - want) <= 2.5 + 0.02 * size, (row, stratum, got, want)
            checked += 1
    assert checked >= 8
