"""Incremental table writers: parquet row groups (pyarrow ``ParquetWriter``) or appended CSV.

Every column is written as a string, in the contract's column order, so parquet and CSV read alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

Format = Literal["parquet", "csv"]


class TableWriter:
    def __init__(self, path: Path, columns: tuple[str, ...], fmt: Format) -> None:
        self.path = path
        self.columns = columns
        self.fmt = fmt
        self.rows = 0
        # string_view is what polars exports without copying; the file itself stores plain UTF8 strings
        # (store_schema=False: no Arrow schema blob, so every reader sees ordinary string columns)
        self._schema = pa.schema([(c, pa.string_view()) for c in columns])
        self._pq: pq.ParquetWriter | None = None
        self._csv = None
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            self._pq = pq.ParquetWriter(path, self._schema, compression="zstd", store_schema=False,
                                       write_statistics=False)  # rows are unsorted: min/max stats would not prune
        else:
            self._csv = path.open("wb")
            self._csv.write((",".join(columns) + "\n").encode())

    def write(self, df: pl.DataFrame) -> None:
        df = df.select([pl.col(c).cast(pl.String) for c in self.columns])
        self.rows += df.height
        if df.height == 0:
            return
        if self._pq is not None:
            table = df.to_arrow(compat_level=pl.CompatLevel.newest())
            if table.schema != self._schema:
                table = table.cast(self._schema)
            self._pq.write_table(table)
        else:
            df.write_csv(self._csv, include_header=False)

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._csv is not None:
            self._csv.close()
            self._csv = None


def write_table(path: Path, df: pl.DataFrame, fmt: Format) -> int:
    w = TableWriter(path, tuple(df.columns), fmt)
    try:
        w.write(df)
    finally:
        w.close()
    return w.rows
