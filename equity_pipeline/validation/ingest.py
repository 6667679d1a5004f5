"""Ingest one canonical table: read -> structure -> normalise -> rules -> used / quarantined.

Every input row ends in exactly one of two files under ``restricted/``:
``tables/<table>.parquet`` (typed, used downstream) or ``quarantine/<table>.parquet`` (as read,
normalised, with the failing rule ids in ``quarantine_reasons``). Counts reconcile exactly:
``read == used + quarantined``. A CSV row with fewer fields than the header is quarantined as
``wrong_field_count`` (found by a streaming count of fields, :mod:`equity_pipeline.csv_fields`; a row
with more fields, or a quote never closed, is a structural error naming the row).

Memory is bounded by streaming (docs/performance.md). Only two facts need the whole table before
rows can be judged, and both are collected first as narrow columns:

* exact duplicate rows (:func:`duplicate_copies`): rows whose normalised *key* columns (the suite's
  ``meta.key``) share a hash are candidates; only candidates are read in full and compared column by
  column, so the result is exact (the key is a filter, not an assumption: a repeated key with
  different values is not a duplicate);
* uniqueness rules (:func:`repeated_values`): the values that occur more than once in the column.

Then one streaming pass normalises, derives, evaluates one boolean per expectation and writes the
used rows (typed) and the quarantined rows (reasons built from the booleans, only for those rows)
straight to Parquet, with the counts per rule id and per expectation from the same pass.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import ROW, SHORT_ROW, find_input, scan_text, sha256_file, sink_parquet_atomic, write_parquet_atomic
from equity_pipeline.suites import Suite, load_suite
from equity_pipeline.validation.derived import add_derived, known_member_ids
from equity_pipeline.validation.normalize import normalize
from equity_pipeline.validation.rules import date_formats, failure_expr, rule_ids, row_rules, strptime_date, unique_columns
from equity_pipeline.validation.sampling import Sampling, random_rows, sample_key

REASONS = "quarantine_reasons"
DUPLICATE_ROW = "duplicate_row"
#: a CSV row with fewer fields than the header (its values cannot be placed in their columns)
WRONG_FIELD_COUNT = "wrong_field_count"
#: tables a run cannot do without
REQUIRED_TABLES = ("members", "enrollment", "medical_claims")
#: key-column duplicate candidates above this share of the rows are narrowed by a hash of every column
CANDIDATE_SHARE = 0.05
#: at most this many duplicate candidates are compared value by value (in memory); beyond, a 128-bit row hash decides
EXACT_ROWS = 1_000_000
_HASH_SEED = 20260
#: zstd level of the used and quarantined tables: level 1 writes a fifth faster than the default for 6% more bytes
WRITE_ZSTD_LEVEL = 1
_DUP, _BAD, _DATE, _SHORT = "__duplicate_copy", "__quarantined", "__date__", "__short_row"

POLARS_TYPES = {"string": pl.String, "date": pl.Date, "integer": pl.Int64, "decimal": pl.Float64, "boolean": pl.Boolean}


@dataclass
class TableResult:
    table: str
    file: str | None
    sha256: str | None
    suite_version: str
    read: int
    used: int
    quarantined: int
    rule_counts: dict[str, int] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    #: failing rows per row-level expectation (suite index as text), every row of the table: the
    #: authoritative counts that a sampled GX check is compared with (a shared rule id such as
    #: invalid_icd10cm has one count per expectation here and one per row in ``rule_counts``)
    expectation_counts: dict[str, int] = field(default_factory=dict)
    #: :func:`~equity_pipeline.validation.sampling.sample_key` of the files this ingest wrote for the GX
    #: check's sample (``restricted/gx_sample/``: the random rows and the failing flags; None: none written)
    gx_sample: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def typed(lf: pl.LazyFrame, suite: Suite, *, dates: dict[str, str] | None = None) -> pl.LazyFrame:
    """Cast validated text columns to their contract types (values are known to parse).

    ``dates``: date column -> a column of ``lf`` holding its already parsed date (the rules' parse,
    :func:`~equity_pipeline.validation.rules.strptime_date`), used instead of parsing again."""
    dates = dates or {}
    exprs = []
    for c in suite.columns:
        col = pl.col(c.name)
        if c.type == "date" and c.name in dates:
            col = pl.col(dates[c.name])
        elif c.type == "date":
            col = col.str.to_date("%Y-%m-%d", strict=False)
        elif c.type == "boolean":
            col = pl.when(col.is_null()).then(None).otherwise(col == "true")
        elif c.type in ("integer", "decimal"):
            col = col.cast(POLARS_TYPES[c.type], strict=False)
        exprs.append(col.alias(c.name))
    return lf.select(pl.col(ROW), *exprs)


def empty_typed(suite: Suite) -> pl.DataFrame:
    return pl.DataFrame(schema={ROW: pl.UInt32, **{c.name: POLARS_TYPES[c.type] for c in suite.columns}})


def check_structure(lf: pl.LazyFrame, suite: Suite, file: str) -> tuple[pl.LazyFrame, list[str], list[str]]:
    """Block on missing required columns; add absent optional ones as null; report extras (names only)."""
    all_names = lf.collect_schema().names()
    names = [n for n in all_names if n not in (ROW, SHORT_ROW)]
    lowered = {n.strip().lower(): n for n in names}
    renames = {lowered[c.name]: c.name for c in suite.columns if c.name not in names and c.name in lowered}
    if renames:
        lf = lf.rename(renames)
        names = [renames.get(n, n) for n in names]
    missing_required = [c.name for c in suite.columns if c.required and c.name not in names]
    if missing_required:
        raise StructuralError(file, f"required column missing for table {suite.name}", column=", ".join(missing_required))
    missing_optional = [c.name for c in suite.columns if c.name not in names]
    extras = sorted(n for n in names if n not in suite.column_names)
    lf = lf.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in missing_optional])
    return lf.select(ROW, *suite.column_names, *([SHORT_ROW] if SHORT_ROW in all_names else [])), extras, missing_optional


def ingest_table(
    table: str,
    input_dir: Path,
    restricted_dir: Path,
    *,
    parameters: dict[str, Any],
    known_members: pl.LazyFrame | pl.DataFrame | pl.Series | None = None,
    gx_sampling: Sampling | None = None,
) -> TableResult:
    """Validate ``table`` from ``input_dir`` and write its used and quarantined rows.

    ``gx_sampling``: when the table has more than its ``full_rows`` rows, the same pass also writes the
    random rows of the GX check's sample (:func:`~equity_pipeline.validation.sampling.random_rows`:
    normalised text plus the derived columns, as :func:`~equity_pipeline.validation.gx_runner.text_frame`
    gives them) to ``restricted/gx_sample/<table>.parquet``, and the rows failing a row-level
    expectation other than uniqueness with one flag per such expectation (what the check's
    :func:`~equity_pipeline.validation.gx_runner.failing_rows` computes from the quarantine) to
    ``restricted/gx_sample/<table>.failing.parquet``; the result records what they depend on.
    """
    suite = load_suite(table)
    used_path = restricted_dir / "tables" / f"{table}.parquet"
    quarantine_path = restricted_dir / "quarantine" / f"{table}.parquet"
    sample_path, failing_path = gx_sample_path(restricted_dir, table), gx_failing_path(restricted_dir, table)
    sample_path.unlink(missing_ok=True)  # never a sample of an earlier input
    failing_path.unlink(missing_ok=True)
    path = find_input(input_dir, table)
    if path is None:
        if table in REQUIRED_TABLES:
            raise StructuralError(f"{table}.csv|.parquet", f"required input table {table} not found in the input folder")
        write_parquet_atomic(empty_typed(suite), used_path)
        write_parquet_atomic(pl.DataFrame(schema={ROW: pl.UInt32, **{c: pl.String for c in suite.column_names}, REASONS: pl.String}), quarantine_path)
        return TableResult(table, None, None, suite.version, 0, 0, 0)

    raw = scan_text(path, field_counts=True)
    lf, extras, missing_optional = check_structure(raw, suite, path.name)
    try:
        read, used, rule_counts, expectation_counts, sampled = _validate_and_write(
            lf, suite, table, parameters, known_members, used_path, quarantine_path,
            gx_sample=(sample_path, failing_path, gx_sampling) if gx_sampling is not None else None,
            columnar=path.name.endswith(".parquet"))
    except pl.exceptions.ComputeError as exc:
        # polars' message can quote the offending line (member data): name the fault, never the text
        fault = "a row has more fields than the header line" if "more fields" in str(exc) else "malformed rows, e.g. an unclosed quote"
        raise StructuralError(path.name, f"cannot be parsed as a {suite.name} table ({fault})") from None
    return TableResult(
        table=table, file=path.name, sha256=sha256_file(path), suite_version=suite.version,
        read=read, used=used, quarantined=read - used,
        rule_counts=dict(sorted(rule_counts.items())), extra_columns=extras, missing_optional_columns=missing_optional,
        expectation_counts=expectation_counts, gx_sample=sample_key(sampled, parameters) if sampled is not None else None,
    )


def gx_sample_path(restricted_dir: Path, table: str) -> Path:
    """Where the ingest writes the random rows of the GX check's sample (member-level: restricted)."""
    return Path(restricted_dir) / "gx_sample" / f"{table}.parquet"


