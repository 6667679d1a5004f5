"""Measures side by side in threads (``parallel.ordered_map``): the stratified counts, identities and
imputed counts are the same frames, bit for bit, with one thread or several; the pieces really run
in several threads; results come back in item order whatever order the pieces finish in."""
from __future__ import annotations

import threading
import time

import numpy as np
import polars as pl
import pytest

from equity_pipeline import imputation, stratify
from equity_pipeline.chart_pool import WORKERS_ENV
from equity_pipeline.parallel import ordered_map
from tests.stratify.test_member_index import INTERSECTIONS, STRATS, _population


@pytest.fixture(scope="module")
def population():
    results, attrs = _population(seed=11, members=900)
    p = np.random.default_rng(3).dirichlet(np.ones(7), attrs.height)
    probs = pl.DataFrame({"member_id": attrs["member_id"], **{c: p[:, i] for i, c in enumerate(imputation.PROBABILITY_COLUMNS)}})
    return results, attrs, probs


def _threads_of(monkeypatch, module, name: str) -> set[int]:
    """Record the threads that call ``module.name`` from now on."""
    seen: set[int] = set()
    real = getattr(module, name)

    def spy(*args, **kwargs):
        seen.add(threading.get_ident())
        time.sleep(0.05)   # long enough that a second thread takes the next measure
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


def test_counts_and_identities_are_the_same_with_any_number_of_threads(population, monkeypatch):
    results, attrs, _ = population
    monkeypatch.setenv(WORKERS_ENV, "1")
    one = stratify.counts_and_identities(results, attrs, STRATS, INTERSECTIONS)
    for n in ("2", "3"):
        monkeypatch.setenv(WORKERS_ENV, n)
        threads = _threads_of(monkeypatch, stratify, "_coded_denominators")
        counts, identities = stratify.counts_and_identities(results, attrs, STRATS, INTERSECTIONS)
        monkeypatch.undo()
        assert len(threads) == 2 and threading.get_ident() not in threads   # at most MAX_THREADS, whatever the setting
        assert counts.equals(one[0], null_equal=True) and identities.equals(one[1])
    # identity numbers run on from measure to measure (offsets applied in measure order)
    first = one[1].group_by("identity").agg(pl.col("measure_id").first()).sort("identity")["measure_id"]
    assert first.to_list() == sorted(first.to_list())


def test_imputed_counts_are_the_same_with_any_number_of_threads(population, monkeypatch):
    results, attrs, probs = population
    monkeypatch.setenv(WORKERS_ENV, "1")
    one = imputation.imputed_counts(results, attrs, probs)
    monkeypatch.setenv(WORKERS_ENV, "2")
    threads = _threads_of(monkeypatch, imputation, "_weighted_cells")
    two = imputation.imputed_counts(results, attrs, probs)
    assert len(threads) > 1
    assert two.equals(one, null_equal=True)


def test_ordered_map_keeps_item_order_and_raises_the_first_error():
    def slow_first(i: int) -> int:
        time.sleep(0.02 * (5 - i))   # later items finish first
        return i * i

    assert ordered_map(slow_first, range(5), workers=3) == [0, 1, 4, 9, 16]
    caller = threading.get_ident()
    assert set(ordered_map(lambda _: threading.get_ident(), range(4), workers=1)) == {caller}

    ran = []

    def fails(i: int) -> int:
        ran.append(i)
        if i in (1, 3):
            raise ValueError(f"item {i}")
        time.sleep(0.05)
        return i

    with pytest.raises(ValueError, match="item 1"):
        ordered_map(fails, range(20), workers=2)
    assert 2 <= len(ran) < 20   # the pieces not started when item 1 failed were cancelled
    assert ordered_map(str, [], workers=2) == []
