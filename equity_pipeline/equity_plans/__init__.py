"""Health-equity plan metrics: the statewide plan (AHEAD-style) and the hospital plan.

- :mod:`.rules` program rules with effective dates (``program_rules.yaml``) and config overrides;
- :mod:`.cells` own-computed cells, their margins and their suppression (``suppression.suppress``);
- :mod:`.state` ``public/equity_plan/state_metrics.parquet``;
- :mod:`.hospital` ``public/equity_plan/hospital_metrics.parquet``;
- :mod:`.compare` each stratum against the program's reference group;
- :mod:`.targets` change against a published baseline, and targets.

No Dagster imports here; the assets (group ``equity_plans``) call ``pipeline.build_state_metrics`` and
``pipeline.build_hospital_metrics``. Columns: docs/equity_plans.md.
"""
