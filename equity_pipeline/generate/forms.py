"""Claim forms planted measures use: professional claims, outpatient facility claims, inpatient stays.

Thin wrappers around :func:`claims.assemble` (always ``background=False``: defects never touch planted
lines). Line arguments are lists with one entry per line slot; a slot holds one code per claim (an array,
``None`` entries meaning the claim has no such line) or one code for every claim (a string).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from .claims import assemble
from .context import ChunkContext
from .population import Population
from .providers import Providers


def _slots(n: int, codes: Sequence[object], prices: Sequence[object], extra: dict[str, Sequence[object]] | None = None):
    """(line_claim, codes, prices, extra columns) for the filled slots, claim by claim."""
    claim_idx, code_out, price_out = [], [], []
    extra_out = {k: [] for k in (extra or {})}
    for j, (c, p) in enumerate(zip(codes, prices)):
        arr = np.full(n, c, dtype=object) if isinstance(c, str) or c is None else np.asarray(c, dtype=object)
        pr = np.broadcast_to(np.asarray(p, dtype=np.float64), (n,))
        have = np.array([x is not None for x in arr], dtype=bool)
        idx = np.nonzero(have)[0]
        claim_idx.append(idx)
        code_out.append(arr[have])
        price_out.append(pr[have])
        for k, vals in (extra or {}).items():
            v = vals[j]
            v = np.full(n, v, dtype=object) if isinstance(v, str) or v is None else np.asarray(v, dtype=object)
            extra_out[k].append(v[have])
    line_claim = np.concatenate(claim_idx)
    return (line_claim, np.concatenate(code_out), np.concatenate(price_out),
            {k: np.concatenate(v) for k, v in extra_out.items()})


def professional(ctx: ChunkContext, pop: Population, rng: np.random.Generator, pos: np.ndarray, dates: np.ndarray,
                 codes: Sequence[object], prices: Sequence[object], billing: np.ndarray | str, place: str = "11",
                 dx: Sequence[object] = (), modifiers: Sequence[object] | None = None) -> pl.DataFrame | None:
    """One professional claim per (member, date) with the given line slots (CPT/HCPCS codes)."""
    n = len(pos)
    if n == 0:
        return None
    extra = {"mod": modifiers} if modifiers is not None else None
    line_claim, hcpcs, price, ex = _slots(n, codes, prices, extra)
    lines = {"hcpcs_code": hcpcs, "place_of_service": place}
    if modifiers is not None:
        lines["hcpcs_modifier"] = ex["mod"]
    return assemble(ctx, pop, rng, member_pos=pos, claim_type="professional", from_date=dates, thru_date=dates,
                    line_claim=line_claim, line_price=price, header={"billing_npi": billing}, lines=lines, dx=dx,
                    background=False)


def outpatient_facility(ctx: ChunkContext, pop: Population, providers: Providers, rng: np.random.Generator,
                        pos: np.ndarray, dates: np.ndarray, revenue: Sequence[object], codes: Sequence[object],
                        prices: Sequence[object], dx: Sequence[object] = ()) -> pl.DataFrame | None:
    """Hospital outpatient claim (type of bill 131): revenue-code lines, each with an optional HCPCS."""
    n = len(pos)
    if n == 0:
        return None
    line_claim, rev, price, ex = _slots(n, revenue, prices, {"hcpcs": codes})
    hosp = providers.roles["hospital"].positions(pop.county[pos], rng)
    return assemble(ctx, pop, rng, member_pos=pos, claim_type="institutional", from_date=dates, thru_date=dates,
                    line_claim=line_claim, line_price=price,
                    header={"bill_type": "131", "discharge_status": "01", "billing_npi": providers.roles["hospital"].ids[hosp],
                            "facility_ccn": providers.roles["hospital"].ccns[hosp]},
                    lines={"revenue_code": rev, "hcpcs_code": ex["hcpcs"]}, dx=dx, background=False)


def inpatient_stay(ctx: ChunkContext, pop: Population, providers: Providers, rng: np.random.Generator, pos: np.ndarray,
                   admit: np.ndarray, los: np.ndarray, drg: np.ndarray | str, dx: Sequence[object], pcs: Sequence[object] = (),
                   surgical: bool = False, discharge_status: np.ndarray | str = "01") -> list[pl.DataFrame]:
    """A hospital stay: facility claim (type of bill 111: room and board x LOS, pharmacy, lab, OR when
    surgical) and the hospitalist's claim (POS 21: initial day, discharge day)."""
    n = len(pos)
    if n == 0:
        return []
    admit = np.asarray(admit, dtype=np.int32)
    los = np.asarray(los, dtype=np.int32)
    disch = (admit + los).astype(np.int32)
    hosp = np.where(rng.random(n) < 0.85, pop.hospital_pos[pos], providers.roles["hospital"].positions(pop.county[pos], rng))
    slots_rev = ["0120", "0250", np.where(rng.random(n) < 0.9, "0300", None)] + (["0360"] if surgical else [])
    slots_price = [250000.0 * los, 90000.0, 60000.0] + ([800000.0] if surgical else [])
    line_claim, rev, price, _ = _slots(n, slots_rev, slots_price)
    facility = assemble(ctx, pop, rng, member_pos=pos, claim_type="institutional", from_date=admit, thru_date=disch,
                        line_claim=line_claim, line_price=price,
                        header={"bill_type": "111", "admit_date": admit, "discharge_date": disch,
                                "discharge_status": discharge_status, "drg_code": drg,
                                "billing_npi": providers.roles["hospital"].ids[hosp],
                                "facility_ccn": providers.roles["hospital"].ccns[hosp]},
                        lines={"revenue_code": rev}, dx=dx, pcs=pcs, background=False)
    k = np.arange(n)
    line_claim = np.concatenate([k, k])
    line_day = np.concatenate([admit, disch]).astype(np.int32)
    hospitalist = assemble(ctx, pop, rng, member_pos=pos, claim_type="professional", from_date=admit, thru_date=disch,
                           line_claim=line_claim, line_price=np.concatenate([np.full(n, 21000.0), np.full(n, 7500.0)]),
                           header={"billing_npi": providers.roles["hospitalist"].pick(pop.county[pos], rng)},
                           lines={"hcpcs_code": np.concatenate([np.full(n, "99223", dtype=object), np.full(n, "99238", dtype=object)]),
                                  "place_of_service": "21"},
                           dx=list(dx)[:2], line_from=line_day, line_thru=line_day, background=False)
    return [facility, hospitalist]


def compact(frames: Sequence[pl.DataFrame | None]) -> list[pl.DataFrame]:
    return [f for f in frames if f is not None and f.height]
