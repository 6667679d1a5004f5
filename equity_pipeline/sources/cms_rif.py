"""CMS CCW Research Identifiable Files (RIF) -> canonical tables (``--source cms-rif``).

Input: a folder of CCW RIF extracts as the Beneficiary FHIR Data server and CCW deliver them:
pipe-delimited text (any delimiter is sniffed), UTF-8 with or without BOM, one header line, every
row prefixed by ``DML_IND``:

* ``beneficiary_<year>.csv`` (Master Beneficiary Summary, one row per beneficiary and reference
  year ``RFRNC_YR``), ``beneficiary_history.csv``;
* claims: ``carrier``, ``dme`` (one row per line, ``LINE_NUM``), ``inpatient``, ``outpatient``,
  ``snf``, ``hha``, ``hospice`` (one row per revenue-center line, ``CLM_LINE_NUM``);
* ``pde`` (Part D events).

The claim files are read in bounded batches in two passes (``common.iter_table``): the narrow key
columns of every row first (DML versions, claim ids in several files, first lines), then the lines,
mapped batch by batch and spilled to temporary Parquet parts (``common.SpilledTable``), so a claim file
of any size is never held whole. Beneficiary and PDE files are read whole.

Every row of every file read is mapped or quarantined with a reason (per-file reconciliation);
files of other names are listed under the warning ``files_not_read``. The rules, in short (code
tables in ``sources/data/cms_*.csv``, details in docs/sources.md):

* ``DML_IND`` INSERT / UPDATE / DELETE: the last row of a key in load order (files in name order,
  so beneficiary years in order; rows in file order) is the final version; earlier rows are mapped
  as superseded (note), a final DELETE removes the key (note). Keys: BENE_ID + RFRNC_YR,
  CLM_ID + line number, PDE_ID. Another value is quarantined ``unknown_dml_ind``.
* members: the final row of the beneficiary's latest reference year: race (``BENE_RACE_CD``, else
  ``RTI_RACE_CD`` as imputed), sex, birth and death dates, ZIP (zeros restored), county FIPS from
  the SSA state + county codes, ``disability`` from the current entitlement reason.
* enrollment: each year's monthly entitlement (``MDCR_ENTLMT_BUYIN_<m>_IND``), HMO indicator
  (``HMO_<m>_IND``: Medicare Advantage or FFS, with the Part C contract as plan) and dual status
  (``META_DUAL_ELGBL_STUS_<MON>_CD`` or MBSF ``DUAL_STUS_CD_<mm>``) -> Medicare spans with
  ``dual_status``; full-dual months also give a Medicaid span (dual_status full).
* medical_claims: one canonical line per source row; ``NCH_CLM_TYPE_CD`` -> claim type; type of
  bill from facility type + service classification + frequency; ICD-10 (and ICD-9, kept apart)
  diagnoses and procedures, HCPCS, revenue center, DRG, discharge status, CCN, NPI; Medicare payment
  (carrier/DME per line; institutional claim payment on the claim's first line).
* pharmacy_claims: PDE -> fills (NDC, days supply, quantity, prescriber NPI, plan paid amount).
"""
from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.sources.cms_common import (
    FILE,
    ICD9_WARNING,
    MONTH_SCHEMA,
    MONTHS,
    REASON,
    SEQ,
    amount,
    ccn_columns,
    claim_notes,
    claim_types,
    cms_date,
    cms_zip,
    codes,
    dual_codes,
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
    valid_npi,
    zfill_digits,
)
from equity_pipeline.sources.common import Reconciliation, SpilledTable, strip_name_digits
from equity_pipeline.sources.common import write_canonical_contract as write_tables  # noqa: F401 - used by sources.convert

SOURCE = "cms-rif"
PROFESSIONAL = ("carrier", "dme")
INSTITUTIONAL = ("inpatient", "outpatient", "snf", "hha", "hospice")
CLAIM_FILES = PROFESSIONAL + INSTITUTIONAL
DML = ("INSERT", "UPDATE", "DELETE")
DEGRADES = {
    "carrier": "no carrier file: no physician/supplier (Part B professional) claims",
    "dme": "no DME file: no durable medical equipment claims",
    "inpatient": "no inpatient file: no hospital stays (readmission and admission measures are empty)",
    "outpatient": "no outpatient file: no hospital outpatient or ED claims",
    "snf": "no SNF file: no skilled nursing facility claims",
    "hha": "no HHA file: no home health claims",
    "hospice": "no hospice file: hospice exclusions cannot be seen",
    "pde": "no PDE file: no pharmacy claims",
}


