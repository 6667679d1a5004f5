"""Independent pieces of one step, side by side on the run's cores (threads of this process).

The in-process executor runs one Dagster step at a time, and some steps work one measure at a time
with polars and numpy calls that leave one of the two cores idle much of the time (stratified
counts: about 1.3 cores of 2). Their pieces share nothing, so two threads can each take a measure:
polars and numpy release the GIL while they compute, and every piece gives the same result in any
thread, so the step's output is the same as one after another (docs/performance.md).

Not for pieces that change process-wide state: ``warnings.catch_warnings`` (statsmodels fits that
record their warnings, as the standardised rates' models do) is not thread-safe, so those stay in a
plain loop. At most :data:`MAX_THREADS` pieces run at once, fewer when ``EQUITY_PIPELINE_WORKERS``
(:func:`equity_pipeline.chart_pool.workers`, which also caps the chart processes) says so; ``1`` runs
the pieces one after another in this thread. Memory: each piece running holds its own rows (a
measure's member rows), so the cap does not grow with the machine's cores: polars already spreads
one piece over every core, and a second piece only fills the gaps.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

#: pieces at most at once, whatever the cores (memory: each holds its own rows)
MAX_THREADS = 2

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None) -> list[R]:
    """``[fn(item) for item in items]``, computed by up to ``workers`` threads (default: the smaller of
    :data:`MAX_THREADS` and :func:`~equity_pipeline.chart_pool.workers`), in the order of ``items``.
    The first exception a piece raises (in item order) is raised here: the pieces not started yet
    are cancelled, and those running are waited for."""
    from equity_pipeline.chart_pool import workers as default_workers

    items = list(items)
    n = min(min(MAX_THREADS, default_workers()) if workers is None else max(int(workers), 1), len(items))
    if n <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="equity_pipeline") as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
