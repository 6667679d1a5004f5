"""Shared pieces of the source-format readers: the reconciliation ledger, mapping tables, value
normalisers and the writer of the canonical tables.

Every mapping table is data in ``sources/data/*.csv`` (documented in docs/sources.md); this module
only loads and applies them. Nothing here logs or returns data values: the ledger holds counts,
reason codes and file names only.
"""
from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import detect_encoding, ensure_restricted_dir, sha256_file, sniff_delimiter, write_parquet_atomic

REASON = "_reason"  # per-row quarantine reason while mapping (null = mapped)


# ---------------------------------------------------------------------------------------------
# reconciliation ledger
# ---------------------------------------------------------------------------------------------
@dataclass
class SourceCounts:
    """Counts for one source file (or, for FHIR bundles, one resource type): read = mapped + quarantined."""

    read: int = 0
    mapped: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "mapped": self.mapped, "quarantined": self.quarantined,
                "reasons": dict(sorted(self.reasons.items())), "notes": dict(sorted(self.notes.items()))}


@dataclass
class Reconciliation:
    """What one conversion read, mapped and quarantined, per source file; warnings for degraded input."""

    source: str
    input_dir: str
    files: dict[str, SourceCounts] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    quarantine_rows: dict[str, pl.DataFrame] = field(default_factory=dict)
    spills: list[Any] = field(default_factory=list, repr=False)

    def spill(self, finish: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None) -> SpilledTable:
        """A new :class:`SpilledTable`, removed by :meth:`discard_spills` whatever happens."""
        table = SpilledTable(finish)
        self.spills.append(table)
        return table

    def discard_spills(self) -> None:
        for table in self.spills:
            table.discard()
        self.spills.clear()

    def counts(self, key: str) -> SourceCounts:
        return self.files.setdefault(key, SourceCounts())

    def add_input(self, path: Path, label: str | None = None, **extra: Any) -> None:
        """List an input file with its hash. ``label`` replaces the file name where the name itself
        may carry PHI (Synthea names FHIR bundles after the patient)."""
        self.inputs.append({"file": label or path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, **extra})

    def warn(self, code: str, message: str) -> None:
        self.warnings[code] = message

    def note(self, key: str, name: str, n: int = 1) -> None:
        if n:
            c = self.counts(key)
            c.notes[name] = c.notes.get(name, 0) + int(n)

    def record_frame(self, key: str, frame: pl.DataFrame, row_col: str = "_source_row") -> pl.DataFrame:
        """Count the rows of ``frame`` by their ``_reason`` (null = mapped) and return the mapped rows.

        The quarantined rows' source row numbers and reasons (no values) are kept for
        ``_quarantine/<key>.parquet``."""
        c = self.counts(key)
        c.read += frame.height
        bad = frame.filter(pl.col(REASON).is_not_null())
        c.quarantined += bad.height
        c.mapped += frame.height - bad.height
        for reason, n in bad.group_by(REASON).len().iter_rows():
            c.reasons[reason] = c.reasons.get(reason, 0) + int(n)
        if bad.height and row_col in bad.columns:
            q = bad.select(pl.col(row_col).cast(pl.Int64).alias("source_row"), pl.col(REASON).alias("reason"))
            prev = self.quarantine_rows.get(key)
            self.quarantine_rows[key] = q if prev is None else pl.concat([prev, q])
        return frame.filter(pl.col(REASON).is_null()).drop(REASON)

    def record(self, key: str, reason: str | None, n: int = 1) -> None:
        """Count ``n`` items of ``key`` as mapped (reason None) or quarantined for ``reason``."""
        c = self.counts(key)
        c.read += n
        if reason is None:
            c.mapped += n
        else:
            c.quarantined += n
            c.reasons[reason] = c.reasons.get(reason, 0) + n

    def reconciles(self) -> bool:
        return all(c.read == c.mapped + c.quarantined for c in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "input_dir": self.input_dir,
            "converted": self.source != "canonical",
            "reconciles": self.reconciles(),
            "files": {k: v.to_dict() for k, v in sorted(self.files.items())},
            "totals": {
                "read": sum(c.read for c in self.files.values()),
                "mapped": sum(c.mapped for c in self.files.values()),
                "quarantined": sum(c.quarantined for c in self.files.values()),
            },
            "warnings": dict(sorted(self.warnings.items())),
            "n_warnings": len(self.warnings),
            "inputs": sorted(self.inputs, key=lambda d: d["file"]),
            "tables_written": dict(sorted(self.tables.items())),
        }


