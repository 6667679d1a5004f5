"""CMS 2008-2010 Data Entrepreneurs' Synthetic Public Use File (DE-SynPUF) -> canonical tables
(``--source desynpuf``).

Input: a folder of DE-SynPUF CSV files, in CMS's own names (``DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv``,
``DE1_0_2008_to_2010_Carrier_Claims_Sample_1A.csv``, ...) or the short names
(``beneficiary_summary.csv`` with a ``YEAR`` column, ``carrier_claims.csv``, ``inpatient_claims.csv``,
``outpatient_claims.csv``, ``prescription_drug_events.csv``). Dates are ``YYYYMMDD``; codes are
ICD-9-CM (the files predate October 2015). Every row of every file read is mapped or quarantined
with a reason; other CSV files are listed under the warning ``files_not_read``.

* members: the beneficiary's latest year: ``BENE_RACE_CD`` (1 White, 2 Black, 3 Other, 5 Hispanic;
  the CCW table in ``sources/data/cms_race_codes.csv``), sex, birth and death dates, county FIPS
  from ``SP_STATE_CODE`` + ``BENE_COUNTY_CD`` (SSA codes). No ZIP, names or language in the file.
* enrollment: per year, the Part A / Part B coverage months (``BENE_HI_CVRAGE_TOT_MONS``,
  ``BENE_SMI_CVRAGE_TOT_MONS``; the larger) -> Medicare months, merged into spans; HMO months give
  the line of business (all HMO: medicare_advantage, none: medicare_ffs, some: unknown). The file
  gives counts, not which months: 12 is the whole year, fewer are placed at the end of the year
  (or ending in the month of death), note ``partial_year_placed_at_year_end`` and a warning.
  No dual status in DE-SynPUF: ``dual_status`` stays empty (unknown).
* medical_claims: carrier claims become one line per filled line slot (HCPCS_CD_1..13 with the line
  payment, allowed amount, line diagnosis, performing NPI); inpatient and outpatient claims one line
  per HCPCS code (at least one), the claim payment on the first line; inpatient claims are bill type
  111 with admission and discharge dates and DRG. All diagnosis and procedure codes are ICD-9:
  carried in ``icd9_diagnosis_codes`` / ``icd9_procedure_codes`` (never in the ICD-10 columns),
  flagged by ``diagnosis_code_system`` = ICD-9-CM, counted per file and warned about. The claim
  files are read and mapped in bounded batches (``common.iter_table``, ``common.SpilledTable``);
  lines are numbered within a claim in one lazy pass over the mapped output at the end.
* pharmacy_claims: PDE -> fills (NDC, days supply, quantity); paid = total cost - patient pay when
  not negative.
"""
from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.sources.cms_common import (
    FILE,
    ICD9,
    ICD9_WARNING,
    MONTH_SCHEMA,
    REASON,
    SEQ,
    amount,
    ccn_columns,
    claim_notes,
    claim_types,
    cms_date,
    codes,
    col,
    county_columns,
    files_matching,
    icd_columns,
    icd_lists,
    iter_files,
    lookup,
    member_notes,
    note_by_file,
    npi_columns,
    race_columns,
    read_files,
    record_by_file,
    spans,
)
from equity_pipeline.sources.common import Reconciliation, SpilledTable
from equity_pipeline.sources.common import write_canonical_contract as write_tables  # noqa: F401 - used by sources.convert

SOURCE = "desynpuf"
KIND = "_kind"  # file kind order (carrier, inpatient, outpatient) of a spilled claim line
PATTERNS = {
    "beneficiary": r"beneficiary_summary",
    "carrier": r"carrier_claims",
    "inpatient": r"inpatient_claims",
    "outpatient": r"outpatient_claims",
    "pde": r"prescription_drug_events",
}
DEGRADES = {
    "carrier": "no carrier claims: no physician/supplier (Part B) claims",
    "inpatient": "no inpatient claims: no hospital stays",
    "outpatient": "no outpatient claims: no hospital outpatient or ED claims",
    "pde": "no prescription drug events: no pharmacy claims",
}
CARRIER_LINES = 13
INSTITUTIONAL_HCPCS = 45
PARTIAL_WARNING = ("DE-SynPUF gives coverage month counts, not the months: a year with fewer than 12 months is placed "
                   "at the end of the year (or ending in the month of death); continuous-enrollment results for such "
                   "years are approximate")


