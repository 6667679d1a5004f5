"""block_sums adds rows in order within blocks and the blocks in order, in bounded memory: the chunked,
dense-cell computation gives the same bits as the plain one (one bincount over every block x cell)."""
import numpy as np
import pytest

from equity_pipeline.stats import _common
from equity_pipeline.stats._common import block_bins, block_sums


def _plain(code: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """The definition, written out: per block one bincount over every cell, the blocks added in order."""
    blocks = max(-(-code.size // _common.BLOCK), 1)
    per_block = np.bincount(np.arange(code.size) // _common.BLOCK * size + code, weights=weights,
                            minlength=blocks * size).reshape(blocks, size)
    total = per_block[0].copy()
    for b in range(1, blocks):
        total += per_block[b]
    return total


@pytest.mark.parametrize("rows,size,chunk_floats", [(0, 5, 16), (1, 5, 16), (1000, 7, 16), (5000, 50_000, 64), (20_000, 300, 1 << 22),
                                                     (100, 1_000_000, 1 << 22)])   # cells found by sorting (size >> rows)
def test_chunked_dense_block_sums_are_the_plain_sums_bit_for_bit(monkeypatch, rows, size, chunk_floats):
    monkeypatch.setattr(_common, "BLOCK", 64)
    monkeypatch.setattr(_common, "BLOCK_SUMS_FLOATS", chunk_floats)
    rng = np.random.default_rng(rows + size)
    code = rng.integers(0, size, rows) if size < 1000 else rng.choice(rng.integers(0, size, 40), rows)  # few cells of many
    weights = rng.random(rows) * 10.0 ** rng.integers(-8, 8, rows)   # magnitudes far apart: the order of additions shows
    got = block_sums(block_bins(code, size), weights, size)
    assert got.shape == (size,)
    assert np.array_equal(got, _plain(code, weights, size))   # same bits, not only close
    if rows:
        assert np.allclose(got, np.bincount(code, weights=weights, minlength=size), rtol=1e-12, atol=0)


@pytest.mark.parametrize("rows,size", [(0, 3), (1, 1), (3000, 20), (3000, 70_000)])
def test_cells_found_by_counting_or_by_sorting_give_the_same_bins(monkeypatch, rows, size):
    """block_bins finds the cells present by counting codes when ``size`` is small, by sorting them
    otherwise: the same cells and the same places either way."""
    rng = np.random.default_rng(rows + size)
    code = rng.choice(rng.integers(0, size, 15), rows) if rows else np.zeros(0, dtype=np.int64)
    monkeypatch.setattr(_common, "BLOCK", 64)
    monkeypatch.setattr(_common, "BLOCK_SUMS_FLOATS", 64)   # several chunks of blocks
    monkeypatch.setattr(_common, "DENSE_BY_COUNT", 1 << 30)
    counted = block_bins(code, size)
    monkeypatch.setattr(_common, "DENSE_BY_COUNT", 0)
    sorted_ = block_bins(code, size) if size > 4 * rows else None
    if sorted_ is not None:
        assert np.array_equal(counted[0], sorted_[0]) and np.array_equal(counted[1], sorted_[1])
    assert np.array_equal(counted[1], np.unique(code))
    weights = rng.random(rows)
    assert np.array_equal(block_sums(counted, weights, size), _plain(code, weights, size))
