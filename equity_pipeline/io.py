"""Reading canonical input files and writing outputs atomically.

Inputs: ``<input_dir>/<table>.parquet`` or ``<table>.csv`` (also ``.csv.gz``, ``.tsv``, ``.txt``).
Everything is read as text first (so validation sees exactly what the file holds, leading zeros
included) with a 1-based ``_row`` number for traceability.
"""
from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from pathlib import Path

import polars as pl

from equity_pipeline.errors import StructuralError

ROW = "_row"
SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".txt")


def find_input(input_dir: Path, table: str) -> Path | None:
    """The file holding ``table`` in ``input_dir``; None when absent; error when ambiguous."""
    found = [input_dir / f"{table}{s}" for s in SUFFIXES if (input_dir / f"{table}{s}").is_file()]
    if len(found) > 1:
        raise StructuralError(str(found[0].name), f"table {table} is given twice ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sniff_delimiter(header: str, path: Path) -> str:
    counts = {d: header.count(d) for d in (",", "|", "\t", ";")}
    delimiter = max(counts, key=counts.get)
    if counts[delimiter] == 0:
        try:
            delimiter = csv.Sniffer().sniff(header).delimiter
        except csv.Error:
            delimiter = ","
    return delimiter


def _utf8_copy_if_needed(path: Path) -> Path:
    """Polars reads UTF-8 only: transcode Latin-1 files to a UTF-8 temp file (BOM handled by polars)."""
    with path.open("rb") as fh:
        sample = fh.read(1 << 20)
    try:
        sample.decode("utf-8")
        return path
    except UnicodeDecodeError as exc:
        if exc.end >= len(sample) - 3:  # cut inside a multi-byte character at the sample boundary
            return path
    tmp = Path(tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".utf8.csv")[1])
    with path.open("r", encoding="latin-1", newline="") as src, tmp.open("w", encoding="utf-8", newline="") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
    return tmp


def scan_text(path: Path) -> pl.LazyFrame:
    """Lazily read one input file with every column as text and a 1-based ``_row`` column."""
    name = path.name
    if path.stat().st_size == 0:
        raise StructuralError(name, "file is empty (no header line)")
    if name.endswith(".parquet"):
        try:
            lf = pl.scan_parquet(path)
            schema = lf.collect_schema()
        except Exception as exc:  # noqa: BLE001 - any reader failure is structural
            raise StructuralError(name, f"not a readable Parquet file ({type(exc).__name__})") from None
        casts = []
        for col, dtype in schema.items():
            if isinstance(dtype, pl.List):
                casts.append(pl.col(col).cast(pl.List(pl.String)).list.join("|").alias(col))
            else:
                casts.append(pl.col(col).cast(pl.String).alias(col))
        return lf.select(casts).with_row_index(ROW, offset=1)
    source = _utf8_copy_if_needed(path)
    with source.open("r", encoding="utf-8-sig", newline="") as fh:
        header = fh.readline()
    if not header.strip():
        raise StructuralError(name, "file has no header line")
    delimiter = _sniff_delimiter(header, path)
    lf = pl.scan_csv(source, separator=delimiter, infer_schema=False, has_header=True)
    cols = lf.collect_schema().names()
    if cols and cols[0].startswith("\ufeff"):
        lf = lf.rename({cols[0]: cols[0].lstrip("\ufeff")})
    return lf.with_row_index(ROW, offset=1)


def write_parquet_atomic(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp)
        else:
            frame.write_parquet(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_csv_atomic(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.write_csv(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure_restricted_dir(path: Path) -> Path:
    """Create a folder readable by its owner only (for member-level data)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
