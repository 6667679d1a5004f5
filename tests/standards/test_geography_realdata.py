"""Geography standards against the real public files in ../shared (RUCA ZIP table, SVI 2018, CMS RIF
samples) and Connecticut's county-equivalent change. Real-file tests skip when ../shared is absent."""
from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.attributes import county_context, svi_quintile_stratum
from equity_pipeline.standards.geography import (
    ISOLATED,
    LARGE_RURAL,
    RURAL,
    SMALL_RURAL,
    URBAN,
    clean_zip,
    read_ruca_zip,
    ruca_rurality,
    ssa_county_to_fips,
    ssa_to_fips,
    valid_county_fips,
    zip_rurality,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
GEO = SHARED / "geography"
RIF = SHARED / "claims" / "cms_ccw_rif_samples"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.name} not present (fresh clone without ../shared): the public file is unavailable")
    return path


@pytest.fixture(scope="module")
def ruca() -> pl.DataFrame:
    return read_ruca_zip(_need(GEO / "rural_urban_usda" / "RUCA2010zipcode.csv"))


def test_clean_zip_repairs_dirty_zips():
    dirty = ["2138", " 02138 ", "02138-1234", "021381234", "21381234", "''02138''", "2138.0", "0 2138",
             "12", "123456", "abcde", "", None]
    got = pl.DataFrame({"z": dirty}, schema={"z": pl.String}).select(clean_zip(pl.col("z")))["z"].to_list()
    assert got == ["02138"] * 8 + [None] * 5


def test_ruca_codes_to_four_levels_and_binary():
    codes = pl.DataFrame({"c": ["1", "1.1", "4.1", "10.1", "4", "6.1", "7", "8.2", "9.2", "10", "10.6", "99", None, "4.0"]})
    assert codes.select(ruca_rurality(pl.col("c")))["c"].to_list() == [
        URBAN, URBAN, URBAN, URBAN, LARGE_RURAL, LARGE_RURAL, SMALL_RURAL, SMALL_RURAL, SMALL_RURAL,
        ISOLATED, ISOLATED, "Unknown", "Unknown", LARGE_RURAL]


def test_real_ruca_file_is_cleaned_and_complete(ruca):
    path = GEO / "rural_urban_usda" / "RUCA2010zipcode.csv"
    with path.open(encoding="utf-8") as fh:
        raw = list(csv.DictReader(fh))
    assert all(r["ZIP_CODE"].startswith("''") for r in raw)  # the file's own dirt: ''00001''
    assert ruca.height == len(raw) == len(set(ruca["zip"]))
    assert ruca["zip"].str.contains(r"^[0-9]{5}$").all()
    # only RUCA 99 (no population) is Unknown
    unknown = {r["ZIP_CODE"].strip("'") for r in raw if r["RUCA2"].strip() == "99"}
    assert set(ruca.filter(pl.col("rurality") == "Unknown")["zip"]) == unknown and len(unknown) > 0
    assert set(ruca["rurality_binary"]) == {URBAN, RURAL, "Unknown"}
    assert {URBAN, LARGE_RURAL, SMALL_RURAL, ISOLATED} <= set(ruca["rurality"])


def test_zip_rurality_on_dirty_member_zips(ruca):
    zips = pl.DataFrame({"zip": ["2138", "02138-4321", " 06103", "59001", "99501 ", "1", None, "00000"]})
    got = zips.select(four=zip_rurality(pl.col("zip"), ruca), two=zip_rurality(pl.col("zip"), ruca, binary=True))
    # Cambridge MA, Hartford CT urban; 59001 (Absarokee MT) RUCA 10: isolated; Anchorage urban
    assert got["four"].to_list() == [URBAN, URBAN, URBAN, ISOLATED, URBAN, "Unknown", "Unknown", "Unknown"]
    assert got["two"].to_list() == [URBAN, URBAN, URBAN, RURAL, URBAN, "Unknown", "Unknown", "Unknown"]


def test_svi_minus_999_is_unknown_on_the_real_file():
    path = _need(GEO / "cdc_svi_2018_county" / "SVI2018_US_COUNTY.csv")
    svi = pl.read_csv(path, infer_schema_length=0).select(
        fips=pl.col("FIPS").str.zfill(5), rpl=pl.col("RPL_THEMES").cast(pl.Float64))
    missing = svi.filter(pl.col("rpl") == -999)
    assert missing.height > 0  # e.g. 35039 Rio Arriba NM
    strata = svi.with_columns(q=svi_quintile_stratum(pl.col("rpl")))
    assert set(strata.filter(pl.col("rpl") == -999)["q"]) == {"Unknown"}
    assert "Unknown" not in set(strata.filter(pl.col("rpl") != -999)["q"])
    # and through the packaged county table the pipeline actually uses
    packaged = county_context().filter(pl.col("county_fips").is_in(missing["fips"].to_list()))
    assert packaged.height == missing.height
    assert set(packaged.select(q=svi_quintile_stratum(pl.col("svi_2018_rpl_themes")))["q"]) == {"Unknown"}


def test_connecticut_planning_regions_by_measurement_year():
    assert "09001" not in valid_county_fips(2023) and "09110" in valid_county_fips(2023)
    assert "09001" in valid_county_fips(2021) and "09110" not in valid_county_fips(2021)
    ct_2023 = {f for f in valid_county_fips(2023) if f.startswith("09")}
    assert len(ct_2023) == 9 and all("110" <= f[2:] <= "190" for f in ct_2023)


def test_ssa_fips_crosswalk_packaged_matches_its_source():
    table = ssa_to_fips()
    assert table["22090"] == "25017" and table["22000"] == "25001"  # Middlesex, Barnstable MA
    assert table["07000"] == "09001"  # Connecticut keeps its pre-2022 counties in the SSA codes
    path = _need(GEO / "synthea_geography" / "fipscodes.csv")
    with path.open(encoding="utf-8") as fh:
        source = {(r["ssacounty"].zfill(5), r["fipscounty"].zfill(5)) for r in csv.DictReader(fh) if r["ssacounty"] and r["fipscounty"]}
    assert set(table.items()) == source


def test_ssa_codes_match_the_fips_on_real_rif_beneficiary_files():
    files = sorted(_need(RIF).glob("beneficiary_20*.csv"))
    assert files
    checked = 0
    for path in files:
        bene = pl.read_csv(path, separator="|", infer_schema_length=0, encoding="utf8-lossy")
        bene = bene.rename({c: c.lstrip("\ufeff") for c in bene.columns})
        got = bene.with_columns(fips=ssa_county_to_fips(pl.col("STATE_CODE"), pl.col("BENE_COUNTY_CD")))
        # the file's own FIPS state+county (January) is the truth where present
        known = got.filter(pl.col("FIPS_STATE_CNTY_JAN_CD").is_not_null())
        assert known["fips"].to_list() == known["FIPS_STATE_CNTY_JAN_CD"].to_list(), path.name
        assert got["fips"].null_count() == 0
        checked += known.height
    assert checked >= 2 * len(files)


def test_ssa_county_codes_3_digit_and_unknown():
    frame = pl.DataFrame({"state": ["22", "22", "7", "22", "22", None], "county": ["090", "90", "0", "999", "33090", "090"]})
    got = frame.select(f=ssa_county_to_fips(pl.col("state"), pl.col("county")))["f"].to_list()
    assert got == ["25017", "25017", "09001", None, None, None]