def gx_failing_path(restricted_dir: Path, table: str) -> Path:
    """Where the ingest writes its failing flags for the GX check's sample (row numbers and booleans)."""
    return Path(restricted_dir) / "gx_sample" / f"{table}.failing.parquet"


def duplicate_copies(lf: pl.LazyFrame, suite: Suite) -> pl.Series:
    """:func:`copies_and_rows` without the row count."""
    return copies_and_rows(lf, suite)[0]


def copies_and_rows(lf: pl.LazyFrame, suite: Suite, *, columnar: bool = False) -> tuple[pl.Series, int]:
    """(copies, rows in the table): ``_row`` of every exact copy of an earlier row (after
    normalisation), in row order; the row count comes with the hash pass over every row.

    ``lf``: the structure-checked text frame (``_row`` + contract columns, not yet normalised).
    Candidates are rows sharing a hash of their normalised key columns (a superset of the copies:
    copies share every column). When the key repeats too often, candidates are rows sharing a
    128-bit hash (two 64-bit hashes) of every normalised column. Up to :data:`EXACT_ROWS` candidates
    are then read in full and compared value by value, so the result is exact; beyond that (a file
    loaded twice, say) the 128-bit row hash decides, which keeps memory bounded (chance of a wrong
    call below 1e-20 at 100 million rows).

    Repeated hashes are found by sorting them (:func:`_repeated`), not with a hash table
    (``is_duplicated`` over 165M claim lines took about 9 GB at 5M members, and a third more CPU).
    ``columnar`` (a Parquet input): the candidates are read with a filter on their raw first key
    column too, which the reader applies before decoding the other columns (:func:`_candidate_rows`).
    """
    cols = list(suite.column_names)
    norm = normalize(lf, suite)
    key = [c for c in suite.key if c in cols]
    candidates, n = None, 0
    if key and key != cols:
        hashed = norm.select(ROW, pl.struct(key).hash(_HASH_SEED).alias("h")).collect(engine="streaming")
        n = hashed.height
        candidates = _repeated(hashed, ["h"]).get_column(ROW)
        if candidates.len() > min(EXACT_ROWS, CANDIDATE_SHARE * max(hashed.height, 1)):
            candidates = None
        del hashed
    if candidates is None:
        row = pl.struct(cols)
        hashed = norm.select(ROW, row.hash(_HASH_SEED).alias("h1"), row.hash(_HASH_SEED + 1).alias("h2")).collect(engine="streaming")
        n = hashed.height
        repeated = _repeated(hashed, ["h1", "h2"])
        del hashed
        if repeated.height > EXACT_ROWS:
            return _later_repeats(repeated, ["h1", "h2"]), n
        candidates = repeated.get_column(ROW)
    if candidates.is_empty():
        return pl.Series(ROW, [], dtype=pl.UInt32), n
    rows = normalize(_candidate_rows(lf, candidates, key[0] if key and columnar else None), suite).select(ROW, *cols)
    rows = rows.collect(engine="streaming").sort(ROW)
    return rows.filter(~pl.struct(cols).is_first_distinct()).get_column(ROW), n


