"""equity_pipeline: health-equity disparity stratification over claims, REL and SDOH data.

The package is the domain library: pure functions over polars frames. Dagster lives in ``assets/``
and is imported only by the CLI.
"""
__version__ = "0.1.0"
