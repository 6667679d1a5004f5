"""Trends across periods (report.trends, charts.plot_trends): this run's public rates with earlier
runs' public rates, in the report (chart and table) and the workbook, suppressed exactly as the
public tables say; the config's trend.history setting."""
from __future__ import annotations

import re
from datetime import date
from html import unescape
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.charts import RateScale, TrendChart, TrendPoint, TrendSeries, plot_trends
from equity_pipeline.config import config_from_dict, load_config
from equity_pipeline.errors import ConfigError
from equity_pipeline.report import render_html
from equity_pipeline.report.render import SUPPRESSED_LABEL
from equity_pipeline.report.trends import TREND_COLUMNS, trend_rates
from tests.report.frames import frame, row

MANIFEST = {"run_id": "run-trend-1", "created_at": "2026-01-10T08:00:00Z", "package_version": "0.1.0"}
PCT = RateScale.of("proportion")


def at(period: str, r: dict, **changes) -> dict:
    return {**r, "period": period, **changes}


def current() -> pl.DataFrame:
    """This run (2025): BCS-E overall and by race; rows out of the trend's scope (a state, language, a sub-measure)."""
    return frame([at("2025", r) for r in [
        row("BCS-E", "overall", "all", 400, 260, (0.60, 0.69)),
        row("BCS-E", "race_ethnicity", "White", 250, 175, (0.64, 0.75)),
        row("BCS-E", "race_ethnicity", "Black or African American", 130, 78, (0.51, 0.68)),
        row("BCS-E", "race_ethnicity", "Asian", None),                     # suppressed this year
        row("BCS-E", "race_ethnicity", "Unknown", None),
        row("BCS-E", "language", "English", 380, 250, (0.61, 0.70)),      # not trended
        row("BCS-E", "overall", "all", 200, 130, (0.58, 0.71), unit="MD"),  # a state: not trended
        row("BCS-E", "overall", "all", 150, 90, (0.52, 0.68), submeasure="50-64"),
        row("ED", "overall", "all", 6000.0, 180.0, (26.0, 34.6), members=520),
    ]])


def history_2023() -> pl.DataFrame:
    """An earlier run (2023): Asian shown; Black suppressed but (wrongly) still holding numbers; a
    measure this run lacks (CHL); ED claims-only like this run."""
    return frame([at("2023", r) for r in [
        row("BCS-E", "overall", "all", 380, 220, (0.53, 0.63)),
        row("BCS-E", "race_ethnicity", "White", 240, 150, (0.56, 0.68)),
        row("BCS-E", "race_ethnicity", "Asian", 60, 33, (0.42, 0.67)),
        row("BCS-E", "race_ethnicity", "Unknown", 41, 17, (0.28, 0.56)),
        row("CHL", "overall", "all", 100, 40, (0.31, 0.50)),
        row("ED", "overall", "all", 5800.0, 203.0, (30.4, 40.2), members=500),
    ]] + [at("2023", row("BCS-E", "race_ethnicity", "Black or African American", None),
                   denominator=77.0, numerator=43.0, rate=0.558441, ci_lower=0.4471, ci_upper=0.6645)])


def history_2024() -> pl.DataFrame:
    """2024, plus a stale 2025 table that this run replaces; ED from hybrid data (not comparable)."""
    return frame([at("2024", r) for r in [
        row("BCS-E", "overall", "all", 390, 241, (0.57, 0.67)),
        row("BCS-E", "race_ethnicity", "White", 245, 162, (0.60, 0.72)),
        row("BCS-E", "race_ethnicity", "Black or African American", 128, 70, (0.46, 0.63)),
        row("BCS-E", "race_ethnicity", "Asian", None),
    ]] + [at("2024", row("ED", "overall", "all", 5900.0, 190.0, (27.8, 37.1), members=510), data_source="hybrid"),
          at("2025", row("BCS-E", "overall", "all", 999, 111, (0.09, 0.13)))])


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prior") / "2023" / "public" / "rates.parquet"
    path.parent.mkdir(parents=True)
    history_2023().write_parquet(path)
    return path


def _cell(table: pl.DataFrame, measure: str, period: str, stratifier: str, stratum: str) -> dict:
    rows = table.filter((pl.col("measure_id") == measure) & (pl.col("period") == period)
                        & (pl.col("stratifier") == stratifier) & (pl.col("stratum") == stratum)).to_dicts()
    assert len(rows) == 1, (measure, period, stratifier, stratum, rows)
    return rows[0]


