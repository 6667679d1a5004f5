"""Each collection standard on real public files from ../shared/realdata, mapped column by column.

The files are Synthea and Tuva synthetic-but-realistic outputs in their own layouts; each test renames
their columns to the canonical contract (values untouched) and checks that GX and the polars evaluator
agree per expectation, plus what the standard should say about a known quirk of the source (Synthea
race words are not CDC REC codes, Synthea observation times are not YYYY-MM-DD dates, ...). The last
test scans the auditor view built from real patients for their names, ids and birth dates.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.suites import load_suite
from equity_pipeline.validation import gx_runner
from equity_pipeline.validation.auditor import write_auditor_view
from tests.validation import planted
from tests.validation.test_gx_agreement import _parameters, polars_counts

PARAMS = _parameters(2025, planted.RUN_DATE)

#: source file (under realdata/) and canonical column <- source column, per standard
MAPPINGS: dict[str, tuple[str, dict[str, str]]] = {
    "members": ("synthea/ma555_partial/csv/patients.csv", {
        "member_id": "Id", "race_ethnicity_codes": "RACE", "sex": "GENDER", "birth_date": "BIRTHDATE",
        "death_date": "DEATHDATE", "zip": "ZIP", "county_fips": "FIPS", "first_name": "FIRST", "last_name": "LAST",
    }),
    "enrollment": ("claims/tuva_synthetic_claims/eligibility_seed.csv", {
        "member_id": "member_id", "payer": "payer", "plan_id": "plan", "dual_status": "dual_status_code",
        "enrollment_start": "enrollment_start_date", "enrollment_end": "enrollment_end_date",
    }),
    "medical_claims": ("claims/tuva_synthetic_claims/medical_claim_seed.csv", {
        "claim_id": "claim_id", "claim_line": "claim_line_number", "member_id": "member_id", "payer": "payer",
        "claim_type": "claim_type", "claim_from_date": "claim_start_date", "claim_thru_date": "claim_end_date",
        "admit_date": "admission_date", "discharge_date": "discharge_date", "discharge_status": "discharge_disposition_code",
        "bill_type": "bill_type_code", "place_of_service": "place_of_service_code", "revenue_code": "revenue_center_code",
        "hcpcs_code": "hcpcs_code", "hcpcs_modifier": "hcpcs_modifier_1", "drg_code": "drg_code", "billing_npi": "billing_npi",
        "paid_amount": "paid_amount", "allowed_amount": "allowed_amount",
        **{f"diagnosis_code_{i}": f"diagnosis_code_{i}" for i in range(1, 13)},
    }),
    "pharmacy_claims": ("claims/tuva_synthetic_claims/pharmacy_claim_seed.csv", {
        "claim_id": "claim_id", "member_id": "member_id", "payer": "payer", "ndc": "ndc_code", "fill_date": "dispensing_date",
        "days_supply": "days_supply", "quantity": "quantity", "prescriber_npi": "prescribing_provider_npi", "paid_amount": "paid_amount",
    }),
    "clinical_observations": ("synthea/ca59_with_fhir/csv/observations.csv", {
        "member_id": "PATIENT", "observation_date": "DATE", "loinc_code": "CODE", "value_numeric": "VALUE", "unit": "UNITS",
    }),
}


#: required columns the source does not have, filled with one constant
CONSTANTS: dict[str, dict[str, str]] = {
    "members": {"race_ethnicity_source": "self_reported"},
    "clinical_observations": {"source_system": "ehr"},
}


def canonical(realdata: Path, table: str) -> pl.DataFrame:
    source, mapping = MAPPINGS[table]
    raw = pl.read_csv(realdata / source, infer_schema=False)
    consts = [pl.lit(v).alias(k) for k, v in CONSTANTS.get(table, {}).items()]
    return raw.select([pl.col(src).alias(dst) for dst, src in mapping.items()] + consts)


def check_agreement(table: str, frame: pl.DataFrame, outcomes: list[dict]) -> dict[str, int]:
    current = polars_counts(table, frame, PARAMS)
    for o in outcomes:
        if o["type"] in gx_runner.STRUCTURAL_TYPES:
            assert o["success"] is True, o["rule"]
            continue
        assert o["error"] is None, (o["rule"], o["error"])
        assert current[o["index"]] == o["unexpected_count"], o["rule"]
    by_rule: dict[str, int] = {}
    for o in outcomes:
        by_rule[o["rule"]] = by_rule.get(o["rule"], 0) + (o["unexpected_count"] or 0)
    return by_rule


@pytest.mark.parametrize("table", list(MAPPINGS))
def test_standard_on_real_file(realdata, gx_ctx, table):
    raw = canonical(realdata, table)
    known = None
    if table in ("enrollment", "medical_claims", "pharmacy_claims"):
        known = canonical(realdata, "enrollment").select("member_id").lazy()  # Tuva members
    elif table == "clinical_observations":
        known = pl.read_csv(realdata / "synthea/ca59_with_fhir/csv/patients.csv", infer_schema=False).select(member_id="Id").lazy()
    frame = gx_runner.prepare(table, raw, known_members=known).collect()
    outcomes = gx_runner.run_suite(table, frame, PARAMS, context=gx_ctx)
    fails = check_agreement(table, frame, outcomes)
    n = frame.height
    if table == "members":
        # Synthea race is a word (white, black, asian, ...), not a CDC REC code: every member is flagged
        assert fails["invalid_race_ethnicity_codes"] == n
        assert fails["invalid_sex"] == 0                       # Synthea F/M
        assert fails["invalid_county_fips_format"] == 0         # blank FIPS is empty, not malformed
    elif table == "enrollment":
        assert fails["orphan_member"] == 0 and fails["invalid_payer"] == 0
    elif table == "medical_claims":
        assert fails["invalid_icd10cm"] == 0 and fails["invalid_claim_type"] == 0  # real ICD-10-CM without dots
        assert fails["orphan_member"] == 0
    elif table == "pharmacy_claims":
        assert fails["invalid_ndc"] == 0                         # 11-digit NDCs
    elif table == "clinical_observations":
        # Synthea observation DATE is an ISO timestamp (2021-08-23T03:26:50Z), not a YYYY-MM-DD date
        assert fails["invalid_date_observation_date"] == n
        assert fails["future_observation_date"] == 0            # so it is not compared with the run date either
        assert fails["orphan_member"] == 0


def test_auditor_view_of_real_patients_holds_no_phi(realdata, gx_ctx, tmp_path):
    """Real Synthea patients (ids, names, birth dates): none of them on the auditor page or in its JSON."""
    from equity_pipeline.validation.ingest import ingest_table

    inp, out = tmp_path / "input", tmp_path / "out"
    inp.mkdir()
    raw = canonical(realdata, "members")
    raw.write_csv(inp / "members.csv")
    result = ingest_table("members", inp, out / "restricted", parameters=PARAMS).to_dict()
    gx = gx_runner.run_table("members", inp, PARAMS, context=gx_ctx)
    path = write_auditor_view(out, {"members": result}, {"members": gx})
    texts = [path.read_text(), (out / "validation" / "validation_report.json").read_text()]
    phi = set()
    for col in ("member_id", "first_name", "last_name", "birth_date", "death_date"):
        phi.update(v for v in raw[col].drop_nulls().to_list() if len(v) >= 4)
    assert len(phi) > 1000
    for text in texts:
        leaked = sorted(v for v in phi if v in text)
        assert leaked == [], leaked[:5]
    assert result["read"] == result["used"] + result["quarantined"] == raw.height
