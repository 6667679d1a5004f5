"""Bad-input corpus, row level: wrong types, duplicate keys, future and impossible dates, amounts,
codes with stray spaces or lower case, invalid FIPS / ZIP / NPI, orphans, conflicting demographics.

Each case writes one valid row and one changed row. Expected outcome: the valid row is used, the
changed row is quarantined with the named reason(s) -- or, for repairs the contract allows (case and
stray spaces), used with the normalised value. ``corpus.ingest`` checks exact reconciliation.
"""
from __future__ import annotations

import polars as pl
import pytest

from equity_pipeline.io import ROW
from tests.robustness.corpus import VALID, csv_bytes, ingest, ingest_bytes, row


def _case(table, changes, expected, bug=None):
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {bug}")] if bug else []
    name = "-".join(f"{k}={v!r}" for k, v in changes.items()) or "copy"
    return pytest.param(table, changes, expected, id=f"{table}:{name}", marks=marks)


# expected: rule ids the row must carry; empty for known bugs (xfail), where the fix names the rule
QUARANTINE = [
    # members: dates
    _case("members", {"birth_date": "2030-01-01"}, {"future_birth_date"}),
    _case("members", {"birth_date": "1960-02-30"}, {"invalid_date_birth_date"}),
    _case("members", {"birth_date": "1850-02-01"}, {"implausible_birth_date"}),
    _case("members", {"birth_date": "01/02/1960"}, {"invalid_date_birth_date"}),
    _case("members", {"birth_date": "19600102"}, {"invalid_date_birth_date"}),
    _case("members", {"birth_date": ""}, {"missing_birth_date"}),
    _case("members", {"death_date": "1950-01-01"}, {"birth_date_after_death_date"}),
    _case("members", {"death_date": "2099-01-01"}, {"future_death_date"}),
    # members: codes, wrong types
    _case("members", {"sex": "7"}, {"invalid_sex"}),
    _case("members", {"sex": "female"}, {"invalid_sex"}),
    _case("members", {"race_ethnicity_codes": "White"}, {"invalid_race_ethnicity_codes"}),
    _case("members", {"race_ethnicity_codes": "2106-3 | 2054-5"}, {"invalid_race_ethnicity_codes"}),
    _case("members", {"race_ethnicity_codes": "2106-3;2054-5"}, {"invalid_race_ethnicity_codes"}),
    _case("members", {"race_ethnicity_source": "self"}, {"invalid_race_ethnicity_source"}),
    _case("members", {"language": "english"}, {"invalid_language"}),
    _case("members", {"language": "123"}, {"invalid_language"}),  # was nulled to Unknown before the fix
    _case("members", {"language": "-"}, {"invalid_language"}),
    _case("members", {"interpreter_needed": "maybe"}, {"invalid_interpreter_needed"}),
    _case("members", {"member_id": ""}, {"missing_member_id"}),
    # members: ZIP and FIPS
    _case("members", {"zip": "2139"}, {"invalid_zip"}),
    _case("members", {"zip": "02139-4307"}, {"invalid_zip"}),
    _case("members", {"zip": "O2139"}, {"invalid_zip"}),
    _case("members", {"county_fips": "5017"}, {"invalid_county_fips_format"}),
    _case("members", {"county_fips": "25017.0"}, {"invalid_county_fips_format"}),
    _case("members", {"county_fips": "99999"}, {"unknown_county_fips"}),
    _case("members", {"county_fips": "25 017"}, {"invalid_county_fips_format"}),
    # enrollment
    _case("enrollment", {"payer": "medicare advantage"}, {"invalid_payer"}),
    _case("enrollment", {"enrollment_start": "2025-01-01", "enrollment_end": "2024-01-01"}, {"enrollment_start_after_enrollment_end"}),
    _case("enrollment", {"enrollment_start": "1950-01-01"}, {"implausible_enrollment_start"}),
    _case("enrollment", {"enrollment_start": "2025-02-29"}, {"invalid_date_enrollment_start"}),
    _case("enrollment", {"enrollment_start": ""}, {"missing_enrollment_start"}),
    _case("enrollment", {"dual_status": "yes"}, {"invalid_dual_status"}),
    _case("enrollment", {"member_id": "MBR-ORPHAN-1"}, {"orphan_member"}),
    # medical claims: dates
    _case("medical_claims", {"claim_from_date": "2027-01-01", "claim_thru_date": "2027-01-02"}, {"future_claim_from_date", "future_claim_thru_date"}),
    _case("medical_claims", {"claim_from_date": "2025-13-01"}, {"invalid_date_claim_from_date"}),
    _case("medical_claims", {"claim_from_date": "1999-12-31", "claim_thru_date": "1999-12-31"}, {"implausible_claim_from_date"}),
    _case("medical_claims", {"claim_from_date": "2025-03-05", "claim_thru_date": "2025-03-01"}, {"claim_from_date_after_claim_thru_date"}),
    # medical claims: amounts and wrong types
    _case("medical_claims", {"paid_amount": "-5.00"}, {"implausible_paid_amount"}),
    _case("medical_claims", {"paid_amount": "99999999"}, {"implausible_paid_amount"}),
    _case("medical_claims", {"paid_amount": "1e5"}, {"invalid_paid_amount"}),
    _case("medical_claims", {"paid_amount": "$12.00"}, {"invalid_paid_amount"}),
    _case("medical_claims", {"paid_amount": "12.345"}, {"invalid_paid_amount"}),
    _case("medical_claims", {"paid_amount": "1,200.00"}, {"invalid_paid_amount"}),
    _case("medical_claims", {"paid_amount": "NaN"}, {"invalid_paid_amount"}),
    _case("medical_claims", {"allowed_amount": "abc"}, {"invalid_allowed_amount"}),
    _case("medical_claims", {"allowed_amount": "-5.00"}, {"implausible_allowed_amount"}),
    _case("medical_claims", {"allowed_amount": "99999999"}, {"implausible_allowed_amount"}),
    _case("medical_claims", {"claim_line": "one"}, {"invalid_claim_line"}),
    _case("medical_claims", {"claim_line": "0"}, {"invalid_claim_line"}),
    _case("medical_claims", {"claim_line": "000"}, {"invalid_claim_line"}),
    _case("medical_claims", {"claim_line": "-1"}, {"invalid_claim_line"}),
    _case("medical_claims", {"claim_line": "10000"}, {"invalid_claim_line"}),
    _case("medical_claims", {"claim_version": "-1"}, {"invalid_claim_version"}),
    _case("medical_claims", {"claim_status": "pending"}, {"invalid_claim_status"}),
    _case("medical_claims", {"claim_type": "dental"}, {"invalid_claim_type"}),
    # medical claims: codes and NPI
    _case("medical_claims", {"diagnosis_code_1": "XYZ"}, {"invalid_icd10cm"}),
    _case("medical_claims", {"hcpcs_code": "7706"}, {"invalid_hcpcs_code"}),
    _case("medical_claims", {"billing_npi": "123456789"}, {"invalid_billing_npi"}),
    _case("medical_claims", {"billing_npi": "0234567893"}, {"invalid_billing_npi"}),
    _case("medical_claims", {"billing_npi": "12345678A3"}, {"invalid_billing_npi"}),
    _case("medical_claims", {"billing_npi": "1234567890"}, {"invalid_npi_check_digit"}),
    _case("medical_claims", {"member_id": "MBR-ORPHAN-1"}, {"orphan_member"}),
    _case("medical_claims", {"member_id": ""}, {"missing_member_id"}),
    # pharmacy claims
    _case("pharmacy_claims", {"fill_date": "2099-01-01"}, {"future_fill_date"}),
    _case("pharmacy_claims", {"fill_date": "2025-04-31"}, {"invalid_date_fill_date"}),
    _case("pharmacy_claims", {"ndc": "0093-5056-01"}, {"invalid_ndc"}),
    _case("pharmacy_claims", {"ndc": "93505601"}, {"invalid_ndc"}),
    _case("pharmacy_claims", {"days_supply": "-30"}, {"invalid_days_supply"}),
    _case("pharmacy_claims", {"days_supply": "99999"}, {"invalid_days_supply"}),
    _case("pharmacy_claims", {"paid_amount": "twelve"}, {"invalid_paid_amount"}),
    _case("pharmacy_claims", {"paid_amount": "-12.50"}, {"implausible_paid_amount"}),
    _case("pharmacy_claims", {"paid_amount": "99999999"}, {"implausible_paid_amount"}),
    _case("pharmacy_claims", {"prescriber_npi": "12345"}, {"invalid_prescriber_npi"}),
    _case("pharmacy_claims", {"prescriber_npi": "0234567893"}, {"invalid_prescriber_npi"}),
    _case("pharmacy_claims", {"prescriber_npi": "1234567890"}, {"invalid_npi_check_digit"}),
    _case("pharmacy_claims", {"member_id": "MBR-ORPHAN-1"}, {"orphan_member"}),
    # SDOH screenings
    _case("sdoh_screenings", {"member_id": "MBR-ORPHAN-1"}, {"orphan_member"}),
    _case("sdoh_screenings", {"screening_date": "2099-01-01"}, {"future_screening_date"}),
    _case("sdoh_screenings", {"screening_date": ""}, {"missing_screening_date"}),
    _case("sdoh_screenings", {"instrument": "phq9"}, {"invalid_instrument"}),
    _case("sdoh_screenings", {"question_code": "housing"}, {"invalid_question_code"}),
    _case("sdoh_screenings", {"answer_code": "yes"}, {"invalid_answer_code"}),
    _case("sdoh_screenings", {"setting": "home"}, {"invalid_setting"}),
    # clinical observations
    _case("clinical_observations", {"member_id": "MBR-ORPHAN-1"}, {"orphan_member"}),
    _case("clinical_observations", {"observation_date": "2099-01-01"}, {"future_observation_date"}),
    _case("clinical_observations", {"loinc_code": "HBA1C"}, {"invalid_loinc_code"}),
    _case("clinical_observations", {"value_numeric": "1e9"}, {"invalid_value_numeric"}),
    _case("clinical_observations", {"value_numeric": "7,2"}, {"invalid_value_numeric"}),
    _case("clinical_observations", {"source_system": "fax"}, {"invalid_source_system"}),
    # providers
    _case("providers", {"provider_id": "1234567901", "id_type": "tin"}, {"invalid_id_type"}),
    _case("providers", {"provider_id": "1234567901", "county_fips": "123"}, {"invalid_county_fips_format"}),
    _case("providers", {"provider_id": "1234567901", "state": "Mass"}, {"invalid_state"}),
    _case("providers", {"provider_id": "1234567901", "is_primary_care": "maybe"}, {"invalid_is_primary_care"}),
    _case("providers", {"provider_id": ""}, {"missing_provider_id"}),
    _case("providers", {"provider_id": "1234567890"}, {"invalid_npi_check_digit"}),
    _case("providers", {"provider_id": "12345"}, {"invalid_provider_npi"}),
    _case("providers", {"provider_id": "220071"}, {"invalid_provider_npi"}),  # a CCN labelled npi
    _case("providers", {"provider_id": "1234567901", "county_fips": "99999"}, {"unknown_county_fips"}),
]


