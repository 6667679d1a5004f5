"""Ingest one canonical table: read -> structure -> normalise -> rules -> used / quarantined.

Every input row ends in exactly one of two files under ``restricted/``:
``tables/<table>.parquet`` (typed, used downstream) or ``quarantine/<table>.parquet`` (as read,
normalised, with the failing rule ids in ``quarantine_reasons``). Counts reconcile exactly:
``read == used + quarantined``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import ROW, find_input, scan_text, sha256_file, write_parquet_atomic
from equity_pipeline.suites import Suite, load_suite
from equity_pipeline.validation.derived import add_derived
from equity_pipeline.validation.normalize import normalize
from equity_pipeline.validation.rules import reasons_expr, row_rules

REASONS = "quarantine_reasons"
DUPLICATE_ROW = "duplicate_row"
#: tables a run cannot do without
REQUIRED_TABLES = ("members", "enrollment", "medical_claims")

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def typed(lf: pl.LazyFrame, suite: Suite) -> pl.LazyFrame:
    """Cast validated text columns to their contract types (values are known to parse)."""
    exprs = []
    for c in suite.columns:
        col = pl.col(c.name)
        if c.type == "date":
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
    names = [n for n in lf.collect_schema().names() if n != ROW]
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
    return lf.select(ROW, *suite.column_names), extras, missing_optional


def ingest_table(
    table: str,
    input_dir: Path,
    restricted_dir: Path,
    *,
    parameters: dict[str, Any],
    known_members: pl.LazyFrame | None = None,
) -> TableResult:
    """Validate ``table`` from ``input_dir`` and write its used and quarantined rows."""
    suite = load_suite(table)
    used_path = restricted_dir / "tables" / f"{table}.parquet"
    quarantine_path = restricted_dir / "quarantine" / f"{table}.parquet"
    path = find_input(input_dir, table)
    if path is None:
        if table in REQUIRED_TABLES:
            raise StructuralError(f"{table}.csv|.parquet", f"required input table {table} not found in the input folder")
        write_parquet_atomic(empty_typed(suite), used_path)
        write_parquet_atomic(pl.DataFrame(schema={ROW: pl.UInt32, **{c: pl.String for c in suite.column_names}, REASONS: pl.String}), quarantine_path)
        return TableResult(table, None, None, suite.version, 0, 0, 0)

    raw = scan_text(path)
    lf, extras, missing_optional = check_structure(raw, suite, path.name)
    lf = normalize(lf, suite)
    lf = lf.with_columns(_first_copy=pl.struct(suite.column_names).is_first_distinct())
    lf = add_derived(lf, table, known_members=known_members)
    present = set(lf.collect_schema().names())
    rules = row_rules(suite, present)
    lf = lf.with_columns(
        reasons_expr(rules, parameters).alias(REASONS)
    ).with_columns(
        pl.when(pl.col("_first_copy")).then(pl.col(REASONS))
        .otherwise(pl.concat_list(pl.lit([DUPLICATE_ROW]), pl.col(REASONS)).list.unique(maintain_order=True))
        .alias(REASONS)
    )
    try:
        checked = lf.select(ROW, *suite.column_names, REASONS).collect(engine="streaming")
    except pl.exceptions.ComputeError as exc:
        raise StructuralError(path.name, f"cannot be parsed as a {suite.name} table ({str(exc).splitlines()[0][:160]})") from None
    ok = checked[REASONS].list.len() == 0
    used = checked.filter(ok)
    quarantined = checked.filter(~ok).with_columns(pl.col(REASONS).list.join(";"))
    write_parquet_atomic(typed(used.lazy(), suite).collect(), used_path)
    write_parquet_atomic(quarantined, quarantine_path)
    counts = (
        checked.select(pl.col(REASONS).explode().drop_nulls()).group_by(REASONS).len()
        if quarantined.height else pl.DataFrame({REASONS: [], "len": []})
    )
    rule_counts = {r: int(n) for r, n in counts.iter_rows()}
    return TableResult(
        table=table, file=path.name, sha256=sha256_file(path), suite_version=suite.version,
        read=checked.height, used=used.height, quarantined=quarantined.height,
        rule_counts=dict(sorted(rule_counts.items())), extra_columns=extras, missing_optional_columns=missing_optional,
    )
