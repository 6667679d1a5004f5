"""Tuva Project input layer -> canonical tables.

Reads the Tuva Project's input-layer tables (``eligibility``, ``medical_claim``, ``pharmacy_claim``,
``lab_result``, ``observation``; file names ``<table>`` or ``<table>_seed`` as in Tuva's synthetic
seeds, ``.csv`` or ``.parquet``). The column mapping is data, ``sources/data/tuva_columns.csv``: per
canonical column the Tuva column(s) it comes from (the first non-empty wins) and a named rule;
docs/sources.md prints it. Rules in short:

* eligibility -> enrollment (one span per row; ``payer_type`` -> payer, ``dual_status_code`` -> dual
  status through the CMS dual status codes) and members (one per ``person_id``; race and ethnicity
  words through the same term table as Synthea; county = the ZIP's primary county);
* medical_claim -> medical_claims line for line, read and mapped in batches (``common.iter_table``,
  ``common.SpilledTable``: a claim file of any size is never held whole); ICD-9 codes (type
  ``icd-9-cm`` / ``icd-9-pcs``) are carried in ``icd9_diagnosis_codes`` / ``icd9_procedure_codes``
  and flagged (``diagnosis_code_system``, notes ``icd9_*_lines``, warning ``icd9_codes``), the rule
  of the CMS readers (``cms_common.icd_lists`` / ``icd_columns``), never put in the ICD-10 columns nor dropped;
* pharmacy_claim -> pharmacy_claims (``claim_id:line``: the canonical table is one row per fill);
* lab_result -> clinical_observations (LOINC, numeric results);
* observation -> through the Synthea observation mapping: numeric LOINC results to
  clinical_observations, PRAPARE / AHC HRSN answers to sdoh_screenings, 54899-0 to language.

Other Tuva tables (appointment, immunization, provider_attribution, ...) are listed in the warning
``files_not_read``. Every row read is mapped or quarantined with a reason.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.sources.cms_common import FILE, ICD9, ICD9_WARNING, ICD10, claim_notes, icd_columns, icd_lists
from equity_pipeline.sources.common import (
    REASON,
    SOURCE_ROW,
    SOURCE_SUFFIXES,
    Reconciliation,
    _data_rows,
    county_from_zip,
    date_part,
    find_source_files,
    money,
    normalise_text,
    normalise_zip,
    prapare_items,
    iter_table,
    race_ethnicity_codes,
    read_table,
    write_canonical,
)

TABLES = ("eligibility", "medical_claim", "pharmacy_claim", "lab_result", "observation")
STREAMED = ("medical_claim",)  # read and mapped batch by batch (common.iter_table)
N_TUVA_CODES = 25  # diagnosis_code_1..25, procedure_code_1..25 in Tuva's medical_claim
SEX = {"male": "M", "female": "F", "unknown": "U"}
UNKNOWN_WORDS = {"unknown", "asked but unknown", "not reported", "unk"}


@lru_cache(maxsize=1)
def column_map() -> list[dict[str, str]]:
    """Rows of ``sources/data/tuva_columns.csv``."""
    return _data_rows("tuva_columns.csv")


def mapping(tuva_table: str) -> dict[str, list[dict[str, str]]]:
    """canonical table -> its rows of the column map, for one Tuva table."""
    out: dict[str, list[dict[str, str]]] = {}
    for r in column_map():
        if r["tuva_table"] == tuva_table:
            out.setdefault(r["canonical_table"], []).append(r)
    return out


def source_columns(tuva_table: str) -> tuple[str, ...]:
    cols: list[str] = []
    for r in column_map():
        if r["tuva_table"] == tuva_table:
            for c in filter(None, r["tuva_columns"].split(";")):
                cols.append(c)
                if r["rule"] == "loinc":
                    cols.extend(_type_columns(c))
    extra = {"medical_claim": ("diagnosis_code_type", "procedure_code_type", "drg_code_type")}.get(tuva_table, ())
    return tuple(dict.fromkeys([*cols, *extra]))


def _type_columns(code_column: str) -> tuple[str, str]:
    """Where Tuva says which code system a code column holds: ``normalized_component_code`` ->
    ``normalized_component_type`` (lab_result), ``normalized_code`` -> ``normalized_code_type`` (observation)."""
    return re.sub(r"_code$", "_type", code_column), f"{code_column}_type"


@lru_cache(maxsize=1)
def payer_types() -> dict[str, tuple[str, str | None]]:
    return {normalise_text(r["payer_type"]): (r["payer"], r["line_of_business"] or None) for r in _data_rows("tuva_payer_types.csv")}


@lru_cache(maxsize=1)
def dual_codes() -> dict[str, str]:
    return {r["code"].upper(): r["dual_status"] for r in _data_rows("cms_dual_status_codes.csv")}


def dual_code(value: str | None) -> str | None:
    """The 2-character CMS code of a Tuva ``dual_status_code`` ('2.0' and '2' -> '02'); None if empty."""
    if value is None or not value.strip():
        return None
    v = value.strip().upper()
    if re.fullmatch(r"\d+(\.0+)?", v):
        v = str(int(float(v))).zfill(2)
    return v


def _first(frame: pl.DataFrame, cols: list[str]) -> pl.Expr:
    present = [pl.col(c) for c in cols if c in frame.columns]
    return pl.coalesce(present) if present else pl.lit(None, dtype=pl.String)


def _expr(frame: pl.DataFrame, row: dict[str, str], payer_of: dict[str, str]) -> pl.Expr:
    """The polars expression of one canonical column (rules of tuva_columns.csv)."""
    cols = [c for c in row["tuva_columns"].split(";") if c]
    rule = row["rule"]
    first = _first(frame, cols)
    if rule == "first":
        out = first
    elif rule == "date":
        out = date_part(first)
    elif rule == "lower":
        out = first.str.to_lowercase()
    elif rule == "money":
        out = money(first)
    elif rule == "zip":
        out = first.map_elements(normalise_zip, return_dtype=pl.String)
    elif rule == "sex":
        out = pl.when(first.is_null()).then(pl.lit("U")).otherwise(
            first.str.to_lowercase().replace_strict(SEX, default=pl.lit("?"), return_dtype=pl.String))
    elif rule == "payer_type":
        out = first.map_elements(lambda v: payer_types().get(normalise_text(v), (None, None))[0], return_dtype=pl.String)
    elif rule == "line_of_business":
        out = first.map_elements(lambda v: payer_types().get(normalise_text(v), (None, None))[1], return_dtype=pl.String)
    elif rule == "claim_payer":
        out = first.map_elements(lambda v: payer_of.get(normalise_text(v)) or payer_types().get(normalise_text(v), (None, None))[0],
                                 return_dtype=pl.String)
    elif rule == "dual_status":
        out = first.map_elements(lambda v: dual_codes().get(dual_code(v) or ""), return_dtype=pl.String)
    elif rule == "ms_drg":
        kind = pl.col("drg_code_type").str.to_lowercase() if "drg_code_type" in frame.columns else pl.lit(None, dtype=pl.String)
        out = pl.when(kind.is_null() | (kind == "ms-drg")).then(first)
    elif rule == "pharmacy_claim_id":
        out = pl.concat_str([pl.col(cols[0]), pl.col(cols[1]).fill_null("1")], separator=":")
    elif rule == "loinc":
        parts = [pl.when(pl.coalesce([pl.col(t) for t in _type_columns(c) if t in frame.columns]).str.to_lowercase() == "loinc")
                 .then(pl.col(c)) for c in cols if c in frame.columns and any(t in frame.columns for t in _type_columns(c))]
        out = pl.coalesce(parts) if parts else pl.lit(None, dtype=pl.String)
    elif rule == "numeric":
        out = first
    elif rule == "value_type":
        out = pl.when(first.cast(pl.Float64, strict=False).is_not_null()).then(pl.lit("numeric")).otherwise(pl.lit("text"))
    elif rule == "county_from_zip":
        zip_col, state_col = cols[0], cols[1]
        out = pl.struct(_first(frame, [zip_col]).alias("z"), _first(frame, [state_col]).alias("s")).map_elements(
            lambda s: county_from_zip(normalise_zip(s["z"]) or "", None), return_dtype=pl.String)
    elif rule.startswith("const:"):
        out = pl.lit(rule.split(":", 1)[1])
    elif rule == "race_ethnicity":
        out = pl.lit(None, dtype=pl.String)  # filled in _members (needs the reason too)
    else:  # pragma: no cover - guarded by a test over the whole map
        raise ValueError(f"unknown rule {rule!r} in tuva_columns.csv")
    return out.cast(pl.String).alias(row["canonical_column"])


def _apply(frame: pl.DataFrame, tuva_table: str, canonical_table: str, payer_of: dict[str, str]) -> pl.DataFrame:
    rows = mapping(tuva_table)[canonical_table]
    return frame.select(SOURCE_ROW, *[_expr(frame, r, payer_of) for r in rows], *([pl.col(REASON)] if REASON in frame.columns else []))


def _find(input_dir: Path, table: str, recon: Reconciliation) -> tuple[Path | None, str]:
    files = find_source_files(input_dir, table) + find_source_files(input_dir, f"{table}_seed")
    if len(files) > 1:
        raise StructuralError(files[0].name, f"Tuva table {table} is given twice ({', '.join(p.name for p in files)}); keep one")
    if not files:
        recon.warn(f"{table}_absent", f"no Tuva {table} table in the input folder")
        return None, table
    recon.add_input(files[0])
    return files[0], files[0].name


def _read(input_dir: Path, table: str, recon: Reconciliation) -> tuple[pl.DataFrame | Path | None, str]:
    """The table read whole; for ``medical_claim`` (the big one) its path, read in batches later."""
    path, key = _find(input_dir, table, recon)
    if path is None or table in STREAMED:
        return path, key
    return read_table(path, optional=source_columns(table)), key


def _eligibility(elig: pl.DataFrame, key: str, recon: Reconciliation) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(members, enrollment) from the eligibility rows."""
    members = _apply(elig, "eligibility", "members", {})
    race_rows = []
    for r, e in elig.select(_first(elig, ["race"]).alias("r"), _first(elig, ["ethnicity"]).alias("e")).unique().iter_rows():
        race = [] if r is None or normalise_text(r) in UNKNOWN_WORDS else [r]
        eth = [] if e is None or normalise_text(e) in UNKNOWN_WORDS else [e]
        codes, reason = race_ethnicity_codes(race, eth)
        race_rows.append((r, e, codes, reason))
    race_map = pl.DataFrame(race_rows, schema={"r": pl.String, "e": pl.String, "codes": pl.String, "_race_reason": pl.String}, orient="row")
    race_cols = elig.select(SOURCE_ROW, _first(elig, ["race"]).alias("r"), _first(elig, ["ethnicity"]).alias("e"),
                            _first(elig, ["person_id", "member_id"]).alias("_pid"), _first(elig, ["dual_status_code"]).alias("raw_dual"))
    enrollment = _apply(elig, "eligibility", "enrollment", {})
    both = (
        members.join(race_cols, on=SOURCE_ROW, how="left")
        .join(race_map, on=["r", "e"], how="left", nulls_equal=True)
        .join(enrollment.drop("member_id"), on=SOURCE_ROW, how="left")
        .with_columns(
            race_ethnicity_codes=pl.col("codes"),
            race_ethnicity_source=pl.when(pl.col("codes") == "UNK").then(pl.lit("unknown")).otherwise(pl.lit("self_reported")),
        )
        .with_columns(
            pl.when(pl.col("_pid").is_null()).then(pl.lit("missing_person_id"))
            .when(pl.col("_race_reason").is_not_null()).then(pl.col("_race_reason"))
            .when(pl.col("sex") == "?").then(pl.lit("unmapped_sex"))
            .when(pl.col("payer").is_null()).then(pl.lit("unmapped_payer"))
            .alias(REASON)
        )
        .sort(SOURCE_ROW)
    )
    mapped = recon.record_frame(key, both, row_col=SOURCE_ROW)
    unknown_dual = mapped.filter(pl.col("raw_dual").is_not_null() & pl.col("dual_status").is_null()).height
    recon.note(key, "dual_status_code_unrecognised_null", unknown_dual)
    recon.note(key, "dual_status_full", mapped.filter(pl.col("dual_status") == "full").height)
    recon.note(key, "dual_status_partial", mapped.filter(pl.col("dual_status") == "partial").height)
    member_cols = [r["canonical_column"] for r in mapping("eligibility")["members"]] + ["race_ethnicity_source"]
    member_rows = mapped.select(member_cols).unique(maintain_order=True)
    conflicts = member_rows.group_by("member_id").len().filter(pl.col("len") > 1).height
    recon.note(key, "person_demographics_differ_across_rows", conflicts)
    enroll_cols = [r["canonical_column"] for r in mapping("eligibility")["enrollment"]]
    return member_rows, mapped.select(enroll_cols)


