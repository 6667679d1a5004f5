"""Charts drawn in worker processes (equity_pipeline.chart_pool) are the charts drawn here, byte for
byte, handed back in the order they were added; workers that fail leave their charts to this
process; no worker process outlives the jobs."""
from __future__ import annotations

import math
import sys
import time

import pytest

from equity_pipeline import chart_pool
from equity_pipeline.chart_pool import ChartJobs, draw
from equity_pipeline.charts import ChartCanvas, ForestChart, GroupRate, RateChart, RateScale, RatioPoint, forest_png
from equity_pipeline.report import build_context, render
from tests.report.test_report_disparities import sample_disparities
from tests.report.test_report_html import MANIFEST, sample_rates


def rate_chart(k: int) -> RateChart:
    """Chart ``k``: a different number of groups, rates, labels and scale for each ``k``."""
    groups = [GroupRate(f"Group {k}-{i}", False, 0.2 + 0.05 * i + 0.01 * k, 0.15 + 0.05 * i, 0.3 + 0.05 * i,
                        100.0 + i, 30.0 + i, None) for i in range(1 + k % 7)]
    if k % 3 == 0:
        groups.append(GroupRate("Unknown", True, None, None, None, None, None, "cell-size policy"))
    overall = GroupRate("all", False, 0.3, 0.28, 0.32, 1000.0, 300.0, None)
    scale = RateScale.of("proportion") if k % 2 else RateScale.of("per_member_months", 1000.0)
    return RateChart(groups=groups, overall=overall, title=f"Measure {k}", subtitle="by group, all members",
                     direction="higher_is_better", scale=scale)


def forest(k: int) -> ForestChart:
    points = [RatioPoint(f"Group {i}", 0.7 + 0.1 * i, 0.6 + 0.1 * i, 0.8 + 0.1 * i, significant=i % 2 == 0)
              for i in range(2 + k % 4)]
    points.append(RatioPoint("Unbounded", 1.3, 0.0, math.inf))
    return ForestChart(points=points, reference="White", title=f"Measure {k}", subtitle="rate ratio vs White")


CHARTS = [rate_chart(k) if k % 4 else forest(k) for k in range(10)]
#: the pool starts at this many charts in these tests (keeps them short; the default is for reports)
MIN_CHARTS = 4
_EXPECTED: dict[int, bytes] = {}


@pytest.fixture(autouse=True)
def small_pool_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chart_pool, "MIN_POOL_CHARTS", MIN_CHARTS)


def expected(chart: RateChart | ForestChart) -> bytes:
    """The chart drawn on a fresh canvas of this process, as the report drew it before the pool."""
    key = id(chart)
    if key not in _EXPECTED:
        _EXPECTED[key] = ChartCanvas().png(chart) if isinstance(chart, RateChart) else forest_png(chart)
    return _EXPECTED[key]


def collect(jobs: ChartJobs, charts: list, wait_for_worker: bool = False) -> list[tuple[int, bytes, float]]:
    out: list[tuple[int, bytes, float]] = []
    for k, chart in enumerate(charts):
        jobs.add(chart, lambda png, height, k=k: out.append((k, png, height)))
    if wait_for_worker:  # let a worker draw some before this process takes the rest
        deadline = time.monotonic() + 60
        while jobs.drawn_by_workers == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    jobs.run()
    return out


def test_workers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(chart_pool.WORKERS_ENV, "1")
    assert chart_pool.workers() == 1 and ChartJobs().workers == 1
    monkeypatch.setenv(chart_pool.WORKERS_ENV, " 3 ")
    assert chart_pool.workers() == 3
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv(chart_pool.WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=chart_pool.WORKERS_ENV):
            chart_pool.workers()
    monkeypatch.delenv(chart_pool.WORKERS_ENV)
    assert chart_pool.workers() >= 1