@pytest.mark.parametrize("table, changes, expected", QUARANTINE)
def test_bad_value_is_quarantined_with_its_reason(tmp_path, table, changes, expected):
    out = ingest_bytes(tmp_path, table, csv_bytes([row(table, 1), row(table, 2, **changes)]))
    assert out.used_row(1) is not None, out.quarantined
    reasons = out.reasons(2)
    assert reasons and expected <= set(reasons), (reasons, out.used_row(2))


REPAIRED = [
    _case("members", {"sex": " f ", "race_ethnicity_codes": " 2106-3 ", "race_ethnicity_source": "Self_Reported"},
          {"sex": "F", "race_ethnicity_codes": "2106-3", "race_ethnicity_source": "self_reported"}),
    _case("members", {"race_ethnicity_codes": "asku", "language": " ES-mx ", "interpreter_needed": "Y"},
          {"race_ethnicity_codes": "ASKU", "language": "es-mx", "interpreter_needed": True}),
    _case("members", {"zip": " 02139 ", "county_fips": "25017 "}, {"zip": "02139", "county_fips": "25017"}),
    _case("enrollment", {"payer": " MEDICARE ", "dual_status": "Full"}, {"payer": "medicare", "dual_status": "full"}),
    _case("medical_claims", {"hcpcs_code": " g0202 ", "diagnosis_code_1": " z12.31 ", "claim_status": "PAID", "claim_type": "Professional"},
          {"hcpcs_code": "G0202", "diagnosis_code_1": "Z1231", "claim_status": "paid", "claim_type": "professional"}),
    _case("medical_claims", {"billing_npi": " 1234567893 ", "paid_amount": " 0.00 "}, {"billing_npi": "1234567893", "paid_amount": 0.0}),
    _case("pharmacy_claims", {"ndc": " 00093505601 ", "claim_status": "Denied"}, {"ndc": "00093505601", "claim_status": "denied"}),
    _case("sdoh_screenings", {"answer_code": " la31993-1 ", "question_code": " 71802-3", "instrument": "PRAPARE"},
          {"answer_code": "LA31993-1", "question_code": "71802-3", "instrument": "prapare"}),
    _case("clinical_observations", {"loinc_code": " 4548-4 ", "source_system": "HIE"}, {"loinc_code": "4548-4", "source_system": "hie"}),
    _case("providers", {"provider_id": "1234567901", "id_type": "NPI", "state": "ma", "is_primary_care": "N"},
          {"id_type": "npi", "state": "MA", "is_primary_care": False}),
]


