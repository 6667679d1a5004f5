"""A small generated dataset run through the library steps the stratification assets call."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from equity_pipeline import pipeline
from equity_pipeline.config import config_from_dict
from equity_pipeline.layout import OutputLayout
from equity_pipeline.suites import TABLES

MEMBERS, SEED = 5_000, 7
SETTINGS = {
    "measures": ["BCS", "SDOH_SCREEN"],
    "stratifiers": ["race_ethnicity", "ethnicity", "language", "lep", "county", "rurality", "svi_quintile", "payer",
                    "dual_status", "sex", "age_band", "sdoh_need"],
    "intersections": [["race_ethnicity", "rurality"]],
    "reference_group": {"default": "best", "race_ethnicity": "White"},
}


@pytest.fixture(scope="session")
def generated_bcs(tmp_path_factory) -> tuple[Path, OutputLayout, object]:
    """(input folder with truth.json, output layout, config) after ingest -> BCS -> disparities."""
    from equity_pipeline.generate import generate

    root = tmp_path_factory.mktemp("stratify_generated")
    generate(MEMBERS, SEED, root / "input")
    config = config_from_dict(SETTINGS, run_date=date(2026, 11, 22))
    layout = OutputLayout(root / "out").prepare()
    for table in TABLES:  # members first (the others are checked against it)
        pipeline.ingest(table, root / "input", layout, config)
    pipeline.build_events(layout, config)
    for measure in config.measures:
        pipeline.evaluate_measure(measure, layout, config)
    pipeline.build_member_attributes(layout, config)
    pipeline.build_stratified_counts(layout, config)
    pipeline.build_public_rates(layout, config)
    meta = pipeline.build_disparities(layout, config)
    return root / "input", layout, meta
