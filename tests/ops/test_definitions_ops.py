"""The code location exposes the operations surface the docs describe (docs/operations.md)."""
from __future__ import annotations

import dagster as dg

from assets.definitions import defs
from equity_pipeline.suites import TABLES


def test_schedules_sensors_and_checks_are_registered():
    schedules = {s.name: s for s in defs.schedules}
    sensors = {s.name: s for s in defs.sensors}
    assert set(schedules) == {"monthly_refresh", "partitioned_monthly_refresh"}
    assert schedules["monthly_refresh"].job_name == "equity_pipeline_job"
    assert schedules["monthly_refresh"].cron_schedule == "0 6 2 * *"
    assert set(sensors) == {"new_input_files", "period_rollup_when_states_done"}
    assert sensors["new_input_files"].job_name == "equity_pipeline_job"
    assert sensors["new_input_files"].default_status == dg.DefaultSensorStatus.STOPPED
    # the partitioned jobs: a monthly schedule for the latest period, a run-status sensor for the roll-up
    assert schedules["partitioned_monthly_refresh"].job_name == "partitioned_refresh_job"
    assert schedules["partitioned_monthly_refresh"].default_status == dg.DefaultScheduleStatus.STOPPED
    assert sensors["period_rollup_when_states_done"].default_status == dg.DefaultSensorStatus.STOPPED

    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    blocking = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert ("run_manifest", "manifest_reconciles") in blocking
    assert ("public_rates", "no_small_cells") in blocking
    for table in TABLES:
        assert (table, "rows_reconcile") in blocking
        assert (table, f"gx_{table}") in checks
    # the job runs every asset and every check, except the partitioned ones (their own jobs, below)
    partitioned = {"state_partition", "period_rollup"}
    job = defs.resolve_job_def("equity_pipeline_job")
    assert {c for c in checks if c[0] not in partitioned} <= {(k.asset_key.to_user_string(), k.name) for k in job.asset_layer.asset_graph.asset_check_keys}
    assert job.partitions_def is None
    assert not {k.to_user_string() for k in job.asset_layer.asset_graph.get_all_asset_keys()} & partitioned
    assert ("state_partition", "rows_reconcile") in blocking
    assert {("period_rollup", n) for n in ("partitions_reconcile", "no_small_cells", "no_suppressed_cell_revealed")} <= blocking


def test_partitions_are_registered():
    """Period x state multi-partitions for the slices, period partitions for the roll-up (docs/operations.md)."""
    graph = defs.resolve_asset_graph()
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {k for k, g in groups.items() if g == "partitions"} == {"state_partition", "period_rollup"}
    slices = defs.resolve_job_def("partitioned_refresh_job").partitions_def
    rollup = defs.resolve_job_def("period_rollup_job").partitions_def
    assert isinstance(slices, dg.MultiPartitionsDefinition)
    dims = {d.name: d.partitions_def for d in slices.partitions_defs}
    assert set(dims) == {"period", "state"}
    assert isinstance(dims["state"], dg.DynamicPartitionsDefinition) and dims["state"].name == "state"
    assert isinstance(dims["period"], dg.TimeWindowPartitionsDefinition) and dims["period"].fmt == "%Y"
    assert rollup == dims["period"]
    years = rollup.get_partition_keys()
    assert years[0] == "2020" and all(len(y) == 4 and y.isdigit() for y in years)
    assert graph.get(dg.AssetKey("state_partition")).partitions_def == slices
    assert graph.get(dg.AssetKey("period_rollup")).partitions_def == rollup
