"""Issues 7 and 10: a run killed mid-way and run again gives the same bytes as a clean run, and a re-run
on unchanged inputs changes nothing but run ids and timestamps."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from equity_pipeline.runlock import LOCK_NAME
from tests.ops.conftest import REPO, audit_files, cli_command, cli_env, public_files, run_cli, run_in_process, temp_files

pytestmark = pytest.mark.slow


def _kill_when(out: Path, ready, args: list[str], timeout: float = 240) -> None:
    """Start ``equity-pipeline run`` and SIGKILL it once ``ready(out)`` holds."""
    proc = subprocess.Popen(cli_command(*args), cwd=REPO, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready(out):
            if proc.poll() is not None:
                pytest.fail(f"the run ended (rc {proc.returncode}) before it could be killed: {proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run did not reach the kill point in time")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _measures_written(out: Path) -> bool:
    folder = out / "restricted" / "measures"
    return folder.is_dir() and any(p.suffix == ".parquet" for p in folder.iterdir())


def test_killed_run_then_rerun_matches_a_clean_run(ops_input, ops_config, clean_run, tmp_path):
    out = tmp_path / "out"
    args = ["run", "--input", str(ops_input), "--out", str(out), "--config", str(ops_config)]
    _kill_when(out, _measures_written, args)
    assert json.loads((out / LOCK_NAME).read_text())["state"] == "running"  # the killed run never recorded an end
    (out / "public").mkdir(exist_ok=True)
    (out / "public" / ".rates.parquet.k1ll3d.tmp").write_bytes(b"PAR1 half a file")  # what a kill mid-write leaves

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "did not finish" in rerun.stderr

    assert public_files(out) == public_files(clean_run)
    assert set(public_files(out)) >= {"rates.parquet", "rates.csv"}
    assert audit_files(out) == audit_files(clean_run)
    assert temp_files(out) == []
    assert json.loads((out / LOCK_NAME).read_text())["state"] == "finished"
    with dg.DagsterInstance.from_config(str(out / ".dagster")) as instance:  # the killed run is not left "started"
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"]


def test_rerun_on_unchanged_inputs_changes_only_run_ids_and_timestamps(ops_input, ops_config, clean_run, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(clean_run, out, symlinks=True)
    before_public, before_audit = public_files(out), audit_files(out)
    first_manifest = json.loads((out / "manifest.json").read_text())
    run_id = run_in_process(ops_input, out, ops_config)
    assert run_id != first_manifest["run_id"]
    assert json.loads((out / "manifest.json").read_text())["run_id"] == run_id
    assert public_files(out) == before_public
    assert audit_files(out) == before_audit
    assert temp_files(out) == []