# ---------------------------------------------------------------------------------------------
# mapping tables
# ---------------------------------------------------------------------------------------------
def _data_rows(name: str) -> list[dict[str, str]]:
    path = resources.files("equity_pipeline.sources") / "data" / name
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def normalise_text(value: str | None) -> str:
    """Lower case, every run of non-alphanumerics one space (Synthea writes commas as double spaces)."""
    if value is None:
        return ""
    return re.sub(r"[^a-z0-9]+", " ", value.lower()).strip()


@lru_cache(maxsize=1)
def race_ethnicity_terms() -> dict[str, tuple[str, str]]:
    """normalised term -> (CDC REC code, 'race' | 'ethnicity')."""
    return {normalise_text(r["term"]): (r["code"], r["kind"]) for r in _data_rows("race_ethnicity_terms.csv")}


@lru_cache(maxsize=1)
def payer_names() -> dict[str, tuple[str, str | None]]:
    """normalised payer name -> (medicare | medicaid | commercial | dual | none, dual_status)."""
    return {normalise_text(r["name"]): (r["payer"], r["dual_status"] or None) for r in _data_rows("payer_names.csv")}


@lru_cache(maxsize=1)
def encounter_classes() -> dict[str, dict[str, str | None]]:
    return {r["encounter_class"]: {k: (v or None) for k, v in r.items()} for r in _data_rows("encounter_classes.csv")}


@lru_cache(maxsize=1)
def fhir_encounter_classes() -> dict[str, str]:
    return {r["code"]: r["encounter_class"] for r in _data_rows("fhir_encounter_classes.csv")}


@lru_cache(maxsize=1)
def prapare_items() -> dict[str, str]:
    """PRAPARE question LOINC -> role (screening, language, demographic, address)."""
    return {r["question_code"]: r["role"] for r in _data_rows("prapare_items.csv")}


@lru_cache(maxsize=1)
def sdoh_answer_table() -> dict[tuple[str, str, str], str]:
    """(instrument, question_code or '*', normalised answer text) -> LOINC answer code or ASKU.

    PRAPARE from ``sources/data/prapare_answers.csv``; AHC HRSN from the project's scoring table
    (``reference/data/sdoh_screening_items.csv``), whose answer texts are the AHC wording."""
    from equity_pipeline.standards.sdoh import items

    out = {("prapare", r["question_code"], normalise_text(r["answer_text"])): r["answer_code"] for r in _data_rows("prapare_answers.csv")}
    out[("ahc_hrsn", "*", normalise_text("I choose not to answer this question"))] = "ASKU"
    for inst, q, text, code in items().select("instrument", "question_code", "answer_text", "answer_code").iter_rows():
        if inst == "ahc_hrsn":
            out[(inst, q, normalise_text(text))] = code
    return out


def scored_questions(instrument: str) -> set[str]:
    """Questions the SDOH scoring table uses for ``instrument`` (an unmapped answer to these is quarantined)."""
    from equity_pipeline.standards.sdoh import items

    return set(items().filter(pl.col("instrument") == instrument)["question_code"].to_list())


def sdoh_answer_code(instrument: str, question: str, text: str | None) -> str | None:
    table = sdoh_answer_table()
    key = normalise_text(text)
    return table.get((instrument, question, key)) or table.get((instrument, "*", key))


def instrument_for(question: str, answer_text: str | None = None, answer_code: str | None = None) -> str | None:
    """ahc_hrsn or prapare for a screening question (None: not a screening question we carry).

    Questions both instruments ask (71802-3 housing, 93030-5 transportation) are told apart by the
    answer: AHC HRSN and PRAPARE use different answer wording and codes."""
    prapare = prapare_items()
    ahc = scored_questions("ahc_hrsn")
    if question in ahc and question not in prapare:
        return "ahc_hrsn"
    if question in ahc and question in prapare:
        from equity_pipeline.standards.sdoh import items

        ahc_codes = set(items().filter((pl.col("instrument") == "ahc_hrsn") & (pl.col("question_code") == question))["answer_code"].to_list())
        if answer_code and answer_code in ahc_codes:
            return "ahc_hrsn"
        if answer_text is not None and sdoh_answer_table().get(("ahc_hrsn", question, normalise_text(answer_text))):
            return "ahc_hrsn"
        return "prapare"
    if prapare.get(question) == "screening":
        return "prapare"
    return None


