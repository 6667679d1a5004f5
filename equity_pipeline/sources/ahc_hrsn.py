"""AHC HRSN screening flat files (New York's 1115 waiver / SHIN-NY "1115-SDOH-Template" CSV layout)
-> canonical ``members`` and ``sdoh_screenings``.

The layout is the one New York's social care networks send to the SHIN-NY for the Medicaid 1115
waiver HRSN screening program (Tech by Design's ``csv-validation-using-ig`` data dictionary,
docs/sources.md): four comma-separated UTF-8 files per batch, named by prefix

* ``SDOH_PtInfo_<org>_<batch>_<timestamp>.csv``: one row per patient (``PATIENT_MR_ID_VALUE``,
  ``PATIENT_MEDICAID_ID``, ``ADMINISTRATIVE_SEX_CODE``, ``PATIENT_BIRTH_DATE``, ``RACE_CODE``,
  ``ETHNICITY_CODE``, ``PREFERRED_LANGUAGE_CODE``, ``STATE``, ``ZIP``, ``COUNTY``, names);
* ``SDOH_ScreeningProf_*``: one row per screening (``SCREENING_IDENTIFIER``, ``ENCOUNTER_ID``,
  ``ENCOUNTER_CLASS_CODE``, ``ENCOUNTER_START_DATETIME``, ``SCREENING_STATUS_CODE``, ``CONSENT_STATUS``);
* ``SDOH_ScreeningObs_*``: one row per question answered (``SCREENING_CODE`` 96777-8 etc.,
  ``QUESTION_CODE`` and ``ANSWER_CODE`` in LOINC, ``DATA_ABSENT_REASON_CODE``,
  ``POTENTIAL_NEED_INDICATED``, ``SCREENING_START_DATETIME``);
* ``SDOH_QEadmin_*``: facility administration (not carried: facilities have no CCN there).

Every row is mapped or quarantined with a reason. Positive / negative comes from the answer codes
through the project's AHC HRSN scoring table (``standards/sdoh.py``: interpersonal safety is positive
when items 7-10 sum above 10), not from ``POTENTIAL_NEED_INDICATED``, which is checked against it
(agreement counted in the reconciliation notes). ``DATA_ABSENT_REASON_CODE`` ``asked-declined``
becomes ``ASKU`` (declined); the other data-absent reasons keep the question with no answer code
(neither screened nor declined: unknown). Screening-only input has no enrollment and no claims.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.sources.common import (
    REASON,
    SOURCE_ROW,
    Reconciliation,
    SpilledTable,
    _data_rows,
    county_fips_from_name,
    county_from_zip,
    date_part,
    find_source_files,
    iter_table,
    language_tag,
    normalise_zip,
    read_table,
    short_id,
)

PT_INFO, SCREENING_PROF, SCREENING_OBS, QE_ADMIN = "SDOH_PtInfo", "SDOH_ScreeningProf", "SDOH_ScreeningObs", "SDOH_QEadmin"
LOINC = r"^\d{1,7}-\d$"
LA_CODE = r"^LA\d{1,7}-\d$"
DECLINE_ANSWER = "LA30122-8"  # "I choose not to answer this question"
MULTI = r"\s*[;|]\s*"  # the layout separates several codes with ';'

REQUIRED = {
    PT_INFO: ("PATIENT_MR_ID_VALUE",),
    SCREENING_PROF: ("PATIENT_MR_ID_VALUE", "SCREENING_IDENTIFIER"),
    SCREENING_OBS: ("PATIENT_MR_ID_VALUE", "SCREENING_IDENTIFIER", "SCREENING_CODE", "QUESTION_CODE"),
    QE_ADMIN: (),
}
OPTIONAL = {
    PT_INFO: ("PATIENT_MEDICAID_ID", "ADMINISTRATIVE_SEX_CODE", "PATIENT_BIRTH_DATE", "RACE_CODE", "ETHNICITY_CODE",
              "PREFERRED_LANGUAGE_CODE", "STATE", "ZIP", "COUNTY", "GIVEN_NAME", "FAMILY_NAME"),
    SCREENING_PROF: ("ENCOUNTER_ID", "ENCOUNTER_CLASS_CODE", "ENCOUNTER_START_DATETIME", "SCREENING_STATUS_CODE", "CONSENT_STATUS"),
    SCREENING_OBS: ("ENCOUNTER_ID", "ANSWER_CODE", "DATA_ABSENT_REASON_CODE", "POTENTIAL_NEED_INDICATED",
                    "SCREENING_START_DATETIME", "FACILITY_ID"),
    QE_ADMIN: (),
}
#: rows per batch of the screening observation files (None: ``common.BATCH_ROWS``); tests set it small
BATCH_ROWS: int | None = None
SEX = {"male": "M", "female": "F", "other": "X", "unknown": "U", "m": "M", "f": "F", "u": "U"}
NEED = {"pos": True, "yes": True, "neg": False, "no": False, "null": None, "na": None}


@lru_cache(maxsize=1)
def screening_instruments() -> dict[str, str]:
    return {r["screening_code"].lower(): r["instrument"] for r in _data_rows("hrsn_screening_codes.csv")}


@lru_cache(maxsize=1)
def encounter_settings() -> dict[str, str]:
    return {r["encounter_class_code"].lower(): r["setting"] for r in _data_rows("hrsn_encounter_settings.csv")}


@lru_cache(maxsize=1)
def data_absent_reasons() -> dict[str, str | None]:
    """data-absent-reason code -> canonical answer code (ASKU for asked-declined, None = no answer)."""
    return {r["code"].lower(): (r["answer_code"] or None) for r in _data_rows("data_absent_reasons.csv")}


def _read_kind(input_dir: Path, kind: str, recon: Reconciliation) -> pl.DataFrame | None:
    """Every file of one kind, concatenated, with ``_file`` (name) and ``_source_row``."""
    files = find_source_files(input_dir, kind, prefix=True)
    if not files:
        return None
    frames = []
    for path in files:
        recon.add_input(path)
        f = read_table(path, required=REQUIRED[kind], optional=OPTIONAL[kind])
        frames.append(f.select(SOURCE_ROW, *[pl.col(c) for c in (*REQUIRED[kind], *OPTIONAL[kind])]).with_columns(_file=pl.lit(path.name)))
    return pl.concat(frames, how="vertical")


def _iter_kind(input_dir: Path, kind: str, recon: Reconciliation) -> Iterator[pl.DataFrame] | None:
    """:func:`_read_kind` in batches of at most :data:`BATCH_ROWS` rows (file by file), or None when
    there is no file of ``kind``; each batch as :func:`_read_kind` gives its rows."""
    files = find_source_files(input_dir, kind, prefix=True)
    if not files:
        return None
    for path in files:
        recon.add_input(path)

    def batches() -> Iterator[pl.DataFrame]:
        for path in files:
            for f in iter_table(path, batch_rows=BATCH_ROWS, required=REQUIRED[kind], optional=OPTIONAL[kind]):
                yield f.select(SOURCE_ROW, *[pl.col(c) for c in (*REQUIRED[kind], *OPTIONAL[kind])]).with_columns(_file=pl.lit(path.name))
    return batches()


def _record(recon: Reconciliation, frame: pl.DataFrame) -> pl.DataFrame:
    """Reconcile per source file; return the mapped rows."""
    out = []
    for name in frame["_file"].unique(maintain_order=True).to_list():
        out.append(recon.record_frame(name, frame.filter(pl.col("_file") == name), row_col=SOURCE_ROW))
    return pl.concat(out, how="vertical") if out else frame.drop(REASON)


def _split_codes(value: str | None) -> list[str]:
    return [c.strip().upper() for c in re.split(MULTI, value or "") if c.strip()]


def _race_ethnicity(race: str | None, ethnicity: str | None) -> str:
    """CDC REC codes joined with '|' (race then ethnicity); ASKU when only declined, else UNK."""
    codes = _split_codes(race) + _split_codes(ethnicity)
    real = [c for c in dict.fromkeys(codes) if c not in ("ASKU", "UNK")]
    if real:
        return "|".join(real)
    return "ASKU" if "ASKU" in codes else "UNK"


def _county(county: str | None, state: str | None, zip5: str | None) -> tuple[str | None, str | None]:
    """(county FIPS, reason): the county name in its state; without a name, the ZIP's primary county."""
    if county:
        fips = county_fips_from_name(county, state or "")
        return (fips, None) if fips else (None, "unknown_county")
    if zip5:
        return county_from_zip(zip5, state), None
    return None, None


