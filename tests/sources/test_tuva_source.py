"""The Tuva Project input layer (``--source tuva``) on Tuva's synthetic seeds in ../shared/realdata.

Expected figures are counted here from the raw CSVs with the csv module, on Tuva's own column names,
not through the mapping under test; the CMS dual status codes are read by their definitions (02 QMB
plus full Medicaid and 04 SLMB plus full Medicaid are full-benefit duals, 01 QMB only is partial).
The end-to-end run checks inpatient stays and ED visits against tests/measures/test_tuva_realdata.py.
"""
from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict

import polars as pl
import pytest

from equity_pipeline.sources import canonical_input_dir, convert
from tests.validation.conftest import REALDATA

TUVA = REALDATA / "claims" / "tuva_synthetic_claims"
pytestmark = pytest.mark.skipif(
    not (TUVA / "eligibility_seed.csv").is_file(),
    reason=f"Tuva synthetic claims not found at {TUVA} (expected ../shared/realdata next to the repo)",
)


def raw(name: str) -> list[dict[str, str]]:
    with (TUVA / f"{name}_seed.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("tuva")
    recon = convert("tuva", TUVA, out)
    d = canonical_input_dir(out)
    return recon, {t: pl.read_parquet(d / f"{t}.parquet") for t in recon["tables_written"]}


def test_column_map_names_real_contract_columns_and_known_rules():
    from equity_pipeline.sources import tuva
    from equity_pipeline.suites import load_suite

    rules = {"first", "date", "lower", "money", "zip", "sex", "payer_type", "line_of_business", "claim_payer", "dual_status",
             "ms_drg", "pharmacy_claim_id", "loinc", "numeric", "value_type", "county_from_zip", "race_ethnicity"}
    synthea_obs = {"PATIENT", "ENCOUNTER", "DATE", "CODE", "VALUE", "UNITS", "TYPE"}
    seen = set()
    for r in tuva.column_map():
        assert r["rule"] in rules or r["rule"].startswith("const:"), r
        if r["canonical_table"] == "synthea_observations":
            assert r["canonical_column"] in synthea_obs
        else:
            assert r["canonical_column"] in load_suite(r["canonical_table"]).column_names, r
        key = (r["tuva_table"], r["canonical_table"], r["canonical_column"])
        assert key not in seen, key  # one rule per canonical column
        seen.add(key)
    # every required contract column of the tables Tuva feeds is mapped
    for tuva_table, table in (("eligibility", "members"), ("eligibility", "enrollment"), ("medical_claim", "medical_claims"),
                              ("pharmacy_claim", "pharmacy_claims"), ("lab_result", "clinical_observations")):
        required = {c.name for c in load_suite(table).columns if c.required}
        mapped = {c for t, ct, c in seen if t == tuva_table and ct == table}
        assert required <= mapped | {"race_ethnicity_source"}, (table, required - mapped)


def test_every_row_is_mapped_or_quarantined(converted):
    recon, _ = converted
    assert recon["reconciles"] is True
    files = recon["files"]
    n = {name: len(raw(name)) for name in ("eligibility", "medical_claim", "pharmacy_claim", "lab_result", "observation")}
    for name, count in n.items():
        f = files[f"{name}_seed.csv"]
        assert f["read"] == count == f["mapped"] + f["quarantined"], name
    # no ICD-9 in the seed (Tuva labels its ICD-10-CM diagnoses icd-10-pcs on some lines): every line maps
    assert not any(r["diagnosis_code_type"].startswith("icd-9") for r in raw("medical_claim"))
    assert files["medical_claim_seed.csv"]["quarantined"] == 0
    assert files["eligibility_seed.csv"]["quarantined"] == 0 and files["pharmacy_claim_seed.csv"]["quarantined"] == 0
    address = sum(r["normalized_order_code"] == "56799-0" for r in raw("lab_result"))
    assert address == 80
    assert files["lab_result_seed.csv"]["reasons"] == {"address_not_carried": address}
    assert "appointment_seed.csv" in recon["warnings"]["files_not_read"]


def test_members_and_enrollment_with_dual_status(converted):
    _, tables = converted
    elig = raw("eligibility")
    persons = {r["person_id"] for r in elig}
    assert sorted(tables["members"]["member_id"]) == sorted(persons) and tables["members"].height == 10
    sex = {r["person_id"]: {"male": "M", "female": "F"}[r["gender"]] for r in elig}
    assert dict(tables["members"].select("member_id", "sex").rows()) == sex
    assert set(tables["members"]["race_ethnicity_codes"]) == {"2106-3"}  # every seed person is "white"
    enr = tables["enrollment"]
    assert enr.height == len(elig) and set(enr["payer"]) == {"medicare"}
    full_codes, partial_codes = {"02", "04", "08"}, {"01", "03", "05", "06", "09"}
    expected = Counter()
    per_person = defaultdict(set)
    for r in elig:
        code = r["dual_status_code"].split(".")[0].zfill(2) if r["dual_status_code"] else ""
        status = "full" if code in full_codes else "partial" if code in partial_codes else None
        expected[status] += 1
        if status:
            per_person[r["person_id"]].add(status)
    assert Counter(enr["dual_status"].to_list()) == expected == Counter({None: 26, "full": 4, "partial": 1})
    got = enr.filter(pl.col("dual_status").is_not_null()).group_by("member_id").agg(pl.col("dual_status").unique().sort())
    assert {k: set(v) for k, v in got.rows()} == dict(per_person) == {"10017": {"full"}, "10174": {"full", "partial"}}


def test_claims_pharmacy_and_labs(converted):
    _, tables = converted
    med = tables["medical_claims"]
    src = raw("medical_claim")
    assert med.height == len(src)
    assert med.select("claim_id", "claim_line").rows() == [(r["claim_id"], r["claim_line_number"]) for r in src]
    assert med["diagnosis_code_1"].to_list() == [r["diagnosis_code_1"] or None for r in src]
    assert med["revenue_code"].to_list() == [r["revenue_center_code"] or None for r in src]  # leading zeros kept (0450)
    assert set(med["payer"]) == {"medicare"}
    rx = tables["pharmacy_claims"]
    rsrc = raw("pharmacy_claim")
    assert rx["claim_id"].to_list() == [f"{r['claim_id']}:{r['claim_line_number']}" for r in rsrc]
    assert rx["claim_id"].n_unique() == rx.height  # one row per fill, as the contract keys it
    assert rx["ndc"].to_list() == [r["ndc_code"] for r in rsrc]
    labs = tables["clinical_observations"].filter(pl.col("source_system") == "lab")
    numeric = [r for r in raw("lab_result") if r["normalized_order_code"] != "56799-0"]
    assert labs.height == len(numeric)
    assert sorted(labs["loinc_code"].unique()) == sorted({r["normalized_order_code"] for r in numeric})


def test_observations_give_language_and_prapare_screenings(converted):
    _, tables = converted
    latest = {}
    for r in sorted(raw("observation"), key=lambda r: r["observation_date"]):
        if r["normalized_code"] == "54899-0":
            latest[r["person_id"]] = r["result"]
    assert set(latest.values()) == {"English"}
    members = dict(tables["members"].select("member_id", "language").rows())
    assert {k: members[k] for k in latest} == dict.fromkeys(latest, "en")
    s = tables["sdoh_screenings"]
    from equity_pipeline.sources.common import prapare_items

    # every answer is a PRAPARE item of the seed's survey, filed under prapare: 93030-5 "No" (LA32-8, the
    # same wording and code in both tools) too, by its survey's PRAPARE-only questions
    assert set(s["question_code"]) <= {q for q, role in prapare_items().items() if role == "screening"}
    assert set(s["instrument"]) == {"prapare"}
    said_no = sum(1 for r in raw("observation") if r["normalized_code"] == "93030-5" and r["result"] == "No")
    assert s.filter((pl.col("question_code") == "93030-5") & (pl.col("answer_code") == "LA32-8")).height == said_no > 0
    housing = Counter(r["result"] for r in raw("observation") if r["normalized_code"] == "71802-3")
    got = Counter(s.filter(pl.col("question_code") == "71802-3")["answer_code"].to_list())
    assert got == {"LA30189-7": housing["I have housing"], "ASKU": housing["I choose not to answer this question"]}
    assert set(s["member_id"]) <= set(members)


@pytest.mark.slow
def test_tuva_runs_end_to_end_and_finds_the_same_stays_and_ed_visits(tmp_path):
    from equity_pipeline.claims import final_claims
    from equity_pipeline.cli import run_pipeline
    from equity_pipeline.encounters import ed_visits, inpatient_stays
    from tests.measures.test_tuva_realdata import EXPECTED, independent_ed_visits, independent_stays

    cfg = tmp_path / "my2017.yaml"
    cfg.write_text("measurement_year: 2017\nmeasures: [ED_VISITS, PCR, CBP]\n")
    out = tmp_path / "out"
    run_pipeline(TUVA, out, str(cfg), run_date="2025-06-30", quiet=True, source="tuva")
    rates = pl.read_csv(out / "public" / "rates.csv", infer_schema=False)
    assert set(rates["measure_id"]) == {"ED_VISITS", "PCR", "CBP"}
    assert "medicare_medicaid_dual" in set(rates.filter(pl.col("stratifier") == "payer")["stratum"])  # duals from eligibility
    assert (out / "report" / "index.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["reconciles"] is True
    # no canonical-rule failure: Tuva's 8 lines with type of bill "13I" (letter frequency code) are valid
    assert manifest["tables"]["medical_claims"]["rules"] == {}
    lines = final_claims(pl.scan_parquet(out / "restricted" / "tables" / "medical_claims.parquet"))
    stays = inpatient_stays(lines).collect()
    tuva = pl.read_csv(TUVA / "medical_claim_seed.csv", infer_schema=False)
    expected_stays, _ = independent_stays(tuva)
    assert stays.height == expected_stays.height == EXPECTED["stays"]
    visits = ed_visits(lines, inpatient_stays(lines)).collect()
    assert visits.height == independent_ed_visits(tuva, expected_stays).height == EXPECTED["ed_visits"]
