"""Partitions: measurement period x state slices and the per-period roll-up (group ``partitions``).

* ``state_partition``: multi-partitioned (``period`` x ``state``). One partition validates one state's
  slice of the input and runs the per-slice steps for that measurement year into
  ``OUT/partitions/period=<p>/state=<s>/`` (``equity_pipeline.partitioning.run_partition``).
* ``period_rollup``: partitioned by ``period``. Combines every state partition of the period from
  their aggregates (counts per stratum, label-combination counts, completeness counts, member and
  stay cells, probability-weighted sums, equity-plan cell counts) into ``OUT/periods/<p>/``: public
  rates, disparities, disparity summary, REL completeness, standardised rates with O/E, imputed-race
  rates and concordance, the equity-plan tables, and the period's report, workbook, state plan
  document, FHIR MeasureReports, manifest and audit pack (``partitioning.rollup_period``); never from
  input rows.
* ``partitioned_monthly_refresh`` (schedule) and ``period_rollup_when_states_done`` (run-status
  sensor): the latest period's state runs monthly, then its roll-up once every state is done.

Periods are measurement years (a yearly time-window dimension from ``EQUITY_FIRST_PERIOD``, default
2020, to the last complete year), or with ``EQUITY_PERIOD_GRANULARITY=quarter|month`` rolling 12-month
periods ending each quarter ("2025-Q1") or month ("2025-03") (:func:`period_partitions`). States are
dynamic partitions: the USPS codes of the input's members plus ``unknown`` (members without a state,
orphan rows), registered with ``python -m assets.partitions register-states`` (or :func:`register_states`). Jobs:
``partitioned_refresh_job`` (the slices; backfill it over periods x states) and
``period_rollup_job``. The unpartitioned ``equity_pipeline_job`` does not include these assets.
"""

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from assets.constants import OWNERS
from assets.resources import PipelineResource
from equity_pipeline import partitioning
from equity_pipeline.periods import PERIOD_GRANULARITIES, quarter_keys
from equity_pipeline.publish import check_description

PARTITIONS_GROUP = "partitions"
STATE_DIMENSION = "state"
PERIOD_DIMENSION = "period"
PARTITIONED_JOB = "partitioned_refresh_job"
ROLLUP_JOB = "period_rollup_job"



def period_partitions(granularity: str, first_year: int, today: date | None = None) -> dg.PartitionsDefinition:
    """Period keys from ``first_year`` (docs/operations.md "Rolling measurement periods"): ``year``
    "2024" (calendar years), ``month`` "2025-03" (rolling 12 months ending that month), ``quarter``
    "2025-Q1" (rolling 12 months ending that quarter). A key appears once its period has ended;
    quarter keys are listed when the code location loads (reload it after a quarter ends)."""
    if granularity == "year":
        return dg.TimeWindowPartitionsDefinition(cron_schedule="0 0 1 1 *", start=str(first_year), fmt="%Y")
    if granularity == "month":
        return dg.TimeWindowPartitionsDefinition(cron_schedule="0 0 1 * *", start=f"{first_year}-01", fmt="%Y-%m")
    if granularity == "quarter":  # Dagster time windows have no quarter key format ("2025-Q1")
        return dg.StaticPartitionsDefinition(quarter_keys(first_year, today or date.today()))
    raise ValueError(f"EQUITY_PERIOD_GRANULARITY {granularity!r} must be one of {', '.join(PERIOD_GRANULARITIES)}")


#: measurement periods from EQUITY_FIRST_PERIOD (a year, default 2020) at EQUITY_PERIOD_GRANULARITY
#: (year | quarter | month, default year); a period's key appears once it has ended
PERIOD_GRANULARITY = os.environ.get("EQUITY_PERIOD_GRANULARITY", "year")
periods_def = period_partitions(PERIOD_GRANULARITY, int(os.environ.get("EQUITY_FIRST_PERIOD", "2020")[:4]))
#: state keys (USPS codes and ``unknown``), filled from the input's members by register_states
states_def = dg.DynamicPartitionsDefinition(name=STATE_DIMENSION)
period_x_state = dg.MultiPartitionsDefinition({PERIOD_DIMENSION: periods_def, STATE_DIMENSION: states_def})


