"""The published shape of the plan tables (long format) and the steps every table ends with."""
from __future__ import annotations

from collections.abc import Callable

import polars as pl

from equity_pipeline.equity_plans.compare import compare_to_reference
from equity_pipeline.equity_plans.rules import PlanRules
from equity_pipeline.equity_plans.targets import apply_baseline, apply_targets, load_baseline
from equity_pipeline.stratify import rate_and_ci

#: columns of public/equity_plan/state_metrics.parquet and hospital_metrics.parquet (docs/equity_plans.md)
COLUMNS: dict[str, pl.DataType] = {
    "plan": pl.String, "program": pl.String, "rules_version": pl.String, "metric_id": pl.String,
    "metric_title": pl.String, "measure_id": pl.String, "submeasure": pl.String, "period": pl.String,
    "unit_level": pl.String, "unit_id": pl.String, "payer": pl.String, "stratifier": pl.String, "stratum": pl.String,
    "members": pl.Int64, "numerator": pl.Float64, "denominator": pl.Float64, "rate": pl.Float64,
    "ci_lower": pl.Float64, "ci_upper": pl.Float64, "rate_type": pl.String, "rate_per": pl.Float64,
    "direction": pl.String, "data_source": pl.String, "derived_from": pl.String, "suppressed": pl.Boolean,
    "suppression_reason": pl.String, "reference_stratum": pl.String, "is_reference": pl.Boolean,
    "difference": pl.Float64, "difference_ci_lower": pl.Float64, "difference_ci_upper": pl.Float64,
    "ratio": pl.Float64, "ratio_ci_lower": pl.Float64, "ratio_ci_upper": pl.Float64,
    "baseline_period": pl.String, "baseline_value": pl.Float64, "change": pl.Float64,
    "target": pl.Float64, "target_basis": pl.String, "target_status": pl.String,
}
KEY = ["plan", "metric_id", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum"]
#: values nulled on suppressed rows
HIDDEN = ("members", "numerator", "denominator", "rate", "ci_lower", "ci_upper")
#: unit levels in publication order
UNIT_ORDER = {"population": 0, "state": 1, "region": 2, "facility": 3}


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=COLUMNS)


def with_rates(cells: pl.DataFrame) -> pl.DataFrame:
    """rate and 95% CI from the true counts (Wilson for shares of people, stays and visits; exact or
    Byar's Poisson limits x rate_per for event rates), as public/rates computes them."""
    if cells.height == 0:
        return cells.with_columns(rate=pl.lit(None, pl.Float64), ci_lower=pl.lit(None, pl.Float64), ci_upper=pl.lit(None, pl.Float64))
    out = rate_and_ci(cells.with_columns(pl.col("rate_per").cast(pl.Float64)).with_row_index("_order")).sort("_order").drop("_order")
    return out


def published(cells: pl.DataFrame) -> pl.DataFrame:
    """Suppressed cells -> publishable rows: only ``publish`` rows, hidden values nulled."""
    rows = cells.filter(pl.col("publish"))
    return rows.with_columns(pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in HIDDEN)


def finish(rows: pl.DataFrame, rules: PlanRules, plan: str, period: str,
           after_compare: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> pl.DataFrame:
    """Comparisons with the reference group (then ``after_compare``, e.g. comparisons taken from
    another table), change against the baseline, targets; columns in order."""
    if rows.height == 0:
        return empty()
    rows = rows.with_columns(plan=pl.lit(plan), program=pl.lit(rules.program), rules_version=pl.lit(rules.version),
                             period=pl.lit(period))
    rows = compare_to_reference(rows, dict(rules.reference_groups))
    if after_compare is not None:
        rows = after_compare(rows)
    rows = apply_baseline(rows, load_baseline(rules), rules.baseline_year)
    rows = apply_targets(rows, rules.targets, rules.min_denominator)
    rows = rows.with_columns(pl.col("members").round(0).cast(pl.Int64))
    for name, dtype in COLUMNS.items():
        if name not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype).alias(name))
    rows = rows.with_columns(_u=pl.col("unit_level").replace_strict(UNIT_ORDER, default=9, return_dtype=pl.Int8))
    return rows.sort("metric_id", "submeasure", "_u", "unit_id", "payer", "stratifier", "stratum").select(
        [pl.col(c).cast(t) for c, t in COLUMNS.items()])


__all__ = ["COLUMNS", "KEY", "empty", "finish", "published", "with_rates"]
