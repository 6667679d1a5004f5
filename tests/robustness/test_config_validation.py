"""Program config (equity_pipeline/config.py): every bad setting is a one-line ConfigError that names
the setting (or the file) and what is allowed -- never a raw Python error.

Paths: the program config has no path settings (input and output folders are CLI arguments or
Dagster resource settings), so there is nothing to confine; a path-like key is rejected as unknown.
"""
from __future__ import annotations

from datetime import date

import pytest

from equity_pipeline.config import KNOWN_KEYS, load_config
from equity_pipeline.errors import ConfigError, PipelineError

RUN_DATE = date(2026, 11, 22)

CASES = [
    # unknown ids
    ("measures: [BCS, NOPE]", ["unknown measure", "NOPE", "BCS"]),
    ("measures: [bcs]", ["unknown measure", "bcs"]),
    ("stratifiers: [race_ethnicity, planet]", ["unknown stratifier", "planet", "race_ethnicity"]),
    ("stratifiers: [race]", ["unknown stratifier", "race"]),
    ("intersections: [[race_ethnicity, planet]]", ["planet"]),
    ("reference_group: {race_ethnicity: Martian}", ["Martian", "race_ethnicity"]),
    ("reference_group: {language: Unknown}", ["Unknown", "reference"]),
    ("measurement_yaer: 2025", ["unknown setting", "measurement_yaer"]),
    # dates
    ("run_date: '2026/11/22'", ["run_date", "YYYY-MM-DD"]),
    ("run_date: 'yesterday'", ["run_date", "YYYY-MM-DD"]),
    ("run_date: 2026-02-30", ["program.yaml"]),          # YAML resolves it as a date and fails
    ("run_date: 2026-13-01", ["program.yaml"]),
    ("run_date: 20261122", ["run_date", "YYYY-MM-DD"]),  # a number
    ("run_date: [2026, 11, 22]", ["run_date"]),
    ("run_date: 1999-01-01", ["measurement_year"]),       # no complete measurement year
    ("measurement_year: 2030", ["measurement_year"]),
    ("measurement_year: 1999", ["measurement_year"]),
    # wrong types
    ("measures: BCS", ["measures", "list"]),
    ("measures: [1, 2]", ["measures", "list"]),
    ("measures: null", ["measures"]),
    ("measures: []", ["measures"]),
    ("measures: [BCS, BCS]", ["measures", "once"]),
    ("stratifiers: race_ethnicity", ["stratifiers", "list"]),
    ("stratifiers: [sex, sex]", ["sex", "more than once"]),
    ("measurement_year: '2025'", ["measurement_year"]),
    ("measurement_year: 2025.5", ["measurement_year"]),
    ("measurement_year: true", ["measurement_year"]),
    ("age_bands: [0, 18, '45']", ["age_bands"]),
    ("age_bands: [18, 45]", ["age_bands", "starting at 0"]),
    ("age_bands: 5", ["age_bands"]),
    ("regions: {Capital: [24031]}", ["24031", "quoted"]),
    ("regions: {Capital: ['2403']}", ["2403", "5-digit"]),
    ("regions: [Capital]", ["regions", "mapping"]),
    ("reference_group: 5", ["reference_group"]),
    ("reference_group: {default: worst}", ["worst", "best"]),
    ("intersections: race_ethnicity", ["intersections", "pairs"]),
    ("intersections: [[race_ethnicity]]", ["pair"]),
    ("multiple_comparisons: bonferroni", ["multiple_comparisons", "holm"]),
    ("disparity_min_denominator: '30'", ["disparity_min_denominator"]),
    ("disparity_min_denominator: 0", ["disparity_min_denominator"]),
    ("disparity_min_denominator: true", ["disparity_min_denominator"]),
    # the file itself
    ("measures: [BCS", ["program.yaml", "YAML"]),
    ("- measures\n- stratifiers", ["program.yaml", "mapping"]),
    ("'just text'", ["program.yaml", "mapping"]),
    # paths: there are no path settings; path-like keys are unknown settings
    ("input_dir: /etc", ["unknown setting", "input_dir"]),
    ("out_dir: /tmp/elsewhere", ["unknown setting", "out_dir"]),
    ("output: ../../public", ["unknown setting", "output"]),
]


@pytest.mark.parametrize("text, words", CASES, ids=[c[0] for c in CASES])
def test_bad_setting_is_a_clear_config_error(tmp_path, text, words):
    path = tmp_path / "program.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, run_date=RUN_DATE)
    message = str(info.value)
    assert isinstance(info.value, PipelineError)  # the CLI prints it on one line with exit code 2
    assert "\n" not in message and len(message) < 2000
    assert all(w in message for w in words), message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", [
    "", "measurement_year: 2025", "measures: [BCS, PCR]\nstratifiers: [race_ethnicity, county]",
    "run_date: 2026-11-22\nmeasurement_year: 2025\nregions: {Capital: ['24031', '24033', '11001']}\nstratifiers: [region]",
    "reference_group: {default: largest, race_ethnicity: White}",
])
def test_good_configs_load(tmp_path, text):
    path = tmp_path / "program.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    cfg = load_config(path, run_date=RUN_DATE)
    assert cfg.measures and len(set(cfg.measures)) == len(cfg.measures) and cfg.measurement_year == 2025


def test_no_setting_is_a_path():
    """Nothing in the program config can point the pipeline at other folders (see module docstring)."""
    cfg = load_config(None, run_date=RUN_DATE)
    assert not {k for k in KNOWN_KEYS if any(w in k for w in ("dir", "path", "file", "folder", "out"))}
    assert set(cfg.to_dict()) - {"source"} >= {"measures", "stratifiers"}
    assert cfg.to_dict()["source"] is None  # the only path-valued field: which config file was read
