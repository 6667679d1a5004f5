"""Sensor ``new_input_files``: start ``equity_pipeline_job`` when input tables appear or change.

Each tick lists the input folder's table files (``<table>.parquet`` / ``.csv`` / ... for the tables
the suites define; other files, hidden files and temp files are ignored) and hashes their content
(SHA-256; a file whose size and modification time did not change is not read again in the same code
server process). The cursor is JSON ``{file name: sha256}`` of the files last seen.

- New content (a hash not in the cursor, or a copy of a file under a second name) -> one RunRequest
  for the whole job. Its ``run_key`` is derived from the content hashes (now and before), so a tick
  evaluated twice never launches twice, while going back to an earlier set of files after a change
  does run again.
- The same content under other names (a rename) or a removed file -> no run; the cursor is updated.
- A file modified less than ``EQUITY_SENSOR_SETTLE_SECONDS`` (default 60) ago -> skip the tick and
  leave the cursor alone: the file may still be being copied (the generator and most copy tools
  write in place). Drop files in atomically (copy to a hidden name, then rename) to avoid the wait.

A run request also registers the state keys of the new members file as ``state`` dynamic partitions
(``assets/partitions.py``; keys are added, never removed). Tags and logs carry counts and hashes
only, never file contents. The sensor is off by default:
turn it on in the UI (Automation) or with ``dagster sensor start new_input_files``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import polars as pl

from assets.resources import PipelineResource
from equity_pipeline.io import SUFFIXES, sha256_file
from equity_pipeline.suites import TABLES

JOB_NAME = "equity_pipeline_job"
SETTLE_SECONDS_ENV = "EQUITY_SENSOR_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 60.0
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")

def settle_seconds() -> float:
    raw = os.environ.get(SETTLE_SECONDS_ENV)
    try:
        return float(raw) if raw else DEFAULT_SETTLE_SECONDS
    except ValueError:
        return DEFAULT_SETTLE_SECONDS


def is_table_file(name: str) -> bool:
    """A file the pipeline would read: ``<table><suffix>`` for a known table, not hidden, not a temp file."""
    if name.startswith(".") or name.endswith(TEMP_SUFFIXES):
        return False
    return any(name == f"{table}{suffix}" for table in TABLES for suffix in SUFFIXES)


def scan_input_folder(input_dir: Path, *, now: float | None = None, settle: float | None = None) -> tuple[dict[str, str], list[str]]:
    """``({file name: sha256}, [names still settling])`` for the table files in ``input_dir``."""
    now = time.time() if now is None else now
    settle = settle_seconds() if settle is None else settle
    hashes: dict[str, str] = {}
    settling: list[str] = []
    for entry in sorted(os.scandir(input_dir), key=lambda e: e.name):
        if not entry.is_file(follow_symlinks=True) or not is_table_file(entry.name):
            continue
        stat = entry.stat(follow_symlinks=True)
        if now - stat.st_mtime < settle:
            settling.append(entry.name)
            continue
        hashes[entry.name] = sha256_file(Path(entry.path))  # hashed once while unchanged
    return hashes, settling


def content_digest(hashes: dict[str, str]) -> str:
    """SHA-256 over the sorted content hashes (file names left out, so a rename keeps the digest)."""
    return hashlib.sha256("\n".join(sorted(hashes.values())).encode()).hexdigest()


def parse_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def decide(previous: dict[str, str], current: dict[str, str]) -> tuple[str | None, str]:
    """``(run_key or None, reason)`` for the files seen before and now."""
    if not current:
        return None, "no input table files in the input folder"
    # content as a multiset: a rename keeps it, a removal shrinks it, new content or a copy grows it
    new = Counter(current.values()) - Counter(previous.values())
    if not new:
        if current == previous:
            return None, f"no new or changed input files ({len(current)} unchanged)"
        return None, "files were renamed or removed but no content is new: no run"
    changed = sum(new.values())
    run_key = f"inputs-{content_digest(current)[:24]}-after-{content_digest(previous)[:12] if previous else 'none'}"
    return run_key, f"{changed} new or changed input file(s)"


def _state_partition_requests(context: dg.SensorEvaluationContext, input_dir: Path) -> list[dg.AddDynamicPartitionsRequest]:
    """Register the new input's state keys as ``state`` partitions (assets/partitions.py); a members
    file that cannot be read adds none here (the run's validation reports it)."""
    from assets.partitions import STATE_DIMENSION
    from equity_pipeline.errors import PipelineError
    from equity_pipeline.partitioning import state_keys

    try:
        keys = state_keys(input_dir)
    except (PipelineError, OSError, pl.exceptions.PolarsError):
        context.log.info("new_input_files: state partition keys not read from the members file")
        return []
    return [dg.AddDynamicPartitionsRequest(partitions_def_name=STATE_DIMENSION, partition_keys=keys)]


@dg.sensor(
    name="new_input_files",
    job_name=JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Runs equity_pipeline_job when input table files in the configured input folder appear or their content "
        "changes (SHA-256; cursor = JSON file name -> hash). Renames of the same content do not run again; files "
        "modified in the last EQUITY_SENSOR_SETTLE_SECONDS (default 60) wait for the next tick."
    ),
)
def new_input_files(context: dg.SensorEvaluationContext, pipeline_config: PipelineResource) -> dg.SensorResult:
    input_dir = pipeline_config.input_path
    if not input_dir.is_dir():
        return dg.SensorResult(skip_reason=f"input folder {input_dir} not found")
    current, settling = scan_input_folder(input_dir)
    if settling:
        return dg.SensorResult(skip_reason=f"{len(settling)} input file(s) modified in the last {settle_seconds():.0f}s; "
                                           "waiting for them to settle")
    previous = parse_cursor(context.cursor)
    run_key, reason = decide(previous, current)
    cursor = json.dumps(current, sort_keys=True)
    if run_key is None:
        return dg.SensorResult(skip_reason=reason, cursor=cursor)
    context.log.info(f"new_input_files: {reason}; run_key {run_key}")
    return dg.SensorResult(
        dynamic_partitions_requests=_state_partition_requests(context, input_dir),
        run_requests=[dg.RunRequest(
            run_key=run_key,
            tags={"equity_pipeline/trigger": "new_input_files", "equity_pipeline/inputs_sha256": content_digest(current)},
        )],
        cursor=cursor,
    )


sensors = [new_input_files]
