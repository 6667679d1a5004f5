"""Charts and rate formatting: pure, Agg, every group shown, suppressed groups labelled with no
point, each rate type in its own unit, one canvas reused chart after chart."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline import charts
from equity_pipeline.charts import (
    MAX_HEIGHT,
    MAX_SUPPRESSED_ROWS,
    ChartCanvas,
    RateScale,
    format_ci,
    format_pct,
    format_rate,
    group_rates,
    plot_rates_by_group,
    rate_chart,
    submeasure_label,
    submeasure_sort_key,
)
from tests.report.frames import frame, row

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bcs(stratifier: str, stratum: str, n: int | None, x: int | None, **kw) -> dict:
    if n is None:
        return row("BCS-E", stratifier, stratum, **kw)
    rate = x / n
    half = 1.96 * (rate * (1 - rate) / n) ** 0.5
    return row("BCS-E", stratifier, stratum, n, x, (max(0.0, rate - half), min(1.0, rate + half)), **kw)


@pytest.fixture(scope="module")
def rates() -> pl.DataFrame:
    return frame([
        bcs("overall", "all", 2000, 1400),
        bcs("race_ethnicity", "White", 1000, 740),
        bcs("race_ethnicity", "Hispanic or Latino", 400, 256),
        bcs("race_ethnicity", "Asian", None, None),
        bcs("race_ethnicity", "Declined", 120, 80),
        bcs("race_ethnicity", "Unknown", 300, 180),
        # a sub-measure row must never be mixed into the whole measure's chart
        bcs("race_ethnicity", "White", 500, 100, submeasure="50-64"),
    ])


def labels_top_down(fig) -> list[str]:
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_gid() == "group-label"]
    return [t.get_text() for t in sorted(texts, key=lambda t: -t.get_position()[1])]


def test_returns_figure_with_every_group(rates: pl.DataFrame) -> None:
    from matplotlib.figure import Figure

    fig = plot_rates_by_group(rates, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # sorted by rate, highest at the top, suppressed last; Unknown/Declined kept; no sub-measure row
    assert labels_top_down(fig) == ["White", "Declined", "Hispanic or Latino", "Unknown", "Asian"]
    # one point per unsuppressed group, none for the suppressed one
    offsets = ax.collections[-1].get_offsets()
    assert len(offsets) == 4
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("suppressed") == 1
    assert "74.0%" in texts  # value label of White
    # overall reference line at the overall rate
    assert any(abs(line.get_xdata()[0] - 0.7) < 1e-9 for line in ax.get_lines())
    assert "higher is better" in ax.get_xlabel() and "%" in ax.get_xlabel()


def test_many_strata_height_capped_and_sorted() -> None:
    rows = [bcs("overall", "all", 50_000, 35_000)]
    rows += [bcs("county", f"County {i:02d}", 200 + i * 10, 100 + i * 3) for i in range(70)]
    rows += [bcs("county", "Tiny County", None, None)]
    data = frame(rows)
    fig = plot_rates_by_group(data, measure_id="BCS-E", stratifier="county", unit_id="all")
    assert fig.get_size_inches()[1] <= MAX_HEIGHT
    groups = group_rates(data, measure_id="BCS-E", stratifier="county", unit_id="all")
    shown = [g.rate for g in groups if not g.suppressed]
    assert shown == sorted(shown, reverse=True)
    assert groups[-1].stratum == "Tiny County" and groups[-1].suppressed
    assert len(labels_top_down(fig)) == 71
    assert not [t for t in fig.axes[0].texts if t.get_gid() == "value-label"]  # too many rows for labels


def test_many_suppressed_groups_share_one_row() -> None:
    rows = [bcs("overall", "all", 5000, 3500), bcs("language", "English", 4000, 2900)]
    rows += [bcs("language", f"Language {i}", None, None) for i in range(MAX_SUPPRESSED_ROWS + 4)]
    fig = plot_rates_by_group(frame(rows), measure_id="BCS-E", stratifier="language", unit_id="all")
    assert labels_top_down(fig) == ["English", f"{MAX_SUPPRESSED_ROWS + 4} other groups"]
    assert "suppressed (listed in the table)" in [t.get_text() for t in fig.axes[0].texts]


def test_suppressed_row_values_never_used(rates: pl.DataFrame) -> None:
    # a suppressed row that (wrongly) still carries numbers is charted as suppressed, without them
    leaky = rates.with_columns(
        pl.when(pl.col("stratum") == "Asian").then(pl.lit(0.123)).otherwise(pl.col("rate")).alias("rate"),
        pl.when(pl.col("stratum") == "Asian").then(pl.lit(57)).otherwise(pl.col("members")).alias("members"),
    )
    groups = group_rates(leaky, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    asian = next(g for g in groups if g.stratum == "Asian")
    assert asian.suppressed and asian.rate is None and asian.denominator is None and asian.members is None


def test_submeasure_selection(rates: pl.DataFrame) -> None:
    whole = group_rates(rates, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    assert [g.rate for g in whole if g.stratum == "White"] == [0.74]
    sub = group_rates(rates, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all", submeasure="50-64")
    assert [(g.stratum, g.rate) for g in sub] == [("White", 0.2)]


def test_empty_selection_raises(rates: pl.DataFrame) -> None:
    with pytest.raises(ValueError):
        plot_rates_by_group(rates, measure_id="BCS-E", stratifier="county", unit_id="all")


def test_pure_writes_no_files(rates: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plot_rates_by_group(rates, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    ChartCanvas().png(rate_chart(rates, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all"))
    assert list(tmp_path.iterdir()) == []


def test_formatting_proportion() -> None:
    assert format_pct(0.6412) == "64.1%"
    assert format_ci(0.62, 0.6614) == "62.0\u201366.1"
    assert format_pct(None) == "" and format_ci(None, 0.5) == ""
    assert format_ci(-1e-12, 0.088) == "0.0\u20138.8"
    assert format_pct(0.99951) == "100.0%"
    p = RateScale.of("proportion")
    assert p.difference(0.740, 0.641) == "9.9 percentage points"
    assert p.axis_label == "Rate (%)"
    assert p.tick(0.5, 0.1) == "50%" and p.tick(0.705, 0.005) == "70.5%"
    assert charts.stratifier_label("race_ethnicity") == "Race and ethnicity"
    assert charts.stratifier_label("housing_status") == "Housing status"


def test_formatting_per_member_months() -> None:
    s = RateScale.of("per_member_months", 1000.0)
    assert s.number(42.345) == "42.3"
    assert s.text(42.345) == "42.3 per 1,000 member-months"
    assert format_rate(42.345, "per_member_months", 1000) == "42.3 per 1,000 member-months"
    assert s.ci(38.04, 47.0) == "38.0\u201347.0"
    assert s.rate_with_ci(42.345, 38.04, 47.0) == "42.3 per 1,000 member-months (38.0\u201347.0)"
    assert s.difference(50.0, 40.0) == "10.0 per 1,000 member-months"
    assert s.ratio(40.0, 50.0) == pytest.approx(1.25)
    assert "per 1,000 member-months" in s.axis_label and s.column_label == "Rate per 1,000 member-months"
    assert not s.is_share and s.exposure == "member-months"


def test_formatting_per_member_years() -> None:
    s = RateScale.of("per_member_years", 100000.0)
    assert s.text(3843.94) == "3,843.9 per 100,000 member-years"
    assert s.ci(3231.453, 4538.72) == "3,231.5\u20134,538.7"
    assert s.tick(4000, 1000) == "4,000"


def test_formatting_usd_pmpm() -> None:
    s = RateScale.of("usd_pmpm", 1.0)
    assert s.number(412.3456) == "$412.35"
    assert s.text(412.3456) == "$412.35 PMPM"
    assert format_rate(412.3456, "usd_pmpm") == "$412.35 PMPM"
    assert s.ci(380.0, 1444.5) == "$380.00\u2013$1,444.50"
    assert format_ci(380.0, 444.5, "usd_pmpm") == "$380.00\u2013$444.50"
    assert s.difference(412.35, 300.0) == "$112.35 PMPM"
    assert s.ratio(300.0, 412.35) == pytest.approx(1.3745, abs=1e-4)
    assert s.tick(300, 100) == "$300" and s.number(-3.0) == "-$3.00"
    assert "PMPM" in s.axis_label and s.column_label == "Cost PMPM"


def test_formatting_share_of_spend() -> None:
    s = RateScale.of("share_of_spend", 1.0)
    assert s.is_share and s.number(0.0773) == "7.7%" and s.text(0.0773) == "7.7%"
    assert s.ci(0.068, 0.08) == "6.8\u20138.0"
    assert s.difference(0.086, 0.061) == "2.5 percentage points"
    assert s.axis_label == "Share of spend (%)"


def test_unknown_rate_type_and_missing_per() -> None:
    s = RateScale.of(None, None)
    assert s.rate_type == "proportion" and s.per == 1.0
    other = RateScale.of("per_visit", 1.0)
    assert other.text(2.345) == "2.3"


def test_event_rate_chart_uses_its_unit() -> None:
    data = frame([
        row("ED", "overall", "all", 55_181, 1_694, (29.3, 32.2), members=4_755),
        row("ED", "race_ethnicity", "White", 21_003, 650, (28.6, 33.4), members=1_808),
        row("ED", "race_ethnicity", "Asian", 4_624, 160, (29.4, 40.3), members=402),
        row("ED", "race_ethnicity", "Samoan"),
    ])
    fig = plot_rates_by_group(data, measure_id="ED", stratifier="race_ethnicity", unit_id="all")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Rate per 1,000 member-months \u2014 lower is better"
    values = {t.get_text() for t in ax.texts if t.get_gid() == "value-label"}
    assert values == {"30.9", "34.6"}
    assert any(abs(line.get_xdata()[0] - 1_694 / 55_181 * 1000) < 1e-9 for line in ax.get_lines())
    # rates are not clipped to [0, 1] like proportions
    assert ax.get_xlim()[1] > 40


def test_usd_chart_ticks_in_dollars() -> None:
    data = frame([
        row("TCOC", "overall", "all", 55_181, 17_087_833, (296.1, 323.2), members=4_755),
        row("TCOC", "race_ethnicity", "White", 21_003, 6_696_100, (295.6, 342.0), members=1_808),
        row("TCOC", "race_ethnicity", "Asian", 4_624, 1_482_800, (275.7, 365.6), members=402),
    ])
    canvas = ChartCanvas()
    fig = canvas.draw(rate_chart(data, measure_id="TCOC", stratifier="race_ethnicity", unit_id="all"))
    canvas.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert ticks and all(t.startswith("$") for t in ticks)
    assert {"$318.82", "$320.67"} <= {t.get_text() for t in fig.axes[0].texts}


def test_canvas_reused_between_charts(rates: pl.DataFrame) -> None:
    canvas = ChartCanvas()
    first = canvas.png(rate_chart(rates, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all"))
    small = frame([bcs("overall", "all", 500, 300), bcs("language", "English", 400, 250)])
    second = canvas.png(rate_chart(small, measure_id="BCS-E", stratifier="language", unit_id="all"))
    assert first.startswith(PNG_SIGNATURE) and second.startswith(PNG_SIGNATURE)
    assert labels_top_down(canvas.figure) == ["English"]  # nothing left over from the first chart
    assert len(canvas.figure.axes) == 1
    assert [t.get_text() for t in canvas.figure.texts if t.get_gid() == "legend"] == ["Rate with 95% CI", "Overall 60.0%"]
    assert canvas.height < 3  # the chart's own height; the PNG is cropped to it
    from PIL import Image

    assert Image.open(io.BytesIO(second)).size == (round(charts.FIG_WIDTH * canvas.dpi), round(canvas.height * canvas.dpi))


def test_submeasure_labels_and_order() -> None:
    assert submeasure_label("16-20") == "Ages 16\u201320"
    assert submeasure_label("18+") == "Ages 18+"
    assert submeasure_label("interpersonal_safety") == "Interpersonal safety"
    assert submeasure_label("all") == "All (whole measure)"
    assert sorted(["all", "18-21", "3-11", "12-17"], key=submeasure_sort_key) == ["3-11", "12-17", "18-21", "all"]


def test_lazy_import_sets_mplconfigdir_and_agg() -> None:
    code = (
        "import os, sys\n"
        "import equity_pipeline.charts as c\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "c._ensure_matplotlib()\n"
        "import matplotlib\n"
        "assert os.path.isdir(os.environ['MPLCONFIGDIR'])\n"
        "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "MPLBACKEND")}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
