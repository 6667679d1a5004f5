"""Draw the report's charts on several cores: collect them first, draw them in worker processes.

The report builds its page and collects its charts (:class:`ChartJobs.add`, with what to do with
each PNG); the charts are drawn when :meth:`ChartJobs.run` is called, and each chart's callback is
then called in the order the charts were added. With more than one worker, a pool of worker
processes is started once enough charts are collected (:data:`MIN_POOL_CHARTS`; a small report is
not worth starting a process for) and draws them while the page is still being built; at ``run``
this process draws the charts no worker has started yet, from the last one back, and waits for the
others.

A chart's PNG depends on the chart alone, not on the process that draws it or on what that
process drew before (the reused canvases keep nothing of one chart on the next), so the report is
byte-identical with any number of workers (tests/report/test_chart_pool.py).

Workers: ``EQUITY_PIPELINE_WORKERS`` (the processes that draw, this one included; ``1``: no worker,
every chart drawn here, one after another), else the CPUs this process may run on. A worker is a
fresh interpreter running :func:`_worker_main`, that reads pickled charts on its stdin
and writes their PNGs on its stdout, fed by a thread of this process: never a ``fork`` of this
process (polars and Dagster run threads in it), and unlike a ``multiprocessing`` spawn it does not
import the caller's ``__main__`` (the ``dagster`` command: seconds per worker), so it works the same
under Dagster's in-process executor, the CLI, scripts and tests. The workers are stopped before
``run`` returns, or when the ``with`` block ends on an error: no process is left behind. A worker
that cannot start or fails leaves its charts to this process (a chart that cannot be drawn raises
here, with its own error).
"""
from __future__ import annotations

import collections
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: Environment variable: how many processes draw charts (this one included); 1 = no worker process.
WORKERS_ENV = "EQUITY_PIPELINE_WORKERS"
#: A worker is started only once this many charts are collected: it costs about 0.8 CPU-s to start
#: (Python, matplotlib, its canvases), the time of 15-20 charts.
MIN_POOL_CHARTS = 24

Chart = Any  # charts.RateChart | charts.ForestChart | charts.TrendChart
Done = Callable[[bytes, float], None]


