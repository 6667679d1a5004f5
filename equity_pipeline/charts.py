"""Charts for the equity report: rates by group with 95% CI whiskers, for every rate type.

Pure functions over the public (already suppressed) rates table. :func:`plot_rates_by_group`
returns a new matplotlib ``Figure``; :class:`ChartCanvas` keeps one figure and Agg canvas and draws
chart after chart on it, returning PNG bytes (the report uses this: building a figure per chart is
most of the cost); :class:`ForestCanvas` does the same for the forest plots (:func:`forest_png`).
Only matplotlib's public API is used (no private renderer internals: a matplotlib upgrade must not
change or break the report). Nothing here saves or reads files.

Rate types (``rate_type`` column, with ``rate_per``) are formatted by :class:`RateScale`:

==================  ===========================================  ==========================
rate_type           value in the table                           shown as
==================  ===========================================  ==========================
proportion          share of eligible members in [0, 1]          ``64.1%``
share_of_spend      share of spend in [0, 1]                     ``12.3%``
per_member_months   events per ``rate_per`` member-months        ``30.7 per 1,000 member-months``
per_member_years    events per ``rate_per`` member-years         ``3,843.9 per 100,000 member-years``
usd_pmpm            US dollars per member per month              ``$318.82 PMPM``
==================  ===========================================  ==========================

matplotlib is imported lazily, on the first chart, with the Agg backend. If ``MPLCONFIGDIR`` is not
set it is pointed at a fresh temporary directory first, so that importing matplotlib never writes
into (or fails on) a read-only home directory.
"""
from __future__ import annotations

import io
import math
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import polars as pl
    from matplotlib.figure import Figure

# Okabe-Ito palette: distinguishable under the common colour-vision deficiencies.
POINT_COLOUR = "#0072B2"  # blue
OVERALL_COLOUR = "#D55E00"  # vermillion
SUPPRESSED_COLOUR = "#595959"  # grey, 7:1 contrast on white
GRID_COLOUR = "#D9D9D9"
TEXT_COLOUR = "#1A1A1A"

#: Figure width in inches; the report shows it at 96 px per inch (720 px).
FIG_WIDTH = 7.5
#: Height per group row (inches), and the bounds on the total height.
ROW_HEIGHT = 0.34
MAX_HEIGHT = 14.0
MIN_HEIGHT = 2.2
#: Fixed space (inches) above the plot (title, subtitle) and below it (ticks, axis label, legend).
TOP_HEIGHT = 0.62
BOTTOM_HEIGHT = 0.82
#: Kept for callers of the earlier layout: the chrome around the rows.
CHROME_HEIGHT = TOP_HEIGHT + BOTTOM_HEIGHT
#: Group labels wider than this (inches) are shortened with an ellipsis (the table has them in full).
MAX_LABEL_WIDTH = 2.9
#: Charts with at most this many groups print each rate next to its whisker.
MAX_VALUE_LABELS = 20
#: More suppressed groups than this are drawn as one row ("N groups suppressed"), not one row each.
MAX_SUPPRESSED_ROWS = 8
#: PNG resolution. The page shows charts at 96 px/inch; 110 dpi stays sharp when zoomed a little.
PNG_DPI = 110
#: Text is rasterised unhinted: about a third faster to draw (text is most of a chart's cost) and,
#: at 110 dpi shown at 96 px/inch, as legible as hinted text.
TEXT_RC: dict[str, Any] = {"text.hinting": "none"}
#: PNGs are stored with a palette of this many colours (flat chart colours plus anti-aliasing).
PNG_COLOURS = 96

#: suppression_reason given to an unsuppressed row that nevertheless has no rate (e.g. no eligible members)
NO_RATE = "no_rate"

STRATIFIER_LABELS: dict[str, str] = {
    "overall": "Overall",
    "race_ethnicity": "Race and ethnicity",
    "language": "Preferred language",
    "county": "County",
    "state": "State",
    "sex": "Sex",
    "age_band": "Age band",
    "sdoh": "Social needs",
}

DIRECTION_TEXT: dict[str, str] = {"higher_is_better": "higher is better", "lower_is_better": "lower is better"}

SHARE_TYPES = frozenset({"proportion", "share_of_spend"})
EVENT_TYPES = {"per_member_months": "member-months", "per_member_years": "member-years"}
RATE_TYPES: tuple[str, ...] = ("proportion", "share_of_spend", "per_member_months", "per_member_years", "usd_pmpm")


def stratifier_label(stratifier: str) -> str:
    """Human label for a stratifier column value ('race_ethnicity' -> 'Race and ethnicity')."""
    return STRATIFIER_LABELS.get(stratifier, stratifier.replace("_", " ").capitalize())


def _clean(x: float) -> float:
    """No '-0.0' for a value rounded to zero."""
    return x + 0.0


def _money(value: float, decimals: int = 2) -> str:
    """1234.5 -> '$1,234.50'; -3 -> '-$3.00'."""
    r = _clean(round(value, decimals))
    return f"{'-' if r < 0 else ''}${abs(r):,.{decimals}f}"


def _per_text(per: float) -> str:
    return f"{per:,.0f}" if float(per).is_integer() else f"{per:,g}"


