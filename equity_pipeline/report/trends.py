"""Trends across periods: this run's public rates with earlier runs' public rates tables.

A run covers one measurement period, so a trend needs the published rates of earlier periods: the
config's ``trend: {history: [...]}`` lists earlier runs' ``public/rates.parquet`` (or ``.csv``) files,
and :func:`trend_rates` takes any plain list of such files or frames (e.g. one
``OUT/periods/<p>/public/rates.parquet`` per period). Only public, already suppressed rows are read,
and a row flagged ``suppressed`` never passes on a number, even if its file (wrongly) still held one.

What is trended: per measure of this run, all members (``unit_level = population``), the whole measure
(``submeasure = all``), the overall rate and each race and ethnicity group (``TREND_STRATIFIERS``).
Per measure and period one table supplies all rows (this run for its own period, else the last file
listed that has the period), so the suppression pattern of a period is that of the table it came
from. Rows are left out, and counted in :attr:`Trends.left_out`, when their data source or rate type
differs from this run's for the measure: claims-only and hybrid rates are not comparable, and neither
are rates on different scales.

The report draws one small-multiples chart per measure with two or more periods
(:func:`equity_pipeline.charts.plot_trends`) and a table of the same numbers; the workbook gets the
trend table as its ``trends`` sheet. See docs/reports.md.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

#: Columns a rates table must have to serve as trend history (the public rates have them all).
HISTORY_REQUIRED: tuple[str, ...] = (
    "measure_id", "period", "stratifier", "stratum", "rate", "ci_lower", "ci_upper", "suppressed", "denominator",
)
#: Stratifiers trended (besides the reporting unit's overall row).
TREND_STRATIFIERS: tuple[str, ...] = ("overall", "race_ethnicity")
#: The trend table's columns, in order (the workbook's ``trends`` sheet).
TREND_COLUMNS: tuple[str, ...] = (
    "measure_id", "measure_title", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum",
    "denominator", "numerator", "rate", "ci_lower", "ci_upper", "suppressed", "suppression_reason",
    "rate_type", "rate_per", "data_source", "direction", "source",
)
#: ``source`` of the rows of the current run.
THIS_RUN = "this run"
_NUMBERS = ("denominator", "numerator", "rate", "ci_lower", "ci_upper")
_DEFAULTS = {"submeasure": "all", "unit_level": "population", "unit_id": "all"}
_META = ("measure_title", "rate_type", "rate_per", "data_source", "direction")


class Trends(NamedTuple):
    """The trend table (``TREND_COLUMNS``) and the history rows left out, counted per measure,
    period, source and reason (``measure_id, period, source, reason, rows``)."""

    table: pl.DataFrame
    left_out: pl.DataFrame


def missing_history_columns(columns: Iterable[str]) -> list[str]:
    """The required columns (``HISTORY_REQUIRED``) a table lacks."""
    have = set(columns)
    return [c for c in HISTORY_REQUIRED if c not in have]


def source_name(path: str | Path) -> str:
    """How a history file is named in the report: its last three path parts
    (``2023/public/rates.parquet``), never the absolute path."""
    return "/".join(Path(path).parts[-3:])


def read_rates_file(path: str | Path) -> pl.DataFrame:
    """A rates table from ``.parquet`` or ``.csv``; ValueError naming the file if it lacks a required column."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        frame = pl.read_csv(path, infer_schema_length=None)
    else:
        frame = pl.read_parquet(path)
    missing = missing_history_columns(frame.columns)
    if missing:
        raise ValueError(f"trend history {path.name}: not a public rates table, missing column(s) {missing}")
    return frame


