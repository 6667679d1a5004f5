"""The code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

import dagster as dg

from assets.equity_plans import equity_plan_assets
from assets.ingest import table_assets
from assets.jobs import IN_PROCESS
from assets.invariants import invariant_checks
from assets.measures import measure_assets, measure_events
from assets.partitions import PARTITIONS_GROUP, partition_assets, partition_jobs, partition_schedules, partition_sensors
from assets.reports import (
    audit_pack, equity_report, equity_workbook, fhir_measure_reports, rel_completeness, run_manifest, state_plan_report,
)
from assets.resources import PipelineResource
from assets.sensors import sensors
from assets.sources import canonical_input
from assets.stratification import disparities, imputed_race_rates, member_attributes, public_rates, standardized_rates, stratified_counts
from assets.validation import gx_checks, validation_assets

ALL_ASSETS = [canonical_input, *table_assets, measure_events, *measure_assets, member_attributes, stratified_counts, public_rates, disparities, imputed_race_rates, standardized_rates, rel_completeness, equity_report, equity_workbook, state_plan_report, fhir_measure_reports, run_manifest, audit_pack,
              *equity_plan_assets, *validation_assets]

# Runs of the job execute their steps in the run's own process unless the run config asks for
# `execution: config: multiprocess`: a process per step re-imports the code location (about 2-3 s a
# step for some 60 steps), which made a 2,000-member run 123 s instead of 43 and a 1,000,000-member
# run 313 s instead of about 250, with a higher peak (docs/operations.md, docs/performance.md).
# The default run config is merged with a run's own (resources, a schedule's or sensor's request).
# Assets materialised outside a job (the Assets page) run in process too: the code location's executor.
equity_pipeline_job = dg.define_asset_job("equity_pipeline_job", selection=dg.AssetSelection.all() - dg.AssetSelection.groups(PARTITIONS_GROUP), description="The whole pipeline: ingest -> measures -> stratification -> reports.",
                                          config=IN_PROCESS, executor_def=dg.multi_or_in_process_executor)

monthly_refresh = dg.ScheduleDefinition(name="monthly_refresh", job=equity_pipeline_job, cron_schedule="0 6 2 * *",
                                        description="Monthly refresh on the 2nd at 06:00, after the month's claims land.")

defs = dg.Definitions(
    assets=[*ALL_ASSETS, *partition_assets],  # partitions: the period x state job of assets/partitions.py
    asset_checks=[*gx_checks, *invariant_checks],
    jobs=[equity_pipeline_job, *partition_jobs],
    schedules=[monthly_refresh, *partition_schedules],
    sensors=[*sensors, *partition_sensors],
    resources={"pipeline_config": PipelineResource()},
    executor=dg.in_process_executor,
)
