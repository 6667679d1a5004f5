"""CMS DE-SynPUF (``--source desynpuf``) on the real sample in ../shared/realdata/claims/cms_desynpuf_samples.

The sample holds the same two beneficiaries in two layouts: ``DE_0/`` with CMS's file names (one
beneficiary summary file per year 2008-2010, carrier claims split into 0A and 0B) and ``input/``
with short names (one beneficiary file with a ``YEAR`` column). Counted by hand from the raw files:

* beneficiaries 0002056B40CEE448 (born 1920-10-01, female, race 1 White, SSA state 15 county 680)
  and 0004D03F1BD5E607 (born 1943-07-01, male, race 3 Other, state 5 county 200): 6 beneficiary-year
  rows, 12 Part A and 12 Part B months every year; the second has 12 HMO months every year.
* carrier: 2 claims; the first fills line slot 1 (HCPCS 66984), the second slots 1-3 (99337,
  90775, 17003): 4 lines. Inpatient: 2 claims, no HCPCS: 2 lines. Outpatient: 2 claims with two
  HCPCS each: 4 lines. 10 medical claim lines, 2 Part D events.
* every diagnosis and procedure code is ICD-9-CM (the files cover 2008-2010), including V codes
  (V0751, V1588, V065) and an E code (E8889) that look like ICD-10 codes.

Skipped with a reason when ../shared is absent (a fresh clone).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.sources import canonical_input_dir, convert

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
SYNPUF = SHARED / "claims" / "cms_desynpuf_samples"
SSA_CROSSWALK = SHARED / "geography" / "synthea_geography" / "fipscodes.csv"
RUN_DATE = "2026-11-22"
BENES = ("0002056B40CEE448", "0004D03F1BD5E607")


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared CMS sample not found at {path} (expected ../shared/realdata next to the repo)")
    return path


def raw(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    out = {}
    for name in ("DE_0", "input"):
        root = tmp_path_factory.mktemp(name)
        result = convert("desynpuf", need(SYNPUF / name), root)
        out[name] = (result, {t: pl.read_parquet(canonical_input_dir(root) / f"{t}.parquet") for t in result["tables_written"]})
    return out


def test_every_row_is_mapped_in_both_layouts(layouts):
    for name, (result, _) in layouts.items():
        folder = SYNPUF / name
        assert result["reconciles"] is True
        assert {f: c["read"] for f, c in result["files"].items()} == {p.name: len(raw(p)) for p in folder.glob("*.csv")}
        assert result["totals"] == {"read": 14, "mapped": 14, "quarantined": 0}, name
        assert result["tables_written"] == {"members": 2, "enrollment": 2, "medical_claims": 10, "pharmacy_claims": 2}, name
        assert "icd9_codes" in result["warnings"]
        assert not any(b in json.dumps(result) for b in BENES)


def test_both_layouts_give_the_same_tables(layouts):
    a, b = layouts["DE_0"][1], layouts["input"][1]
    for table in a:
        assert a[table].sort(pl.all()).equals(b[table].sort(pl.all())), table


def test_members_and_ssa_counties(layouts):
    """SSA 15680 and 05200 looked up in Synthea's SSA/FIPS ZIP table (its SSA codes lost their
    leading zero): Ripley County IN 18137, Los Angeles County CA 06037."""
    _, tables = layouts["input"]
    ssa: dict[str, set[str]] = {}
    for row in raw(SSA_CROSSWALK):
        ssa.setdefault(row["ssacounty"].zfill(5), set()).add(row["fipscounty"].zfill(5))
    members = {r["member_id"]: r for r in tables["members"].iter_rows(named=True)}
    latest = {r["DESYNPUF_ID"]: r for r in raw(SYNPUF / "input" / "beneficiary_summary.csv") if r["YEAR"] == "2010"}
    race = {"1": "2106-3", "3": "2131-1"}  # CCW race code: 1 White, 3 Other (-> Some other race)
    for bene, r in latest.items():
        m = members[bene]
        assert m["race_ethnicity_codes"] == race[r["BENE_RACE_CD"]] and m["race_ethnicity_source"] == "self_reported"
        assert m["sex"] == {"1": "M", "2": "F"}[r["BENE_SEX_IDENT_CD"]]
        assert m["birth_date"] == iso(r["BENE_BIRTH_DT"]) and m["death_date"] is None
        assert {m["county_fips"]} == ssa[r["SP_STATE_CODE"].zfill(2) + r["BENE_COUNTY_CD"].zfill(3)]
        assert m["zip"] is None and m["last_name"] is None  # DE-SynPUF has no ZIP or names
    assert {m["county_fips"] for m in members.values()} == {"18137", "06037"}


def test_enrollment_from_month_counts(layouts):
    _, tables = layouts["input"]
    enr = tables["enrollment"].sort("member_id")
    assert enr.select("member_id", "payer", "line_of_business", "dual_status", "enrollment_start", "enrollment_end").rows() == [
        (BENES[0], "medicare", "medicare_ffs", None, "2008-01-01", "2010-12-31"),
        (BENES[1], "medicare", "medicare_advantage", None, "2008-01-01", "2010-12-31"),
    ]


def _claims_raw(folder: Path, pattern: str) -> list[dict[str, str]]:
    return [r for p in sorted(folder.glob(f"*{pattern}*.csv")) for r in raw(p)]


def test_icd9_codes_are_carried_and_flagged_never_in_icd10_columns(layouts):
    """Every ICD-9 code of every raw claim (claim, admitting and line diagnoses; procedures) is in
    the icd9 columns of that claim's canonical lines, and no diagnosis_code_* / procedure_code_*
    column holds anything: an ICD-10 value set cannot match them (V1588 and E8889 would otherwise
    look like ICD-10 codes)."""
    _, tables = layouts["DE_0"]
    claims = tables["medical_claims"]
    assert claims.select(pl.col(r"^(diagnosis|procedure)_code_\d+$")).null_count().sum_horizontal().item() == claims.height * 18
    assert set(claims["diagnosis_code_system"]) == {"ICD-9-CM"}
    folder = SYNPUF / "DE_0"
    seen = {"V1588", "E8889"}
    for pattern in ("Carrier_Claims", "Inpatient_Claims", "Outpatient_Claims"):
        for r in _claims_raw(folder, pattern):
            dx = {v for k, v in r.items() if v and ("ICD9_DGNS_CD" in k)}
            px = {v for k, v in r.items() if v and k.startswith("ICD9_PRCDR_CD")}
            lines = claims.filter(pl.col("claim_id") == r["CLM_ID"])
            got_dx = set("|".join(lines["icd9_diagnosis_codes"].drop_nulls()).split("|")) - {""}
            got_px = set("|".join(lines["icd9_procedure_codes"].drop_nulls()).split("|")) - {""}
            assert (got_dx, got_px) == (dx, px), r["CLM_ID"]
            seen -= dx
    assert not seen  # the look-alike codes are in the sample and were carried


def test_claim_lines_hcpcs_and_payments(layouts):
    result, tables = layouts["DE_0"]
    claims = tables["medical_claims"]
    folder = SYNPUF / "DE_0"
    for r in _claims_raw(folder, "Carrier_Claims"):
        lines = claims.filter(pl.col("claim_id") == r["CLM_ID"]).sort(pl.col("claim_line").cast(pl.Int64))
        slots = [i for i in range(1, 14) if r[f"HCPCS_CD_{i}"]]
        assert lines["hcpcs_code"].to_list() == [r[f"HCPCS_CD_{i}"] for i in slots]
        assert [float(x) for x in lines["paid_amount"]] == [float(r[f"LINE_NCH_PMT_AMT_{i}"]) for i in slots]
        assert [float(x) for x in lines["allowed_amount"]] == [float(r[f"LINE_ALOWD_CHRG_AMT_{i}"]) for i in slots]
        assert set(lines["claim_type"]) == {"professional"}
    for pattern, bill in (("Inpatient_Claims", "111"), ("Outpatient_Claims", None)):
        for r in _claims_raw(folder, pattern):
            lines = claims.filter(pl.col("claim_id") == r["CLM_ID"])
            hcpcs = [r[f"HCPCS_CD_{i}"] for i in range(1, 46) if r[f"HCPCS_CD_{i}"]]
            assert lines.height == max(1, len(hcpcs)) and set(lines["hcpcs_code"].drop_nulls()) == set(hcpcs)
            assert lines["paid_amount"].cast(pl.Float64).sum() == float(r["CLM_PMT_AMT"])  # once per claim
            assert set(lines["bill_type"]) == {bill} and set(lines["claim_from_date"]) == {iso(r["CLM_FROM_DT"])}
            if bill:
                assert set(lines["admit_date"]) == {iso(r["CLM_ADMSN_DT"])} and set(lines["drg_code"]) == {r["CLM_DRG_CD"]}
    assert claims["facility_ccn"].null_count() == claims.height  # 1513QQ, 0506GC, ... are not CCNs
    assert sum(c["notes"].get("ccn_invalid_not_carried", 0) for c in result["files"].values()) == 6
    fills = {r["claim_id"]: r for r in tables["pharmacy_claims"].iter_rows(named=True)}
    for r in _claims_raw(folder, "Prescription_Drug_Events"):
        paid = float(r["TOT_RX_CST_AMT"]) - float(r["PTNT_PAY_AMT"])  # 270 - 10 = 260; 10 - 20 < 0
        assert fills[r["PDE_ID"]]["paid_amount"] == (str(paid) if paid >= 0 else None)
        assert fills[r["PDE_ID"]]["ndc"] == r["PROD_SRVC_ID"] and fills[r["PDE_ID"]]["fill_date"] == iso(r["SRVC_DT"])


def test_partial_year_coverage_is_placed_and_warned(tmp_path):
    """Hand-made: 6 months in 2009 without death -> July-December; 5 months in 2010 with death on
    2010-05-20 -> January-May; 0 months -> no span; HMO months fewer than covered -> unknown line
    of business; race code 7 is not in the CCW table -> quarantined."""
    head = "YEAR,DESYNPUF_ID,BENE_BIRTH_DT,BENE_DEATH_DT,BENE_SEX_IDENT_CD,BENE_RACE_CD,SP_STATE_CODE,BENE_COUNTY_CD,BENE_HI_CVRAGE_TOT_MONS,BENE_SMI_CVRAGE_TOT_MONS,BENE_HMO_CVRAGE_TOT_MONS\n"
    rows = ["2009,A,19400101,,1,2,05,200,6,0,0", "2010,B,19400101,20100520,2,5,05,200,5,5,2", "2010,C,19400101,,2,1,05,200,0,0,0",
            "2010,D,19400101,,2,7,05,200,12,12,0"]
    (tmp_path / "beneficiary_summary.csv").write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    result = convert("desynpuf", tmp_path, tmp_path / "out")
    c = result["files"]["beneficiary_summary.csv"]
    assert (c["read"], c["quarantined"], c["reasons"]) == (4, 1, {"unmapped_race_code": 1})
    assert c["notes"]["partial_year_placed_at_year_end"] == 2 and c["notes"]["no_coverage_months"] == 1
    assert c["notes"]["ffs_and_hmo_months_lob_unknown"] == 1
    assert "partial_year_coverage" in result["warnings"] and "carrier_absent" in result["warnings"]
    enr = pl.read_parquet(canonical_input_dir(tmp_path / "out") / "enrollment.parquet").sort("member_id")
    assert enr.select("member_id", "line_of_business", "enrollment_start", "enrollment_end").rows() == [
        ("A", "medicare_ffs", "2009-07-01", "2009-12-31"), ("B", None, "2010-01-01", "2010-05-31")]
    members = pl.read_parquet(canonical_input_dir(tmp_path / "out") / "members.parquet").sort("member_id")
    assert members.select("member_id", "race_ethnicity_codes", "death_date").rows() == [
        ("A", "2054-5", None), ("B", "2135-2", "2010-05-20"), ("C", "2106-3", None)]


# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_desynpuf_sample_runs_end_to_end(tmp_path):
    """Measurement year 2009: rates and the report are produced; measures find no ICD-10 event in
    ICD-9 data (the event table has no ICD10CM row) while CPT/HCPCS and type-of-bill events are
    found; the validation result lists the ICD-9 columns as extra columns. TCOC by hand: the only
    2009 service is the inpatient claim of 0002056B40CEE448 on 2009-02-08 paying 13000; the other
    beneficiary has 0 in 2009; 12 member months each."""
    from equity_pipeline.cli import run_pipeline

    cfg = tmp_path / "config.yaml"
    cfg.write_text("measurement_year: 2009\n", encoding="utf-8")
    out = tmp_path / "out"
    run_pipeline(need(SYNPUF / "DE_0"), out, str(cfg), run_date=RUN_DATE, quiet=True, source="desynpuf")
    assert pl.read_parquet(out / "public" / "rates.parquet").height > 0
    assert (out / "report" / "index.html").stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["source"] == "desynpuf" and manifest["source"]["reconciles"] is True
    assert "icd9_codes" in manifest["source"]["warnings"]
    for table, rows in manifest["source"]["tables_written"].items():
        assert manifest["tables"][table]["read"] == rows and manifest["tables"][table]["quarantined"] == 0, table
    events = pl.read_parquet(out / "restricted" / "events.parquet")
    assert events.filter(pl.col("code_system") == "ICD10CM").height == 0
    assert events.filter(pl.col("code_system") == "BILLTYPE").height > 0  # the inpatient stays (111)
    validation = json.loads((out / "validation" / "medical_claims.json").read_text())
    assert {"icd9_diagnosis_codes", "icd9_procedure_codes", "diagnosis_code_system"} <= set(validation["extra_columns"])
    tcoc = pl.read_parquet(out / "restricted" / "measures" / "TCOC_PMPM.parquet")
    got = {m: (n, d) for m, n, d in tcoc.select("member_id", "numerator_value", "denominator_value").iter_rows()}
    assert got == {BENES[0]: (13000.0, 12.0), BENES[1]: (0.0, 12.0)}


def test_cli_and_registry_accept_the_cms_sources():
    from equity_pipeline.cli import build_parser
    from equity_pipeline.sources import READERS, check_source

    for source in ("cms-rif", "desynpuf"):
        assert check_source(source) == source and source in READERS
        assert build_parser().parse_args(["run", "--input", "x", "--out", "y", "--source", source]).source == source
