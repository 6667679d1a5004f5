"""Building medical claim lines from claim-level and line-level arrays, and turning them into strings.

Producers (background utilisation, planted measures, defects) describe claims as arrays: one entry
per claim for header fields, one per line for line fields, and ``line_claim`` mapping each line to its
claim. :func:`assemble` returns the *internal* line frame: typed columns (dates as day numbers, money
in cents) plus ``claim_key`` (an int unique within the chunk) and ``_bg`` (True for background lines,
the only ones defects may touch). :func:`stringify_medical` converts it to the all-string contract
layout; claim ids are assigned at the very end (:func:`assign_claim_ids`) so that planted, background
and defect claims are interleaved.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from .context import NO_DATE, ChunkContext, cents_to_str, dates_to_str, str_series
from .population import PAYER_SERIES, Population
from .schema import DX_COLUMNS, PCS_COLUMNS, TABLE_COLUMNS

PAYER_PRICE_FACTOR = np.array([1.0, 0.72, 1.5])  # medicare, medicaid, commercial
PAYER_PAID_RATIO = np.array([0.8, 0.97, 0.85])

STRING_HEADER = ("claim_status", "claim_type", "discharge_status", "bill_type", "drg_code", "billing_npi", "facility_ccn")
STRING_LINE = ("place_of_service", "revenue_code", "hcpcs_code", "hcpcs_modifier", "snomed_code")  # payer claims: no SNOMED
DATE_COLUMNS = ("claim_from_date", "claim_thru_date", "admit_date", "discharge_date")


def _as_str_series(name: str, values, n: int) -> pl.Series:
    if values is None:
        return pl.Series(name, [None] * n, dtype=pl.String)
    if isinstance(values, str):
        return pl.Series(name, [values] * n, dtype=pl.String)
    if isinstance(values, pl.Series):
        return values.alias(name).cast(pl.String)
    return str_series(name, values)


def _as_date_array(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, NO_DATE, dtype=np.int32)
    return np.broadcast_to(np.asarray(values, dtype=np.int32), (n,)).copy()


def assemble(
    ctx: ChunkContext,
    pop: Population,
    rng: np.random.Generator,
    *,
    member_pos: np.ndarray,
    claim_type: str | np.ndarray,
    from_date: np.ndarray,
    thru_date: np.ndarray,
    line_claim: np.ndarray,
    line_price: np.ndarray,
    header: dict[str, object] | None = None,
    lines: dict[str, object] | None = None,
    dx: Sequence[object] = (),
    pcs: Sequence[object] = (),
    line_from: np.ndarray | None = None,
    line_thru: np.ndarray | None = None,
    background: bool = True,
    denied_share: float = 0.0,
) -> pl.DataFrame:
    """Internal line frame for ``len(member_pos)`` claims and ``len(line_claim)`` lines."""
    header = header or {}
    lines = lines or {}
    n_claims = len(member_pos)
    n_lines = len(line_claim)
    order = np.argsort(line_claim, kind="stable")
    line_claim = np.asarray(line_claim)[order]

    def line_arr(values):
        if values is None or isinstance(values, str):
            return values
        return np.asarray(values, dtype=object)[order]

    keys = ctx.claim_keys(n_claims)
    payer_idx = pop.payer_at(member_pos, np.asarray(from_date))
    denied = rng.random(n_claims) < denied_share
    status = pl.Series(["paid", "denied"]).gather(denied.astype(np.int64))

    claims = pl.DataFrame({
        "claim_key": keys,
        "_pos": np.asarray(member_pos, dtype=np.int32),  # chunk-local member position (dropped when written)
        "claim_version": np.ones(n_claims, dtype=np.int32),
        "member_id": pop.member_id_s.gather(member_pos),
        "payer": PAYER_SERIES.gather(payer_idx),
        "claim_from_date": _as_date_array(from_date, n_claims),
        "claim_thru_date": _as_date_array(thru_date, n_claims),
        "admit_date": _as_date_array(header.get("admit_date"), n_claims),
        "discharge_date": _as_date_array(header.get("discharge_date"), n_claims),
    }).with_columns(
        _as_str_series("claim_status", status, n_claims),
        _as_str_series("claim_type", claim_type, n_claims),
        *[_as_str_series(c, header.get(c), n_claims) for c in STRING_HEADER if c not in ("claim_status", "claim_type")],
        *[_as_str_series(col, dx[i] if i < len(dx) else None, n_claims) for i, col in enumerate(DX_COLUMNS)],
        *[_as_str_series(col, pcs[i] if i < len(pcs) else None, n_claims) for i, col in enumerate(PCS_COLUMNS)],
    )
    out = claims[line_claim]
    starts = np.searchsorted(line_claim, np.arange(n_claims))
    claim_line = np.arange(n_lines) - starts[line_claim] + 1
    price = np.asarray(line_price, dtype=np.float64)[order]
    pidx = payer_idx[line_claim]
    allowed = np.round(price * PAYER_PRICE_FACTOR[pidx] * rng.lognormal(0.0, 0.15, n_lines)).astype(np.int64)
    paid = np.round(allowed * PAYER_PAID_RATIO[pidx] * rng.uniform(0.92, 1.0, n_lines)).astype(np.int64)
    paid = np.where(denied[line_claim], 0, paid)
    extra = [
        pl.Series("claim_line", claim_line.astype(np.int32)),
        pl.Series("allowed_amount", allowed),
        pl.Series("paid_amount", paid),
        pl.Series("_bg", np.full(n_lines, background)),
        *[_as_str_series(c, line_arr(lines.get(c)), n_lines) for c in STRING_LINE],
    ]
    out = out.with_columns(extra)
    if line_from is not None:
        out = out.with_columns(pl.Series("claim_from_date", np.asarray(line_from, dtype=np.int32)[order]))
    if line_thru is not None:
        out = out.with_columns(pl.Series("claim_thru_date", np.asarray(line_thru, dtype=np.int32)[order]))
    return out


INTERNAL_ORDER = ("claim_key", "_bg", *TABLE_COLUMNS["medical_claims"][1:])


def stringify_medical(lines: pl.DataFrame) -> pl.DataFrame:
    """Internal line frame -> all-string columns (claim_key and _bg kept for the defect step)."""
    return lines.with_columns(
        *[dates_to_str(c) for c in DATE_COLUMNS],
        cents_to_str("paid_amount"),
        cents_to_str("allowed_amount"),
        pl.col("claim_line").cast(pl.String),
        pl.col("claim_version").cast(pl.String),
    ).select(INTERNAL_ORDER)


def assign_claim_ids(df: pl.DataFrame, rng: np.random.Generator, prefix: str, chunk_index: int,
                     key: str = "claim_key", id_col: str = "claim_id") -> pl.DataFrame:
    """Replace the internal integer key by a string id; ids follow a random order of the keys, so
    they carry no trace of which producer (background, planted, defect) made the claim."""
    keys = df.get_column(key).to_numpy()
    present = np.flatnonzero(np.bincount(keys))
    rank_of_key = np.zeros(int(keys.max()) + 1 if len(keys) else 1, dtype=np.int64)
    rank_of_key[present] = rng.permutation(len(present))
    rank = pl.Series(rank_of_key[keys])
    return df.with_columns(
        (pl.lit(f"{prefix}{chunk_index:04d}") + rank.cast(pl.String).str.zfill(9)).alias(key)
    ).rename({key: id_col})