# ---------------------------------------------------------------------------------------------
def _beneficiaries(paths: list[Path], recon: Reconciliation) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = read_files(paths, recon, ("DESYNPUF_ID",))
    name_year = {p.name: (re.search(r"(?<!\d)(\d{4})_beneficiary", p.stem.lower()) or [None, None])[1] for p in paths}
    year = pl.coalesce(col(frame, "YEAR").str.strip_chars(), pl.col(FILE).replace_strict(name_year, default=None, return_dtype=pl.String))
    frame = frame.with_columns(year.cast(pl.Int64, strict=False).alias("_year"))
    frame = frame.with_columns(*race_columns(frame), *county_columns(col(frame, "SP_STATE_CODE"), col(frame, "BENE_COUNTY_CD")))
    sex_raw = col(frame, "BENE_SEX_IDENT_CD").str.strip_chars().fill_null("0")
    a_b = pl.max_horizontal(col(frame, "BENE_HI_CVRAGE_TOT_MONS").cast(pl.Int64, strict=False),
                            col(frame, "BENE_SMI_CVRAGE_TOT_MONS").cast(pl.Int64, strict=False))
    hmo = col(frame, "BENE_HMO_CVRAGE_TOT_MONS").cast(pl.Int64, strict=False).fill_null(0)
    frame = frame.with_columns(lookup(sex_raw, codes("sex")).alias("sex"), a_b.alias("_months"), hmo.alias("_hmo"))
    frame = frame.with_columns(
        pl.coalesce(
            pl.when(pl.col("_year").is_null()).then(pl.lit("missing_year")),
            pl.col("_race_reason"),
            pl.when(pl.col("sex").is_null()).then(pl.lit("unmapped_sex")),
            pl.col("_county_reason"),
            pl.when(pl.col("_months").is_null() | ~pl.col("_months").is_between(0, 12)).then(pl.lit("invalid_coverage_months")),
        ).alias(REASON)
    )
    mapped = record_by_file(recon, frame, [p.name for p in paths])
    # one row per beneficiary and year: a repeated year keeps the later row (note)
    last = pl.col(SEQ) == pl.col(SEQ).max().over("DESYNPUF_ID", "_year")
    note_by_file(recon, mapped, "superseded_by_later_row_same_year", ~last)
    rows = mapped.filter(last)
    latest = rows.sort("_year", SEQ).group_by("DESYNPUF_ID", maintain_order=True).last()
    note_by_file(recon, rows, "earlier_year_enrollment_only", ~pl.col(SEQ).is_in(latest[SEQ].implode()))
    member_notes(recon, latest)
    members = latest.select(
        pl.col("DESYNPUF_ID").alias("member_id"), "race_ethnicity_codes", "race_ethnicity_source",
        pl.lit("UNK").alias("language"), "sex",
        cms_date(col(latest, "BENE_BIRTH_DT")).alias("birth_date"),
        cms_date(col(latest, "BENE_DEATH_DT")).alias("death_date"),
        "county_fips",
    )
    return members, _enrollment(rows, recon)


def _enrollment(rows: pl.DataFrame, recon: Reconciliation) -> pl.DataFrame:
    if rows.height == 0:
        return spans(pl.DataFrame(schema=MONTH_SCHEMA))
    death = cms_date(col(rows, "BENE_DEATH_DT")).str.to_date("%Y-%m-%d", strict=False)
    died_this_year = death.dt.year() == pl.col("_year")
    last_month = pl.when(died_this_year.fill_null(False)).then(death.dt.month().cast(pl.Int64)).otherwise(12)
    first_month = pl.max_horizontal(last_month - pl.col("_months") + 1, pl.lit(1))
    y = rows.with_columns(_first=first_month, _last=last_month)
    covered = y.filter(pl.col("_months") > 0)
    note_by_file(recon, y, "no_coverage_months", pl.col("_months") == 0)
    note_by_file(recon, covered, "partial_year_placed_at_year_end", pl.col("_months") < 12)
    lob = (pl.when(pl.col("_hmo") == 0).then(pl.lit("medicare_ffs"))
           .when(pl.col("_hmo") >= pl.col("_months")).then(pl.lit("medicare_advantage")))
    note_by_file(recon, covered, "ffs_and_hmo_months_lob_unknown", (pl.col("_hmo") > 0) & (pl.col("_hmo") < pl.col("_months")))
    if covered.filter(pl.col("_months") < 12).height:
        recon.warn("partial_year_coverage", PARTIAL_WARNING)
    months = covered.select(
        pl.col("DESYNPUF_ID").alias("member_id"), pl.lit("medicare").alias("payer"), lob.alias("line_of_business"),
        pl.lit(None, dtype=pl.String).alias("plan_id"), pl.lit(None, dtype=pl.String).alias("dual_status"),
        pl.int_ranges(pl.col("_year") * 12 + pl.col("_first") - 1, pl.col("_year") * 12 + pl.col("_last")).alias("month"),
    ).explode("month")
    return spans(months)