# ---------------------------------------------------------------------------------------------
# value normalisers (Python level, used on distinct values or per resource)
# ---------------------------------------------------------------------------------------------
def race_ethnicity_codes(race_terms: list[str], ethnicity_terms: list[str]) -> tuple[str | None, str | None]:
    """('|'-joined CDC REC codes, None) or (None, reason). No terms at all -> 'UNK'."""
    table = race_ethnicity_terms()
    codes: list[str] = []
    for terms, kind in ((race_terms, "race"), (ethnicity_terms, "ethnicity")):
        for term in terms:
            t = normalise_text(term)
            if not t:
                continue
            hit = table.get(t)
            if hit is None or hit[1] != kind:
                return None, f"unmapped_{kind}"
            if hit[0] not in codes:
                codes.append(hit[0])
    return ("|".join(codes) if codes else "UNK"), None


def normalise_zip(value: str | None) -> str | None:
    """5-digit ZIP: ZIP+4 cut to 5; 3-4 digit values zero-padded (formats known to drop leading zeros)."""
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    if re.fullmatch(r"\d{5}-?\d{4}", v):
        return v[:5]
    if re.fullmatch(r"\d{3,4}", v):
        return v.zfill(5)
    return v


@lru_cache(maxsize=1)
def _addfips():
    import addfips

    return addfips.AddFIPS()


@lru_cache(maxsize=4096)
def county_fips_from_name(county: str, state: str) -> str | None:
    """5-digit county FIPS from a county name and a state (name or USPS code); None if unknown."""
    if not county or not state:
        return None
    try:
        return _addfips().get_county_fips(county.strip(), state=state.strip())
    except Exception:  # noqa: BLE001 - an unknown state raises inside addfips
        return None


@lru_cache(maxsize=1)
def _zip_module():
    try:
        import zipcodes
    except ImportError:  # pragma: no cover - declared dependency
        return None
    return zipcodes


@lru_cache(maxsize=65536)
def county_from_zip(zip5: str, state: str | None = None) -> str | None:
    """County FIPS of a 5-digit ZIP's primary county (``zipcodes`` package data); None if unknown.

    A ZIP can cross county lines: the package gives the USPS primary county. Used only where the
    source has no county (FHIR addresses without ``district``)."""
    zc = _zip_module()
    if zc is None or not zip5 or not re.fullmatch(r"\d{5}", zip5):
        return None
    try:
        hits = zc.matching(zip5)
    except Exception:  # noqa: BLE001
        return None
    if not hits:
        return None
    hit = hits[0]
    if state and hit.get("state") and len(state.strip()) == 2 and hit["state"] != state.strip().upper():
        return None
    return county_fips_from_name(hit.get("county") or "", hit.get("state") or "")


@lru_cache(maxsize=1024)
def language_tag(text: str | None) -> str | None:
    """BCP 47 tag for a language given as a tag ('en-US') or an English name ('Spanish'); None if unknown."""
    import langcodes

    if not text or not text.strip():
        return None
    t = text.strip()
    if langcodes.tag_is_valid(t):
        return langcodes.standardize_tag(t)
    try:
        return langcodes.find(t).to_tag()
    except LookupError:
        return None


def payer_category(name: str | None) -> tuple[str | None, str | None]:
    """(medicare|medicaid|commercial|dual|none, dual_status) from a payer name; (None, None) if unknown."""
    hit = payer_names().get(normalise_text(name))
    return hit if hit else (None, None)


def strip_name_digits(value: str | None) -> str | None:
    """Synthea appends digits to names ('Maynard46'); drop them so BISG surname tables can match."""
    if value is None:
        return None
    v = re.sub(r"\d+", "", value).strip()
    return v or None


def short_id(*parts: str | None) -> str:
    """A stable 16-hex identifier derived from ``parts`` (used for screening ids; not reversible)."""
    return hashlib.sha256("|".join(p or "" for p in parts).encode("utf-8")).hexdigest()[:16]


def date_part(expr: pl.Expr) -> pl.Expr:
    """'YYYY-MM-DD' from a date or an ISO date-time string (the date as written, no time-zone shift)."""
    return expr.str.strip_chars().str.slice(0, 10)


