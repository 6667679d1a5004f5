"""Forest plot of rate ratios: log axis with 1 at the reference line, significant points filled,
groups not compared listed, CI bounds of 0 or infinity clipped with arrow heads."""
from __future__ import annotations

import math

from equity_pipeline.charts import ForestChart, RatioPoint, forest_png, plot_rate_ratios

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chart() -> ForestChart:
    return ForestChart(points=[
        RatioPoint("Black or African American", 0.80, 0.70, 0.90, significant=True),
        RatioPoint("Hispanic or Latino", 0.95, 0.85, 1.05),
        RatioPoint("Asian", 1.30, 0.0, math.inf),
        RatioPoint("American Indian or Alaska Native", None, None, None),
    ], reference="White", title="Breast Cancer Screening", subtitle="rate ratio vs White", direction="higher_is_better")


def _texts(fig) -> list[str]:
    ax = fig.axes[0]
    return [t.get_text() for t in (*fig.texts, *ax.texts)]


def test_points_reference_line_and_labels() -> None:
    fig = plot_rate_ratios(chart())
    ax = fig.axes[0]
    texts = _texts(fig)
    for label in ("Black or African American", "Hispanic or Latino", "Asian", "American Indian or Alaska Native",
                  "not compared (suppressed or no comparison)", "Significant difference", "Not significant",
                  "Reference: White", "Breast Cancer Screening"):
        assert label in texts, label
    # the axis is log10(ratio): the reference line sits at 0, i.e. a ratio of 1
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.lines)
    ticks = {t.get_text() for t in ax.get_xticklabels()}
    assert "1" in ticks and "0.8" in ticks
    assert "right of 1 is better" in ax.get_xlabel()
    # one filled and two hollow points; arrow heads at both ends of the unbounded Asian interval
    faces = [(c.get_offsets().tolist(), c.get_facecolor().tolist()) for c in ax.collections if hasattr(c, "get_offsets")]
    filled = [o for o, fc in faces if len(o) == 1 and fc and fc[0][:3] != [1.0, 1.0, 1.0] and len(o[0]) == 2]
    hollow = [o for o, fc in faces if fc and fc[0][:3] == [1.0, 1.0, 1.0]]
    assert sum(len(o) for o in hollow) == 2
    assert any(abs(o[0][0] - math.log10(0.8)) < 1e-9 for o in filled)
    lo, hi = ax.get_xlim()
    arrow_xs = sorted(x for o, _ in faces for x, _ in o if x in (lo, hi))
    assert arrow_xs == [lo, hi]


def test_png_bytes() -> None:
    data = forest_png(chart())
    assert data.startswith(PNG_SIGNATURE)
    width = int.from_bytes(data[16:20], "big")
    assert width == round(7.5 * 110)
