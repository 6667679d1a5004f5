"""The packaged county table (RUCC 2013, SVI 2018) against the public files it was derived from."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from equity_pipeline.attributes import county_context

GEO = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "geography"


@pytest.fixture
def geo() -> Path:
    if not GEO.is_dir():
        pytest.skip("../shared not present (fresh clone): the public RUCC/SVI files are unavailable")
    return GEO


def test_county_context_matches_the_public_files(geo):
    with (geo / "rural_urban_usda" / "ruralurbancodes2013.csv").open(encoding="utf-8") as fh:
        rucc = {row["FIPS"].strip().zfill(5): int(row["RUCC2013"]) for row in csv.DictReader(fh)}
    with (geo / "cdc_svi_2018_county" / "SVI2018_US_COUNTY.csv").open(encoding="utf-8") as fh:
        svi = {row["FIPS"].strip().zfill(5): float(row["RPL_THEMES"]) for row in csv.DictReader(fh)}
    renamed = {"46113": "46102", "02270": "02158"}  # same county, new FIPS (documented in the derive script)
    for old, new in renamed.items():
        rucc[new] = rucc.pop(old)
    packaged = {r["county_fips"]: (r["rucc_2013"], r["svi_2018_rpl_themes"]) for r in county_context().iter_rows(named=True)}
    assert set(packaged) == set(rucc) | set(svi)
    for fips, (code, rank) in packaged.items():
        assert code == rucc.get(fips), fips
        assert rank == svi.get(fips), fips
    # the boundary counties the attribute tests rely on
    assert (rucc["08039"], svi["08039"]) == (1, 0.0)
    assert (rucc["55119"], svi["55119"]) == (6, 0.2)
    assert (rucc["47087"], svi["47087"]) == (8, 0.6)
    assert (rucc["48047"], svi["48047"]) == (7, 1.0)
    assert (rucc["35039"], svi["35039"]) == (4, -999.0)
