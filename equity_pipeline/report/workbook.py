"""``report/equity_report.xlsx``: the public tables as one Excel workbook for equity officers.

One sheet per public table (``rates``; ``disparities`` and ``disparity_summary`` when the run has
them; ``completeness``; the equity-plan tables ``state_metrics`` and ``hospital_metrics`` when present;
``trends``, this run's rates with earlier runs', when given) plus a ``README`` sheet (run id, measurement period, data sources, input
files with SHA-256, the suppression rule, what each sheet holds). Each table sheet has exactly the
public table's columns in its order, one row per public row, a frozen header row and an autofilter.

Numbers stay numbers; only their display changes (number formats by ``rate_type``):

==================  ===============================  ======================================
rate_type           rate, CI                         counts
==================  ===============================  ======================================
proportion          ``64.1%``                        members, denominator, numerator: 1,234
share_of_spend      ``12.3%``                        denominator, numerator: $ (dollars)
per_member_months   ``30.7 per 1,000 member-months`` denominator: member-months; events
per_member_years    ``3,843.9 per 100,000 ...``      denominator: member-years; events
usd_pmpm            ``$318.82 PMPM``                 denominator: member-months; numerator: $
==================  ===============================  ======================================

Suppressed rows keep the row; their empty number cells (counts, rate, CI, statistics) hold the text
``suppressed (cell-size policy)`` (the report's wording, the same for small and complementary cells:
which kind a cell is would narrow its hidden value) in a grey format, never a number. Every number written equals the public table's value (Excel stores 15-16
significant digits; xlsxwriter writes 16). Nothing but the public tables and the manifest's run
metadata, file names and hashes goes in: no member-level data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline.charts import RateScale

#: Sheet names in workbook order (the README first).
README_SHEET = "README"
SHEET_DESCRIPTIONS: dict[str, str] = {
    "rates": "Rates per measure x reporting unit x stratifier x stratum with 95% confidence intervals "
             "(public/rates.parquet). Whole-population rows have stratifier 'overall', stratum 'all'.",
    "disparities": "Each group against the reference group: rate difference and rate ratio with 95% "
                   "confidence intervals and p-values (public/disparities.parquet).",
    "disparity_summary": "Summary disparity measures per measure x reporting unit x stratifier "
                         "(public/disparity_summary.parquet).",
    "completeness": "REL data completeness: members whose race/ethnicity was self-reported, imputed, declined "
                    "or unknown, and whose preferred language was reported, declined or unknown, by reporting "
                    "unit (public/completeness.parquet).",
    "state_metrics": "Statewide health-equity plan: per state, region, payer and group, PQI90, plan measures, REL "
                     "completeness, SDOH screening, TCOC, with the reference comparison, baseline change and target "
                     "status (public/equity_plan/state_metrics.parquet; docs/equity_plans.md).",
    "hospital_metrics": "Hospital health-equity plans: per facility (CCN), readmission and ED revisit with the "
                        "within-hospital gap, safety-net shares, SDOH rates, REL completeness "
                        "(public/equity_plan/hospital_metrics.parquet; docs/equity_plans.md).",
    "trends": "Trend across periods, all members: the overall rate and each race and ethnicity group per period, this "
              "run's public rates with earlier runs' (config trend.history; 'source' names the table of each period). "
              "The same numbers as the report's trend charts (docs/reports.md).",
}
#: Columns holding a rate on the measure's scale (formatted like the rate).
RATE_COLUMNS = frozenset({"rate", "ci_lower", "ci_upper", "reference_rate", "group_rate", "rate_reference", "rate_group"})
#: Columns holding a count of members (whole numbers).
MEMBER_COLUMNS = frozenset({"members", "total", "reference_members", "group_members"})
SHARE_COLUMNS = frozenset({"share"})
P_VALUE_COLUMNS = frozenset({"p_value", "p_adjusted"})

GREY_FONT = "#595959"
GREY_FILL = "#EDEDED"
HEADER_FILL = "#DCE6F1"
MAX_COL_WIDTH = 48


@dataclass(frozen=True)
class Sheet:
    name: str
    frame: pl.DataFrame


def _formats(scale: RateScale) -> dict[str, str]:
    """Number formats of one rate type: 'rate' (rate and CI), 'denominator', 'numerator'."""
    if scale.is_share:
        rate = "0.0%"
    elif scale.is_money:
        rate = '"$"#,##0.00" PMPM"'
    elif scale.unit:
        rate = f'#,##0.0" {scale.unit}"'
    else:
        rate = "#,##0.000"
    if scale.rate_type == "share_of_spend":
        return {"rate": rate, "denominator": '"$"#,##0.00', "numerator": '"$"#,##0.00'}
    if scale.is_money:
        return {"rate": rate, "denominator": "#,##0", "numerator": '"$"#,##0.00'}
    if scale.exposure:
        return {"rate": rate, "denominator": "#,##0.0", "numerator": "#,##0"}
    return {"rate": rate, "denominator": "#,##0", "numerator": "#,##0"}


def _difference_format(scale: RateScale) -> str:
    """A difference of two rates reads in the rate's unit, signed."""
    if scale.is_share:
        return '+0.0%;-0.0%;0.0%'
    if scale.is_money:
        return '+"$"#,##0.00" PMPM";-"$"#,##0.00" PMPM";"$"0.00" PMPM"'
    if scale.unit:
        return f'+#,##0.0" {scale.unit}";-#,##0.0" {scale.unit}";0.0" {scale.unit}"'
    return "+#,##0.000;-#,##0.000;0.000"


