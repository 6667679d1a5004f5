"""Program-configurable REL completeness levels: config, evaluation on public/completeness, the
Dagster check (WARN below warn, ERROR below fail, never blocking) and validation/completeness_thresholds.json."""
from __future__ import annotations

import json
from datetime import date

import dagster as dg
import polars as pl
import pytest

from equity_pipeline.config import config_from_dict
from equity_pipeline.errors import ConfigError
from equity_pipeline.report.completeness import evaluate_thresholds, rel_completeness

RUN_DATE = date(2026, 6, 1)


def _members() -> pl.DataFrame:
    # MD (24031): 400 members, 300 self-reported, 100 imputed; all report a language
    # NY (36061): 400 members, 120 self-reported, 160 declined (80 of them report a language), 120 unknown
    rows = ([("2106-3", "self_reported", "en", "24031")] * 300 + [("2054-5", "imputed", "es", "24031")] * 100
            + [("2106-3", "self_reported", "en", "36061")] * 120 + [("ASKU", "unknown", "ASKU", "36061")] * 80
            + [("ASKU", "unknown", "en", "36061")] * 80 + [("UNK", "unknown", "UNK", "36061")] * 120)
    frame = pl.DataFrame(rows, schema=["race_ethnicity_codes", "race_ethnicity_source", "language", "county_fips"], orient="row")
    return frame.with_row_index("member_id").with_columns(pl.col("member_id").cast(pl.String))


def _config(thresholds):
    return config_from_dict({"measurement_year": 2025, "measures": ["BCS"], "completeness_thresholds": thresholds},
                            run_date=RUN_DATE)


def test_config_accepts_and_round_trips_thresholds():
    config = _config({"self_reported_race_ethnicity": {"warn": 0.8, "fail": 0.5}, "language": {"warn": 1}})
    assert config.completeness_thresholds == (("language", 1.0, None), ("self_reported_race_ethnicity", 0.8, 0.5))
    assert config.to_dict()["completeness_thresholds"] == {"language": {"warn": 1.0},
                                                           "self_reported_race_ethnicity": {"warn": 0.8, "fail": 0.5}}
    assert _config({}).completeness_thresholds == ()


@pytest.mark.parametrize(("value", "message"), [
    ([0.8], "must be a mapping"),
    ({"race": {"warn": 0.8}}, "unknown metric"),
    ({"language": {"warn": 0.8, "error": 0.5}}, "warn and/or fail"),
    ({"language": {}}, "warn and/or fail"),
    ({"language": 0.8}, "warn and/or fail"),
    ({"language": {"warn": 80}}, "between 0 and 1"),
    ({"language": {"warn": True}}, "between 0 and 1"),
    ({"language": {"warn": "0.8"}}, "between 0 and 1"),
    ({"language": {"warn": 0.5, "fail": 0.8}}, "must not be above warn"),
])
def test_config_rejects_bad_thresholds(value, message):
    with pytest.raises(ConfigError, match=message):
        _config(value)


def test_levels_per_unit_on_the_public_table():
    public = rel_completeness(_members(), 2025)
    thresholds = (("race_ethnicity", 0.9, 0.6), ("self_reported_race_ethnicity", 0.8, 0.5))
    out = evaluate_thresholds(public, thresholds)
    by = {(r["metric"], r["unit_id"]): r for r in out["results"]}
    # race_ethnicity known: MD 400/400 pass; NY 120/400 fail; population 520/800 = 0.65 warn
    assert (by[("race_ethnicity", "MD")]["status"], by[("race_ethnicity", "MD")]["share"]) == ("pass", 1.0)
    assert (by[("race_ethnicity", "NY")]["members"], by[("race_ethnicity", "NY")]["status"]) == (120, "fail")
    assert (by[("race_ethnicity", "all")]["share"], by[("race_ethnicity", "all")]["status"]) == (0.65, "warn")
    # self-reported: MD 300/400 = 0.75 warn, NY 0.3 fail, population 420/800 = 0.525 warn
    assert [by[("self_reported_race_ethnicity", u)]["status"] for u in ("all", "MD", "NY")] == ["warn", "warn", "fail"]
    assert out["summary"] == {"pass": 1, "warn": 3, "fail": 2, "not_evaluable": 0}
    # counts, shares, unit ids and levels only
    assert set(out["results"][0]) == {"metric", "unit_level", "unit_id", "members", "total", "share", "warn", "fail", "status"}


def test_suppressed_cells_are_not_evaluable():
    members = _members().head(405)  # NY has 5 members: its cells are suppressed
    out = evaluate_thresholds(rel_completeness(members, 2025), (("language", 0.9, None),))
    ny = next(r for r in out["results"] if r["unit_id"] == "NY")
    assert ny["status"] == "not_evaluable" and ny["members"] is None and ny["share"] is None


def _run_asset(tmp_path, thresholds):
    from assets.reports import rel_completeness as asset
    from assets.resources import PipelineResource

    tmp_path.mkdir(parents=True, exist_ok=True)
    config_file = tmp_path / "program.yaml"
    config_file.write_text(json.dumps({"measurement_year": 2025, "measures": ["BCS"], "completeness_thresholds": thresholds}))
    resource = PipelineResource(input_dir=str(tmp_path / "in"), out_dir=str(tmp_path / "out"), config_file=str(config_file),
                                run_date=RUN_DATE.isoformat())
    layout = resource.layout.prepare()
    layout.table("members").parent.mkdir(parents=True, exist_ok=True)
    _members().write_parquet(layout.table("members"))
    result = asset(pipeline_config=resource)
    check = next(c for c in result.check_results if c.check_name == "completeness_thresholds")
    return check, json.loads(layout.completeness_thresholds.read_text())


def test_asset_check_severity_and_json(tmp_path):
    check, written = _run_asset(tmp_path / "a", {"race_ethnicity": {"warn": 0.9, "fail": 0.2}})
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN  # population 0.65 warn; NY 0.3 warn
    assert written["summary"] == {"pass": 1, "warn": 2, "fail": 0, "not_evaluable": 0}
    check, written = _run_asset(tmp_path / "b", {"self_reported_race_ethnicity": {"warn": 0.8, "fail": 0.5}})
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert written["summary"] == {"pass": 0, "warn": 2, "fail": 1, "not_evaluable": 0}  # NY 0.3 below fail
    check, written = _run_asset(tmp_path / "c", {})
    assert check.passed and written["results"] == []


def test_check_is_registered_and_not_blocking():
    from assets.definitions import defs

    graph = defs.resolve_asset_graph()
    key = dg.AssetCheckKey(dg.AssetKey("rel_completeness"), "completeness_thresholds")
    assert key in graph.asset_check_keys and not graph.get_check_spec(key).blocking
