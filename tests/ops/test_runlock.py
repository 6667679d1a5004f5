"""One run per output folder (fcntl lock), unwritable folders fail before any work, killed runs are noticed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from equity_pipeline.cli import main
from equity_pipeline.runlock import LOCK_NAME, RunLockError, run_lock
from tests.ops.conftest import REPO, cli_env

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from equity_pipeline.runlock import run_lock
    with run_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(60)
""")


@pytest.fixture
def lock_holder(tmp_path):
    """Another process holding <out>/.run.lock (as a running `equity-pipeline run` does)."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield out
    finally:
        proc.kill()
        proc.wait()


def test_second_run_fails_at_once_with_one_line(lock_holder, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (lock_holder / "public").mkdir()
    (lock_holder / "public" / "rates.csv").write_text("earlier output\n")
    assert main(["run", "--input", str(tmp_path / "in"), "--out", str(lock_holder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "another run is writing to" in err and LOCK_NAME in err
    assert (lock_holder / "public" / "rates.csv").read_text() == "earlier output\n"
    assert not (lock_holder / ".dagster").exists()  # nothing started


def test_lock_is_exclusive_across_processes(lock_holder):
    with pytest.raises(RunLockError, match="another run is writing"):
        with run_lock(lock_holder):
            pass


def test_lock_states_and_interrupted_run_detection(tmp_path):
    out = tmp_path / "out"
    with run_lock(out) as first:
        assert first.previous_state is None
        assert json.loads((out / LOCK_NAME).read_text())["state"] == "running"
    assert json.loads((out / LOCK_NAME).read_text())["state"] == "finished"
    with pytest.raises(ZeroDivisionError):
        with run_lock(out):
            1 / 0
    assert json.loads((out / LOCK_NAME).read_text())["state"] == "failed"

    # a process killed while holding the lock leaves "running" behind, and no lock
    killed = subprocess.run([sys.executable, "-c", "import os, sys\nfrom pathlib import Path\nfrom equity_pipeline.runlock import run_lock\n"
                             "with run_lock(Path(sys.argv[1])):\n    os.kill(os.getpid(), 9)\n", str(out)], cwd=REPO, env=cli_env())
    assert killed.returncode == -9
    stale = out / "public" / ".rates.parquet.k1ll3d.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a file")
    keep = out / "public" / "rates.parquet"
    keep.write_bytes(b"whole file")
    with run_lock(out) as after_kill:
        assert after_kill.previous_interrupted
        assert after_kill.stale_temp_files_removed == 1
    assert not stale.exists() and keep.read_bytes() == b"whole file"


def test_output_folder_that_is_a_file_fails_cleanly(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    assert main(["run", "--input", str(tmp_path / "in"), "--out", str(blocker)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["run", "--input", str(tmp_path / "in"), "--out", str(blocker / "sub")]) == 2
    assert "cannot be created" in capsys.readouterr().err


@pytest.mark.skipif(not shutil.which("setpriv") and os.geteuid() == 0, reason="needs a non-root user to test permissions")
@pytest.mark.parametrize("unwritable", ["out", "public"])
def test_unwritable_folder_fails_before_work_and_keeps_outputs(unwritable):
    """Run as an unprivileged user (root ignores permission bits) against a folder it cannot write."""
    base = Path(tempfile.mkdtemp(prefix="ops-unwritable-"))  # under /tmp: reachable by other users
    try:
        _unwritable_folder_fails(base, unwritable)
    finally:
        for p in [base, *base.rglob("*")]:
            if p.is_dir():
                os.chmod(p, 0o755)
        shutil.rmtree(base)


def _unwritable_folder_fails(tmp_path: Path, unwritable: str) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    (out / "public").mkdir(parents=True)
    (out / "public" / "rates.csv").write_text("earlier output\n")
    for p in (tmp_path, inp, out, out / "public", out / "public" / "rates.csv"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    target = out if unwritable == "out" else out / "public"
    if os.geteuid() == 0:  # run as nobody: the folders are root's, so 0755 means not writable for it
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "equity_pipeline.cli"]
        for p in tmp_path.parents:  # the unprivileged user must reach the folders
            if not os.stat(p).st_mode & 0o001:
                pytest.skip(f"{p} is not reachable by an unprivileged user")
        if unwritable != "out":
            os.chmod(out, 0o777)
    else:
        os.chmod(target, 0o555)
        cmd = [sys.executable, "-m", "equity_pipeline.cli"]
    env = cli_env()
    env["HOME"] = str(tmp_path)
    result = subprocess.run([*cmd, "run", "--input", str(inp), "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 2 and "Permission denied" in result.stderr and "equity_pipeline" not in result.stderr:
        pytest.skip("the unprivileged user cannot import the package here")
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "is not writable" in err and "earlier outputs are unchanged" in err
    if unwritable == "public":
        assert "folder public in output folder" in err
    assert (out / "public" / "rates.csv").read_text() == "earlier output\n"
    assert {p.name for p in out.iterdir()} <= {LOCK_NAME, "public"}  # at most the lock file: no .dagster, no outputs
    assert sorted(p.name for p in (out / "public").iterdir()) == ["rates.csv"]