class _Book:
    """xlsxwriter workbook with a cache of formats (xlsxwriter wants one object per distinct format)."""

    def __init__(self, path: Path) -> None:
        import xlsxwriter

        self.book = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": False, "strings_to_numbers": False,
                                                    "strings_to_formulas": False, "strings_to_urls": False})
        self.book.set_properties({"title": "Health equity report: public tables", "comments": "Aggregates only; "
                                  "small cells suppressed.", "author": "equity_pipeline"})
        self._cache: dict[tuple[tuple[str, Any], ...], Any] = {}

    def fmt(self, **props: Any) -> Any:
        key = tuple(sorted(props.items()))
        if key not in self._cache:
            self._cache[key] = self.book.add_format(props)
        return self._cache[key]

    @property
    def header(self) -> Any:
        return self.fmt(bold=True, bg_color=HEADER_FILL, bottom=1, text_wrap=True, valign="top")

    def suppressed(self, num_format: str | None = None) -> Any:
        props: dict[str, Any] = {"font_color": GREY_FONT, "bg_color": GREY_FILL, "italic": True}
        if num_format:
            props["num_format"] = num_format
        return self.fmt(**props)


#: the cell types :func:`_write_table` writes as they are (checked by exact type in its loop)
_PLAIN_TYPES = frozenset({str, float, int, bool})


def _plain(value: Any) -> Any:
    """A cell value of another type as one of :data:`_PLAIN_TYPES`: a list or tuple as its items joined
    with ``"; "`` (e.g. the strata a summary measure used), a bool, int or float subclass as its base
    type, anything else as its text."""
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    for base in (bool, int, float):
        if isinstance(value, base):
            return base(value)
    return str(value)


def _column_format(column: str, row: dict[str, Any], scale: RateScale | None) -> str | None:
    """Number format of one cell from its column name and, where it has one, the row's rate type."""
    formats = _formats(scale) if scale is not None else None
    metric = str(row.get("metric") or row.get("measure") or "")
    if column in P_VALUE_COLUMNS:
        return "0.0000"
    if column in SHARE_COLUMNS:
        return "0.0%"
    if column in MEMBER_COLUMNS or column.endswith("_members"):
        return "#,##0"
    if column in ("estimate", "ci_lower", "ci_upper") and metric:
        if "ratio" in metric:
            return "0.000"
        if "difference" in metric and scale is not None:
            return _difference_format(scale)
        return None  # a summary measure on its own scale: General
    if column in ("ci_lower", "ci_upper") and "share" in row:
        return "0.0%"
    if column == "ratio" or column.startswith("ratio_ci"):
        return "0.000"
    if scale is not None and (column in ("difference", "change") or column.startswith("difference_ci")):
        return _difference_format(scale)
    if formats is not None and (column in RATE_COLUMNS or column.endswith("_rate") or column == "baseline_value"):
        return formats["rate"]
    if formats is not None and (column == "denominator" or column.endswith("_denominator")):
        return formats["denominator"]
    if formats is not None and (column == "numerator" or column.endswith("_numerator")):
        return formats["numerator"]
    if column == "rate_per":
        return "#,##0"
    if column == "se":
        return "0.0000"
    return None


