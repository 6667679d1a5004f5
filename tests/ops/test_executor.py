"""Runs of ``equity_pipeline_job`` launched without an execution config (the UI's launchpad, the
schedule, the sensor) execute their steps in the run's own process; a run config can still ask for a
process per step. Measured in docs/operations.md: a process per step re-imports the code location for
each of about 60 steps (a 2,000-member run 123 s instead of 43)."""
from __future__ import annotations

import os

import dagster as dg
import pytest

from assets.jobs import equity_pipeline_job, run_config_for

#: two cheap assets: the source conversion (a pass-through for canonical input) and the members ingest
#: (with its GX check, a third step)
SELECTION = [dg.AssetKey("canonical_input"), dg.AssetKey("members")]
STEPS = {"canonical_input", "members", "members_gx_members"}


def _step_pids(instance: dg.DagsterInstance, result: dg.JobExecutionResult) -> dict[str, int]:
    return {e.step_key: e.dagster_event.pid for e in instance.all_logs(result.run_id)
            if e.dagster_event is not None and e.dagster_event.event_type == dg.DagsterEventType.STEP_START}


def _instance(tmp_path) -> dg.DagsterInstance:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(home))


def test_a_run_without_an_execution_config_runs_its_steps_in_process(ops_input, ops_config, tmp_path):
    resources_only = {k: v for k, v in run_config_for(str(ops_input), str(tmp_path / "out"), str(ops_config)).items()
                      if k != "execution"}
    assert set(resources_only) == {"resources"}
    with _instance(tmp_path) as instance:
        result = dg.execute_job(dg.reconstructable(equity_pipeline_job), instance=instance, run_config=resources_only,
                                asset_selection=SELECTION)
        assert result.success
        pids = _step_pids(instance, result)
    assert set(pids) == STEPS
    assert set(pids.values()) == {os.getpid()}
    assert (tmp_path / "out" / "restricted" / "tables" / "members.parquet").is_file()


@pytest.mark.slow
def test_a_run_config_can_still_ask_for_a_process_per_step(ops_input, ops_config, tmp_path):
    with _instance(tmp_path) as instance:
        result = dg.execute_job(dg.reconstructable(equity_pipeline_job), instance=instance,
                                run_config=run_config_for(str(ops_input), str(tmp_path / "out"), str(ops_config), in_process=False),
                                asset_selection=SELECTION)
        assert result.success
        pids = _step_pids(instance, result)
    assert set(pids) == STEPS
    assert os.getpid() not in pids.values() and len(set(pids.values())) == len(STEPS)


def test_assets_materialised_outside_a_job_run_in_process_and_jobs_choose():
    """The Assets page materialises through Dagster's implicit asset job, which takes the code
    location's executor: in process. The named jobs keep the executor that a run config chooses
    (the partition jobs' runs ask for multiprocess)."""
    from assets.definitions import defs

    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
    for name in ("equity_pipeline_job", "partitioned_refresh_job", "period_rollup_job"):
        assert defs.resolve_job_def(name).executor_def.name == "multi_or_in_process_executor"
