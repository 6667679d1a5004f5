"""Small helpers shared by the statistics modules: array coercion and normal quantiles."""
from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import polars as pl
from scipy.stats import norm

ArrayLike = np.ndarray | pl.Series | Iterable[float] | float | int


def as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a float64 numpy array (nulls become NaN); a one-line ValueError if not numeric."""
    if isinstance(values, pl.Series):
        if not values.dtype.is_numeric() and values.dtype != pl.Null:
            raise ValueError(f"{name} must be numeric (got polars dtype {values.dtype})")
        return values.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric") from None


def check_alpha(alpha: float) -> float:
    """``alpha`` if it is a usable two-sided significance level, else ValueError."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1 (got {alpha})")
    return float(alpha)


def z_value(alpha: float) -> float:
    """Two-sided standard normal critical value, e.g. 1.959964 for alpha=0.05."""
    return _z_value(check_alpha(alpha))


@lru_cache(maxsize=64)
def _z_value(alpha: float) -> float:
    # cached: scipy's distribution methods cost about 0.1 ms a call (argument checks), and the
    # disparity summaries ask for the same few levels thousands of times
    return float(norm.ppf(1.0 - alpha / 2.0))


def scalar_or_array(template: np.ndarray, values: np.ndarray) -> np.ndarray | float:
    """Return a float when the caller passed a scalar, otherwise the array."""
    return float(values) if template.ndim == 0 else values


# ---------------------------------------------------------------- sums by cell code (deterministic order)
#: rows added in order before their block's sum is added to the cell's (:func:`block_sums`)
BLOCK = 2048


#: per-block sums held at once by :func:`block_sums` (floats; 32 MB): the blocks are summed in chunks
BLOCK_SUMS_FLOATS = 1 << 22

#: sizes up to which :func:`block_bins` finds the cells present by counting (an array of ``size``
#: counts) rather than by sorting the codes (also whenever ``size`` is at most 4 rows per cell)
DENSE_BY_COUNT = 1 << 16


def _blocks_per_chunk(cells: int) -> int:
    """Blocks whose per-block sums :func:`block_sums` holds at once (at most :data:`BLOCK_SUMS_FLOATS`
    floats); :func:`block_bins` numbers each row's block within its chunk by the same count."""
    return max(1, BLOCK_SUMS_FLOATS // max(cells, 1))


def block_bins(code: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The grouping :func:`block_sums` adds by: each row's place among the per-block sums (its block's
    number within its chunk of blocks times the number of cells present, plus its dense cell number,
    the cell's position among the cells present, so that memory follows the cells that occur, not
    ``size``) and the cells present (sorted codes, each in 0 .. size-1). Computed once for every
    column a caller sums by the same codes."""
    code = np.asarray(code).reshape(-1)
    if size <= max(4 * code.size, DENSE_BY_COUNT):
        # the cells present and their positions by counting (linear), not by sorting the codes
        present = np.flatnonzero(np.bincount(code, minlength=size))
        position = np.zeros(size, dtype=np.int64)
        position[present] = np.arange(present.size)
        dense = position[code]
    else:
        present, dense = np.unique(code, return_inverse=True)
        dense = dense.reshape(-1).astype(np.int64, copy=False)
    cells = present.size
    place = np.arange(code.size, dtype=np.int64) // BLOCK % _blocks_per_chunk(cells) * cells
    place += dense
    return place, present


def block_sums(bins: tuple[np.ndarray, np.ndarray], weights: np.ndarray, size: int) -> np.ndarray:
    """Per cell 0 .. size-1, the sum of the rows' ``weights`` (``bins`` from :func:`block_bins`): rows
    added in order within blocks of :data:`BLOCK` rows (``np.bincount``), the blocks' sums in order.
    Deterministic (the same rows in the same order, the same bits), and the rounding error of a cell
    is at most (BLOCK + blocks) units of 2**-53 of the sum of its terms' magnitudes, whatever the
    number of rows. Memory: at most :data:`BLOCK_SUMS_FLOATS` per-block sums at a time (the blocks
    are taken in chunks; the additions and their order are the same)."""
    place, present = bins
    n, cells = place.size, present.size
    blocks = max(-(-n // BLOCK), 1)
    chunk = _blocks_per_chunk(cells)
    total = np.zeros(cells)
    for first in range(0, blocks, chunk):
        last = min(blocks, first + chunk)
        lo, hi = first * BLOCK, min(n, last * BLOCK)
        per_block = np.bincount(place[lo:hi], weights=weights[lo:hi], minlength=(last - first) * cells).reshape(last - first, cells)
        for b in range(last - first):
            if first == 0 and b == 0:
                total = per_block[0].copy()
            else:
                total += per_block[b]
    out = np.zeros(size)
    out[present] = total
    return out


def key_codes(frame: pl.DataFrame, keys: list[str]) -> tuple[np.ndarray, pl.DataFrame]:
    """Int64 code of each row's ``keys`` (its row in the table of distinct keys, in order of first
    appearance) and that table. One varying text key (one measure's sub-measures) is looked up by
    an Enum cast instead of a join."""
    table = frame.select(keys).unique(maintain_order=True)
    varying = [k for k in keys if table.get_column(k).n_unique() > 1 or table.get_column(k).null_count()]
    if not varying:
        return np.zeros(frame.height, dtype=np.int64), table
    k = varying[0]
    if len(varying) == 1 and frame.schema[k] == pl.String and table.get_column(k).null_count() == 0:
        return frame.get_column(k).cast(pl.Enum(table.get_column(k))).to_physical().cast(pl.Int64).to_numpy(), table
    codes = frame.select(keys).join(table.with_row_index("_k"), on=keys, how="left", nulls_equal=True, maintain_order="left")
    return codes.get_column("_k").cast(pl.Int64).to_numpy(), table