def suppressed_text(reason: Any) -> str:
    """The report's label for a suppressed cell ('suppressed (cell-size policy)', whatever the reason)."""
    from equity_pipeline.report.render import suppression_label

    return suppression_label(reason)


def _write_table(book: _Book, sheet: Sheet) -> dict[str, int]:
    """One table sheet. Cell formats depend on the column and, for some columns, on the row's rate
    type, rate_per and metric: they are looked up once per distinct combination, not per cell (a
    sheet has about a million cells and a handful of distinct formats). Cells are written row by
    row, and each xlsxwriter format is created at the first cell that uses it, as before: the
    shared strings and styles come out in the same order (the same sheet XML)."""
    ws = book.book.add_worksheet(sheet.name)
    frame = sheet.frame
    columns = frame.columns
    widths = [min(max(len(c) + 2, 10), MAX_COL_WIDTH) for c in columns]
    ws.set_row(0, 30)
    header = book.header
    for j, c in enumerate(columns):
        ws.write_string(0, j, c, header)
    position = {c: j for j, c in enumerate(columns)}
    type_at, per_at = position.get("rate_type"), position.get("rate_per")
    suppressed_at, reason_at = position.get("suppressed"), position.get("suppression_reason")
    # a suppressed row shows its label in every empty number column (counts, rates, CIs, statistics)
    numeric = [dtype.is_numeric() for dtype in frame.schema.values()]
    # what _column_format reads of a row: the rate scale, the metric, whether the sheet has 'share'
    metric_at = [position[c] for c in ("metric", "measure") if c in position]
    probe_share = {"share": None} if "share" in columns else {}
    scales: dict[tuple[Any, Any], RateScale] = {}
    row_formats: dict[tuple[Any, str], list[str | None]] = {}
    # per (row formats, hidden): the cell format of each column, resolved at its first use
    row_cells: dict[tuple[Any, str, bool], list[Any]] = {}
    cells: dict[tuple[str | None, bool], Any] = {}
    unset = object()
    label_cell = book.suppressed()
    # xlsxwriter's undecorated writers (what write_string etc. call after checking for an 'A1' cell
    # name, which these row and column numbers never are): the same cells, a call less per cell
    # (about 1.1M cells at 1M members); the public ones if a version lacks them
    write_string, write_number, write_blank, write_boolean = (
        getattr(ws, f"_write_{kind}", None) or getattr(ws, f"write_{kind}") for kind in ("string", "number", "blank", "boolean"))
    isfinite = math.isfinite
    n_columns = len(columns)
    n_suppressed = 0
    labels: dict[Any, str] = {}
    label = ""
    for i, values in enumerate(frame.iter_rows(), start=1):
        scale = None
        if type_at is not None:
            key = (values[type_at], values[per_at] if per_at is not None else None)
            scale = scales.get(key)
            if scale is None:
                scale = scales[key] = RateScale.of(*key)
        metric = ""
        for m in metric_at:
            if values[m]:
                metric = str(values[m])
                break
        hidden = bool(values[suppressed_at]) if suppressed_at is not None else False
        rkey = (scale, metric, hidden)
        row_cell = row_cells.get(rkey)
        if row_cell is None:
            fkey = (scale, metric)
            formats = row_formats.get(fkey)
            if formats is None:
                probe = {**probe_share, "metric": metric}
                formats = row_formats[fkey] = [_column_format(c, probe, scale) for c in columns]
            row_cell = row_cells[rkey] = [unset] * n_columns
        else:
            formats = row_formats[(scale, metric)]
        if hidden:
            n_suppressed += 1
            reason = values[reason_at] if reason_at is not None else None
            label = labels.get(reason)
            if label is None:
                label = labels[reason] = suppressed_text(reason)
        for j in range(n_columns):
            value = values[j]
            if value is None and hidden and numeric[j]:
                write_string(i, j, label, label_cell)
                width = min(len(label) + 2, MAX_COL_WIDTH)
                if width > widths[j]:
                    widths[j] = width
                continue
            cell = row_cell[j]
            if cell is unset:
                num_format = formats[j]
                ckey = (num_format, hidden)
                cell = cells.get(ckey, unset)
                if cell is unset:
                    cell = cells[ckey] = (book.suppressed(num_format) if hidden
                                          else (book.fmt(num_format=num_format) if num_format else None))
                row_cell[j] = cell
            if value is None:
                write_blank(i, j, None, cell)
                continue
            kind = type(value)
            if kind not in _PLAIN_TYPES:   # rare: lists, subclasses, other types
                value = _plain(value)
                kind = type(value)
            if kind is str:
                write_string(i, j, value, cell)
                width = min(len(value) + 2, MAX_COL_WIDTH)
            elif kind is float or kind is int:
                if isfinite(value):
                    write_number(i, j, value, cell)
                    num_format = formats[j]
                    if not num_format:
                        continue
                    width = min(len(num_format) + 2, 30)
                else:  # NaN / infinity: not a number Excel can hold; say so in words
                    write_string(i, j, "not defined" if value != value else ("infinite" if value > 0 else "-infinite"), cell)
                    continue
            else:  # bool, the last of the plain types
                write_boolean(i, j, value, cell)
                continue
            if width > widths[j]:
                widths[j] = width
    for j, w in enumerate(widths):
        ws.set_column(j, j, w)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(frame.height, 1), max(n_columns - 1, 0))
    return {"rows": frame.height, "suppressed": n_suppressed}


