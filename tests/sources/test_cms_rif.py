"""CMS CCW RIF (``--source cms-rif``) on the real sample in ../shared/realdata/claims/cms_ccw_rif_samples.

The sample is the CMS Beneficiary FHIR Data synthetic RIF export: 3 beneficiaries (-1000006,
-1000014, -1000018), pipe-delimited, the beneficiary files with a UTF-8 BOM. Counted by hand from the
raw files (plain ``csv``, independent of the reader):

* 11 annual beneficiary files 2011-2021 x 3 rows = 33 rows (INSERT in 2011, UPDATE after). The file
  ``beneficiary_2018.csv`` carries ``RFRNC_YR`` 2019, so its 3 rows are earlier versions of the
  2019 rows and are superseded by ``beneficiary_2019.csv``: no beneficiary has 2018 enrollment.
  ``beneficiary_history.csv`` has 3 rows (earlier identifiers; not carried).
* claim rows: carrier 221 (37 claims), DME 1, inpatient 16, outpatient 19, SNF 67 (1 claim), HHA 15
  (14 claims), hospice 8 (1 claim), PDE 18: 347 medical claim lines, 18 fills. ``export_summary.csv``
  (written by the exporter) gives the claims per beneficiary and file, and is not itself read.
* every NPI in the sample starts with 8 or 9 (out of range on purpose), so none is carried.

Skipped with a reason when ../shared is absent (a fresh clone).
"""
from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.sources import canonical_input_dir, convert

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
RIF = SHARED / "claims" / "cms_ccw_rif_samples"
SSA_CROSSWALK = SHARED / "geography" / "synthea_geography" / "fipscodes.csv"
CLAIM_FILES = ("carrier", "dme", "inpatient", "outpatient", "snf", "hha", "hospice")
RUN_DATE = "2026-11-22"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared CMS sample not found at {path} (expected ../shared/realdata next to the repo)")
    return path


def raw(name: str) -> list[dict[str, str]]:
    with (RIF / name).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="|"))


def day(text: str) -> date:
    return datetime.strptime(text, "%d-%b-%Y").date()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("rif")
    result = convert("cms-rif", need(RIF), out)
    tables = {t: pl.read_parquet(canonical_input_dir(out) / f"{t}.parquet") for t in result["tables_written"]}
    return result, tables, out


def test_every_row_is_mapped_or_quarantined(converted):
    result, _, out = converted
    assert result["reconciles"] is True
    expected = {p.name: len(raw(p.name)) for p in RIF.glob("*.csv") if p.name != "export_summary.csv"}
    assert {f: c["read"] for f, c in result["files"].items()} == expected
    assert sum(expected.values()) == 33 + 3 + 347 + 18
    for file, c in result["files"].items():
        assert c["read"] == c["mapped"] + c["quarantined"] == c["mapped"] + sum(c["reasons"].values()), file
        q = canonical_input_dir(out) / "_quarantine" / f"{file}.parquet"
        assert (pl.read_parquet(q).height if q.exists() else 0) == c["quarantined"], file
    assert result["files"]["beneficiary_history.csv"]["reasons"] == {"history_not_carried": 3}
    assert result["totals"]["quarantined"] == 3  # the history rows only
    assert "export_summary.csv" in result["warnings"]["files_not_read"]
    assert result["tables_written"] == {"members": 3, "enrollment": 21, "medical_claims": 347, "pharmacy_claims": 18}
    text = json.dumps(result)
    assert not any(b in text for b in ("-1000006", "-1000014", "-1000018", "Kris", "1942"))  # counts only, no values


def test_dml_final_version_and_reference_year(converted):
    result, tables, _ = converted
    b2018 = result["files"]["beneficiary_2018.csv"]["notes"]
    assert b2018 == {"reference_year_differs_from_file_name": 3, "superseded_by_later_version": 3}
    assert all(r["RFRNC_YR"] == "2019" for r in raw("beneficiary_2018.csv"))
    # the 2011..2020 rows give enrollment only; the 2021 rows (latest year) give the members
    assert result["files"]["beneficiary_2011.csv"]["notes"]["earlier_year_enrollment_only"] == 3
    assert "earlier_year_enrollment_only" not in result["files"]["beneficiary_2021.csv"]["notes"]
    enr = tables["enrollment"].filter(pl.col("payer") == "medicare")
    mid2018 = "2018-06-15"
    assert enr.filter((pl.col("enrollment_start") <= mid2018) & (pl.col("enrollment_end") >= mid2018)).height == 0


