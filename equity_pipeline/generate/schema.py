"""Output tables and their columns, in the order of the input contract (``expectations/<table>.json``).

The contract files live outside the package, so the column lists are repeated here and a test
(``tests/generate/test_contract.py``) checks them against ``meta.columns`` of every suite.
Every column is written as a string (parquet ``string``; CSV text), so both formats read the same way.
"""
from __future__ import annotations

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "members": (
        "member_id", "race_ethnicity_codes", "race_ethnicity_source", "language", "interpreter_needed",
        "disability", "sex", "birth_date", "death_date", "zip", "county_fips", "first_name", "last_name",
    ),
    "enrollment": (
        "member_id", "payer", "line_of_business", "plan_id", "dual_status", "enrollment_start", "enrollment_end",
    ),
    "medical_claims": (
        "claim_id", "claim_line", "claim_version", "claim_status", "member_id", "payer", "claim_type",
        "claim_from_date", "claim_thru_date", "admit_date", "discharge_date", "discharge_status", "bill_type",
        "place_of_service", "revenue_code", "hcpcs_code", "hcpcs_modifier", "snomed_code",
        *(f"diagnosis_code_{i}" for i in range(1, 13)),
        *(f"procedure_code_{i}" for i in range(1, 7)),
        "drg_code", "billing_npi", "facility_ccn", "paid_amount", "allowed_amount",
    ),
    "pharmacy_claims": (
        "claim_id", "claim_version", "claim_status", "member_id", "payer", "ndc", "fill_date", "days_supply",
        "quantity", "prescriber_npi", "paid_amount",
    ),
    "sdoh_screenings": (
        "member_id", "screening_id", "screening_date", "instrument", "question_code", "answer_code",
        "answer_value", "setting", "facility_ccn",
    ),
    "clinical_observations": (
        "member_id", "observation_date", "loinc_code", "value_numeric", "unit", "source_system",
    ),
    "providers": ("provider_id", "id_type", "provider_type", "is_primary_care", "name", "county_fips", "state"),
}
TABLES: tuple[str, ...] = tuple(TABLE_COLUMNS)
DX_COLUMNS: tuple[str, ...] = tuple(f"diagnosis_code_{i}" for i in range(1, 13))
PCS_COLUMNS: tuple[str, ...] = tuple(f"procedure_code_{i}" for i in range(1, 7))
