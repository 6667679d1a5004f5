"""Helper columns (prefixed ``_``) that rules in the suites refer to.

GX expectations look at one column (or a pair). Facts that need another table or arithmetic are
computed here as plain columns, and the *rule* about them stays in the suite, e.g.
``expect_column_values_to_be_in_set(_member_known, ["true"])``.

Columns: ``_member_known`` (tables with member_id, not members), ``_npi_check_digit_ok`` (billing_npi),
``_prescriber_npi_check_digit_ok`` (prescriber_npi), ``_provider_npi`` and
``_provider_npi_check_digit_ok`` (providers: provider_id where id_type is npi), ``_paid_amount_num``
and ``_allowed_amount_num`` (the amounts as numbers, null where the text is not one).
"""
from __future__ import annotations

import polars as pl

NPI_PREFIX_SUM = 24  # Luhn contribution of the '80840' prefix that NPI check digits include


def npi_check_digit_ok(npi: pl.Expr, *, number: pl.Expr | None = None) -> pl.Expr:
    """'true'/'false' for 10-digit NPIs by the Luhn check digit over 80840 + first 9 digits; null otherwise.

    The digits come from the NPI as a number (``number``: ``npi`` cast to Int64, by default cast here;
    a column holding that cast, as :func:`with_npi_check` passes, is read once instead of once per
    digit): integer arithmetic on whole columns instead of ten text slices per value, about a fifth of
    the CPU over 33M claim lines (docs/performance.md). Only values of exactly ten ASCII digits are
    judged, so the cast is exact for them."""
    n = npi.cast(pl.Int64, strict=False) if number is None else number
    total = pl.lit(NPI_PREFIX_SUM, dtype=pl.Int64)
    for i in range(9):  # doubled positions are 0,2,4,6,8 counted from the left of the 9-digit body
        d = (n // 10 ** (9 - i)) % 10
        # a doubled digit's Luhn value: 2d, less 9 when 2d has two digits (d >= 5)
        total = total + (d * 2 - (d >= 5).cast(pl.Int64) * 9 if i % 2 == 0 else d)
    ok = (10 - total % 10) % 10 == n % 10
    return pl.when(npi.str.contains(r"^[0-9]{10}$")).then(pl.when(ok).then(pl.lit("true")).otherwise(pl.lit("false")))


def with_npi_check(lf: pl.LazyFrame, npi: pl.Expr, name: str) -> pl.LazyFrame:
    """``lf`` with column ``name`` = :func:`npi_check_digit_ok` of ``npi``, the number cast once in a
    column of its own (dropped again): polars does not share the cast between the ten digits of one
    expression (33M claim lines: 2.9 CPU-s staged, 7.3 in one expression, 15.9 with text slices)."""
    number = f"__{name}_number"
    return (lf.with_columns(npi.cast(pl.Int64, strict=False).alias(number))
            .with_columns(npi_check_digit_ok(npi, number=pl.col(number)).alias(name)).drop(number))


def known_member_ids(known_members: pl.LazyFrame | pl.DataFrame | pl.Series) -> pl.Series:
    """The distinct member ids of ``known_members`` (a frame with column member_id, or the ids)."""
    if isinstance(known_members, pl.Series):
        return known_members.cast(pl.String).unique()
    return known_members.lazy().select(pl.col("member_id").cast(pl.String)).unique().collect().to_series()


def add_derived(lf: pl.LazyFrame, table: str, *, known_members: pl.LazyFrame | pl.DataFrame | pl.Series | None) -> pl.LazyFrame:
    """Add the helper columns the ``table`` suite uses. ``known_members``: frame with column member_id
    (or a Series of the ids). ``_member_known`` is a membership test against the distinct ids (row
    local, so it streams in batches; an empty id is never known). With a lazy ``known_members`` the
    test is a lazy left join on the distinct ids, computed only when ``_member_known`` is read (the
    GX checks build the text frame for its schema and a few columns; collecting the ids of 1M members
    cost 0.1 s a table); otherwise the ids are collected here and tested with ``is_in`` (the ingest)."""
    names = lf.collect_schema().names()
    if "member_id" in names and table != "members":
        if known_members is None:
            lf = lf.with_columns(_member_known=pl.lit("true"))
        elif isinstance(known_members, pl.LazyFrame):
            flag = "__member_known"
            known = known_members.select(pl.col("member_id").cast(pl.String)).unique().with_columns(pl.lit(True).alias(flag))
            lf = (lf.join(known, left_on=pl.col("member_id").cast(pl.String), right_on="member_id", how="left",
                          maintain_order="left", suffix="__known")
                  .with_columns(_member_known=pl.when(pl.col(flag)).then(pl.lit("true")).otherwise(pl.lit("false")))
                  .select(*names, "_member_known"))
        else:
            ids = known_member_ids(known_members)
            lf = lf.with_columns(
                _member_known=pl.when(pl.col("member_id").is_in(ids.implode())).then(pl.lit("true")).otherwise(pl.lit("false"))
            )
    if "billing_npi" in names:
        lf = with_npi_check(lf, pl.col("billing_npi"), "_npi_check_digit_ok")
    if "prescriber_npi" in names:
        lf = with_npi_check(lf, pl.col("prescriber_npi"), "_prescriber_npi_check_digit_ok")
    if table == "providers" and "provider_id" in names and "id_type" in names:
        # provider_id is an NPI only on rows whose (normalised) id_type is npi; null elsewhere
        npi = pl.when(pl.col("id_type") == "npi").then(pl.col("provider_id"))
        lf = with_npi_check(lf.with_columns(_provider_npi=npi), pl.col("_provider_npi"), "_provider_npi_check_digit_ok")
    if "paid_amount" in names:
        lf = lf.with_columns(_paid_amount_num=pl.col("paid_amount").cast(pl.Float64, strict=False))
    if "allowed_amount" in names:
        lf = lf.with_columns(_allowed_amount_num=pl.col("allowed_amount").cast(pl.Float64, strict=False))
    return lf
