"""Maintenance script (not imported): rebuild ``county_context.csv`` from the shared real-data tables.

Run from the repository root with the shared folder beside it::

    python equity_pipeline/reference/data/derive_county_context.py ../shared/realdata/geography

Sources (public domain):

* USDA ERS Rural-Urban Continuum Codes 2013 (``rural_urban_usda/ruralurbancodes2013.csv``; FIPS
  written without leading zeros, so they are zero-padded here), column ``RUCC2013`` (1-9).
* CDC/ATSDR Social Vulnerability Index 2018, county, US-wide percentile ranks
  (``cdc_svi_2018_county/SVI2018_US_COUNTY.csv``), column ``RPL_THEMES`` (overall rank 0-1;
  ``-999`` = missing, kept as written).

Output columns: ``county_fips`` (5 digits), ``rucc_2013`` (empty when the county has no code),
``svi_2018_rpl_themes`` (empty when the county is not in the SVI file; -999 kept). One row per
county FIPS found in either file. Two counties renamed between the vintages keep one code set
under the FIPS valid since 2015 (RUCC 2013 predates the change): 46113 Shannon -> 46102 Oglala
Lakota (SD), 02270 Wade Hampton -> 02158 Kusilvak (AK).
"""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

RENAMED = {"46113": "46102", "02270": "02158"}


def main(geo: Path) -> None:
    rucc = pl.read_csv(geo / "rural_urban_usda" / "ruralurbancodes2013.csv", infer_schema_length=0).select(
        county_fips=pl.col("FIPS").str.strip_chars().str.zfill(5).replace(RENAMED),
        rucc_2013=pl.col("RUCC2013").str.strip_chars().cast(pl.Int8),
    )
    svi = pl.read_csv(geo / "cdc_svi_2018_county" / "SVI2018_US_COUNTY.csv", infer_schema_length=0).select(
        county_fips=pl.col("FIPS").str.strip_chars().str.zfill(5),
        svi_2018_rpl_themes=pl.col("RPL_THEMES").str.strip_chars().cast(pl.Float64),
    )
    out = rucc.join(svi, on="county_fips", how="full", coalesce=True).sort("county_fips")
    dup = out.filter(pl.col("county_fips").is_duplicated())
    if dup.height:
        raise SystemExit(f"duplicate county FIPS after the merge: {dup['county_fips'].unique().to_list()}")
    out.write_csv(Path(__file__).with_name("county_context.csv"))
    print(out.height, "counties;", out["rucc_2013"].null_count(), "without RUCC;",
          out["svi_2018_rpl_themes"].null_count(), "without SVI")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/realdata/geography"))
