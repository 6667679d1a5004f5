"""Claim adjudication: one final version of each claim after adjustments and voids.

Rule (documented in docs/input-contract.md): for each ``claim_id`` the lines of the highest
``claim_version`` are final; if any version of a claim is ``void`` the whole claim is cancelled.
Denied final lines stay as evidence that a service happened (HEDIS general guideline) but carry no
cost. Superseded and voided lines are *used* (they were applied), not quarantined.
"""
from __future__ import annotations

import polars as pl


def final_claims(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Final-version, non-voided claim lines (medical or pharmacy)."""
    lines = lines.with_columns(
        pl.col("claim_version").fill_null(1),
        pl.col("claim_status").fill_null("paid"),
    )
    per_claim = lines.group_by("claim_id").agg(
        _final_version=pl.col("claim_version").max(),
        _voided=(pl.col("claim_status") == "void").any(),
    )
    return (
        lines.join(per_claim, on="claim_id", how="inner")
        .filter((pl.col("claim_version") == pl.col("_final_version")) & ~pl.col("_voided"))
        .drop("_final_version", "_voided")
    )


def adjudication_counts(lines: pl.LazyFrame) -> dict[str, int]:
    """How many lines were superseded or voided (for the manifest)."""
    lines = lines.with_columns(pl.col("claim_version").fill_null(1), pl.col("claim_status").fill_null("paid"))
    per_claim = lines.group_by("claim_id").agg(_final=pl.col("claim_version").max(), _voided=(pl.col("claim_status") == "void").any())
    row = (
        lines.join(per_claim, on="claim_id")
        .select(
            voided=pl.col("_voided").sum(),
            superseded=((pl.col("claim_version") < pl.col("_final")) & ~pl.col("_voided")).sum(),
            final=((pl.col("claim_version") == pl.col("_final")) & ~pl.col("_voided")).sum(),
        )
        .collect()
        .row(0, named=True)
    )
    return {k: int(v or 0) for k, v in row.items()}
