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


def npi_check_digit_ok(npi: pl.Expr) -> pl.Expr:
    """'true'/'false' for 10-digit NPIs by the Luhn check digit over 80840 + first 9 digits; null otherwise."""
    digits = [npi.str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(10)]
    total = pl.lit(NPI_PREFIX_SUM)
    for i in range(9):  # doubled positions are 0,2,4,6,8 counted from the left of the 9-digit body
        d = digits[i]
        if i % 2 == 0:
            d2 = d * 2
            total = total + pl.when(d2 > 9).then(d2 - 9).otherwise(d2)
        else:
            total = total + d
    check = (10 - (total % 10)) % 10
    ok = check == digits[9]
    return pl.when(npi.str.contains(r"^[0-9]{10}$")).then(ok.cast(pl.String).str.to_lowercase()).otherwise(None)


def known_member_ids(known_members: pl.LazyFrame | pl.DataFrame | pl.Series) -> pl.Series:
    """The distinct member ids of ``known_members`` (a frame with column member_id, or the ids)."""
    if isinstance(known_members, pl.Series):
        return known_members.cast(pl.String).unique()
    return known_members.lazy().select(pl.col("member_id").cast(pl.String)).unique().collect().to_series()


def add_derived(lf: pl.LazyFrame, table: str, *, known_members: pl.LazyFrame | pl.DataFrame | pl.Series | None) -> pl.LazyFrame:
    """Add the helper columns the ``table`` suite uses. ``known_members``: frame with column member_id
    (or a Series of the ids). ``_member_known`` is a membership test against the distinct ids (row
    local, so it streams in batches; an empty id is never known)."""
    names = lf.collect_schema().names()
    if "member_id" in names and table != "members":
        if known_members is None:
            lf = lf.with_columns(_member_known=pl.lit("true"))
        else:
            ids = known_member_ids(known_members)
            lf = lf.with_columns(
                _member_known=pl.when(pl.col("member_id").is_in(ids.implode())).then(pl.lit("true")).otherwise(pl.lit("false"))
            )
    if "billing_npi" in names:
        lf = lf.with_columns(_npi_check_digit_ok=npi_check_digit_ok(pl.col("billing_npi")))
    if "prescriber_npi" in names:
        lf = lf.with_columns(_prescriber_npi_check_digit_ok=npi_check_digit_ok(pl.col("prescriber_npi")))
    if table == "providers" and "provider_id" in names and "id_type" in names:
        # provider_id is an NPI only on rows whose (normalised) id_type is npi; null elsewhere
        npi = pl.when(pl.col("id_type") == "npi").then(pl.col("provider_id"))
        lf = lf.with_columns(_provider_npi=npi, _provider_npi_check_digit_ok=npi_check_digit_ok(npi))
    if "paid_amount" in names:
        lf = lf.with_columns(_paid_amount_num=pl.col("paid_amount").cast(pl.Float64, strict=False))
    if "allowed_amount" in names:
        lf = lf.with_columns(_allowed_amount_num=pl.col("allowed_amount").cast(pl.Float64, strict=False))
    return lf
