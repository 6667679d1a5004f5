"""Hand-built canonical tables for tests: write only the columns a test cares about."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from equity_pipeline.suites import load_suite


def write_table(folder: Path, table: str, rows: list[dict], fmt: str = "csv") -> Path:
    """Write ``rows`` as ``table`` with every contract column (missing ones empty)."""
    suite = load_suite(table)
    cols = list(suite.column_names)
    data = {c: [None if r.get(c) is None else str(r.get(c)) for r in rows] for c in cols}
    df = pl.DataFrame(data, schema={c: pl.String for c in cols})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.{fmt}"
    if fmt == "csv":
        df.write_csv(path)
    else:
        df.write_parquet(path)
    return path


def member(member_id: str, **kw) -> dict:
    base = {"member_id": member_id, "race_ethnicity_codes": "2106-3", "race_ethnicity_source": "self_reported",
            "language": "en", "interpreter_needed": "false", "sex": "F", "birth_date": "1960-06-15",
            "zip": "02139", "county_fips": "25017"}
    base.update(kw)
    return base


def span(member_id: str, start: str = "2022-01-01", end: str | None = "2026-12-31", payer: str = "commercial", **kw) -> dict:
    return {"member_id": member_id, "payer": payer, "line_of_business": "commercial_group", "dual_status": "none",
            "enrollment_start": start, "enrollment_end": end, **kw}


_claim_counter = iter(range(1, 10_000_000))


def claim(member_id: str, date: str, *, hcpcs: str | None = None, dx: str = "Z1231", **kw) -> dict:
    n = next(_claim_counter)
    base = {"claim_id": f"C{n:07d}", "claim_line": "1", "claim_version": "1", "claim_status": "paid",
            "member_id": member_id, "payer": "commercial", "claim_type": "professional", "claim_from_date": date,
            "claim_thru_date": date, "place_of_service": "11", "hcpcs_code": hcpcs, "diagnosis_code_1": dx,
            "billing_npi": "1234567893", "paid_amount": "120.00", "allowed_amount": "150.00"}
    base.update(kw)
    return base
