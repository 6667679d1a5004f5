"""The code location exposes the operations surface the docs describe (docs/operations.md)."""
from __future__ import annotations

import dagster as dg

from assets.definitions import defs
from equity_pipeline.suites import TABLES


def test_schedules_sensors_and_checks_are_registered():
    schedules = {s.name: s for s in defs.schedules}
    sensors = {s.name: s for s in defs.sensors}
    assert set(schedules) == {"monthly_refresh"}
    assert schedules["monthly_refresh"].job_name == "equity_pipeline_job"
    assert schedules["monthly_refresh"].cron_schedule == "0 6 2 * *"
    assert set(sensors) == {"new_input_files"}
    assert sensors["new_input_files"].job_name == "equity_pipeline_job"
    assert sensors["new_input_files"].default_status == dg.DefaultSensorStatus.STOPPED

    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    blocking = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert ("run_manifest", "manifest_reconciles") in blocking
    assert ("public_rates", "no_small_cells") in blocking
    for table in TABLES:
        assert (table, "rows_reconcile") in blocking
        assert (table, f"gx_{table}") in checks
    # the job runs every asset and every check
    job = defs.resolve_job_def("equity_pipeline_job")
    assert {c for c in checks} <= {(k.asset_key.to_user_string(), k.name) for k in job.asset_layer.asset_graph.asset_check_keys}
