"""``equity-pipeline bench`` runs on a small N and prints every field (figures are not asserted: not a timed test)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from equity_pipeline.bench import FIELDS, STAGES, stage_seconds


def test_bench_prints_every_field(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "equity_pipeline.cli", "bench", "--members", "300", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert set(FIELDS) <= set(out)
    assert out["members"] == 300 and out["claim_lines"] > 0 and out["input_bytes"] > 0
    assert set(STAGES) <= set(out["stages_s"])
    assert out["stages_s"]["read"] > 0 and out["stages_s"]["measures"] > 0 and out["stages_s"]["reports"] > 0
    assert 0 < out["scan_floor_s"] < out["total_s"]
    assert len(out["scan_floor_runs_s"]) == 3 and out["scan_floor_s"] == min(out["scan_floor_runs_s"])
    assert abs(out["ratio_to_floor"] - out["total_s"] / out["scan_floor_s"]) <= 0.05 * out["ratio_to_floor"]  # printed figures are rounded
    # the medical claims read within those reads: part of each, and the measures stage's multiple of it
    assert 0 < out["claims_read_s"] < out["scan_floor_s"]
    ratio = out["stages_s"]["measures"] / out["claims_read_s"]
    assert abs(out["measures_ratio_to_claims_read"] - ratio) <= 0.05 * ratio
    assert out["peak_rss_mb"] > 50
    # the run's CPU seconds: some, and no more than every core's worth of its wall time (the window
    # also holds reading the run's event log, hence the margin)
    assert 0 < out["cpu_s"] <= (os.cpu_count() or 2) * out["total_s"] + 10
    assert len(out["load_average"]) == 3
    steps = out["steps_s"]  # every step, slowest first, adding up to the stages
    assert "measure_events" in steps and list(steps.values()) == sorted(steps.values(), reverse=True)
    assert abs(sum(steps.values()) - sum(out["stages_s"].values())) < 0.01 * len(steps) + 0.01
    # CPU seconds of every step (measured as each step ends), in the order of steps_s, adding up to the
    # stages' CPU seconds and to no more than the run's
    steps_cpu = out["steps_cpu_s"]
    assert list(steps_cpu) == list(steps) and all(v >= 0 for v in steps_cpu.values())
    assert set(STAGES) <= set(out["stages_cpu_s"]) and out["stages_cpu_s"]["read"] > 0
    assert abs(sum(steps_cpu.values()) - sum(out["stages_cpu_s"].values())) < 0.1 * len(STAGES) + 0.1
    assert sum(steps_cpu.values()) <= out["cpu_s"] + 0.01 * len(steps) + 0.1
    # the pipeline process's peak during each step (Linux), the largest first; none above the run's peak
    peaks = out["steps_peak_rss_mb"]
    if sys.platform == "linux" and os.access("/proc/self/clear_refs", os.W_OK):
        assert set(peaks) == set(steps) and list(peaks.values()) == sorted(peaks.values(), reverse=True)
        assert all(v > 0 for v in peaks.values()) and max(peaks.values()) <= out["peak_rss_mb"]
    # the dataset is kept for reuse: same size and seed match, others do not
    from equity_pipeline.bench import dataset_matches

    (data,) = Path(tmp_path).glob("input_*")
    assert dataset_matches(data, 300, 1) and not dataset_matches(data, 301, 1) and not dataset_matches(data, 300, 2)


def test_stage_seconds_sums_steps_by_group():
    secs = {"members": 1.0, "enrollment": 2.0, "BCS_member_results": 3.0, "x_gx": 0.5}
    groups = {"members": "ingest", "enrollment": "ingest", "BCS_member_results": "measures", "x_gx": "validation"}
    out = stage_seconds(secs, groups)
    assert out["read"] == 3.0 and out["measures"] == 3.0 and out["validate"] == 0.5 and out["reports"] == 0.0


def test_step_peak_is_the_peak_of_its_own_window():
    """A step that allocates 400 MB and frees it has a peak at least that much above the process's
    size; the next window, which allocates nothing, does not; the process's peak keeps the largest."""
    import numpy as np
    import pytest

    from equity_pipeline import bench

    if not bench.track_step_peaks():
        pytest.skip("step peaks need Linux /proc/self/clear_refs")
    try:
        base = bench.step_peak_mb()
        block = np.ones(400 * 1024 * 1024 // 8)   # touched: resident
        del block
        big = bench.step_peak_mb()
        small = bench.step_peak_mb()
        assert big >= base + 350
        assert small < big - 300
        assert bench.peak_rss_mb() >= big
    finally:
        bench.track_step_peaks(False)
    assert bench.step_peak_mb() is None
