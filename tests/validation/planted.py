"""Hand-made text tables with planted defects, one set per suite, driven by the suite JSON.

For every row-level expectation of a suite, :func:`planted_table` adds rows that break exactly that
rule (a valid base row with one value changed), so every expectation has failing rows and a new
expectation in a suite gets a defect without touching this file (a test asserts the coverage).
Rows are text, as the reader delivers them; ``prepare`` then normalises and adds derived columns.

``divergence=True`` adds the edge cases on which the current polars evaluator and GX disagree
(see docs/validation.md, "Agreement"): non-ISO-but-strptime-valid dates, dates polars parses but
Python does not, invalid dates that sort outside a bound as strings, a ``NaN`` amount.
"""
from __future__ import annotations

from typing import Any

import polars as pl

from equity_pipeline.suites import load_suite

RUN_DATE = "2026-11-22"
VALID_FIPS = ["25017", "25025", "06037", "36061"]
PARAMETERS: dict[str, Any] = {"run_date": RUN_DATE, "valid_county_fips": VALID_FIPS}
KNOWN_MEMBERS = [f"MBR-ZX81-{i:04d}" for i in range(1, 13)]

#: distinctive PHI-like values: the auditor tests scan outputs for them
PHI_NAMES = ("Quinzella", "Vantongeren", "Brumbelow", "Okonkwo-Farrant")
PHI_BIRTH_DATES = ("1957-03-19", "1983-11-07", "1991-08-23")

#: one valid row per table (every contract column; optional ones filled so their rules are exercised)
BASE: dict[str, dict[str, str | None]] = {
    "members": {
        "member_id": KNOWN_MEMBERS[0], "race_ethnicity_codes": "2106-3|2135-2", "race_ethnicity_source": "self_reported",
        "language": "es-MX", "interpreter_needed": "N", "sex": "f", "birth_date": PHI_BIRTH_DATES[0], "death_date": None,
        "zip": "02139", "county_fips": "25017", "first_name": PHI_NAMES[0], "last_name": PHI_NAMES[1],
    },
    "enrollment": {
        "member_id": KNOWN_MEMBERS[0], "payer": "Medicaid", "line_of_business": "medicaid_managed_care", "plan_id": "PLAN-7",
        "dual_status": "none", "enrollment_start": "2022-01-01", "enrollment_end": "2026-06-30",
    },
    "medical_claims": {
        "claim_id": "CLM-000001", "claim_line": "1", "claim_version": "1", "claim_status": "Paid", "member_id": KNOWN_MEMBERS[0],
        "payer": "commercial", "claim_type": "institutional", "claim_from_date": "2025-03-01", "claim_thru_date": "2025-03-04",
        "admit_date": "2025-03-01", "discharge_date": "2025-03-04", "discharge_status": "01", "bill_type": "111",
        "place_of_service": "21", "revenue_code": "0450", "hcpcs_code": "77067", "hcpcs_modifier": "26",
        **{f"diagnosis_code_{i}": d for i, d in enumerate(["E11.9", "I10", "Z12.31", "J45.909", "E78.5", "N18.3", "F32.A", "Z79.4", "K21.9", "M54.5", "R07.9", "Z00.00"], start=1)},
        **{f"procedure_code_{i}": p for i, p in enumerate(["0SR9019", "0DTJ4ZZ", "5A1955Z", "3E0234Z", "BW28ZZZ", "0W9G3ZZ"], start=1)},
        "drg_code": "470", "billing_npi": "1234567893", "facility_ccn": "220071", "paid_amount": "1520.35", "allowed_amount": "1800.00",
    },
    "pharmacy_claims": {
        "claim_id": "RX-000001", "claim_version": "1", "claim_status": "paid", "member_id": KNOWN_MEMBERS[0], "payer": "medicare",
        "ndc": "00093505601", "fill_date": "2025-05-02", "days_supply": "30", "quantity": "30", "prescriber_npi": "1234567893",
        "paid_amount": "12.50",
    },
    "sdoh_screenings": {
        "member_id": KNOWN_MEMBERS[0], "screening_id": "SCR-1", "screening_date": "2025-04-10", "instrument": "AHC_HRSN",
        "question_code": "71802-3", "answer_code": "la31993-1", "answer_value": "I have a steady place to live", "setting": "Outpatient",
        "facility_ccn": "220071",
    },
    "clinical_observations": {
        "member_id": KNOWN_MEMBERS[0], "observation_date": "2025-06-01", "loinc_code": "4548-4", "value_numeric": "7.2",
        "unit": "%", "source_system": "EHR",
    },
    "providers": {
        "provider_id": "1234567893", "id_type": "NPI", "provider_type": "individual", "is_primary_care": "Y",
        "name": "Example Family Practice", "county_fips": "25017", "state": "ma",
    },
}

#: how a defect in a derived helper column is planted in the column it is computed from
DERIVED_SOURCES: dict[str, list[tuple[str, str]]] = {
    "_member_known": [("member_id", "MBR-ORPHAN-0001"), ("member_id", "MBR-ORPHAN-0002")],
    "_npi_check_digit_ok": [("billing_npi", "1234567890"), ("billing_npi", "1999999999")],
    "_prescriber_npi_check_digit_ok": [("prescriber_npi", "1234567890"), ("prescriber_npi", "1999999999")],
    # providers: provider_id is an NPI on rows with id_type npi (the base row's)
    "_provider_npi": [("provider_id", "12345"), ("provider_id", "0234567893"), ("provider_id", "１２３４５６７８９３")],
    "_provider_npi_check_digit_ok": [("provider_id", "1234567890"), ("provider_id", "1999999999")],
    "_paid_amount_num": [("paid_amount", "-5.00"), ("paid_amount", "9999999.99")],
    "_allowed_amount_num": [("allowed_amount", "-5.00"), ("allowed_amount", "9999999.99")],
}