def _version(type_col: pl.Expr) -> pl.Expr:
    """CMS version code from Tuva's code type: icd-9-* -> 9, icd-10-* -> 0 (Tuva's seed labels ICD-10-CM
    diagnoses icd-10-pcs on some lines: still ICD-10); empty or other -> null, i.e. by service date
    (ICD-9 before 2015-10-01), as ``cms_common.icd_lists`` decides for CMS codes without a version."""
    t = type_col.str.to_lowercase().str.strip_chars()
    return pl.when(t.str.starts_with("icd-9")).then(pl.lit(ICD9)).when(t.str.starts_with("icd-10")).then(pl.lit(ICD10))


def _medical(claims: pl.DataFrame, key: str, payer_of: dict[str, str], recon: Reconciliation) -> tuple[pl.DataFrame, bool]:
    """One batch of medical_claim rows -> (mapped canonical lines, ICD-9 codes seen). Row-local: the
    batches mapped one by one give the lines of the whole file mapped at once."""
    lines = _apply(claims, "medical_claim", "medical_claims", payer_of)
    # diagnoses and procedures by the rule of the CMS readers: ICD-10 codes in diagnosis_code_1..12 /
    # procedure_code_1..6 in Tuva's own slots (dots removed; slots beyond in *_codes_overflow), ICD-9
    # codes carried in icd9_diagnosis_codes / icd9_procedure_codes and flagged in diagnosis_code_system
    versions = claims.with_columns(_version(_first(claims, ["diagnosis_code_type"])).alias("_dx_version"),
                                   _version(_first(claims, ["procedure_code_type"])).alias("_px_version"))
    end = date_part(_first(claims, ["claim_end_date", "claim_start_date"]))
    dx = [(f"diagnosis_code_{i}", "_dx_version") for i in range(1, N_TUVA_CODES + 1)]
    px = [(f"procedure_code_{i}", "_px_version") for i in range(1, N_TUVA_CODES + 1)]
    versions = icd_lists(versions, dx, end, kind="diagnosis", positional=True)
    codes = icd_lists(versions, px, end, kind="procedure", positional=True).select(*icd_columns("diagnosis"), *icd_columns("procedure"))
    # a select keeps the row order: the code columns line up with the lines
    lines = lines.drop([c for c in codes.columns if c in lines.columns]).hstack(codes).with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
    drg_type = _first(claims, ["drg_code_type"]).str.to_lowercase()
    if "drg_code" in claims.columns:
        other_drg = claims.filter(pl.col("drg_code").is_not_null() & drg_type.is_not_null() & (drg_type != "ms-drg"))
        recon.note(key, "drg_not_ms_drg_left_empty", other_drg.height)
    mapped = recon.record_frame(key, lines, row_col=SOURCE_ROW).drop(SOURCE_ROW)
    icd9 = claim_notes(recon, mapped.with_columns(pl.lit(key).alias(FILE)))
    return mapped, icd9


