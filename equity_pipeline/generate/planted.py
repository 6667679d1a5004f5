"""What a planted measure module provides, and helpers they share.

A planted measure is a module (``plant_<measure>.py``) with:

* ``MEASURE_ID``: the measure id used in ``truth.json`` (e.g. ``"BCS"``);
* ``plant(ctx, pop, providers) -> PlantResult``: decides, per member of a chunk, the true status
  (eligible, excluded, numerator) and emits the claim lines that evidence it;
* ``summarize(members, period) -> dict``: the ``truth.json`` entry, from the concatenated member rows
  of all chunks (with a boolean ``quarantined`` column added by the generator: members whose own
  row carries an injected defect and that a correct pipeline therefore drops).

Planted lines are built with ``claims.assemble(..., background=False)`` so defects never touch them.
Add a new measure by writing the module and listing it in ``PLANTED_MEASURES`` below.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .population import Population


@dataclass
class PlantResult:
    medical_lines: list[pl.DataFrame] = field(default_factory=list)  # internal line frames
    members: pl.DataFrame | None = None                             # member-level truth rows
    defects: dict[str, int] = field(default_factory=dict)           # consistent voids/adjustments planted


def sample_covered_dates(rng: np.random.Generator, pop: Population, pos: np.ndarray, lo: int | np.ndarray,
                         hi: int | np.ndarray, tries: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A uniform day in [lo, hi] on which each member is enrolled and alive; ``ok`` False if none found."""
    n = len(pos)
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), (n,))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.int64), (n,))
    out = np.zeros(n, dtype=np.int32)
    ok = np.zeros(n, dtype=bool)
    for _ in range(tries):
        todo = np.nonzero(~ok & (hi >= lo))[0]
        if len(todo) == 0:
            break
        d = (lo[todo] + np.floor(rng.random(len(todo)) * (hi[todo] - lo[todo] + 1))).astype(np.int32)
        good = pop.covered(pos[todo], d)
        out[todo[good]] = d[good]
        ok[todo[good]] = True
    return out, ok


def planted_measures():
    """The planted measure modules, in the order their truth is written."""
    from . import plant_bcs

    return (plant_bcs,)