def _readme_rows(manifest: dict[str, Any], rates: pl.DataFrame, sheets: list[Sheet]) -> list[tuple[str, str]]:
    from equity_pipeline.report.render import DATA_SOURCE_LABELS, DIRECTION_LABELS, SUPPRESSION_RULE

    periods = sorted(str(p) for p in rates.get_column("period").drop_nulls().unique().to_list()) if "period" in rates.columns else []
    rows: list[tuple[str, str]] = [
        ("Health equity report: public tables", ""),
        ("", ""),
        ("Run id", str(manifest.get("run_id", ""))),
        ("Created", str(manifest.get("created_at", ""))),
        ("Measurement period", ", ".join(periods) or "not stated"),
        ("Pipeline version", str(manifest.get("package_version", ""))),
        ("", ""),
        ("Suppression rule", SUPPRESSION_RULE),
        ("Suppressed cells", "A suppressed row keeps its place; its counts, rate and confidence interval are replaced "
                             "by the text 'suppressed (cell-size policy)' on grey, for small cells and complementary "
                             "cells alike (which kind a cell is would narrow its hidden value). Zero is published."),
        ("Privacy", "Aggregates only: no member identifier, name, birth date, address or claim id is in this workbook."),
        ("", ""),
        ("Sheets", ""),
    ]
    rows += [(f"  {s.name}", SHEET_DESCRIPTIONS.get(s.name, "public table")) for s in sheets]
    rows += [
        ("", ""),
        ("Number formats", "Proportions and shares of spend as percent; event rates per 1,000 member-months or "
                           "per 100,000 member-years (the unit is in the cell's format, the value is the rate); "
                           "cost in US dollars per member per month (PMPM). Cells hold the full values: change the "
                           "format to see more decimals."),
        ("", ""),
        ("Data sources", ""),
    ]
    if {"measure_id", "data_source"} <= set(rates.columns):
        cols = [c for c in ("measure_id", "measure_title", "measure_version", "data_source", "direction", "rate_type", "rate_per") if c in rates.columns]
        for r in rates.select(cols).unique(subset="measure_id").sort("measure_id").iter_rows(named=True):
            scale = RateScale.of(r.get("rate_type"), r.get("rate_per"))
            source = DATA_SOURCE_LABELS.get(r.get("data_source") or "", str(r.get("data_source") or "not stated"))
            bits = [f"{r.get('measure_title') or r['measure_id']}"]
            if r.get("measure_version"):
                bits.append(f"version {r['measure_version']}")
            bits += [f"data source: {source}", scale.description,
                     DIRECTION_LABELS.get(r.get("direction") or "", "direction not stated")]
            rows.append((f"  {r['measure_id']}", "; ".join(bits)))
    inputs = manifest.get("inputs") or []
    if inputs:
        rows += [("", ""), ("Input files", "table: file name, rows read, SHA-256")]
        for item in inputs:
            rows.append((f"  {item.get('table', '')}", f"{Path(str(item.get('file', ''))).name}, {item.get('rows', '')} rows, "
                                                       f"SHA-256 {item.get('sha256', '')}"))
    return rows


