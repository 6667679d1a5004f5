"""End to end on a hand-built dataset: the Dagster graph runs and the counts make sense."""
from __future__ import annotations

import json

import polars as pl

from equity_pipeline.cli import run_pipeline
from tests.builders import claim, member, span, write_table


def test_small_run(tmp_path):
    inp = tmp_path / "in"
    members = [member(f"M{i:03d}") for i in range(30)] + [member("M900", sex="M"), member("BAD", birth_date="2030-01-01")]
    write_table(inp, "members", members)
    write_table(inp, "enrollment", [span(m["member_id"]) for m in members])
    claims = [claim(f"M{i:03d}", "2025-03-01", hcpcs="77067") for i in range(0, 30, 2)]
    claims.append(claim("GHOST", "2025-03-01", hcpcs="77067"))
    write_table(inp, "medical_claims", claims)
    out = tmp_path / "out"
    run_pipeline(inp, out, run_date="2026-11-22")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tables"]["members"] == {**manifest["tables"]["members"], "read": 32, "used": 31, "quarantined": 1}
    assert manifest["tables"]["medical_claims"]["quarantined"] == 1
    bcs = manifest["measures"]["BCS"]
    assert bcs["denominator"] == 30 and bcs["numerator"] == 15
    rates = pl.read_parquet(out / "public" / "rates.parquet")
    overall = rates.filter((pl.col("stratifier") == "overall") & (pl.col("unit_level") == "population")).row(0, named=True)
    assert overall["denominator"] == 30 and overall["numerator"] == 15
    assert (out / "report" / "index.html").is_file()
