"""Legacy two-question race/ethnicity -> combined SPD 15 codes, and the versioned rollup names."""
from __future__ import annotations

import polars as pl
import pytest

from equity_pipeline.attributes import AIC_CATEGORIES, ethnicity_stratum, race_aic_stratum
from equity_pipeline.standards.race_ethnicity import (
    ROLLUP_VERSION,
    ROLLUP_VERSIONS,
    ROLLUPS,
    combine_two_question,
    combine_two_question_value,
    race_ethnicity_stratum,
)
from equity_pipeline.stratify import STRATIFIERS

MEMBERS_CODES_REGEX = r"^(ASKU|UNK|[0-9]{4}-[0-9](\|[0-9]{4}-[0-9])*)$"  # expectations/members.json


@pytest.mark.parametrize(("race", "ethnicity", "codes"), [
    ("2106-3", "2135-2", "2106-3|2135-2"),          # CDC codes, Hispanic
    ("2106-3", "2186-5", "2106-3|2186-5"),          # CDC codes, not Hispanic
    ("2054-5", "Y", "2054-5|2135-2"),               # Y/N flags
    ("2054-5", "n", "2054-5|2186-5"),
    ("2106-3|2054-5", "No", "2106-3|2054-5|2186-5"),
    ("2106-3, 2028-9", "2148-5", "2106-3|2028-9|2148-5"),  # comma-separated race, Hispanic detail code kept
    ("2106-3|2106-3", "N", "2106-3|2186-5"),        # duplicates dropped
    ("9999-9|2106-3", "UNK", "2106-3"),             # unrecognised race code dropped; ethnicity unknown
    ("2106-3", None, "2106-3"),
    ("UNK", "Y", "2135-2"),                         # race unknown, Hispanic
    ("ASKU", "Yes", "2135-2"),
    (None, "2186-5", "2186-5"),                     # race unknown, not Hispanic
    ("ASKU", "N", "2186-5"),
    ("ASKU", "ASKU", "ASKU"),
    ("ASKU", None, "ASKU"),
    (None, "ASKU", "ASKU"),
    ("", "UNK", "UNK"),
    (None, None, "UNK"),
])
def test_two_question_to_combined_codes(race, ethnicity, codes):
    assert combine_two_question_value(race, ethnicity) == codes


def test_combined_codes_pass_the_members_suite_and_roll_up():
    frame = pl.DataFrame({
        "race": ["2106-3", "2054-5", "2106-3|2054-5", None, "ASKU", "", "2028-9"],
        "eth": ["2135-2", "N", "N", "2186-5", "ASKU", None, "Y"],
    })
    out = frame.select(codes=combine_two_question(pl.col("race"), pl.col("eth"))).with_columns(
        race_ethnicity=race_ethnicity_stratum(pl.col("codes")),
        ethnicity=ethnicity_stratum(pl.col("codes")),
        asian=race_aic_stratum(pl.col("codes"), "ASIAN"),
    )
    assert out["codes"].str.contains(MEMBERS_CODES_REGEX).all()
    assert out["race_ethnicity"].to_list() == [
        "Multiracial", "Black or African American", "Multiracial", "Unknown", "Declined", "Unknown", "Multiracial"]
    assert out["ethnicity"].to_list() == [
        "Hispanic or Latino", "Not Hispanic or Latino", "Not Hispanic or Latino", "Not Hispanic or Latino",
        "Declined", "Unknown", "Hispanic or Latino"]
    assert out["asian"][6] == "Asian alone or in combination"


def test_every_race_ethnicity_rollup_is_a_stratifier_with_a_version():
    expected = {"race_ethnicity", "ethnicity", *(f"race_aic_{k}" for k in AIC_CATEGORIES)}
    assert set(ROLLUPS) == set(ROLLUP_VERSIONS) == expected
    assert expected <= set(STRATIFIERS)
    assert all(v == ROLLUP_VERSION and v.startswith("spd15-") for v in ROLLUP_VERSIONS.values())


def test_manifest_records_the_rollup_versions(tmp_path):
    from datetime import date

    from equity_pipeline.config import config_from_dict
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.pipeline import build_manifest_dict

    layout = OutputLayout(tmp_path).prepare()
    config = config_from_dict({"measurement_year": 2025, "measures": ["BCS"]}, run_date=date(2026, 6, 1))
    manifest = build_manifest_dict(layout, config, "run-1", input_dir=None)
    assert manifest["standards"]["race_ethnicity_rollups"] == ROLLUP_VERSIONS
    assert manifest["standards"]["race_ethnicity_rollups"]["race_aic_white"] == "spd15-2024.1"