def money(expr: pl.Expr) -> pl.Expr:
    """Amount text rounded to cents (Synthea writes floats with 3+ decimals); NaN -> null; other
    non-numbers stay as text (the canonical validation quarantines them)."""
    num = expr.str.strip_chars().cast(pl.Float64, strict=False)
    return (pl.when(num.is_not_null() & num.is_finite()).then(num.round(2).cast(pl.String))
            .when(num.is_not_null()).then(None)  # NaN / inf: amount unknown
            .otherwise(expr))


# ---------------------------------------------------------------------------------------------
# canonical output
# ---------------------------------------------------------------------------------------------
CANONICAL_COLUMNS: dict[str, list[str]] = {
    "members": ["member_id", "race_ethnicity_codes", "race_ethnicity_source", "language", "interpreter_needed", "sex",
                "birth_date", "death_date", "zip", "county_fips", "first_name", "last_name"],
    "enrollment": ["member_id", "payer", "line_of_business", "plan_id", "dual_status", "enrollment_start", "enrollment_end"],
    "medical_claims": ["claim_id", "claim_line", "claim_version", "claim_status", "member_id", "payer", "claim_type",
                       "claim_from_date", "claim_thru_date", "admit_date", "discharge_date", "bill_type", "place_of_service",
                       "snomed_code", "diagnosis_code_1", "paid_amount", "allowed_amount"],
    "clinical_observations": ["member_id", "observation_date", "loinc_code", "value_numeric", "unit", "source_system"],
    "sdoh_screenings": ["member_id", "screening_id", "screening_date", "instrument", "question_code", "answer_code",
                        "answer_value", "setting"],
}


def conform(table: str, frame: pl.DataFrame, *, keep_extra: bool = False) -> pl.DataFrame:
    """The canonical columns of ``table`` in order, as text (missing ones null).

    :data:`CANONICAL_COLUMNS` lists the columns always written; any other column of the table's
    contract (expectations/<table>.json) that the reader produced is kept too (a claims source such
    as Tuva has revenue codes, HCPCS, twelve diagnoses, ...). Tables without an entry in
    :data:`CANONICAL_COLUMNS` (``pharmacy_claims``, ``providers``) are written with every contract column.
    ``keep_extra``: the frame's non-contract columns not starting with ``_`` follow (carried, e.g.
    ICD-9 codes; the canonical reader lists and ignores them, as for :func:`conform_contract`)."""
    from equity_pipeline.suites import load_suite

    contract = list(load_suite(table).column_names)
    base = CANONICAL_COLUMNS.get(table, contract)
    have = _names(frame)
    cols = base + [c for c in contract if c not in base and c in have]
    if keep_extra:
        cols += [c for c in have if c not in cols and c not in contract and not c.startswith("_")]
    if not have:
        return pl.DataFrame(schema={c: pl.String for c in cols})
    return frame.select([
        (pl.col(c).cast(pl.String) if c in have else pl.lit(None, dtype=pl.String)).alias(c) for c in cols
    ])


