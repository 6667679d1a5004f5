"""Benchmark figures for ``equity-pipeline bench`` (see docs/performance.md).

The *scan floor* is what any tool must pay: read every input file once with polars and
materialize a trivial aggregate (null counts of every column, which decodes every value). Pipeline
stages are compared with it. Stage times come from the Dagster event log of the run (the CLI
collects them; this module only does the arithmetic and the file-level figures).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

#: Dagster asset group -> benchmark stage. ``read`` is the ingest assets (read, normalise, polars
#: rule evaluation, quarantine); ``validate`` is the GX asset checks and the auditor view.
STAGE_OF_GROUP = {
    "sources": "read",
    "ingest": "read",
    "validation": "validate",
    "measures": "measures",
    "stratification": "stratify",
    "disparities": "disparities",
    "equity_plans": "equity_plans",
    "reports": "reports",
}
STAGES = ("read", "validate", "measures", "stratify", "disparities", "equity_plans", "reports")
FIELDS = ("members", "claim_lines", "input_bytes", "scan_floor_s", "scan_floor_runs_s", "stages_s", "total_s", "ratio_to_floor", "peak_rss_mb", "cpu_s", "steps_s",
          "load_average", "stages_cpu_s", "steps_cpu_s", "steps_peak_rss_mb", "claims_read_s", "measures_ratio_to_claims_read")
#: the input file whose read issue 4's measures target is a multiple of ("one polars read of the claims")
CLAIMS_FILE = "medical_claims"

#: CPU seconds of this process and its children when the scan floor was last measured: the bench
#: measures the floor right before the run, so ``cpu_s`` is what the run itself used
_cpu_after_floor: float | None = None


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def input_files(input_dir: Path) -> list[Path]:
    return sorted(p for p in input_dir.iterdir() if p.suffix in (".parquet", ".csv") and p.is_file())


#: seconds of each read of the last :func:`scan_floor` (the floor is the fastest)
_floor_runs: list[float] = []
#: seconds of each read of the medical claims file within those reads (:data:`CLAIMS_FILE`)
_claims_runs: list[float] = []


def scan_floor(input_dir: Path, repeats: int = 3) -> float:
    """Seconds to read every input file once with polars and materialize a trivial aggregate: the
    fastest of ``repeats`` reads one after another (one read varied 3.3-5.0 s on the same 1M files;
    the first also warms the page cache, which the run then finds warm too)."""
    import polars as pl

    global _cpu_after_floor
    _floor_runs.clear()
    _claims_runs.clear()
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        for path in input_files(input_dir):
            began = time.perf_counter()
            lf = pl.scan_parquet(path) if path.suffix == ".parquet" else pl.scan_csv(path, infer_schema=False)
            lf.select(pl.all().null_count()).collect()
            if path.stem == CLAIMS_FILE:
                _claims_runs.append(time.perf_counter() - began)
        _floor_runs.append(time.perf_counter() - started)
    _cpu_after_floor = cpu_seconds()
    return min(_floor_runs)


def row_count(path: Path) -> int:
    import polars as pl

    lf = pl.scan_parquet(path) if path.suffix == ".parquet" else pl.scan_csv(path, infer_schema=False)
    return int(lf.select(pl.len()).collect().item())


def table_rows(input_dir: Path, table: str) -> int:
    for suffix in (".parquet", ".csv"):
        path = input_dir / f"{table}{suffix}"
        if path.is_file():
            return row_count(path)
    return 0


#: Linux: the process's peak resident set (``VmHWM``) is read and reset as each step ends, so that each
#: step's own peak is known (``steps_peak_rss_mb``); the largest of the peaks read so far, in MB, is kept
#: here, because the reset also lowers what ``getrusage`` reports as the process's peak
_peak_before_reset_mb = 0.0
_step_peaks = False


def track_step_peaks(enabled: bool = True) -> bool:
    """Measure each step's peak from now on (:func:`step_peak_mb`); False when the system cannot
    (not Linux, or ``/proc/self/clear_refs`` not writable): then no peak is reset."""
    global _step_peaks
    _step_peaks = bool(enabled) and _reset_peak() is not None
    return _step_peaks


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> float | None:
    """The peak resident set of this process (MB), which is then reset to the current size (Linux
    ``clear_refs`` 5); None when it cannot be read or reset."""
    global _peak_before_reset_mb
    peak = _vm_hwm_mb()
    if peak is None:
        return None
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return None
    _peak_before_reset_mb = max(_peak_before_reset_mb, peak)
    return peak


def step_peak_mb() -> float | None:
    """The peak resident set of this process since the last call (or since :func:`track_step_peaks`),
    in MB, and a new window from now; None when step peaks are not tracked. Called as each step of
    the in-process executor ends, it is that step's peak (a step's worker processes not included)."""
    if not _step_peaks:
        return None
    peak = _reset_peak()
    return round(peak, 1) if peak is not None else None


def peak_rss_mb() -> float:
    """Peak resident set size of this process and (the largest of) its finished children, in MB.

    ``ru_maxrss`` is in kilobytes on Linux and bytes on macOS. The CLI runs the pipeline in
    process, so the process's own peak is the figure that matters. Children are taken as the
    larger of the two, not added: on Linux a child inherits its parent's peak at fork, so any
    library that runs a small command (``uname``, ``fc-list``) from a 5 GB process reports a
    5 GB child, and a sum would count the pipeline twice."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1024 * 1024)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # with step peaks tracked, getrusage's peak is the one since the last reset: the earlier ones count too
    return round(max(own * scale, children * scale, _peak_before_reset_mb), 1)