# ---------------------------------------------------------------------------------------------
def _fate(frame: pl.DataFrame, key: list[str]) -> list[pl.Expr]:
    """``_fate`` (final / superseded / deleted) by DML_IND over the load order, and ``_dml_reason``."""
    dml = col(frame, "DML_IND").str.strip_chars().str.to_uppercase()
    ok = dml.is_null() | dml.is_in(list(DML))
    last = pl.when(ok).then(pl.col(SEQ)).max().over(key)
    fate = (pl.when(~ok).then(None)
            .when(pl.col(SEQ) == last).then(pl.when(dml == "DELETE").then(pl.lit("deleted")).otherwise(pl.lit("final")))
            .otherwise(pl.lit("superseded")))
    return [fate.alias("_fate"), pl.when(~ok).then(pl.lit("unknown_dml_ind")).alias("_dml_reason")]


def _fate_notes(recon: Reconciliation, frame: pl.DataFrame) -> None:
    note_by_file(recon, frame, "superseded_by_later_version", pl.col("_fate") == "superseded")
    note_by_file(recon, frame, "deleted_by_dml", pl.col("_fate") == "deleted")


def _month(frame: pl.DataFrame, m: int, *templates: str) -> pl.Expr:
    """Monthly column ``m`` (1-12) under any naming: ``{m}`` 1-12, ``{mm}`` 01-12, ``{MON}`` JAN..DEC
    (SEPT; SEP accepted)."""
    names = []
    for t in templates:
        names.append(t.format(m=m, mm=f"{m:02d}", MON=MONTHS[m - 1]))
        if m == 9 and "{MON}" in t:
            names.append(t.format(m=m, mm=f"{m:02d}", MON="SEP"))
    return col(frame, *names).str.strip_chars()


# ---------------------------------------------------------------------------------------------
# beneficiaries
# ---------------------------------------------------------------------------------------------
def _beneficiaries(paths: list[Path], recon: Reconciliation) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = read_files(paths, recon, ("BENE_ID",))
    name_year = {p.name: (re.search(r"(\d{4})", p.stem) or [None])[0] for p in paths}
    year = pl.coalesce(col(frame, "RFRNC_YR", "BENE_ENROLLMT_REF_YR").str.strip_chars(),
                       pl.col(FILE).replace_strict(name_year, default=None, return_dtype=pl.String)).cast(pl.Int64, strict=False)
    frame = frame.with_columns(year.alias("_year"))
    named = pl.col(FILE).replace_strict(name_year, default=None, return_dtype=pl.String).cast(pl.Int64, strict=False)
    note_by_file(recon, frame, "reference_year_differs_from_file_name", named.is_not_null() & (named != pl.col("_year")))
    frame = frame.with_columns(*_fate(frame, ["BENE_ID", "_year"]), *race_columns(frame))
    fips = pl.coalesce([_month(frame, m, "FIPS_STATE_CNTY_{MON}_CD", "STATE_CNTY_FIPS_CD_{mm}") for m in range(12, 0, -1)])
    frame = frame.with_columns(*county_columns(col(frame, "STATE_CODE"), col(frame, "BENE_COUNTY_CD", "COUNTY_CD"), fips))
    sex_raw = col(frame, "BENE_SEX_IDENT_CD", "SEX_IDENT_CD").str.strip_chars().fill_null("0")
    frame = frame.with_columns(
        lookup(sex_raw, codes("sex")).alias("sex"),
        pl.coalesce(
            pl.col("_dml_reason"),
            pl.when(pl.col("_year").is_null()).then(pl.lit("missing_reference_year")),
            pl.col("_race_reason"),
            pl.when(lookup(sex_raw, codes("sex")).is_null()).then(pl.lit("unmapped_sex")),
            pl.col("_county_reason"),
        ).alias(REASON),
    )
    mapped = record_by_file(recon, frame, [p.name for p in paths])
    _fate_notes(recon, mapped)
    final = mapped.filter(pl.col("_fate") == "final")
    latest = final.sort("_year", SEQ).group_by("BENE_ID", maintain_order=True).last()
    note_by_file(recon, final, "earlier_year_enrollment_only",
                 ~pl.col(SEQ).is_in(latest[SEQ].implode()))
    member_notes(recon, latest)
    reason_col = pl.coalesce(col(latest, "BENE_ENTLMT_RSN_CURR", "ENTLMT_RSN_CURR").str.strip_chars(),
                             col(latest, "BENE_ENTLMT_RSN_ORIG", "ENTLMT_RSN_ORIG").str.strip_chars())
    members = latest.select(
        pl.col("BENE_ID").alias("member_id"),
        "race_ethnicity_codes", "race_ethnicity_source",
        pl.lit("UNK").alias("language"),
        lookup(reason_col, codes("entitlement_reason")).alias("disability"),
        "sex",
        cms_date(col(latest, "BENE_BIRTH_DT")).alias("birth_date"),
        cms_date(col(latest, "DEATH_DT", "BENE_DEATH_DT")).alias("death_date"),
        cms_zip(col(latest, "BENE_ZIP_CD", "ZIP_CD")).alias("zip"),
        "county_fips",
        col(latest, "BENE_GVN_NAME").map_elements(strip_name_digits, return_dtype=pl.String).alias("first_name"),
        col(latest, "BENE_SRNM_NAME").map_elements(strip_name_digits, return_dtype=pl.String).alias("last_name"),
    )
    return members, _enrollment(final, recon)