def write_tables(tables: dict[str, pl.DataFrame], out_dir: Path, recon: Reconciliation) -> None:
    """``common.write_canonical``, keeping medical_claims' extra columns (ICD-9 codes, overflow codes,
    ``diagnosis_code_system``) as the CMS readers keep them."""
    write_canonical(tables, out_dir, recon, keep_extra=("medical_claims",))


def _labs(labs: pl.DataFrame, key: str, recon: Reconciliation) -> pl.DataFrame:
    obs = _apply(labs, "lab_result", "clinical_observations", {})
    roles = prapare_items()
    num = pl.col("value_numeric").cast(pl.Float64, strict=False)
    obs = obs.with_columns(
        pl.when(pl.col("loinc_code").is_null()).then(pl.lit("not_loinc"))
        .when(pl.col("loinc_code").replace_strict(roles, default=None, return_dtype=pl.String) == "address")
        .then(pl.lit("address_not_carried"))
        .when(num.is_null() | ~num.is_finite()).then(pl.lit("non_numeric_result"))
        .alias(REASON)
    )
    return recon.record_frame(key, obs, row_col=SOURCE_ROW).drop(SOURCE_ROW)


def _observations(obs: pl.DataFrame, key: str, recon: Reconciliation) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(clinical_observations, sdoh_screenings, member language) through the Synthea observation mapping."""
    from equity_pipeline.sources import synthea

    frame = _apply(obs, "observation", "synthea_observations", {}).rename({SOURCE_ROW: synthea.ROW})
    # the Synthea mapping records under its own file name: reconcile under this file's name instead
    sub = Reconciliation(source="tuva", input_dir="")
    settings = pl.DataFrame(schema={"encounter_id": pl.String, "setting": pl.String})
    clinical, screenings = synthea._observations(frame, settings, sub)
    counts = sub.files.get("observations.csv")
    if counts is not None:
        mine = recon.counts(key)
        mine.read += counts.read
        mine.mapped += counts.mapped
        mine.quarantined += counts.quarantined
        for k, v in counts.reasons.items():
            mine.reasons[k] = mine.reasons.get(k, 0) + v
        for k, v in counts.notes.items():
            mine.notes[k] = mine.notes.get(k, 0) + v
    if "observations.csv" in sub.quarantine_rows:
        recon.quarantine_rows[key] = sub.quarantine_rows["observations.csv"]
    language = synthea._language(frame)
    if clinical.height:
        clinical = clinical.with_columns(source_system=pl.lit("ehr"))
    return clinical, screenings, language


def convert(input_dir: Path, recon: Reconciliation) -> dict[str, pl.DataFrame]:
    """Read a folder of Tuva input-layer tables and return the canonical tables."""
    raw = {t: _read(input_dir, t, recon) for t in TABLES}
    elig, elig_key = raw["eligibility"]
    if elig is None:
        raise StructuralError("eligibility.csv",
                              "a Tuva input needs the eligibility table (members and enrollment); not found in the input folder")
    known = {f"{t}{s}" for t in TABLES for s in ("", "_seed")}
    others = sorted(p.name for p in input_dir.iterdir() if p.is_file() and any(p.name.lower().endswith(s) for s in SOURCE_SUFFIXES)
                    and re.sub(r"(\.csv\.gz|\.[a-z]+)$", "", p.name.lower()) not in known)
    if others:
        recon.warn("files_not_read", "not mapped to the canonical contract, not read: " + ", ".join(others))
    payer_of = {}
    if "payer" in elig.columns and "payer_type" in elig.columns:
        for name, ptype in elig.select("payer", "payer_type").drop_nulls().unique().iter_rows():
            hit = payer_types().get(normalise_text(ptype))
            if hit:
                payer_of[normalise_text(name)] = hit[0]
    members, enrollment = _eligibility(elig, elig_key, recon)
    tables: dict[str, pl.DataFrame] = {"enrollment": enrollment}
    med_path, med_key = raw["medical_claim"]
    if med_path is None:
        tables["medical_claims"] = pl.DataFrame()
    else:
        spilled, icd9 = recon.spill(), False
        for batch in iter_table(med_path, optional=source_columns("medical_claim")):
            lines, seen = _medical(batch, med_key, payer_of, recon)
            spilled.append(lines)
            icd9 = icd9 or seen
        tables["medical_claims"] = spilled
        if icd9:
            recon.warn("icd9_codes", ICD9_WARNING)
    rx, rx_key = raw["pharmacy_claim"]
    if rx is not None:
        tables["pharmacy_claims"] = recon.record_frame(rx_key, _apply(rx, "pharmacy_claim", "pharmacy_claims", payer_of).with_columns(
            pl.lit(None, dtype=pl.String).alias(REASON)), row_col=SOURCE_ROW).drop(SOURCE_ROW)
    clinical = []
    labs, lab_key = raw["lab_result"]
    if labs is not None:
        clinical.append(_labs(labs, lab_key, recon))
    obs, obs_key = raw["observation"]
    language = pl.DataFrame(schema={"member_id": pl.String, "language": pl.String})
    if obs is not None:
        obs_clinical, screenings, language = _observations(obs, obs_key, recon)
        if obs_clinical.height:
            clinical.append(obs_clinical)
        if screenings.height:
            tables["sdoh_screenings"] = screenings
    members = members.join(language, on="member_id", how="left").with_columns(pl.col("language").fill_null("UNK"))
    tables["members"] = members
    if clinical:
        cols = ["member_id", "observation_date", "loinc_code", "value_numeric", "unit", "source_system"]
        tables["clinical_observations"] = pl.concat([c.select(cols) for c in clinical], how="vertical")
    return tables