@dg.asset(
    group_name=PARTITIONS_GROUP, owners=OWNERS, kinds={"polars", "parquet"}, partitions_def=period_x_state,
    description="One measurement period x state: the state's slice of the input (members by county state, their rows in the "
                "other tables; orphans and members without a state in 'unknown'), validated and run through the per-slice "
                "steps (events, measures, member attributes, stratified counts) into partitions/period=<p>/state=<s>/ "
                "(restricted), with the aggregates the period roll-up reads.",
    check_specs=[dg.AssetCheckSpec("rows_reconcile", asset="state_partition", blocking=True,
                                   description="every slice row used or quarantined; every measure's members reconcile")],
)
def state_partition(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    period, state = keys[PERIOD_DIMENSION], keys[STATE_DIMENSION]
    meta = partitioning.run_partition(pipeline_config.input_path, Path(pipeline_config.out_dir), period, state, pipeline_config.program)
    summary = partitioning.read_summary(partitioning.partition_layout(Path(pipeline_config.out_dir), period, state))
    bad_tables = sum(t["read"] != t["used"] + t["quarantined"] for t in summary["tables"].values())
    bad_measures = sum(not partitioning.measure_reconciles(c) for c in summary["measures"].values())
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(check_name="rows_reconcile", passed=bad_tables == 0 and bad_measures == 0,
                                           metadata={"tables_not_reconciling": bad_tables, "measures_not_reconciling": bad_measures})],
    )


@dg.asset(
    group_name=PARTITIONS_GROUP, owners=OWNERS, kinds={"polars", "parquet", "csv"}, partitions_def=periods_def,
    # Dagster infers the mapping (MultiToSingleDimensionPartitionMapping on ``period``): a period's
    # roll-up depends on every state partition of that period
    deps=[state_partition],
    description="One measurement period, all states: periods/<p>/public/ rates, disparities, disparity summary, REL "
                "completeness, standardised rates with O/E (readmission risk model refitted on every state's stay cells), "
                "imputed-race (BISG) rates and concordance, equity-plan tables (state and hospital), recomputed from the state "
                "partitions' aggregates (summed counts per stratum, label-combination counts, member and stay cells, "
                "probability-weighted sums, plan cell counts), never from input rows; equal to an unpartitioned run of that "
                "period (docs/operations.md). Also the period's report, workbook (trend section over the rolled-up periods, "
                "plan sheets), state plan document, FHIR MeasureReports, manifest and audit pack.",
    check_specs=[
        dg.AssetCheckSpec("partitions_reconcile", asset="period_rollup", blocking=True,
                          description="the state slices add up to the input files; rows read = used + quarantined; measures reconcile"),
        dg.AssetCheckSpec("no_small_cells", asset="period_rollup", blocking=True,
                          description="no published count between 1 and 10 in the roll-up's rates, completeness, imputed-race rates "
                                      "and equity-plan tables"),
        dg.AssetCheckSpec("no_suppressed_cell_revealed", asset="period_rollup", blocking=True,
                          description="no disparity, summary or standardised value computed from a suppressed rates cell; "
                                      "no suppressed equity-plan cell recoverable from its margins"),
    ],
)
def period_rollup(context: dg.AssetExecutionContext, pipeline_config: PipelineResource) -> dg.MaterializeResult:
    states = sorted(context.instance.get_dynamic_partitions(STATE_DIMENSION))
    if not states:
        raise dg.Failure("no state partitions registered: run `python -m assets.partitions register-states` first")
    meta = partitioning.rollup_period(Path(pipeline_config.out_dir), context.partition_key, states, pipeline_config.program,
                                      run_id=context.run.run_id)
    small = meta["small_cells"] + meta["completeness_small_cells"] + meta["imputed_small_cells"] + meta["plan_small_cells"]
    # the same counts decided, before writing, whether each table reached public/ (else restricted/withheld/)
    revealed = meta["disparity_leaks"] + meta["standardized_leaks"] + meta["plan_revealed"]
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[
            dg.AssetCheckResult(check_name="partitions_reconcile", passed=meta["tables_reconciled"] and meta["measures_reconciled"],
                                metadata={"partitions": meta["partitions"]}),
            dg.AssetCheckResult(check_name="no_small_cells", passed=small == 0, metadata={"small_cells": small},
                                description=check_description(meta)),
            dg.AssetCheckResult(check_name="no_suppressed_cell_revealed", passed=revealed == 0, metadata={"rows": revealed},
                                description=check_description(meta)),
        ],
    )