# ---------------------------------------------------------------------------------------------
def _expand(frame: pl.DataFrame, n: int, slots: dict[str, str], present: pl.Expr) -> pl.DataFrame:
    """One row per line slot 1..n of each source row (``_seq``; ``slots``: output name -> column
    template with ``{n}``), keeping
    the slots where ``present`` holds, or slot 1 when none does (a claim is never lost)."""
    parts = [frame.select(SEQ, pl.lit(k).alias("_slot"), *[col(frame, t.format(n=k)).alias(name) for name, t in slots.items()])
             for k in range(1, n + 1)]
    long = pl.concat(parts, how="vertical").with_columns(present.fill_null(False).alias("_present"))
    keep = pl.col("_present") | (~pl.col("_present").any().over(SEQ) & (pl.col("_slot") == 1))
    return long.filter(keep).drop("_present")


def _nonzero(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64, strict=False).fill_null(0) != 0


def _number_lines(lf: pl.LazyFrame) -> pl.LazyFrame:
    """``claim_line`` 1..n within each claim (the segments of a claim in order, then source row and
    line slot), claims in id order within each file kind; run over all batches at once."""
    return lf.sort(KIND, "claim_id", "_segment", SEQ, "_slot").with_columns(
        (pl.int_range(pl.len()).over(KIND, "claim_id") + 1).cast(pl.String).alias("claim_line"))


def _claims(kinds: list[tuple[str, list[Path]]], recon: Reconciliation) -> tuple[SpilledTable, bool]:
    """Claim files of every kind, read and mapped batch by batch (a file is never held whole; the
    mapping is row-local), spilled; lines numbered in one pass at the end (:func:`_number_lines`).
    Returns the claims and whether ICD-9 codes were seen."""
    out, icd9 = recon.spill(_number_lines), False
    for order, (kind, paths) in enumerate(kinds):
        for batch in iter_files(paths, recon, ("DESYNPUF_ID", "CLM_ID")):
            lines = _claim_batch(kind, batch, recon, [p.name for p in paths])
            icd9 = claim_notes(recon, lines) or icd9
            out.append(lines.with_columns(pl.lit(order).alias(KIND)))
    return out, icd9


def _claim_batch(kind: str, frame: pl.DataFrame, recon: Reconciliation, files: list[str]) -> pl.DataFrame:
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
    f = record_by_file(recon, frame, files)
    kind_row = claim_types(SOURCE)[kind]
    thru = cms_date(col(f, "CLM_THRU_DT"))
    dx = [(f"ICD9_DGNS_CD_{i}", ICD9) for i in range(1, 11)] + [("ADMTNG_ICD9_DGNS_CD", ICD9)]
    f = icd_lists(f, [(f"ICD9_PRCDR_CD_{i}", ICD9) for i in range(1, 7)], thru, kind="procedure")
    if kind != "carrier":
        f = icd_lists(f, dx, thru, kind="diagnosis")
    header = f.select(
        FILE, SEQ, pl.col("CLM_ID").alias("claim_id"), pl.col("DESYNPUF_ID").alias("member_id"),
        col(f, "SEGMENT").cast(pl.Int64, strict=False).fill_null(1).alias("_segment"),
        pl.lit("1").alias("claim_version"), pl.lit("paid").alias("claim_status"), pl.lit("medicare").alias("payer"),
        pl.lit(kind_row["claim_type"]).alias("claim_type"),
        cms_date(col(f, "CLM_FROM_DT")).alias("claim_from_date"), thru.alias("claim_thru_date"),
        *icd_columns("procedure"),
        *([] if kind == "carrier" else icd_columns("diagnosis")),
    )
    if kind == "carrier":
        slots = {"hcpcs_code": "HCPCS_CD_{n}", "_line_dx": "LINE_ICD9_DGNS_CD_{n}", "paid_amount": "LINE_NCH_PMT_AMT_{n}",
                 "allowed_amount": "LINE_ALOWD_CHRG_AMT_{n}", "_npi": "PRF_PHYSN_NPI_{n}"}
        present = (pl.col("hcpcs_code").is_not_null() | pl.col("_line_dx").is_not_null()
                   | _nonzero(pl.col("paid_amount")) | _nonzero(pl.col("allowed_amount")))
        lines = _expand(f, CARRIER_LINES, slots, present).join(f.select(SEQ, *[c for c in f.columns if c.startswith("ICD9_DGNS_CD_")]), on=SEQ)
        claim_dx = [(f"ICD9_DGNS_CD_{i}", ICD9) for i in range(1, 9)] + [("_line_dx", ICD9)]
        lines = icd_lists(lines, claim_dx, pl.lit(None, dtype=pl.String), kind="diagnosis").with_columns(
            *icd_columns("diagnosis"),
            *npi_columns(pl.col("_npi")),
            amount(pl.col("paid_amount")).alias("paid_amount"), amount(pl.col("allowed_amount")).alias("allowed_amount"),
        ).select(SEQ, "_slot", "hcpcs_code", "paid_amount", "allowed_amount", "billing_npi", "_npi_dropped",
                 pl.col(r"^diagnosis_code_\d+$"), "diagnosis_codes_overflow", "icd9_diagnosis_codes", "diagnosis_code_system")
        out = header.join(lines, on=SEQ)
    else:
        lines = _expand(f, INSTITUTIONAL_HCPCS, {"hcpcs_code": "HCPCS_CD_{n}"}, pl.col("hcpcs_code").is_not_null())
        stay = kind_row["stay"] == "yes"
        extra = f.select(
            SEQ,
            pl.lit(kind_row["bill_type"] or None, dtype=pl.String).alias("bill_type"),
            (cms_date(col(f, "CLM_ADMSN_DT")) if stay else pl.lit(None, dtype=pl.String)).alias("admit_date"),
            (cms_date(col(f, "NCH_BENE_DSCHRG_DT")) if stay else pl.lit(None, dtype=pl.String)).alias("discharge_date"),
            col(f, "CLM_DRG_CD").str.strip_chars().alias("drg_code"),
            *ccn_columns(col(f, "PRVDR_NUM")),
            amount(col(f, "CLM_PMT_AMT")).alias("_claim_paid"),
        )
        out = header.join(lines, on=SEQ).join(extra, on=SEQ).with_columns(
            pl.when(pl.col("_slot") == pl.col("_slot").min().over(SEQ)).then(pl.col("_claim_paid")).alias("paid_amount"))
    return out


