"""Which rows of a large table GX evaluates (docs/validation.md "GX at scale").

Used by the GX check (:mod:`equity_pipeline.validation.gx_runner`) and by the ingest, which writes
the random part of the sample (the rows of :func:`random_rows`, normalised, with the derived
columns) while it reads every row anyway, so the check does not read the whole file again to pick
them (``restricted/gx_sample/<table>.parquet``). No GX import here.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from equity_pipeline.io import ROW

#: environment variables read by :meth:`Sampling.from_env`
SAMPLING_ENV = {
    "full_rows": "EQUITY_GX_FULL_ROWS",
    "sample_rows": "EQUITY_GX_SAMPLE_ROWS",
    "failing_rows": "EQUITY_GX_FAILING_ROWS",
    "seed": "EQUITY_GX_SEED",
}


@dataclass(frozen=True)
class Sampling:
    """Which rows GX evaluates (the polars evaluator always evaluates every row).

    A table of at most ``full_rows`` rows: every row. A larger table: a seeded random sample of
    ``sample_rows`` rows, plus for every row-level expectation up to ``failing_rows`` of the rows the
    polars evaluator found failing it (chosen with the same seed; all of them when fewer), plus the
    whole column for uniqueness rules. A ``full_rows`` above the largest table runs GX on every row
    of every table; ``full_rows = 0`` samples every table.
    """

    full_rows: int = 100_000
    sample_rows: int = 20_000
    failing_rows: int = 100
    seed: int = 20260

    def __post_init__(self) -> None:
        for name in ("full_rows", "sample_rows", "failing_rows", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"GX sampling: {name} must be a whole number >= 0")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Sampling:
        """Defaults, overridden by ``EQUITY_GX_FULL_ROWS``, ``EQUITY_GX_SAMPLE_ROWS``,
        ``EQUITY_GX_FAILING_ROWS`` and ``EQUITY_GX_SEED``."""
        env = os.environ if env is None else env
        values = {}
        for name, var in SAMPLING_ENV.items():
            raw = (env.get(var) or "").strip().replace("_", "")
            if raw:
                if not raw.isdigit():
                    raise ValueError(f"{var} must be a whole number >= 0")
                values[name] = int(raw)
        return cls(**values)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def choose_rows(n: int, failing: pl.DataFrame, sampling: Sampling) -> tuple[pl.Series, dict[str, int]]:
    """The ``_row`` numbers GX evaluates in sample mode, sorted, and what they are made of.

    ``failing``: ``_row`` plus one boolean column per row-level expectation (named by its suite
    index) for the rows the polars evaluator found failing. Random rows come from
    ``numpy.random.default_rng(seed)``; the failing rows of expectation ``i`` from
    ``default_rng([seed, i])``; so the sample depends only on the seed, the table size and the
    polars evaluator's verdicts.
    """
    import numpy as np

    random = random_rows(n, sampling).to_numpy().astype(np.int64)
    k = random.size
    failing_chosen = []
    for col in failing.columns:
        if col == ROW:
            continue
        rows = failing.filter(pl.col(col)).get_column(ROW).to_numpy().astype(np.int64)
        if rows.size > sampling.failing_rows:
            rows = np.random.default_rng([sampling.seed, int(col)]).choice(rows, size=sampling.failing_rows, replace=False)
        failing_chosen.append(rows)
    failing_rows = np.unique(np.concatenate(failing_chosen)) if failing_chosen else np.array([], dtype=np.int64)
    chosen = np.unique(np.concatenate([random, failing_rows]))
    info = {
        "seed": sampling.seed, "table_rows": n, "random_rows": int(k),
        "failing_rows": int(failing_rows.size), "failing_rows_per_expectation": sampling.failing_rows,
        "rows_evaluated": int(chosen.size),
    }
    return pl.Series(ROW, chosen, dtype=pl.UInt32), info


def random_rows(n: int, sampling: Sampling) -> pl.Series:
    """The seeded random part of the sample of a table of ``n`` rows: ``sample_rows`` distinct
    ``_row`` numbers (all rows when fewer), sorted, from ``numpy.random.default_rng(seed)``."""
    import numpy as np

    k = min(sampling.sample_rows, n)
    rows = np.sort(np.random.default_rng(sampling.seed).choice(n, size=k, replace=False).astype(np.int64) + 1)
    return pl.Series(ROW, rows, dtype=pl.UInt32)


def parameters_digest(parameters: dict[str, Any]) -> str:
    """Short digest of the suite parameters (to tell whether stored results are still current)."""
    blob = json.dumps(parameters, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def sample_key(sampling: Sampling, parameters: dict[str, Any]) -> dict[str, Any]:
    """What the ingest's GX sample files depend on besides the input and the suite (which
    ``validation/<table>.json`` records anyway): the sampling, and the parameters (the failing flags)."""
    return {"sampling": sampling.to_dict(), "parameters_digest": parameters_digest(parameters)}