def _enrollment(final: pl.DataFrame, recon: Reconciliation) -> pl.DataFrame:
    """Monthly entitlement, HMO and dual status of each final beneficiary-year row -> spans."""
    parts = []
    for m in range(1, 13):
        parts.append(final.select(
            pl.col("BENE_ID").alias("member_id"), FILE, (pl.col("_year") * 12 + (m - 1)).alias("month"),
            _month(final, m, "MDCR_ENTLMT_BUYIN_{m}_IND", "MDCR_ENTLMT_BUYIN_IND_{mm}", "BUYIN{mm}").alias("ent"),
            _month(final, m, "HMO_{m}_IND", "HMO_IND_{mm}", "HMOIND{mm}").alias("hmo"),
            zfill_digits(_month(final, m, "META_DUAL_ELGBL_STUS_{MON}_CD", "DUAL_STUS_CD_{mm}", "DUAL_{mm}"), 2).alias("dual"),
            _month(final, m, "PTC_CNTRCT_{MON}_ID", "PTC_CNTRCT_ID_{mm}").alias("contract"),
        ))
    if not parts or final.height == 0:
        return spans(pl.DataFrame(schema=MONTH_SCHEMA))
    months = pl.concat(parts, how="vertical").with_columns(
        ent_v=lookup(pl.col("ent").fill_null("0"), codes("entitlement")),
        hmo_v=lookup(pl.col("hmo").fill_null(""), codes("hmo")),
        dual_v=lookup(pl.col("dual").str.to_uppercase(), dual_codes()),
    )
    note_by_file(recon, months, "month_entitlement_code_unmapped_not_enrolled", pl.col("ent_v").is_null())
    enrolled = months.filter(pl.col("ent_v") == "enrolled")
    note_by_file(recon, enrolled, "month_hmo_code_unmapped_lob_unknown", pl.col("hmo_v").is_null())
    note_by_file(recon, enrolled, "month_dual_code_unmapped_unknown", pl.col("dual").is_not_null() & pl.col("dual_v").is_null())
    medicare = enrolled.select(
        "member_id", pl.lit("medicare").alias("payer"), pl.col("hmo_v").alias("line_of_business"),
        pl.when(pl.col("hmo_v") == "medicare_advantage").then(pl.col("contract")).alias("plan_id"),
        pl.col("dual_v").alias("dual_status"), "month",
    )
    medicaid = enrolled.filter(pl.col("dual_v") == "full").select(
        "member_id", pl.lit("medicaid").alias("payer"), pl.lit(None, dtype=pl.String).alias("line_of_business"),
        pl.lit(None, dtype=pl.String).alias("plan_id"), pl.lit("full").alias("dual_status"), "month",
    )
    return spans(pl.concat([medicare, medicaid], how="vertical"))


def _history(paths: list[Path], recon: Reconciliation) -> None:
    """beneficiary_history: earlier identifiers and demographics; members has one current row per
    person, so these rows are not carried (quarantined ``history_not_carried``)."""
    if not paths:
        return
    frame = read_files(paths, recon, ("BENE_ID",)).with_columns(pl.lit("history_not_carried").alias(REASON))
    record_by_file(recon, frame, [p.name for p in paths])


