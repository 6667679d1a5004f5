"""AHC HRSN flat files in New York's SHIN-NY layout (``--source ahc-hrsn``) on hand-built fixtures.

``fixtures/ahc_hrsn`` holds one batch: 7 patients, 9 screening profiles, 54 screening observations and
2 QE admin rows. What each row is for, and so every expected figure below:

Patients (SDOH_PtInfo): MR1001-MR1004 and MR1006 map; MR1005 has no Medicaid id (missing_medicaid_id);
MR1007 lives in county "Gotham", NY (unknown_county).

Profiles (SDOH_ScreeningProf): SCR-1..5 map (amb, emer, amb, fld, amb -> outpatient, ed, outpatient,
community, outpatient); SCR-6 entered-in-error; SCR-7 consent deny; SCR-8 belongs to MR1005
(patient_quarantined); SCR-9 to MR9999 (patient_not_found).

Observations (SDOH_ScreeningObs), by screening:

* SCR-1, MR1001 (44 in 2024): 14 rows. The five core domains answered; food item 3 "Often true"
  (positive); safety items 7-10 Fairly often / Sometimes / Rarely / Rarely = 4+3+2+2 = 11 > 10
  (positive); the 95614-4 total "11" kept as a value; supplemental stress item 93038-8 kept (not
  scored); 76513-1 with an answer *and* a data-absent reason (quarantined); 96780-2 with the unknown
  data-absent reason "maybe-later" (quarantined). 12 mapped.
* SCR-2, MR1002: 10 rows. Housing item 2 multi-select "pests;mold" (two canonical rows, positive);
  transportation asked-declined -> ASKU; utilities "Yes" (positive) although POTENTIAL_NEED_INDICATED
  says neg (the one disagreement); safety 3+3+2+2 = 10, not above 10 (negative); 88123-5 with neither
  answer nor data-absent reason (quarantined). 9 mapped, 10 canonical rows.
* SCR-3, MR1003: 10 rows, all mapped. Housing item 1 "I choose not to answer" (LA30122-8 -> ASKU)
  but housing item 2 answered (so housing is screened, not declined); transportation asked-unknown
  (no answer: neither screened nor declined); safety 1+1+1+1.
* SCR-4, MR1004 (sex other -> X; county from ZIP 14201 -> Erie 36029): 10 rows. Housing "I do not have
  a steady place to live", transportation Yes, utilities "Already shut off" (all positive); safety
  item 7 asked-declined, items 8-10 Frequently = 15 > 10 (positive); 88123-5 answered LA33-6 (not an
  answer of that item: unmapped_sdoh_answer); one row with screening code 99999-9
  (unmapped_screening_code). 8 mapped.
* SCR-5, MR1006 (a child): 5 rows, all negative, mapped.
* five more rows, quarantined through their screening or patient: SCR-6 and SCR-7
  (screening_profile_quarantined), SCR-8 (patient_quarantined), SCR-9 (patient_not_found), SCR-10
  (no profile: screening_profile_not_found).

So 44 of 54 rows map, giving 45 canonical answers. POTENTIAL_NEED_INDICATED can be checked where an
answer has its own positive flag in the AHC scoring table (items 1-6), and agrees on 6 + 3 + 4 + 4 + 4
= 21 rows, disagrees on 1; the other 22 mapped rows (safety items, scores, declined or absent
answers, unscored items) are not checked.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.sources import canonical_input_dir, convert

FIXTURES = Path(__file__).parent / "fixtures" / "ahc_hrsn"
BATCH = "TestSCN_batch1_20250312040214"
PT, PROF, OBS, ADMIN = (f"SDOH_{k}_{BATCH}.csv" for k in ("PtInfo", "ScreeningProf", "ScreeningObs", "QEadmin"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("ahc")
    recon = convert("ahc-hrsn", FIXTURES, out)
    d = canonical_input_dir(out)
    return recon, {t: pl.read_parquet(d / f"{t}.parquet") for t in recon["tables_written"]}, out


def test_every_row_is_mapped_or_quarantined_with_its_reason(converted):
    recon, _, _ = converted
    assert recon["reconciles"] is True
    files = recon["files"]
    assert {k: (v["read"], v["mapped"], v["quarantined"]) for k, v in files.items()} == {
        PT: (7, 5, 2), PROF: (9, 5, 4), OBS: (54, 44, 10), ADMIN: (2, 0, 2)}
    assert files[PT]["reasons"] == {"missing_medicaid_id": 1, "unknown_county": 1}
    assert files[PROF]["reasons"] == {"entered_in_error": 1, "consent_denied": 1, "patient_quarantined": 1, "patient_not_found": 1}
    assert files[OBS]["reasons"] == {
        "answer_and_data_absent_reason": 1, "unmapped_data_absent_reason": 1, "no_answer_no_data_absent_reason": 1,
        "unmapped_sdoh_answer": 1, "unmapped_screening_code": 1, "screening_profile_quarantined": 2,
        "patient_quarantined": 1, "patient_not_found": 1, "screening_profile_not_found": 1}
    assert files[ADMIN]["reasons"] == {"no_npi_or_ccn": 2}
    assert files[OBS]["notes"] == {
        "potential_need_agrees": 21, "potential_need_disagrees": 1, "potential_need_not_checked": 22,
        "multi_answer_split": 1, "numeric_answer_value": 1, "data_absent_reason": 3}
    assert recon["tables_written"] == {"members": 5, "enrollment": 0, "medical_claims": 0, "sdoh_screenings": 45}
    assert "screening_only_input" in recon["warnings"]


def test_quarantined_rows_are_listed_by_row_number_only(converted):
    _, _, out = converted
    q = pl.read_parquet(canonical_input_dir(out) / "_quarantine" / OBS.replace(".csv", ".csv.parquet"))
    assert q.columns == ["source_row", "reason"]
    # SCR-1 rows 13-14, SCR-2 row 24, SCR-4 rows 43-44, the five trailing rows 50-54
    assert q["source_row"].to_list() == [13, 14, 24, 43, 44, 50, 51, 52, 53, 54]


def test_members(converted):
    _, tables, _ = converted
    got = {r["member_id"]: r for r in tables["members"].to_dicts()}
    assert set(got) == {"AA11111A", "AB22222B", "AC33333C", "AD44444D", "AF66666F"}  # Medicaid id is the member id
    pick = {k: (v["race_ethnicity_codes"], v["race_ethnicity_source"], v["sex"], v["language"], v["county_fips"], v["zip"], v["birth_date"])
            for k, v in got.items()}
    assert pick == {
        "AA11111A": ("2054-5|2186-5", "self_reported", "F", "es", "36047", "11201", "1980-03-05"),   # Kings
        "AB22222B": ("2106-3|2135-2", "self_reported", "M", "en", "36061", "10027", "1975-07-10"),   # New York County
        "AC33333C": ("ASKU", "self_reported", "F", "UNK", "36005", "10451", "1990-01-15"),          # declined race, Bronx
        "AD44444D": ("2028-9|2106-3|2186-5", "self_reported", "X", "zh", "36029", "14201", "1965-11-30"),  # ';' list; Erie by ZIP
        "AF66666F": ("2106-3|2186-5", "self_reported", "F", "en", "36081", "11354", "2010-05-05"),  # Queens
    }
    assert got["AB22222B"]["first_name"] == "José"  # UTF-8 kept


def test_answers_declined_and_data_absent_stay_apart(converted):
    _, tables, _ = converted
    s = tables["sdoh_screenings"]
    assert s["instrument"].unique().to_list() == ["ahc_hrsn"]
    by = {(r["member_id"], r["question_code"], r["answer_code"]): r for r in s.to_dicts()}
    # the multi-select answer became two rows of one screening
    assert ("AB22222B", "96778-6", "LA31996-4") in by and ("AB22222B", "96778-6", "LA28580-1") in by
    # asked-declined and "I choose not to answer" are declines (ASKU) ...
    assert by[("AB22222B", "93030-5", "ASKU")]["answer_value"] == "data-absent-reason:asked-declined"
    assert by[("AC33333C", "71802-3", "ASKU")]["answer_value"] is None
    # ... asked-unknown is no answer at all, kept with its reason
    assert by[("AC33333C", "93030-5", None)]["answer_value"] == "data-absent-reason:asked-unknown"
    assert by[("AA11111A", "95614-4", None)]["answer_value"] == "11"
    per_screening = s.group_by("member_id").agg(pl.col("screening_id").n_unique(), pl.len(), pl.col("setting").first(),
                                                pl.col("screening_date").first()).sort("member_id")
    assert per_screening.rows() == [
        ("AA11111A", 1, 12, "outpatient", "2024-03-01"), ("AB22222B", 1, 10, "ed", "2024-04-02"),
        ("AC33333C", 1, 10, "outpatient", "2024-05-03"), ("AD44444D", 1, 8, "community", "2024-06-04"),
        ("AF66666F", 1, 5, "outpatient", "2024-07-05")]


def test_domain_results_and_the_interpersonal_safety_rule(converted):
    """screened / positive / declined per member and domain, through the project's scoring (standards/sdoh.py)."""
    from equity_pipeline.standards.sdoh import domain_results

    _, tables, _ = converted
    res = domain_results(tables["sdoh_screenings"].lazy()).collect()
    got = {(r["member_id"], r["domain"]): (r["screened"], r["positive"], r["declined"]) for r in res.to_dicts()}
    S, P, D, N = (True, False, False), (True, True, False), (False, False, True), (False, False, False)
    assert got == {
        ("AA11111A", "housing"): S, ("AA11111A", "food"): P, ("AA11111A", "transportation"): S,
        ("AA11111A", "utilities"): S, ("AA11111A", "interpersonal_safety"): P,           # 4+3+2+2 = 11 > 10
        ("AB22222B", "housing"): P, ("AB22222B", "food"): S, ("AB22222B", "transportation"): D,  # declined, not screened
        ("AB22222B", "utilities"): P, ("AB22222B", "interpersonal_safety"): S,            # 3+3+2+2 = 10: not above 10
        ("AC33333C", "housing"): S, ("AC33333C", "food"): S, ("AC33333C", "transportation"): N,  # asked-unknown: neither
        ("AC33333C", "utilities"): S, ("AC33333C", "interpersonal_safety"): S,
        ("AD44444D", "housing"): P, ("AD44444D", "food"): S, ("AD44444D", "transportation"): P,
        ("AD44444D", "utilities"): P, ("AD44444D", "interpersonal_safety"): P,            # item 7 declined, 5+5+5 = 15
        ("AF66666F", "housing"): S, ("AF66666F", "food"): S, ("AF66666F", "transportation"): S,
        ("AF66666F", "utilities"): S, ("AF66666F", "interpersonal_safety"): S,
    }


