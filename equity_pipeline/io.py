"""Reading canonical input files and writing outputs atomically.

Inputs: ``<input_dir>/<table>.parquet`` or ``<table>.csv`` (also ``.csv.gz``, ``.tsv``, ``.txt``).
Everything is read as text first (so validation sees exactly what the file holds, leading zeros
included) with a 1-based ``_row`` number for traceability.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import polars as pl

from equity_pipeline.csv_fields import check_field_counts
from equity_pipeline.errors import StructuralError

ROW = "_row"
#: ``scan_text(..., field_counts=True)``: the row has fewer fields than the header (CSV)
SHORT_ROW = "_short_row"
SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".txt")


def find_input(input_dir: Path, table: str) -> Path | None:
    """The file holding ``table`` in ``input_dir``; None when absent; error when ambiguous."""
    found = [input_dir / f"{table}{s}" for s in SUFFIXES if (input_dir / f"{table}{s}").is_file()]
    if len(found) > 1:
        raise StructuralError(str(found[0].name), f"table {table} is given twice ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


#: sha256 per (path, size, mtime, ctime, inode): see :func:`sha256_file`
_SHA256_SEEN: dict[tuple[str, int, int, int, int], str] = {}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The file's SHA-256 (hex). Within one process a file is hashed once: the digest is reused
    while its size, modification time, change time and inode are those it had when hashed (any
    write or replacement changes the change time, which cannot be set back), so the ingest, the GX
    checks and the auditor view of one run read a large input once for its hash, not three times."""
    path = Path(path)
    before = os.stat(path)
    key = (str(path.resolve()), before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino)
    if key in _SHA256_SEEN:
        return _SHA256_SEEN[key]
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) == key[1:]:  # not written while read
        _SHA256_SEEN[key] = digest
    return digest


#: the delimiters a text input may use (the header line decides which)
DELIMITERS = (",", "|", "\t", ";")


def _count_outside_quotes(line: str, delimiter: str) -> int:
    n, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            n += 1
    return n


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: whichever of ``, | tab ;`` occurs most outside quotes
    (a comma inside a quoted column name does not count). When none occurs, Python's ``csv.Sniffer``
    guesses from the header, and its guess is taken when it is punctuation (a ``:``-delimited file);
    otherwise ``,`` (one column: the sniffer would split a lone name on one of its letters).
    Canonical inputs (:func:`scan_text`) and source files (``sources.common.read_table``) both use it."""
    counts = {d: _count_outside_quotes(header, d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best]:
        return best
    try:
        guess = csv.Sniffer().sniff(header).delimiter
    except csv.Error:
        return ","
    return guess if len(guess) == 1 and not guess.isalnum() and not guess.isspace() and guess not in "\"'_-" else ","


def detect_encoding(path: Path, chunk: int = 1 << 20) -> str:
    """``utf-8`` when the whole file decodes as UTF-8 (a BOM is allowed), else ``latin-1``.

    The whole file is checked (streamed), not a sample: one accented Latin-1 byte near the end of a
    large file would otherwise be read as broken UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            while block := fh.read(chunk):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _utf8_copy_if_needed(path: Path) -> Path:
    """Polars reads UTF-8 only: transcode Latin-1 files to a UTF-8 temp file (BOM handled by polars).
    A ``.gz`` file is decompressed to such a temp file (and transcoded when it is Latin-1)."""
    gz = path.name.endswith(".gz")
    opener = (lambda: gzip.open(path, "rb")) if gz else (lambda: path.open("rb"))
    try:
        encoding = detect_encoding(path)  # the whole file: a Latin-1 byte may come after any sample
    except (OSError, EOFError) as exc:  # not gzip data, or cut short
        raise StructuralError(path.name, f"not a readable gzip file ({type(exc).__name__})") from None
    if encoding == "utf-8" and not gz:
        return path
    fd, name = tempfile.mkstemp(prefix=f"{path.name.split('.')[0]}.", suffix=".utf8.csv")
    tmp = Path(name)
    try:
        with opener() as raw, tmp.open("wb") as dst:
            if encoding == "utf-8":  # a .gz file: decompressed as it is
                while block := raw.read(1 << 20):
                    dst.write(block)
            else:
                src = io.TextIOWrapper(raw, encoding=encoding, newline="")
                while text := src.read(1 << 20):
                    dst.write(text.encode("utf-8"))
    except BaseException as exc:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, EOFError)) and gz:  # corrupt or cut short
            raise StructuralError(path.name, f"not a readable gzip file ({type(exc).__name__})") from None
        raise
    # The copy holds member data: unlink it at once and read it through the still-open descriptor, so
    # no copy of the input outlives the process (the kernel frees it when the descriptor closes).
    if Path(f"/proc/self/fd/{fd}").exists():
        os.unlink(tmp)
        return Path(f"/proc/self/fd/{fd}")
    os.close(fd)
    return tmp