def workers() -> int:
    """Processes that may draw charts: ``EQUITY_PIPELINE_WORKERS`` if set (a whole number >= 1),
    else the CPUs this process may run on."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{WORKERS_ENV} must be a whole number of at least 1, not {raw!r}")
        return n
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


_LOCK = threading.Lock()
_CANVAS: list[Any] = []


def draw(chart: Chart) -> tuple[bytes, float]:
    """The chart as palette PNG bytes and its height in inches, in this process (rate charts on one
    reused :class:`~equity_pipeline.charts.ChartCanvas` per process, forest plots on the forest canvas,
    trend charts on a new figure). Runs in the worker processes too."""
    from equity_pipeline import charts

    if isinstance(chart, charts.RateChart):
        with _LOCK:
            if not _CANVAS:
                _CANVAS.append(charts.ChartCanvas(dpi=charts.PNG_DPI))
            canvas = _CANVAS[0]
            return canvas.png(chart), canvas.height
    if isinstance(chart, charts.ForestChart):
        png = charts.forest_png(chart)
    elif isinstance(chart, charts.TrendChart):
        png = charts.trend_png(chart)
    else:
        raise TypeError(f"not a chart: {type(chart).__name__}")
    return png, charts.png_pixels(png)[1] / charts.PNG_DPI


def _send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">Q", len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next frame, or EOFError when the other side has closed (or died mid-frame)."""
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("chart worker channel closed")
    (size,) = struct.unpack(">Q", header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("chart worker channel closed mid-frame")
    return pickle.loads(data)


class _Worker:
    """One worker process and the thread of this process that feeds it charts, one at a time, from
    the front of the jobs' queue."""

    def __init__(self, jobs: ChartJobs) -> None:
        import equity_pipeline

        self.jobs = jobs
        # the worker imports this very package, wherever this process imported it from (first on
        # its path, before the working directory)
        root = str(Path(equity_pipeline.__file__).resolve().parent.parent)
        code = f"import sys; sys.path.insert(0, {root!r}); from equity_pipeline.chart_pool import _worker_main; _worker_main()"
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        close_fds=True)
        self.thread = threading.Thread(target=self._feed, name="chart-worker-feed", daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        jobs, process = self.jobs, self.process
        assert process.stdin is not None and process.stdout is not None
        while True:
            i = jobs._take(front=True)
            if i is None:
                break
            try:
                _send(process.stdin, jobs._charts[i])
                ok, value = _receive(process.stdout)
            except Exception:  # noqa: BLE001 - the worker is gone: this process draws the chart
                jobs._give_back(i)
                break
            if ok:
                jobs._done_by_worker(i, value)
            else:  # drawn again here, where a broken chart raises with its own error
                jobs._give_back(i)

    def stop(self) -> None:
        """Wait for the chart in hand, close the channel, wait for the process to exit (kill it if
        it does not within 10 s)."""
        process = self.process
        self.thread.join(timeout=120)
        if self.thread.is_alive():  # pragma: no cover - a hung worker: its chart is drawn here
            process.kill()
            self.thread.join()
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung worker
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class ChartJobs:
    """The charts of one report, drawn at :meth:`run` (see the module docstring).

    ``enabled=False``: nothing is drawn and no callback is called. ``n_workers``: processes that
    draw, this one included (default :func:`workers`)."""

    def __init__(self, enabled: bool = True, n_workers: int | None = None) -> None:
        self.enabled = enabled
        if not enabled:
            self.workers = 1
        else:
            self.workers = workers() if n_workers is None else max(int(n_workers), 1)
        self._charts: list[Chart] = []
        self._done: list[Done] = []
        self._results: list[tuple[bytes, float] | None] = []
        self._pending: collections.deque[int] = collections.deque()  # not taken yet, in order
        self._given_back: list[int] = []
        self._cond = threading.Condition()
        self._closing = False
        self._workers: list[_Worker] = []
        self._started = False
        #: charts drawn by worker processes (the rest were drawn in this process)
        self.drawn_by_workers = 0
        #: every worker process started (all exited and reaped once the jobs run or close)
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> ChartJobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._charts)

    def add(self, chart: Chart, done: Done) -> None:
        """Draw ``chart`` at :meth:`run` (or in a worker before) and call ``done(png, height in
        inches)`` at :meth:`run`."""
        if not self.enabled:
            return
        with self._cond:
            self._charts.append(chart)
            self._done.append(done)
            self._results.append(None)
            self._pending.append(len(self._charts) - 1)
            self._cond.notify()
        if not self._started and self.workers > 1 and len(self._charts) >= MIN_POOL_CHARTS:
            self._start()

    def _start(self) -> None:
        self._started = True
        from equity_pipeline.charts import _ensure_matplotlib

        # the workers inherit MPLCONFIGDIR and read the font cache built here
        _ensure_matplotlib()
        import matplotlib.font_manager  # noqa: F401

        for _ in range(self.workers - 1):
            try:
                self._workers.append(_Worker(self))
                self.processes.append(self._workers[-1].process)
            except Exception:  # noqa: BLE001 - no worker (no processes allowed, ...): this process draws
                break

    def _take(self, front: bool) -> int | None:
        """The next chart to draw: a worker takes from the front and waits for one (None once the
        jobs close); this process takes from the back and never waits (None when none is left)."""
        with self._cond:
            if front:
                while not self._pending and not self._closing:
                    self._cond.wait()
                return None if self._closing else self._pending.popleft()
            return self._pending.pop() if self._pending else None

    def _done_by_worker(self, i: int, result: tuple[bytes, float]) -> None:
        with self._cond:
            self._results[i] = result
            self.drawn_by_workers += 1

    def _give_back(self, i: int) -> None:
        with self._cond:
            self._given_back.append(i)

    def run(self) -> int:
        """Draw every chart added (this process takes them from the last one back while the
        workers take them from the first), stop the workers, then call the callbacks in the order
        the charts were added; returns the number of charts drawn."""
        try:
            while (i := self._take(front=False)) is not None:
                self._results[i] = draw(self._charts[i])
        finally:
            self.close()
        for i, result in enumerate(self._results):  # charts a failed worker gave back
            if result is None:
                self._results[i] = draw(self._charts[i])
        for done, result in zip(self._done, self._results):
            assert result is not None
            done(*result)
        n = len(self._charts)
        self._charts, self._done, self._results, self._given_back = [], [], [], []
        return n

    def close(self) -> None:
        """Stop the workers (each finishes the chart in hand) and wait for their processes to exit;
        charts not drawn yet stay undrawn."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()


def _worker_main() -> None:
    """A worker process (started by :class:`_Worker`): draw the charts read on stdin, write (ok, (png,
    height)) or (ok False, error text) on stdout, until stdin closes."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the channel
    sys.stdout = sys.stderr
    source = sys.stdin.buffer
    while True:
        try:
            chart = _receive(source)
        except EOFError:
            break
        try:
            reply: tuple[bool, Any] = (True, draw(chart))
        except Exception as exc:  # noqa: BLE001 - reported; this process's parent draws it again
            reply = (False, type(exc).__name__)
        try:
            _send(channel, reply)
        except OSError:  # the run's process is gone (killed): nothing to report to
            break
    try:
        channel.close()
    except OSError:
        pass

