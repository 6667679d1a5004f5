"""What the two CMS readers share: CCW RIF (``cms_rif``) and DE-SynPUF (``desynpuf``).

Both carry Medicare beneficiaries with SSA state and county codes, the EDB race code
``BENE_RACE_CD``, claims with ICD diagnosis and procedure codes, HCPCS and provider ids, and Part D
events. The pieces here turn those into canonical columns; the code tables are data in
``sources/data/cms_race_codes.csv``, ``cms_codes.csv``, ``cms_claim_types.csv`` and
``cms_dual_status_codes.csv`` (docs/sources.md).

Rules shared by both formats:

* Race: ``BENE_RACE_CD`` (SSA record: direct data, ``self_reported``); when it is unknown (0 or
  empty) and the file has ``RTI_RACE_CD`` with a known value, that code with source ``imputed``
  (the RTI algorithm recodes with surname lists and geography); else ``UNK`` / ``unknown``. A code
  outside the table is quarantined (``unmapped_race_code``), never guessed.
* County: SSA state + county -> county FIPS (``standards.geography.ssa_county_to_fips``). A code
  the crosswalk does not know leaves the county empty (stratum Unknown; note
  ``ssa_county_unmapped``) unless the file also gives a FIPS county, which is then used; when both
  are known and differ, the SSA county is kept (note).
* ICD codes: ICD-10 codes fill ``diagnosis_code_1..12`` / ``procedure_code_1..6`` in claim order,
  without repeats; more than fit are kept in ``diagnosis_codes_overflow`` / ``procedure_codes_overflow``.
  ICD-9 codes never go to the ICD-10 columns (ICD-9 V and E codes look like ICD-10 codes, e.g.
  V7612 or E8889, and would match ICD-10 value sets wrongly): they are carried in
  ``icd9_diagnosis_codes`` / ``icd9_procedure_codes`` with ``diagnosis_code_system`` saying which
  systems the line has, counted in notes and warned about. ICD-10 measures find nothing in them.
* Provider ids (NPI, CCN) that fail their format or the NPI check digit are not carried (note
  ``npi_failed_check_not_carried`` / ``ccn_invalid_not_carried``); the claim line is kept. CMS's
  synthetic files use out-of-range ids on purpose.
* Enrollment: months (member, payer, line of business, plan, dual status) merged into spans.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path

import polars as pl

from equity_pipeline.sources.common import REASON, SOURCE_ROW, Reconciliation, iter_table, money, read_table
from equity_pipeline.standards.geography import ssa_county_to_fips
from equity_pipeline.validation.derived import npi_check_digit_ok

ROW = SOURCE_ROW
FILE = "_file"  # reconciliation key (source file name) of each row
SEQ = "_seq"  # load order over all files of one kind: later rows are later versions
N_DIAGNOSES = 12
N_PROCEDURES = 6
ICD10_START = "2015-10-01"  # claims through this date without a version code are ICD-9
ICD9 = "9"  # version code of an ICD-9 code (CMS: 9 = ICD-9, 0 = ICD-10)
ICD10 = "0"
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEPT", "OCT", "NOV", "DEC")
ICD9_WARNING = ("ICD-9-CM codes (claims before October 2015) are carried in icd9_diagnosis_codes / icd9_procedure_codes of "
                "the converted medical_claims, not in the ICD-10 columns: measures whose value sets are ICD-10 find nothing "
                "in them (diagnosis-based exclusions and numerators cannot be seen)")


# ---------------------------------------------------------------------------------------------
# code tables (sources/data/cms_*.csv)
# ---------------------------------------------------------------------------------------------
def _rows(name: str) -> list[dict[str, str]]:
    path = resources.files("equity_pipeline.sources") / "data" / name
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=None)
def codes(field: str) -> dict[str, str]:
    """code -> canonical value for one ``field`` of ``cms_codes.csv`` (sex, entitlement, hmo, ...)."""
    return {r["code"]: r["value"] for r in _rows("cms_codes.csv") if r["field"] == field}


@lru_cache(maxsize=None)
def dual_codes() -> dict[str, str]:
    """CMS monthly Medicare-Medicaid dual status code -> full / partial / none
    (``cms_dual_status_codes.csv``, the table the Tuva reader uses too)."""
    return {r["code"].upper(): r["dual_status"] for r in _rows("cms_dual_status_codes.csv")}


@lru_cache(maxsize=None)
def race_codes(variable: str) -> dict[str, tuple[str, str]]:
    """code -> (race_ethnicity_codes, race_ethnicity_source) for BENE_RACE_CD or RTI_RACE_CD."""
    return {r["code"]: (r["race_ethnicity_codes"], r["race_ethnicity_source"]) for r in _rows("cms_race_codes.csv")
            if r["variable"] == variable}


@lru_cache(maxsize=None)
def claim_types(source: str) -> dict[str, dict[str, str]]:
    """``cms_claim_types.csv`` rows of ``source``, keyed by claim type code (cms-rif) or file kind (desynpuf)."""
    return {(r["claim_type_code"] or r["file"]): r for r in _rows("cms_claim_types.csv") if r["source"] == source}


def lookup(expr: pl.Expr, table: dict[str, str]) -> pl.Expr:
    """``table[value]``, null where the value is null or not in the table."""
    return expr.replace_strict(table, default=None, return_dtype=pl.String)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def col(frame: pl.DataFrame, *names: str) -> pl.Expr:
    """The first of ``names`` present in ``frame``, else a null text column."""
    for n in names:
        if n in frame.columns:
            return pl.col(n)
    return pl.lit(None, dtype=pl.String)


def read_files(paths: list[Path], recon: Reconciliation, required: tuple[str, ...]) -> pl.DataFrame:
    """Read source files of one kind as text (``common.read_table``: delimiter sniffed, BOM and
    Latin-1 handled, leading zeros kept) into one frame with the file name (``_file``) and the load
    order (``_seq``: file order, then row order); columns a file lacks are null."""
    frames = []
    for path in paths:
        recon.add_input(path)
        frame = read_table(path, required=required)
        frames.append(frame.with_columns(pl.lit(path.name).alias(FILE)))
    if not frames:
        return pl.DataFrame()
    out = pl.concat(frames, how="diagonal")
    return out.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(SEQ))


def iter_files(paths: list[Path], recon: Reconciliation, required: tuple[str, ...], *, listed: bool = False) -> Iterator[pl.DataFrame]:
    """:func:`read_files` in bounded batches (``common.iter_table``): each batch has ``_file`` and
    ``_seq`` running on over the batches and files, so the batches put together equal
    ``read_files(paths, ...)``, except that a column one file lacks is absent from that file's
    batches (instead of null). ``listed``: the files are already in the inputs (a second pass)."""
    seq = 0
    for path in paths:
        if not listed:
            recon.add_input(path)
        for frame in iter_table(path, required=required):
            yield frame.with_columns(pl.lit(path.name).alias(FILE), (pl.int_range(pl.len(), dtype=pl.Int64) + seq).alias(SEQ))
            seq += frame.height


def record_by_file(recon: Reconciliation, frame: pl.DataFrame, files: list[str]) -> pl.DataFrame:
    """``recon.record_frame`` per source file (``_file``); the mapped rows of all files."""
    mapped = [recon.record_frame(name, frame.filter(pl.col(FILE) == name)) for name in files]
    mapped = [m for m in mapped if m.height]
    return pl.concat(mapped, how="vertical") if mapped else frame.clear().drop(REASON)


def note_by_file(recon: Reconciliation, frame: pl.DataFrame, name: str, condition: pl.Expr) -> None:
    """Count the rows of ``frame`` where ``condition`` holds as note ``name``, per source file."""
    for file, n in frame.filter(condition.fill_null(False)).group_by(FILE).len().iter_rows():
        recon.note(file, name, int(n))


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------
def cms_date(expr: pl.Expr) -> pl.Expr:
    """'YYYY-MM-DD' from CCW ``DD-Mon-YYYY`` (``SEPT`` too), SAS ``DDMONYYYY``, SynPUF ``YYYYMMDD`` or
    ISO dates; other text passes through unchanged (the canonical validation quarantines it)."""
    t = expr.str.strip_chars().str.replace(r"(?i)-sept-", "-Sep-")
    parsed = pl.coalesce(t.str.to_date("%Y%m%d", strict=False), t.str.to_date("%d-%b-%Y", strict=False),
                         t.str.to_date("%d%b%Y", strict=False), t.str.to_date("%Y-%m-%d", strict=False))
    return pl.when(parsed.is_not_null()).then(parsed.dt.to_string("%Y-%m-%d")).otherwise(t)


def zfill_digits(expr: pl.Expr, width: int) -> pl.Expr:
    """Zero-pad an all-digit value to ``width`` (CMS files written through spreadsheets lose zeros)."""
    t = expr.str.strip_chars()
    return pl.when(t.str.contains(r"^[0-9]+$") & (t.str.len_chars() < width)).then(t.str.zfill(width)).otherwise(t)


def cms_zip(expr: pl.Expr) -> pl.Expr:
    """5-digit ZIP from a CMS ZIP (5 or 9 digits, leading zeros possibly lost): 3-5 digits are padded
    to 5, 6-9 digits to 9 and cut to 5; anything else passes through (validation judges it)."""
    t = expr.str.strip_chars().str.replace("-", "")
    return (pl.when(t.str.contains(r"^[0-9]{3,5}$")).then(t.str.zfill(5))
            .when(t.str.contains(r"^[0-9]{6,9}$")).then(t.str.zfill(9).str.slice(0, 5))
            .otherwise(t))


def valid_npi(expr: pl.Expr) -> pl.Expr:
    """The NPI when it is 10 digits starting with 1 or 2 with a valid check digit, else null."""
    t = expr.str.strip_chars()
    return pl.when(t.str.contains(r"^[12][0-9]{9}$") & (npi_check_digit_ok(t) == "true")).then(t)


def valid_ccn(expr: pl.Expr) -> pl.Expr:
    """The CCN when it has the 6-character form (2-digit state + 4), else null."""
    t = expr.str.strip_chars().str.to_uppercase()
    return pl.when(t.str.contains(r"^[0-9]{2}[0-9A-Z][0-9]{3}$")).then(t)


def amount(expr: pl.Expr) -> pl.Expr:
    """Amount text rounded to cents (``common.money``)."""
    return money(expr)


# ---------------------------------------------------------------------------------------------
# members
# ---------------------------------------------------------------------------------------------
def race_columns(frame: pl.DataFrame) -> list[pl.Expr]:
    """``race_ethnicity_codes``, ``race_ethnicity_source`` and helper ``_race_reason`` / ``_race_rti``."""
    bene = col(frame, "BENE_RACE_CD").str.strip_chars().fill_null("0")
    rti = col(frame, "RTI_RACE_CD").str.strip_chars()
    b_table, r_table = race_codes("BENE_RACE_CD"), race_codes("RTI_RACE_CD")
    b_codes, b_src = lookup(bene, {k: v[0] for k, v in b_table.items()}), lookup(bene, {k: v[1] for k, v in b_table.items()})
    r_codes, r_src = lookup(rti, {k: v[0] for k, v in r_table.items()}), lookup(rti, {k: v[1] for k, v in r_table.items()})
    use_rti = (b_codes == "UNK") & r_codes.is_not_null() & (r_codes != "UNK")
    return [
        pl.when(use_rti).then(r_codes).otherwise(b_codes).alias("race_ethnicity_codes"),
        pl.when(use_rti).then(r_src).otherwise(b_src).alias("race_ethnicity_source"),
        pl.when(b_codes.is_null()).then(pl.lit("unmapped_race_code"))
        .when(rti.is_not_null() & r_codes.is_null()).then(pl.lit("unmapped_rti_race_code")).alias("_race_reason"),
        use_rti.alias("_race_rti"),
    ]


def county_columns(state: pl.Expr, county: pl.Expr, fips: pl.Expr | None = None) -> list[pl.Expr]:
    """``county_fips`` from SSA codes (else the file's own FIPS county), helpers ``_county_reason``
    (always null: kept for the readers' reason chains), ``_ssa_unmapped`` (an SSA code the crosswalk
    does not know), ``_county_from_fips`` and ``_county_differs`` (the file's FIPS county is another
    county: the SSA one is kept; CMS takes SSA codes from the mailing address, which can differ)."""
    ssa = ssa_county_to_fips(state, county)
    given = zfill_digits(fips, 5) if fips is not None else pl.lit(None, dtype=pl.String)
    has_code = county.str.strip_chars().is_not_null()
    return [
        pl.coalesce(ssa, given).alias("county_fips"),
        pl.lit(None, dtype=pl.String).alias("_county_reason"),
        (ssa.is_not_null() & given.is_not_null() & (ssa != given)).alias("_county_differs"),
        (has_code & ssa.is_null() & given.is_null()).alias("_ssa_unmapped"),
        (ssa.is_null() & given.is_not_null()).alias("_county_from_fips"),
    ]


def member_notes(recon: Reconciliation, frame: pl.DataFrame) -> None:
    note_by_file(recon, frame, "race_from_rti_imputed", pl.col("_race_rti"))
    note_by_file(recon, frame, "race_unknown", pl.col("race_ethnicity_codes") == "UNK")
    note_by_file(recon, frame, "ssa_county_unmapped", pl.col("_ssa_unmapped"))
    note_by_file(recon, frame, "county_from_fips_column", pl.col("_county_from_fips"))
    note_by_file(recon, frame, "fips_column_differs_ssa_county_used", pl.col("_county_differs"))


# ---------------------------------------------------------------------------------------------
# claims
# ---------------------------------------------------------------------------------------------
def icd_lists(frame: pl.DataFrame, pairs: list[tuple[str, str | None]], service_date: pl.Expr, *, kind: str,
              positional: bool = False) -> pl.DataFrame:
    """``frame`` with the ICD codes of each line sorted by system, as two helper list columns that
    :func:`icd_columns` turns into the canonical columns (two steps: the lists are built once per
    row, not once per output column).

    ``pairs``: (code column, version column) in claim order; version column ``None`` means "by
    date" (ICD-9 through September 2015), ``ICD9`` (the string "9") means every code is ICD-9; a
    version column whose value is neither 9 nor 0 also means by date. ``kind``: ``diagnosis`` or
    ``procedure``. Codes: dots and blanks removed, upper case.

    ``positional`` (a source whose code columns are already numbered, like Tuva's
    ``diagnosis_code_1..25``): the ICD-10 code of source slot i stays in ``<kind>_code_i`` (an empty or
    ICD-9 slot leaves it empty, nothing moves up into the principal position); slots beyond n go to
    the overflow column. Otherwise ICD-10 codes are listed in claim order, each once. ICD-9 codes
    are carried and flagged the same way either way."""
    by_date = pl.when(service_date < ICD10_START).then(pl.lit(ICD9)).otherwise(pl.lit(ICD10))
    tens, nines = [], []
    for code_col, version_col in pairs:
        if code_col not in frame.columns:
            continue
        code = pl.col(code_col).str.replace_all(r"[.\s]", "").str.to_uppercase()
        code = pl.when(code.str.len_chars() > 0).then(code)
        if version_col == ICD9:
            version = pl.lit(ICD9)
        else:
            given = col(frame, version_col).str.strip_chars() if version_col else pl.lit(None, dtype=pl.String)
            version = pl.when(given.is_in([ICD9, ICD10])).then(given).otherwise(by_date)
        tens.append(pl.when(version == ICD10).then(code))
        nines.append(pl.when(version == ICD9).then(code))
    if not tens:
        ten = pl.lit([], dtype=pl.List(pl.String))
        nine = ten
    elif positional:
        ten = pl.concat_list(tens)
        nine = pl.concat_list(nines).list.drop_nulls().list.unique(maintain_order=True)
    else:
        ten = pl.concat_list(tens).list.drop_nulls().list.unique(maintain_order=True)
        nine = pl.concat_list(nines).list.drop_nulls().list.unique(maintain_order=True)
    return frame.with_columns(ten.alias(f"_icd10_{kind}"), nine.alias(f"_icd9_{kind}"))


def icd_columns(kind: str) -> list[pl.Expr]:
    """The canonical ICD columns of a line from the lists :func:`icd_lists` added: ``<kind>_code_1..n``
    (ICD-10), ``<kind>_codes_overflow`` (ICD-10 codes beyond n, '|'-joined), ``icd9_<kind>_codes``
    (ICD-9 codes, '|'-joined) and, for diagnoses, ``diagnosis_code_system``."""
    n = N_DIAGNOSES if kind == "diagnosis" else N_PROCEDURES
    ten, nine = pl.col(f"_icd10_{kind}"), pl.col(f"_icd9_{kind}")
    out = [ten.list.get(i, null_on_oob=True).alias(f"{kind}_code_{i + 1}") for i in range(n)]
    beyond = ten.list.slice(n).list.drop_nulls()
    out.append(pl.when(beyond.list.len() > 0).then(beyond.list.join("|")).alias(f"{kind}_codes_overflow"))
    out.append(pl.when(nine.list.len() > 0).then(nine.list.join("|")).alias(f"icd9_{kind}_codes"))
    if kind == "diagnosis":
        has10, has9 = ten.list.drop_nulls().list.len() > 0, nine.list.len() > 0
        out.append(pl.when(has10 & has9).then(pl.lit("ICD-10-CM|ICD-9-CM")).when(has10).then(pl.lit("ICD-10-CM"))
                   .when(has9).then(pl.lit("ICD-9-CM")).alias("diagnosis_code_system"))
    return out


def claim_notes(recon: Reconciliation, lines: pl.DataFrame) -> bool:
    """Count ICD-9 lines, overflowing codes and dropped provider ids per file; True when ICD-9 codes were seen."""
    note_by_file(recon, lines, "icd9_diagnosis_lines", pl.col("icd9_diagnosis_codes").is_not_null())
    note_by_file(recon, lines, "icd9_procedure_lines", pl.col("icd9_procedure_codes").is_not_null())
    note_by_file(recon, lines, "diagnoses_beyond_12_in_overflow_column", pl.col("diagnosis_codes_overflow").is_not_null())
    note_by_file(recon, lines, "procedures_beyond_6_in_overflow_column", pl.col("procedure_codes_overflow").is_not_null())
    if "_npi_dropped" in lines.columns:
        note_by_file(recon, lines, "npi_failed_check_not_carried", pl.col("_npi_dropped"))
    if "_ccn_dropped" in lines.columns:
        note_by_file(recon, lines, "ccn_invalid_not_carried", pl.col("_ccn_dropped"))
    return bool(lines.height and (lines["icd9_diagnosis_codes"].is_not_null().any() or lines["icd9_procedure_codes"].is_not_null().any()))


def npi_columns(*candidates: pl.Expr, name: str = "billing_npi") -> list[pl.Expr]:
    """``name`` = the first candidate that is a valid NPI; ``_npi_dropped`` when some candidate was
    given but none is valid."""
    if not candidates:
        return [pl.lit(None, dtype=pl.String).alias(name), pl.lit(False).alias("_npi_dropped")]
    valid = pl.coalesce([valid_npi(c) for c in candidates])
    given = pl.any_horizontal([c.str.strip_chars().is_not_null() for c in candidates])
    return [valid.alias(name), (given & valid.is_null()).alias("_npi_dropped")]


def ccn_columns(expr: pl.Expr) -> list[pl.Expr]:
    ccn = valid_ccn(expr)
    return [ccn.alias("facility_ccn"), (expr.str.strip_chars().is_not_null() & ccn.is_null()).alias("_ccn_dropped")]


# ---------------------------------------------------------------------------------------------
# enrollment
# ---------------------------------------------------------------------------------------------
MONTH_SCHEMA = {"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "plan_id": pl.String,
                "dual_status": pl.String, "month": pl.Int64}


def spans(months: pl.DataFrame) -> pl.DataFrame:
    """Enrollment spans from coverage months (``month`` = year * 12 + month - 1): consecutive months
    with the same payer, line of business, plan and dual status form one span, first day of the
    first month to last day of the last."""
    cols = ["member_id", "payer", "line_of_business", "plan_id", "dual_status"]
    if months.height == 0:
        return pl.DataFrame(schema={c: pl.String for c in [*cols, "enrollment_start", "enrollment_end"]})
    m = months.unique(subset=["member_id", "payer", "month"], keep="last").sort("member_id", "payer", "month")
    same = (pl.col("month") - pl.col("month").shift(1) == 1)
    for c in cols:
        same = same & pl.col(c).eq_missing(pl.col(c).shift(1))
    m = m.with_columns(run=(~same.fill_null(False)).cum_sum())
    out = m.group_by("run", maintain_order=True).agg(*[pl.col(c).first() for c in cols], first=pl.col("month").min(), last=pl.col("month").max())
    start = pl.date(pl.col("first") // 12, pl.col("first") % 12 + 1, 1)
    end = pl.date(pl.col("last") // 12, pl.col("last") % 12 + 1, 1).dt.month_end()
    return out.select(*cols, start.dt.to_string("%Y-%m-%d").alias("enrollment_start"), end.dt.to_string("%Y-%m-%d").alias("enrollment_end"))


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def files_matching(input_dir: Path, pattern: str, suffixes: tuple[str, ...] = (".csv", ".txt", ".dat", ".psv")) -> list[Path]:
    """Files of ``input_dir`` whose lower-case stem matches ``pattern`` (re.search), sorted by name."""
    rx = re.compile(pattern)
    return sorted(p for p in input_dir.iterdir() if p.is_file() and p.suffix.lower() in suffixes and rx.search(p.stem.lower()))