def scan_text(path: Path, *, field_counts: bool = False) -> pl.LazyFrame:
    """Lazily read one input file with every column as text and a 1-based ``_row`` column.

    ``field_counts`` (CSV): first count the fields of every row in one streaming pass
    (:mod:`equity_pipeline.csv_fields`): a row with more fields than the header, or a quote never
    closed, is a :class:`StructuralError` naming the row; a row with fewer fields (which polars reads
    with the missing fields empty) is flagged in a boolean ``_short_row`` column."""
    name = path.name
    if path.stat().st_size == 0:
        raise StructuralError(name, "file is empty (no header line)")
    if name.endswith(".parquet"):
        try:
            # the reader's own row index: a filter on _row is applied while decoding (a sample of rows
            # does not decode every value of the file)
            lf = pl.scan_parquet(path, row_index_name=ROW, row_index_offset=1)
            schema = lf.collect_schema()
        except Exception as exc:  # noqa: BLE001 - any reader failure is structural
            raise StructuralError(name, f"not a readable Parquet file ({type(exc).__name__})") from None
        casts = [pl.col(ROW)]
        for col, dtype in schema.items():
            if col == ROW:
                continue
            if isinstance(dtype, pl.List):
                casts.append(pl.col(col).cast(pl.List(pl.String)).list.join("|").alias(col))
            else:
                casts.append(pl.col(col).cast(pl.String).alias(col))
        return lf.select(casts)
    source = _utf8_copy_if_needed(path)
    with source.open("r", encoding="utf-8-sig", newline="") as fh:
        header = fh.readline()
    if not header.strip():
        raise StructuralError(name, "file has no header line")
    delimiter = sniff_delimiter(header)
    lf = pl.scan_csv(source, separator=delimiter, infer_schema=False, has_header=True)
    cols = lf.collect_schema().names()
    if cols and cols[0].startswith("\ufeff"):
        lf = lf.rename({cols[0]: cols[0].lstrip("\ufeff")})
    lf = lf.with_row_index(ROW, offset=1)
    if field_counts:
        short = check_field_counts(source, delimiter, len(cols), name).short_rows
        flag = pl.col(ROW).is_in(pl.Series(short, dtype=pl.UInt32).implode()) if short.size else pl.lit(False)
        lf = lf.with_columns(flag.alias(SHORT_ROW))
    return lf


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """Yield a temp file path next to ``path``; on success flush it to disk and rename it over ``path``.

    Readers, and a run killed at any moment, see either the old file or the whole new one, never half
    a file. On error the temp file is removed and ``path`` is left as it was. Temp names are
    ``.<name>.<random>.tmp`` (hidden; a later run removes any a killed run left, see runlock.py)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as fh:  # data on disk before the rename makes it visible
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 minus the umask).
        # Member-level files stay private through their 0700 restricted/ folder.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet_atomic(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> None:
    """Write Parquet atomically (:func:`atomic_path`). Same frame, same bytes: no timestamps in the file."""
    with atomic_path(path) as tmp:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp)
        else:
            frame.write_parquet(tmp)


def sink_parquet_atomic(targets: dict[Path, pl.LazyFrame], *, collect: tuple[pl.LazyFrame, ...] = (),
                        compression_level: int | None = None, metadata: dict[Path, dict[str, str]] | None = None) -> list[pl.DataFrame]:
    """Write several lazy frames to Parquet in one streaming pass, each atomically (:func:`atomic_path`).

    Frames built on one plan (the used and the quarantined rows of an ingest) share its work: the input
    is read once. ``collect``: small frames computed in the same pass (counts), returned in order.
    ``metadata``: key-value metadata stored in a target's Parquet footer (written with the data, so
    it can never describe another version of the file; :func:`parquet_metadata` reads it)."""
    metadata = metadata or {}
    with ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(path)) for path in targets]
        sinks = [lf.sink_parquet(tmp, compression_level=compression_level, metadata=metadata.get(path), lazy=True)
                 for (path, lf), tmp in zip(targets.items(), tmps)]
        results = pl.collect_all([*sinks, *collect], engine="streaming")
    return list(results[len(sinks):])


def parquet_metadata(path: Path) -> dict[str, str]:
    """The key-value metadata of a Parquet file's footer ({} when the file is absent)."""
    return pl.read_parquet_metadata(path) if Path(path).is_file() else {}


def write_text_atomic(text: str, path: Path) -> None:
    """Write UTF-8 text atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json_atomic(obj: object, path: Path) -> None:
    """Write ``obj`` as indented JSON with sorted keys (non-JSON values as text), atomically."""
    import json

    write_text_atomic(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def write_csv_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write CSV atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        frame.write_csv(tmp)


def ensure_restricted_dir(path: Path) -> Path:
    """Create a folder readable by its owner only (for member-level data)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