def test_members_demographics_and_ssa_counties(converted):
    """Race code 1 (White) for all three, SSA source -> self_reported; sex 2 -> F, 1 -> M; birth dates
    DD-Mon-YYYY; ZIPs lost their leading zero in the annual files (1730 -> 01730); SSA county
    STATE_CODE + BENE_COUNTY_CD (22090, 22000) looked up in Synthea's SSA/FIPS ZIP table, and
    checked against the file's own FIPS_STATE_CNTY_JAN_CD where it has one."""
    _, tables, _ = converted
    members = {r["member_id"]: r for r in tables["members"].iter_rows(named=True)}
    latest = {r["BENE_ID"]: r for r in raw("beneficiary_2021.csv")}
    assert set(members) == set(latest) == {"-1000006", "-1000014", "-1000018"}
    ssa = {}
    with SSA_CROSSWALK.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            ssa.setdefault(row["ssacounty"].zfill(5), set()).add(row["fipscounty"].zfill(5))
    for bene, r in latest.items():
        m = members[bene]
        assert (m["race_ethnicity_codes"], m["race_ethnicity_source"]) == ("2106-3", "self_reported")
        assert m["sex"] == {"1": "M", "2": "F"}[r["BENE_SEX_IDENT_CD"]]
        assert m["birth_date"] == day(r["BENE_BIRTH_DT"]).isoformat()
        assert m["zip"] == (r["BENE_ZIP_CD"].zfill(5) if r["BENE_ZIP_CD"] else None)
        code = r["BENE_COUNTY_CD"] if len(r["BENE_COUNTY_CD"]) == 5 else r["STATE_CODE"] + r["BENE_COUNTY_CD"].zfill(3)
        assert ssa[code] == {m["county_fips"]}, bene
        if r["FIPS_STATE_CNTY_JAN_CD"]:
            assert m["county_fips"] == r["FIPS_STATE_CNTY_JAN_CD"], bene
        assert m["disability"] == "false"  # BENE_ENTLMT_RSN_CURR 0 (old age) for all three
        assert m["language"] == "UNK"
    assert {members[b]["county_fips"] for b in members} == {"25017", "25001"}  # Middlesex, Barnstable MA
    assert members["-1000006"]["zip"] == "01730" and members["-1000006"]["last_name"] == "Kris"


