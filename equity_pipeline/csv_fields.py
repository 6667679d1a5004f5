"""Field counts of the records of a CSV file, in one streaming pass over its bytes.

Polars reads a data row with *fewer* fields than the header with the missing fields empty (it cannot
be told from a row whose last values are empty) and stops at a row with *more* fields without saying
which. This pass counts the fields of every record so that the ingest can quarantine short rows
(``wrong_field_count``) and name the long row in its error (docs/failure-modes.md).

Records are split as polars splits them: a delimiter or line feed inside double quotes belongs to the
value (a quote toggles "inside quotes"; an escaped ``""`` toggles twice), a ``\\r`` before the line
feed is not a field, a blank line is a record of one empty field, and a last line without a line feed
is a record. The first record is the header. Only ASCII bytes matter (delimiter, quote, line feed),
so the raw bytes of a Latin-1 or UTF-8 file (with or without BOM) give the same counts.

Two exact implementations, picked per file for speed (:func:`field_counts`):

* :func:`count_fields_by_lines` (polars ``scan_lines``, streaming and parallel): most files have
  few quotes. Only lines that contain a quote or do not have header-many delimiters are kept (their
  number, whether their quotes are odd, and their delimiters outside quotes), and records that span lines are put together
  from those with numpy;
* :func:`count_fields` (numpy over blocks of bytes, one thread): for files where quotes are
  everywhere (e.g. every value quoted) and for ``.gz`` files (the ingest reads those through an
  uncompressed copy, see :func:`equity_pipeline.io.scan_text`).

Memory is bounded by a block (or polars' streaming batches) plus the lines kept. No value is ever
kept or reported.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from equity_pipeline.errors import StructuralError

BLOCK = 1 << 24  # 16 MiB of the file at a time
_QUOTE, _LF = ord('"'), ord("\n")


@dataclass
class FieldCounts:
    """What the pass found: the header's field count, the data rows (1-based) with fewer fields, and
    the first data row with more fields (row, its field count, its first physical line), if any."""

    header_fields: int = 0
    short_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))
    long_row: tuple[int, int, int] | None = None
    #: the file ends inside quotes: (data row, line) of the record where the unclosed quote is
    unclosed_quote: tuple[int, int] | None = None


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def supported(delimiter: str) -> bool:
    return len(delimiter) == 1 and ord(delimiter) < 128 and delimiter not in ('"', "\n", "\r")


def count_fields(path: Path, delimiter: str, header_fields: int | None = None, *, block: int | None = None) -> FieldCounts:
    """Count the fields of every record of ``path`` and compare data rows with ``header_fields`` (the
    columns the reader found in the header; default: the fields of the first record). Stops at the
    first data row with more fields (``long_row``)."""
    if not supported(delimiter):
        raise ValueError(f"unsupported delimiter {delimiter!r}")
    sep = ord(delimiter)
    out = FieldCounts()
    short: list[np.ndarray] = []
    in_quote = 0  # parity of the quotes seen so far
    pending = 0  # delimiters (outside quotes) of the record that is not finished yet
    pending_bytes = False  # the unfinished record has at least one byte
    record = 0  # index of the next record to finish (0 = the header)
    lines = 0  # line feeds before this block (for the physical line of a long row)
    record_start_line = 1  # physical line on which the unfinished record starts
    header = -1 if header_fields is None else header_fields
    with _open(path) as fh:
        while buf := fh.read(block or BLOCK):
            arr = np.frombuffer(buf, dtype=np.uint8)
            lf = np.flatnonzero(arr == _LF)
            sp = np.flatnonzero(arr == sep)
            if buf.count(b'"'):
                q = np.flatnonzero(arr == _QUOTE)
                lf_out = lf[((np.searchsorted(q, lf) + in_quote) & 1) == 0]
                sp_out = sp[((np.searchsorted(q, sp) + in_quote) & 1) == 0]
                in_quote = (in_quote + q.size) & 1
            elif in_quote:
                lf_out = sp_out = lf[:0]
            else:
                lf_out, sp_out = lf, sp
            if lf_out.size:
                # delimiters before each record end; the first record also has the pending ones
                before = np.searchsorted(sp_out, lf_out)
                fields = np.diff(before, prepend=0) + 1
                fields[0] += pending
                if record == 0:
                    out.header_fields = int(fields[0])
                    if header < 0:
                        header = out.header_fields
                ids = np.arange(record, record + lf_out.size, dtype=np.int64)
                data = ids > 0
                bad = np.flatnonzero(data & (fields < header))
                long_ = np.flatnonzero(data & (fields > header))
                if long_.size:
                    i = int(long_[0])
                    short.append(ids[bad[bad < i]].astype(np.uint32))
                    start = 0 if i == 0 else int(lf_out[i - 1]) + 1
                    line = record_start_line if i == 0 else lines + int(np.searchsorted(lf, start)) + 1
                    out.long_row = (int(ids[i]), int(fields[i]), line)
                    out.header_fields = header
                    out.short_rows = _concat(short)
                    return out
                if bad.size:
                    short.append(ids[bad].astype(np.uint32))
                record += lf_out.size
                pending = int(sp_out.size - before[-1])
                pending_bytes = int(lf_out[-1]) + 1 < arr.size
                # the next record starts after the last record end of this block
                record_start_line = lines + int(np.searchsorted(lf, int(lf_out[-1]), side="right")) + 1
            else:
                pending += int(sp_out.size)
                pending_bytes = pending_bytes or arr.size > 0
            lines += int(lf.size)
    if in_quote:
        out.unclosed_quote = (record, record_start_line)
    if pending_bytes and not in_quote:  # a last record without a line feed
        fields_last = pending + 1
        if record == 0:
            out.header_fields = fields_last
        elif fields_last > header:
            out.long_row = (record, fields_last, record_start_line)
        elif fields_last < header:
            short.append(np.array([record], dtype=np.uint32))
        record += 1
    if header_fields is not None:
        out.header_fields = header_fields
    out.short_rows = _concat(short)
    return out


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)


#: a quoted segment (a quote, anything but a quote, then a closing quote or the end of the line)
_QUOTED = r'"[^"]*(?:"|$)'


def count_fields_by_lines(path: Path, delimiter: str, header_fields: int) -> FieldCounts:
    """:func:`count_fields` through polars' line reader (same results; no ``.gz``)."""
    if not supported(delimiter):
        raise ValueError(f"unsupported delimiter {delimiter!r}")
    line = pl.col("line")
    kept = (
        pl.scan_lines(path).with_row_index("i")
        .filter(line.str.contains('"', literal=True) | (line.str.count_matches(delimiter, literal=True) != header_fields - 1))
        .select(
            pl.col("i").cast(pl.Int64),
            (line.str.count_matches('"', literal=True) % 2).cast(pl.Int8).alias("q"),  # only the parity matters
            # delimiters outside quotes when the line starts outside quotes (s0) or inside (s1)
            line.str.replace_all(_QUOTED, "").str.count_matches(delimiter, literal=True).cast(pl.Int32).alias("s0"),
            (pl.lit('"') + line).str.replace_all(_QUOTED, "").str.count_matches(delimiter, literal=True).cast(pl.Int32).alias("s1"),
        )
        .collect(engine="streaming")
    )
    out = FieldCounts(header_fields=header_fields)
    if kept.is_empty():
        return out
    i, q, s0, s1 = (kept[c].to_numpy() for c in ("i", "q", "s0", "s1"))
    q = q.astype(np.int64)
    start_in = (np.cumsum(q) - q) & 1  # a line without quotes does not change the parity: only kept lines do
    end_in = (start_in + q) & 1
    # a record starts on a line that starts outside quotes; a line starting inside continues the record
    # of the kept line before it (lines in between, skipped, are inside quotes too and add no delimiter)
    group = np.cumsum(start_in == 0) - 1  # the first kept line starts outside quotes: group 0
    fields = np.bincount(group, weights=np.where(start_in == 0, s0, s1)).astype(np.int64) + 1
    first = np.flatnonzero(start_in == 0)
    # data row of a record = its first line - lines before it that end inside quotes (each such kept
    # line and the skipped lines after it, up to the next kept line, do not end a record)
    not_ending = np.where(end_in == 1, np.diff(i, append=i[-1] + 1), 0)
    rows = i[first] - (np.cumsum(not_ending) - not_ending)[first]
    data = rows > 0
    if end_in[-1] == 1:  # the file ends inside quotes: the last record is never finished
        data[-1] = False
    long_ = np.flatnonzero(data & (fields > header_fields))
    if end_in[-1] == 1 and not long_.size:
        out.unclosed_quote = (int(rows[-1]), int(i[first[-1]]) + 1)
    limit = long_[0] if long_.size else fields.size
    short = np.flatnonzero(data[:limit] & (fields[:limit] < header_fields))
    out.short_rows = rows[short].astype(np.uint32)
    if long_.size:
        k = int(long_[0])
        out.long_row = (int(rows[k]), int(fields[k]), int(i[first[k]]) + 1)
    return out


