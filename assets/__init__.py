"""Dagster code location for equity_pipeline: thin assets over the domain library."""
