"""Render the equity report (``report/index.html``) from the public rates table and the run manifest.

The page is self-contained: inline CSS, charts embedded as base64 PNG data URIs, no scripts, no
external fonts, styles or images, so it opens offline and can be e-mailed as one file. Everything on
it comes from the public (already suppressed) ``rates`` table and from the manifest's run metadata
and row counts; no member-level data is ever passed in.

Every rate type of the rates table is shown in its own unit (see :class:`equity_pipeline.charts.RateScale`):
percentages for proportions and shares of spend, "per 1,000 member-months" / "per 100,000
member-years" for event rates, dollars PMPM for cost. A measure's ``direction`` decides which group
the summary calls worst and best.

Layout: run summary (run id, period, data sources, per-table row counts, one plain-language line per
measure naming the worst and best race/ethnicity group) -> per measure: sub-measure table (age or
domain rows of the whole population, when the measure has them) -> per reporting unit -> per
stratifier. The population unit gets a chart (rates with 95% CI whiskers and the overall rate as
reference) for the main stratifiers (``POPULATION_CHART_STRATIFIERS``) and tables for the rest; the other units (states) a chart for race and ethnicity only and
collapsible tables for the other stratifiers. Every chart has its table of values.

With the optional public tables: ``disparities`` adds the executive summary of the largest
significant gaps (:func:`largest_gaps`) and, per measure, rate-ratio forest plots against the
reference group (:func:`_forest_blocks`); ``completeness`` adds the REL data completeness panel
(:func:`completeness_context`); ``trends`` (this run's rates with earlier runs', see
:mod:`equity_pipeline.report.trends`) a trend chart and table per measure, or a line saying there
is one period only. See docs/reports.md.

Speed: the charts are collected while the page is built and drawn at the end, on reused canvases
(:class:`~equity_pipeline.charts.ChartCanvas`, the forest canvas), in worker processes as well when
there are several cores (:mod:`equity_pipeline.chart_pool`, ``EQUITY_PIPELINE_WORKERS``); the page is
the same byte for byte whoever draws it.
"""
from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined

from equity_pipeline.chart_pool import ChartJobs
from equity_pipeline.charts import (
    FIG_WIDTH,
    MAX_FOREST_ROWS,
    NO_RATE,
    PNG_DPI,
    PROPORTION,
    ForestChart,
    GroupRate,
    RateChart,
    RateScale,
    RatioPoint,
    figure_png,
    png_pixels,
    groups_from_rows,
    stratifier_label,
    submeasure_label,
    submeasure_sort_key,
)
from equity_pipeline.report.completeness import ATTRIBUTE_LABELS, CATEGORY_LABELS
from equity_pipeline.report.gaps import Comparison, comparisons, unit_comparisons
from equity_pipeline.report.trends import Trends, trend_block, trend_rates
from equity_pipeline.suppression import PUBLIC_REASON

REQUIRED_COLUMNS: tuple[str, ...] = (
    "measure_id", "measure_title", "measure_version", "submeasure", "period", "unit_level", "unit_id",
    "stratifier", "stratum", "members", "denominator", "numerator", "rate", "ci_lower", "ci_upper",
    "rate_type", "rate_per", "suppressed", "suppression_reason", "data_source", "direction",
)

#: Stratifiers in display order; any others follow alphabetically. 'overall' is the reference line.
STRATIFIER_ORDER: tuple[str, ...] = ("race_ethnicity", "language", "county")
SUMMARY_STRATIFIER = "race_ethnicity"
#: Reporting units other than the population get a chart only for these stratifiers (tables for the rest).
SUBUNIT_CHART_STRATIFIERS: tuple[str, ...] = ("race_ethnicity",)
#: The population unit gets a rate chart for these stratifiers; every other stratifier (sex, age
#: band, SDOH need, intersections, ...) gets its table only. About 0.15 s of matplotlib per chart,
#: so charting all of ~12 stratifiers x ~20 measures would dominate the run on small data.
POPULATION_CHART_STRATIFIERS: tuple[str, ...] = ("race_ethnicity", "ethnicity", "language", "lep", "county", "payer", "rurality")
#: Rate-ratio forest plots are drawn for these stratifiers (the disparities table has all of them).
FOREST_STRATIFIERS: tuple[str, ...] = ("race_ethnicity", "ethnicity", "language", "payer", "rurality")
#: The whole-measure row of the ``submeasure`` column.
WHOLE_MEASURE = "all"
#: Non-response strata: shown in every chart and table, but not picked as worst/best group in the
#: run summary (their rate says more about data collection than about a population), unless fewer
#: than two other groups are unsuppressed.
NON_RESPONSE_STRATA: frozenset[str] = frozenset({"Unknown", "Declined"})

SUPPRESSION_RULE = (
    "Small cells are suppressed: a proportion when its numerator, denominator or complement is 1\u201310, "
    "an event rate when its members or events are 1\u201310, a cost measure when its members are 1\u201310. "
    "Complementary suppression withholds further cells wherever a suppressed value could otherwise be worked "
    "out by subtraction (across groups, states and sub-measures). Both are marked alike, "
    "\u2018suppressed (cell-size policy)\u2019: which rule withheld a cell is not shown, because that too "
    "would narrow its hidden value."
)
SUPPRESSION_RULE_SHORT: dict[str, str] = {
    "proportion": "cells with a numerator, denominator or complement of 1\u201310 are suppressed, plus complementary suppression.",
    "event": "cells with 1\u201310 members or 1\u201310 events are suppressed, plus complementary suppression.",
    "cost": "cells with 1\u201310 members are suppressed, plus complementary suppression.",
}
#: the text of every suppressed cell: the public tables give one reason for all of them
#: (``suppression.PUBLIC_REASON``), never whether a cell is small or complementary
SUPPRESSED_LABEL = f"suppressed ({PUBLIC_REASON})"

DATA_SOURCE_LABELS: dict[str, str] = {
    "claims": "administrative claims",
    "clinical": "clinical (EHR) records",
    "hybrid": "hybrid: claims plus clinical records",
}
DIRECTION_LABELS: dict[str, str] = {
    "higher_is_better": "higher is better",
    "lower_is_better": "lower is better",
}
UNIT_LEVEL_ORDER: tuple[str, ...] = ("population", "state")