def stage_seconds(step_seconds: dict[str, float], group_of_step: dict[str, str]) -> dict[str, float]:
    """Sum step durations per benchmark stage; unknown groups are reported under their own name."""
    out = {s: 0.0 for s in STAGES}
    for step, secs in step_seconds.items():
        stage = STAGE_OF_GROUP.get(group_of_step.get(step, ""), group_of_step.get(step) or "other")
        out[stage] = out.get(stage, 0.0) + secs
    return {k: round(v, 3) for k, v in out.items()}


def result(*, members: int, input_dir: Path, floor: float, stages: dict[str, float], total: float,
           steps: dict[str, float] | None = None, steps_cpu: dict[str, float] | None = None,
           stages_cpu: dict[str, float] | None = None, steps_peak: dict[str, float] | None = None) -> dict:
    out = {
        "members": members,
        "claim_lines": table_rows(input_dir, "medical_claims"),
        "input_bytes": sum(p.stat().st_size for p in input_files(input_dir)),
        "scan_floor_s": round(floor, 4),
        # every read the floor is the fastest of (empty when the floor did not come from scan_floor)
        "scan_floor_runs_s": [round(x, 4) for x in _floor_runs],
        "stages_s": stages,
        "total_s": round(total, 3),
        "ratio_to_floor": round(total / floor, 2) if floor > 0 else None,
        "peak_rss_mb": peak_rss_mb(),
        # CPU seconds since the scan floor (the run; None if no floor was measured in this process):
        # on a shared machine wall seconds stretch with the load, CPU seconds much less
        "cpu_s": round(cpu_seconds() - _cpu_after_floor, 1) if _cpu_after_floor is not None else None,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    out["stage_ratios_to_floor"] = {k: (round(v / floor, 2) if floor > 0 else None) for k, v in stages.items()}
    # issue 4's measures target is a multiple of "one polars read of the claims": the medical claims
    # file alone (the fastest of the floor's reads of it), a stricter yardstick than the whole floor
    claims = min(_claims_runs) if _claims_runs else None
    out["claims_read_s"] = round(claims, 4) if claims else None
    out["measures_ratio_to_claims_read"] = round(stages["measures"] / claims, 2) if claims and "measures" in stages else None
    # every Dagster step's wall seconds, the slowest first (where a stage's time goes)
    out["steps_s"] = {k: round(v, 3) for k, v in sorted((steps or {}).items(), key=lambda kv: (-kv[1], kv[0]))}
    # CPU seconds per stage and per step (in the order of steps_s): a stage whose CPU is close to its
    # wall seconds used one of the cores; twice its wall seconds, both (of a 2-core machine)
    out["stages_cpu_s"] = {k: round(v, 1) for k, v in (stages_cpu or {}).items()}
    out["steps_cpu_s"] = {k: round((steps_cpu or {})[k], 2) for k in out["steps_s"] if k in (steps_cpu or {})}
    # the peak resident set of the pipeline process during each step, the largest first (Linux; empty
    # where it cannot be measured): which step sets peak_rss_mb
    out["steps_peak_rss_mb"] = {k: v for k, v in sorted((steps_peak or {}).items(), key=lambda kv: (-kv[1], kv[0]))}
    return out


def dataset_matches(input_dir: Path, members: int, seed: int) -> bool:
    """A generated dataset can be reused when its truth.json records the same size and seed."""
    truth = input_dir / "truth.json"
    if not truth.is_file():
        return False
    try:
        t = json.loads(truth.read_text(encoding="utf-8"))
    except ValueError:
        return False
    params = t.get("parameters", t)
    return params.get("members") == members and params.get("seed") == seed