def _members(pt: pl.DataFrame, recon: Reconciliation) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(members, MR id -> member_id of the mapped patients)."""
    rows = []
    dup = pt.group_by("PATIENT_MR_ID_VALUE").len().filter(pl.col("len") > 1)["PATIENT_MR_ID_VALUE"].to_list()
    dup_set = set(dup)
    unnamed_language = 0
    for r in pt.iter_rows(named=True):
        reason = None
        zip5 = normalise_zip(r["ZIP"])
        fips, geo_reason = _county(r["COUNTY"], r["STATE"], zip5)
        sex_raw = (r["ADMINISTRATIVE_SEX_CODE"] or "").lower()
        sex = SEX.get(sex_raw) if sex_raw else "U"
        lang = r["PREFERRED_LANGUAGE_CODE"]
        language = "UNK"
        if lang and lang.strip().upper() in ("ASKU", "UNK"):
            language = lang.strip().upper()
        elif lang:
            language = language_tag(lang) or "UNK"
            unnamed_language += language == "UNK"
        if r["PATIENT_MR_ID_VALUE"] in dup_set:
            reason = "duplicate_patient_mr_id"
        elif not r["PATIENT_MEDICAID_ID"]:
            reason = "missing_medicaid_id"
        elif sex is None:
            reason = "unmapped_sex"
        elif geo_reason:
            reason = geo_reason
        codes = _race_ethnicity(r["RACE_CODE"], r["ETHNICITY_CODE"])
        rows.append({
            SOURCE_ROW: r[SOURCE_ROW], "_file": r["_file"], REASON: reason, "mr_id": r["PATIENT_MR_ID_VALUE"],
            "member_id": r["PATIENT_MEDICAID_ID"], "race_ethnicity_codes": codes,
            "race_ethnicity_source": "unknown" if codes == "UNK" else "self_reported", "language": language,
            "sex": sex, "birth_date": r["PATIENT_BIRTH_DATE"][:10] if r["PATIENT_BIRTH_DATE"] else None,
            "zip": zip5, "county_fips": fips, "first_name": r["GIVEN_NAME"], "last_name": r["FAMILY_NAME"],
        })
    schema = {SOURCE_ROW: pl.Int64, "_file": pl.String, REASON: pl.String, "mr_id": pl.String, "member_id": pl.String,
              "race_ethnicity_codes": pl.String, "race_ethnicity_source": pl.String, "language": pl.String, "sex": pl.String,
              "birth_date": pl.String, "zip": pl.String, "county_fips": pl.String, "first_name": pl.String, "last_name": pl.String}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    mapped = _record(recon, frame)
    key = pt["_file"][0] if pt.height else PT_INFO
    recon.note(key, "language_not_recognised_unk", unnamed_language)
    several = mapped.group_by("member_id").len().filter(pl.col("len") > 1).height
    recon.note(key, "medicaid_id_on_several_rows", several)
    link = mapped.select("mr_id", "member_id")
    members = mapped.drop("mr_id", SOURCE_ROW, "_file")
    return members, link


def _profiles(prof: pl.DataFrame | None, link: pl.DataFrame, quarantined_mr: set[str], recon: Reconciliation) -> pl.DataFrame:
    """Mapped screening profiles: SCREENING_IDENTIFIER -> patient, setting, encounter date."""
    schema = {"SCREENING_IDENTIFIER": pl.String, "prof_mr_id": pl.String, "setting": pl.String, "prof_date": pl.String}
    if prof is None:
        return pl.DataFrame(schema=schema)
    settings = encounter_settings()
    dup = set(prof.group_by("SCREENING_IDENTIFIER").len().filter(pl.col("len") > 1)["SCREENING_IDENTIFIER"].to_list())
    known = set(link["mr_id"].to_list())
    status = pl.col("SCREENING_STATUS_CODE").str.to_lowercase()
    frame = prof.with_columns(
        pl.when(pl.col("SCREENING_IDENTIFIER").is_in(list(dup))).then(pl.lit("duplicate_screening_identifier"))
        .when(pl.col("PATIENT_MR_ID_VALUE").is_in(list(quarantined_mr))).then(pl.lit("patient_quarantined"))
        .when(~pl.col("PATIENT_MR_ID_VALUE").is_in(list(known))).then(pl.lit("patient_not_found"))
        .when(status == "entered-in-error").then(pl.lit("entered_in_error"))
        .when(pl.col("CONSENT_STATUS").str.to_lowercase() == "deny").then(pl.lit("consent_denied"))
        .alias(REASON),
        setting=pl.col("ENCOUNTER_CLASS_CODE").str.to_lowercase().replace_strict(settings, default=None, return_dtype=pl.String),
    )
    mapped = _record(recon, frame)
    key = prof["_file"][0]
    recon.note(key, "encounter_class_not_mapped_setting_null",
               mapped.filter(pl.col("setting").is_null() & pl.col("ENCOUNTER_CLASS_CODE").is_not_null()).height)
    return mapped.select("SCREENING_IDENTIFIER", pl.col("PATIENT_MR_ID_VALUE").alias("prof_mr_id"), "setting",
                         date_part(pl.col("ENCOUNTER_START_DATETIME")).alias("prof_date"))


def _answers(obs: pl.DataFrame) -> pl.DataFrame:
    """Per observation row: the canonical answer code(s), answer value and a reason (None = mapped)."""
    from equity_pipeline.standards.sdoh import items

    table = items()
    scored = {(i, q): set() for i, q in table.select("instrument", "question_code").unique().iter_rows()}
    positive: dict[tuple[str, str, str], bool | None] = {}
    for inst, q, a, pos, score in table.select("instrument", "question_code", "answer_code", "positive", "score").iter_rows():
        scored[(inst, q)].add(a)
        positive[(inst, q, a)] = None if score is not None else bool(pos)
    instruments, dars = screening_instruments(), data_absent_reasons()
    out = []
    for r in obs.iter_rows(named=True):
        inst = instruments.get((r["SCREENING_CODE"] or "").lower())
        q = (r["QUESTION_CODE"] or "").upper()
        codes = _split_codes(r["ANSWER_CODE"])
        dar = (r["DATA_ABSENT_REASON_CODE"] or "").lower()
        reason, answers, value, check = None, [], None, None
        if inst is None:
            reason = "unmapped_screening_code"
        elif not q or not re.match(LOINC, q):
            reason = "question_not_loinc"
        elif codes and dar:
            reason = "answer_and_data_absent_reason"
        elif not codes and not dar:
            reason = "no_answer_no_data_absent_reason"
        elif dar:
            if dar not in dars:
                reason = "unmapped_data_absent_reason"
            else:
                answers, value = [dars[dar]], f"data-absent-reason:{dar}"
        elif len(codes) == 1 and re.fullmatch(r"\d+(\.\d+)?", codes[0]):
            answers, value = [None], codes[0]  # a calculated score (e.g. 95614-4 safety total): kept as a value
        else:
            answers = ["ASKU" if c == DECLINE_ANSWER else c for c in codes]
            if any(not re.match(LA_CODE, c) for c in answers if c != "ASKU"):
                reason = "invalid_answer_code"
            elif (inst, q) in scored and any(c != "ASKU" and c not in scored[(inst, q)] for c in answers):
                reason = "unmapped_sdoh_answer"
        if reason is None:
            # POTENTIAL_NEED_INDICATED against the scoring table, where an item has its own positive flag
            flag = NEED.get((r["POTENTIAL_NEED_INDICATED"] or "").lower(), "unrecognised")
            ours = [positive.get((inst, q, a)) for a in answers if a not in (None, "ASKU")]
            if flag is None or flag == "unrecognised" or not ours or any(o is None for o in ours):
                check = "potential_need_not_checked"
            else:
                check = "potential_need_agrees" if flag == any(ours) else "potential_need_disagrees"
        for a in answers or [None]:
            out.append((r[SOURCE_ROW], r["_file"], inst, q, a, value, reason, check, len(answers)))
    return pl.DataFrame(out, schema={SOURCE_ROW: pl.Int64, "_file": pl.String, "instrument": pl.String, "question_code": pl.String,
                                     "answer_code": pl.String, "answer_value": pl.String, "_ans_reason": pl.String,
                                     "_need_check": pl.String, "_n_answers": pl.Int64}, orient="row")


def _screenings(batches: Iterator[pl.DataFrame] | None, profiles: pl.DataFrame, link: pl.DataFrame, quarantined_mr: set[str],
                quarantined_prof: set[str], recon: Reconciliation) -> pl.DataFrame | SpilledTable:
    """The screening observation files mapped batch by batch (patients and screening profiles, one
    row per person or screening, are held whole), spilled to temporary Parquet parts."""
    if batches is None:
        return pl.DataFrame()
    out = recon.spill()
    for obs in batches:
        out.append(_screening_batch(obs, profiles, link, quarantined_mr, quarantined_prof, recon))
    return out


def _screening_batch(obs: pl.DataFrame, profiles: pl.DataFrame, link: pl.DataFrame, quarantined_mr: set[str],
                     quarantined_prof: set[str], recon: Reconciliation) -> pl.DataFrame:
    answers = _answers(obs)
    # one answer row per code (multi-select answers split); reconciliation counts source rows
    per_row = answers.group_by(SOURCE_ROW, "_file", maintain_order=True).agg(
        pl.col("_ans_reason").first(), pl.col("_need_check").first(), pl.col("_n_answers").first(), pl.col("answer_value").first())
    joined = (
        obs.join(per_row, on=[SOURCE_ROW, "_file"], how="left")
        .join(link, left_on="PATIENT_MR_ID_VALUE", right_on="mr_id", how="left")
        .join(profiles, on="SCREENING_IDENTIFIER", how="left")
    )
    frame = joined.with_columns(
        pl.when(pl.col("PATIENT_MR_ID_VALUE").is_in(list(quarantined_mr))).then(pl.lit("patient_quarantined"))
        .when(pl.col("member_id").is_null()).then(pl.lit("patient_not_found"))
        .when(pl.col("SCREENING_IDENTIFIER").is_in(list(quarantined_prof))).then(pl.lit("screening_profile_quarantined"))
        .when(pl.col("prof_mr_id").is_null()).then(pl.lit("screening_profile_not_found"))
        .when(pl.col("prof_mr_id") != pl.col("PATIENT_MR_ID_VALUE")).then(pl.lit("screening_patient_mismatch"))
        .otherwise(pl.col("_ans_reason"))
        .alias(REASON)
    )
    mapped = _record(recon, frame)
    for name in mapped["_file"].unique().to_list():
        mine = mapped.filter(pl.col("_file") == name)
        for check, n in mine.group_by("_need_check").len().iter_rows():
            recon.note(name, check, n)
        recon.note(name, "multi_answer_split", mine.filter(pl.col("_n_answers") > 1).height)
        recon.note(name, "numeric_answer_value", mine.filter(pl.col("answer_value").is_not_null()
                                                             & ~pl.col("answer_value").str.starts_with("data-absent-reason:")).height)
        recon.note(name, "data_absent_reason", mine.filter(pl.col("answer_value").str.starts_with("data-absent-reason:")).height)
    rows = mapped.select(pl.exclude("_need_check", "_n_answers", "answer_value")).join(
        answers.drop("_ans_reason", "_need_check", "_n_answers"), on=[SOURCE_ROW, "_file"], how="inner")
    return rows.select(
        "member_id",
        pl.struct("FACILITY_ID", "SCREENING_IDENTIFIER").map_elements(
            lambda s: "hrsn-" + short_id(s["FACILITY_ID"], s["SCREENING_IDENTIFIER"]), return_dtype=pl.String).alias("screening_id"),
        pl.coalesce(date_part(pl.col("SCREENING_START_DATETIME")), pl.col("prof_date")).alias("screening_date"),
        "instrument", "question_code", "answer_code", "answer_value", "setting",
    )


def convert(input_dir: Path, recon: Reconciliation) -> dict[str, pl.DataFrame | SpilledTable]:
    """Read a folder of NY HRSN flat files and return canonical members and sdoh_screenings (the
    screening observation files read and mapped in batches, :data:`BATCH_ROWS`)."""
    pt = _read_kind(input_dir, PT_INFO, recon)
    if pt is None:
        raise StructuralError(f"{PT_INFO}_*.csv", "an AHC HRSN flat-file batch needs the patient info file; none found in the input folder")
    prof = _read_kind(input_dir, SCREENING_PROF, recon)
    obs = _iter_kind(input_dir, SCREENING_OBS, recon)
    admin = _read_kind(input_dir, QE_ADMIN, recon)
    if prof is None:
        recon.warn("screening_profile_absent",
                   f"no {SCREENING_PROF} file: every screening observation is quarantined (screening_profile_not_found)")
    if obs is None:
        recon.warn("screening_observations_absent", f"no {SCREENING_OBS} file: no screening answers, members only")
    members, link = _members(pt, recon)
    quarantined_mr = set(pt["PATIENT_MR_ID_VALUE"].drop_nulls().to_list()) - set(link["mr_id"].to_list())
    profiles = _profiles(prof, link, quarantined_mr, recon)
    quarantined_prof = set()
    if prof is not None:
        quarantined_prof = set(prof["SCREENING_IDENTIFIER"].drop_nulls().to_list()) - set(profiles["SCREENING_IDENTIFIER"].to_list())
    screenings = _screenings(obs, profiles, link, quarantined_mr, quarantined_prof, recon)
    if admin is not None:
        _record(recon, admin.with_columns(pl.lit("no_npi_or_ccn").alias(REASON)))
    recon.warn("screening_only_input",
               "screening-only input: no enrollment and no claims. SDOH_POSITIVE is computed; SDOH_SCREEN needs adults "
               "with an outpatient visit from claims, so its denominator is empty; claims-based measures have no data")
    tables = {"members": members, "enrollment": pl.DataFrame(), "medical_claims": pl.DataFrame()}
    if screenings.height:
        tables["sdoh_screenings"] = screenings
    return tables