def test_trend_table_combines_periods(history_file: Path) -> None:
    trends = trend_rates(current(), [history_file, history_2024()])
    t = trends.table
    assert t.columns == list(TREND_COLUMNS)
    bcs = t.filter(pl.col("measure_id") == "BCS-E")
    assert sorted(bcs["period"].unique()) == ["2023", "2024", "2025"]
    # scope: all members, whole measure, overall and race/ethnicity only
    assert set(t["unit_id"]) == {"all"} and set(t["submeasure"]) == {"all"}
    assert set(t["stratifier"]) == {"overall", "race_ethnicity"}
    assert "CHL" not in set(t["measure_id"])  # not a measure of this run
    # 2025 comes from this run, not from the stale 2025 rows of the 2024 table
    now = _cell(t, "BCS-E", "2025", "overall", "all")
    assert (now["denominator"], now["numerator"], now["source"]) == (400.0, 260.0, "this run")
    assert _cell(t, "BCS-E", "2023", "overall", "all")["source"] == "2023/public/rates.parquet"
    assert _cell(t, "BCS-E", "2024", "overall", "all")["source"] == "history[1]"
    # a suppressed row never passes on a number, even when its table still held some
    black = _cell(t, "BCS-E", "2023", "race_ethnicity", "Black or African American")
    assert black["suppressed"] and black["suppression_reason"] == "cell-size policy"
    assert all(black[c] is None for c in ("denominator", "numerator", "rate", "ci_lower", "ci_upper"))
    asian = _cell(t, "BCS-E", "2023", "race_ethnicity", "Asian")
    assert not asian["suppressed"] and asian["rate"] == pytest.approx(33 / 60)
    # ED 2024 is hybrid while this run's ED is claims-only: left out and counted
    assert sorted(t.filter(pl.col("measure_id") == "ED")["period"]) == ["2023", "2025"]
    left = trends.left_out.to_dicts()
    assert left == [{"measure_id": "ED", "period": "2024", "source": "history[1]",
                     "reason": "another data source (not comparable)", "rows": 1}]
    # every row reads this run's title, type and source
    assert set(bcs["data_source"]) == {"hybrid"} and set(bcs["measure_title"]) == {"Breast Cancer Screening"}


def test_history_without_rates_columns_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "state_metrics.parquet"
    pl.DataFrame({"metric_id": ["PQI90"], "rate": [1.0]}).write_parquet(bad)
    with pytest.raises(ValueError, match="missing column"):
        trend_rates(current(), [bad])


def _trend_section(html: str, measure: str) -> str:
    m = re.search(rf'<section id="{re.escape(measure.lower())}-trend".*?</section>', html, re.S)
    assert m, measure
    return m.group(0)