# ---------------------------------------------------------------------------------------------
# claims
# ---------------------------------------------------------------------------------------------
def _dx_pairs(frame: pl.DataFrame) -> list[tuple[str, str]]:
    pairs = [("PRNCPAL_DGNS_CD", "PRNCPAL_DGNS_VRSN_CD")]
    pairs += [(f"ICD_DGNS_CD{i}", f"ICD_DGNS_VRSN_CD{i}") for i in range(1, 26)]
    pairs += [("LINE_ICD_DGNS_CD", "LINE_ICD_DGNS_VRSN_CD"), ("ADMTG_DGNS_CD", "ADMTG_DGNS_VRSN_CD"), ("FST_DGNS_E_CD", "FST_DGNS_E_VRSN_CD")]
    pairs += [(f"ICD_DGNS_E_CD{i}", f"ICD_DGNS_E_VRSN_CD{i}") for i in range(1, 13)]
    return [p for p in pairs if p[0] in frame.columns]


def _claim_keys(kind: str, paths: list[Path], recon: Reconciliation) -> pl.DataFrame:
    """Pass 1 over a kind's claim files, batch by batch: only the columns whose meaning depends on
    other rows (claim id, line number, ``DML_IND``, claim type, final action), one narrow row per
    source row in load order (``_seq``)."""
    line_col = "LINE_NUM" if kind in PROFESSIONAL else "CLM_LINE_NUM"
    parts = [
        batch.select(SEQ, FILE, "CLM_ID", col(batch, line_col).str.strip_chars().alias("_line"),
                     *[col(batch, c).alias(c) for c in ("DML_IND", "NCH_CLM_TYPE_CD", "FINAL_ACTION")])
        for batch in iter_files(paths, recon, ("CLM_ID", "BENE_ID"))
    ]
    return pl.concat(parts, how="vertical")


def _decide(keys: pl.DataFrame, collide: set[str]) -> pl.DataFrame:
    """Per source row (``_seq``) of one kind: DML fate, claim type, status, quarantine reason and
    whether it is the claim's first line (institutional payment) -- the cross-row rules, decided on
    the narrow key rows of every file of the kind before any line is mapped."""
    frame = keys.with_columns(*_fate(keys, ["CLM_ID", "_line"]))
    types = claim_types(SOURCE)
    type_code = pl.col("NCH_CLM_TYPE_CD").str.strip_chars()
    status = lookup(pl.col("FINAL_ACTION").str.strip_chars().str.to_uppercase().fill_null("F"), codes("final_action"))
    frame = frame.with_columns(
        lookup(type_code, {k: v["claim_type"] for k, v in types.items()}).alias("claim_type"),
        lookup(type_code, {k: v["stay"] for k, v in types.items()}).alias("_stay"),
        status.alias("claim_status"),
    ).with_columns(
        pl.coalesce(
            pl.col("_dml_reason"),
            pl.when(pl.col("CLM_ID").is_in(list(collide))).then(pl.lit("claim_id_in_several_claim_files")),
            pl.when(pl.col("claim_type").is_null()).then(pl.lit("unmapped_claim_type")),
            pl.when(pl.col("claim_status").is_null()).then(pl.lit("unmapped_final_action")),
        ).alias(REASON)
    )
    # first line of a claim among its mapped final lines (the institutional claim payment goes there)
    line_no = pl.col("_line").cast(pl.Int64, strict=False)
    final = (pl.col(REASON).is_null() & (pl.col("_fate") == "final"))
    first = pl.when(final).then(line_no == line_no.filter(final).min().over("CLM_ID"))
    return frame.select(SEQ, "_line", "_fate", "claim_type", "_stay", "claim_status", REASON, first.alias("_first_line"))


