"""Running ``equity_pipeline_job`` from Python outside ``dagster dev``: in process, and re-executed from failure.

``dg.execute_job`` (unlike ``execute_in_process``) records runs that can be re-executed, and needs a
*reconstructable* job: :func:`equity_pipeline_job` is the module-level function it reconstructs.

    with dg.DagsterInstance.get() as instance:               # DAGSTER_HOME set, as for dagster dev
        first = run_job(instance, input_dir="in", out_dir="out")
        if not first.success:                                # fix the cause, then:
            again = reexecute_from_failure(instance, first.run_id)

Re-execution from failure runs the failed and skipped steps only, with the parent run's config; the
steps that succeeded are not run again (their files are already in the output folder).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

JOB_NAME = "equity_pipeline_job"
#: the run config that executes every step in the run's process (the job's default, assets/definitions.py)
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
#: a process per step (each re-imports the code location: slower on one machine, docs/operations.md)
MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}


def equity_pipeline_job() -> dg.JobDefinition:
    """The resolved ``equity_pipeline_job`` of the code location (target for ``dg.reconstructable``)."""
    from assets.definitions import defs

    return defs.resolve_job_def(JOB_NAME)


def run_config_for(input_dir: str, out_dir: str, config_file: str | None = None, run_date: str | None = None,
                   *, in_process: bool = True) -> dict[str, Any]:
    resource = {"input_dir": str(input_dir), "out_dir": str(out_dir)}
    if config_file:
        resource["config_file"] = str(config_file)
    if run_date:
        resource["run_date"] = run_date
    return {"resources": {"pipeline_config": {"config": resource}}, **(IN_PROCESS if in_process else MULTIPROCESS)}


def run_job(instance: dg.DagsterInstance, *, input_dir: str, out_dir: str, config_file: str | None = None,
            run_date: str | None = None, in_process: bool = True) -> dg.JobExecutionResult:
    """Execute the whole job once (a failed step does not raise: check ``result.success``)."""
    return dg.execute_job(dg.reconstructable(equity_pipeline_job), instance=instance,
                          run_config=run_config_for(input_dir, out_dir, config_file, run_date, in_process=in_process))


def reexecute_from_failure(instance: dg.DagsterInstance, run_id: str) -> dg.JobExecutionResult:
    """Re-execute the failed and not-run steps of ``run_id`` with its run config (``ReexecutionOptions.from_failure``)."""
    parent = instance.get_run_by_id(run_id)
    if parent is None:
        raise ValueError(f"run {run_id} is not in this Dagster instance")
    return dg.execute_job(dg.reconstructable(equity_pipeline_job), instance=instance, run_config=parent.run_config,
                          reexecution_options=dg.ReexecutionOptions.from_failure(run_id, instance))
