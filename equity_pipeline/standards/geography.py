"""County FIPS validity by measurement year, and state codes.

County lists come from the ``addfips`` package (Census county files for 2000, 2010, 2015, 2020),
so validation works offline. Connecticut replaced its 8 counties (09001-09015) with 9 planning
regions (09110-09190) as county-equivalents from 2022: for measurement years 2022 on, the old
codes are invalid and the planning regions valid (``reference/data/ct_planning_regions.csv``).
"""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from pathlib import Path

import addfips

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