def _suppressed_flag(frame: pl.DataFrame) -> pl.Expr:
    """``suppressed`` as a boolean; text true/1/yes, and a missing flag counts as suppressed (safe side)."""
    dtype = frame.schema["suppressed"]
    if dtype == pl.Boolean:
        flag = pl.col("suppressed")
    elif dtype == pl.String:
        flag = pl.col("suppressed").str.strip_chars().str.to_lowercase().is_in(["true", "1", "yes", "t"])
        flag = pl.when(pl.col("suppressed").is_null()).then(None).otherwise(flag)
    else:
        flag = pl.col("suppressed").cast(pl.Boolean)
    return flag.fill_null(True)


def _normalise(frame: pl.DataFrame, source: str, order: int) -> pl.DataFrame:
    """One table's trend rows: defaults for absent key columns, numbers of suppressed rows nulled,
    one public suppression reason, the trended scope only."""
    from equity_pipeline.suppression import PUBLIC_REASON

    missing = missing_history_columns(frame.columns)
    if missing:
        raise ValueError(f"trend history {source}: not a public rates table, missing column(s) {missing}")
    hidden = _suppressed_flag(frame)
    cols = [
        *[pl.col(c).cast(pl.String) for c in ("measure_id", "stratifier", "stratum")],
        pl.col("period").cast(pl.String),
        *[(pl.col(c).cast(pl.String) if c in frame.columns else pl.lit(v)).fill_null(v).alias(c) for c, v in _DEFAULTS.items()],
        *[pl.when(hidden).then(None).otherwise(pl.col(c).cast(pl.Float64)).alias(c) if c in frame.columns
          else pl.lit(None, pl.Float64).alias(c) for c in _NUMBERS],
        hidden.alias("suppressed"),
        pl.when(hidden).then(pl.lit(PUBLIC_REASON)).otherwise(None).alias("suppression_reason"),
        *[(pl.col(c).cast(pl.Float64) if c == "rate_per" else pl.col(c).cast(pl.String)).alias(c) if c in frame.columns
          else pl.lit(None, pl.Float64 if c == "rate_per" else pl.String).alias(c) for c in _META],
        pl.lit(source).alias("source"), pl.lit(order).alias("_order"),
    ]
    out = frame.select(cols)
    return out.filter((pl.col("unit_level") == "population") & (pl.col("unit_id") == "all") & (pl.col("submeasure") == "all")
                      & pl.col("stratifier").is_in(list(TREND_STRATIFIERS))
                      & ((pl.col("stratifier") != "overall") | (pl.col("stratum") == "all")))


