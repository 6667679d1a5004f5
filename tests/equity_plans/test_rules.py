"""Program rules: the version in effect for the measurement year, cohorts, config overrides, and the
ConfigError each bad setting gives (one line, naming the setting and what is allowed)."""
from __future__ import annotations

import textwrap
from datetime import date

import pytest

from equity_pipeline.config import config_from_dict
from equity_pipeline.equity_plans.rules import NoRulesInEffect, resolve_rules, validate_settings, version_in_effect
from equity_pipeline.errors import ConfigError

RULES = textwrap.dedent("""
    TEST:
      versions:
        - version: "A"
          effective_from: 2024-01-01
          effective_to: 2024-12-31
          cohorts:
            - {name: one, states: [MD], first_year: 2024}
            - {name: two, states: [NY], first_year: 2025}
          state_plan: {measures: [BCS], payers: [medicaid]}
          reference_groups: {race_ethnicity: White}
        - version: "B"
          effective_from: 2025-01-01
          cohorts:
            - {name: one, states: [MD], first_year: 2024}
            - {name: two, states: [NY], first_year: 2025}
          state_plan: {measures: [BCS, PQI90]}
          reference_groups: {race_ethnicity: White, language: English}
          targets:
            - {metric_id: PQI90, statistic: ratio, operator: "<=", value: 1.2}
""")


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def settings(rules_file, **extra):
    return {"program": "TEST", "rules_file": str(rules_file), **extra}


def test_version_in_effect_on_the_measurement_years_end(rules_file):
    a = resolve_rules(settings(rules_file), 2024)
    b = resolve_rules(settings(rules_file), 2025)
    assert (a.version, b.version) == ("A", "B")
    # cohort two starts in 2025: its state reports from then on
    assert a.states == ("MD",) and b.states == ("MD", "NY")
    assert a.payers == ("medicaid",) and b.measures == ("BCS", "PQI90")
    assert b.targets[0].basis == "ratio <= 1.2"
    # the open-ended version B still covers 2030
    assert resolve_rules(settings(rules_file), 2030).version == "B"


def test_packaged_rules_pick_the_ahead_version_and_states():
    r2025, r2026 = resolve_rules({}, 2025), resolve_rules({}, 2026)
    assert r2025.program == r2026.program == "AHEAD"
    assert r2025.version == "2024.1" and r2026.version == "2026.1"
    assert r2026.states == ("CT", "HI", "MD", "NY", "RI", "VT")
    assert r2025.reference_for("race_ethnicity") == "White"
    # measures the run did not compute are left out of the plan
    assert resolve_rules({}, 2025, measures=("BCS",)).measures == ("BCS",)


def test_overrides_replace_states_and_merge_mappings(rules_file):
    r = resolve_rules(settings(rules_file, overrides={"states": ["HI"], "reference_groups": {"race_ethnicity": "Asian"}}), 2025)
    assert r.states == ("HI",)
    assert dict(r.reference_groups) == {"race_ethnicity": "Asian", "language": "English"}


def test_no_rules_in_effect_is_an_error_only_when_asked_for(rules_file):
    with pytest.raises(NoRulesInEffect, match=r"no TEST rules in effect on 2023-12-31.*A \(2024-01-01 to 2024-12-31\), B \(2025-01-01 to open\)"):
        resolve_rules(settings(rules_file), 2023)
    assert validate_settings({}, 2023) == {}          # the packaged rules start in 2024: empty plan tables
    with pytest.raises(ConfigError, match="no AHEAD rules in effect"):
        validate_settings({"program": "AHEAD"}, 2023)


def test_overlapping_versions_are_refused():
    versions = [{"version": "x", "effective_from": "2024-01-01", "effective_to": "2025-06-30"},
                {"version": "y", "effective_from": "2025-01-01"}]
    with pytest.raises(ConfigError, match="versions x and y overlap"):
        version_in_effect("P", versions, date(2025, 12, 31))


