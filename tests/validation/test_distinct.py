"""per_distinct: an expression evaluated on each batch's distinct values gives the row-by-row values."""
import random

import polars as pl
import pytest

from equity_pipeline.validation.derived import _npi_check_digit_ok, npi_check_digit_ok
from equity_pipeline.validation.distinct import DISTINCT_SHARE, per_distinct


def _luhn_ok(npi: str) -> str | None:
    """Independent NPI check (CMS: Luhn over '80840' + the first nine digits), as the suite's text."""
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit():
        return None
    digits = [int(c) for c in "80840" + npi[:9]]
    total = 0
    for i, d in enumerate(reversed(digits)):   # double every second digit from the right, starting with the last
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return "true" if (10 - total % 10) % 10 == int(npi[9]) else "false"


def _npis(n: int, distinct: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    pool = [f"{rng.randint(1, 2)}{rng.randrange(10**9):09d}" for _ in range(distinct)]
    pool += ["123456789", "12345678901", "12345a7890", " 1234567893", "１２３４５６７８９３", ""]
    return [None if rng.random() < 0.1 else rng.choice(pool) for _ in range(n)]


@pytest.mark.parametrize("distinct", [50, 200_000], ids=["few distinct values", "mostly distinct (row by row)"])
def test_npi_check_per_distinct_matches_row_by_row_and_luhn(distinct):
    values = _npis(300_000, distinct, seed=distinct)
    lf = pl.LazyFrame({"npi": values}, schema={"npi": pl.String})
    fast = lf.select(npi_check_digit_ok(pl.col("npi")).alias("ok")).collect(engine="streaming")["ok"]
    slow = lf.select(_npi_check_digit_ok(pl.col("npi")).alias("ok")).collect()["ok"]
    assert fast.to_list() == slow.to_list()
    assert fast.to_list() == [None if v is None else _luhn_ok(v) for v in values]
    assert {"true", "false"} <= set(fast.drop_nulls().to_list())   # both outcomes are exercised


def test_per_distinct_keeps_row_order_nulls_and_falls_back_on_many_values():
    def expression(e: pl.Expr) -> pl.Expr:
        return e.str.len_bytes() * 2

    values = ["a", None, "bbb", "a", "cc", None, "bbb"] * 1000
    out = pl.select(per_distinct(pl.lit(pl.Series(values)), expression, pl.UInt32)).to_series()
    assert out.to_list() == [None if v is None else 2 * len(v) for v in values]
    many = [str(i) for i in range(1000)]   # every value distinct: above DISTINCT_SHARE, evaluated row by row
    assert len(set(many)) > DISTINCT_SHARE * len(many)
    out = pl.select(per_distinct(pl.lit(pl.Series(many)), expression, pl.UInt32)).to_series()
    assert out.to_list() == [2 * len(v) for v in many]