def _claim_lines(kind: str, frame: pl.DataFrame, recon: Reconciliation, files: list[str]) -> pl.DataFrame:
    """One batch of a kind's claim rows, with their :func:`_decide` columns -> canonical lines (row-local)."""
    mapped = record_by_file(recon, frame, files)
    _fate_notes(recon, mapped)
    f = mapped.filter(pl.col("_fate") == "final")
    note_by_file(recon, f, "not_final_action_as_void", pl.col("claim_status") == "void")
    thru = cms_date(col(f, "CLM_THRU_DT"))
    f = icd_lists(f, _dx_pairs(f), thru, kind="diagnosis")
    f = icd_lists(f, [(f"ICD_PRCDR_CD{i}", f"ICD_PRCDR_VRSN_CD{i}") for i in range(1, 26)], thru, kind="procedure")
    common = [
        FILE, pl.col("CLM_ID").alias("claim_id"), pl.col("_line").alias("claim_line"), pl.lit("1").alias("claim_version"),
        "claim_status", pl.col("BENE_ID").alias("member_id"), pl.lit("medicare").alias("payer"), "claim_type",
        *icd_columns("diagnosis"), *icd_columns("procedure"),
        col(f, "HCPCS_CD").alias("hcpcs_code"), col(f, "HCPCS_1ST_MDFR_CD").alias("hcpcs_modifier"),
    ]
    if kind in PROFESSIONAL:
        npis = [col(f, c) for c in ("CARR_CLM_BLG_NPI_NUM", "ORG_NPI_NUM", "PRF_PHYSN_NPI", "PRVDR_NPI") if c in f.columns]
        lines = f.select(
            *common,
            cms_date(pl.coalesce(col(f, "LINE_1ST_EXPNS_DT"), col(f, "CLM_FROM_DT"))).alias("claim_from_date"),
            cms_date(pl.coalesce(col(f, "LINE_LAST_EXPNS_DT"), col(f, "CLM_THRU_DT"))).alias("claim_thru_date"),
            zfill_digits(col(f, "LINE_PLACE_OF_SRVC_CD"), 2).alias("place_of_service"),
            *npi_columns(*npis),
            amount(col(f, "LINE_NCH_PMT_AMT")).alias("paid_amount"),
            amount(col(f, "LINE_ALOWD_CHRG_AMT")).alias("allowed_amount"),
        )
    else:
        stay = pl.col("_stay") == "yes"
        parts = [col(f, c).str.strip_chars() for c in ("CLM_FAC_TYPE_CD", "CLM_SRVC_CLSFCTN_TYPE_CD", "CLM_FREQ_CD")]
        one_char = pl.all_horizontal([p.str.len_chars() == 1 for p in parts])
        first_line = pl.col("_first_line")
        lines = f.select(
            *common,
            cms_date(col(f, "CLM_FROM_DT")).alias("claim_from_date"),
            thru.alias("claim_thru_date"),
            pl.when(stay).then(cms_date(col(f, "CLM_ADMSN_DT"))).alias("admit_date"),
            pl.when(stay).then(cms_date(col(f, "NCH_BENE_DSCHRG_DT"))).alias("discharge_date"),
            zfill_digits(col(f, "PTNT_DSCHRG_STUS_CD"), 2).alias("discharge_status"),
            pl.when(one_char.fill_null(False)).then(pl.concat_str(parts)).alias("bill_type"),
            zfill_digits(col(f, "REV_CNTR"), 4).alias("revenue_code"),
            zfill_digits(col(f, "CLM_DRG_CD"), 3).alias("drg_code"),
            *ccn_columns(col(f, "PRVDR_NUM")),
            *npi_columns(col(f, "ORG_NPI_NUM")),
            pl.when(first_line.fill_null(True)).then(amount(col(f, "CLM_PMT_AMT"))).alias("paid_amount"),
        )
    return lines