def test_reconciliation_holds_no_phi(converted):
    recon, _, out = converted
    text = json.dumps(recon) + "".join(p.read_text() for p in (out / "validation").glob("*.json"))
    for value in ("AA11111A", "MR1001", "Rivera", "José", "1980-03-05", "11201", "SCR-1", "ENC-1"):
        assert value not in text


def test_latin1_pipe_delimited_batch_reads_the_same(converted, tmp_path):
    """A batch re-saved as Latin-1 with '|' and LF line ends maps to the same members and answers."""
    _, tables, _ = converted
    for src in FIXTURES.glob("*.csv"):
        text = src.read_text(encoding="utf-8").replace("\r\n", "\n")
        rows = [line.split(",") for line in text.splitlines()]
        assert all(len(r) == len(rows[0]) for r in rows)  # no quoted commas in these fixtures
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / src.name).write_bytes(("\n".join("|".join(r) for r in rows) + "\n").encode("latin-1"))
    recon = convert("ahc-hrsn", tmp_path / "in", tmp_path / "out")
    d = canonical_input_dir(tmp_path / "out")
    assert recon["tables_written"] == {"members": 5, "enrollment": 0, "medical_claims": 0, "sdoh_screenings": 45}
    assert pl.read_parquet(d / "members.parquet").equals(tables["members"])
    assert pl.read_parquet(d / "sdoh_screenings.parquet").sort(pl.all()).equals(tables["sdoh_screenings"].sort(pl.all()))