partition_assets = [state_partition, period_rollup]

# both choose their executor in the run config (multiprocess by default: run_config below), whatever the
# code location's default for materialisations outside a job (in process, assets/definitions.py)
partitioned_refresh_job = dg.define_asset_job(
    PARTITIONED_JOB, selection=[state_partition], executor_def=dg.multi_or_in_process_executor,
    description="One period x state slice per run (backfill it over periods x states; one partition per worker).")
period_rollup_job = dg.define_asset_job(
    ROLLUP_JOB, selection=[period_rollup], executor_def=dg.multi_or_in_process_executor,
    description="Roll the state partitions of one period up into periods/<p>/public/ (after the period's slices).")
partition_jobs = [partitioned_refresh_job, period_rollup_job]


# ------------------------------------------------------------------------------------ automation
#: the refresh of the latest period, monthly (claims run-out: the latest period keeps filling in), like
#: the unpartitioned ``monthly_refresh``; one run per registered state key
PARTITIONED_SCHEDULE = "partitioned_monthly_refresh"
ROLLUP_SENSOR = "period_rollup_when_states_done"


@dg.schedule(name=PARTITIONED_SCHEDULE, job=partitioned_refresh_job, cron_schedule="0 6 2 * *",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Monthly on the 2nd at 06:00: one partitioned_refresh_job run per registered state for the latest "
                         "ended period (the roll-up follows through period_rollup_when_states_done).")
def partitioned_monthly_refresh(context: dg.ScheduleEvaluationContext):
    """Not ``build_schedule_from_partitioned_job``: the period dimension is a static list when periods
    are quarters, and the schedule must fan out over the dynamic state keys."""
    keys = periods_def.get_partition_keys(current_time=context.scheduled_execution_time)
    states = sorted(context.instance.get_dynamic_partitions(STATE_DIMENSION))
    if not keys:
        return dg.SkipReason("no measurement period has ended yet")
    if not states:
        return dg.SkipReason("no state partitions registered: run `python -m assets.partitions register-states` first")
    period = keys[-1]
    tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M") if context.scheduled_execution_time else "manual"
    return [dg.RunRequest(run_key=f"{period}|{state}|{tick}", partition_key=partition_key(period, state)) for state in states]


@dg.run_status_sensor(name=ROLLUP_SENSOR, run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[partitioned_refresh_job],
                      request_job=period_rollup_job, default_status=dg.DefaultSensorStatus.STOPPED,
                      description="After a successful state partition run: when every registered state of its period is materialized "
                                  "from the same input files, request that period's roll-up (once per set of partition summaries).")
def period_rollup_when_states_done(context: dg.RunStatusSensorContext):
    run = context.dagster_run
    period = run.tags.get(f"dagster/partition/{PERIOD_DIMENSION}")
    if not period:
        return dg.SkipReason("the run has no period partition")
    states = sorted(context.instance.get_dynamic_partitions(STATE_DIMENSION))
    resource = dict((run.run_config or {}).get("resources", {}).get("pipeline_config", {}).get("config", {}))
    out = Path(resource.get("out_dir") or PipelineResource().out_dir)
    digest = partitioning.partitions_digest(out, period, states)
    if digest is None:
        return dg.SkipReason(f"period {period}: not every state partition is materialized from the same input yet")
    run_config = {"resources": {"pipeline_config": {"config": resource}}} if resource else {}
    return dg.RunRequest(run_key=f"{period}|{digest}", partition_key=period, run_config=run_config)


