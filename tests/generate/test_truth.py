"""truth.json is complete, and the planted BCS truth is recovered from the files by an independent count."""
from __future__ import annotations

import json
import math

import polars as pl
import pytest

from equity_pipeline.generate import GENERATOR_VERSION, TABLES
from equity_pipeline.generate.geography import valid_county_fips
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
