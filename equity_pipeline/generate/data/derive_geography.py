"""Maintenance script (not imported): rebuild ``geography.csv`` from the shared real-data tables.

Run from the repository root with the shared folder beside it::

    python equity_pipeline/generate/data/derive_geography.py ../shared/realdata/geography

Sources (all public): county names from the Census 2020 county list (addfips package data), county
population from CDC/ATSDR SVI 2018 (``E_TOTPOP``), ZIP -> county from the Synthea geography crosswalk,
kept only when the ZIP is also a ZCTA (a residential ZIP, not a PO-box-only one) and lies in the
county's state ZIP range. At most ``ZIPS_PER_COUNTY`` ZIPs per county, the lowest numbers first.
"""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

COUNTIES = [
    # Maryland: urban core, suburbs, rural west and Eastern Shore
    "24510", "24005", "24033", "24031", "24003", "24027", "24001", "24039",
    # New York: the Bronx and the Hudson Valley
    "36005", "36119", "36071", "36087", "36027", "36111", "36105",
    # New Mexico: Albuquerque, Santa Fe, Las Cruces, Navajo Nation border counties
    "35001", "35049", "35013", "35031", "35045", "35043", "35061",
    # Hawaii
    "15003", "15001", "15009", "15007",
]
STATE_ZIP_PREFIX = {"24": ("20", "21"), "36": ("10", "11", "12", "13", "14"), "35": ("87", "88"), "15": ("967", "968")}
STATE_ABBR = {"24": "MD", "36": "NY", "35": "NM", "15": "HI"}
ZIPS_PER_COUNTY = 8


def main(geo: Path) -> None:
    counties = (
        pl.read_csv(geo / "county_fips" / "counties_2020.csv", infer_schema_length=0)
        .with_columns(county_fips=pl.col("statefp") + pl.col("countyfp"))
        .filter(pl.col("county_fips").is_in(COUNTIES))
        .select("county_fips", county_name="name")
        .unique("county_fips", keep="first", maintain_order=True)  # 36005 has two aliases
    )
    pop = pl.read_csv(geo / "cdc_svi_2018_county" / "SVI2018_US_COUNTY.csv", infer_schema_length=0).select(
        county_fips=pl.col("FIPS").str.zfill(5), population=pl.col("E_TOTPOP").cast(pl.Int64)
    )
    zcta = pl.read_csv(geo / "synthea_geography" / "zipcodes.csv", infer_schema_length=0).select(
        zip=pl.col("ZCTA5").str.zfill(5)
    ).drop_nulls().unique()
    zips = (
        pl.read_csv(geo / "synthea_geography" / "fipscodes.csv", infer_schema_length=0)
        .select(zip=pl.col("zip").str.zfill(5), county_fips=pl.col("fipscounty").str.zfill(5))
        .filter(pl.col("county_fips").is_in(COUNTIES))
        .join(zcta, on="zip", how="semi")
        .unique()
    )
    rows = []
    for fips in COUNTIES:
        st = fips[:2]
        in_state = pl.any_horizontal([pl.col("zip").str.starts_with(p) for p in STATE_ZIP_PREFIX[st]])
        z = zips.filter(pl.col("county_fips") == fips, in_state)
        rows.append(z.sort("zip").head(ZIPS_PER_COUNTY))
    out = (
        pl.concat(rows)
        .join(counties, on="county_fips")
        .join(pop, on="county_fips")
        .with_columns(state=pl.col("county_fips").str.slice(0, 2).replace_strict(STATE_ABBR))
        .select("state", "county_fips", "county_name", "population", "zip")
        .sort("state", "county_fips", "zip")
    )
    out.write_csv(Path(__file__).with_name("geography.csv"))
    print(out.group_by("state").agg(pl.col("county_fips").n_unique(), pl.len()))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/realdata/geography"))