@dataclass(frozen=True)
class RateScale:
    """How one measure's rates read: number format, unit words, axis and column labels, gaps.

    ``rate_type`` is the rates table's ``rate_type``; ``per`` its ``rate_per`` (rates of the per-member
    types are already multiplied by it). Unknown types are shown as plain numbers.
    """

    rate_type: str = "proportion"
    per: float = 1.0

    @classmethod
    def of(cls, rate_type: str | None, per: float | None = None) -> RateScale:
        per = 1.0 if per is None or (isinstance(per, float) and math.isnan(per)) or per <= 0 else float(per)
        return cls(rate_type or "proportion", per)

    # -- kinds
    @property
    def is_share(self) -> bool:
        """Shown as a percentage (proportions and shares of spend)."""
        return self.rate_type in SHARE_TYPES

    @property
    def is_money(self) -> bool:
        return self.rate_type == "usd_pmpm"

    @property
    def exposure(self) -> str | None:
        """'member-months' / 'member-years' for event rates, else None."""
        return EVENT_TYPES.get(self.rate_type)

    # -- words
    @property
    def unit(self) -> str:
        """The unit after a number: '%', 'per 1,000 member-months', 'PMPM', '' (plain numbers)."""
        if self.is_share:
            return "%"
        if self.is_money:
            return "PMPM"
        if self.exposure:
            return f"per {_per_text(self.per)} {self.exposure}"
        return f"per {_per_text(self.per)}" if self.per != 1 else ""

    @property
    def description(self) -> str:
        """'percent of eligible members', 'visits per 1,000 member-months', ... for the measure line."""
        return {
            "proportion": "percent of eligible members",
            "share_of_spend": "percent of spend",
            "usd_pmpm": "US dollars per member per month (PMPM)",
        }.get(self.rate_type, f"rate {self.unit}".strip() if self.unit else "rate")

    @property
    def axis_label(self) -> str:
        if self.rate_type == "proportion":
            return "Rate (%)"
        if self.rate_type == "share_of_spend":
            return "Share of spend (%)"
        if self.is_money:
            return "US dollars per member per month (PMPM)"
        return f"Rate {self.unit}".strip()

    @property
    def column_label(self) -> str:
        """Header of the rate column in tables."""
        if self.rate_type == "proportion":
            return "Rate"
        if self.rate_type == "share_of_spend":
            return "Share of spend"
        if self.is_money:
            return "Cost PMPM"
        return f"Rate {self.unit}".strip()

    # -- numbers
    def rounded(self, value: float) -> float:
        """The value as displayed (percent for shares), for arithmetic that must agree with the page."""
        if self.is_share:
            return _clean(round(value * 100, 1))
        return _clean(round(value, 2 if self.is_money else 1))

    def number(self, value: float | None) -> str:
        """Short form for tables and chart labels: '64.1%', '30.7', '$318.82'; '' for None."""
        if value is None:
            return ""
        if self.is_share:
            return f"{self.rounded(value):.1f}%"
        if self.is_money:
            return _money(value)
        return f"{self.rounded(value):,.1f}"

    def text(self, value: float | None) -> str:
        """Long form for sentences: '64.1%', '30.7 per 1,000 member-months', '$318.82 PMPM'."""
        if value is None:
            return ""
        if self.is_share or not self.unit:
            return self.number(value)
        return f"{self.number(value)} {self.unit}"

    def ci(self, lower: float | None, upper: float | None) -> str:
        """'62.0–66.1' (percent), '29.3–32.2', '$295.61–$342.03'; '' if either bound is missing."""
        if lower is None or upper is None:
            return ""
        if self.is_share:
            return f"{self.rounded(lower):.1f}\u2013{self.rounded(upper):.1f}"
        return f"{self.number(lower)}\u2013{self.number(upper)}"

    def rate_with_ci(self, rate: float | None, lower: float | None, upper: float | None) -> str:
        """'64.1% (62.0–66.1)', '$318.82 PMPM ($295.61–$342.03)', or without brackets when no CI."""
        ci = self.ci(lower, upper)
        return f"{self.text(rate)} ({ci})" if ci else self.text(rate)

    def difference(self, a: float, b: float) -> str:
        """Absolute difference of two displayed values: '9.9 percentage points', '5.2 per 1,000
        member-months', '$45.26 PMPM' (from the rounded values, so the reader's subtraction agrees)."""
        d = _clean(abs(self.rounded(a) - self.rounded(b)))
        if self.is_share:
            return f"{round(d, 1):.1f} percentage points"
        if self.is_money:
            return f"{_money(d)} PMPM"
        d = round(d, 1)
        return f"{d:,.1f} {self.unit}".strip()

    def ratio(self, low: float, high: float) -> float | None:
        """high / low of the displayed values, or None when it is not defined (low <= 0)."""
        lo, hi = self.rounded(low), self.rounded(high)
        return None if lo <= 0 or hi < 0 else hi / lo

    def tick(self, value: float, step: float) -> str:
        """Axis tick label; decimals follow the tick spacing."""
        if self.is_share:
            decimals = 0 if step * 100 >= 1 - 1e-9 else 1
            return f"{_clean(round(value * 100, decimals)):.{decimals}f}%"
        decimals = 0 if step >= 1 - 1e-9 else (1 if step >= 0.1 - 1e-9 else 2)
        if self.is_money:
            return _money(value, decimals)
        return f"{_clean(round(value, decimals)):,.{decimals}f}"


PROPORTION = RateScale()


def format_pct(value: float | None) -> str:
    """0.6412 -> '64.1%'; None -> ''."""
    return PROPORTION.number(value)


def format_rate(value: float | None, rate_type: str = "proportion", per: float = 1.0) -> str:
    """A rate in its type's long form: '64.1%', '30.7 per 1,000 member-months', '$318.82 PMPM'."""
    return RateScale.of(rate_type, per).text(value)


def format_ci(lower: float | None, upper: float | None, rate_type: str = "proportion", per: float = 1.0) -> str:
    """(0.620, 0.661) -> '62.0–66.1' (percent, one decimal, en dash); '' if either bound is missing.

    Other rate types: '29.3–32.2' (per-member rates), '$295.61–$342.03' (PMPM)."""
    return RateScale.of(rate_type, per).ci(lower, upper)


@dataclass(frozen=True)
class GroupRate:
    """One stratum as charted: counts, rate and CI are None when suppressed."""

    stratum: str
    suppressed: bool
    rate: float | None
    ci_lower: float | None
    ci_upper: float | None
    denominator: float | None
    numerator: float | None
    suppression_reason: str | None
    members: float | None = None


def _selection(rates: pl.DataFrame, measure_id: str, stratifier: str, unit_id: str, submeasure: str | None) -> pl.DataFrame:
    import polars as pl  # here, not at the top: chart worker processes never need polars (chart_pool)

    cond = (pl.col("measure_id") == measure_id) & (pl.col("stratifier") == stratifier) & (pl.col("unit_id") == unit_id)
    if submeasure is not None and "submeasure" in rates.columns:
        cond &= pl.col("submeasure") == submeasure
    return rates.filter(cond)


def groups_from_rows(rows: list[dict[str, Any]]) -> list[GroupRate]:
    """GroupRates in display order from rate-table rows (dicts) of one measure x unit x stratifier.

    Unsuppressed groups come first, sorted by rate (highest first, ties by name); suppressed groups
    (no rate to sort by) follow in name order. Unknown and Declined are ordinary groups here. A row
    flagged suppressed never passes on any of its numbers, even if the table (wrongly) has them.
    """
    groups = []
    for r in rows:
        hidden = bool(r["suppressed"])
        groups.append(GroupRate(
            stratum=str(r["stratum"]),
            # a row with no rate cannot be shown as a number, whatever its flag says
            suppressed=hidden or r["rate"] is None,
            rate=None if hidden else r["rate"],
            ci_lower=None if hidden else r["ci_lower"],
            ci_upper=None if hidden else r["ci_upper"],
            denominator=None if hidden else r["denominator"],
            numerator=None if hidden else r["numerator"],
            suppression_reason=r["suppression_reason"] if hidden or r["rate"] is not None else NO_RATE,
            members=None if hidden else r.get("members", r["denominator"]),
        ))
    shown = sorted((g for g in groups if not g.suppressed), key=lambda g: (-g.rate, g.stratum))
    hidden_groups = sorted((g for g in groups if g.suppressed), key=lambda g: g.stratum)
    return shown + hidden_groups