@pytest.mark.parametrize("table, changes, expected", REPAIRED)
def test_case_and_stray_spaces_are_repaired(tmp_path, table, changes, expected):
    out = ingest_bytes(tmp_path, table, csv_bytes([row(table, 1), row(table, 2, **changes)]))
    used = out.used_row(2)
    assert used is not None, out.reasons(2)
    assert {k: used[k] for k in expected} == expected


LEGITIMATE = [
    _case("enrollment", {"enrollment_start": "2027-01-01", "enrollment_end": "2027-12-31"}, "future coverage is recorded ahead"),
    _case("enrollment", {"enrollment_end": ""}, "open span: still enrolled"),
    _case("clinical_observations", {"value_numeric": "-2.5"}, "negative results exist (base excess)"),
    _case("medical_claims", {"paid_amount": "0"}, "zero-paid lines (denied or bundled)"),
    _case("medical_claims", {"claim_line": "0002"}, "a zero-padded line number is a positive integer"),
    _case("pharmacy_claims", {"paid_amount": "0.00", "prescriber_npi": ""}, "zero-paid fill, prescriber not recorded"),
    _case("providers", {"provider_id": "220071", "id_type": "ccn"}, "a facility by its CCN: not an NPI"),
    _case("members", {"race_ethnicity_codes": "", "language": "", "sex": "U"}, "unknown REL and sex are strata, not errors"),
]


