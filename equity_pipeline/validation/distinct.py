"""Evaluate a one-column expression once per distinct value of each batch, not once per row.

Claim columns repeat few values many times: in a batch of 100,000 claim lines there are a few hundred
billing NPIs, a few thousand dates and a hundred diagnosis codes. An expression that costs many string
operations per value (the NPI check digit: ten slices and casts) is cheaper on the batch's distinct
values, mapped back to the rows with one hash lookup each. :func:`per_distinct` wraps such an
expression for polars' streaming engine (an elementwise batch function, so it still runs batch by
batch and never needs the whole column).

Only for expressions whose value on a row depends on that row's value alone, and that give null for
null (the mapping back leaves a null row null).
"""
from __future__ import annotations

from typing import Callable

import polars as pl

#: a column whose batch has more distinct values than this share of its rows is evaluated row by row:
#: the mapping back would cost as much as it saves (member ids, amounts)
DISTINCT_SHARE = 0.25


def per_distinct(col: pl.Expr, expression: Callable[[pl.Expr], pl.Expr], dtype: pl.DataType) -> pl.Expr:
    """``expression(col)``, computed on the distinct values of ``col`` in each batch and mapped back to
    the rows (the same values as ``expression(col)``; ``dtype``: its result type)."""

    def batch(values: pl.Series) -> pl.Series:
        distinct = values.drop_nulls().unique()
        if distinct.len() > DISTINCT_SHARE * values.len():
            return pl.select(expression(pl.lit(values)).cast(dtype)).to_series()
        results = pl.select(expression(pl.lit(distinct)).cast(dtype)).to_series()
        return values.replace_strict(distinct, results, default=None, return_dtype=dtype)

    return col.map_batches(batch, return_dtype=dtype, is_elementwise=True)
