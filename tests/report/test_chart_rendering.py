"""The report's faster drawing paths change how charts are drawn, never what they show: the cached
text layout and glyph loop of ``charts._agg_canvas`` give the same pixels as matplotlib's own Agg
canvas, and a reused forest canvas leaves nothing of one chart on the next."""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from equity_pipeline import charts
from equity_pipeline.charts import ForestCanvas, ForestChart, RatioPoint, TrendChart, TrendPoint, TrendSeries


def forest(title: str, labels: list[str]) -> ForestChart:
    points = [RatioPoint(label, 0.7 + 0.1 * i, 0.6 + 0.1 * i, 0.8 + 0.1 * i, significant=i % 2 == 0)
              for i, label in enumerate(labels)]
    points.append(RatioPoint("Not compared group", None, None, None))
    points.append(RatioPoint("Unbounded", 1.3, 0.0, math.inf))
    return ForestChart(points=points, reference="White", title=title, subtitle="rate ratio vs White",
                       direction="higher_is_better")


def stock_pixels(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # matplotlib's own renderer, no cache
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def fast_pixels(fig) -> np.ndarray:
    canvas = charts._agg_canvas(fig)
    canvas.draw()
    assert canvas.get_renderer()._equity_fast_glyphs  # the faster path is the one drawn with
    return np.asarray(canvas.buffer_rgba()).copy()


def test_fast_text_gives_matplotlibs_pixels() -> None:
    import matplotlib

    chart = forest("Breast Cancer Screening", ["Black or African American", "Hispanic or Latino", "Asian"])
    with matplotlib.rc_context(charts.TEXT_RC):
        fig = charts.plot_rate_ratios(chart)
        fast_first = fast_pixels(fig)
        fast_cached = fast_pixels(fig)  # second draw: every layout and extent from the cache
        stock = stock_pixels(fig)
    assert stock.shape == fast_first.shape
    assert (stock[..., :3] < 250).any()  # something was drawn
    assert np.array_equal(stock, fast_first)
    assert np.array_equal(stock, fast_cached)


def test_rotated_text_falls_back_to_matplotlib() -> None:
    import matplotlib

    periods = ["2021", "2022", "2023", "2024", "2025"]  # more than 4 periods: rotated tick labels
    series = [TrendSeries(name, [TrendPoint(p, False, 0.5 + 0.01 * i, 0.45, 0.55 + 0.01 * i) for i, p in enumerate(periods)])
              for name in ("Overall", "Asian", "White")]
    chart = TrendChart(periods=periods, series=series, title="Trend", subtitle="all members")
    with matplotlib.rc_context(charts.TEXT_RC):
        fig = charts.plot_trends(chart)
        assert np.array_equal(stock_pixels(fig), fast_pixels(fig))


def test_reused_forest_canvas_keeps_nothing_of_the_previous_chart() -> None:
    first = forest("First measure", ["Black or African American", "Asian"])
    other = forest("A different measure with more rows", [f"County number {i}" for i in range(12)])
    canvas = ForestCanvas()
    a = canvas.png(first)
    b = canvas.png(other)
    again = canvas.png(first)
    assert a == again and a != b
    # each PNG is cropped to its own chart: more rows, taller image; full width
    ha, hb = Image.open(io.BytesIO(a)).size[1], Image.open(io.BytesIO(b)).size[1]
    assert hb > ha
    assert Image.open(io.BytesIO(a)).size[0] == round(charts.FIG_WIDTH * charts.PNG_DPI)
    # the reused canvas draws what a fresh figure of the chart's own height shows (same texts)
    fig = charts.plot_rate_ratios(first)
    fresh = sorted(t.get_text() for t in (*fig.texts, *fig.axes[0].texts))
    canvas.png(first)
    reused = sorted(t.get_text() for t in (*canvas.figure.texts, *canvas.ax.texts))
    assert fresh == reused