#: What each rate type means, for the "About" section (only the types present are listed).
RATE_TYPE_NOTES: dict[str, str] = {
    "proportion": (
        "Proportions: the share of eligible members (denominator) who met the measure (numerator), in percent "
        "with one decimal; 95% confidence intervals are Wilson score intervals. Gaps between groups are in "
        "percentage points."
    ),
    "share_of_spend": (
        "Shares of spend: the paid amount counted by the measure as a share of all paid amounts, in percent; "
        "95% confidence intervals come from a ratio estimator (normal approximation over members)."
    ),
    "per_member_months": (
        "Event rates per member-months: events divided by months of enrollment, per 1,000 member-months unless "
        "stated; 95% confidence intervals are exact Poisson limits below 10 events and Byar's approximation from 10."
    ),
    "per_member_years": (
        "Event rates per member-years: events divided by years of enrollment (member-months / 12), per 100,000 "
        "member-years unless stated; 95% confidence intervals are exact Poisson limits below 10 events and "
        "Byar's approximation from 10."
    ),
    "usd_pmpm": (
        "Cost per member per month (PMPM): paid US dollars divided by member-months; 95% confidence intervals "
        "come from a ratio estimator (normal approximation over members). Differences between groups are in "
        "dollars PMPM, with their ratio."
    ),
}

CSS_PX_PER_INCH = 96

TEMPLATE_NAME = "report.html.j2"


# ---------------------------------------------------------------------------------------------------
# formatting helpers


def format_count(value: float | None) -> str:
    """12345 -> '12,345'; 3616.08 -> '3,616.1' (member-years); None -> ''."""
    if value is None:
        return ""
    v = float(value)
    return f"{int(round(v)):,}" if abs(v - round(v)) < 1e-9 else f"{v:,.1f}"


def format_usd_total(value: float | None) -> str:
    """Dollar totals in tables: 6696100.4 -> '$6,696,100'."""
    if value is None:
        return ""
    r = round(float(value)) + 0
    return f"{'-' if r < 0 else ''}${abs(r):,.0f}"


def suppression_label(reason: str | None) -> str:
    """Text shown in place of the numbers of a suppressed cell: never any of its numbers, nor which
    kind of cell-size suppression hid it (a complementary cell is 0 or at least 11, which narrows a
    hidden pair): the public reason and the restricted kinds (small cell, complementary) all show as
    :data:`SUPPRESSED_LABEL`. Any other stated reason is shown in words."""
    if reason is None or not str(reason).strip():
        return "suppressed"
    text = str(reason).strip().lower()
    if text == NO_RATE:
        return "no rate available"
    if text == PUBLIC_REASON or any(k in text for k in ("complement", "small", "cell", "1-10", "1\u201310", "minimum", "min_",
                                                       "threshold", "<11", "lt11")):
        return SUPPRESSED_LABEL
    return f"suppressed ({text.replace('_', ' ')})"


def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts if p)


def _unit_label(unit_level: str, unit_id: str) -> str:
    if unit_level == "population" or unit_id == "all":
        return "All members"
    return f"{unit_level.replace('_', ' ').capitalize()}: {unit_id}"


def _rate_text(g: GroupRate, scale: RateScale = PROPORTION) -> str:
    """'64.1% (62.0–66.1)', '30.7 per 1,000 member-months (29.3–32.2)'; no brackets without a CI."""
    return scale.rate_with_ci(g.rate, g.ci_lower, g.ci_upper)


def _rule_short(scale: RateScale) -> str:
    if scale.rate_type == "proportion":
        return SUPPRESSION_RULE_SHORT["proportion"]
    if scale.exposure:
        return SUPPRESSION_RULE_SHORT["event"]
    return SUPPRESSION_RULE_SHORT["cost"] if scale.rate_type in ("usd_pmpm", "share_of_spend") else SUPPRESSION_RULE_SHORT["proportion"]


@dataclass(frozen=True)
class CountColumn:
    """One count column of a table: header and how a group's value reads."""

    header: str
    value: Callable[[GroupRate], str]


def count_columns(scale: RateScale, groups: list[GroupRate]) -> list[CountColumn]:
    """The count columns for a measure's rate type (members always among them).

    Proportions: members are the denominator, shown once as "Members (denominator)" (separately if a
    table's members ever differ from its denominators). Event rates: members, member-months or -years,
    events. Cost PMPM: members, member-months, total paid. Share of spend: members, total spend,
    numerator spend.
    """
    members = CountColumn("Members", lambda g: format_count(g.members))
    if scale.rate_type == "proportion":
        same = all(g.members is None or g.denominator is None or abs(g.members - g.denominator) < 1e-9
                   for g in groups if not g.suppressed)
        numerator = CountColumn("Numerator", lambda g: format_count(g.numerator))
        if same:
            return [CountColumn("Members (denominator)",
                                lambda g: format_count(g.denominator if g.denominator is not None else g.members)),
                    numerator]
        return [members, CountColumn("Denominator", lambda g: format_count(g.denominator)), numerator]
    if scale.exposure:
        return [members, CountColumn(scale.exposure.capitalize(), lambda g: format_count(g.denominator)),
                CountColumn("Events", lambda g: format_count(g.numerator))]
    if scale.rate_type == "usd_pmpm":
        return [members, CountColumn("Member-months", lambda g: format_count(g.denominator)),
                CountColumn("Total paid", lambda g: format_usd_total(g.numerator))]
    if scale.rate_type == "share_of_spend":
        return [members, CountColumn("Total spend", lambda g: format_usd_total(g.denominator)),
                CountColumn("Numerator spend", lambda g: format_usd_total(g.numerator))]
    return [members, CountColumn("Denominator", lambda g: format_count(g.denominator)),
            CountColumn("Numerator", lambda g: format_count(g.numerator))]


# ---------------------------------------------------------------------------------------------------
# summary


@dataclass(frozen=True)
class Extremes:
    """Lowest and highest unsuppressed groups of one measure x unit x stratifier, and which of them
    is worst and best by the measure's ``direction`` (None when the direction is not stated)."""

    lowest: GroupRate
    highest: GroupRate
    non_response_excluded: bool
    direction: str | None = None

    @property
    def worst(self) -> GroupRate | None:
        return {"higher_is_better": self.lowest, "lower_is_better": self.highest}.get(self.direction or "")

    @property
    def best(self) -> GroupRate | None:
        return {"higher_is_better": self.highest, "lower_is_better": self.lowest}.get(self.direction or "")

    @property
    def tied(self) -> bool:
        return self.lowest.rate == self.highest.rate