def _covered_months(spans: pl.DataFrame) -> dict[str, set[tuple[int, int]]]:
    out: dict[str, set[tuple[int, int]]] = {}
    for member, start, end in spans.select("member_id", "enrollment_start", "enrollment_end").iter_rows():
        y, m = int(start[:4]), int(start[5:7])
        while (y, m) <= (int(end[:4]), int(end[5:7])):
            out.setdefault(member, set()).add((y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def test_enrollment_months_and_dual_status(converted):
    """Independent recount from the raw annual files: the last row per BENE_ID + RFRNC_YR; a month
    is covered when MDCR_ENTLMT_BUYIN_<m>_IND is 1, 2, 3, A, B or C; a full dual month
    (META_DUAL_ELGBL_STUS code 02, 04 or 08, CMS's full-benefit codes) also gives Medicaid. E.g.
    -1000014 is NA (not dual) every month; -1000006 is code 4 (SLMB + full Medicaid) in 2011."""
    _, tables, _ = converted
    final: dict[tuple[str, str], dict[str, str]] = {}
    for year in range(2011, 2022):
        for r in raw(f"beneficiary_{year}.csv"):
            final[(r["BENE_ID"], r["RFRNC_YR"])] = r
    months = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEPT", "OCT", "NOV", "DEC")
    medicare: dict[str, set] = {}
    medicaid: dict[str, set] = {}
    for (bene, year), r in final.items():
        for i in range(12):
            if r[f"MDCR_ENTLMT_BUYIN_{i + 1}_IND"] in {"1", "2", "3", "A", "B", "C"}:
                medicare.setdefault(bene, set()).add((int(year), i + 1))
                if r[f"META_DUAL_ELGBL_STUS_{months[i]}_CD"].zfill(2) in {"02", "04", "08"}:
                    medicaid.setdefault(bene, set()).add((int(year), i + 1))
    enr = tables["enrollment"]
    assert _covered_months(enr.filter(pl.col("payer") == "medicare")) == medicare
    assert _covered_months(enr.filter(pl.col("payer") == "medicaid")) == medicaid
    assert sum(len(v) for v in medicare.values()) == 3 * (7 * 12 + 2 * 12 + 5)  # 2011-17, 2019-20, Jan-May 2021
    assert set(enr.filter(pl.col("member_id") == "-1000014")["dual_status"]) == {"none"}
    first = enr.filter((pl.col("member_id") == "-1000006") & (pl.col("enrollment_start") == "2011-01-01"))
    assert set(first.select("payer", "dual_status").iter_rows()) == {("medicare", "full"), ("medicaid", "full")}
    assert set(enr["line_of_business"].drop_nulls()) == {"medicare_ffs"}  # HMO indicators empty: no MA month


def test_claims_per_beneficiary_match_the_export_summary(converted):
    _, tables, _ = converted
    claims = tables["medical_claims"]
    with (RIF / "export_summary.csv").open(encoding="utf-8") as fh:  # comma-delimited, unlike the RIF files
        summary = {r["BENE_ID"]: r for r in csv.DictReader(fh)}
    for kind in CLAIM_FILES:
        rows = raw(f"{kind}.csv")
        ids = {r["CLM_ID"] for r in rows}
        mine = claims.filter(pl.col("claim_id").is_in(list(ids)))
        assert mine.height == len(rows), kind  # one canonical line per source row
        per_bene = dict(mine.group_by("member_id").agg(pl.col("claim_id").n_unique()).iter_rows())
        for bene, s in summary.items():
            assert per_bene.get(bene, 0) == int(s[f"{kind.upper()}_CLAIMS"]), (kind, bene)
    assert claims.height == 221 + 1 + 16 + 19 + 67 + 15 + 8 == 347
    pde = tables["pharmacy_claims"]
    assert dict(pde.group_by("member_id").len().iter_rows()) == {b: int(s["PDE_CLAIMS"]) for b, s in summary.items() if int(s["PDE_CLAIMS"])}


def test_claim_line_mapping(converted):
    """Type of bill = CLM_FAC_TYPE_CD + CLM_SRVC_CLSFCTN_TYPE_CD + CLM_FREQ_CD: inpatient 1,1,1 -> 111;
    SNF 2,1,1 -> 211; HHA 3,3,1/9 -> 331/339; hospice 8,1,1 -> 811; outpatient 1,3,1 -> 131. The SNF
    claim lists 18 ICD-10-PCS codes, 17 distinct: 6 fill procedure_code_1..6, 11 go to the overflow
    column. Versions are all 0 (ICD-10), so no ICD-9 column is filled and no ICD-9 warning is raised."""
    result, tables, _ = converted
    claims = tables["medical_claims"]
    bill = dict(claims.group_by("bill_type").len().iter_rows())
    assert bill == {"111": 16, "131": 19, "211": 67, "331": 7, "339": 8, "811": 8, None: 222}
    assert set(claims.filter(pl.col("bill_type").is_null())["claim_type"]) == {"professional"}
    snf = claims.filter(pl.col("bill_type") == "211").row(0, named=True)
    px = [c for c in (raw("snf.csv")[0][f"ICD_PRCDR_CD{i}"] for i in range(1, 26)) if c]
    distinct = list(dict.fromkeys(px))
    assert (len(px), len(distinct)) == (18, 17)
    assert [snf[f"procedure_code_{i}"] for i in range(1, 7)] == distinct[:6]
    assert snf["procedure_codes_overflow"].split("|") == distinct[6:]
    assert claims["icd9_diagnosis_codes"].null_count() == claims.height and "icd9_codes" not in result["warnings"]
    # every diagnosis code of every raw inpatient row is in its canonical line (columns or overflow)
    inpatient = {r["CLM_ID"] + "/" + r["CLM_LINE_NUM"]: r for r in raw("inpatient.csv")}
    for line in claims.filter(pl.col("bill_type") == "111").iter_rows(named=True):
        r = inpatient[line["claim_id"] + "/" + line["claim_line"]]
        codes = {r[k] for k in r if (k.startswith("ICD_DGNS_CD") or k in ("PRNCPAL_DGNS_CD", "ADMTG_DGNS_CD", "FST_DGNS_E_CD")
                                    or k.startswith("ICD_DGNS_E_CD")) and r[k].strip()}
        mine = {line[f"diagnosis_code_{i}"] for i in range(1, 13)} - {None}
        mine |= set((line["diagnosis_codes_overflow"] or "").split("|")) - {""}
        assert mine == codes
        assert line["diagnosis_code_1"] == r["PRNCPAL_DGNS_CD"]
        assert line["discharge_status"] == "01" and line["facility_ccn"] == r["PRVDR_NUM"]
        assert line["admit_date"] == day(r["CLM_ADMSN_DT"]).isoformat()
    assert claims["billing_npi"].null_count() == claims.height
    notes = result["files"]
    assert sum(notes[f"{k}.csv"]["notes"]["npi_failed_check_not_carried"] for k in CLAIM_FILES) == 347
    carrier = claims.filter(pl.col("claim_type") == "professional")
    assert set(carrier["place_of_service"]) == {"11", "20", "23"}  # carrier 11/20, the DME line 23


def test_pde_fills(converted):
    _, tables, _ = converted
    fills = {r["claim_id"]: r for r in tables["pharmacy_claims"].iter_rows(named=True)}
    for r in raw("pde.csv"):
        f = fills[r["PDE_ID"]]
        assert f["ndc"] == r["PROD_SRVC_ID"] and len(f["ndc"]) == 11
        assert float(f["paid_amount"]) == pytest.approx(float(r["CVRD_D_PLAN_PD_AMT"]) + float(r["NCVRD_PLAN_PD_AMT"]))
        assert f["fill_date"] == day(r["SRVC_DT"]).isoformat() and f["days_supply"] == r["DAYS_SUPLY_NUM"]
        assert f["prescriber_npi"] is None  # 999... prescriber ids fail the NPI check


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    cols = list(rows[0])
    path.write_text("\ufeff" + "|".join(cols) + "\n" + "".join("|".join(r.get(c, "") for c in cols) + "\n" for r in rows), encoding="utf-8")


def test_dml_insert_update_delete_on_a_small_export(tmp_path):
    """Hand-made: one beneficiary inserted then updated (race 0 -> unknown, RTI 5 -> Hispanic,
    imputed), one inserted then deleted; a carrier line inserted then updated (new payment), a
    non-final claim (FINAL_ACTION N -> void), an unknown DML value, a claim type code outside
    the table and a 9-digit ZIP that lost its leading zero."""
    base = {"DML_IND": "INSERT", "BENE_ID": "1", "RFRNC_YR": "2022", "STATE_CODE": "22", "BENE_COUNTY_CD": "090",
            "BENE_ZIP_CD": "17301234", "BENE_BIRTH_DT": "01-Feb-1950", "BENE_SEX_IDENT_CD": "2", "BENE_RACE_CD": "1",
            "RTI_RACE_CD": "5", "MDCR_ENTLMT_BUYIN_1_IND": "3", "META_DUAL_ELGBL_STUS_JAN_CD": "02"}
    _write(tmp_path / "beneficiary_2022.csv", [
        base,
        {**base, "DML_IND": "UPDATE", "BENE_RACE_CD": "0"},
        {**base, "BENE_ID": "2"},
        {**base, "BENE_ID": "2", "DML_IND": "DELETE"},
        {**base, "BENE_ID": "3", "DML_IND": "MERGE"},
    ])
    line = {"DML_IND": "INSERT", "BENE_ID": "1", "CLM_ID": "10", "FINAL_ACTION": "F", "NCH_CLM_TYPE_CD": "71",
            "CLM_FROM_DT": "03-Mar-2022", "CLM_THRU_DT": "03-Mar-2022", "LINE_NUM": "1", "HCPCS_CD": "99213",
            "LINE_NCH_PMT_AMT": "50.00", "PRNCPAL_DGNS_CD": "Z0000", "PRNCPAL_DGNS_VRSN_CD": "0", "ORG_NPI_NUM": "1234567893"}
    _write(tmp_path / "carrier.csv", [
        line,
        {**line, "DML_IND": "UPDATE", "LINE_NCH_PMT_AMT": "75.00"},
        {**line, "CLM_ID": "11", "FINAL_ACTION": "N"},
        {**line, "CLM_ID": "12", "NCH_CLM_TYPE_CD": "99"},
    ])
    result = convert("cms-rif", tmp_path, tmp_path / "out")
    assert result["reconciles"] is True
    bene = result["files"]["beneficiary_2022.csv"]
    assert (bene["read"], bene["quarantined"], bene["reasons"]) == (5, 1, {"unknown_dml_ind": 1})
    assert bene["notes"]["superseded_by_later_version"] == 2 and bene["notes"]["deleted_by_dml"] == 1
    assert bene["notes"]["race_from_rti_imputed"] == 1
    out = canonical_input_dir(tmp_path / "out")
    members = pl.read_parquet(out / "members.parquet")
    assert members.select("member_id", "race_ethnicity_codes", "race_ethnicity_source", "zip", "county_fips").rows() == [
        ("1", "2135-2", "imputed", "01730", "25017")]
    enr = pl.read_parquet(out / "enrollment.parquet").sort("payer")
    assert enr.select("payer", "dual_status", "enrollment_start", "enrollment_end").rows() == [
        ("medicaid", "full", "2022-01-01", "2022-01-31"), ("medicare", "full", "2022-01-01", "2022-01-31")]
    car = result["files"]["carrier.csv"]
    assert (car["read"], car["quarantined"], car["reasons"]) == (4, 1, {"unmapped_claim_type": 1})
    assert car["notes"]["superseded_by_later_version"] == 1 and car["notes"]["not_final_action_as_void"] == 1
    claims = pl.read_parquet(out / "medical_claims.parquet").sort("claim_id")
    assert claims.select("claim_id", "claim_status", "paid_amount", "billing_npi", "diagnosis_code_1").rows() == [
        ("10", "paid", "75.0", "1234567893", "Z0000"), ("11", "void", "50.0", "1234567893", "Z0000")]
    assert "dme_absent" in result["warnings"] and "pde_absent" in result["warnings"]


# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_rif_sample_runs_end_to_end(tmp_path):
    """Measurement year 2020, by hand from the raw files: COL (45-75 on 2020-12-31, enrolled 2019-2020)
    has -1000014 and -1000018 (born November 1945, 75), not -1000006 (78): -1000014 has a hospice
    claim (22-Nov-2020), so denominator 1 and one hospice exclusion. TCOC: paid in 2020 per
    beneficiary = carrier/DME LINE_NCH_PMT_AMT by line date + institutional CLM_PMT_AMT once per
    claim by from date + PDE covered + non-covered plan paid, over 12 member months."""
    from equity_pipeline.cli import run_pipeline

    cfg = tmp_path / "config.yaml"
    cfg.write_text("measurement_year: 2020\n", encoding="utf-8")
    out = tmp_path / "out"
    run_pipeline(need(RIF), out, str(cfg), run_date=RUN_DATE, quiet=True, source="cms-rif")
    assert pl.read_parquet(out / "public" / "rates.parquet").height > 0
    assert (out / "report" / "index.html").stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    source = manifest["source"]
    assert source["source"] == "cms-rif" and source["reconciles"] is True
    for table, rows in source["tables_written"].items():
        assert manifest["tables"][table]["read"] == rows, table
        assert manifest["tables"][table]["quarantined"] == 0, table  # every converted row passes the contract
    col = json.loads((out / "counts" / "COL.json").read_text())
    assert (col["denominator"], col["excluded"], col["not_eligible"]["not_age"]) == (1, {"hospice": 1}, 1)
    paid: dict[str, float] = {}
    for kind in ("carrier", "dme"):
        for r in raw(f"{kind}.csv"):
            if day(r["LINE_1ST_EXPNS_DT"]).year == 2020:
                paid[r["BENE_ID"]] = paid.get(r["BENE_ID"], 0) + float(r["LINE_NCH_PMT_AMT"])
    for kind in ("inpatient", "outpatient", "snf", "hha", "hospice"):
        first = {}
        for r in raw(f"{kind}.csv"):
            first.setdefault(r["CLM_ID"], r)
        for r in first.values():
            if day(r["CLM_FROM_DT"]).year == 2020:
                paid[r["BENE_ID"]] = paid.get(r["BENE_ID"], 0) + float(r["CLM_PMT_AMT"])
    for r in raw("pde.csv"):
        if day(r["SRVC_DT"]).year == 2020:
            paid[r["BENE_ID"]] = paid.get(r["BENE_ID"], 0) + float(r["CVRD_D_PLAN_PD_AMT"]) + float(r["NCVRD_PLAN_PD_AMT"])
    tcoc = pl.read_parquet(out / "restricted" / "measures" / "TCOC_PMPM.parquet")
    got = {m: (n, d) for m, n, d in tcoc.select("member_id", "numerator_value", "denominator_value").iter_rows()}
    assert set(got) == {"-1000006", "-1000014", "-1000018"}
    for bene, (num, months) in got.items():
        assert num == pytest.approx(paid.get(bene, 0.0)) and months == 12, bene
    assert paid["-1000014"] > 20000  # the 2020 hospice and outpatient claims
    public = (out / "public" / "rates.csv").read_text() + (out / "report" / "index.html").read_text() + json.dumps(manifest)
    assert not any(b in public for b in ("-1000006", "-1000014", "-1000018"))


def test_mbsf_column_names_and_monthly_changes(tmp_path):
    """Hand-made MBSF-style extract (comma-delimited, no DML_IND, ``_<mm>`` monthly columns,
    ``BENE_ENROLLMT_REF_YR``, 3-digit SSA ``COUNTY_CD``, SAS dates): entitled January-August 2020;
    HMO indicator C (lock-in MA) from May with contract H1234; dual status 02 (full) January-March,
    03 (SLMB only, partial) April-August. Spans: FFS full Jan-Mar, FFS partial Apr, MA partial
    May-Aug (plan H1234); Medicaid full Jan-Mar. SSA 05200 is Los Angeles County, 06037; the file's
    own FIPS county for January says Orange County (06059): the SSA county is kept and the
    difference counted."""
    head = ["BENE_ID", "BENE_ENROLLMT_REF_YR", "STATE_CODE", "COUNTY_CD", "ZIP_CD", "BENE_BIRTH_DT", "SEX_IDENT_CD",
            "BENE_RACE_CD", "ENTLMT_RSN_CURR", "STATE_CNTY_FIPS_CD_01"]
    row = ["77", "2020", "05", "200", "900121234", "17JAN1942", "1", "4", "1", "06059"]
    for m in range(1, 13):
        head += [f"MDCR_ENTLMT_BUYIN_IND_{m:02d}", f"HMO_IND_{m:02d}", f"DUAL_STUS_CD_{m:02d}", f"PTC_CNTRCT_ID_{m:02d}"]
        row += ["3" if m <= 8 else "0", "C" if 5 <= m <= 8 else "0", ("02" if m <= 3 else "03") if m <= 8 else "00",
                "H1234" if 5 <= m <= 8 else ""]
    (tmp_path / "mbsf_abcd_2020.csv").write_text(",".join(head) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    result = convert("cms-rif", tmp_path, tmp_path / "out")
    assert result["files"]["mbsf_abcd_2020.csv"] == {"read": 1, "mapped": 1, "quarantined": 0, "reasons": {},
                                                     "notes": {"fips_column_differs_ssa_county_used": 1}}
    out = canonical_input_dir(tmp_path / "out")
    m = pl.read_parquet(out / "members.parquet").row(0, named=True)
    assert (m["birth_date"], m["zip"], m["county_fips"], m["race_ethnicity_codes"], m["sex"], m["disability"]) == (
        "1942-01-17", "90012", "06037", "2028-9", "M", "true")
    enr = pl.read_parquet(out / "enrollment.parquet").sort("payer", "enrollment_start")
    assert enr.select("payer", "line_of_business", "plan_id", "dual_status", "enrollment_start", "enrollment_end").rows() == [
        ("medicaid", None, None, "full", "2020-01-01", "2020-03-31"),
        ("medicare", "medicare_ffs", None, "full", "2020-01-01", "2020-03-31"),
        ("medicare", "medicare_ffs", None, "partial", "2020-04-01", "2020-04-30"),
        ("medicare", "medicare_advantage", "H1234", "partial", "2020-05-01", "2020-08-31"),
    ]
