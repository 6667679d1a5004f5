"""Synthea CSV export -> canonical tables.

Reads ``patients, encounters, conditions, observations, procedures, immunizations, claims,
claims_transactions, payers, payer_transitions, organizations, providers`` (``.csv``; Synthea 2.x to
3.2 column names). Every row of every file read is either mapped or quarantined with a reason
(counts in the :class:`~equity_pipeline.sources.common.Reconciliation`); a file missing from the
export is a counted warning, never an error, except ``patients.csv``.

The mapping tables are in ``sources/data`` and docs/sources.md; the rules in short:

* members: RACE word + ETHNICITY word -> CDC REC codes (combined question), GENDER -> sex,
  COUNTY + STATE (+ FIPS when the export has it) -> county FIPS, ZIP padded to 5 digits, preferred
  language from the latest PRAPARE answer to 54899-0 (``English`` -> ``en``; "Language other than
  English" names no language -> ``UNK``).
* enrollment: payer_transitions spans, payer names -> medicare / medicaid / commercial; ``Dual
  Eligible`` -> a medicare and a medicaid span, dual_status full; ``NO_INSURANCE`` -> no span.
* medical_claims: one claim per encounter (claim_id = encounter Id): line 1 is the encounter's
  SNOMED code with the payer's payment (PAYER_COVERAGE), then one line per procedure and per condition of the
  encounter (SNOMED in ``snomed_code``). claims.csv, when present, gives the claim type.
* clinical_observations: numeric observations with a LOINC code.
* sdoh_screenings: PRAPARE (and AHC HRSN) answers, free text -> LOINC answer codes.

The big files (:data:`BIG`) are read and mapped in batches of at most :data:`BATCH_ROWS` rows; where
two big files are joined (encounters and claims, procedures and encounters, ...) both are spilled to
temporary Parquet parts and joined lazily (polars' streaming engine). patients, payers, organizations
and providers are small and read whole.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import ROW as IO_ROW
from equity_pipeline.io import scan_text
from equity_pipeline.sources import common
from equity_pipeline.sources.common import (
    REASON,
    Reconciliation,
    SpilledTable,
    county_fips_from_name,
    date_part,
    encounter_classes,
    instrument_for,
    iter_table,
    language_tag,
    money,
    normalise_zip,
    payer_category,
    prapare_items,
    race_ethnicity_codes,
    scored_questions,
    sdoh_answer_code,
    short_id,
    strip_name_digits,
)

FILES = ("patients", "encounters", "conditions", "observations", "procedures", "immunizations", "claims",
         "claims_transactions", "payers", "payer_transitions", "organizations", "providers")
NOT_READ = ("allergies", "careplans", "devices", "imaging_studies", "medications", "supplies")
ROW = "_source_row"
LOINC = r"^\d{1,7}-\d$"
LANGUAGE_ITEM = "54899-0"

REQUIRED = {
    "patients": ("Id", "BIRTHDATE"),
    "encounters": ("Id", "START", "PATIENT", "ENCOUNTERCLASS", "CODE"),
    "procedures": ("START", "PATIENT", "CODE"),
    "conditions": ("START", "PATIENT", "CODE"),
    "observations": ("DATE", "PATIENT", "CODE"),
    "payer_transitions": ("PATIENT", "PAYER"),
    "payers": ("Id", "NAME"),
    "claims": ("Id",),
    "claims_transactions": ("CLAIMID",),
}

OPTIONAL = {  # filled with nulls when an export lacks them
    "observations": ("ENCOUNTER", "VALUE", "UNITS", "TYPE"),
    "procedures": ("ENCOUNTER", "STOP"),
    "conditions": ("ENCOUNTER",),
    "encounters": ("STOP", "PAYER", "PAYER_COVERAGE"),
    "payer_transitions": ("SECONDARY_PAYER",),
    "claims": ("APPOINTMENTID",),
}

DEGRADES = {
    "encounters": "no encounters: claims are built from procedures and conditions alone (no place of service, payer or amounts)",
    "conditions": "no conditions: claims carry no diagnosis lines (exclusions such as colorectal cancer cannot be seen)",
    "observations": "no observations: no clinical results, no SDOH screenings and no preferred language (language UNK)",
    "procedures": "no procedures: screening procedures (mammography, colonoscopy, ...) cannot be seen",
    "immunizations": "no immunizations (they are not carried by the canonical contract anyway)",
    "claims": "no claims.csv: claim type taken from the encounter class",
    "claims_transactions": "no claims_transactions.csv: claim amounts come from encounters.csv only (they do anyway)",
    "payers": "no payers.csv: payer ids cannot be named, every enrollment span is quarantined",
    "payer_transitions": "no payer_transitions.csv: no enrollment, continuous-enrollment measures have empty denominators",
    "organizations": "no organizations.csv (not carried: Synthea organizations have no CCN)",
    "providers": "no providers.csv (not carried: Synthea providers have no NPI)",
}



#: rows per batch when the big files are read and mapped (None: ``common.BATCH_ROWS``); tests set it small
BATCH_ROWS: int | None = None
#: files read and mapped in bounded batches; the others (patients, payers, organizations, providers:
#: one row per person or per organisation) are read whole
BIG = ("encounters", "conditions", "observations", "procedures", "immunizations", "claims", "claims_transactions",
       "payer_transitions")


def _path(input_dir: Path, name: str, recon: Reconciliation) -> Path | None:
    """The file of ``name`` (listed as an input), or None when absent or empty (a counted warning)."""
    path = input_dir / f"{name}.csv"
    if not path.is_file():
        if name == "patients":
            raise StructuralError("patients.csv", "a Synthea export needs patients.csv; not found in the input folder")
        recon.warn(f"{name}_absent", DEGRADES[name])
        recon.counts(f"{name}.csv")
        return None
    if path.stat().st_size == 0:
        recon.warn(f"{name}_empty", f"{name}.csv is empty; treated as absent. " + DEGRADES.get(name, ""))
        recon.counts(f"{name}.csv")
        return None
    recon.add_input(path)
    return path


def _checked(frame: pl.DataFrame, name: str, path: Path) -> pl.DataFrame:
    missing = [c for c in REQUIRED.get(name, ()) if c not in frame.columns]
    if missing:
        raise StructuralError(path.name, f"required Synthea column {missing[0]} is missing")
    absent = [c for c in OPTIONAL.get(name, ()) if c not in frame.columns]
    return frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in absent]) if absent else frame


def _read(input_dir: Path, name: str, recon: Reconciliation) -> pl.DataFrame | None:
    """A small file read whole (values trimmed, empty -> null, ``_source_row`` numbered from 1)."""
    path = _path(input_dir, name, recon)
    if path is None:
        return None
    frame = scan_text(path).collect().rename({IO_ROW: ROW})
    cleaned = [
        pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c).str.strip_chars()).alias(c.strip())
        for c in frame.columns if c != ROW
    ]
    return _checked(frame.select(pl.col(ROW), *cleaned), name, path)


def _batches(path: Path, name: str) -> Iterator[pl.DataFrame]:
    """A big file in batches of at most :data:`BATCH_ROWS` rows, read as :func:`_read` reads it
    (``common.iter_table``: same trimming, empty -> null, ``_source_row`` running on across batches)."""
    for batch in iter_table(path, batch_rows=BATCH_ROWS):
        yield _checked(batch, name, path)


def _spill_raw(input_dir: Path, name: str, recon: Reconciliation) -> pl.LazyFrame | None:
    """A big file copied batch by batch to temporary Parquet parts, as a lazy scan (for joins of two
    big files, which polars' streaming engine runs out of core); None when absent."""
    path = _path(input_dir, name, recon)
    if path is None:
        return None
    spill = recon.spill()
    for batch in _batches(path, name):
        spill.append(batch)
    return spill.lazy()


def _stream(lf: pl.LazyFrame) -> Iterator[pl.DataFrame]:
    """A lazy frame in batches of at most :data:`BATCH_ROWS` rows (streaming engine)."""
    for batch in lf.collect_batches(chunk_size=BATCH_ROWS or common.BATCH_ROWS, engine="streaming"):
        yield batch


def _ids(spill: SpilledTable | None, column: str, flag: str) -> pl.LazyFrame:
    """Distinct ids of a spilled table as a lazy frame (``_id``, ``flag`` = True), for a left join
    that tells whether a row's id is among them (as ``is_in`` would, nulls never match)."""
    if spill is None or not spill.parts:
        return pl.LazyFrame(schema={"_id": pl.String, flag: pl.Boolean})
    return spill.lazy().select(pl.col(column).alias("_id")).drop_nulls().unique().with_columns(pl.lit(True).alias(flag))


def _col(frame: pl.DataFrame | pl.LazyFrame, *names: str) -> pl.Expr:
    """The first of ``names`` present in ``frame`` (Synthea renamed columns across versions)."""
    have = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    for n in names:
        if n in have:
            return pl.col(n)
    return pl.lit(None, dtype=pl.String)


def _key(name: str) -> str:
    return f"{name}.csv"


# ---------------------------------------------------------------------------------------------
def _payer_lookup(payers: pl.DataFrame | None, recon: Reconciliation) -> pl.DataFrame:
    """payer Id -> payer category and dual status (payers.csv rows reconciled here)."""
    schema = {"payer_id": pl.String, "category": pl.String, "dual_status": pl.String}
    if payers is None:
        return pl.DataFrame(schema=schema)
    rows = []
    ownership = _col(payers, "OWNERSHIP")
    for row, pid, name, own in payers.select(ROW, "Id", "NAME", ownership.alias("own")).iter_rows():
        category, dual = payer_category(name)
        if category is None and (own or "").upper() == "PRIVATE":
            category, dual = "commercial", "none"
        rows.append((row, pid, category, dual, None if category else "unmapped_payer"))
    frame = pl.DataFrame(rows, schema={ROW: pl.Int64, "payer_id": pl.String, "category": pl.String, "dual_status": pl.String, REASON: pl.String}, orient="row")
    mapped = recon.record_frame(_key("payers"), frame)
    return mapped.select("payer_id", "category", "dual_status")


def _members(patients: pl.DataFrame, language: pl.DataFrame, recon: Reconciliation) -> pl.DataFrame:
    race_pairs = patients.select(_col(patients, "RACE").alias("r"), _col(patients, "ETHNICITY").alias("e")).unique()
    race_rows = []
    for r, e in race_pairs.iter_rows():
        codes, reason = race_ethnicity_codes([r] if r else [], [e] if e else [])
        race_rows.append((r, e, codes, reason))
    race_map = pl.DataFrame(race_rows, schema={"r": pl.String, "e": pl.String, "race_ethnicity_codes": pl.String, "_race_reason": pl.String}, orient="row")

    fips_raw = _col(patients, "FIPS").alias("f")
    geo = patients.select(_col(patients, "STATE").alias("s"), _col(patients, "COUNTY").alias("c"), fips_raw).unique()
    geo_rows = []
    for s, c, f in geo.iter_rows():
        given = f.zfill(5) if f and f.isdigit() and len(f) <= 5 else f
        by_name = county_fips_from_name(c, s) if c and s else None
        reason = None
        if given and by_name and given != by_name:
            reason = "county_fips_conflict"
        elif not given and c and by_name is None:
            reason = "unknown_county"
        geo_rows.append((s, c, f, given or by_name, reason))
    geo_map = pl.DataFrame(geo_rows, schema={"s": pl.String, "c": pl.String, "f": pl.String, "county_fips": pl.String, "_geo_reason": pl.String}, orient="row")

    sex = _col(patients, "GENDER").str.to_uppercase()
    frame = (
        patients.with_columns(
            r=_col(patients, "RACE"), e=_col(patients, "ETHNICITY"), s=_col(patients, "STATE"), c=_col(patients, "COUNTY"), f=_col(patients, "FIPS"),
            sex=pl.when(sex.is_null()).then(pl.lit("U")).otherwise(sex),
        )
        .join(race_map, on=["r", "e"], how="left", nulls_equal=True)
        .join(geo_map, on=["s", "c", "f"], how="left", nulls_equal=True)
        .join(language, left_on="Id", right_on="member_id", how="left")
    )
    frame = frame.with_columns(
        pl.coalesce(
            pl.col("_race_reason"),
            pl.col("_geo_reason"),
            pl.when(~pl.col("sex").is_in(["F", "M", "X", "U"])).then(pl.lit("unmapped_sex")),
        ).alias(REASON)
    )
    zip_map = {z: normalise_zip(z) for z in frame["ZIP"].drop_nulls().unique().to_list()} if "ZIP" in frame.columns else {}
    members = frame.select(
        ROW, REASON,
        pl.col("Id").alias("member_id"),
        "race_ethnicity_codes",
        pl.when(pl.col("race_ethnicity_codes") == "UNK").then(pl.lit("unknown")).otherwise(pl.lit("self_reported")).alias("race_ethnicity_source"),
        pl.col("language").fill_null("UNK"),
        "sex",
        date_part(_col(frame, "BIRTHDATE")).alias("birth_date"),
        date_part(_col(frame, "DEATHDATE")).alias("death_date"),
        _col(frame, "ZIP").replace_strict(zip_map, default=None, return_dtype=pl.String).alias("zip") if zip_map else pl.lit(None, dtype=pl.String).alias("zip"),
        "county_fips",
        _col(frame, "FIRST").map_elements(strip_name_digits, return_dtype=pl.String).alias("first_name"),
        _col(frame, "LAST").map_elements(strip_name_digits, return_dtype=pl.String).alias("last_name"),
    )
    return recon.record_frame(_key("patients"), members)



def _enrollment(input_dir: Path, payer_map: pl.DataFrame, have_payers: bool, recon: Reconciliation) -> pl.DataFrame | SpilledTable:
    """payer_transitions -> enrollment spans, mapped batch by batch (payers.csv is small and held whole).
    The spans come out as the whole file would give them: primary spans, the dual spans (medicare,
    then medicaid), the secondary-payer spans, each in file order (sorted on ``_part``, row at the end)."""
    path = _path(input_dir, "payer_transitions", recon)
    if path is None:
        return pl.DataFrame()
    out = recon.spill(lambda lf: lf.sort("_part", ROW, maintain_order=True))
    for batch in _batches(path, "payer_transitions"):
        out.append(_enrollment_batch(batch, payer_map, have_payers, recon))
    return out


def _enrollment_batch(transitions: pl.DataFrame, payer_map: pl.DataFrame, have_payers: bool, recon: Reconciliation) -> pl.DataFrame:
    start, end = _col(transitions, "START_DATE", "START_YEAR"), _col(transitions, "END_DATE", "END_YEAR")
    year_only = r"^\d{4}$"
    frame = transitions.select(
        ROW,
        pl.col("PATIENT").alias("member_id"),
        pl.col("PAYER").alias("plan_id"),
        _col(transitions, "SECONDARY_PAYER").alias("secondary"),
        pl.when(start.str.contains(year_only)).then(start + "-01-01").otherwise(date_part(start)).alias("enrollment_start"),
        pl.when(end.str.contains(year_only)).then(end + "-12-31").otherwise(date_part(end)).alias("enrollment_end"),
    ).join(payer_map, left_on="plan_id", right_on="payer_id", how="left")
    frame = frame.with_columns(
        pl.when(pl.lit(not have_payers)).then(pl.lit("payers_file_missing"))
        .when(pl.col("category").is_null()).then(pl.lit("unmapped_payer"))
        .alias(REASON)
    )
    key = _key("payer_transitions")
    mapped = recon.record_frame(key, frame)
    recon.note(key, "no_insurance_no_span", mapped.filter(pl.col("category") == "none").height)
    recon.note(key, "dual_eligible_two_spans", mapped.filter(pl.col("category") == "dual").height)
    spans = mapped.filter(pl.col("category") != "none")
    single = spans.filter(pl.col("category") != "dual").with_columns(payer=pl.col("category"))
    dual = spans.filter(pl.col("category") == "dual")
    parts = [single] + [dual.with_columns(payer=pl.lit(p)) for p in ("medicare", "medicaid")]
    # a secondary payer is a second span over the same dates (dual status not stated by Synthea)
    sec = mapped.filter(pl.col("secondary").is_not_null()).select(ROW, "member_id", "enrollment_start", "enrollment_end", pl.col("secondary").alias("plan_id"))
    if sec.height:
        sec = sec.join(payer_map, left_on="plan_id", right_on="payer_id", how="left")
        usable = sec.filter(pl.col("category").is_in(["medicare", "medicaid", "commercial"]))
        recon.note(key, "secondary_payer_span", usable.height)
        recon.note(key, "secondary_payer_not_carried", sec.height - usable.height)
        parts.append(usable.with_columns(payer=pl.col("category"), dual_status=pl.lit(None, dtype=pl.String)))
    cols = ["member_id", "payer", "plan_id", "dual_status", "enrollment_start", "enrollment_end", ROW]
    return pl.concat([p.select(cols).with_columns(pl.lit(i, dtype=pl.Int32).alias("_part")) for i, p in enumerate(parts)], how="vertical")


def _language(observations: pl.DataFrame | None) -> pl.DataFrame:
    """member_id, language from the latest answer to PRAPARE 54899-0 (ASKU when declined)."""
    schema = {"member_id": pl.String, "language": pl.String}
    if observations is None:
        return pl.DataFrame(schema=schema)
    answers = observations.filter(pl.col("CODE") == LANGUAGE_ITEM).sort("PATIENT", "DATE", ROW)
    latest = answers.group_by("PATIENT", maintain_order=True).last()
    rows = []
    for pid, value in latest.select("PATIENT", "VALUE").iter_rows():
        rows.append((pid, _language_value(value)))
    return pl.DataFrame(rows, schema=schema, orient="row")


def _language_value(value: str | None) -> str:
    from equity_pipeline.sources.common import normalise_text

    t = normalise_text(value)
    if t == "i choose not to answer this question":
        return "ASKU"
    if not t or t == "language other than english":
        return "UNK"
    return language_tag(value) or "UNK"



SCREENING_COLS = ["member_id", "screening_id", "screening_date", "instrument", "question_code", "answer_code", "answer_value", "setting"]


def _observations(observations: pl.DataFrame | None, enc_setting: pl.DataFrame, recon: Reconciliation) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clinical_observations, sdoh_screenings) of observation rows held whole; every row counted.
    (Used by the Tuva reader for its observation table; Synthea's own file goes through
    :func:`_observation_file`.)"""
    if observations is None:
        return pl.DataFrame(), pl.DataFrame()
    clinical, screening = _observation_batch(observations, {}, recon)
    screening = screening.join(enc_setting, left_on="_encounter", right_on="encounter_id", how="left", maintain_order="left")
    return clinical, screening.select(SCREENING_COLS)


def _observation_file(input_dir: Path, settings: pl.LazyFrame, recon: Reconciliation) -> tuple[SpilledTable | None, SpilledTable | None, pl.DataFrame]:
    """(clinical_observations, sdoh_screenings, member language); every row counted. observations.csv
    is mapped batch by batch; the answer of each distinct (question, answer text) is worked out once.
    The screening's setting (from its encounter, a second big file) is joined at the end, in one lazy
    pass over the spilled screenings, keeping their order."""
    path = _path(input_dir, "observations", recon)
    if path is None:
        return None, None, _language(None)
    clinical = recon.spill()
    screenings = recon.spill(lambda lf: lf.join(settings, left_on="_encounter", right_on="encounter_id", how="left",
                                                 maintain_order="left").select(SCREENING_COLS))
    answers: dict[tuple[str | None, str | None], tuple] = {}
    language_rows = []
    for batch in _batches(path, "observations"):
        language_rows.append(batch.filter(pl.col("CODE") == LANGUAGE_ITEM).select(ROW, "PATIENT", "DATE", "CODE", "VALUE"))
        c, s = _observation_batch(batch, answers, recon)
        clinical.append(c)
        screenings.append(s)
    return clinical, screenings, _language(pl.concat(language_rows))


def _observation_batch(observations: pl.DataFrame, answers: dict, recon: Reconciliation) -> tuple[pl.DataFrame, pl.DataFrame]:
    roles = prapare_items()
    obs = observations.with_columns(
        code=pl.col("CODE"),
        value=_col(observations, "VALUE"),
        vtype=_col(observations, "TYPE").str.to_lowercase(),
        value_num=_col(observations, "VALUE").cast(pl.Float64, strict=False),
        role=pl.col("CODE").replace_strict(roles, default=None, return_dtype=pl.String),
    )
    # screening answers: instrument and answer code per distinct (question, answer text)
    pairs = obs.filter(pl.col("role").is_in(["screening"]) | pl.col("code").is_in(list(scored_questions("ahc_hrsn")))).select("code", "value").unique()
    scored = scored_questions("prapare") | scored_questions("ahc_hrsn")
    answer_rows = []
    for q, v in pairs.iter_rows():
        if (q, v) not in answers:
            inst = instrument_for(q, answer_text=v)
            code = sdoh_answer_code(inst, q, v) if inst else None
            reason = None
            if inst is None:
                reason = "not_a_screening_item"
            elif code is None and q in scored and v is not None:
                reason = "unmapped_sdoh_answer"
            # an answer worded alike in both tools (93030-5 "No": LA32-8 in each) is read as AHC HRSN
            # unless its survey is a PRAPARE one (below): its PRAPARE code for that case
            alike = sdoh_answer_code("prapare", q, v) if inst == "ahc_hrsn" and q in roles else None
            answers[(q, v)] = (q, v, inst, code, reason, alike)
        answer_rows.append(answers[(q, v)])
    answer_frame = pl.DataFrame(answer_rows, schema={"code": pl.String, "value": pl.String, "instrument": pl.String, "answer_code": pl.String,
                                                     "_ans_reason": pl.String, "_prapare_code": pl.String}, orient="row")
    obs = obs.join(answer_frame, on=["code", "value"], how="left", nulls_equal=True)
    # a survey (patient, encounter or else day, as screening_id) that asks a question only PRAPARE
    # asks is a PRAPARE survey: its answers worded alike in both tools are PRAPARE answers
    encounter = pl.col("ENCOUNTER")
    survey = [pl.col("PATIENT"), pl.when(encounter.is_null() | (encounter == "")).then(pl.col("DATE").str.slice(0, 10)).otherwise(encounter)]
    prapare_only = (pl.col("instrument") == "prapare") & ~pl.col("code").is_in(list(scored_questions("ahc_hrsn")))
    in_prapare = pl.col("_prapare_code").is_not_null() & prapare_only.fill_null(False).any().over(survey)
    obs = obs.with_columns(
        instrument=pl.when(in_prapare).then(pl.lit("prapare")).otherwise(pl.col("instrument")),
        answer_code=pl.when(in_prapare).then(pl.col("_prapare_code")).otherwise(pl.col("answer_code")),
    ).drop("_prapare_code")
    is_sdoh = pl.col("instrument").is_not_null() | pl.col("_ans_reason").is_not_null()
    is_loinc = pl.col("code").str.contains(LOINC).fill_null(False)
    lang_value = pl.col("value").map_elements(_language_value, return_dtype=pl.String)
    obs = obs.with_columns(
        dest=pl.when(pl.col("role") == "language").then(pl.lit("language"))
        .when(is_sdoh).then(pl.lit("sdoh"))
        .when(is_loinc & (pl.col("vtype") == "numeric") & pl.col("value_num").is_not_null()).then(pl.lit("clinical")),
    ).with_columns(
        pl.when(pl.col("dest") == "sdoh").then(pl.col("_ans_reason"))
        .when(pl.col("dest") == "language").then(pl.when(lang_value == "UNK").then(pl.lit("language_not_named")))
        .when(pl.col("dest") == "clinical").then(None)
        .when(pl.col("role") == "address").then(pl.lit("address_not_carried"))
        .when(pl.col("role") == "demographic").then(pl.lit("demographic_item_patients_csv_is_source"))
        .when(pl.col("code").is_null()).then(pl.lit("missing_code"))
        .when(~is_loinc).then(pl.lit("not_loinc"))
        .when(pl.col("vtype") == "numeric").then(pl.lit("non_numeric_value"))
        .otherwise(pl.lit("text_result_not_in_contract"))
        .alias(REASON)
    )
    key = _key("observations")
    mapped = recon.record_frame(key, obs)
    recon.note(key, "language_answers", mapped.filter(pl.col("dest") == "language").height)
    clinical = mapped.filter(pl.col("dest") == "clinical").select(
        pl.col("PATIENT").alias("member_id"),
        date_part(pl.col("DATE")).alias("observation_date"),
        pl.col("code").alias("loinc_code"),
        pl.col("value").alias("value_numeric"),
        _col(mapped, "UNITS").alias("unit"),
        pl.lit("ehr").alias("source_system"),
    )
    sdoh = mapped.filter(pl.col("dest") == "sdoh")
    screening = sdoh.select(
        pl.col("PATIENT").alias("member_id"),
        pl.struct("PATIENT", "ENCOUNTER", "DATE", "instrument").map_elements(
            lambda s: short_id(s["PATIENT"], s["ENCOUNTER"] or (s["DATE"] or "")[:10], s["instrument"]), return_dtype=pl.String
        ).alias("screening_id"),
        date_part(pl.col("DATE")).alias("screening_date"),
        "instrument",
        pl.col("code").alias("question_code"),
        "answer_code",
        pl.when(pl.col("answer_code").is_null()).then(pl.col("value")).alias("answer_value"),
        pl.col("ENCOUNTER").alias("_encounter"),
    )
    return clinical, screening


HEADER_SCHEMA = {c: pl.String for c in ("claim_id", "member_id", "payer", "claim_type", "place_of_service", "bill_type",
                                        "hdr_from", "hdr_thru", "encounter_class")}


def _claims(input_dir: Path, payer_map: pl.DataFrame, recon: Reconciliation) -> tuple[pl.DataFrame | SpilledTable, pl.LazyFrame]:
    """(medical_claims lines, encounter_id -> setting as a lazy frame).

    encounters, procedures, conditions, claims and claims_transactions are big: each is copied in
    batches to temporary Parquet parts and mapped in batches of a lazy query; where one big file
    needs another (claim type of an encounter from claims.csv, the encounter of a procedure, the
    claim of a transaction) the two are joined lazily on the spilled parts (polars' streaming
    engine), never through Python sets. The payer lookup (payers.csv) is small and held whole. Lines
    are numbered within a claim in one lazy pass over all spilled lines when they are written."""
    classes = encounter_classes()
    headers = recon.spill()
    bad_encounters = recon.spill()

    def header_frame() -> pl.LazyFrame:
        return headers.lazy() if headers.parts else pl.LazyFrame(schema=HEADER_SCHEMA)

    def finish(lf: pl.LazyFrame) -> pl.LazyFrame:
        return lf.join(header_frame(), on="claim_id", how="left").sort(
            "claim_id", "_kind", "claim_from_date", "snomed_code", ROW, maintain_order=True
        ).with_columns(
            claim_line=(pl.int_range(pl.len()).over("claim_id") + 1).cast(pl.String),
            member_id=pl.coalesce(pl.col("member_id"), pl.col("_patient")),
            claim_type=pl.col("claim_type").fill_null("professional"),
            claim_version=pl.lit("1"),
            claim_status=pl.lit("paid"),
        )

    lines = recon.spill(finish)
    encounters = _spill_raw(input_dir, "encounters", recon)
    claims = _spill_raw(input_dir, "claims", recon)
    if encounters is not None:
        cls = pl.col("ENCOUNTERCLASS").str.to_lowercase()
        enc = encounters.with_columns(encounter_class=cls, PAYER=_col(encounters, "PAYER")).join(
            payer_map.lazy().select(pl.col("payer_id").alias("PAYER"), pl.col("category")), on="PAYER", how="left"
        )
        if claims is not None:  # APPOINTMENTID is always there (an optional column)
            claim_type_by_enc = claims.group_by(pl.col("APPOINTMENTID").alias("Id")).agg(
                claims_type=pl.when((_col(claims, "HEALTHCARECLAIMTYPEID1") == "2").any()).then(pl.lit("institutional"))
                .when((_col(claims, "HEALTHCARECLAIMTYPEID1") == "1").any()).then(pl.lit("professional"))
            )
            enc = enc.join(claim_type_by_enc, on="Id", how="left")
        else:
            enc = enc.with_columns(claims_type=pl.lit(None, dtype=pl.String))
        lookup = lambda field: pl.col("encounter_class").replace_strict({k: v[field] for k, v in classes.items()}, default=None, return_dtype=pl.String)  # noqa: E731
        enc = enc.with_columns(
            pl.when(~pl.col("encounter_class").is_in(list(classes))).then(pl.lit("unmapped_encounter_class"))
            .when(pl.col("PATIENT").is_null()).then(pl.lit("missing_patient"))
            .alias(REASON),
            payer=pl.when(pl.col("category") == "dual").then(pl.lit("medicare"))
            .when(pl.col("category").is_in(["medicare", "medicaid", "commercial"])).then(pl.col("category")),
            claim_type=pl.coalesce(pl.col("claims_type"), lookup("claim_type")),
            place_of_service=lookup("place_of_service"),
            bill_type=lookup("bill_type"),
        )
        inpatient = pl.col("encounter_class") == "inpatient"
        for batch in _stream(enc):
            bad_encounters.append(batch.filter(pl.col(REASON).is_not_null()).select("Id"))
            mapped = recon.record_frame(_key("encounters"), batch)
            recon.note(_key("encounters"), "claim_type_from_claims_csv", mapped.filter(pl.col("claims_type").is_not_null()).height)
            headers.append(mapped.select(
                pl.col("Id").alias("claim_id"), pl.col("PATIENT").alias("member_id"), "payer", "claim_type", "place_of_service", "bill_type",
                date_part(pl.col("START")).alias("hdr_from"), date_part(_col(mapped, "STOP")).alias("hdr_thru"), "encounter_class",
            ))
            lines.append(mapped.select(
                pl.col("Id").alias("claim_id"), pl.lit(0).alias("_kind"), ROW,
                date_part(pl.col("START")).alias("claim_from_date"),
                pl.coalesce(date_part(_col(mapped, "STOP")), date_part(pl.col("START"))).alias("claim_thru_date"),
                pl.when(inpatient).then(date_part(pl.col("START"))).alias("admit_date"),
                pl.when(inpatient).then(date_part(_col(mapped, "STOP"))).alias("discharge_date"),
                pl.col("CODE").alias("snomed_code"),
                money(_col(mapped, "PAYER_COVERAGE")).alias("paid_amount"),
                pl.lit(None, dtype=pl.String).alias("allowed_amount"),
                pl.col("PATIENT").alias("_patient"),
            ))
    known = _ids(headers, "claim_id", "_known")
    quarantined = _ids(bad_encounters, "Id", "_bad")
    for name, kind in (("procedures", 1), ("conditions", 2)):
        frame = _spill_raw(input_dir, name, recon)
        if frame is None:
            continue
        f = (frame.with_columns(_enc=_col(frame, "ENCOUNTER"))
             .join(quarantined, left_on="_enc", right_on="_id", how="left")
             .join(known, left_on="_enc", right_on="_id", how="left"))
        f = f.with_columns(
            pl.when(pl.col("_bad").fill_null(False)).then(pl.lit("encounter_quarantined"))
            .when(pl.col("PATIENT").is_null()).then(pl.lit("missing_patient"))
            .when(pl.col("CODE").is_null()).then(pl.lit("missing_code"))
            .alias(REASON)
        )
        system = _col(f, "SYSTEM")
        f = f.with_columns(
            pl.when(pl.col(REASON).is_null() & system.is_not_null() & ~system.str.contains("snomed")).then(pl.lit("code_system_not_snomed")).otherwise(pl.col(REASON)).alias(REASON)
        )
        for batch in _stream(f):
            m = recon.record_frame(_key(name), batch)
            recon.note(_key(name), "no_encounter_own_claim", m.filter(~pl.col("_known").fill_null(False)).height)
            lines.append(m.select(
                pl.coalesce(pl.col("_enc"), pl.struct("PATIENT", "START", "CODE").map_elements(lambda s: "syn-" + short_id(s["PATIENT"], s["START"], s["CODE"]), return_dtype=pl.String)).alias("claim_id"),
                pl.lit(kind).alias("_kind"), ROW,
                date_part(pl.col("START")).alias("claim_from_date"),
                (pl.coalesce(date_part(_col(m, "STOP")), date_part(pl.col("START"))) if kind == 1 else date_part(pl.col("START"))).alias("claim_thru_date"),
                pl.lit(None, dtype=pl.String).alias("admit_date"),
                pl.lit(None, dtype=pl.String).alias("discharge_date"),
                pl.col("CODE").alias("snomed_code"),
                pl.lit(None, dtype=pl.String).alias("paid_amount"),
                pl.lit(None, dtype=pl.String).alias("allowed_amount"),
                pl.col("PATIENT").alias("_patient"),
            ))
    # claims.csv and claims_transactions.csv: linked to the encounter claim, or quarantined
    mapped_claims = recon.spill()
    if claims is not None:
        c = (claims.with_columns(_enc=_col(claims, "APPOINTMENTID"))
             .join(known, left_on="_enc", right_on="_id", how="left")
             .join(quarantined, left_on="_enc", right_on="_id", how="left")
             .with_columns(
                 pl.when(pl.col("_known").fill_null(False)).then(None)
                 .when(pl.col("_bad").fill_null(False)).then(pl.lit("encounter_quarantined"))
                 .otherwise(pl.lit("encounter_not_found")).alias(REASON)))
        for batch in _stream(c):
            mapped_claims.append(recon.record_frame(_key("claims"), batch).select("Id"))
    transactions = _spill_raw(input_dir, "claims_transactions", recon)
    if transactions is not None:
        t = transactions.join(_ids(mapped_claims, "Id", "_mapped"), left_on="CLAIMID", right_on="_id", how="left").with_columns(
            pl.when(pl.col("_mapped").fill_null(False)).then(None).otherwise(pl.lit("claim_not_mapped")).alias(REASON)
        )
        for batch in _stream(t):
            mapped = recon.record_frame(_key("claims_transactions"), batch)
            recon.note(_key("claims_transactions"), "amounts_represented_by_encounter_totals", mapped.height)

    settings = header_frame().select(
        pl.col("claim_id").alias("encounter_id"),
        pl.col("encounter_class").replace_strict({k: v["setting"] for k, v in classes.items()}, default=None, return_dtype=pl.String).alias("setting"),
    )
    if not lines.parts:
        return pl.DataFrame(), settings
    return lines, settings


def _not_carried(input_dir: Path, name: str, reason: str, recon: Reconciliation) -> None:
    path = _path(input_dir, name, recon)
    if path is not None:
        for batch in _batches(path, name):
            recon.record_frame(_key(name), batch.with_columns(pl.lit(reason).alias(REASON)))


def convert(input_dir: Path, recon: Reconciliation) -> dict[str, pl.DataFrame | SpilledTable]:
    """Read a Synthea CSV export folder and return the canonical tables (reconciliation in ``recon``).

    patients, payers (small) are read whole; the other files in bounded batches (:data:`BIG`,
    :data:`BATCH_ROWS`); medical_claims, clinical_observations, sdoh_screenings and enrollment are
    returned as spilled tables that the writer streams into the canonical files."""
    patients = _read(input_dir, "patients", recon)
    payers = _read(input_dir, "payers", recon)
    present_other = sorted(p.name for p in input_dir.glob("*.csv") if p.stem in NOT_READ)
    if present_other:
        recon.warn("files_not_read", "not in the canonical contract, not read: " + ", ".join(present_other))
    payer_map = _payer_lookup(payers, recon)
    claim_lines, settings = _claims(input_dir, payer_map, recon)
    clinical, screenings, language = _observation_file(input_dir, settings, recon)
    members = _members(patients, language, recon)
    enrollment = _enrollment(input_dir, payer_map, payers is not None, recon)
    _not_carried(input_dir, "immunizations", "cvx_not_in_contract", recon)
    _not_carried(input_dir, "organizations", "no_npi_or_ccn", recon)
    _not_carried(input_dir, "providers", "no_npi_or_ccn", recon)
    tables: dict[str, pl.DataFrame | SpilledTable] = {"members": members, "enrollment": enrollment, "medical_claims": claim_lines}
    if clinical is not None and clinical.height:
        tables["clinical_observations"] = clinical
    if screenings is not None and screenings.height:
        tables["sdoh_screenings"] = screenings
    return tables
