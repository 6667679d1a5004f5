"""Helper columns (prefixed ``_``) that rules in the suites refer to.

GX expectations look at one column (or a pair). Facts that need another table or arithmetic are
computed here as plain columns, and the *rule* about them stays in the suite, e.g.
``expect_column_values_to_be_in_set(_member_known, ["true"])``.
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


def add_derived(lf: pl.LazyFrame, table: str, *, known_members: pl.LazyFrame | None) -> pl.LazyFrame:
    """Add the helper columns the ``table`` suite uses. ``known_members`` has column member_id."""
    names = lf.collect_schema().names()
    if "member_id" in names and table != "members":
        if known_members is None:
            lf = lf.with_columns(_member_known=pl.lit("true"))
        else:
            known = known_members.select("member_id").unique().with_columns(_member_known=pl.lit("true"))
            lf = lf.join(known, on="member_id", how="left", maintain_order="left").with_columns(
                pl.col("_member_known").fill_null("false")
            )
    if "billing_npi" in names:
        lf = lf.with_columns(_npi_check_digit_ok=npi_check_digit_ok(pl.col("billing_npi")))
    if "paid_amount" in names:
        lf = lf.with_columns(_paid_amount_num=pl.col("paid_amount").cast(pl.Float64, strict=False))
    return lf