def field_counts(path: Path, delimiter: str, header_fields: int) -> FieldCounts:
    """The field counts of ``path`` by the faster implementation for it (the results are the same)."""
    if not path.name.endswith(".gz"):
        with path.open("rb") as fh:
            sample = fh.read(1 << 20)
        if sample.count(b'"') <= sample.count(b"\n"):  # quotes are not everywhere
            return count_fields_by_lines(path, delimiter, header_fields)
    return count_fields(path, delimiter, header_fields)


def check_field_counts(path: Path, delimiter: str, header_fields: int, name: str) -> FieldCounts:
    """:func:`field_counts` against the reader's ``header_fields``; a :class:`StructuralError` naming
    the file, the data row, its physical line and the field counts (never a value) when a data row has
    more fields than the header or a quote is never closed. An unsupported delimiter is not counted
    (nothing found: the reader reports that file)."""
    if not supported(delimiter):
        return FieldCounts(header_fields=header_fields)
    counts = field_counts(path, delimiter, header_fields)
    if counts.long_row is not None:
        row, n, line = counts.long_row
        raise StructuralError(name, f"has more fields than the header ({n} fields, the header has {header_fields}; line {line} "
                                    "of the file): a delimiter inside a value that is not quoted, or a stray quote", row=row)
    if counts.unclosed_quote is not None:
        row, line = counts.unclosed_quote
        where = "the header line" if row == 0 else f"this row (from line {line} of the file)"
        raise StructuralError(name, f"a quote in {where} is never closed: the rest of the file would be one value",
                              row=row or None)
    return counts
