"""manifest_reconciles: the run manifest adds up (rows, claim lines, members), counts-only metadata."""
from __future__ import annotations

import copy
import json

import dagster as dg
import pytest

from assets.invariants import manifest_reconciles
from assets.resources import PipelineResource
from equity_pipeline import pipeline
from equity_pipeline.config import load_config
from equity_pipeline.layout import OutputLayout
from equity_pipeline.suites import TABLES

CONFIG = load_config(None)


def _measure(members_in=100, not_eligible=60, excluded=5, denominator=35, numerator=20) -> dict:
    return {"members_in": members_in, "not_eligible": {"not_age": not_eligible}, "excluded": {"hospice": excluded},
            "denominator": denominator, "numerator": numerator, "reconciles": True}


def _manifest() -> dict:
    tables = {t: {"read": 50, "used": 45, "quarantined": 5, "rules": {}, "suite_version": "x"} for t in TABLES}
    tables["members"] = {"read": 110, "used": 100, "quarantined": 10}
    tables["medical_claims"]["adjudication"] = {"final": 40, "superseded": 3, "voided": 2}
    return {"run_id": "r", "tables": tables, "measures": {m: _measure() for m in CONFIG.measures}}


def _check(tmp_path, manifest: dict) -> dict:
    layout = OutputLayout(tmp_path).prepare()
    layout.manifest.write_text(json.dumps(manifest))
    return pipeline.manifest_reconciliation(layout, CONFIG)


def test_a_reconciled_manifest_passes(tmp_path):
    result = _check(tmp_path, _manifest())
    assert result["passed"] and result["tables_checked"] == len(TABLES) and result["measures_checked"] == len(CONFIG.measures)


@pytest.mark.parametrize("break_it, table, measure", [
    (lambda m: m["tables"]["enrollment"].update(quarantined=4), "enrollment", None),  # a row went missing
    (lambda m: m["tables"].pop("providers"), "providers", None),  # a table is not in the manifest
    (lambda m: m["tables"]["medical_claims"]["adjudication"].update(voided=1), "medical_claims", None),
    (lambda m: m["measures"]["BCS"].update(denominator=34), None, "BCS"),  # members in != sum of fates
    (lambda m: m["measures"]["COL"].update(members_in=99, not_eligible={"not_age": 59}), None, "COL"),  # != members used
    (lambda m: m["measures"]["CBP"].update(numerator=36), None, "CBP"),  # numerator > denominator
    (lambda m: m["measures"].pop("CCS"), None, "CCS"),  # a configured measure is missing
])
def test_each_broken_invariant_fails(tmp_path, break_it, table, measure):
    manifest = copy.deepcopy(_manifest())
    break_it(manifest)
    result = _check(tmp_path, manifest)
    assert not result["passed"]
    assert result["failing_tables"] == ([table] if table else [])
    assert result["failing_measures"] == ([measure] if measure else [])


def test_check_result_is_error_with_counts_only(tmp_path):
    manifest = _manifest()
    manifest["measures"]["BCS"]["denominator"] = 34
    OutputLayout(tmp_path).prepare().manifest.write_text(json.dumps(manifest))
    result = manifest_reconciles(pipeline_config=PipelineResource(input_dir=str(tmp_path), out_dir=str(tmp_path)))
    assert isinstance(result, dg.AssetCheckResult)
    assert result.passed is False and result.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: getattr(v, "value", v) for k, v in result.metadata.items()}
    assert meta["measures_not_reconciling"] == 1 and meta["failing_measures"] == ["BCS"] and meta["tables_not_reconciling"] == 0


def test_real_run_manifest_reconciles(clean_run, ops_config):
    config = load_config(ops_config)
    result = pipeline.manifest_reconciliation(OutputLayout(clean_run), config)
    assert result["passed"] and result["measures_checked"] == len(config.measures) == 4, result