def _repeated(hashed: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The rows of ``hashed`` whose values of ``columns`` (hashes) occur more than once, in row order.

    The first column's repeated values are found in a sorted copy of it (equal neighbours), and its
    rows picked with ``is_in``; a second column is compared among those rows only, in the order of
    both. Memory: one sorted hash column and bit masks (a hash table over 165M claim lines took
    9 GB; an arg-sort of all of them 5 GB)."""
    first = columns[0]
    values = hashed.get_column(first).sort()
    n = values.len()
    repeated = values.slice(1).filter(values.slice(1) == values.slice(0, n - 1)).unique() if n > 1 else values.head(0)
    del values
    out = hashed.filter(pl.col(first).is_in(repeated.implode()))
    if len(columns) > 1 and out.height:
        order = out.select(pl.arg_sort_by(columns)).to_series()
        out = out.gather(order.filter(_same_as_neighbour(out, columns, order, after=True))).sort(ROW)
    return out


def _later_repeats(hashed: pl.DataFrame, columns: list[str]) -> pl.Series:
    """``_row`` of every row whose values of ``columns`` an earlier row has, in row order (in the order
    of the hashes and then the row number, the rows equal to their neighbour before)."""
    order = hashed.select(pl.arg_sort_by([*columns, ROW])).to_series()
    return hashed.get_column(ROW).gather(order.filter(_same_as_neighbour(hashed, columns, order, after=False))).sort()


def _same_as_neighbour(hashed: pl.DataFrame, columns: list[str], order: pl.Series, *, after: bool) -> pl.Series:
    """Per position of ``order`` (a sort permutation of ``hashed`` by ``columns``): whether the row has the
    same ``columns`` values as the row before it in that order (``after``: or the row after it)."""
    n = hashed.height
    if n == 0:
        return pl.Series([], dtype=pl.Boolean)
    same = None
    for c in columns:
        values = hashed.get_column(c).gather(order)
        equal = values.slice(1) == values.slice(0, n - 1)
        same = equal if same is None else same & equal
        del values
    before = pl.concat([pl.Series([False]), same])
    if not after:
        return before
    return before | pl.concat([same, pl.Series([False])])


def _candidate_rows(lf: pl.LazyFrame, candidates: pl.Series, first_key: str | None) -> pl.LazyFrame:
    """The rows of ``lf`` numbered in ``candidates``. With ``first_key`` (a Parquet input), also
    filtered on that column's raw values in the candidate rows (one narrow pass reads them): the
    Parquet reader evaluates that predicate on the column before it decodes the others, so a few
    scattered rows no longer decode the whole file (at 1M members 117k candidate claim lines: 6.8
    -> 3.4 CPU-s with the narrow pass)."""
    wanted = pl.col(ROW).is_in(candidates.implode())
    if first_key is None:
        return lf.filter(wanted)
    values = lf.select(ROW, first_key).filter(wanted).select(pl.col(first_key).unique()).collect(engine="streaming")[first_key]
    by_value = pl.col(first_key).is_in(values.drop_nulls().implode())
    if values.null_count():
        by_value = by_value | pl.col(first_key).is_null()
    return lf.filter(by_value & wanted)


def repeated_values(lf: pl.LazyFrame, columns: list[str]) -> dict[str, pl.Series]:
    """Per column: the non-empty values occurring more than once in the whole column."""
    out = {}
    for c in columns:
        counts = lf.select(c).filter(pl.col(c).is_not_null()).group_by(c).len()
        out[c] = counts.filter(pl.col("len") > 1).select(c).collect(engine="streaming").to_series()
    return out


def _validate_and_write(
    lf: pl.LazyFrame, suite: Suite, table: str, parameters: dict[str, Any],
    known_members: pl.LazyFrame | pl.DataFrame | pl.Series | None, used_path: Path, quarantine_path: Path,
    *, gx_sample: tuple[Path, Path, Sampling] | None = None, columnar: bool = False,
) -> tuple[int, int, dict[str, int], dict[str, int], Sampling | None]:
    """The streaming pass; returns (rows read, rows used, rows per rule id, rows per expectation, the
    sampling whose random rows and failing flags were written to ``gx_sample``'s paths, or None)."""
    cols = list(suite.column_names)
    short = pl.col(SHORT_ROW) if SHORT_ROW in lf.collect_schema().names() else pl.lit(False)
    copies, n = copies_and_rows(lf, suite, columnar=columnar)
    known = known_member_ids(known_members) if known_members is not None else None
    checked = add_derived(normalize(lf, suite), table, known_members=known)
    names = checked.collect_schema().names()
    present = set(names)
    frame_columns = [c for c in names if c != SHORT_ROW]  # text_frame's columns, in its order
    rules = row_rules(suite, present)
    # uniqueness is judged without the later exact copies: they are duplicate_row, and the first copy is
    # then the only row with its key (a second row with the same key and other values still fails)
    is_copy = pl.col(ROW).is_in(copies.implode())
    repeated = repeated_values(normalize(lf, suite).filter(~is_copy), [c for c in unique_columns(rules) if c in cols])
    formats = {c: f for c, f in date_formats(suite).items() if c in present}
    dates = {c: pl.col(f"{_DATE}{c}") for c in formats}
    ids = rule_ids(rules)
    flag_names = {rid: f"__fail_{i}" for i, rid in enumerate(ids)}
    fail_names = {r.index: f"__expectation_{r.index}" for r in rules}
    by_id: dict[str, list[str]] = {}
    for r in rules:
        by_id.setdefault(r.rule, []).append(fail_names[r.index])
    checked = (
        checked.with_columns(strptime_date(pl.col(c), f).alias(f"{_DATE}{c}") for c, f in formats.items())
        .with_columns(
            (failure_expr(r, parameters, dates=dates, repeated=repeated).fill_null(False)
             & (~is_copy if r.type == "expect_column_values_to_be_unique" else pl.lit(True))).alias(fail_names[r.index]) for r in rules
        )
        .with_columns(
            is_copy.alias(_DUP), short.alias(_SHORT),
            *(pl.any_horizontal(by_id[rid]).alias(flag_names[rid]) for rid in ids),
        )
        .with_columns(pl.any_horizontal(_SHORT, _DUP, *flag_names.values()).alias(_BAD))
    )
    used = typed(checked.filter(~pl.col(_BAD)), suite, dates={c: f"{_DATE}{c}" for c in formats})
    reasons = pl.concat_str(
        [pl.when(pl.col(_SHORT)).then(pl.lit(WRONG_FIELD_COUNT)), pl.when(pl.col(_DUP)).then(pl.lit(DUPLICATE_ROW))] + [pl.when(pl.col(flag_names[rid])).then(pl.lit(rid)) for rid in ids],
        separator=";", ignore_nulls=True,
    )
    quarantined = checked.filter(pl.col(_BAD)).select(ROW, *cols, reasons.alias(REASONS))
    sinks: dict[Path, pl.LazyFrame] = {}
    sampled = None
    if gx_sample is not None and n > gx_sample[2].full_rows:
        sample_path, failing_path, sampled = gx_sample
        sinks[sample_path] = checked.filter(pl.col(ROW).is_in(random_rows(n, sampled).implode())).select(frame_columns)
        flagged = [fail_names[r.index] for r in rules if r.type != "expect_column_values_to_be_unique"]
        if flagged:
            sinks[failing_path] = checked.filter(pl.any_horizontal(flagged)).select(
                ROW, *(pl.col(f).alias(f.removeprefix("__expectation_")) for f in flagged))
    counts = checked.select(
        pl.len().alias("__read"), (~pl.col(_BAD)).sum().alias("__used"), pl.col(_DUP).sum().alias(DUPLICATE_ROW),
        pl.col(_SHORT).sum().alias(WRONG_FIELD_COUNT),
        *(pl.col(flag_names[rid]).sum().alias(rid) for rid in ids),
        *(pl.col(name).sum() for name in fail_names.values()),
    )
    (totals,) = sink_parquet_atomic({used_path: used, quarantine_path: quarantined, **sinks}, collect=(counts,),
                                    compression_level=WRITE_ZSTD_LEVEL)
    row = totals.row(0, named=True)
    read, n_used = int(row.pop("__read")), int(row.pop("__used"))
    per_expectation = {str(i): int(row.pop(name)) for i, name in fail_names.items()}
    return read, n_used, {rule: int(n) for rule, n in row.items() if n}, per_expectation, sampled
