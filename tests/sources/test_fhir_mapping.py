"""FHIR R4 -> canonical: explicit field paths on small hand-written resources (bundle and NDJSON)."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.sources import canonical_input_dir, convert
from equity_pipeline.sources.fhir import map_patient, ref_id

CDC = "urn:oid:2.16.840.1.113883.6.238"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETH_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"


def race_ext(url: str, omb: list[str] = (), detailed: list[str] = (), text: str | None = None, system: str = CDC) -> dict:
    sub = [{"url": "ombCategory", "valueCoding": {"system": system, "code": c}} for c in omb]
    sub += [{"url": "detailed", "valueCoding": {"system": CDC, "code": c}} for c in detailed]
    if text:
        sub.append({"url": "text", "valueString": text})
    return {"url": url, "extension": sub}


def patient(pid: str = "p1", **kw) -> dict:
    base = {
        "resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1960-05-01",
        "extension": [race_ext(RACE_URL, ["2106-3"], text="White"), race_ext(ETH_URL, ["2186-5"], text="Not Hispanic or Latino")],
        "address": [{"line": ["1 Main St"], "city": "Medford", "state": "MA", "postalCode": "02155"}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]}}],
        "name": [{"use": "official", "family": "Lee34", "given": ["Ann12"]}],
    }
    base.update(kw)
    return base


@pytest.mark.parametrize("extensions, expected", [
    ([race_ext(RACE_URL, ["2106-3"]), race_ext(ETH_URL, ["2135-2"])], "2106-3|2135-2"),
    # detailed codes are kept next to the OMB category (Asian Indian rolls up to Asian downstream)
    ([race_ext(RACE_URL, ["2028-9"], detailed=["2029-7"]), race_ext(ETH_URL, ["2186-5"])], "2028-9|2029-7|2186-5"),
    # two races: both kept (the stratifier calls this Multiracial)
    ([race_ext(RACE_URL, ["2054-5", "2106-3"])], "2054-5|2106-3"),
    # text only (no coding): mapped through the same term table as Synthea's words
    ([race_ext(RACE_URL, text="Black or African American")], "2054-5"),
    # asked, declined (v3 NullFlavor)
    ([race_ext(RACE_URL, ["ASKU"], system="http://terminology.hl7.org/CodeSystem/v3-NullFlavor")], "ASKU"),
    ([], "UNK"),  # no extension: not collected
])
def test_us_core_race_and_ethnicity(extensions, expected):
    row, reason = map_patient(patient(extension=extensions))
    assert reason is None
    assert row["race_ethnicity_codes"] == expected


def test_race_text_that_cannot_be_mapped_is_quarantined():
    row, reason = map_patient(patient(extension=[race_ext(RACE_URL, text="Klingon")]))
    assert row is None and reason == "unmapped_race_text"


def test_patient_demographics_paths():
    row, reason = map_patient(patient(gender="male", deceasedDateTime="2021-02-03T04:05:06-08:00"))
    assert reason is None
    assert (row["sex"], row["birth_date"], row["death_date"], row["zip"], row["county_fips"], row["language"]) == (
        "M", "1960-05-01", "2021-02-03", "02155", "25017", "es")  # county: the ZIP's primary county (Middlesex)
    assert (row["first_name"], row["last_name"]) == ("Ann", "Lee")
    with_district = patient(address=[{"state": "MA", "postalCode": "02155", "district": "Suffolk County"}])
    assert map_patient(with_district)[0]["county_fips"] == "25025"  # an explicit county wins over the ZIP
    assert map_patient(patient(address=[{"state": "MA", "district": "Atlantis County"}])) == (None, "unknown_county")


@pytest.mark.parametrize("ref, expected", [
    ({"reference": "urn:uuid:abc-1"}, "abc-1"),
    ({"reference": "Patient/abc-1"}, "abc-1"),
    ({"reference": "https://example.org/fhir/Patient/abc-1"}, "abc-1"),
    ({"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999"}, None),  # conditional reference
    ({"display": "no reference"}, None),
])
def test_reference_ids(ref, expected):
    assert ref_id(ref) == expected


def _ndjson(folder: Path, name: str, resources: list[dict]) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")


def test_bulk_ndjson_export_maps_every_resource_or_says_why(tmp_path):
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    _ndjson(bulk, "Patient.ndjson", [patient("p1"), patient("p2", extension=[race_ext(RACE_URL, text="Klingon")])])
    _ndjson(bulk, "Coverage.ndjson", [
        {"resourceType": "Coverage", "id": "c1", "beneficiary": {"reference": "Patient/p1"}, "period": {"start": "2021-01-01", "end": "2022-12-31"},
         "type": {"coding": [{"system": "urn:oid:2.16.840.1.113883.3.221.5", "code": "121"}]}},  # SOPT 1xx: Medicare
        {"resourceType": "Coverage", "id": "c2", "beneficiary": {"reference": "Patient/p1"}, "period": {"start": "2021-01-01"},
         "payor": [{"display": "Medicaid"}]},
        {"resourceType": "Coverage", "id": "c3", "beneficiary": {"reference": "Patient/p1"}, "period": {"start": "2021-01-01"},
         "payor": [{"display": "Some Unknown Plan"}]},
    ])
    _ndjson(bulk, "Encounter.ndjson", [
        {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"}, "class": {"code": "EMER"},
         "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "50849002"}]}],
         "period": {"start": "2022-02-01T22:00:00-05:00", "end": "2022-02-02T01:00:00-05:00"}},
    ])
    _ndjson(bulk, "Procedure.ndjson", [
        {"resourceType": "Procedure", "id": "x1", "status": "completed", "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "71651007"}]}, "performedDateTime": "2022-02-01T23:00:00-05:00"},
        {"resourceType": "Procedure", "id": "x2", "status": "not-done", "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "73761001"}]}, "performedDateTime": "2022-03-01"},
    ])
    _ndjson(bulk, "Observation.ndjson", [
        {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2022-02-01",
         "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
         "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 128, "code": "mm[Hg]"}},
                       {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 82, "code": "mm[Hg]"}}]},
        {"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2022-02-01",
         "code": {"coding": [{"system": "http://loinc.org", "code": "93025-5"}]},
         "component": [
             {"code": {"coding": [{"system": "http://loinc.org", "code": "71802-3"}]},
              "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA30190-5"}]}},
             {"code": {"coding": [{"system": "http://loinc.org", "code": "93031-3"}]},
              "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA30122-8"}]}},   # declined
             {"code": {"coding": [{"system": "http://loinc.org", "code": "56799-0"}]}, "valueString": "1 Main St"},  # address: dropped
         ]},
        {"resourceType": "Observation", "id": "o3", "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2022-02-01",
         "code": {"coding": [{"system": "http://loinc.org", "code": "88122-7"}]},  # AHC HRSN food item, standalone
         "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA6729-3"}], "text": "Sometimes true"}},
        {"resourceType": "Observation", "id": "o4", "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2022-02-01",
         "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "266919005"}]}},
    ])
    (bulk / "Immunization.ndjson").write_text('{"resourceType": "Immunization", "id": "i1"}\nnot json\n', encoding="utf-8")

    result = convert("fhir", bulk, tmp_path / "out")
    assert result["reconciles"] is True
    files = result["files"]
    assert files["Patient"]["reasons"] == {"unmapped_race_text": 1}
    assert files["Coverage"]["reasons"] == {"unmapped_payer": 1}
    assert files["Procedure"]["reasons"] == {"status_not_done": 1}
    assert files["Observation"]["reasons"] == {"coded_or_text_result_not_in_contract": 1}
    assert files["Immunization"]["reasons"] == {"cvx_not_in_contract": 1}
    assert files["unparseable"]["reasons"] == {"invalid_json_line": 1}
    assert "enrollment_from_eob" not in result["warnings"]  # Coverage was there
    assert {i["file"] for i in result["inputs"]} == {"Patient.ndjson", "Coverage.ndjson", "Encounter.ndjson", "Procedure.ndjson",
                                                     "Observation.ndjson", "Immunization.ndjson"}

    out = canonical_input_dir(tmp_path / "out")
    t = {p.stem: pl.read_parquet(p) for p in out.glob("*.parquet")}
    assert t["enrollment"].sort("payer").select("payer", "enrollment_start", "enrollment_end").rows() == [
        ("medicaid", "2021-01-01", None), ("medicare", "2021-01-01", "2022-12-31")]
    claims = t["medical_claims"].sort("claim_line")
    assert claims.select("claim_id", "claim_line", "snomed_code", "place_of_service", "claim_from_date").rows() == [
        ("e1", "1", "50849002", "23", "2022-02-01"), ("e1", "2", "71651007", "23", "2022-02-01")]  # local date as written
    assert t["clinical_observations"].sort("loinc_code").select("loinc_code", "value_numeric").rows() == [("8462-4", "82"), ("8480-6", "128")]
    sdoh = t["sdoh_screenings"].sort("question_code").select("instrument", "question_code", "answer_code").rows()
    assert sdoh == [("prapare", "71802-3", "LA30190-5"), ("ahc_hrsn", "88122-7", "LA6729-3"), ("prapare", "93031-3", "ASKU")]
    written = b"".join(p.read_bytes() for p in out.rglob("*.parquet"))
    assert b"1 Main St" not in written


def test_bundle_without_coverage_derives_spans_from_eob_with_a_warning(tmp_path):
    folder = tmp_path / "bundles"
    folder.mkdir()
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("p1")},
        {"resource": {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "urn:uuid:p1"}, "class": {"code": "AMB"},
                      "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "162673000"}]}],
                      "period": {"start": "2022-01-10T09:00:00-08:00", "end": "2022-01-10T09:15:00-08:00"}}},
        {"resource": {"resourceType": "Claim", "id": "c1", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
                      "patient": {"reference": "urn:uuid:p1"}, "insurance": [{"coverage": {"display": "Medicaid"}}],
                      "item": [{"sequence": 1, "encounter": [{"reference": "urn:uuid:e1"}]}]}},
        {"resource": {"resourceType": "ExplanationOfBenefit", "id": "b1", "claim": {"reference": "urn:uuid:c1"}, "patient": {"reference": "urn:uuid:p1"},
                      "contained": [{"resourceType": "Coverage", "id": "coverage", "type": {"text": "Medicaid"}, "payor": [{"display": "Medicaid"}]}],
                      "insurance": [{"focal": True, "coverage": {"reference": "#coverage", "display": "Medicaid"}}],
                      "billablePeriod": {"start": "2022-01-10T09:15:00-08:00", "end": "2023-01-10T09:15:00-08:00"},
                      "payment": {"amount": {"value": 81.5}}}},
        {"resource": {"resourceType": "Claim", "id": "c2", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "pharmacy"}]},
                      "patient": {"reference": "urn:uuid:p1"}}},
    ]}
    (folder / "Ann12_Lee34_p1.json").write_text(json.dumps(bundle), encoding="utf-8")  # Synthea names bundles after the patient
    result = convert("fhir", folder, tmp_path / "out")
    assert [i["file"] for i in result["inputs"]] == ["json file 1 of 1"]  # the name is PHI: listed by position and hash
    assert "Lee34" not in json.dumps(result)
    assert "enrollment_from_eob" in result["warnings"]
    assert result["files"]["Claim"]["reasons"] == {"pharmacy_claim_no_ndc": 1}
    out = canonical_input_dir(tmp_path / "out")
    enrollment = pl.read_parquet(out / "enrollment.parquet")
    assert enrollment.select("payer", "enrollment_start", "enrollment_end").rows() == [("medicaid", "2022-01-10", "2023-01-10")]
    claims = pl.read_parquet(out / "medical_claims.parquet")
    assert claims.select("claim_type", "payer", "paid_amount").rows() == [("institutional", "medicaid", "81.5")]
