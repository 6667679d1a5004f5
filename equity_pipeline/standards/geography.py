"""County FIPS validity by measurement year, and state codes.

County lists come from the ``addfips`` package (Census county files for 2000, 2010, 2015, 2020),
so validation works offline. Connecticut replaced its 8 counties (09001-09015) with 9 planning
regions (09110-09190) as county-equivalents from 2022: for measurement years 2022 on, the old
codes are invalid and the planning regions valid (``reference/data/ct_planning_regions.csv``).

Also: dirty ZIP cleaning and ZIP -> RUCA rurality (:func:`zip_rurality`, USDA ERS RUCA 2010 read
from the public file with :func:`read_ruca_zip`), and CMS RIF SSA state+county codes -> county FIPS
(:func:`ssa_county_to_fips`, ``reference/data/ssa_fips_county.csv``).
"""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from pathlib import Path

import addfips
import polars as pl

CT_COUNTY_CODES_BEFORE_2022 = {"09001", "09003", "09005", "09007", "09009", "09011", "09013", "09015"}


def _addfips_data(name: str) -> Path:
    return Path(addfips.__file__).resolve().parent / "data" / name


def _vintage(year: int) -> int:
    if year < 2010:
        return 2000
    if year < 2015:
        return 2010
    if year < 2020:
        return 2015
    return 2020


