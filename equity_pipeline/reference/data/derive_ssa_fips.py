"""Maintenance script (not imported): rebuild ``ssa_fips_county.csv`` from the shared real-data tables.

Run from the repository root with the shared folder beside it::

    python equity_pipeline/reference/data/derive_ssa_fips.py ../shared/realdata/geography

Source: Synthea's ZIP -> county crosswalk (``synthea_geography/fipscodes.csv``, Apache-2.0), which
carries, for every ZIP, the county FIPS code (``fipscounty``) and the SSA state+county code
(``ssacounty``) used by CMS files (CCW RIF ``STATE_CODE`` + ``BENE_COUNTY_CD``). Both lose their
leading zeros there, so they are zero-padded to 5 digits. This is the NBER SSA-FIPS county
crosswalk as Synthea packages it, not an official CMS release: its vintage is that of Synthea's
table (Connecticut's 8 counties, no planning regions; 06037 Los Angeles has two SSA codes).

Output columns: ``ssa_code`` (5 digits: SSA state 2 + county 3), ``county_fips`` (5 digits). One
row per SSA code; the script stops if an SSA code maps to more than one FIPS code.
"""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def main(geo: Path) -> None:
    raw = pl.read_csv(geo / "synthea_geography" / "fipscodes.csv", infer_schema_length=0)
    pairs = (
        raw.select(
            ssa_code=pl.col("ssacounty").str.strip_chars().str.zfill(5),
            county_fips=pl.col("fipscounty").str.strip_chars().str.zfill(5),
        )
        .drop_nulls()
        .filter(pl.col("ssa_code").str.contains(r"^[0-9]{5}$") & pl.col("county_fips").str.contains(r"^[0-9]{5}$"))
        .unique()
        .sort("ssa_code", "county_fips")
    )
    ambiguous = pairs.filter(pl.col("ssa_code").is_duplicated())
    if ambiguous.height:
        raise SystemExit(f"SSA codes with more than one FIPS code: {ambiguous['ssa_code'].unique().to_list()}")
    pairs.write_csv(Path(__file__).with_name("ssa_fips_county.csv"))
    print(pairs.height, "SSA county codes;", pairs["county_fips"].n_unique(), "FIPS counties")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/realdata/geography"))