def trend_rates(current: pl.DataFrame | None, history: Sequence[str | Path | pl.DataFrame] = ()) -> Trends:
    """The trend table of this run's rates (``current``, the public rates) with ``history``: earlier
    public rates tables as files (parquet or CSV) or frames, in any order.

    Only measures of ``current`` are trended (all of ``history``'s when ``current`` is None). Per
    measure and period, the rows come from one table: ``current`` when it has the period, else the
    last ``history`` entry that has it. History rows whose data source or rate type (and ``rate_per``)
    differ from ``current``'s for the measure are left out and counted in ``left_out``. The measure's
    title, direction, data source and rate type are this run's on every row."""
    parts = []
    if current is not None:
        parts.append(_normalise(current, THIS_RUN, len(history) + 1))
    for i, item in enumerate(history):
        if isinstance(item, pl.DataFrame):
            parts.append(_normalise(item, f"history[{i}]", i))
        else:
            parts.append(_normalise(read_rates_file(item), source_name(item), i))
    empty_left = pl.DataFrame(schema={"measure_id": pl.String, "period": pl.String, "source": pl.String,
                                      "reason": pl.String, "rows": pl.UInt32})
    if not parts:
        return Trends(pl.DataFrame(schema={**{c: pl.String for c in TREND_COLUMNS}, **{c: pl.Float64 for c in (*_NUMBERS, "rate_per")},
                                           "suppressed": pl.Boolean}).select(TREND_COLUMNS), empty_left)
    rows = pl.concat(parts, how="vertical_relaxed")
    if current is not None:
        meta = (parts[0].group_by("measure_id", maintain_order=True)
                .agg(*[pl.col(c).drop_nulls().first().alias(f"_{c}") for c in _META]))
        rows = rows.join(meta, on="measure_id", how="inner")  # measures of this run only
        same_source = (pl.col("data_source").is_null() | pl.col("_data_source").is_null()
                       | (pl.col("data_source") == pl.col("_data_source")))
        same_type = ((pl.col("rate_type").is_null() | pl.col("_rate_type").is_null() | (pl.col("rate_type") == pl.col("_rate_type")))
                     & (pl.col("rate_per").is_null() | pl.col("_rate_per").is_null() | (pl.col("rate_per") == pl.col("_rate_per"))))
        rows = rows.with_columns(_reason=pl.when(~same_source).then(pl.lit("another data source (not comparable)"))
                                 .when(~same_type).then(pl.lit("another rate type or scale")).otherwise(None))
        left_out = (rows.filter(pl.col("_reason").is_not_null())
                    .group_by("measure_id", "period", "source", pl.col("_reason").alias("reason")).agg(rows=pl.len())
                    .sort("measure_id", "period", "source"))
        rows = rows.filter(pl.col("_reason").is_null()).with_columns(
            *[pl.coalesce(pl.col(f"_{c}"), pl.col(c)).alias(c) for c in _META])
    else:
        left_out = empty_left
    # one table per measure x period: this run, else the last history entry that has it
    winner = rows.group_by("measure_id", "period").agg(_win=pl.col("_order").max())
    rows = rows.join(winner, on=["measure_id", "period"]).filter(pl.col("_order") == pl.col("_win"))
    rows = rows.unique(subset=["measure_id", "period", "stratifier", "stratum"], keep="first", maintain_order=True)
    table = (rows.with_columns(_o=pl.col("stratifier") != "overall")
             .sort("measure_id", "period", "_o", "stratum").select(TREND_COLUMNS))
    return Trends(table, left_out.select("measure_id", "period", "source", "reason", pl.col("rows").cast(pl.UInt32)))


# ---------------------------------------------------------------------------------------------------
# the report's trend blocks


def _series_order(strata: list[str]) -> list[str]:
    from equity_pipeline.report.render import NON_RESPONSE_STRATA

    return sorted(strata, key=lambda s: (s in NON_RESPONSE_STRATA, s))


def _denominator_text(value: float | None, scale: Any) -> str:
    """'n = 1,234' (people), '6,000 member-months', '$1,234,567 spend' by rate type."""
    from equity_pipeline.report.render import format_count, format_usd_total

    if scale.rate_type == "proportion":
        return f"n = {format_count(value)}"
    if scale.rate_type == "share_of_spend":
        return f"{format_usd_total(value)} spend"
    if scale.exposure or scale.is_money:
        return f"{format_count(value)} {scale.exposure or 'member-months'}"
    return f"denominator {format_count(value)}"


