"""One run at a time per output folder.

A run holds ``<out>/.run.lock`` (``fcntl.flock``, exclusive, non-blocking) from before its first write
until it ends. A second run pointed at the same folder fails at once with a one-line error instead
of interleaving its files with the first run's. The kernel drops the lock when the holder exits, even
on SIGKILL, so a killed run never leaves a stale lock behind.

The lock file also records the run's state (``running`` / ``finished`` / ``failed``, the process id
and start time; no data values). A run that finds ``running`` in a lock it could take knows that the
previous run was killed and its outputs may be a mix of old and new files: it says so and, because
it rewrites every output, repairs them. Leftover temp files of the killed run's atomic writes
(``.<name>.<random>.tmp``) are removed first.

Before anything is written the output folder is checked: it must exist or be creatable, and it and
every folder already in it must be writable, so an unwritable folder fails with a clear message
before any work and earlier outputs stay as they were.

Limits: ``flock`` locks are advisory and local to one machine (not reliable on NFS); processes that
write into the folder without taking the lock (a Dagster run launched from the UI or the daemon)
are not stopped by it (see docs/operations.md: run queue limits).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from equity_pipeline.errors import PipelineError

LOCK_NAME = ".run.lock"
DAGSTER_DIR = ".dagster"  # the CLI's SQLite Dagster instance: not ours to clean


class RunLockError(PipelineError):
    """Another run holds the output folder, or the folder cannot be written."""


@dataclass
class RunLock:
    path: Path
    previous_state: str | None  # state the previous run left: None (first run), running, finished, failed
    stale_temp_files_removed: int = 0

    @property
    def previous_interrupted(self) -> bool:
        """The previous run into this folder was killed (it never recorded an end state)."""
        return self.previous_state == "running"


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _probe(folder: Path, out: Path) -> None:
    """Create and remove a temp file in ``folder`` (works for root, read-only mounts and ACLs, unlike permission bits)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except FileNotFoundError:  # the folder went away meanwhile: nothing to write into, nothing to check
        pass
    except OSError as exc:
        what = f"output folder {out}" if folder == out else f"folder {folder.relative_to(out)} in output folder {out}"
        raise RunLockError(f"{what} is not writable ({_reason(exc)}); nothing was written, earlier outputs are unchanged") from None


def _subfolders(out: Path) -> list[Path]:
    found = []
    for root, dirs, _files in os.walk(out):
        dirs[:] = sorted(d for d in dirs if not (Path(root) == out and d == DAGSTER_DIR))
        found.extend(Path(root) / d for d in dirs)
    return found


def check_writable(out: Path) -> None:
    """Fail with one line if ``out`` cannot be created, or it or any folder already in it is not writable.

    Nothing else is written (a temp file is created and removed in each folder)."""
    out = Path(out)
    _prepare(out)
    for folder in [out, *_subfolders(out)]:
        _probe(folder, out)


def _prepare(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunLockError(f"output folder {out} exists but is not a folder") from None
    except OSError as exc:
        raise RunLockError(f"output folder {out} cannot be created ({_reason(exc)})") from None
    if not out.is_dir():
        raise RunLockError(f"output folder {out} exists but is not a folder")


def remove_stale_temp_files(out: Path) -> int:
    """Remove temp files left by atomic writes of a killed run (``.<name>.<random>.tmp``); returns how many.

    Only call while holding the lock: then no writer of ours is using them."""
    removed = 0
    for root, dirs, files in os.walk(out):
        dirs[:] = [d for d in dirs if not (Path(root) == Path(out) and d == DAGSTER_DIR)]
        for name in files:
            if name.startswith(".") and name.endswith(".tmp") and name != LOCK_NAME:
                try:
                    os.unlink(Path(root) / name)
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed


def _read_state(fd: int) -> str | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while block := os.read(fd, 65536):
        raw += block
    if not raw.strip():
        return None
    try:
        return json.loads(raw).get("state")
    except (ValueError, AttributeError):
        return "unknown"


def _write_state(fd: int, state: str, started_at: str) -> None:
    record = {"state": state, "pid": os.getpid(), "started_at": started_at,
              "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


@contextmanager
def run_lock(out: Path) -> Iterator[RunLock]:
    """Hold ``<out>/.run.lock`` for the duration of the block; fail at once if another run holds it.

    Checks that ``out`` and every folder in it are writable (``out`` before locking, the others under
    the lock), before anything but the lock file is written. The state recorded in the lock file is
    ``finished`` when the block ends normally and ``failed`` when it raises."""
    out = Path(out)
    _prepare(out)
    _probe(out, out)  # the lock file goes here
    path = out / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RunLockError(f"cannot open the run lock {path} ({_reason(exc)})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockError(f"another run is writing to {out} (it holds {LOCK_NAME}); "
                                   "wait for it to finish or choose another --out") from None
            raise RunLockError(f"cannot lock {path} ({_reason(exc)})") from None
        for folder in _subfolders(out):  # checked under the lock: another run's files cannot move meanwhile
            _probe(folder, out)
        lock = RunLock(path=path, previous_state=_read_state(fd))
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        lock.stale_temp_files_removed = remove_stale_temp_files(out)
        _write_state(fd, "running", started_at)
        try:
            yield lock
        except BaseException:
            _write_state(fd, "failed", started_at)
            raise
        _write_state(fd, "finished", started_at)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
