"""The real counties and ZIP codes members live in (``data/geography.csv``, derived by ``data/derive_geography.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

GEOGRAPHY_CSV = Path(__file__).with_name("data") / "geography.csv"

# Share of members per state, and the CMS two-digit state code used as the first digits of a CCN.
STATE_SHARE: dict[str, float] = {"MD": 0.35, "NY": 0.30, "NM": 0.20, "HI": 0.15}
CCN_STATE_CODE: dict[str, str] = {"MD": "21", "NY": "33", "NM": "32", "HI": "12"}


@dataclass(frozen=True)
class Geography:
    county_fips: np.ndarray    # str, one per county
    county_name: np.ndarray    # str
    county_state: np.ndarray   # str (USPS)
    population: np.ndarray     # int
    weight: np.ndarray         # probability a member lives in the county
    zip_codes: np.ndarray      # str, grouped by county
    zip_offsets: np.ndarray    # county c owns zip_codes[zip_offsets[c]:zip_offsets[c+1]]

    @property
    def n_counties(self) -> int:
        return len(self.county_fips)

    def short_name(self, c: int) -> str:
        name = str(self.county_name[c])
        if name.endswith(" city"):
            return name.replace(" city", " City")
        return name.replace(" County", "")


@lru_cache(maxsize=1)
def load_geography() -> Geography:
    rows = pl.read_csv(GEOGRAPHY_CSV, infer_schema_length=0).sort("state", "county_fips", "zip")
    counties = (
        rows.group_by("county_fips", maintain_order=True)
        .agg(pl.col("county_name").first(), pl.col("state").first(), pl.col("population").first().cast(pl.Int64),
             pl.len().alias("n_zips"))
    )
    state_pop = counties.group_by("state").agg(pl.col("population").sum().alias("state_pop"))
    counties = counties.join(state_pop, on="state", maintain_order="left").with_columns(
        weight=pl.col("population") / pl.col("state_pop") * pl.col("state").replace_strict(STATE_SHARE)
    )
    weight = counties["weight"].to_numpy().astype(float)
    offsets = np.concatenate([[0], np.cumsum(counties["n_zips"].to_numpy())]).astype(np.int64)
    return Geography(
        county_fips=counties["county_fips"].to_numpy().astype(str),
        county_name=counties["county_name"].to_numpy().astype(str),
        county_state=counties["state"].to_numpy().astype(str),
        population=counties["population"].to_numpy(),
        weight=weight / weight.sum(),
        zip_codes=rows["zip"].to_numpy().astype(str),
        zip_offsets=offsets,
    )


def valid_county_fips() -> frozenset[str]:
    """County FIPS codes the generator uses for clean records."""
    return frozenset(load_geography().county_fips.tolist())