def _pde(paths: list[Path], recon: Reconciliation) -> pl.DataFrame:
    frame = read_files(paths, recon, ("DESYNPUF_ID", "PDE_ID")).with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
    f = record_by_file(recon, frame, [p.name for p in paths])
    total = col(f, "TOT_RX_CST_AMT").cast(pl.Float64, strict=False)
    patient = col(f, "PTNT_PAY_AMT").cast(pl.Float64, strict=False).fill_null(0)
    paid = total - patient
    fills = f.select(
        FILE, pl.col("PDE_ID").alias("claim_id"), pl.lit("1").alias("claim_version"), pl.lit("paid").alias("claim_status"),
        pl.col("DESYNPUF_ID").alias("member_id"), pl.lit("medicare").alias("payer"),
        col(f, "PROD_SRVC_ID").str.strip_chars().alias("ndc"), cms_date(col(f, "SRVC_DT")).alias("fill_date"),
        col(f, "DAYS_SUPLY_NUM").alias("days_supply"), col(f, "QTY_DSPNSD_NUM").alias("quantity"),
        pl.when(paid >= 0).then(paid.round(2).cast(pl.String)).alias("paid_amount"),
        (paid < 0).alias("_negative"),
    )
    note_by_file(recon, fills, "paid_amount_negative_not_carried", pl.col("_negative"))
    return fills


# ---------------------------------------------------------------------------------------------
def convert(input_dir: Path, recon: Reconciliation) -> dict[str, pl.DataFrame]:
    """Read a folder of DE-SynPUF files and return the canonical tables (reconciliation in ``recon``)."""
    paths = {kind: files_matching(input_dir, pattern, (".csv",)) for kind, pattern in PATTERNS.items()}
    if not paths["beneficiary"]:
        raise StructuralError("Beneficiary_Summary_File", "a DE-SynPUF folder needs beneficiary summary files; none found")
    for kind, found in paths.items():
        if not found and kind in DEGRADES:
            recon.warn(f"{kind}_absent", DEGRADES[kind])
    used = {p.name for found in paths.values() for p in found}
    other = sorted(p.name for p in input_dir.iterdir() if p.is_file() and p.suffix.lower() == ".csv" and p.name not in used)
    if other:
        recon.warn("files_not_read", "not DE-SynPUF beneficiary, claim or PDE files, not read: " + ", ".join(other))
    members, enrollment = _beneficiaries(paths["beneficiary"], recon)
    kinds = [(kind, paths[kind]) for kind in ("carrier", "inpatient", "outpatient") if paths[kind]]
    claims, icd9 = _claims(kinds, recon) if kinds else (pl.DataFrame(), False)
    if icd9:
        recon.warn("icd9_codes", ICD9_WARNING)
    tables = {"members": members, "enrollment": enrollment, "medical_claims": claims}
    if paths["pde"]:
        tables["pharmacy_claims"] = _pde(paths["pde"], recon)
    return tables