def _write_readme(book: _Book, rows: list[tuple[str, str]]) -> None:
    ws = book.book.add_worksheet(README_SHEET)
    title = book.fmt(bold=True, font_size=14)
    key = book.fmt(bold=True, valign="top")
    value = book.fmt(text_wrap=True, valign="top")
    ws.set_column(0, 0, 26)
    ws.set_column(1, 1, 110)
    for i, (k, v) in enumerate(rows):
        if i == 0:
            ws.write_string(i, 0, k, title)
            continue
        if k:
            ws.write_string(i, 0, k, key if not k.startswith("  ") else value)
        if v:
            ws.write_string(i, 1, v, value)


def workbook_sheets(rates: pl.DataFrame, *, disparities: pl.DataFrame | None = None,
                    disparity_summary: pl.DataFrame | None = None, completeness: pl.DataFrame | None = None,
                    state_metrics: pl.DataFrame | None = None, hospital_metrics: pl.DataFrame | None = None,
                    trends: pl.DataFrame | None = None) -> list[Sheet]:
    """The table sheets in order; absent tables are left out. The rates sheet has exactly the public
    rates columns (anything else a frame carries is dropped). A ``suppression_reason`` column says the
    one public reason on every suppressed row, whatever the frame said (``publishable_reasons``)."""
    from equity_pipeline.report.render import REQUIRED_COLUMNS
    from equity_pipeline.suppression import publishable_reasons

    def public(frame: pl.DataFrame) -> pl.DataFrame:
        return publishable_reasons(frame) if {"suppressed", "suppression_reason"} <= set(frame.columns) else frame

    sheets = [Sheet("rates", public(rates.select([c for c in REQUIRED_COLUMNS if c in rates.columns])))]
    for name, frame in (("disparities", disparities), ("disparity_summary", disparity_summary), ("completeness", completeness),
                        ("state_metrics", state_metrics), ("hospital_metrics", hospital_metrics), ("trends", trends)):
        if frame is not None:
            sheets.append(Sheet(name, public(frame)))
    return sheets


def write_workbook(path: Path, rates: pl.DataFrame, manifest: dict[str, Any], *, disparities: pl.DataFrame | None = None,
                   disparity_summary: pl.DataFrame | None = None, completeness: pl.DataFrame | None = None,
                   state_metrics: pl.DataFrame | None = None, hospital_metrics: pl.DataFrame | None = None,
                   trends: pl.DataFrame | None = None) -> dict[str, Any]:
    """Write the workbook atomically (temp file, then rename); returns counts per sheet. ``trends``:
    the trend table (``report.trends.trend_rates(...).table``), sheet ``trends``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheets = workbook_sheets(rates, disparities=disparities, disparity_summary=disparity_summary, completeness=completeness,
                             state_metrics=state_metrics, hospital_metrics=hospital_metrics, trends=trends)
    tmp = path.with_name(f".{path.name}.tmp")
    book = _Book(tmp)
    try:
        _write_readme(book, _readme_rows(manifest, rates, sheets))
        counts = {s.name: _write_table(book, s) for s in sheets}
        book.book.close()
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"sheets": [README_SHEET, *counts], **{f"{k}_rows": v["rows"] for k, v in counts.items()},
            **{f"{k}_suppressed": v["suppressed"] for k, v in counts.items()}}