def test_report_trend_chart_and_table(history_file: Path) -> None:
    trends = trend_rates(current(), [history_file, history_2024()])
    html = render_html(current(), MANIFEST, trends=trends)
    section = _trend_section(html, "BCS-E")
    assert len(re.findall(r'<img src="data:image/png;base64,', section)) == 1
    table = re.search(r"<table class=\"trend-table\">.*?</table>", section, re.S).group(0)
    headers = [unescape(h) for h in re.findall(r'<th scope="col" class="num">([^<]*)</th>', table)]
    assert headers == ["2023", "2024", "2025"]
    rows = {unescape(re.sub(r"<[^>]+>", "", g)).strip(): cells for g, cells in
            re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', table, re.S)}
    assert list(rows) == ["All members", "Asian", "Black or African American", "White", "Unknown"]
    t = trends.table.filter(pl.col("measure_id") == "BCS-E")
    for label, cells in rows.items():
        stratifier, stratum = ("overall", "all") if label == "All members" else ("race_ethnicity", label)
        texts = [unescape(re.sub(r"<[^>]+>", " ", c)).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
        for period, words in zip(["2023", "2024", "2025"], texts):
            got = " ".join(words)
            match = t.filter((pl.col("period") == period) & (pl.col("stratifier") == stratifier) & (pl.col("stratum") == stratum))
            if match.height == 0:
                assert got == "\u2014", (label, period)
                continue
            r = match.row(0, named=True)
            if r["suppressed"]:
                assert got == SUPPRESSED_LABEL, (label, period)
            else:
                n = f"{int(r['denominator']):,}"
                assert got == f"{PCT.number(r['rate'])} ({PCT.ci(r['ci_lower'], r['ci_upper'])}) n = {n}", (label, period)
    # the numbers the 2023 table (wrongly) kept for its suppressed Black row appear nowhere on the page
    assert "55.8%" not in html and "n = 77" not in html
    assert "Left out of the trend: 2024 (history[1]): 1 rows, another data source" in unescape(_trend_section(html, "ED"))
    assert "2023, 2024, 2025" in html  # trend periods in the summary


def test_one_period_only_says_so_and_draws_nothing() -> None:
    html = render_html(current(), MANIFEST)
    for measure in ("BCS-E", "ED"):
        section = _trend_section(html, measure)
        assert "One period only (2025)" in section
        assert "<img" not in section and "<table" not in section
    assert "one period only" in html


def _axes_with_title(fig, title: str):
    return next(ax for ax in fig.axes if ax.get_title(loc="left") == title)


def test_trend_chart_never_draws_a_suppressed_value() -> None:
    periods = ["2022", "2023", "2024", "2025"]
    chart = TrendChart(periods=periods, title="BCS", subtitle="test", scale=PCT, reference_first=False, series=[
        TrendSeries("Asian", [TrendPoint("2022", False, 0.50, 0.40, 0.60), TrendPoint("2023", False, 0.55, 0.45, 0.65),
                              TrendPoint("2024", True, None, None, None), TrendPoint("2025", False, 0.58, 0.50, 0.66)])])
    fig = plot_trends(chart)
    ax = _axes_with_title(fig, "Asian")
    data_x = set()
    for line in ax.get_lines():
        if line.get_transform() == ax.transData:
            data_x |= {float(x) for x in line.get_xdata()}
    for coll in ax.collections:
        if coll.get_transform() == ax.transData:  # the CI band
            for path in coll.get_paths():
                data_x |= {float(x) for x in path.vertices[:, 0]}
    assert data_x == {0.0, 1.0, 3.0}  # never at 2024 (index 2), never bridging it
    lines = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert sorted(len(ln.get_xdata()) for ln in lines) == [1, 2]  # 2022-2023 joined, 2025 alone
    # the suppressed period is marked on the x axis line: x in data, y in axes coordinates
    marks = [c for c in ax.collections if c.get_transform() != ax.transData]
    assert len(marks) == 1
    offsets = marks[0].get_offsets()
    assert offsets.tolist() == [[2.0, 0.0]]


def test_workbook_trends_sheet(tmp_path: Path, history_file: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    from equity_pipeline.report.workbook import write_workbook

    trends = trend_rates(current(), [history_file, history_2024()])
    path = tmp_path / "equity_report.xlsx"
    counts = write_workbook(path, current(), MANIFEST, trends=trends.table)
    assert counts["trends_rows"] == trends.table.height
    ws = openpyxl.load_workbook(path, read_only=True)["trends"]
    values = list(ws.iter_rows(values_only=True))
    assert list(values[0]) == list(TREND_COLUMNS)
    cols = {c: i for i, c in enumerate(values[0])}
    assert len(values) - 1 == trends.table.height
    for got, want in zip(values[1:], trends.table.iter_rows(named=True)):
        assert got[cols["period"]] == want["period"] and got[cols["stratum"]] == want["stratum"]
        for c in ("denominator", "numerator", "rate", "ci_lower", "ci_upper"):
            if want["suppressed"]:
                assert got[cols[c]] == SUPPRESSED_LABEL, c
            else:
                assert got[cols[c]] == want[c], c


def test_config_trend_history(tmp_path: Path, history_file: Path) -> None:
    (tmp_path / "prior").mkdir()
    history_2024().write_csv(tmp_path / "prior" / "rates.csv")
    config = tmp_path / "program.yaml"
    config.write_text(f"trend:\n  history: [prior/rates.csv, {history_file}]\n")
    c = load_config(config, run_date=date(2026, 11, 22))
    assert c.trend_history == (str(tmp_path / "prior" / "rates.csv"), str(history_file))
    assert c.to_dict()["trend"] == {"history": list(c.trend_history)}
    # CSV history reads like parquet (periods as text, booleans parsed)
    t = trend_rates(current(), list(c.trend_history)).table
    assert sorted(t.filter(pl.col("measure_id") == "BCS-E")["period"].unique()) == ["2023", "2024", "2025"]
    assert _cell(t, "BCS-E", "2024", "race_ethnicity", "Asian")["suppressed"]


@pytest.mark.parametrize("setting, message", [
    ({"history": "rates.parquet"}, "must be a list"),
    ({"history": ["nope.parquet"]}, "file not found"),
    ({"history": ["restricted/rates.parquet"]}, "restricted folder"),
    ({"history": ["notes.txt"]}, "must be .parquet or .csv"),
    ({"history": ["plan.parquet"]}, "missing column(s)"),
    ({"paths": []}, "key history"),
])
def test_config_trend_errors(tmp_path: Path, setting: dict, message: str) -> None:
    (tmp_path / "restricted").mkdir()
    current().write_parquet(tmp_path / "restricted" / "rates.parquet")
    (tmp_path / "notes.txt").write_text("x")
    pl.DataFrame({"metric_id": ["PQI90"], "rate": [1.0]}).write_parquet(tmp_path / "plan.parquet")
    config = tmp_path / "program.yaml"
    import yaml

    config.write_text(yaml.safe_dump({"trend": setting}))
    with pytest.raises(ConfigError) as err:
        load_config(config, run_date=date(2026, 11, 22))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config_without_trend_has_no_history() -> None:
    assert config_from_dict({}, run_date=date(2026, 11, 22)).trend_history == ()