@pytest.mark.parametrize("extra, message", [
    ({"program": "NOPE"}, r"equity_plans.program 'NOPE' not in the rules file; programs: AHEAD"),
    ({"colour": 1}, r"equity_plans: unknown key\(s\) \['colour'\]"),
    ({"overrides": {"states": ["XX"]}}, r"states: \['XX'\] are not USPS state codes"),
    ({"overrides": {"state_plan": {"measures": ["NOPE"]}}}, r"unknown measure id\(s\) \['NOPE'\]"),
    ({"overrides": {"state_plan": {"pqi_measure": "BCS"}}}, r"pqi_measure 'BCS' must be an event-rate measure"),
    ({"overrides": {"state_plan": {"stratifiers": ["shoe_size"]}}}, r"unknown stratifier\(s\) \['shoe_size'\]"),
    ({"overrides": {"reference_groups": {"race_ethnicity": "Martian"}}}, r"reference 'Martian' not found in stratifier 'race_ethnicity'"),
    ({"overrides": {"reference_groups": {"race_ethnicity": "Unknown"}}}, r"'Unknown' stands for missing data"),
    ({"overrides": {"hospital_plan": {"readmission_days": 0}}}, r"readmission_days 0 must be a whole number from 1 to 365"),
    ({"overrides": {"hospital_plan": {"sdoh_settings": ["spa"]}}}, r"sdoh_settings: \['spa'\] unknown"),
    ({"overrides": {"thresholds": {"high_svi": ["Q9"]}}}, r"high_svi: \['Q9'\] are not SVI quintiles"),
    ({"overrides": {"targets": [{"metric_id": "PQI90", "statistic": "mean", "operator": "<=", "value": 1}]}}, r"statistic 'mean' must be one of"),
    ({"overrides": {"targets": [{"metric_id": "PQI90", "statistic": "ratio", "operator": "<", "value": 1}]}}, r"operator '<' must be '<=' or '>='"),
    ({"overrides": {"targets": [{"metric_id": "PQI90", "statistic": "ratio", "operator": "<=", "value": "low"}]}}, r"value 'low' must be a number"),
    ({"overrides": {"targets": [{True: "ratio", "metric_id": "PQI90", "operator": "<=", "value": 1}]}}, r"YAML reads the key 'on' as true"),
    ({"overrides": {"colour": 1}}, r"equity_plans.overrides: unknown key\(s\) \['colour'\]"),
    ({"baseline": {"year": 2025, "values": [{"metric_id": "PQI90", "value": 1.0}]}}, r"baseline.year 2025 must be a whole number from 2000 to 2024"),
    ({"baseline": {"year": 2024}}, r"baseline needs a path \(published table\) or values"),
    ({"baseline": {"year": 2024, "path": "/nowhere/state_metrics.parquet"}}, r"baseline file not found: /nowhere/state_metrics.parquet"),
    ({"baseline": {"year": 2024, "values": [{"metric_id": "PQI90"}]}}, r"values\[0\] needs metric_id and value"),
])
def test_bad_settings_are_config_errors(extra, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"measurement_year": 2025, "equity_plans": extra}, run_date=date(2026, 6, 1))


def test_yaml_on_key_in_a_rules_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RULES.replace("statistic: ratio", "on: ratio"))
    with pytest.raises(ConfigError, match="name the compared value 'statistic'"):
        resolve_rules(settings(path), 2025)


def test_config_keeps_the_settings_with_resolved_paths(tmp_path, rules_file):
    base = tmp_path / "baseline.csv"
    base.write_text("metric_id,rate\nPQI90,1500\n")
    cfg = config_from_dict({"measurement_year": 2025, "equity_plans": {
        "program": "TEST", "rules_file": "rules.yaml", "baseline": {"year": 2024, "path": "baseline.csv"}}},
        run_date=date(2026, 6, 1), source=str(tmp_path / "program.yaml"))
    assert cfg.equity_plans["rules_file"] == str(rules_file)
    assert cfg.equity_plans["baseline"] == {"year": 2024, "paths": [str(base)]}
    assert cfg.to_dict()["equity_plans"] == cfg.equity_plans
    rules = resolve_rules(cfg.equity_plans, 2025)
    assert rules.baseline_year == 2024 and rules.baseline_paths == (str(base),)