@pytest.mark.parametrize("table, changes, why", LEGITIMATE)
def test_unusual_but_legitimate_values_are_used(tmp_path, table, changes, why):
    out = ingest_bytes(tmp_path, table, csv_bytes([row(table, 1), row(table, 2, **changes)]))
    assert out.used_row(2) is not None, (why, out.reasons(2))


# --- duplicates --------------------------------------------------------------------------------


_UNIQUE_KEY = {"members": ("member_id", "duplicate_member_id"), "providers": ("provider_id", "duplicate_provider_id")}


@pytest.mark.parametrize("table", VALID)
def test_exact_duplicate_row(tmp_path, table):
    """The first copy is validated like any row (and used when it passes: also in members and
    providers, whose one copy left has a unique id); later copies are quarantined as duplicate_row."""
    out = ingest_bytes(tmp_path, table, csv_bytes([row(table, 1), row(table, 2), row(table, 1)]))
    assert out.reasons(3) == ["duplicate_row"] and out.reasons(1) == []
    assert out.result.used == 2


@pytest.mark.parametrize("table", list(_UNIQUE_KEY))
def test_exact_copy_of_a_conflicting_row(tmp_path, table):
    """Rows 1 and 2 share the id with other values (a conflict); row 3 copies row 1: rows 1 and 2 fail
    the uniqueness rule, row 3 is quarantined as duplicate_row only, and the counts say so."""
    unique_rule = _UNIQUE_KEY[table][1]
    other = row(table, 1, **({"sex": "M"} if table == "members" else {"name": "Other Practice"}))
    out = ingest_bytes(tmp_path, table, csv_bytes([row(table, 1), other, row(table, 1)]))
    assert out.reasons(1) == [unique_rule] and out.reasons(2) == [unique_rule] and out.reasons(3) == ["duplicate_row"]
    assert out.result.used == 0 and out.result.rule_counts == {unique_rule: 2, "duplicate_row": 1}


