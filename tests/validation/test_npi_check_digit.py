"""The NPI check digit of the claims and provider rules (derived.npi_check_digit_ok) against an
independent Luhn check, in the streaming engine as the ingest runs it."""
import random

import polars as pl
import pytest

from equity_pipeline.validation.derived import npi_check_digit_ok, with_npi_check


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
    pool += ["123456789", "12345678901", "12345a7890", " 1234567893", "１２３４５６７８９３", "", "+123456789", "-123456789", "0000000000", "9999999999"]
    return [None if rng.random() < 0.1 else rng.choice(pool) for _ in range(n)]


@pytest.mark.parametrize("staged", [False, True], ids=["one expression", "number cast in its own column"])
@pytest.mark.parametrize("distinct", [50, 200_000], ids=["few distinct values", "mostly distinct"])
def test_npi_check_digit_matches_luhn(distinct, staged):
    values = _npis(300_000, distinct, seed=distinct)
    lf = pl.LazyFrame({"npi": values}, schema={"npi": pl.String})
    if staged:
        checked = with_npi_check(lf, pl.col("npi"), "ok").collect(engine="streaming")
        assert checked.columns == ["npi", "ok"]   # the number column is dropped again
        got = checked["ok"]
    else:
        got = lf.select(npi_check_digit_ok(pl.col("npi")).alias("ok")).collect(engine="streaming")["ok"]
    assert got.to_list() == [None if v is None else _luhn_ok(v) for v in values]
    assert {"true", "false"} <= set(got.drop_nulls().to_list())   # both outcomes are exercised