def trend_block(trends: Trends | None, measure_id: str, title: str, scale: Any, source_label: str,
                draw: bool = True, jobs: Any = None) -> dict[str, Any]:
    """The report's trend subsection of one measure: with two or more periods a chart (small
    multiples: overall, then each race and ethnicity group) and a table of the same numbers (rate,
    CI, denominator per group and period; suppressed cells their label only); with one period a
    sentence saying so, and no chart. ``jobs`` (a :class:`~equity_pipeline.chart_pool.ChartJobs`):
    the chart is added to it and its image is in the block once ``jobs`` has run; else it is drawn now."""
    from equity_pipeline.charts import MAX_TREND_PANELS, TrendChart, TrendPoint, TrendSeries, trend_png
    from equity_pipeline.charts import png_pixels
    from equity_pipeline.report.render import PNG_DPI, _png_image, _slug, format_count, suppression_label

    frame = pl.DataFrame() if trends is None else trends.table.filter(pl.col("measure_id") == measure_id)
    periods = sorted(frame.get_column("period").unique().to_list()) if frame.height else []
    left = [] if trends is None else trends.left_out.filter(pl.col("measure_id") == measure_id).to_dicts()
    block: dict[str, Any] = {"anchor": _slug(measure_id, "trend"), "periods": periods, "single": len(periods) < 2,
                             "img": "", "img_width": 0, "img_height": 0, "alt": "", "rows": [], "caption": "",
                             "left_out": [f"{r['period']} ({r['source']}): {r['rows']} rows, {r['reason']}" for r in left]}
    if len(periods) < 2:
        block["text"] = (f"One period only ({periods[0] if periods else 'none'}): a trend needs the public rates of earlier "
                         "periods (config trend.history).")
        return block
    by_key = {(r["stratifier"], r["stratum"], r["period"]): r for r in frame.iter_rows(named=True)}
    groups = [("overall", "all", "All members")] + [
        ("race_ethnicity", s, s) for s in _series_order(
            frame.filter(pl.col("stratifier") == "race_ethnicity").get_column("stratum").unique().to_list())]
    series, rows = [], []
    for strat, stratum, label in groups:
        points, cells = [], []
        for p in periods:
            r = by_key.get((strat, stratum, p))
            if r is None:
                cells.append({"kind": "absent", "text": "\u2014"})
                continue
            if r["suppressed"]:
                points.append(TrendPoint(p, True, None, None, None))
                cells.append({"kind": "suppressed", "text": suppression_label(r["suppression_reason"])})
                continue
            points.append(TrendPoint(p, False, r["rate"], r["ci_lower"], r["ci_upper"]))
            cells.append({"kind": "shown", "rate": scale.number(r["rate"]), "ci": scale.ci(r["ci_lower"], r["ci_upper"]),
                          "denominator": _denominator_text(r["denominator"], scale)})
        series.append(TrendSeries(label, points))
        rows.append({"group": label, "cells": cells})
    shown = [r for r in frame.iter_rows(named=True) if not r["suppressed"] and r["denominator"] is not None]
    n_sup = int(frame.get_column("suppressed").sum())
    sources = dict(frame.select("period", "source").unique().sort("period").iter_rows())
    caption = ("Each panel is one group: the line is the rate per period, the band its 95% confidence interval; the "
               "dashed line is the rate for all members. A grey cross on a panel's x axis marks a suppressed period "
               "(no value is drawn); a gap is a period without a published row. ")
    if shown:
        dens = [r["denominator"] for r in shown]
        caption += f"Denominators of the cells shown: {format_count(min(dens))} to {format_count(max(dens))}. "
    caption += (f"{n_sup} of {frame.height} cells suppressed (cell-size policy). " if n_sup else "No cell suppressed. ")
    caption += ("Periods from: " + "; ".join(f"{p}: {s}" for p, s in sources.items()) + f". Data source: {source_label}.")
    block.update(rows=rows, caption=caption, rate_header=scale.column_label,
                 groups_charted=min(len(series), MAX_TREND_PANELS), groups=len(series))
    block["alt"] = (f"Trend chart of {title} from {periods[0]} to {periods[-1]}, all members and by race and ethnicity, "
                    f"with 95% confidence bands; {n_sup} suppressed cells marked without a value. All values are in the table.")
    if draw:
        chart = TrendChart(periods=periods, series=series, title=title,
                           subtitle=f"by period, all members and by race and ethnicity ({scale.column_label.lower()})",
                           scale=scale)
        done = _png_image(block)
        if jobs is not None:
            jobs.add(chart, done)
        else:
            png = trend_png(chart)
            done(png, png_pixels(png)[1] / PNG_DPI)
    return block


__all__ = ["HISTORY_REQUIRED", "THIS_RUN", "TREND_COLUMNS", "TREND_STRATIFIERS", "Trends", "missing_history_columns",
           "read_rates_file", "source_name", "trend_block", "trend_rates"]