def test_batch_without_patient_file_is_a_structural_error(tmp_path):
    from equity_pipeline.errors import StructuralError

    shutil.copy(FIXTURES / OBS, tmp_path / OBS)
    with pytest.raises(StructuralError, match="SDOH_PtInfo"):
        convert("ahc-hrsn", tmp_path, tmp_path / "out")


@pytest.mark.slow
def test_screening_only_run_end_to_end(tmp_path):
    """``run --source ahc-hrsn``: no claims, no enrollment. SDOH_POSITIVE: adults screened in all five
    domains = MR1001 and MR1004 (MR1002 declined transportation, MR1003's is unknown, MR1006 is 14),
    both positive; per domain housing 1 (MR1004), food 1 (MR1001), transportation 1 (MR1004),
    utilities 1 (MR1004), interpersonal safety 2. SDOH_SCREEN: no outpatient visit without claims."""
    from equity_pipeline.cli import run_pipeline

    cfg = tmp_path / "my2024.yaml"
    cfg.write_text("measurement_year: 2024\nmeasures: [SDOH_SCREEN, SDOH_POSITIVE]\n")
    out = tmp_path / "out"
    run_pipeline(FIXTURES, out, str(cfg), run_date="2025-06-30", quiet=True, source="ahc-hrsn")
    pos = json.loads((out / "counts" / "SDOH_POSITIVE.json").read_text())
    assert (pos["members_in"], pos["denominator"], pos["numerator"]) == (5, 2, 2)
    assert pos["not_eligible"].get("not_age") == 1
    screen = json.loads((out / "counts" / "SDOH_SCREEN.json").read_text())
    assert (screen["denominator"], screen["numerator"]) == (0, 0)
    assert screen["not_eligible"] == {"not_age": 1, "no_outpatient_encounter": 4}
    rows = pl.read_parquet(out / "restricted" / "measures" / "SDOH_POSITIVE.parquet")
    per_row = rows.filter(pl.col("in_denominator")).group_by("submeasure").agg(pl.col("in_numerator").sum()).sort("submeasure")
    assert dict(per_row.rows()) == {"all": 2, "food": 1, "housing": 1, "interpersonal_safety": 2, "transportation": 1, "utilities": 1}
    rates = pl.read_csv(out / "public" / "rates.csv", infer_schema=False)
    assert set(rates["measure_id"]) >= {"SDOH_POSITIVE"}
    assert (out / "report" / "index.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["reconciles"] is True
    assert manifest["tables"]["sdoh_screenings"]["used"] == 45 and manifest["tables"]["members"]["used"] == 5
