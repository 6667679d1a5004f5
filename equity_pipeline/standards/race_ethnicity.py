"""Race and ethnicity under OMB SPD 15 (2024): CDC REC codes -> minimum categories -> named rollups.

The combined question is multi-select, so a member carries a *set* of CDC Race & Ethnicity codes.
Each code maps to one SPD 15 minimum category through the code-range table
``reference/data/cdc_rec_spd15.csv`` (CDC REC numbers its hierarchy in contiguous ranges; the
MENA detail codes, filed under White in CDC REC 1.0, get their own range).

Two null flavours are kept apart everywhere (NCQA HEDIS semantics):
  * ``ASKU``  asked but no answer / declined  -> stratum "Declined"
  * ``UNK`` or empty: not collected / unknown -> stratum "Unknown"

Named rollups (``ROLLUPS``), each versioned in ``ROLLUP_VERSIONS`` (recorded in the run manifest
under ``standards``; bump a rollup's version whenever its rule or its code table changes):
  * ``race_ethnicity`` (default, "single category with Multiracial"): one stratum per member; a member
    with two or more minimum categories is "Multiracial"; Hispanic counts as a category.
  * ``race_aic_<category>`` ("alone or in combination", one per race category except Hispanic): the
    member is in "<category> alone or in combination" when the category is among their answers.
  * ``ethnicity`` ("Hispanic, any race"): Hispanic or Latino when any answer is Hispanic.

Legacy two-question data (separate race and Hispanic-ethnicity answers) is turned into the combined
code list by :func:`combine_two_question` before any rollup runs.
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
#: named rollups -> what they are (stratifier names; see the module docstring)
ROLLUPS: dict[str, str] = {
    "race_ethnicity": "single category with Multiracial (SPD 15 combined question)",
    **{f"race_aic_{k.lower()}": f"{v} alone or in combination" for k, v in CATEGORY_LABELS.items() if k != "HISPANIC"},
    "ethnicity": "Hispanic or Latino, any race",
}
#: rollup name -> version string, recorded in the run manifest (``standards.race_ethnicity_rollups``)
ROLLUP_VERSIONS: dict[str, str] = {name: ROLLUP_VERSION for name in ROLLUPS}
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


# ---------------------------------------------------------------------------------------------
# legacy two-question data -> combined SPD 15 code list

HISPANIC_CODE = "2135-2"
NOT_HISPANIC_CODE = "2186-5"
#: ethnicity answers (upper-cased, trimmed) read as Hispanic / not Hispanic besides CDC REC codes
HISPANIC_ANSWERS = frozenset({"Y", "YES", "H", "HISPANIC", "HISPANIC OR LATINO", "TRUE"})
NOT_HISPANIC_ANSWERS = frozenset({"N", "NO", "NH", "NOT HISPANIC", "NONHISPANIC", "NON-HISPANIC",
                                  "NOT HISPANIC OR LATINO", "FALSE", NOT_HISPANIC_CODE})
_CODE_RE = r"^[0-9]{4}-[0-9]$"


def combine_two_question(race: pl.Expr, ethnicity: pl.Expr) -> pl.Expr:
    """Legacy two-question answers -> the combined ``race_ethnicity_codes`` string of the members table.

    ``race``: CDC REC race codes separated by ``|``, ``,`` or ``;`` (``ASKU`` declined, ``UNK`` or
    empty unknown; unrecognised codes are dropped). ``ethnicity``: a CDC REC code (``2135-2`` or a
    Hispanic detail code such as ``2148-5``; ``2186-5`` Not Hispanic), ``Y``/``N`` (also yes/no,
    Hispanic/Not Hispanic, true/false, any case), ``ASKU``, or ``UNK``/empty.

    Result (codes ``|``-joined, race codes first, in the order given, duplicates dropped):

    * Hispanic: the race codes plus the ethnicity code (``2135-2`` for Y/yes): ``2106-3|2135-2``;
      with no known race just ``2135-2`` (the combined question has no "race unknown, Hispanic").
    * Not Hispanic: the race codes plus ``2186-5`` (which no rollup counts as a category, but which
      keeps the ``ethnicity`` rollup at "Not Hispanic or Latino" when the race is unknown).
    * Ethnicity declined or unknown: the race codes alone. Such a member reads as non-Hispanic in
      the ``race_ethnicity`` rollup (a known limit of the crosswalk, as of the combined question).
    * No race code and no Hispanic answer: ``ASKU`` when either answer was declined (and the
      ethnicity was not "not Hispanic"), else ``2186-5`` when not Hispanic, else ``UNK``.
      A declined race with a "not Hispanic" answer gives ``2186-5``: race_ethnicity Unknown,
      ethnicity Not Hispanic.
    """
    race_text = race.cast(pl.String).fill_null("").str.strip_chars().str.to_uppercase()
    eth = ethnicity.cast(pl.String).fill_null("").str.strip_chars().str.to_uppercase()
    codes = (
        race_text.str.replace_all(r"[,;\s]+", "|").str.split("|")
        .list.eval(pl.element().filter(
            pl.element().str.contains(_CODE_RE)
            & _category_expr(pl.element()).is_not_null()
            & (_category_expr(pl.element()) != "NOT_HISPANIC")
        ))
        .list.unique(maintain_order=True)
    )
    eth_is_code = eth.str.contains(_CODE_RE)
    eth_category = pl.when(eth_is_code).then(_category_expr(eth))
    hispanic_code = (pl.when(eth_is_code & (eth_category == "HISPANIC")).then(eth)
                     .when(eth.is_in(list(HISPANIC_ANSWERS))).then(pl.lit(HISPANIC_CODE)))
    not_hispanic = eth.is_in(list(NOT_HISPANIC_ANSWERS)) | (eth_is_code & (eth_category == "NOT_HISPANIC"))
    declined = (race_text == DECLINED_CODE) | (eth == DECLINED_CODE)
    with_eth = (
        pl.when(hispanic_code.is_not_null()).then(codes.list.concat(pl.concat_list(hispanic_code)))
        .when(not_hispanic).then(codes.list.concat(pl.concat_list(pl.lit(NOT_HISPANIC_CODE))))
        .otherwise(codes)
        .list.unique(maintain_order=True)
    )
    return (
        pl.when(hispanic_code.is_not_null() | (codes.list.len() > 0)).then(with_eth.list.join("|"))
        .when(not_hispanic).then(pl.lit(NOT_HISPANIC_CODE))
        .when(declined).then(pl.lit(DECLINED_CODE))
        .otherwise(pl.lit(UNKNOWN_CODE))
    )


def combine_two_question_value(race: str | None, ethnicity: str | None) -> str:
    """:func:`combine_two_question` for one member's answers (tests, one-off conversions)."""
    frame = pl.DataFrame({"race": [race], "ethnicity": [ethnicity]}, schema={"race": pl.String, "ethnicity": pl.String})
    return frame.select(combine_two_question(pl.col("race"), pl.col("ethnicity"))).item()