def group_rates(
    rates: pl.DataFrame, *, measure_id: str, stratifier: str, unit_id: str, submeasure: str | None = "all"
) -> list[GroupRate]:
    """The strata of one measure x unit x stratifier (x sub-measure, default the whole measure
    ``all``; ignored when the table has no ``submeasure`` column), in display order (see
    :func:`groups_from_rows`)."""
    return groups_from_rows(_selection(rates, measure_id, stratifier, unit_id, submeasure).to_dicts())


def overall_rate(rates: pl.DataFrame, *, measure_id: str, unit_id: str, submeasure: str | None = "all") -> GroupRate | None:
    """The 'overall' row of a measure x unit, or None if there is none."""
    rows = group_rates(rates, measure_id=measure_id, stratifier="overall", unit_id=unit_id, submeasure=submeasure)
    return rows[0] if rows else None


def rate_scale(rates: pl.DataFrame, measure_id: str) -> RateScale:
    """The RateScale of a measure from its rows' ``rate_type``/``rate_per`` (proportion when absent)."""
    import polars as pl

    if "rate_type" not in rates.columns:
        return PROPORTION
    sub = rates.filter(pl.col("measure_id") == measure_id).select(
        "rate_type", *(["rate_per"] if "rate_per" in rates.columns else [])).drop_nulls("rate_type")
    if sub.is_empty():
        return PROPORTION
    row = sub.row(0, named=True)
    return RateScale.of(row["rate_type"], row.get("rate_per"))


# ---------------------------------------------------------------------------------------------------
# drawing


def _ensure_matplotlib() -> Any:
    """Import matplotlib on first use: MPLCONFIGDIR to a temp dir if unset (removed when the process
    exits, so runs leave nothing in /tmp), Agg backend."""
    if not os.environ.get("MPLCONFIGDIR"):
        import atexit
        import shutil

        config_dir = tempfile.mkdtemp(prefix="equity-mpl-")
        os.environ["MPLCONFIGDIR"] = config_dir
        atexit.register(shutil.rmtree, config_dir, ignore_errors=True)
    import matplotlib

    # Charts are drawn on an explicit Agg canvas, never through pyplot; only pick the default backend
    # when pyplot is not already in use (never switch an interactive session's backend under it).
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib


def _agg_canvas(fig: Any) -> Any:
    """matplotlib's Agg canvas for ``fig``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg(fig)


def _layout(n_rows: int) -> tuple[float, float]:
    """(figure height in inches, tick-label font size) for ``n_rows`` rows, height capped."""
    rows_height = max(n_rows, 1) * ROW_HEIGHT
    height = min(max(rows_height + CHROME_HEIGHT, MIN_HEIGHT), MAX_HEIGHT)
    per_row = (height - CHROME_HEIGHT) / max(n_rows, 1)
    # 0.34 in per row fits 10 pt comfortably; shrink with the rows, never below 6 pt
    fontsize = max(6.0, min(10.0, per_row * 29.5))
    return height, fontsize


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / max(target, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


@dataclass(frozen=True)
class RateChart:
    """What one chart shows: groups in display order, the overall reference, words and scale."""

    groups: list[GroupRate]
    overall: GroupRate | None
    title: str
    subtitle: str
    direction: str | None = None
    scale: RateScale = PROPORTION


def rate_chart(
    rates: pl.DataFrame, *, measure_id: str, stratifier: str, unit_id: str, submeasure: str | None = "all",
    unit_label: str | None = None,
) -> RateChart:
    """The :class:`RateChart` of one measure x unit x stratifier from the rates table."""
    import polars as pl

    groups = group_rates(rates, measure_id=measure_id, stratifier=stratifier, unit_id=unit_id, submeasure=submeasure)
    if not groups:
        raise ValueError(f"no rows for measure {measure_id!r}, stratifier {stratifier!r}, unit {unit_id!r}")
    overall = (overall_rate(rates, measure_id=measure_id, unit_id=unit_id, submeasure=submeasure)
               if stratifier != "overall" else None)
    meta = rates.filter(pl.col("measure_id") == measure_id).select("measure_title", "direction").row(0)
    unit = unit_label or ("all members" if unit_id == "all" else unit_id)
    return RateChart(
        groups=groups, overall=overall, title=meta[0] or measure_id,
        subtitle=f"by {stratifier_label(stratifier).lower()}, {unit}", direction=meta[1],
        scale=rate_scale(rates, measure_id),
    )


class ChartCanvas:
    """One matplotlib figure, axes and Agg canvas, reused for chart after chart.

    ``draw(chart)`` removes the previous chart's artists and draws ``chart`` (returning the figure);
    ``png(chart)`` also encodes it as a palette PNG cropped to the chart's height. Layout is computed,
    not searched for (no constrained layout); group labels and the legend are plain texts rather than
    axis ticks and a Legend; text is drawn unhinted (:data:`TEXT_RC`). One chart then takes about a
    tenth of a second instead of about a second for a fresh constrained-layout figure.
    """

    def __init__(self, dpi: float = PNG_DPI, *, fixed_size: bool = True) -> None:
        """``fixed_size``: keep the figure at the tallest chart size and draw each chart in its top
        part (``png`` crops it), so the Agg renderer and its text-layout cache survive from chart to
        chart; otherwise the figure is resized to each chart (what :func:`plot_rates_by_group` returns)."""
        _ensure_matplotlib()
        from matplotlib.figure import Figure
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import text_to_path

        self.dpi = dpi
        self.fixed_size = fixed_size
        #: height (inches) of the last chart drawn; the figure may be taller when ``fixed_size``
        self.height = MIN_HEIGHT
        self.figure = Figure(figsize=(FIG_WIDTH, MAX_HEIGHT if fixed_size else MIN_HEIGHT), dpi=dpi)
        self.canvas = _agg_canvas(self.figure)
        self._font = FontProperties
        self._measure = text_to_path.get_text_width_height_descent
        self._widths: dict[tuple[str, float, str], float] = {}

        fig = self.figure
        ax = self.ax = fig.add_axes((0.3, 0.2, 0.65, 0.7))
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=9, colors=TEXT_COLOUR)
        ax.grid(axis="x", color=GRID_COLOUR, linewidth=0.7)
        ax.set_axisbelow(True)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.spines["bottom"].set_color("#8C8C8C")
        x0 = 0.12 / FIG_WIDTH
        self._title = fig.text(x0, 0.98, "", ha="left", va="top", fontsize=11, weight="bold", color=TEXT_COLOUR)
        self._subtitle = fig.text(x0, 0.9, "", ha="left", va="top", fontsize=9.5, color=TEXT_COLOUR)
        self._artists: list[Any] = []

    # -- text measurement (points -> inches), independent of the canvas size
    def _text_width(self, text: str, size: float, style: str = "normal") -> float:
        key = (text, size, style)
        if key not in self._widths:
            w, _, _ = self._measure(text, self._font(size=size, style=style), ismath=False)
            self._widths[key] = w / 72.0
        return self._widths[key]

    def _fit_label(self, text: str, size: float) -> str:
        if self._text_width(text, size) <= MAX_LABEL_WIDTH:
            return text
        while len(text) > 4 and self._text_width(text + "\u2026", size) > MAX_LABEL_WIDTH:
            text = text[:-1]
        return text.rstrip() + "\u2026"

    def _keep(self, artist: Any) -> Any:
        self._artists.append(artist)
        return artist

    def draw(self, chart: RateChart) -> Figure:
        """Clear the figure and draw ``chart`` on it; returns the figure."""
        import matplotlib

        with matplotlib.rc_context(TEXT_RC):
            return self._draw(chart)

    def _draw(self, chart: RateChart) -> Figure:
        from matplotlib.collections import LineCollection
        from matplotlib.lines import Line2D
        from matplotlib.ticker import FixedLocator, FuncFormatter
        from matplotlib.transforms import ScaledTranslation

        fig, ax, scale = self.figure, self.ax, chart.scale
        for artist in self._artists:
            artist.remove()
        self._artists = []

        groups = chart.groups
        shown_groups = [g for g in groups if not g.suppressed]
        hidden_groups = [g for g in groups if g.suppressed]
        # rows: (label, group, or None for the collapsed "N other groups" suppressed row)
        rows: list[tuple[str, GroupRate | None]] = [(g.stratum, g) for g in shown_groups]
        if len(hidden_groups) > MAX_SUPPRESSED_ROWS:
            rows.append((f"{len(hidden_groups)} other groups", None))
        else:
            rows += [(g.stratum, g) for g in hidden_groups]
        n = len(rows)
        height, fontsize = _layout(n)
        self.height = height
        if self.fixed_size:
            fig_h = MAX_HEIGHT
        else:
            fig_h = height
            fig.set_size_inches(FIG_WIDTH, height, forward=False)
        # the chart occupies the top ``height`` inches of the figure
        base = fig_h - height

        labels = [self._fit_label(label, fontsize) for label, _ in rows]
        label_w = max((self._text_width(t, fontsize) for t in labels), default=0.5)
        left = min(max(label_w + 0.22, 0.9), MAX_LABEL_WIDTH + 0.25)
        right = 0.2
        ax_w = FIG_WIDTH - left - right
        ax.set_position((left / FIG_WIDTH, (base + BOTTOM_HEIGHT) / fig_h, ax_w / FIG_WIDTH,
                         (height - TOP_HEIGHT - BOTTOM_HEIGHT) / fig_h))

        ys = list(range(n - 1, -1, -1))  # first row at the top
        value_labels = n <= MAX_VALUE_LABELS

        # x range: data and overall, padded; room on the right for the value labels
        values = [v for g in shown_groups for v in (g.rate, g.ci_lower, g.ci_upper) if v is not None]
        overall = chart.overall if chart.overall is not None and chart.overall.rate is not None else None
        if overall is not None:
            values.append(overall.rate)
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        span = high - low
        min_span = 0.05 if scale.is_share else max(abs(high) * 0.1, 1e-6 if high else 1.0)
        if span < min_span:
            low, high = low - (min_span - span) / 2, high + (min_span - span) / 2
            span = min_span
        pad = span * 0.06
        x_low, core_high = low - pad, high + pad
        if scale.is_share:
            x_low, core_high = max(0.0, x_low), min(1.0, core_high)
        elif min(values, default=0.0) >= 0:
            x_low = max(0.0, x_low)
        x_high = core_high
        if value_labels and shown_groups:
            lab_w = max(self._text_width(scale.number(g.rate), fontsize * 0.85) for g in shown_groups) + 0.12
            lab_w = min(lab_w, ax_w * 0.4)
            x_high += (x_high - x_low) * lab_w / (ax_w - lab_w)

        keep = self._keep
        # group labels left of the axes, value labels right of the whiskers: plain texts with a fixed
        # offset in points (cheaper to lay out than tick labels or annotations)
        label_tf = ax.get_yaxis_transform() + ScaledTranslation(-6 / 72, 0, fig.dpi_scale_trans)
        value_tf = ax.transData + ScaledTranslation(4 / 72, 0, fig.dpi_scale_trans)
        for y, label, (_, g) in zip(ys, labels, rows):
            muted = g is None or g.suppressed
            keep(ax.text(0, y, label, transform=label_tf, ha="right", va="center", fontsize=fontsize,
                         color=SUPPRESSED_COLOUR if muted else TEXT_COLOUR, gid="group-label"))
        keep(ax.add_collection(LineCollection([((0, y), (1, y)) for y in ys], transform=ax.get_yaxis_transform(),
                                              colors=GRID_COLOUR, linewidths=0.4, linestyles=":", zorder=0.5)))

        pts = [(y, g) for y, (_, g) in zip(ys, rows) if g is not None and not g.suppressed]
        if pts:
            segs = [((g.ci_lower, y), (g.ci_upper, y)) for y, g in pts if g.ci_lower is not None and g.ci_upper is not None]
            if segs:
                cap = 0.18
                caps = [((x, y - cap), (x, y + cap)) for (x0, y), (x1, _) in segs for x in (x0, x1)]
                keep(ax.add_collection(LineCollection(segs, colors=POINT_COLOUR, linewidths=1.6, zorder=2)))
                keep(ax.add_collection(LineCollection(caps, colors=POINT_COLOUR, linewidths=1.2, zorder=2)))
            keep(ax.scatter([g.rate for _, g in pts], [y for y, _ in pts], s=max(18.0, fontsize * 4.5),
                            color=POINT_COLOUR, edgecolor="white", linewidth=0.6, zorder=3))
            if value_labels:
                for y, g in pts:
                    right_x = g.ci_upper if g.ci_upper is not None else g.rate
                    keep(ax.text(right_x, y, scale.number(g.rate), transform=value_tf, va="center", ha="left",
                                 fontsize=fontsize * 0.85, color=TEXT_COLOUR, gid="value-label"))
        for y, (_, g) in zip(ys, rows):
            if g is None or g.suppressed:
                text = ("no rate" if g is not None and g.suppression_reason == NO_RATE
                        else "suppressed" if g is not None else "suppressed (listed in the table)")
                # no white box needed: the overall line stops above the suppressed rows when any
                # group is shown (boxes cost as much to draw as the text)
                box = None if pts else {"facecolor": "white", "edgecolor": "none", "pad": 0.6}
                keep(ax.text(x_low + (x_high - x_low) * 0.01, y, text, va="center", ha="left",
                             fontsize=fontsize * 0.95, style="italic", color=SUPPRESSED_COLOUR, zorder=4,
                             bbox=box))

        handles = [Line2D([], [], color=POINT_COLOUR, marker="o", markersize=5, linewidth=1.6,
                          label="Rate with 95% CI")] if pts else []
        if not pts:
            keep(ax.text(0.62, 0.5, "All groups suppressed:\nno rates can be shown", transform=ax.transAxes,
                         ha="center", va="center", fontsize=10, color=SUPPRESSED_COLOUR, zorder=4,
                         bbox={"facecolor": "white", "edgecolor": GRID_COLOUR, "pad": 4}))
        if overall is not None:
            # across the shown groups (suppressed rows sit below them and have nothing to compare)
            bottom = min(y for y, _ in pts) - 0.5 if pts else -0.7
            keep(ax.plot([overall.rate, overall.rate], [bottom, n - 0.3], color=OVERALL_COLOUR, linestyle="--",
                         linewidth=1.3, zorder=1)[0])
            handles.append(Line2D([], [], color=OVERALL_COLOUR, linestyle="--", linewidth=1.3,
                                  label=f"Overall {scale.text(overall.rate)}"))

        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlim(x_low, x_high)
        # ticks inside the data range only (the value-label margin may run past 100%)
        step = _nice_step(core_high - x_low, 6 if ax_w > 3.5 else 4)
        first = math.ceil(x_low / step - 1e-9) * step
        ticks = [first + i * step for i in range(int((core_high - first) / step + 1e-9) + 1)]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: scale.tick(v, step)))

        better = DIRECTION_TEXT.get(chart.direction or "")
        ax.set_xlabel(scale.axis_label + (f" \u2014 {better}" if better else ""), fontsize=9, color=TEXT_COLOUR,
                      labelpad=3)
        self._title.set_text(chart.title)
        self._title.set_y(1 - 0.1 / fig_h)
        self._subtitle.set_text(chart.subtitle)
        self._subtitle.set_y(1 - 0.36 / fig_h)
        if handles:
            self._legend(handles, (base + 0.16) / fig_h)
        return fig

    def _legend(self, handles: list[Any], y: float) -> None:
        """A one-row legend centred at the bottom, drawn as plain lines and texts (a matplotlib
        Legend lays itself out through offset boxes, a sizeable share of a small chart's time)."""
        from matplotlib.lines import Line2D

        fig, size, sample, gap, spacing = self.figure, 8.5, 0.3, 0.07, 0.3
        widths = [self._text_width(h.get_label(), size) for h in handles]
        total = sum(sample + gap + w for w in widths) + spacing * (len(handles) - 1)
        x = (FIG_WIDTH - total) / 2
        for h, w in zip(handles, widths):
            x0, x1 = x / FIG_WIDTH, (x + sample) / FIG_WIDTH
            line = Line2D([x0, x1], [y, y], transform=fig.transFigure, color=h.get_color(),
                          linestyle=h.get_linestyle(), linewidth=h.get_linewidth())
            self._keep(fig.add_artist(line))
            if h.get_marker() not in (None, "None", ""):
                dot = Line2D([(x0 + x1) / 2], [y], transform=fig.transFigure, color=h.get_color(), linestyle="none",
                             marker=h.get_marker(), markersize=h.get_markersize())
                self._keep(fig.add_artist(dot))
            self._keep(fig.text((x + sample + gap) / FIG_WIDTH, y, h.get_label(), ha="left", va="center",
                                fontsize=size, color=TEXT_COLOUR, gid="legend"))
            x += sample + gap + w + spacing

    def png(self, chart: RateChart) -> bytes:
        """The chart as PNG bytes (palette image; nothing is written to disk)."""
        import matplotlib

        with matplotlib.rc_context(TEXT_RC):
            self._draw(chart)
            return figure_png(self.figure, canvas=self.canvas, height=self.height)


def figure_png(fig: Any, *, drawn: bool = False, canvas: Any = None, height: float | None = None) -> bytes:
    """PNG bytes of a matplotlib figure: rendered on Agg, stored with a small palette (charts use a
    handful of flat colours plus anti-aliasing), no metadata, nothing written to disk. ``height``
    (inches) keeps only the top part of the figure."""
    from PIL import Image

    if canvas is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else _agg_canvas(fig)
    if not drawn:
        canvas.draw()
    width, rows = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, rows), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    if height is not None:
        image = image.crop((0, 0, width, min(rows, round(height * fig.dpi))))
    image = image.convert("RGB")
    image = image.quantize(colors=PNG_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def plot_rates_by_group(
    rates: pl.DataFrame, *, measure_id: str, stratifier: str, unit_id: str, submeasure: str | None = "all"
) -> Figure:
    """Horizontal dot chart of one measure's rates by group, with 95% CI whiskers.

    Shows every stratum of ``stratifier`` for ``measure_id`` (sub-measure ``submeasure``, by default
    the whole measure) in reporting unit ``unit_id``: unsuppressed groups as points with CI whiskers,
    sorted by rate (highest at the top) and labelled in the measure's unit; suppressed groups at the
    bottom, labelled "suppressed" with no point (more than ``MAX_SUPPRESSED_ROWS`` of them share one
    row). The overall rate of the same measure and unit (stratifier ``overall``) is drawn as a dashed
    reference line when it is unsuppressed. Height grows with the number of groups up to a cap; fonts
    shrink for long lists (counties).

    Returns a new ``matplotlib.figure.Figure`` (Agg canvas, not registered with pyplot).
    Raises ``ValueError`` if the selection has no rows.
    """
    chart = rate_chart(rates, measure_id=measure_id, stratifier=stratifier, unit_id=unit_id, submeasure=submeasure)
    return ChartCanvas(fixed_size=False).draw(chart)


_AGE_ROW = re.compile(r"^\d+(\s*[-\u2013]\s*\d+|\+)$")


def submeasure_label(submeasure: str) -> str:
    """'16-20' -> 'Ages 16–20', '18+' -> 'Ages 18+', 'interpersonal_safety' -> 'Interpersonal safety',
    'all' -> 'All (whole measure)'."""
    s = str(submeasure).strip()
    if s == "all":
        return "All (whole measure)"
    if _AGE_ROW.match(s):
        return "Ages " + re.sub(r"\s*[-\u2013]\s*", "\u2013", s)
    return s.replace("_", " ").capitalize()


def submeasure_sort_key(submeasure: str) -> tuple[int, float, str]:
    """Sub-measure display order: age rows by their lower bound, then other rows by name, 'all' last."""
    s = str(submeasure)
    if s == "all":
        return (2, 0.0, s)
    m = re.match(r"^(\d+)", s)
    return (0, float(m.group(1)), s) if m else (1, 0.0, s)


# ---------------------------------------------------------------------------------------------------
# forest plot: rate ratios against the reference group

#: Forest plots with more compared groups than this are left to the table (county-sized lists).
MAX_FOREST_ROWS = 25
#: Ratio axis limits when a CI bound is 0 or infinite (drawn clipped, with an arrow head).
RATIO_AXIS_FLOOR, RATIO_AXIS_CEILING = 0.05, 20.0


@dataclass(frozen=True)
class RatioPoint:
    """One group's rate ratio against the reference with its 95% CI; ``ratio`` None: not compared."""

    label: str
    ratio: float | None
    lower: float | None
    upper: float | None
    significant: bool = False


@dataclass(frozen=True)
class ForestChart:
    """A forest plot: groups' rate ratios against ``reference`` (drawn at 1), in the given order."""

    points: list[RatioPoint]
    reference: str
    title: str
    subtitle: str
    direction: str | None = None


def _ratio_tick(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if v < 10 else f"{v:.0f}"


def plot_rate_ratios(chart: ForestChart) -> Figure:
    """Forest plot of rate ratios with 95% CI whiskers on a log axis, a line at 1 for the reference.

    Significant comparisons are filled points, others hollow. Groups without a ratio (suppressed or
    not compared) are listed as rows reading "not compared". CI bounds of 0 or infinity, or beyond
    the axis, are drawn to the axis edge with an arrow head. Returns a new Figure on an Agg canvas
    (not pyplot). Drawn the cheap way, as the rate charts are: the axis is linear in log10(ratio),
    labels are plain texts and the legend is drawn by hand (tick objects, log transforms and
    matplotlib legends are most of a small chart's cost)."""
    _ensure_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure

    height, _ = _layout(max(len(chart.points), 1))
    with matplotlib.rc_context(TEXT_RC):
        fig = Figure(figsize=(FIG_WIDTH, height), dpi=PNG_DPI)
        _agg_canvas(fig)
        ax = _forest_axes(fig)
        _draw_forest(fig, ax, chart, height)
    return fig


def _forest_axes(fig: Any) -> Any:
    """The forest plot's axes with the settings every chart shares (no y ticks, x grid, spines)."""
    ax = fig.add_axes((0.3, 0.2, 0.65, 0.7))
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#8C8C8C")
    ax.grid(axis="x", color=GRID_COLOUR, linewidth=0.7)
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelsize=9, colors=TEXT_COLOUR)
    return ax


def _draw_forest(fig: Any, ax: Any, chart: ForestChart, fig_h: float) -> float:
    """Draw ``chart`` in the top part of ``fig`` (``fig_h`` inches tall) on ``ax``, which holds no
    other chart's artists; returns the chart's height in inches."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter
    from matplotlib.transforms import ScaledTranslation

    points = chart.points
    n = max(len(points), 1)
    height, fontsize = _layout(n)
    base = fig_h - height  # the chart occupies the top ``height`` inches of the figure
    labels = [p.label if len(p.label) <= 40 else p.label[:39] + "\u2026" for p in points]
    # label width: about 0.6 em per character (0.0083 in per point of font size)
    left = min(MAX_LABEL_WIDTH, max(0.9, 0.0083 * fontsize * max((len(t) for t in labels), default=4))) + 0.3
    ax.set_position((left / FIG_WIDTH, (base + BOTTOM_HEIGHT) / fig_h, (FIG_WIDTH - left - 0.25) / FIG_WIDTH,
                     (height - TOP_HEIGHT - BOTTOM_HEIGHT) / fig_h))
    values = [v for p in points for v in (p.ratio, p.lower, p.upper) if v is not None and math.isfinite(v) and v > 0]
    lo = max(min([*values, 1.0]) / 1.15, RATIO_AXIS_FLOOR)
    hi = min(max([*values, 1.0]) * 1.15, RATIO_AXIS_CEILING)
    if hi / lo < 1.5:  # at least a little room either side of 1
        lo, hi = min(lo, 1 / 1.25), max(hi, 1.25)
    x_lo, x_hi = math.log10(lo), math.log10(hi)

    def x(v: float) -> float:
        return min(max(math.log10(v), x_lo), x_hi) if v > 0 else x_lo

    ys = list(range(n - 1, -1, -1))
    label_tf = ax.get_yaxis_transform() + ScaledTranslation(-6 / 72, 0, fig.dpi_scale_trans)
    segments, filled, hollow, left_arrows, right_arrows = [], [], [], [], []
    for y, label, p in zip(ys, labels, points):
        compared = p.ratio is not None
        ax.text(0, y, label, transform=label_tf, ha="right", va="center", fontsize=fontsize,
                color=TEXT_COLOUR if compared else SUPPRESSED_COLOUR)
        if not compared:
            ax.text(x_lo + (x_hi - x_lo) * 0.01, y, "not compared (suppressed or no comparison)", va="center",
                    ha="left", fontsize=fontsize * 0.9, style="italic", color=SUPPRESSED_COLOUR, zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})
            continue
        low = p.lower if p.lower is not None else p.ratio
        high = p.upper if p.upper is not None else p.ratio
        segments.append(((x(low), y), (x(high) if math.isfinite(high) else x_hi, y)))
        if p.lower is not None and (p.lower <= 0 or p.lower < lo):
            left_arrows.append((x_lo, y))
        if p.upper is not None and (not math.isfinite(p.upper) or p.upper > hi):
            right_arrows.append((x_hi, y))
        (filled if p.significant else hollow).append((x(p.ratio), y))
    ax.axvline(0.0, color=OVERALL_COLOUR, linestyle="--", linewidth=1.3, zorder=1)
    if segments:
        ax.add_collection(LineCollection(segments, colors=POINT_COLOUR, linewidths=1.6, zorder=2))
    for pts, marker in ((left_arrows, "<"), (right_arrows, ">")):
        if pts:
            ax.scatter(*zip(*pts), marker=marker, s=30, color=POINT_COLOUR, zorder=2)
    if filled:
        ax.scatter(*zip(*filled), s=46, color=POINT_COLOUR, edgecolor=POINT_COLOUR, linewidth=1.4, zorder=3)
    if hollow:
        ax.scatter(*zip(*hollow), s=46, color="white", edgecolor=POINT_COLOUR, linewidth=1.4, zorder=3)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(-0.7, n - 0.3)
    candidates = (0.05, 0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 4.0, 5.0, 10.0, 20.0)
    ax.xaxis.set_major_locator(FixedLocator([math.log10(t) for t in candidates if lo <= t <= hi]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _ratio_tick(10 ** v)))
    better = {"higher_is_better": "; right of 1 is better", "lower_is_better": "; left of 1 is better"}
    ax.set_xlabel(f"Rate ratio vs {chart.reference} (log scale){better.get(chart.direction or '', '')}",
                  fontsize=9, color=TEXT_COLOUR, labelpad=3)
    x0 = 0.12 / FIG_WIDTH
    fig.text(x0, 1 - 0.1 / fig_h, chart.title, ha="left", va="top", fontsize=11, weight="bold", color=TEXT_COLOUR)
    fig.text(x0, 1 - 0.36 / fig_h, chart.subtitle, ha="left", va="top", fontsize=9.5, color=TEXT_COLOUR)
    # legend by hand: marker or dash, then its words, centred along the bottom
    entries = [("filled", "Significant difference"), ("hollow", "Not significant"), ("line", f"Reference: {chart.reference}")]
    widths = [0.3 + 0.07 + 0.0076 * 8.5 * len(text) for _, text in entries]
    xpos, y = (FIG_WIDTH - sum(widths) - 0.3 * (len(entries) - 1)) / 2, (base + 0.16) / fig_h
    for (kind, text), w in zip(entries, widths):
        x_mid = (xpos + 0.15) / FIG_WIDTH
        if kind == "line":
            fig.add_artist(Line2D([xpos / FIG_WIDTH, (xpos + 0.3) / FIG_WIDTH], [y, y],
                                  color=OVERALL_COLOUR, linestyle="--", linewidth=1.3))
        else:
            fig.add_artist(Line2D([xpos / FIG_WIDTH, (xpos + 0.3) / FIG_WIDTH], [y, y],
                                  color=POINT_COLOUR, linewidth=1.6))
            fig.add_artist(Line2D([x_mid], [y], marker="o", markersize=6, linestyle="none",
                                  markeredgecolor=POINT_COLOUR, markeredgewidth=1.4,
                                  markerfacecolor=POINT_COLOUR if kind == "filled" else "white"))
        fig.text((xpos + 0.37) / FIG_WIDTH, y, text, ha="left", va="center", fontsize=8.5, color=TEXT_COLOUR)
        xpos += w + 0.3
    return height


class ForestCanvas:
    """One figure, axes and Agg canvas reused for forest plot after forest plot (as
    :class:`ChartCanvas` for the rate charts): each chart's artists are removed before the next one
    is drawn in the top part of a figure of the tallest size, and ``png`` crops to the chart."""

    def __init__(self, dpi: float = PNG_DPI) -> None:
        _ensure_matplotlib()
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(FIG_WIDTH, MAX_HEIGHT), dpi=dpi)
        self.canvas = _agg_canvas(self.figure)
        self.ax = _forest_axes(self.figure)
        self.height = MIN_HEIGHT

    def png(self, chart: ForestChart) -> bytes:
        import matplotlib

        fig, ax = self.figure, self.ax
        for artist in [*ax.texts, *ax.collections, *ax.lines, *fig.texts, *fig.artists, *fig.lines]:
            artist.remove()
        with matplotlib.rc_context(TEXT_RC):
            self.height = _draw_forest(fig, ax, chart, MAX_HEIGHT)
            return figure_png(fig, canvas=self.canvas, height=self.height)


_FOREST_CANVAS: list[ForestCanvas] = []
_FOREST_LOCK = threading.Lock()


def png_pixels(png: bytes) -> tuple[int, int]:
    """Width and height in pixels of a PNG image (its IHDR chunk, right after the signature)."""
    import struct

    width, height = struct.unpack(">II", png[16:24])
    return width, height


def forest_png(chart: ForestChart) -> bytes:
    """The forest plot as palette PNG bytes (nothing written to disk), drawn on one reused canvas per
    process."""
    with _FOREST_LOCK:
        if not _FOREST_CANVAS:
            _FOREST_CANVAS.append(ForestCanvas())
        return _FOREST_CANVAS[0].png(chart)


# ---------------------------------------------------------------------------------------------------
# trend lines across periods (report/index.html "Trends"; data: equity_pipeline.report.trends)

#: Panels per row of a trend chart (small multiples: the overall rate, then one panel per group).
TREND_COLUMNS = 3
#: Height of one row of trend panels, in inches.
TREND_PANEL_HEIGHT = 1.75
#: A trend chart draws at most this many panels; further groups are in the table only.
MAX_TREND_PANELS = 12


@dataclass(frozen=True)
class TrendPoint:
    """One period of one group: ``rate`` and CI are None when the cell is suppressed (then never drawn
    at a value: the period gets a mark on the panel's x axis)."""

    period: str
    suppressed: bool
    rate: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class TrendSeries:
    """A group's points, one per period it has a published row for (periods without a row are gaps)."""

    label: str
    points: list[TrendPoint]


@dataclass(frozen=True)
class TrendChart:
    """Small multiples over ``periods`` (in order): ``series[0]`` is drawn as the reference line in
    every other panel when ``reference_first`` (the overall rate)."""

    periods: list[str]
    series: list[TrendSeries]
    title: str
    subtitle: str
    scale: RateScale = PROPORTION
    reference_first: bool = True


def _runs(points: list[tuple[int, TrendPoint]]) -> list[list[tuple[int, TrendPoint]]]:
    """Consecutive shown periods (no suppressed or missing period between them): a line or band
    never bridges a period whose value is hidden or absent."""
    runs: list[list[tuple[int, TrendPoint]]] = []
    for i, p in points:
        if p.suppressed or p.rate is None:
            continue
        if runs and runs[-1][-1][0] == i - 1:
            runs[-1].append((i, p))
        else:
            runs.append([(i, p)])
    return runs


def plot_trends(chart: TrendChart) -> Figure:
    """Rate over periods per group, one small panel each (shared y axis), with the 95% CI as a band.

    Suppressed periods are marked with a grey cross on the panel's x axis line (axes coordinates,
    never at a value) and break the line; periods a group has no row for are gaps. The first series (overall)
    is repeated as a dashed line in the other panels. Returns a new Figure on an Agg canvas."""
    _ensure_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    series = chart.series[:MAX_TREND_PANELS]
    n = max(len(series), 1)
    cols = min(TREND_COLUMNS, n)
    rows = math.ceil(n / cols)
    top, bottom = 0.7, 0.55
    height = top + bottom + rows * TREND_PANEL_HEIGHT
    index = {p: i for i, p in enumerate(chart.periods)}
    values = [v for s in series for p in s.points if not p.suppressed
              for v in (p.rate, p.ci_lower, p.ci_upper) if v is not None and math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.12 or max(abs(hi) * 0.1, 0.01)
    lo, hi = lo - pad, hi + pad
    if chart.scale.is_share:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    elif lo < 0 <= min(values, default=0.0):
        lo = 0.0
    step = _nice_step(hi - lo, 4)
    ticks = [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
    reference = series[0] if chart.reference_first and len(series) > 1 else None
    with matplotlib.rc_context(TEXT_RC):
        fig = Figure(figsize=(FIG_WIDTH, height), dpi=PNG_DPI)
        _agg_canvas(fig)
        left_margin, gap_x, gap_y = 0.75, 0.25, 0.42
        width = (FIG_WIDTH - left_margin - 0.15 - gap_x * (cols - 1)) / cols
        panel_h = TREND_PANEL_HEIGHT - gap_y
        for k, s in enumerate(series):
            r, c = divmod(k, cols)
            x0 = left_margin + c * (width + gap_x)
            y0 = height - top - (r + 1) * TREND_PANEL_HEIGHT + 0.08
            ax = fig.add_axes((x0 / FIG_WIDTH, y0 / height, width / FIG_WIDTH, panel_h / height))
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            for side in ("left", "bottom"):
                ax.spines[side].set_color("#8C8C8C")
            ax.grid(axis="y", color=GRID_COLOUR, linewidth=0.6)
            ax.set_axisbelow(True)
            ax.set_xlim(-0.4, max(len(chart.periods) - 1, 0) + 0.4)
            ax.set_ylim(lo, hi)
            ax.set_xticks(range(len(chart.periods)))
            ax.set_xticklabels(chart.periods if r == rows - 1 or k + cols >= n else [""] * len(chart.periods),
                               fontsize=7.5, rotation=30 if len(chart.periods) > 4 else 0)
            ax.set_yticks(ticks)
            ax.set_yticklabels([chart.scale.tick(t, step) for t in ticks] if c == 0 else [""] * len(ticks), fontsize=7.5)
            ax.tick_params(colors=TEXT_COLOUR, length=2)
            label = s.label if len(s.label) <= 34 else s.label[:33] + "\u2026"
            ax.set_title(label, fontsize=8.5, color=TEXT_COLOUR, loc="left", pad=3)
            if reference is not None and s is not reference:
                for run in _runs([(index[p.period], p) for p in reference.points if p.period in index]):
                    ax.plot([i for i, _ in run], [p.rate for _, p in run], color=OVERALL_COLOUR, linestyle="--",
                            linewidth=1.0, zorder=2)
            placed = [(index[p.period], p) for p in s.points if p.period in index]
            for run in _runs(placed):
                xs = [i for i, _ in run]
                if len(run) > 1 and all(p.ci_lower is not None and p.ci_upper is not None for _, p in run):
                    ax.fill_between(xs, [p.ci_lower for _, p in run], [p.ci_upper for _, p in run],
                                    color=POINT_COLOUR, alpha=0.18, linewidth=0, zorder=1)
                else:
                    for i, p in run:
                        if p.ci_lower is not None and p.ci_upper is not None:
                            ax.plot([i, i], [p.ci_lower, p.ci_upper], color=POINT_COLOUR, linewidth=1.2, alpha=0.6, zorder=1)
                ax.plot(xs, [p.rate for _, p in run], color=POINT_COLOUR, linewidth=1.6, marker="o", markersize=3.5, zorder=3)
            hidden = [i for i, p in placed if p.suppressed or p.rate is None]
            if hidden:  # on the panel's x axis line (axes y = 0), never at a value
                ax.scatter(hidden, [0.0] * len(hidden), transform=ax.get_xaxis_transform(), marker="x", s=26,
                           color=SUPPRESSED_COLOUR, linewidth=1.2, zorder=4, clip_on=False)
        fig.text(0.12 / FIG_WIDTH, 1 - 0.1 / height, chart.title, ha="left", va="top", fontsize=11, weight="bold",
                 color=TEXT_COLOUR)
        fig.text(0.12 / FIG_WIDTH, 1 - 0.36 / height, chart.subtitle, ha="left", va="top", fontsize=9, color=TEXT_COLOUR)
        y = 0.2 / height
        entries = [("line", POINT_COLOUR, "-", "Rate, band: 95% CI")]
        if reference is not None:
            entries.append(("line", OVERALL_COLOUR, "--", f"{reference.label} (all groups)"))
        entries.append(("cross", SUPPRESSED_COLOUR, "", "Suppressed (cell-size policy): no value"))
        xpos = 0.3
        for kind, colour, style, text in entries:
            if kind == "line":
                fig.add_artist(Line2D([xpos / FIG_WIDTH, (xpos + 0.3) / FIG_WIDTH], [y, y], color=colour, linestyle=style,
                                      linewidth=1.5))
            else:
                fig.add_artist(Line2D([(xpos + 0.15) / FIG_WIDTH], [y], marker="x", markersize=6, linestyle="none",
                                      color=colour, markeredgewidth=1.2))
            fig.text((xpos + 0.37) / FIG_WIDTH, y, text, ha="left", va="center", fontsize=8, color=TEXT_COLOUR)
            xpos += 0.37 + 0.0072 * 8 * len(text) + 0.3
    return fig


def trend_png(chart: TrendChart) -> bytes:
    """The trend chart as palette PNG bytes (nothing written to disk)."""
    import matplotlib

    fig = plot_trends(chart)
    with matplotlib.rc_context(TEXT_RC):
        return figure_png(fig)