partition_schedules = [partitioned_monthly_refresh]
partition_sensors = [period_rollup_when_states_done]


# ------------------------------------------------------------------------------------ running them
def register_states(instance: dg.DagsterInstance, input_dir: str | Path) -> list[str]:
    """Add the state keys of ``input_dir``'s members (and ``unknown``) to the ``state`` dynamic
    partitions; returns every key now registered. Keys are never removed here (an old period's
    partitions keep theirs)."""
    keys = partitioning.state_keys(Path(input_dir))
    known = set(instance.get_dynamic_partitions(STATE_DIMENSION))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(STATE_DIMENSION, new)
    return sorted(instance.get_dynamic_partitions(STATE_DIMENSION))


def partition_key(period: str, state: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({PERIOD_DIMENSION: str(period), STATE_DIMENSION: state})


def resolved_partitioned_refresh_job() -> dg.JobDefinition:
    """``partitioned_refresh_job`` of the code location (target for ``dg.reconstructable``)."""
    from assets.definitions import defs

    return defs.resolve_job_def(PARTITIONED_JOB)


def resolved_period_rollup_job() -> dg.JobDefinition:
    """``period_rollup_job`` of the code location (target for ``dg.reconstructable``)."""
    from assets.definitions import defs

    return defs.resolve_job_def(ROLLUP_JOB)


def run_config(input_dir: str | Path, out_dir: str | Path, config_file: str | Path | None = None, *,
               executor: str = "multiprocess") -> dict[str, Any]:
    resource: dict[str, Any] = {"input_dir": str(input_dir), "out_dir": str(out_dir)}
    if config_file:
        resource["config_file"] = str(config_file)
    return {"resources": {"pipeline_config": {"config": resource}}, "execution": {"config": {executor: {}}}}


def run_partition_job(instance: dg.DagsterInstance, period: str, state: str, *, input_dir: str | Path, out_dir: str | Path,
                      config_file: str | Path | None = None, executor: str = "multiprocess") -> dg.JobExecutionResult:
    """One ``partitioned_refresh_job`` run for partition ``period|state`` (multiprocess executor by default)."""
    key = partition_key(period, state)
    tags = {"dagster/partition": str(key), **{f"dagster/partition/{d}": k for d, k in key.keys_by_dimension.items()}}
    return dg.execute_job(dg.reconstructable(resolved_partitioned_refresh_job), instance=instance, tags=tags,
                          run_config=run_config(input_dir, out_dir, config_file, executor=executor))


def run_rollup_job(instance: dg.DagsterInstance, period: str, *, input_dir: str | Path, out_dir: str | Path,
                   config_file: str | Path | None = None, executor: str = "multiprocess") -> dg.JobExecutionResult:
    """One ``period_rollup_job`` run for ``period``."""
    return dg.execute_job(dg.reconstructable(resolved_period_rollup_job), instance=instance, tags={"dagster/partition": str(period)},
                          run_config=run_config(input_dir, out_dir, config_file, executor=executor))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assets.partitions", description="State partitions of the Dagster instance ($DAGSTER_HOME).")
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register-states", help="add the input's state keys (and 'unknown') to the 'state' dynamic partitions")
    reg.add_argument("--input", default=os.environ.get("EQUITY_INPUT_DIR", "demo_out/input"), help="folder of canonical input tables")
    sub.add_parser("list-states", help="print the registered state keys")
    args = parser.parse_args(argv)
    from equity_pipeline.errors import StructuralError

    with dg.DagsterInstance.get() as instance:
        try:
            keys = register_states(instance, args.input) if args.command == "register-states" else sorted(
                instance.get_dynamic_partitions(STATE_DIMENSION))
        except StructuralError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(" ".join(keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
