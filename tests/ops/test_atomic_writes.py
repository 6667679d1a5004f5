"""Outputs are written temp-then-rename in the same folder; a failed write leaves the old file and no temp file."""
from __future__ import annotations

import ast
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline import io

PACKAGE = Path(io.__file__).resolve().parent

#: modules allowed to write files directly, and why (everything else goes through equity_pipeline.io)
DIRECT_WRITERS = {
    "io.py": "the atomic writers themselves",
    "runlock.py": "the lock file, written in place while locked",
    "cli.py": "DAGSTER_HOME/dagster.yaml, written once before a run",
    "bench.py": "/proc/self/clear_refs (resets the process's peak memory between steps), not an output",
    "docs_gen.py": "developer tool regenerating docs/",
    "generate": "synthetic input data, not run outputs",
    "reference/data": "developer scripts deriving packaged reference data",
    "generate/data": "developer scripts deriving packaged reference data",
    "report/audit.py": "builds the audit pack in a temp sibling folder, then renames it into place",
}
WRITE_CALLS = {"write_parquet", "write_csv", "write_text", "write_bytes", "sink_parquet", "sink_csv", "sink_ipc", "savefig",
               "to_parquet", "to_csv", "write_ipc", "write_json", "write_ndjson", "write_excel", "write_avro"}


def _allowed(rel: str) -> bool:
    return any(rel == k or rel.startswith(k.rstrip("/") + "/") for k in DIRECT_WRITERS)


def test_every_output_writer_goes_through_the_atomic_helpers():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if _allowed(rel):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            if name in WRITE_CALLS and not (len(node.args) >= 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value is None):
                offenders.append(f"{rel}:{node.lineno} {name}()")
            if name == "open":
                modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
                modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
                if any(isinstance(m, str) and set(m) & set("wax+") for m in modes):
                    offenders.append(f"{rel}:{node.lineno} open({modes[0]!r})")
    assert not offenders, ("write outputs with equity_pipeline.io.write_parquet_atomic / write_csv_atomic / write_text_atomic "
                           f"(or atomic_path), or list the module in DIRECT_WRITERS with a reason: {offenders}")


@pytest.mark.parametrize("write, read", [
    (lambda p: io.write_parquet_atomic(pl.DataFrame({"a": [1, 2]}), p), lambda p: pl.read_parquet(p)["a"].to_list()),
    (lambda p: io.write_parquet_atomic(pl.DataFrame({"a": [1, 2]}).lazy(), p), lambda p: pl.read_parquet(p)["a"].to_list()),
    (lambda p: io.write_csv_atomic(pl.DataFrame({"a": [1, 2]}), p), lambda p: pl.read_csv(p)["a"].to_list()),
    (lambda p: io.write_text_atomic("[1, 2]", p), lambda p: eval(p.read_text())),
])
def test_writers_replace_whole_files_and_leave_no_temp(tmp_path, write, read):
    path = tmp_path / "sub" / "out.bin"
    write(path)
    assert read(path) == [1, 2]
    write(path)  # replacing an existing file
    assert read(path) == [1, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.bin"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    path = tmp_path / "rates.csv"
    path.write_text("old\n")
    seen = []

    def disk_full(self, file, *args, **kwargs):
        Path(file).write_text("half")  # a partial temp file, as a full disk leaves it
        seen.append(Path(file))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", disk_full)
    with pytest.raises(OSError):
        io.write_csv_atomic(pl.DataFrame({"a": [1]}), path)
    assert path.read_text() == "old\n"
    [tmp] = seen
    assert tmp.parent == path.parent and tmp.name.startswith(".rates.csv.") and tmp.name.endswith(".tmp")  # same folder, hidden
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rates.csv"]


def test_same_frame_same_parquet_bytes(tmp_path):
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [0.1, 0.2, None]})
    io.write_parquet_atomic(frame, tmp_path / "one.parquet")
    io.write_parquet_atomic(frame, tmp_path / "two.parquet")
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_latin1_input_copy_does_not_outlive_the_read(tmp_path, monkeypatch):
    """The UTF-8 copy of a Latin-1 input holds member data: no named copy may stay in the temp folder."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(io.tempfile, "tempdir", None)
    src = tmp_path / "members.csv"
    src.write_bytes("member_id,last_name\nM1,Pe\xf1a\n".encode("latin-1"))
    frame = io.scan_text(src).collect()
    assert frame["last_name"].to_list() == ["Pe\u00f1a"]
    if Path("/proc/self/fd").is_dir():  # Linux: the copy is unlinked at once and read through its descriptor
        assert list(scratch.iterdir()) == []


def test_atomic_files_get_the_umask_mode_not_mkstemp_0600(tmp_path):
    """Public tables are meant to be shared: an atomic write gives the mode a plain open() would."""
    import os

    from equity_pipeline.io import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic("x", tmp_path / "a.txt")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_sha256_file_hashes_once_while_unchanged_and_again_after_a_write(tmp_path, monkeypatch):
    import hashlib
    import os

    path = tmp_path / "members.csv"
    path.write_bytes(b"member_id\nA1\n")
    first = io.sha256_file(path)
    assert first == hashlib.sha256(b"member_id\nA1\n").hexdigest()
    opened = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self) or real_open(self, *a, **k))
    assert io.sha256_file(path) == first and opened == []  # unchanged: not read again
    # same size, modification time put back: the change time still moves, so the file is hashed again
    st = path.stat()
    path.write_bytes(b"member_id\nB2\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    opened.clear()
    assert io.sha256_file(path) == hashlib.sha256(b"member_id\nB2\n").hexdigest()
    assert opened == [path]
