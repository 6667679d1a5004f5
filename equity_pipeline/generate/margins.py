"""Fixed-margin planting: exact planted shares and event counts per group (randomised rounding).

Independent Bernoulli draws per member make a group's realised rate differ from the planted one by
sampling noise, so "the planted value lies inside the published 95% CI" fails for about one group in
twenty by chance alone. Planting with fixed margins - each group gets ``round(p x n)`` members (or
``round(rate x exposure)`` events), chosen at random within the group - keeps the per-member
randomness (who is screened) but makes the group total the planted one up to rounding, so a recovery
check tests the pipeline rather than the dice.
"""
from __future__ import annotations

import numpy as np


def quota(rng: np.random.Generator, mask: np.ndarray, group: np.ndarray, prob: np.ndarray,
          balance: np.ndarray | None = None) -> np.ndarray:
    """Fixed-margin planting: among the members where ``mask`` holds, each group (``group`` ids; ``prob``
    constant within a group) gets exactly ``floor(p n) + Bernoulli(frac(p n))`` chosen members, so the
    realised share equals the planted probability up to rounding (and its expectation exactly).

    Members are chosen uniformly at random within their group; with ``balance`` (small non-negative
    integers, e.g. a need pattern) they are spread evenly over the group sorted by ``balance`` so every
    ``balance`` value is represented in proportion (systematic sampling with a random start)."""
    out = np.zeros(len(mask), dtype=bool)
    idx = np.nonzero(mask)[0]
    if len(idx) == 0:
        return out
    key = rng.random(len(idx))
    if balance is not None:
        key = key + balance[idx]
    order = np.lexsort((key, group[idx]))
    idx = idx[order]
    g = group[idx]
    starts = np.r_[0, np.nonzero(np.diff(g))[0] + 1]
    ends = np.r_[starts[1:], len(idx)]
    for a, b in zip(starts, ends):
        n = b - a
        want = prob[idx[a]] * n
        t = int(np.floor(want)) + int(rng.random() < want - np.floor(want))
        if t <= 0:
            continue
        if balance is None:
            chosen = idx[a:a + t]
        else:
            step = n / t
            chosen = idx[a + np.floor(rng.random() * step + np.arange(t) * step).astype(np.int64)]
        out[chosen] = True
    return out


def allocate(rng: np.random.Generator, mask: np.ndarray, group: np.ndarray, expected: np.ndarray,
             exposure: np.ndarray) -> np.ndarray:
    """Fixed-margin event counts: each group gets ``floor(E) + Bernoulli(frac(E))`` events, E the sum of
    the members' ``expected`` counts, spread over its members in proportion to ``exposure``."""
    counts = np.zeros(len(mask), dtype=np.int64)
    idx = np.nonzero(mask & (exposure > 0))[0]
    if len(idx) == 0:
        return counts
    g = group[idx]
    for gid in np.unique(g):
        mem = idx[g == gid]
        e = float(expected[mem].sum())
        k = int(np.floor(e)) + int(rng.random() < e - np.floor(e))
        if k:
            w = exposure[mem].astype(np.float64)
            np.add.at(counts, rng.choice(mem, size=k, p=w / w.sum()), 1)
    return counts


