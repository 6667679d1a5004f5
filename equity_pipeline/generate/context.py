"""Shared plumbing for one generation run: dates as day numbers, seeded random streams, id counters."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl

EPOCH = date(1970, 1, 1)
OPEN_END = np.int32(2**30)   # "still enrolled" / no end
NO_DATE = np.int32(-(2**30))  # missing date


def day(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def to_date(days: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + int(days))


def month_first(days: np.ndarray) -> np.ndarray:
    """First day of the month of each day number."""
    m = np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]")
    return m.astype("datetime64[D]").astype(np.int32)


def month_last(days: np.ndarray) -> np.ndarray:
    """Last day of the month of each day number."""
    m = np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]") + 1
    return (m.astype("datetime64[D]") - 1).astype(np.int32)


def year_of(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[Y]").astype(np.int32) + 1970


def year_start(years: np.ndarray) -> np.ndarray:
    return (np.asarray(years, dtype="int64") - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int32)


_DATE_TABLE_START = day(date(1900, 1, 1))


@lru_cache(maxsize=1)
def _date_table() -> pl.Series:
    """ISO strings for every day from 1900-01-01 to 2100-12-31 (looking dates up beats formatting them)."""
    return pl.Series("iso", pl.date_range(date(1900, 1, 1), date(2100, 12, 31), eager=True).cast(pl.String))


def dates_to_str(col: str) -> pl.Expr:
    """Int32 day numbers (with NO_DATE / OPEN_END as missing) -> 'YYYY-MM-DD' strings."""
    c = pl.col(col)
    table = _date_table()
    idx = pl.when((c >= _DATE_TABLE_START) & (c < _DATE_TABLE_START + len(table))).then(c - _DATE_TABLE_START)
    return pl.lit(table).gather(idx.otherwise(None)).alias(col)


def cents_to_str(col: str) -> pl.Expr:
    """Integer cents -> 'D.CC' (non-negative amounts)."""
    c = pl.col(col).cast(pl.Int64)
    return ((c // 100).cast(pl.String) + "." + (c % 100).cast(pl.String).str.zfill(2)).alias(col)


def pick(rng: np.random.Generator, pairs, size: int) -> np.ndarray:
    """Indices into ``pairs`` drawn with the weights in each pair's second element."""
    w = np.array([p[1] for p in pairs], dtype=float)
    return rng.choice(len(pairs), size=size, p=w / w.sum())


@dataclass(frozen=True)
class Period:
    """The dates a run is built around (measurement year MY)."""

    measurement_year: int

    @property
    def window_start(self) -> int:  # first day of claims history: Jan 1 two years before MY
        return day(date(self.measurement_year - 2, 1, 1))

    @property
    def lookback_start(self) -> int:  # Oct 1 two years before MY (27-month lookback)
        return day(date(self.measurement_year - 2, 10, 1))

    @property
    def my_start(self) -> int:
        return day(date(self.measurement_year, 1, 1))

    @property
    def my_end(self) -> int:
        return day(date(self.measurement_year, 12, 31))

    @property
    def history_end(self) -> int:  # last day of generated history (deaths, enrollment ends)
        return day(date(self.measurement_year + 1, 6, 30))


@dataclass
class ChunkContext:
    """Everything one chunk of members needs: seeded streams, id counters, run parameters."""

    seed: int
    chunk_index: int
    period: Period
    messy_share: float
    _next_claim_key: int = 0
    _next_rx_key: int = 0
    _next_screening_key: int = 0
    defects: dict[str, int] = field(default_factory=dict)
    defects_by_table: dict[str, dict[str, int]] = field(default_factory=dict)
    evidence: Any = None  # evidence.Evidence of the chunk: what background and earlier planted modules emitted

    def rng(self, stream: str) -> np.random.Generator:
        """An independent generator for (seed, chunk, stream): results never depend on call order."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.chunk_index, zlib.crc32(stream.encode())]))

    def claim_keys(self, n: int) -> np.ndarray:
        keys = np.arange(self._next_claim_key, self._next_claim_key + n, dtype=np.int64)
        self._next_claim_key += n
        return keys

    def rx_keys(self, n: int) -> np.ndarray:
        keys = np.arange(self._next_rx_key, self._next_rx_key + n, dtype=np.int64)
        self._next_rx_key += n
        return keys

    def screening_keys(self, n: int) -> np.ndarray:
        keys = np.arange(self._next_screening_key, self._next_screening_key + n, dtype=np.int64)
        self._next_screening_key += n
        return keys

    def add_defect(self, name: str, count: int, table: str) -> None:
        self.defects[name] = self.defects.get(name, 0) + int(count)
        per = self.defects_by_table.setdefault(name, {})
        per[table] = per.get(table, 0) + int(count)

    def defect_count(self, n_rows: int, n_classes: int) -> int:
        """How many records of one defect class to inject into a table of ``n_rows`` rows."""
        if self.messy_share <= 0 or n_rows == 0:
            return 0
        return max(1, int(round(self.messy_share * n_rows / max(n_classes, 1))))


def str_series(name: str, values) -> pl.Series:
    """A String series from a numpy array (unicode, or object with None for missing) or a list."""
    if isinstance(values, pl.Series):
        return values.alias(name).cast(pl.String)
    arr = np.asarray(values)
    if arr.dtype.kind not in "UO":
        return pl.Series(name, arr).cast(pl.String)
    return pl.Series(name, arr.tolist(), dtype=pl.String)  # fastest path from Python strings / None


def isin(expr: pl.Expr | pl.Series, values) -> pl.Expr | pl.Series:
    """``expr.is_in(values)`` for a numpy array / list / series of values (membership, not list equality)."""
    return expr.is_in(pl.Series(values).implode())