def test_sequential_jobs_start_no_process() -> None:
    jobs = ChartJobs(n_workers=1)
    out = collect(jobs, CHARTS)
    assert jobs.processes == [] and jobs.drawn_by_workers == 0
    assert [k for k, _, _ in out] == list(range(len(CHARTS)))
    assert all(png == expected(CHARTS[k]) for k, png, _ in out)


def test_worker_charts_are_byte_identical_and_in_order() -> None:
    jobs = ChartJobs(n_workers=2)
    out = collect(jobs, CHARTS, wait_for_worker=True)
    assert len(jobs.processes) == 1
    assert 0 < jobs.drawn_by_workers <= len(CHARTS)
    assert [k for k, _, _ in out] == list(range(len(CHARTS)))  # callbacks in the order added
    for k, png, height in out:
        assert png == expected(CHARTS[k]), k
        assert height == pytest.approx(int.from_bytes(png[20:24], "big") / 110, abs=1 / 110)  # PNG IHDR height
    # every worker has exited and been reaped
    assert all(p.returncode is not None for p in jobs.processes)


def test_too_few_charts_for_a_pool() -> None:
    jobs = ChartJobs(n_workers=2)
    out = collect(jobs, CHARTS[: MIN_CHARTS - 1])
    assert jobs.processes == [] and len(out) == MIN_CHARTS - 1


def test_a_worker_that_fails_leaves_its_charts_here(monkeypatch: pytest.MonkeyPatch) -> None:
    # the "worker" exits at once without reading a chart
    monkeypatch.setattr(chart_pool.sys, "executable", "/bin/false" if sys.platform != "win32" else sys.executable)
    jobs = ChartJobs(n_workers=2)
    out = collect(jobs, CHARTS)
    assert jobs.drawn_by_workers == 0 and len(jobs.processes) == 1
    assert all(p.returncode is not None for p in jobs.processes)
    assert [k for k, _, _ in out] == list(range(len(CHARTS)))
    assert all(png == expected(CHARTS[k]) for k, png, _ in out)


def test_a_chart_that_cannot_be_drawn_raises_here_and_stops_the_workers() -> None:
    jobs = ChartJobs(n_workers=2)
    with pytest.raises(TypeError, match="not a chart"):
        with jobs:
            collect(jobs, [*CHARTS, "not a chart"])
    assert all(p.returncode is not None for p in jobs.processes)
    with pytest.raises(TypeError):
        draw(object())


def test_disabled_jobs_draw_nothing() -> None:
    jobs = ChartJobs(enabled=False, n_workers=2)
    assert collect(jobs, CHARTS) == [] and jobs.processes == []


def test_report_context_the_same_with_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole report context (images included) with a worker drawing is the sequential one."""
    monkeypatch.setenv(chart_pool.WORKERS_ENV, "1")
    alone = build_context(sample_rates(), MANIFEST, disparities=sample_disparities())
    made: list[ChartJobs] = []

    class Jobs(ChartJobs):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    own_draw = chart_pool.draw

    def patient_draw(chart):  # this process waits until the worker has drawn a chart
        deadline = time.monotonic() + 60
        while made[-1].drawn_by_workers == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        return own_draw(chart)

    monkeypatch.setattr(render, "ChartJobs", Jobs)
    monkeypatch.setattr(chart_pool, "draw", patient_draw)
    monkeypatch.setenv(chart_pool.WORKERS_ENV, "2")
    pooled = build_context(sample_rates(), MANIFEST, disparities=sample_disparities())
    assert made[-1].drawn_by_workers > 0 and all(p.returncode is not None for p in made[-1].processes)
    assert alone["charts_drawn"] > 0 and alone["forests_drawn"] > 0
    assert alone["charts_drawn"] + alone["forests_drawn"] >= MIN_CHARTS  # enough for a worker to start
    images = [s["img"] for m in alone["measures"] for u in m["units"] for s in u["sections"] if s["img"]]
    assert len(images) == alone["charts_drawn"]
    assert pooled == alone