@lru_cache(maxsize=None)
def county_names(year: int) -> dict[str, str]:
    """County FIPS -> county name for counties valid in ``year``."""
    out: dict[str, str] = {}
    with _addfips_data(f"counties_{_vintage(year)}.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["statefp"].zfill(2) + row["countyfp"].zfill(3)] = row["name"]
    if year >= 2022:
        for code in CT_COUNTY_CODES_BEFORE_2022:
            out.pop(code, None)
        path = resources.files("equity_pipeline.reference") / "data" / "ct_planning_regions.csv"
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                out[row["fips"]] = row["name"]
    return out


def valid_county_fips(year: int) -> list[str]:
    return sorted(county_names(year))


@lru_cache(maxsize=1)
def state_postal_by_fips() -> dict[str, str]:
    with _addfips_data("states.csv").open(encoding="utf-8") as fh:
        return {row["fips"].zfill(2): row["postal"] for row in csv.DictReader(fh)}


# ---------------------------------------------------------------------------------------------
# ZIP codes and RUCA rurality

URBAN, LARGE_RURAL, SMALL_RURAL, ISOLATED = "Urban", "Large rural city/town", "Small rural town", "Isolated small rural town"
RURAL = "Rural"
RUCA_UNKNOWN = "Unknown"
#: RUCA 2010 secondary code -> four-level rurality (WWAMI Rural Health Research Center
#: "categorization C"); codes not listed (99 = no population, anything else) -> Unknown
RUCA_FOUR_LEVEL: dict[str, str] = {
    **{c: URBAN for c in ("1", "1.1", "2", "2.1", "3", "4.1", "5.1", "7.1", "8.1", "10.1")},
    **{c: LARGE_RURAL for c in ("4", "4.2", "5", "5.2", "6", "6.1")},
    **{c: SMALL_RURAL for c in ("7", "7.2", "7.3", "7.4", "8", "8.2", "8.3", "8.4", "9", "9.1", "9.2")},
    **{c: ISOLATED for c in ("10", "10.2", "10.3", "10.4", "10.5", "10.6")},
}
#: four-level -> binary (urban / rural): every rural level is Rural
RUCA_BINARY: dict[str, str] = {URBAN: URBAN, LARGE_RURAL: RURAL, SMALL_RURAL: RURAL, ISOLATED: RURAL}


def clean_zip(zip_code: pl.Expr) -> pl.Expr:
    """5-digit ZIP from a dirty ZIP text, null when it cannot be one.

    Removes quotes, spaces and a trailing ``.0`` (a ZIP read as a number); ZIP+4 (``02138-1234`` or
    9 digits) keeps the first 5 digits; 3-4 digits (leading zeros lost: ``2138``) and 8 digits (a
    ZIP+4 that lost its leading zero) are zero-padded first. Any other length -> null."""
    text = (zip_code.cast(pl.String).str.replace_all(r"[\s'\"]", "").str.replace(r"\.0+$", "")
            .str.replace(r"^([0-9]{3,5})-([0-9]{4})$", "${1}${2}"))
    digits = pl.when(text.str.contains(r"^[0-9]+$")).then(text)
    n = digits.str.len_chars()
    return (
        pl.when(n.is_between(3, 5)).then(digits.str.zfill(5))
        .when(n.is_between(8, 9)).then(digits.str.zfill(9).str.slice(0, 5))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def read_ruca_zip(path: str | Path) -> pl.DataFrame:
    """USDA ERS RUCA 2010 ZIP table (``RUCA2010zipcode.csv``) -> ``zip`` (clean 5 digits), ``ruca2``
    (secondary code as text, ``10.2``), ``rurality`` (four levels) and ``rurality_binary``. The file's
    ZIPs are quoted as ``''00001''``; they go through :func:`clean_zip`."""
    raw = pl.read_csv(path, infer_schema_length=0, encoding="utf8-lossy")
    return (
        raw.select(zip=clean_zip(pl.col("ZIP_CODE")), ruca2=pl.col("RUCA2").str.strip_chars().str.replace(r"\.0+$", ""))
        .drop_nulls("zip")
        .unique("zip", keep="first", maintain_order=True)
        .with_columns(rurality=ruca_rurality(pl.col("ruca2")))
        .with_columns(rurality_binary=ruca_binary(pl.col("rurality")))
    )


def ruca_rurality(ruca2: pl.Expr) -> pl.Expr:
    """RUCA secondary code (text or number) -> Urban / Large rural city/town / Small rural town /
    Isolated small rural town; 99, missing or unknown codes -> Unknown."""
    code = ruca2.cast(pl.String).str.strip_chars().str.replace(r"\.0+$", "")
    return code.replace_strict(RUCA_FOUR_LEVEL, default=RUCA_UNKNOWN, return_dtype=pl.String).fill_null(RUCA_UNKNOWN)


def ruca_binary(rurality: pl.Expr) -> pl.Expr:
    """Four-level rurality -> Urban / Rural (Unknown stays Unknown)."""
    return rurality.replace_strict(RUCA_BINARY, default=RUCA_UNKNOWN, return_dtype=pl.String)


def zip_rurality(zip_code: pl.Expr, ruca: pl.DataFrame, *, binary: bool = False) -> pl.Expr:
    """Rurality of a (dirty) ZIP through the table from :func:`read_ruca_zip`; a ZIP that cannot be
    cleaned or is not in the table -> Unknown."""
    column = "rurality_binary" if binary else "rurality"
    mapping = dict(zip(ruca["zip"].to_list(), ruca[column].to_list()))
    return clean_zip(zip_code).replace_strict(mapping, default=RUCA_UNKNOWN, return_dtype=pl.String).fill_null(RUCA_UNKNOWN)


# ---------------------------------------------------------------------------------------------
# CMS (SSA) state + county codes -> county FIPS


@lru_cache(maxsize=1)
def ssa_to_fips() -> dict[str, str]:
    """SSA state+county code (5 digits) -> county FIPS, from ``reference/data/ssa_fips_county.csv``
    (derived from Synthea's NBER-based crosswalk by ``derive_ssa_fips.py``; see its docstring)."""
    path = resources.files("equity_pipeline.reference") / "data" / "ssa_fips_county.csv"
    with path.open(encoding="utf-8") as fh:
        return {row["ssa_code"]: row["county_fips"] for row in csv.DictReader(fh)}


def ssa_county_to_fips(state_code: pl.Expr, county_code: pl.Expr) -> pl.Expr:
    """County FIPS from CMS RIF SSA codes: ``STATE_CODE`` (2 digits) and ``BENE_COUNTY_CD`` (3-digit
    SSA county, or 5 digits already starting with the state code, as in the CCW RIF samples).
    Leading zeros lost in either are restored; unknown or malformed codes -> null."""
    state = state_code.cast(pl.String).str.strip_chars().str.zfill(2)
    county = county_code.cast(pl.String).str.strip_chars()
    full = (pl.when(county.str.len_chars() == 5).then(county)
            .when(county.str.len_chars().is_between(1, 3)).then(state + county.str.zfill(3)))
    full = pl.when(full.str.contains(r"^[0-9]{5}$") & (full.str.slice(0, 2) == state)).then(full)
    return full.replace_strict(ssa_to_fips(), default=None, return_dtype=pl.String)