@pytest.mark.parametrize("table", ["medical_claims", "pharmacy_claims", "enrollment", "sdoh_screenings", "clinical_observations"])
def test_repeated_key_with_different_values_is_kept(tmp_path, table):
    """Same key, different values: not an exact duplicate. These tables have no uniqueness rule
    (adjudication picks a claim's final version downstream), so both rows are used."""
    changes = {"medical_claims": {"paid_amount": "99.00"}, "pharmacy_claims": {"paid_amount": "1.00"},
               "enrollment": {"plan_id": "PLAN-8"}, "sdoh_screenings": {"answer_value": "other"},
               "clinical_observations": {"value_numeric": "8.1"}}[table]
    out = ingest_bytes(tmp_path, table, csv_bytes([row(table, 1), row(table, 1, **changes)]))
    assert out.result.used == 2


def test_member_with_conflicting_demographics_across_payers(tmp_path):
    """One person sent by two payers with different race and sex: every copy of the member is
    quarantined (no version is picked), and their spans, claims and screenings become orphans."""
    conflicting = row("members", 1, race_ethnicity_codes="2054-5", sex="M")
    members = csv_bytes([row("members", 1), row("members", 2), conflicting])
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "members.csv").write_bytes(members)
    (inp / "enrollment.csv").write_bytes(csv_bytes([row("enrollment", 1, payer="medicare"), row("enrollment", 2, payer="medicaid"),
                                                    row("enrollment", 3, member_id="MBR-QX-0002")]))
    (inp / "medical_claims.csv").write_bytes(csv_bytes([row("medical_claims", 1, payer="medicare"),
                                                        row("medical_claims", 2, member_id="MBR-QX-0002")]))
    (inp / "sdoh_screenings.csv").write_bytes(csv_bytes([row("sdoh_screenings", 1)]))
    m = ingest(tmp_path, "members")
    assert m.reasons(1) == ["duplicate_member_id"] and m.reasons(3) == ["duplicate_member_id"]
    assert m.used["member_id"].to_list() == ["MBR-QX-0002"]
    known = pl.scan_parquet(tmp_path / "restricted" / "tables" / "members.parquet")
    e = ingest(tmp_path, "enrollment", known=known)
    assert e.reasons(1) == ["orphan_member"] and e.reasons(2) == ["orphan_member"] and e.used[ROW].to_list() == [3]
    c = ingest(tmp_path, "medical_claims", known=known)
    assert c.reasons(1) == ["orphan_member"] and c.used[ROW].to_list() == [2]
    s = ingest(tmp_path, "sdoh_screenings", known=known)
    assert s.reasons(1) == ["orphan_member"] and s.result.used == 0


def test_many_faults_on_one_row_are_all_named(tmp_path):
    bad = row("members", 2, sex="?", birth_date="2099-99-99", zip="1", county_fips="x", language="!!", interpreter_needed="perhaps")
    out = ingest_bytes(tmp_path, "members", csv_bytes([row("members", 1), bad]))
    assert {"invalid_sex", "invalid_date_birth_date", "invalid_zip", "invalid_county_fips_format", "invalid_language",
            "invalid_interpreter_needed"} <= set(out.reasons(2))
    assert all(out.result.rule_counts[r] == 1 for r in out.reasons(2))


def test_a_large_messy_table_reconciles(tmp_path):
    """Hundreds of rows, a fault on every third: counts per rule add up, every row accounted for."""
    faults = [{"zip": "1"}, {"birth_date": "2099-01-01"}, {"sex": "Q"}, {"county_fips": "99999"}, {"language": "9"}]
    rows = [row("members", i, **(faults[i % len(faults)] if i % 3 == 0 else {})) for i in range(1, 601)]
    rows += rows[:7]  # exact duplicates
    out = ingest_bytes(tmp_path, "members", csv_bytes(rows))
    assert out.result.read == 607
    # 200 faulty rows and the 7 later copies; the first copies are validated like any row
    assert out.result.quarantined == 200 + 7
    assert out.result.rule_counts["duplicate_row"] == 7