def extremes(groups: list[GroupRate], direction: str | None = None) -> Extremes | None:
    """Lowest and highest unsuppressed group by rate (ties broken by name); None if < 2 groups."""
    shown = [g for g in groups if not g.suppressed and g.rate is not None]
    known = [g for g in shown if g.stratum not in NON_RESPONSE_STRATA]
    pool, excluded = (known, len(known) < len(shown)) if len(known) >= 2 else (shown, False)
    if len(pool) < 2:
        return None
    lowest = min(pool, key=lambda g: (g.rate, g.stratum))
    highest = min((g for g in pool if g is not lowest), key=lambda g: (-g.rate, g.stratum))
    return Extremes(lowest=lowest, highest=highest, non_response_excluded=excluded, direction=direction)


def summary_comparison(groups: list[GroupRate], direction: str | None = None, scale: RateScale = PROPORTION) -> str:
    """Worst vs best group in plain language, e.g.
    '64.1% (62.0–66.1) for Hispanic or Latino (worst) vs 74.0% (73.1–74.9) for White (best)' when the
    direction is higher_is_better; for lower_is_better the highest rate is the worst. Without a
    direction: '<lowest> for A vs <highest> for B'.
    """
    ext = extremes(groups, direction)
    if ext is None:
        unsuppressed = [g for g in groups if not g.suppressed]
        if not groups:
            return "no race and ethnicity breakdown in this run"
        if not unsuppressed:
            return "all race and ethnicity groups are suppressed"
        only = unsuppressed[0]
        return f"only one race and ethnicity group can be shown: {_rate_text(only, scale)} for {only.stratum}"
    if scale.rounded(ext.lowest.rate) == scale.rounded(ext.highest.rate):
        n = len([g for g in groups if not g.suppressed and g.rate is not None
                 and (not ext.non_response_excluded or g.stratum not in NON_RESPONSE_STRATA)])
        return f"no difference between the {n} groups that can be shown: all {scale.text(ext.lowest.rate)}"
    if ext.worst is not None and ext.best is not None:
        return (f"{_rate_text(ext.worst, scale)} for {ext.worst.stratum} (worst) "
                f"vs {_rate_text(ext.best, scale)} for {ext.best.stratum} (best)")
    return (f"{_rate_text(ext.lowest, scale)} for {ext.lowest.stratum} "
            f"vs {_rate_text(ext.highest, scale)} for {ext.highest.stratum}")


def summary_sentence(title: str, groups: list[GroupRate], direction: str | None = None,
                     scale: RateScale = PROPORTION) -> str:
    """'Breast Cancer Screening: 64.1% (62.0–66.1) for Hispanic or Latino (worst) vs 74.0% (73.1–74.9) for White (best)'."""
    return f"{title}: {summary_comparison(groups, direction, scale)}"


def gap_text(ext: Extremes, scale: RateScale) -> str:
    """'a gap of 9.9 percentage points' (proportions and shares) or 'a difference of $45.26 PMPM;
    the highest is 1.16 times the lowest' (other types: absolute difference in the unit, and the ratio)."""
    lo, hi = ext.lowest.rate, ext.highest.rate
    if scale.is_share:
        return f"a gap of {scale.difference(hi, lo)}"
    text = f"a difference of {scale.difference(hi, lo)}"
    ratio = scale.ratio(lo, hi)
    if ratio is not None:
        text += f"; the highest is {ratio:.2f} times the lowest"
    return text


def _summary_detail(ext: Extremes | None, direction: str | None, unit_label: str, source_label: str,
                    scale: RateScale = PROPORTION) -> str:
    tail = f"Data source: {source_label}."
    if unit_label != "All members":
        tail = f"Reporting unit: {unit_label}. " + tail
    if ext is None or scale.rounded(ext.lowest.rate) == scale.rounded(ext.highest.rate):
        return tail
    lo, hi = ext.lowest, ext.highest
    bits = [gap_text(ext, scale)]
    if None not in (lo.ci_upper, hi.ci_lower):
        bits.append(
            "the 95% confidence intervals do not overlap" if lo.ci_upper < hi.ci_lower
            else "the 95% confidence intervals overlap"
        )
    if direction in DIRECTION_LABELS:
        bits.append(DIRECTION_LABELS[direction])
    text = "; ".join(bits)
    text = text[0].upper() + text[1:] + "."
    if not ext.non_response_excluded and {lo.stratum, hi.stratum} & NON_RESPONSE_STRATA:
        text += " Unknown or Declined is compared here because fewer than two other groups can be shown."
    return f"{text} {tail}"


# ---------------------------------------------------------------------------------------------------
# context


def _ordered_stratifiers(values: list[str]) -> list[str]:
    known = [s for s in STRATIFIER_ORDER if s in values]
    return known + sorted(s for s in values if s not in STRATIFIER_ORDER and s != "overall")


def _ordered_units(frame: pl.DataFrame) -> list[tuple[str, str]]:
    units = frame.select("unit_level", "unit_id").unique().rows()

    def key(u: tuple[str, str]) -> tuple[int, str, str]:
        level, uid = u
        rank = UNIT_LEVEL_ORDER.index(level) if level in UNIT_LEVEL_ORDER else len(UNIT_LEVEL_ORDER)
        return rank, level, uid

    return sorted(units, key=key)