def npi(body: str) -> str:
    """The NPI with the 9-digit ``body`` and its Luhn check digit (over the 80840 prefix)."""
    total = 0
    for i, d in enumerate(int(c) for c in reversed("80840" + body)):
        d = 2 * d if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def _date_defects(kw: dict[str, Any]) -> list[str]:
    out = []
    if kw.get("min_value") is not None:
        out.append("1850-06-01")
    if kw.get("max_value") is not None:
        out += ["2099-01-01", "2030-12-31"]
    return out


def _defects(e: dict[str, Any], date_cols: set[str]) -> list[dict[str, str | None]]:
    """Row patches that break expectation ``e`` and nothing else where possible."""
    t, kw = e["type"], e["kwargs"]
    col = kw.get("column")
    if col in DERIVED_SOURCES and t != "expect_column_values_to_be_between":
        return [{src: v} for src, v in DERIVED_SOURCES[col]]
    if t == "expect_column_values_to_not_be_null":
        return [{col: None}, {col: "   "}]
    if t == "expect_column_values_to_be_in_set":
        return [{col: "zz-not-allowed"}, {col: "  other-value "}]
    if t == "expect_column_values_to_match_regex":
        return [{col: "INVALID!"}, {col: "12345678901234567890"}, {col: "１２３４５"}]
    if t == "expect_column_values_to_match_strftime_format":
        return [{col: "2021-02-30"}, {col: "20210115"}, {col: "2021/01/15"}]
    if t == "expect_column_values_to_be_between":
        if col in DERIVED_SOURCES:
            return [{src: v} for src, v in DERIVED_SOURCES[col]]
        if col in date_cols:
            return [{col: v} for v in _date_defects(kw)]
        raise AssertionError(f"no planted defect for between on {col}")
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        return [{kw["column_A"]: "2001-01-01", kw["column_B"]: "2002-02-02"}, {kw["column_A"]: "2010-05-04", kw["column_B"]: "2010-05-05"}]
    if t == "expect_column_values_to_be_unique":
        # one id on rows that differ elsewhere: conflicting rows, not exact copies (a copy is duplicate_row)
        other = {"member_id": "last_name", "provider_id": "name"}[col]
        ids = ["DUP-0001", "DUP-0001", "DUP-0001", "DUP-0002", "DUP-0002"]
        return [{col: v, other: f"Variant {i}"} for i, v in enumerate(ids)]
    if t == "expect_column_to_exist":
        return []
    raise AssertionError(f"no planted defect for {t}")


def _divergences(e: dict[str, Any], date_cols: set[str]) -> list[dict[str, str | None]]:
    """Edge cases where the polars evaluator (as of rules.py in this commit) and GX disagree."""
    t, kw = e["type"], e["kwargs"]
    col = kw.get("column")
    if t == "expect_column_values_to_match_strftime_format":
        # polars' %Y-%m-%d parser accepts these; Python's strptime (GX) does not
        return [{col: "24-01-05"}, {col: "+2024-01-05"}, {col: "2024- 1-05"}, {col: "0000-01-05"}]
    if t == "expect_column_values_to_be_between" and col in date_cols:
        rows = []
        if kw.get("max_value") is not None:
            rows += [{col: "2026-2-1"}, {col: "2099-02-30"}]    # valid but not zero-padded; invalid but sorts after run_date
        if kw.get("min_value") is not None:
            rows += [{col: "1000-02-30"}]                       # invalid, sorts before the minimum as a string
        return rows
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = kw["column_A"], kw["column_B"]
        return [{a: "2020-02-30", b: "2021-01-01"}, {a: "2021-1-10", b: "2021-01-09"}]
    amounts = {"_paid_amount_num": "paid_amount", "_allowed_amount_num": "allowed_amount"}
    if t == "expect_column_values_to_be_between" and col in amounts:
        return [{amounts[col]: "NaN"}]
    return []


def planted_table(table: str, *, divergence: bool = False, valid_rows: int = 5) -> pl.DataFrame:
    """Text frame: ``valid_rows`` valid rows, then defect rows for every row-level expectation."""
    suite = load_suite(table)
    date_cols = {c.name for c in suite.columns if c.type == "date"}
    base = BASE[table]
    rows: list[dict[str, str | None]] = []
    key = suite.key[0] if table in ("members", "providers") else None
    for i in range(valid_rows):
        row = dict(base)
        if table == "members":
            row["member_id"] = KNOWN_MEMBERS[i % len(KNOWN_MEMBERS)]
            row["birth_date"] = PHI_BIRTH_DATES[i % len(PHI_BIRTH_DATES)]
            row["first_name"] = PHI_NAMES[i % len(PHI_NAMES)]
        elif table == "providers":
            row["provider_id"] = npi(f"1{i:08d}")  # valid NPIs (id_type NPI)
        elif "member_id" in row:
            row["member_id"] = KNOWN_MEMBERS[i % len(KNOWN_MEMBERS)]
        rows.append(row)
    n = 0
    for e in suite.expectations:
        patches = _defects(e, date_cols) + (_divergences(e, date_cols) if divergence else [])
        for patch in patches:
            n += 1
            row = dict(base)
            if key:  # keep the table's unique key unique (and a valid NPI for providers) unless the patch is about it
                row[key] = npi(f"2{n:08d}") if table == "providers" else f"K-{table[:3].upper()}-{n:05d}"
            row.update(patch)
            rows.append(row)
    cols = list(suite.column_names)
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in cols}, schema={c: pl.String for c in cols})


def known_members_frame() -> pl.LazyFrame:
    return pl.LazyFrame({"member_id": KNOWN_MEMBERS})