# ---------------------------------------------------------------------------------------------
def _pde(paths: list[Path], recon: Reconciliation) -> pl.DataFrame:
    frame = read_files(paths, recon, ("PDE_ID", "BENE_ID"))
    frame = frame.with_columns(*_fate(frame, ["PDE_ID"]))
    status = lookup(col(frame, "FINAL_ACTION").str.strip_chars().str.to_uppercase().fill_null("F"), codes("final_action"))
    frame = frame.with_columns(status.alias("claim_status")).with_columns(
        pl.coalesce(pl.col("_dml_reason"), pl.when(pl.col("claim_status").is_null()).then(pl.lit("unmapped_final_action"))).alias(REASON)
    )
    mapped = record_by_file(recon, frame, [p.name for p in paths])
    _fate_notes(recon, mapped)
    f = mapped.filter(pl.col("_fate") == "final")
    note_by_file(recon, f, "not_final_action_as_void", pl.col("claim_status") == "void")
    qualifier = col(f, "PRSCRBR_ID_QLFYR_CD").str.strip_chars()
    is_npi = qualifier.is_null() | qualifier.is_in(["01", "1"])
    prescriber = pl.when(is_npi).then(col(f, "PRSCRBR_ID"))
    covered = col(f, "CVRD_D_PLAN_PD_AMT").cast(pl.Float64, strict=False)
    noncovered = col(f, "NCVRD_PLAN_PD_AMT").cast(pl.Float64, strict=False)
    paid = pl.when(covered.is_not_null() | noncovered.is_not_null()).then((covered.fill_null(0) + noncovered.fill_null(0)).round(2).cast(pl.String))
    fills = f.select(
        FILE, pl.col("PDE_ID").alias("claim_id"), pl.lit("1").alias("claim_version"), "claim_status",
        pl.col("BENE_ID").alias("member_id"), pl.lit("medicare").alias("payer"),
        col(f, "PROD_SRVC_ID").str.strip_chars().alias("ndc"),
        cms_date(col(f, "SRVC_DT")).alias("fill_date"),
        col(f, "DAYS_SUPLY_NUM").alias("days_supply"), col(f, "QTY_DSPNSD_NUM").alias("quantity"),
        valid_npi(prescriber).alias("prescriber_npi"),
        (prescriber.str.strip_chars().is_not_null() & valid_npi(prescriber).is_null()).alias("_npi_dropped"),
        paid.alias("paid_amount"),
    )
    note_by_file(recon, fills, "npi_failed_check_not_carried", pl.col("_npi_dropped"))
    return fills


# ---------------------------------------------------------------------------------------------
def convert(input_dir: Path, recon: Reconciliation) -> dict[str, pl.DataFrame]:
    """Read a folder of CCW RIF files and return the canonical tables (reconciliation in ``recon``)."""
    annual = files_matching(input_dir, r"^(beneficiary|mbsf[a-z_]*)(_\d{4})?$")
    if not annual:
        raise StructuralError("beneficiary_<year>.csv", "a CCW RIF folder needs beneficiary files (beneficiary_<year>.csv); none found")
    history = files_matching(input_dir, r"^beneficiary_history")
    used = {p.name for p in annual + history}
    claim_paths = {kind: files_matching(input_dir, rf"^{kind}([_-][0-9a-z_-]*)?$") for kind in (*CLAIM_FILES, "pde")}
    for kind, paths in claim_paths.items():
        used |= {p.name for p in paths}
        if not paths:
            recon.warn(f"{kind}_absent", DEGRADES[kind])
    other = sorted(p.name for p in input_dir.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".txt", ".dat", ".psv") and p.name not in used)
    if other:
        recon.warn("files_not_read", "not CCW RIF beneficiary, claim or PDE files, not read: " + ", ".join(other))

    members, enrollment = _beneficiaries(annual, recon)
    _history(history, recon)
    # claim files in two streamed passes (never held whole): the narrow key columns of every row
    # first (DML versions, claim ids in several files, first lines), then the lines mapped batch by batch
    keys = {kind: _claim_keys(kind, paths, recon) for kind, paths in claim_paths.items() if paths and kind != "pde"}
    ids = [k.select("CLM_ID").unique().with_columns(pl.lit(kind).alias("kind")) for kind, k in keys.items()]
    collide: set[str] = set()
    if ids:
        per_id = pl.concat(ids).group_by("CLM_ID").agg(pl.col("kind").n_unique().alias("n"))
        collide = set(per_id.filter(pl.col("n") > 1)["CLM_ID"].to_list())
    claims: pl.DataFrame | SpilledTable = pl.DataFrame()
    icd9 = False
    if keys:
        claims = recon.spill()
        for kind in list(keys):
            decided, files = _decide(keys.pop(kind), collide), [p.name for p in claim_paths[kind]]
            for batch in iter_files(claim_paths[kind], recon, ("CLM_ID", "BENE_ID"), listed=True):
                batch = batch.join(decided, on=SEQ, how="left", maintain_order="left")
                lines = _claim_lines(kind, batch, recon, files)
                icd9 = claim_notes(recon, lines) or icd9
                claims.append(lines)
    if icd9:
        recon.warn("icd9_codes", ICD9_WARNING)
    tables = {"members": members, "enrollment": enrollment, "medical_claims": claims}
    if claim_paths["pde"]:
        tables["pharmacy_claims"] = _pde(claim_paths["pde"], recon)
    return tables
