"""Race and ethnicity under OMB SPD 15 (2024): CDC REC codes -> minimum categories -> named rollups.

The combined question is multi-select, so a member carries a *set* of CDC Race & Ethnicity codes.
Each code maps to one SPD 15 minimum category through the code-range table
``reference/data/cdc_rec_spd15.csv`` (CDC REC numbers its hierarchy in contiguous ranges; the
MENA detail codes, filed under White in CDC REC 1.0, get their own range).

Two null flavours are kept apart everywhere (NCQA HEDIS semantics):
  * ``ASKU``  asked but no answer / declined  -> stratum "Declined"
  * ``UNK`` or empty: not collected / unknown -> stratum "Unknown"

Named rollups (``ROLLUPS``), versioned with ``ROLLUP_VERSION``:
  * ``race_ethnicity`` (default, "single category with Multiracial"): one stratum per member; a member
    with two or more minimum categories is "Multiracial"; Hispanic counts as a category.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import polars as pl

ROLLUP_VERSION = "spd15-2024.1"

DECLINED_CODE = "ASKU"
UNKNOWN_CODE = "UNK"

# minimum category -> display label used as a stratum
CATEGORY_LABELS: dict[str, str] = {
    "AIAN": "American Indian or Alaska Native",
    "ASIAN": "Asian",
    "BLACK": "Black or African American",
    "HISPANIC": "Hispanic or Latino",
    "MENA": "Middle Eastern or North African",
    "NHPI": "Native Hawaiian or Pacific Islander",
    "WHITE": "White",
    "OTHER": "Some other race",
}
MULTIRACIAL = "Multiracial"
DECLINED = "Declined"
UNKNOWN = "Unknown"
# Every stratum of the default rollup, in display order (Declined and Unknown always last).
RACE_ETHNICITY_STRATA: tuple[str, ...] = (*CATEGORY_LABELS.values(), MULTIRACIAL, DECLINED, UNKNOWN)


@lru_cache(maxsize=1)
def code_ranges() -> tuple[tuple[int, int, str], ...]:
    """The CDC REC code-number ranges and their SPD 15 category, read from the packaged table."""
    path = resources.files("equity_pipeline.reference") / "data" / "cdc_rec_spd15.csv"
    with path.open(encoding="utf-8") as fh:
        return tuple((int(r["code_from"]), int(r["code_to"]), r["spd15_category"]) for r in csv.DictReader(fh))


def category_of_code(code: str) -> str | None:
    """SPD 15 minimum category of one CDC REC code ('2106-3' -> 'WHITE'), None if not a known code."""
    code = code.strip()
    if len(code) != 6 or code[4] != "-" or not code[:4].isdigit():
        return None
    number = int(code[:4])
    for low, high, category in code_ranges():
        if low <= number <= high:
            return category
    return None


def _category_expr(code: pl.Expr) -> pl.Expr:
    number = code.str.slice(0, 4).cast(pl.Int32, strict=False)
    expr = pl.lit(None, dtype=pl.String)
    for low, high, category in reversed(code_ranges()):
        expr = pl.when(number.is_between(low, high)).then(pl.lit(category)).otherwise(expr)
    return expr


def categories_expr(codes: pl.Expr) -> pl.Expr:
    """List of distinct SPD 15 categories from a '|'-separated code string (NOT_HISPANIC dropped)."""
    return (
        codes.str.split("|")
        .list.eval(_category_expr(pl.element()))
        .list.eval(pl.element().filter(pl.element().is_not_null() & (pl.element() != "NOT_HISPANIC")))
        .list.unique()
        .list.sort()
    )


def race_ethnicity_stratum(codes: pl.Expr) -> pl.Expr:
    """Default rollup: one stratum per member (single category, Multiracial, Declined, Unknown)."""
    cats = categories_expr(codes.fill_null(""))
    label = pl.lit(None, dtype=pl.String)
    for category, text in CATEGORY_LABELS.items():
        label = pl.when(cats.list.first() == category).then(pl.lit(text)).otherwise(label)
    stripped = codes.fill_null("").str.strip_chars()
    return (
        pl.when(stripped == DECLINED_CODE).then(pl.lit(DECLINED))
        .when((stripped == "") | (stripped == UNKNOWN_CODE)).then(pl.lit(UNKNOWN))
        .when(cats.list.len() == 0).then(pl.lit(UNKNOWN))
        .when(cats.list.len() > 1).then(pl.lit(MULTIRACIAL))
        .otherwise(label)
    )
