"""Synthea CSV -> canonical: each mapping rule on a tiny hand-written export (one row per rule)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.sources import canonical_input_dir, convert, reconciliation_path

PATIENT_COLS = ["Id", "BIRTHDATE", "DEATHDATE", "FIRST", "LAST", "RACE", "ETHNICITY", "GENDER", "STATE", "COUNTY", "ZIP"]


def write(folder: Path, name: str, rows: list[dict[str, str]], cols: list[str] | None = None) -> None:
    cols = cols or list(rows[0])
    with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def patient(pid: str, **kw: str) -> dict[str, str]:
    base = {"Id": pid, "BIRTHDATE": "1960-05-01", "FIRST": "Ann12", "LAST": "Lee34", "RACE": "white", "ETHNICITY": "nonhispanic",
            "GENDER": "F", "STATE": "Massachusetts", "COUNTY": "Middlesex County", "ZIP": "02155"}
    return {**base, **kw}


def run(folder: Path, out: Path) -> tuple[dict, dict[str, pl.DataFrame]]:
    result = convert("synthea", folder, out)
    tables = {p.stem: pl.read_parquet(p) for p in canonical_input_dir(out).glob("*.parquet")}
    return result, tables


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "synthea"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("race, ethnicity, codes", [
    ("white", "nonhispanic", "2106-3|2186-5"),
    ("black", "hispanic", "2054-5|2135-2"),   # combined question: race and Hispanic ethnicity both kept
    ("asian", "nonhispanic", "2028-9|2186-5"),
    ("native", "nonhispanic", "1002-5|2186-5"),  # American Indian or Alaska Native
    ("hawaiian", "hispanic", "2076-8|2135-2"),   # Native Hawaiian or Other Pacific Islander
    ("other", "nonhispanic", "2131-1|2186-5"),   # CDC REC Other Race -> SPD 15 "Some other race"
    ("White ", "NonHispanic", "2106-3|2186-5"),  # case and stray spaces
    ("", "", "UNK"),                             # nothing recorded -> unknown
])
def test_race_and_ethnicity_words_become_cdc_rec_codes(export, tmp_path, race, ethnicity, codes):
    write(export, "patients", [patient("p1", RACE=race, ETHNICITY=ethnicity)], PATIENT_COLS)
    _, tables = run(export, tmp_path / "out")
    assert tables["members"]["race_ethnicity_codes"].to_list() == [codes]
    assert tables["members"]["race_ethnicity_source"].to_list() == ["unknown" if codes == "UNK" else "self_reported"]


def test_unmapped_race_word_and_unknown_county_are_quarantined_with_reasons(export, tmp_path):
    write(export, "patients", [
        patient("ok"),
        patient("bad_race", RACE="martian"),
        patient("bad_eth", ETHNICITY="latinx?"),
        patient("bad_county", COUNTY="Atlantis County"),
    ], PATIENT_COLS)
    result, tables = run(export, tmp_path / "out")
    counts = result["files"]["patients.csv"]
    assert (counts["read"], counts["mapped"], counts["quarantined"]) == (4, 1, 3)
    assert counts["reasons"] == {"unknown_county": 1, "unmapped_ethnicity": 1, "unmapped_race": 1}
    assert tables["members"]["member_id"].to_list() == ["ok"]
    q = pl.read_parquet(canonical_input_dir(tmp_path / "out") / "_quarantine" / "patients.csv.parquet")
    assert q.columns == ["source_row", "reason"]  # row numbers and reasons only, no values
    assert sorted(q["source_row"].to_list()) == [2, 3, 4]


def test_county_from_name_fips_column_zero_padded_and_conflicts_quarantined(export, tmp_path):
    cols = PATIENT_COLS + ["FIPS"]
    write(export, "patients", [
        patient("by_name"),                                                        # Middlesex MA -> 25017
        patient("fips_only", COUNTY="", STATE="Alabama", FIPS="1001"),             # leading zero dropped -> 01001
        patient("agree", COUNTY="Suffolk County", FIPS="25025"),
        patient("conflict", COUNTY="Bristol County", FIPS="44007"),                # name says 25005: do not guess
        patient("no_county", COUNTY="", FIPS=""),
    ], cols)
    result, tables = run(export, tmp_path / "out")
    got = dict(tables["members"].select("member_id", "county_fips").iter_rows())
    assert got == {"by_name": "25017", "fips_only": "01001", "agree": "25025", "no_county": None}
    assert result["files"]["patients.csv"]["reasons"] == {"county_fips_conflict": 1}


@pytest.mark.parametrize("raw, expected", [("02155", "02155"), ("2155", "02155"), ("02155-1234", "02155"), ("", None)])
def test_zip_is_five_digits_with_leading_zeros(export, tmp_path, raw, expected):
    write(export, "patients", [patient("p1", ZIP=raw)], PATIENT_COLS)
    _, tables = run(export, tmp_path / "out")
    assert tables["members"]["zip"].to_list() == [expected]


def test_names_lose_synthea_digit_suffixes(export, tmp_path):
    write(export, "patients", [patient("p1", FIRST="Jorge Luis88", LAST="Vela532")], PATIENT_COLS)
    _, tables = run(export, tmp_path / "out")
    assert tables["members"].select("first_name", "last_name").row(0) == ("Jorge Luis", "Vela")


PAYERS = [
    {"Id": "pay-mcr", "NAME": "Medicare"}, {"Id": "pay-mcd", "NAME": "Medicaid"}, {"Id": "pay-dual", "NAME": "Dual Eligible"},
    {"Id": "pay-bcbs", "NAME": "Blue Cross Blue Shield"}, {"Id": "pay-none", "NAME": "NO_INSURANCE"}, {"Id": "pay-odd", "NAME": "Acme Health Plan"},
]


def test_payer_transitions_become_enrollment_spans(export, tmp_path):
    write(export, "patients", [patient("p1")], PATIENT_COLS)
    write(export, "payers", PAYERS)
    t = ["PATIENT", "START_YEAR", "END_YEAR", "PAYER", "SECONDARY_PAYER"]
    write(export, "payer_transitions", [
        {"PATIENT": "p1", "START_YEAR": "2019-01-05T04:00:00Z", "END_YEAR": "2020-01-05T04:00:00Z", "PAYER": "pay-bcbs"},
        {"PATIENT": "p1", "START_YEAR": "2020-01-05T04:00:00Z", "END_YEAR": "2021-01-05T04:00:00Z", "PAYER": "pay-none"},  # uninsured: no span
        {"PATIENT": "p1", "START_YEAR": "2021-01-05T04:00:00Z", "END_YEAR": "2022-01-05T04:00:00Z", "PAYER": "pay-dual"},  # medicare + medicaid
        {"PATIENT": "p1", "START_YEAR": "2022", "END_YEAR": "2022", "PAYER": "pay-mcr", "SECONDARY_PAYER": "pay-mcd"},    # Synthea 2.x years
        {"PATIENT": "p1", "START_YEAR": "2023-01-01", "END_YEAR": "2023-06-01", "PAYER": "pay-odd"},                     # unknown payer name
    ], t)
    result, tables = run(export, tmp_path / "out")
    spans = tables["enrollment"].sort("enrollment_start", "payer").select("payer", "dual_status", "enrollment_start", "enrollment_end").rows()
    assert spans == [
        ("commercial", "none", "2019-01-05", "2020-01-05"),
        ("medicaid", "full", "2021-01-05", "2022-01-05"),
        ("medicare", "full", "2021-01-05", "2022-01-05"),
        ("medicaid", None, "2022-01-01", "2022-12-31"),  # the secondary payer's span
        ("medicare", "none", "2022-01-01", "2022-12-31"),
    ]
    c = result["files"]["payer_transitions.csv"]
    assert (c["read"], c["mapped"], c["quarantined"], c["reasons"]) == (5, 4, 1, {"unmapped_payer": 1})
    assert c["notes"]["no_insurance_no_span"] == 1
    assert result["files"]["payers.csv"]["reasons"] == {"unmapped_payer": 1}


def _obs(pid: str, date: str, code: str, value: str, kind: str = "text", enc: str = "e1") -> dict[str, str]:
    return {"DATE": date, "PATIENT": pid, "ENCOUNTER": enc, "CATEGORY": "survey", "CODE": code, "DESCRIPTION": "", "VALUE": value,
            "UNITS": "", "TYPE": kind}


def test_prapare_free_text_answers_get_loinc_answer_codes(export, tmp_path):
    write(export, "patients", [patient("p1")], PATIENT_COLS)
    write(export, "encounters", [{"Id": "e1", "START": "2022-03-01T10:00:00Z", "STOP": "2022-03-01T10:30:00Z", "PATIENT": "p1",
                                  "ENCOUNTERCLASS": "wellness", "CODE": "162673000"}])
    d = "2022-03-01T10:00:00Z"
    write(export, "observations", [
        _obs("p1", d, "71802-3", "I have housing"),
        _obs("p1", d, "93030-5", "Yes  it has kept me from non-medical meetings  appointments  work  or from getting things that I need"),
        _obs("p1", d, "93031-3", "I choose not to answer this question"),           # declined -> ASKU
        _obs("p1", d, "63512-8", "4.0", kind="numeric"),                              # household size: no answer code applies
        _obs("p1", d, "93026-3", "Sometimes, maybe"),                                 # scored question, unknown wording
        _obs("p1", d, "56799-0", "12 Elm Street"),                                    # address: never carried
        _obs("p1", d, "8302-2", "164.0", kind="numeric"),                             # body height -> clinical observation
        _obs("p1", d, "QALY", "1.0", kind="numeric"),                                 # not LOINC
    ])
    result, tables = run(export, tmp_path / "out")
    sdoh = {q: (a, v) for q, a, v in tables["sdoh_screenings"].select("question_code", "answer_code", "answer_value").iter_rows()}
    assert sdoh == {"71802-3": ("LA30189-7", None), "93030-5": ("LA30134-3", None), "93031-3": ("ASKU", None), "63512-8": (None, "4.0")}
    assert set(tables["sdoh_screenings"]["instrument"]) == {"prapare"}
    assert set(tables["sdoh_screenings"]["setting"]) == {"outpatient"}
    assert tables["sdoh_screenings"]["screening_id"].n_unique() == 1
    assert tables["clinical_observations"].select("loinc_code", "value_numeric").rows() == [("8302-2", "164.0")]
    c = result["files"]["observations.csv"]
    assert c["reasons"] == {"address_not_carried": 1, "not_loinc": 1, "unmapped_sdoh_answer": 1}
    assert (c["read"], c["mapped"] + c["quarantined"]) == (8, 8)
    written = b"".join(p.read_bytes() for p in canonical_input_dir(tmp_path / "out").rglob("*.parquet"))
    assert b"Elm Street" not in written and b"Elm Street" not in reconciliation_path(tmp_path / "out").read_bytes()


def test_preferred_language_is_the_latest_prapare_answer(export, tmp_path):
    write(export, "patients", [patient("p1"), patient("p2"), patient("p3"), patient("p4")], PATIENT_COLS)
    write(export, "observations", [
        _obs("p1", "2019-01-01T00:00:00Z", "54899-0", "Language other than English"),
        _obs("p1", "2021-01-01T00:00:00Z", "54899-0", "English"),                     # latest wins
        _obs("p2", "2021-01-01T00:00:00Z", "54899-0", "Language other than English"),  # names no language
        _obs("p3", "2021-01-01T00:00:00Z", "54899-0", "I choose not to answer this question"),
    ])
    result, tables = run(export, tmp_path / "out")
    assert dict(tables["members"].select("member_id", "language").iter_rows()) == {"p1": "en", "p2": "UNK", "p3": "ASKU", "p4": "UNK"}
    assert result["files"]["observations.csv"]["reasons"] == {"language_not_named": 2}


def test_encounters_procedures_conditions_become_claim_lines_with_snomed(export, tmp_path):
    write(export, "patients", [patient("p1")], PATIENT_COLS)
    write(export, "payers", PAYERS)
    write(export, "encounters", [
        {"Id": "e1", "START": "2022-03-01T10:00:00Z", "STOP": "2022-03-01T10:30:00Z", "PATIENT": "p1", "PAYER": "pay-bcbs",
         "ENCOUNTERCLASS": "ambulatory", "CODE": "185349003", "PAYER_COVERAGE": "123.456"},
        {"Id": "e2", "START": "2022-05-01T10:00:00Z", "STOP": "2022-05-03T10:00:00Z", "PATIENT": "p1", "PAYER": "pay-dual",
         "ENCOUNTERCLASS": "inpatient", "CODE": "32485007"},
        {"Id": "e3", "START": "2022-06-01T10:00:00Z", "PATIENT": "p1", "ENCOUNTERCLASS": "spaceship", "CODE": "1"},
    ])
    write(export, "procedures", [
        {"START": "2022-03-01T10:05:00Z", "STOP": "2022-03-01T10:25:00Z", "PATIENT": "p1", "ENCOUNTER": "e1", "CODE": "73761001"},
        {"START": "2022-06-01T10:05:00Z", "PATIENT": "p1", "ENCOUNTER": "e3", "CODE": "71651007"},   # its encounter is quarantined
        {"START": "2022-07-01T10:05:00Z", "PATIENT": "p1", "ENCOUNTER": "e-missing", "CODE": "71651007"},  # encounter not exported
    ])
    write(export, "conditions", [{"START": "2022-03-01", "PATIENT": "p1", "ENCOUNTER": "e1", "CODE": "109838007"}])
    result, tables = run(export, tmp_path / "out")
    lines = tables["medical_claims"].sort("claim_id", "claim_line")
    got = lines.select("claim_id", "claim_line", "snomed_code", "claim_type", "place_of_service", "payer", "paid_amount", "bill_type").rows()
    assert got == [
        ("e-missing", "1", "71651007", "professional", None, None, None, None),          # own claim, no header facts
        ("e1", "1", "185349003", "professional", "11", "commercial", "123.46", None),
        ("e1", "2", "73761001", "professional", "11", "commercial", None, None),
        ("e1", "3", "109838007", "professional", "11", "commercial", None, None),
        ("e2", "1", "32485007", "institutional", "21", "medicare", None, "111"),          # dual -> medicare; inpatient bill type
    ]
    assert result["files"]["encounters.csv"]["reasons"] == {"unmapped_encounter_class": 1}
    assert result["files"]["procedures.csv"]["reasons"] == {"encounter_quarantined": 1}
    assert result["files"]["procedures.csv"]["notes"] == {"no_encounter_own_claim": 1}
    assert lines.filter(pl.col("claim_id") == "e2")["admit_date"].to_list() == ["2022-05-01"]


def test_missing_files_are_counted_warnings_and_every_row_reconciles(export, tmp_path):
    write(export, "patients", [patient("p1"), patient("p2", RACE="martian")], PATIENT_COLS)
    write(export, "immunizations", [{"DATE": "2022-01-01T00:00:00Z", "PATIENT": "p1", "ENCOUNTER": "e1", "CODE": "140"}])
    write(export, "medications", [{"START": "2022-01-01", "PATIENT": "p1", "CODE": "123"}])
    result, tables = run(export, tmp_path / "out")
    assert {"encounters_absent", "claims_transactions_absent", "payer_transitions_absent", "files_not_read"} <= set(result["warnings"])
    assert result["n_warnings"] == len(result["warnings"])
    assert result["reconciles"] is True
    for name, c in result["files"].items():
        assert c["read"] == c["mapped"] + c["quarantined"], name
    assert result["files"]["immunizations.csv"]["reasons"] == {"cvx_not_in_contract": 1}
    # the required tables exist even when their sources are missing (empty, with the contract's columns)
    assert tables["enrollment"].height == 0 and "enrollment_start" in tables["enrollment"].columns
    assert tables["medical_claims"].height == 0 and "diagnosis_code_1" in tables["medical_claims"].columns
    on_disk = json.loads(reconciliation_path(tmp_path / "out").read_text())
    assert on_disk["totals"] == result["totals"]


def test_export_without_patients_is_a_structural_error(export, tmp_path):
    from equity_pipeline.errors import StructuralError

    write(export, "encounters", [{"Id": "e1", "START": "2022-01-01", "PATIENT": "p1", "ENCOUNTERCLASS": "wellness", "CODE": "1"}])
    with pytest.raises(StructuralError, match="patients.csv"):
        convert("synthea", export, tmp_path / "out")


def test_unknown_source_is_a_config_error(tmp_path):
    from equity_pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown source"):
        convert("hl7v2", tmp_path, tmp_path / "out")


def test_canonical_source_converts_nothing_and_reads_the_input_folder(tmp_path):
    from equity_pipeline.sources import ingest_dir

    result = convert("canonical", tmp_path, tmp_path / "out")
    assert result["converted"] is False and result["files"] == {}
    assert ingest_dir("canonical", tmp_path, tmp_path / "out") == tmp_path
    assert ingest_dir("synthea", tmp_path, tmp_path / "out") == tmp_path / "out" / "restricted" / "canonical_input"


def test_an_answer_worded_alike_in_both_tools_belongs_to_its_survey(export, tmp_path):
    """93030-5 "No" is LA32-8 in AHC HRSN and in PRAPARE: inside a PRAPARE survey (one that asks a
    question only PRAPARE asks) it is a PRAPARE answer of that screening, alone it stays AHC HRSN."""
    write(export, "patients", [patient("p1"), patient("p2")], PATIENT_COLS)
    d = "2022-03-01T10:00:00Z"
    write(export, "observations", [
        _obs("p1", d, "71802-3", "I have housing"),          # PRAPARE wording
        _obs("p1", d, "93031-3", "Food"),                     # asked by PRAPARE only
        _obs("p1", d, "93030-5", "No"),                       # worded alike in both tools
        _obs("p2", d, "93030-5", "No", enc="e2"),             # alone: AHC HRSN, as before
    ])
    result, tables = run(export, tmp_path / "out")
    rows = tables["sdoh_screenings"].sort("member_id", "question_code")
    got = rows.select("member_id", "question_code", "instrument", "answer_code").rows()
    assert got == [("p1", "71802-3", "prapare", "LA30189-7"), ("p1", "93030-5", "prapare", "LA32-8"),
                   ("p1", "93031-3", "prapare", "LA30125-1"), ("p2", "93030-5", "ahc_hrsn", "LA32-8")]
    assert rows.filter(pl.col("member_id") == "p1")["screening_id"].n_unique() == 1   # one screening, not two
    assert result["files"]["observations.csv"]["quarantined"] == 0