def _names(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    return frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns


def write_canonical(tables: dict[str, pl.DataFrame], out_dir: Path, recon: Reconciliation, *,
                    keep_extra: tuple[str, ...] = ()) -> None:
    """Write the canonical tables as Parquet (owner-only folder), replacing any earlier conversion.
    A table may be a :class:`SpilledTable` (streamed). Tables in ``keep_extra`` keep their extra
    columns (:func:`conform` ``keep_extra``)."""
    ensure_restricted_dir(out_dir.parent)
    ensure_restricted_dir(out_dir)
    for old in out_dir.glob("*.parquet"):
        old.unlink()
    qdir = out_dir / "_quarantine"
    if qdir.is_dir():
        for old in qdir.glob("*.parquet"):
            old.unlink()
    for table, frame in tables.items():
        _write_table(partial(conform, keep_extra=table in keep_extra), table, frame, out_dir, recon)
    for key, rows in recon.quarantine_rows.items():
        ensure_restricted_dir(qdir)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
        write_parquet_atomic(rows.sort("source_row") if "source_row" in rows.columns else rows, qdir / f"{safe}.parquet")


def contract_columns(table: str) -> list[str]:
    """Every column of ``table`` in the input contract (the suite's ``meta.columns``), in order."""
    from equity_pipeline.suites import load_suite

    return list(load_suite(table).column_names)


def conform_contract(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Like :func:`conform` but over every contract column of ``table`` (any contract table), as
    text; the frame's other columns not starting with ``_`` follow. The canonical reader lists
    those as extra columns and ignores them: a reader keeps there what the contract cannot hold
    (e.g. ICD-9 codes) so that it is carried, not dropped."""
    cols = contract_columns(table)
    have = _names(frame)
    extra = [c for c in have if c not in cols and not c.startswith("_")]
    if not have:
        return pl.DataFrame(schema={c: pl.String for c in cols})
    return frame.select([
        (pl.col(c).cast(pl.String) if c in have else pl.lit(None, dtype=pl.String)).alias(c) for c in cols
    ] + [pl.col(c).cast(pl.String) for c in extra])


def write_canonical_contract(tables: dict[str, pl.DataFrame], out_dir: Path, recon: Reconciliation) -> None:
    """:func:`write_canonical` keeping every contract column a reader fills (all diagnosis and
    procedure columns, HCPCS, revenue code, NPI, CCN, ``members.disability``, ...) and writing any
    contract table (``pharmacy_claims``, ``providers``). A reader opts in with
    ``write_tables = write_canonical_contract`` (see ``sources.convert``)."""
    write_canonical({}, out_dir, recon)  # clears an earlier conversion, writes the quarantine rows
    for table, frame in tables.items():
        _write_table(conform_contract, table, frame, out_dir, recon)


def _write_table(conformer, table: str, frame: pl.DataFrame | SpilledTable, out_dir: Path, recon: Reconciliation) -> None:
    """Conform one table and write it atomically; a :class:`SpilledTable` is streamed from its parts
    (never whole in memory) and its parts are removed once written."""
    if isinstance(frame, SpilledTable):
        try:
            write_parquet_atomic(conformer(table, frame.lazy()), out_dir / f"{table}.parquet")
            recon.tables[table] = frame.height
        finally:
            frame.discard()
        return
    conformed = conformer(table, frame)
    write_parquet_atomic(conformed, out_dir / f"{table}.parquet")
    recon.tables[table] = conformed.height


# ---------------------------------------------------------------------------------------------
# reading source files (every reader can use these)
# ---------------------------------------------------------------------------------------------
SOURCE_ROW = "_source_row"  # 1-based data-row number in the source file (header not counted)
SOURCE_SUFFIXES = (".csv", ".parquet", ".txt", ".tsv", ".psv", ".dat", ".csv.gz")


def find_source_files(input_dir: Path, stem: str, *, prefix: bool = False) -> list[Path]:
    """Files holding one source table in ``input_dir``: ``<stem><suffix>`` (any of
    :data:`SOURCE_SUFFIXES`, case-insensitive), or with ``prefix`` every ``<stem>*<suffix>`` (formats
    that name files ``SDOH_PtInfo_<org>_<batch>_<timestamp>.csv``), sorted by name."""
    found = []
    for path in sorted(Path(input_dir).iterdir()) if Path(input_dir).is_dir() else []:
        if not path.is_file():
            continue
        low = path.name.lower()
        suffix = next((s for s in SOURCE_SUFFIXES if low.endswith(s)), None)
        if suffix is None:
            continue
        base = low[: -len(suffix)]
        if base == stem.lower() or (prefix and base.startswith(stem.lower())):
            found.append(path)
    return found


def read_table(path: Path, *, delimiter: str | None = None, encoding: str | None = None,
               required: tuple[str, ...] = (), optional: tuple[str, ...] = (), label: str | None = None) -> pl.DataFrame:
    """Read one source file as text, the same way for every reader.

    * CSV (any of :data:`SOURCE_SUFFIXES` but ``.parquet``) or Parquet (every column cast to text,
      list columns joined with ``|``);
    * delimiter ``delimiter`` when declared, else sniffed from the header (``,`` ``|`` tab ``;``);
    * encoding ``encoding`` when declared (any Python codec name), else UTF-8 when the whole file
      decodes as UTF-8 (with or without BOM), else Latin-1; a non-UTF-8 file is transcoded to an
      owner-only temporary file that is removed as soon as it is read;
    * CRLF or LF line ends, quoted fields (delimiters and line breaks inside quotes kept);
    * every value is text, so leading zeros of ZIP, FIPS, NPI and codes are kept; values are
      trimmed and empty strings become null; column names are trimmed (BOM removed);
    * column names in ``required`` and ``optional`` are matched exactly, else case-insensitively;
      a missing required column is a :class:`StructuralError` naming the file and column; missing
      optional columns are added as nulls;
    * ``_source_row``: the 1-based data-row number, for quarantine records (never a value).

    ``label`` names the file in errors instead of its name (when the name itself may carry PHI).
    :func:`iter_table` reads the same way in bounded batches (for files too big to hold whole)."""
    path = Path(path)
    name = _check_file(path, label)
    if path.name.lower().endswith(".parquet"):
        from equity_pipeline.io import ROW as IO_ROW
        from equity_pipeline.io import scan_text

        frame = scan_text(path).collect().rename({IO_ROW: SOURCE_ROW})
    else:
        with _text_source(path, name, encoding=encoding, delimiter=delimiter, plain=False) as (source, sep):
            try:
                frame = pl.read_csv(source, separator=sep, infer_schema=False, has_header=True,
                                    quote_char='"', truncate_ragged_lines=False)
            except pl.exceptions.PolarsError as exc:
                raise StructuralError(name, f"not a readable delimited text file ({type(exc).__name__})") from None
        frame = frame.with_row_index(SOURCE_ROW, offset=1).with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
    return _finish(frame, name, required, optional)


#: rows per batch of :func:`iter_table` (a batch of a wide claim file, all text, is some 100 MB)
BATCH_ROWS = 200_000


def iter_table(path: Path, *, batch_rows: int | None = None, delimiter: str | None = None, encoding: str | None = None,
               required: tuple[str, ...] = (), optional: tuple[str, ...] = (), label: str | None = None) -> Iterator[pl.DataFrame]:
    """:func:`read_table` in batches of at most ``batch_rows`` rows (default :data:`BATCH_ROWS`), for
    files too big to hold in memory: every batch is read, trimmed, renamed and checked exactly as
    :func:`read_table` reads the whole file, and ``_source_row`` runs on across batches, so the
    batches put together equal ``read_table(path)``. At least one batch is yielded (an empty one for
    a header-only file), so a missing required column is reported for every file.

    CSV is read with polars' streaming CSV scan; a Latin-1 (or declared non-UTF-8) or gzipped file
    is first transcoded block by block to an owner-only plain UTF-8 temporary file, removed when the
    iteration ends. Parquet is read slice by slice."""
    path = Path(path)
    name = _check_file(path, label)
    size = batch_rows or BATCH_ROWS
    if path.name.lower().endswith(".parquet"):
        from equity_pipeline.io import ROW as IO_ROW
        from equity_pipeline.io import scan_text

        lf = scan_text(path).rename({IO_ROW: SOURCE_ROW})
        total = lf.select(pl.len()).collect().item()
        for offset in range(0, max(total, 1), size):
            yield _finish(lf.slice(offset, size).collect(), name, required, optional)
        return
    with _text_source(path, name, encoding=encoding, delimiter=delimiter, plain=True) as (source, sep):
        lf = pl.scan_csv(source, separator=sep, infer_schema=False, has_header=True, quote_char='"',
                         truncate_ragged_lines=False, empty_string_is_null=False)
        next_row = 1
        try:
            for batch in lf.collect_batches(chunk_size=size):
                if batch.height == 0:
                    continue
                batch = batch.with_row_index(SOURCE_ROW, offset=next_row).with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
                next_row += batch.height
                yield _finish(batch, name, required, optional)
            if next_row == 1:  # header only: one empty batch with the file's columns
                empty = pl.DataFrame(schema={c: pl.String for c in lf.collect_schema().names()})
                yield _finish(empty.with_row_index(SOURCE_ROW, offset=1).with_columns(pl.col(SOURCE_ROW).cast(pl.Int64)),
                              name, required, optional)
        except pl.exceptions.PolarsError as exc:
            raise StructuralError(name, f"not a readable delimited text file ({type(exc).__name__})") from None


def _check_file(path: Path, label: str | None) -> str:
    name = label or path.name
    if not path.is_file():
        raise StructuralError(name, "file not found")
    if path.stat().st_size == 0:
        raise StructuralError(name, "file is empty (no header line)")
    return name


@contextmanager
def _text_source(path: Path, name: str, *, encoding: str | None, delimiter: str | None, plain: bool) -> Iterator[tuple[Path, str]]:
    """(file polars can read as UTF-8, delimiter). A non-UTF-8 file (and with ``plain`` a gzipped
    one: polars' scan reads plain files only) is transcoded to an owner-only temporary file,
    block by block, removed on exit."""
    import gzip
    import os
    import tempfile

    gz = path.name.lower().endswith(".gz")
    enc = (encoding or detect_encoding(path)).lower().replace("_", "-")
    utf8 = enc in ("utf-8", "utf8", "utf-8-sig")
    tmp: str | None = None
    try:
        source = path
        if not utf8 or (plain and gz):
            fd, tmp = tempfile.mkstemp(prefix=".source.", suffix=".utf8.csv")  # mode 0600
            opener = gzip.open if gz else open
            with opener(path, "rt", encoding=enc, newline="") as src, os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            source, gz = Path(tmp), False
        if delimiter is None:
            opener = gzip.open if gz else open
            with opener(source, "rt", encoding="utf-8-sig", newline="") as fh:
                header = fh.readline()
            if not header.strip():
                raise StructuralError(name, "file has no header line")
            delimiter = sniff_delimiter(header)
        yield source, delimiter
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _finish(frame: pl.DataFrame, name: str, required: tuple[str, ...], optional: tuple[str, ...]) -> pl.DataFrame:
    """Names trimmed (BOM removed) and matched, required checked, values trimmed, empty -> null."""
    renames = {c: c.lstrip("\ufeff").strip() for c in frame.columns if c != SOURCE_ROW}
    frame = frame.rename({k: v for k, v in renames.items() if k != v})
    # match expected names case-insensitively when the exact name is absent and the match is unique
    lower: dict[str, list[str]] = {}
    for c in frame.columns:
        lower.setdefault(c.lower(), []).append(c)
    fix = {}
    for want in (*required, *optional):
        if want not in frame.columns and len(lower.get(want.lower(), [])) == 1:
            fix[lower[want.lower()][0]] = want
    if fix:
        frame = frame.rename(fix)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise StructuralError(name, "required column is missing", column=missing[0])
    text = [c for c in frame.columns if c != SOURCE_ROW]
    frame = frame.with_columns([
        pl.col(c).cast(pl.String).str.strip_chars().replace("", None).alias(c) for c in text
    ])
    absent = [c for c in optional if c not in frame.columns]
    if absent:
        frame = frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in absent])
    return frame.select(SOURCE_ROW, *[c for c in frame.columns if c != SOURCE_ROW])


# ---------------------------------------------------------------------------------------------
# mapped rows too many to hold: written batch by batch, streamed to the canonical table
# ---------------------------------------------------------------------------------------------
class SpilledTable:
    """A canonical table a reader maps batch by batch: each mapped batch is appended as a Parquet
    part in an owner-only temporary folder, and the writer (:func:`write_canonical`,
    :func:`write_canonical_contract`) streams the parts into the canonical Parquet file, then
    removes them. A reader returns it in place of a DataFrame. ``finish`` (optional) is a lazy
    step over all parts before writing (e.g. numbering lines within a claim across batches).

    Created through :meth:`Reconciliation.spill` so that :func:`sources.convert` removes the parts
    even when the conversion fails."""

    def __init__(self, finish: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None) -> None:
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix=".spill."))  # mode 0700
        self.parts: list[Path] = []
        self.height = 0
        self.finish = finish

    def append(self, frame: pl.DataFrame) -> None:
        if frame.height == 0 and self.parts:
            return
        # a column null in one batch is typed Null there: store text (the canonical tables are text)
        frame = frame.with_columns([pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Null])
        part = self.folder / f"part-{len(self.parts):06d}.parquet"
        write_parquet_atomic(frame, part)
        self.parts.append(part)
        self.height += frame.height

    def lazy(self) -> pl.LazyFrame:
        if not self.parts:
            return pl.LazyFrame()
        lf = pl.concat([pl.scan_parquet(p) for p in self.parts], how="diagonal_relaxed")
        return self.finish(lf) if self.finish else lf

    def collect(self) -> pl.DataFrame:
        return self.lazy().collect()

    def discard(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
        self.parts = []
