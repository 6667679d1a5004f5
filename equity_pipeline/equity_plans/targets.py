"""Change against a published baseline, and configured targets (met / not met / insufficient data).

A run covers one measurement year, so the baseline comes from configuration (see
``rules.PlanRules``): a published plan table of an earlier run (``state_metrics.parquet``,
``hospital_metrics.parquet``, or a CSV with the same key columns and ``rate`` or ``value``) and/or
values listed in the config. Suppressed baseline cells (``suppressed`` true or a null value) count as
not publishable. ``change = rate - baseline_value`` only when both are publishable, and only when
both used the same data source where the baseline says which (claims-only and hybrid rates are not
comparable).

Targets: the first target (in list order) whose filters match a row applies to it. Its value is the
row's ``rate``, ``difference`` or ``ratio`` (against the reference group) or ``change``; a difference
or ratio target does not apply to the reference row itself (the next matching target does). Status ``insufficient_data`` when that value is null (suppressed, no reference,
no publishable baseline) or the row (or its reference) has fewer than ``min_denominator`` members;
otherwise ``met`` / ``not_met``.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from equity_pipeline.equity_plans.rules import BASELINE_DEFAULTS, PlanRules, Target
from equity_pipeline.errors import ConfigError

KEY = ["plan", "metric_id", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum"]
MET, NOT_MET, INSUFFICIENT = "met", "not_met", "insufficient_data"


def _read(path: Path) -> pl.DataFrame:
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_csv(path, infer_schema_length=0)
    value = "value" if "value" in frame.columns else "rate" if "rate" in frame.columns else None
    if "metric_id" not in frame.columns or value is None:
        raise ConfigError(f"equity_plans.baseline file {path.name} needs columns metric_id and rate (or value)")
    frame = frame.with_columns(pl.lit(v).alias(k) for k, v in BASELINE_DEFAULTS.items() if k not in frame.columns)
    hidden = pl.col("suppressed").cast(pl.String).str.to_lowercase().is_in(["true", "1", "yes"]).fill_null(False) \
        if "suppressed" in frame.columns else pl.lit(False)
    source = pl.col("data_source").cast(pl.String) if "data_source" in frame.columns else pl.lit(None, pl.String)
    try:
        values = pl.col(value).cast(pl.Float64)
        out = frame.select(*[pl.col(k).cast(pl.String) for k in KEY], baseline_value=pl.when(hidden).then(None).otherwise(values),
                           baseline_data_source=source)
    except pl.exceptions.InvalidOperationError:
        raise ConfigError(f"equity_plans.baseline file {path.name}: column {value} must hold numbers") from None
    return out


def load_baseline(rules: PlanRules) -> pl.DataFrame | None:
    """Baseline cells (KEY, baseline_value, baseline_data_source); config values win over files."""
    if rules.baseline_year is None:
        return None
    parts = [_read(Path(p)) for p in rules.baseline_paths]
    if rules.baseline_values:
        rows = [dict(r) for r in rules.baseline_values]
        parts.append(pl.DataFrame([{**{k: r[k] for k in KEY}, "baseline_value": r["value"], "baseline_data_source": None} for r in rows],
                                  schema={**{k: pl.String for k in KEY}, "baseline_value": pl.Float64, "baseline_data_source": pl.String}))
    # later parts (config values) win over earlier ones (files)
    return pl.concat(parts).reverse().unique(KEY, keep="first", maintain_order=True).reverse()


def apply_baseline(table: pl.DataFrame, baseline: pl.DataFrame | None, year: int | None) -> pl.DataFrame:
    """``baseline_period``, ``baseline_value`` and ``change`` (null unless both sides are publishable)."""
    if baseline is None:
        return table.with_columns(baseline_period=pl.lit(None, pl.String), baseline_value=pl.lit(None, pl.Float64),
                                  change=pl.lit(None, pl.Float64))
    joined = table.join(baseline, on=KEY, how="left")
    comparable = pl.col("baseline_data_source").is_null() | (pl.col("baseline_data_source") == pl.col("data_source"))
    shown = ~pl.col("suppressed") & pl.col("rate").is_not_null() & pl.col("baseline_value").is_not_null() & comparable
    return joined.with_columns(
        baseline_period=pl.when(pl.col("baseline_value").is_not_null()).then(pl.lit(str(year))),
        change=pl.when(shown).then(pl.col("rate") - pl.col("baseline_value")),
    ).drop("baseline_data_source")


def _matches(target: Target) -> pl.Expr:
    cond = pl.lit(True)
    for key, value in target.filters:
        cond = cond & (pl.col(key) == value)
    return cond


def apply_targets(table: pl.DataFrame, targets: tuple[Target, ...], min_denominator: int) -> pl.DataFrame:
    """``target``, ``target_basis`` and ``target_status`` from the first matching target."""
    target = pl.lit(None, pl.Float64)
    basis = pl.lit(None, pl.String)
    status = pl.lit(None, pl.String)
    n = pl.coalesce("members", "denominator")
    for t in reversed(targets):  # the first match wins: build the when-chain from the last target
        value = pl.col(t.statistic)
        applies = _matches(t)
        small = n < min_denominator
        if t.statistic in ("difference", "ratio"):
            applies = applies & ~pl.col("is_reference").fill_null(False)
            small = small | (pl.col("reference_n") < min_denominator).fill_null(True)
        ok = (value <= t.value) if t.operator == "<=" else (value >= t.value)
        verdict = (pl.when(value.is_null() | pl.col("suppressed") | small.fill_null(True)).then(pl.lit(INSUFFICIENT))
                   .when(ok).then(pl.lit(MET)).otherwise(pl.lit(NOT_MET)))
        target = pl.when(applies).then(pl.lit(t.value)).otherwise(target)
        basis = pl.when(applies).then(pl.lit(t.basis)).otherwise(basis)
        status = pl.when(applies).then(verdict).otherwise(status)
    return table.with_columns(target=target, target_basis=basis, target_status=status)
