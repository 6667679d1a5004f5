"""The report's reused canvases change how charts are drawn, never what they show: a reused forest
canvas leaves nothing of one chart on the next."""
from __future__ import annotations

import io
import math

from PIL import Image

from equity_pipeline import charts
from equity_pipeline.charts import ForestCanvas, ForestChart, RatioPoint


def forest(title: str, labels: list[str]) -> ForestChart:
    points = [RatioPoint(label, 0.7 + 0.1 * i, 0.6 + 0.1 * i, 0.8 + 0.1 * i, significant=i % 2 == 0)
              for i, label in enumerate(labels)]
    points.append(RatioPoint("Not compared group", None, None, None))
    points.append(RatioPoint("Unbounded", 1.3, 0.0, math.inf))
    return ForestChart(points=points, reference="White", title=title, subtitle="rate ratio vs White",
                       direction="higher_is_better")


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