def _table_rows(groups: list[GroupRate], scale: RateScale, columns: list[CountColumn],
                labels: Callable[[GroupRate], str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for g in groups:
        name = labels(g) if labels else g.stratum
        if g.suppressed:
            rows.append({"stratum": name, "suppressed": True, "label": suppression_label(g.suppression_reason)})
        else:
            rows.append({
                "stratum": name,
                "suppressed": False,
                "counts": [c.value(g) for c in columns],
                "rate": scale.number(g.rate),
                "ci": scale.ci(g.ci_lower, g.ci_upper) or "\u2014",
            })
    return rows


def _overall_text(ov: GroupRate | None, scale: RateScale) -> str:
    if ov is None:
        return "no overall rate"
    if ov.suppressed:
        return suppression_label(ov.suppression_reason)
    rate = _rate_text(ov, scale)
    members = f"{format_count(ov.members)} members"
    if scale.rate_type == "proportion":
        return f"{rate}: {format_count(ov.numerator)} of {format_count(ov.denominator)} eligible members"
    if scale.exposure:
        return (f"{rate}: {format_count(ov.numerator)} events over {format_count(ov.denominator)} "
                f"{scale.exposure} ({members})")
    if scale.rate_type == "usd_pmpm":
        return f"{rate}: {format_usd_total(ov.numerator)} paid over {format_count(ov.denominator)} member-months ({members})"
    if scale.rate_type == "share_of_spend":
        return f"{rate}: {format_usd_total(ov.numerator)} of {format_usd_total(ov.denominator)} total spend ({members})"
    return f"{rate}: numerator {format_count(ov.numerator)}, denominator {format_count(ov.denominator)} ({members})"


def _alt_text(title: str, strat_label: str, unit_label: str, groups: list[GroupRate], overall: GroupRate | None,
              scale: RateScale = PROPORTION) -> str:
    shown = [g for g in groups if not g.suppressed]
    n_sup = len(groups) - len(shown)
    parts = [f"Dot chart of {title} rates by {strat_label.lower()}, {unit_label.lower()}, with 95% confidence intervals."]
    if shown:
        top, bottom = shown[0], shown[-1]
        if len(shown) == 1:
            parts.append(f"Only {top.stratum} is shown: {_rate_text(top, scale)}.")
        else:
            parts.append(f"Highest: {top.stratum}, {_rate_text(top, scale)}. "
                         f"Lowest: {bottom.stratum}, {_rate_text(bottom, scale)}.")
    if overall is not None and not overall.suppressed:
        parts.append(f"Overall rate {scale.text(overall.rate)} shown as a dashed line.")
    if n_sup:
        parts.append(f"{n_sup} of {len(groups)} groups suppressed.")
    parts.append("All values are in the table below.")
    return " ".join(parts)


def _caption(groups: list[GroupRate], overall: GroupRate | None, source_label: str, scale: RateScale = PROPORTION,
             *, chart: bool = True) -> str:
    shown = [g for g in groups if not g.suppressed]
    n_sup = len(groups) - len(shown)
    parts = []
    if chart:
        first = "Points are rates; whiskers are 95% confidence intervals"
        if overall is not None and not overall.suppressed:
            first += f"; the dashed line is the overall rate ({scale.text(overall.rate)})"
        parts.append(first + ". Groups are sorted by rate, highest at the top.")
    elif overall is not None and not overall.suppressed:
        parts.append(f"Overall rate: {scale.text(overall.rate)}. Groups are sorted by rate, highest first.")
    sizes = [g.members if g.members is not None else g.denominator for g in shown]
    sizes = [s for s in sizes if s is not None]
    who = "eligible members" if scale.rate_type == "proportion" else "members"
    if len(sizes) == 1:
        parts.append(f"The group shown has {format_count(sizes[0])} {who}.")
    elif sizes:
        parts.append(f"Groups shown have {format_count(min(sizes))} to {format_count(max(sizes))} {who} "
                     f"({format_count(sum(sizes))} across the {len(sizes)} groups shown).")
    parts.append(
        (f"{n_sup} of {len(groups)} groups suppressed: " if n_sup else "No groups suppressed; ") + _rule_short(scale)
    )
    parts.append(f"Data source: {source_label}.")
    return " ".join(parts)


def _first(frame: pl.DataFrame, column: str) -> Any:
    values = frame.get_column(column).drop_nulls()
    return values[0] if len(values) else None


def _spec_ids(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Steward identifiers from a measure spec: a 'steward_ids'/'stewards'/'ids' mapping and '*_id' scalars."""
    ids: list[tuple[str, str]] = []
    for key in ("steward_ids", "stewards", "ids"):
        value = spec.get(key)
        if isinstance(value, dict):
            ids += [(str(k).upper() if len(str(k)) <= 5 else str(k), str(v)) for k, v in value.items() if v is not None]
        elif isinstance(value, list | tuple):
            ids += [("", str(v)) for v in value if v is not None]
    for key, value in spec.items():
        if key.endswith("_id") and key != "measure_id" and isinstance(value, str | int):
            ids.append((key.removesuffix("_id").replace("_", " ").upper(), str(value)))
    if isinstance(spec.get("steward"), str):
        ids.insert(0, ("Steward", spec["steward"]))
    return ids


def _input_tables(manifest: dict[str, Any]) -> list[dict[str, str]]:
    tables = manifest.get("tables") or {}
    rows = []
    for name, counts in tables.items():
        counts = counts if isinstance(counts, dict) else {}
        rows.append({
            "name": str(name),
            "read": format_count(counts.get("read")) or "\u2014",
            "used": format_count(counts.get("used")) or "\u2014",
            "quarantined": format_count(counts.get("quarantined")) or "\u2014",
        })
    return rows


def _input_files(manifest: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for item in manifest.get("inputs") or []:
        sha = str(item.get("sha256") or "")
        rows.append({
            "table": str(item.get("table", "")),
            "file": Path(str(item.get("file", ""))).name,
            "sha256": sha,
            "sha256_short": sha[:12],
            "rows": format_count(item.get("rows")) or "\u2014",
        })
    return rows


def no_data_notice(rates: pl.DataFrame, manifest: dict[str, Any]) -> str | None:
    """Why the report has no rate (None when it has some): nobody is in any measure's denominator,
    and when the members table left no validated member, how many of its rows were quarantined."""
    if rates.height:
        return None
    members = (manifest.get("tables") or {}).get("members")
    if isinstance(members, dict) and members.get("used") == 0:
        read, quarantined = format_count(members.get("read")) or "0", format_count(members.get("quarantined")) or "0"
        why = (f"the members table has no validated member ({read} rows read, {quarantined} quarantined), "
               "so no measure has anyone to count")
    else:
        why = "no member is in the denominator of any measure in this run"
    return f"No data: {why}. There are no rates, gaps or charts to show; the tables below say what was read."


def county_display_names(rates: pl.DataFrame) -> pl.DataFrame:
    """County strata (5-digit FIPS codes) relabelled 'Hawaii County, HI (15001)' from the county
    reference of the measurement year; codes the reference does not know, and Unknown, stay as they are."""
    county = pl.col("stratifier") == "county"
    codes = rates.filter(county & pl.col("stratum").str.contains(r"^\d{5}$")).get_column("stratum").unique().to_list()
    if not codes:
        return rates
    try:
        from equity_pipeline.standards.geography import county_names, state_postal_by_fips

        periods = [int(m.group(0)) for p in rates.get_column("period").drop_nulls().unique().to_list()
                   if (m := re.match(r"\d{4}", str(p)))]
        names = county_names(max(periods)) if periods else {}
        states = state_postal_by_fips()
    except Exception:  # the reference is a nicety: never fail the report over it
        return rates
    labels = {c: f"{names[c]}, {states.get(c[:2], c[:2])} ({c})" for c in codes if c in names}
    if not labels:
        return rates
    return rates.with_columns(
        pl.when(county).then(pl.col("stratum").replace(labels)).otherwise(pl.col("stratum")).alias("stratum")
    )


def _rate_image(section: dict[str, Any]) -> Callable[[bytes, float], None]:
    """The callback that puts a drawn rate chart into its section (PNG as base64, size in CSS px)."""
    def done(png: bytes, height_in: float) -> None:
        section.update(img=base64.b64encode(png).decode("ascii"), img_width=round(FIG_WIDTH * CSS_PX_PER_INCH),
                       img_height=round(height_in * CSS_PX_PER_INCH))
    return done


def _png_image(block: dict[str, Any]) -> Callable[[bytes, float], None]:
    """The callback that puts a drawn forest or trend chart into its block (size from the PNG's pixels)."""
    def done(png: bytes, _height_in: float) -> None:
        w, h = png_pixels(png)
        block.update(img=base64.b64encode(png).decode("ascii"), img_width=round(w * CSS_PX_PER_INCH / PNG_DPI),
                     img_height=round(h * CSS_PX_PER_INCH / PNG_DPI))
    return done


def _submeasure_block(rows: list[dict[str, Any]], title: str, scale: RateScale, source_label: str) -> dict[str, Any] | None:
    """Table of a measure's sub-measure rows (and the whole measure) for all members, stratifier overall."""
    if not any(r["submeasure"] != WHOLE_MEASURE for r in rows):
        return None
    ordered = sorted(rows, key=lambda r: submeasure_sort_key(r["submeasure"]))
    # one GroupRate per sub-measure, stratum = the sub-measure value (kept in table order, not by rate)
    groups = [groups_from_rows([{**r, "stratum": r["submeasure"]}])[0] for r in ordered]
    columns = count_columns(scale, groups)
    n_sup = sum(g.suppressed for g in groups)
    caption = (f"Rows of {title} for all members (no stratification), with the whole measure last. "
               + (f"{n_sup} of {len(groups)} rows suppressed: " if n_sup else "No rows suppressed; ")
               + f"{_rule_short(scale)} "
               f"Breakdowns of these rows by group are in the public rates table. Data source: {source_label}.")
    return {
        "columns": [c.header for c in columns],
        "rows": _table_rows(groups, scale, columns, labels=lambda g: submeasure_label(g.stratum)),
        "caption": caption,
    }


# ---------------------------------------------------------------------------------------------------
# disparities against the reference group, and data completeness

#: Largest significant gaps listed in the executive summary (one per measure x stratifier).
MAX_GAPS = 10
#: Stratifiers whose gaps the executive summary leaves to the forest plots: differences by age
#: mostly reflect need (cost, utilization), not inequity.
GAP_EXCLUDED_STRATIFIERS: tuple[str, ...] = ("age_band",)


def _ratio_text(c: Comparison) -> str:
    """'0.87 (95% CI 0.83–0.90)'; without brackets when the CI is missing."""
    if c.ratio is None:
        return ""

    def num(v: float) -> str:
        return "\u221e" if math.isinf(v) else f"{v:.2f}"

    if c.ratio_lower is None or c.ratio_upper is None:
        return num(c.ratio)
    return f"{num(c.ratio)} (95% CI {num(c.ratio_lower)}\u2013{num(c.ratio_upper)})"


def _reference_name(reference: str | None) -> str:
    return "all members" if reference in (None, "overall") else str(reference)


def _gap_detail(c: Comparison, scale: RateScale, direction: str | None) -> str:
    bits = []
    if c.rate is not None and c.reference_rate is not None:
        word = "a gap of" if scale.is_share else "a difference of"
        bits.append(f"{word} {scale.difference(c.rate, c.reference_rate)}")
    if c.p is not None:
        bits.append("adjusted p < 0.001" if c.p < 0.001 else f"adjusted p = {c.p:.3f}")
    if direction in DIRECTION_LABELS:
        bits.append(DIRECTION_LABELS[direction])
    if not bits:
        return ""
    text = "; ".join(bits)
    return text[0].upper() + text[1:] + "."


def largest_gaps(frame: pl.DataFrame, meta: dict[str, dict[str, Any]], limit: int = MAX_GAPS) -> list[dict[str, Any]]:
    """The executive summary: per measure x stratifier (all members, whole measure), the strata the
    disparities table flags as significantly worse than their reference group
    (``worse_than_reference``, status compared); one item per measure x stratifier, naming the
    stratum furthest from parity (|log rate ratio|) and listing the others, items ordered by that
    distance, at most ``limit``. Left out: non-response strata (Unknown, Declined), ratios of 0 or
    infinity (a rate of zero says more than a ratio), and the stratifiers in
    ``GAP_EXCLUDED_STRATIFIERS``. ``meta``: measure_id -> title, direction, scale, anchor; measures
    not in it are skipped."""
    if frame.height == 0:
        return []
    found: list[tuple[float, dict[str, Any]]] = []
    flagged = frame.filter((pl.col("unit_id") == "all") & (pl.col("submeasure") == WHOLE_MEASURE)
                           & pl.col("worse_than_reference").fill_null(False)
                           & ~pl.col("stratifier").is_in(list(GAP_EXCLUDED_STRATIFIERS)))
    for mid, strat in flagged.select("measure_id", "stratifier").unique().sort("measure_id", "stratifier").rows():
        info = meta.get(mid)
        if info is None:
            continue
        scale: RateScale = info["scale"]
        compared, _ = unit_comparisons(frame, measure_id=mid, stratifier=strat)
        worse = sorted((c for c in compared if c.worse and c.ratio is not None and 0 < c.ratio < math.inf
                        and c.group not in NON_RESPONSE_STRATA), key=lambda c: (-c.log_size, c.group))
        if not worse:
            continue
        c = worse[0]
        ref = _reference_name(c.reference_group)
        rates = (f"{scale.text(c.rate)} for {c.group} vs {scale.text(c.reference_rate)} for {ref} (reference)"
                 if c.rate is not None and c.reference_rate is not None else f"{c.group} vs {ref} (reference)")
        detail = _gap_detail(c, scale, info["direction"])
        if len(worse) > 1:
            others = ", ".join(f"{o.group} ({o.ratio:.2f})" for o in worse[1:])
            detail += f" Also significantly worse than {ref}: {others}."
        found.append((c.log_size, {
            "anchor": info["anchor"], "title": info["title"], "measure_id": mid, "stratifier": strat,
            "group": c.group, "reference_group": c.reference_group, "ratio": c.ratio,
            "others": [o.group for o in worse[1:]],
            "text": f"by {stratifier_label(strat).lower()}: {rates}; rate ratio {_ratio_text(c)}",
            "detail": detail.strip(),
        }))
    found.sort(key=lambda x: (-x[0], x[1]["measure_id"], x[1]["stratifier"]))
    return [g for _, g in found[:limit]]


def _forest_blocks(frame: pl.DataFrame, mid: str, title: str, direction: str | None, scale: RateScale,
                   jobs: ChartJobs) -> list[dict[str, Any]]:
    """Per stratifier of the population unit (whole measure): a forest plot of rate ratios against
    the reference group (up to ``MAX_FOREST_ROWS`` strata; more are left to the table) and its table.
    The plots are added to ``jobs`` (their images are in the blocks once ``jobs`` has run)."""
    if frame.height == 0:
        return []
    blocks = []
    strats = (frame.filter((pl.col("measure_id") == mid) & (pl.col("unit_id") == "all")
                           & (pl.col("submeasure") == WHOLE_MEASURE))
              .get_column("stratifier").unique().to_list())
    for strat in _ordered_stratifiers([s for s in strats if s in FOREST_STRATIFIERS]):
        compared, reference = unit_comparisons(frame, measure_id=mid, stratifier=strat)
        shown = [c for c in compared if c.ratio is not None]
        if not shown:  # no reference or nothing compared: the rates section says it all
            continue
        ref_label = _reference_name(shown[0].reference_group)
        label = stratifier_label(strat)
        n_sig = sum(c.significant for c in shown)
        with_chart = len(compared) <= MAX_FOREST_ROWS
        rows = [{"group": f"{ref_label} (reference)", "rate": scale.number(reference.rate) if reference and reference.rate is not None else "",
                 "ratio": "1 (reference)", "significant": "", "suppressed": False}] if reference is not None else []
        rows += [{
            "group": c.group,
            "rate": "" if c.rate is None else scale.number(c.rate),
            "ratio": _ratio_text(c) if c.ratio is not None else ("suppressed" if c.suppressed else "not compared"),
            "significant": c.verdict,
            "suppressed": c.ratio is None,
        } for c in compared]
        ref_rate = shown[0].reference_rate
        caption = (f"Ratio of each group's rate to the rate of {ref_label} (the reference group, drawn at 1), with 95% "
                   f"confidence intervals on a log scale; filled points differ significantly after adjustment for "
                   f"multiple comparisons. {n_sig} of {len(shown)} groups compared differ significantly.")
        if ref_rate is not None:
            caption += f" Reference rate: {scale.text(ref_rate)}."
        if len(shown) < len(compared):
            caption += f" {len(compared) - len(shown)} groups not compared (suppressed or no comparison)."
        block: dict[str, Any] = {
            "stratifier": strat, "label": label, "anchor": _slug(mid, "ratios", strat), "reference": ref_label,
            "chart": with_chart, "rows": rows, "caption": caption, "rate_header": scale.column_label,
            "alt": "", "img": "", "img_width": 0, "img_height": 0,
        }
        if with_chart:
            furthest = max(shown, key=lambda c: c.log_size)
            block["alt"] = (f"Forest plot of {title} rate ratios by {label.lower()} against {ref_label}. "
                            f"{n_sig} of {len(shown)} groups differ significantly; furthest from parity: "
                            f"{furthest.group}, {_ratio_text(furthest)}. All values are in the table below.")
            if jobs.enabled:
                chart = ForestChart(points=[RatioPoint(c.group, c.ratio, c.ratio_lower, c.ratio_upper, c.significant)
                                            for c in compared],
                                    reference=ref_label, title=title,
                                    subtitle=f"rate ratio by {label.lower()} vs {ref_label}, all members", direction=direction)
                jobs.add(chart, _png_image(block))
        blocks.append(block)
    return blocks


def completeness_context(table: pl.DataFrame | None) -> dict[str, Any] | None:
    """The completeness panel: per attribute, the population's categories (count, share, CI) and a
    by-state table of shares; suppressed cells show their label only."""
    if table is None or table.height == 0:
        return None
    attributes = []
    for attribute in [a for a in ATTRIBUTE_LABELS if a in table.get_column("attribute").unique().to_list()]:
        part = table.filter(pl.col("attribute") == attribute)

        def cell(r: dict[str, Any]) -> dict[str, Any]:
            if r["suppressed"]:
                return {"suppressed": True, "label": suppression_label(r["suppression_reason"])}
            if r["share"] is None:  # no member in the unit (0 of 0): nothing to show, nothing suppressed
                return {"suppressed": False, "members": format_count(r["members"]) or "0", "share": "\u2014", "ci": "\u2014"}
            return {"suppressed": False, "members": format_count(r["members"]), "share": PROPORTION.number(r["share"]),
                    "ci": PROPORTION.ci(r["ci_lower"], r["ci_upper"]) or "\u2014"}

        population = [{"category": CATEGORY_LABELS.get(r["category"], r["category"]), **cell(r)}
                      for r in part.filter(pl.col("unit_level") == "population").iter_rows(named=True)]
        total = next((format_count(r["total"]) for r in part.filter(pl.col("unit_level") == "population").iter_rows(named=True)
                      if r["total"] is not None), "")
        categories = list(dict.fromkeys(part.get_column("category").to_list()))
        states = []
        for uid in sorted(part.filter(pl.col("unit_level") != "population").get_column("unit_id").unique().to_list()):
            rows = {r["category"]: r for r in part.filter(pl.col("unit_id") == uid).iter_rows(named=True)}
            states.append({"unit": uid, "cells": [
                (lambda c: c["share"] if not c["suppressed"] else c["label"])(cell(rows[c])) if c in rows else ""
                for c in categories]})
        attributes.append({
            "attribute": attribute, "label": ATTRIBUTE_LABELS[attribute], "total": total, "rows": population,
            "categories": [CATEGORY_LABELS.get(c, c) for c in categories], "states": states,
        })
    periods = sorted(str(p) for p in table.get_column("period").drop_nulls().unique().to_list())
    return {"attributes": attributes, "period": ", ".join(periods)}


def build_context(
    rates: pl.DataFrame, manifest: dict[str, Any], *, measures: dict[str, dict] | None = None,
    charts: bool = True, disparities: pl.DataFrame | None = None, completeness: pl.DataFrame | None = None,
    trends: Trends | None = None,
) -> dict[str, Any]:
    """Everything the template shows, as plain strings, lists and dicts.

    ``charts=False`` skips drawing (the image fields are empty); the HTML render always draws.
    ``disparities`` (public/disparities.parquet) adds the executive summary of the largest
    significant gaps and rate-ratio forest plots; ``completeness`` (public/completeness.parquet) the
    REL data completeness panel; ``trends`` (:func:`~equity_pipeline.report.trends.trend_rates`, this
    run's rates with earlier runs') the per-measure trend charts and tables. All are optional.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in rates.columns]
    if missing:
        raise ValueError(f"rates table lacks columns: {', '.join(missing)}")
    measures = measures or {}
    rates = rates.select(REQUIRED_COLUMNS)  # nothing else reaches the page
    trends = trends if trends is not None else trend_rates(rates)  # this run alone: one period
    with ChartJobs(charts) as jobs:  # drawn at the end, in worker processes as well (equity_pipeline.chart_pool)
        return _build_context(rates, manifest, measures, trends, disparities, completeness, jobs)


def _build_context(rates: pl.DataFrame, manifest: dict[str, Any], measures: dict[str, dict], trends: Trends,
                   disparities: pl.DataFrame | None, completeness: pl.DataFrame | None, jobs: ChartJobs) -> dict[str, Any]:
    """:func:`build_context` after its checks: the charts go to ``jobs``, drawn before it returns."""
    measure_ids = sorted(rates.get_column("measure_id").unique().to_list())
    periods = sorted(str(p) for p in rates.get_column("period").drop_nulls().unique().to_list())
    sources = sorted(rates.get_column("data_source").drop_nulls().unique().to_list())
    rate_types = set(rates.get_column("rate_type").drop_nulls().unique().to_list())

    # rows grouped once: (measure, submeasure, unit, stratifier) -> list of row dicts
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in county_display_names(rates).iter_rows(named=True):
        cells.setdefault((r["measure_id"], r["submeasure"], r["unit_id"], r["stratifier"]), []).append(r)

    compared = comparisons(disparities)
    if compared.height and "period" in compared.columns:  # county codes named as in the rates sections
        reference = county_display_names(compared.with_columns(stratum=pl.col("reference_stratum").fill_null(""))).get_column("stratum")
        compared = county_display_names(compared).with_columns(
            reference_stratum=pl.when(pl.col("reference_stratum").is_null()).then(None).otherwise(reference))
    measure_meta: dict[str, dict[str, Any]] = {}
    forest_blocks: list[dict[str, Any]] = []
    rate_charts = 0
    summaries: list[dict[str, Any]] = []
    measure_blocks: list[dict[str, Any]] = []
    for mid in measure_ids:
        frame = rates.filter(pl.col("measure_id") == mid)
        whole = frame.filter(pl.col("submeasure") == WHOLE_MEASURE)
        spec = measures.get(mid) or {}
        title = _first(frame, "measure_title") or spec.get("title") or mid
        direction = _first(frame, "direction")
        source = _first(frame, "data_source")
        source_label = DATA_SOURCE_LABELS.get(source, str(source or "not stated"))
        scale = RateScale.of(_first(frame, "rate_type"), _first(frame, "rate_per"))
        anchor = _slug("measure", mid)
        units = _ordered_units(whole)

        def groups_of(uid: str, strat: str, sub: str = WHOLE_MEASURE) -> list[GroupRate]:
            return groups_from_rows(cells.get((mid, sub, uid, strat), []))  # noqa: B023 - used in this iteration

        # summary: race/ethnicity in the population unit (else the first unit that has it)
        summary_unit = next(
            (u for u in units if (mid, WHOLE_MEASURE, u[1], SUMMARY_STRATIFIER) in cells),
            units[0] if units else ("population", "all"),
        )
        groups = groups_of(summary_unit[1], SUMMARY_STRATIFIER)
        ext = extremes(groups, direction)
        summaries.append({
            "measure_id": mid,
            "anchor": anchor,
            "title": title,
            "comparison": summary_comparison(groups, direction, scale),
            "sentence": summary_sentence(title, groups, direction, scale),
            "detail": _summary_detail(ext, direction, _unit_label(*summary_unit), source_label, scale),
            "unit": _unit_label(*summary_unit),
            "lowest": ext.lowest.stratum if ext else None,
            "highest": ext.highest.stratum if ext else None,
            "worst": ext.worst.stratum if ext and ext.worst else None,
            "best": ext.best.stratum if ext and ext.best else None,
        })

        population = next((u for u in units if u[0] == "population"), units[0] if units else None)
        unit_blocks = []
        for level, uid in units:
            unit_label = _unit_label(level, uid)
            ov_rows = groups_of(uid, "overall")
            ov = ov_rows[0] if ov_rows else None
            sections = []
            strats = [k[3] for k in cells if k[0] == mid and k[1] == WHOLE_MEASURE and k[2] == uid]
            for strat in _ordered_stratifiers(strats):
                sgroups = groups_of(uid, strat)
                label = stratifier_label(strat)
                charted = (((level, uid) == population and strat in POPULATION_CHART_STRATIFIERS)
                           or strat in SUBUNIT_CHART_STRATIFIERS)
                # a chart of nothing but "suppressed" says no more than one line of text
                with_chart = charted and any(not g.suppressed for g in sgroups)
                columns = count_columns(scale, sgroups)
                n_sup = sum(g.suppressed for g in sgroups)
                section: dict[str, Any] = {
                    "stratifier": strat,
                    "label": label,
                    "anchor": _slug(mid, uid, strat),
                    "chart": with_chart,
                    "all_suppressed": charted and not with_chart,
                    "alt": _alt_text(title, label, unit_label, sgroups, ov, scale) if with_chart else "",
                    "caption": _caption(sgroups, ov, source_label, scale, chart=with_chart),
                    "columns": [c.header for c in columns],
                    "rate_header": scale.column_label,
                    "rows": _table_rows(sgroups, scale, columns),
                    "n_groups": len(sgroups),
                    "n_suppressed": n_sup,
                    "img": "", "img_width": 0, "img_height": 0,
                }
                if with_chart:
                    chart = RateChart(
                        groups=sgroups, overall=ov, title=title,
                        subtitle=f"by {label.lower()}, {'all members' if uid == 'all' else unit_label}",
                        direction=direction, scale=scale,
                    )
                    jobs.add(chart, _rate_image(section))
                    rate_charts += 1
                sections.append(section)
            unit_blocks.append({
                "unit_id": uid, "label": unit_label, "anchor": _slug(mid, uid),
                "overall": _overall_text(ov, scale), "sections": sections,
            })

        sub_rows = [r for (m, sub, uid, strat), rs in cells.items() if m == mid and strat == "overall"
                    and population is not None and uid == population[1] for r in rs]
        measure_meta[mid] = {"title": title, "direction": direction, "scale": scale, "anchor": anchor}
        forests = _forest_blocks(compared, mid, title, direction, scale, jobs)
        forest_blocks += forests
        measure_blocks.append({
            "measure_id": mid,
            "anchor": anchor,
            "title": title,
            "version": _first(frame, "measure_version"),
            "description": spec.get("description"),
            "ids": _spec_ids(spec),
            "direction": DIRECTION_LABELS.get(direction, direction or "not stated"),
            "rate_description": scale.description,
            "rate_header": scale.column_label,
            "source": source_label,
            "submeasures": _submeasure_block(sub_rows, title, scale, source_label),
            "forests": forests,
            "trend": trend_block(trends, mid, title, scale, source_label, draw=jobs.enabled, jobs=jobs),
            "units": unit_blocks,
        })

    jobs.run()  # every chart drawn; the images are in their sections and blocks now
    config = manifest.get("config")
    if not periods and isinstance(config, dict) and isinstance(config.get("measurement_period"), dict):
        periods = [str(config["measurement_period"].get("label"))]  # no data: the configured rolling period
    elif not periods and isinstance(config, dict) and config.get("measurement_year") is not None:
        periods = [str(config["measurement_year"])]  # no rate to read it from (no data): the configured year
    return {
        "no_data": no_data_notice(rates, manifest),
        "run_id": str(manifest.get("run_id", "")),
        "created_at": str(manifest.get("created_at", "")),
        "package_version": str(manifest.get("package_version", "")),
        "periods": periods,
        "sources": [DATA_SOURCE_LABELS.get(s, s) for s in sources],
        "tables": _input_tables(manifest),
        "inputs": _input_files(manifest),
        "config": json.dumps(config, indent=2, sort_keys=True, default=str) if config else "",
        "summaries": summaries,
        "measures": measure_blocks,
        "suppression_rule": SUPPRESSION_RULE,
        "rate_notes": [RATE_TYPE_NOTES[t] for t in RATE_TYPE_NOTES if t in rate_types],
        "non_response": sorted(NON_RESPONSE_STRATA),
        "fig_width_px": round(FIG_WIDTH * CSS_PX_PER_INCH),
        "charts_drawn": rate_charts if jobs.enabled else 0,
        "has_disparities": compared.height > 0,
        "gaps": largest_gaps(compared, measure_meta),
        "gap_excluded": [stratifier_label(s).lower() for s in GAP_EXCLUDED_STRATIFIERS],
        "forests_drawn": sum(bool(f["img"]) for f in forest_blocks),
        "completeness": completeness_context(completeness),
        "trend_periods": sorted(trends.table.get_column("period").unique().to_list()),
    }


# ---------------------------------------------------------------------------------------------------
# render


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("equity_pipeline.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(rates: pl.DataFrame, manifest: dict[str, Any], *, measures: dict[str, dict] | None = None,
                disparities: pl.DataFrame | None = None, completeness: pl.DataFrame | None = None,
                trends: Trends | None = None) -> str:
    """The report page as an HTML string (self-contained; charts inline)."""
    context = build_context(rates, manifest, measures=measures, charts=True, disparities=disparities,
                            completeness=completeness, trends=trends)
    return _environment().get_template(TEMPLATE_NAME).render(**context)


def render_report(
    rates: pl.DataFrame, manifest: dict[str, Any], out_dir: Path, *, measures: dict[str, dict] | None = None,
    disparities: pl.DataFrame | None = None, completeness: pl.DataFrame | None = None, trends: Trends | None = None,
) -> Path:
    """Write ``out_dir/index.html`` (``out_dir`` is the run's ``report/`` folder) and return its path.

    ``rates`` is the public, already-suppressed rates table; ``manifest`` the run manifest (only its
    run metadata and row counts are shown); ``measures`` optionally maps measure_id -> spec info
    (title, description, steward ids); ``disparities`` and ``completeness`` are the optional public
    tables of the same names, ``trends`` the trend table (see :func:`build_context`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_html(rates, manifest, measures=measures, disparities=disparities, completeness=completeness, trends=trends)
    path = out_dir / "index.html"
    from equity_pipeline.io import write_text_atomic  # unique temp name, fsync, temp removed on error

    write_text_atomic(html, path)
    return path


__all__ = [
    "REQUIRED_COLUMNS", "Extremes", "build_context", "count_columns", "extremes", "figure_png", "format_count",
    "gap_text", "render_html", "render_report", "summary_comparison", "summary_sentence", "suppression_label",
]
