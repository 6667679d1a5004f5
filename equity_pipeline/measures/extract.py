"""Claim adjudication and coded-event extraction at scale (docs/performance.md).

Same results as :func:`equity_pipeline.claims.final_claims` / :func:`~equity_pipeline.claims.adjudication_counts`
and :func:`equity_pipeline.events.claim_events` (the reference implementations, kept for their
clarity; tests compare both), computed so that memory stays bounded and every claim line is
decoded a few times, not once per value-set code:

- **Adjudication**: only claims with a line whose version is not 1, or that is voided, can have
  superseded or voided lines. Their ids come from a narrow streaming pass; the versions of their
  lines (a few percent of the table) are adjudicated in memory, and only the lines to drop are
  written, by row number (:func:`write_adjudication`); each consumer reads the used lines without
  them (:func:`final_from`), selecting only the columns it needs, instead of a rewritten copy of
  every column of every final line.
- **Events**: each code column is filtered once with an ``is_in`` against the value-set codes and
  against every prefix length of the ``*`` codes; only matching lines are joined with the value
  sets (exact codes, then one join per prefix length), instead of one filter of the whole table
  per prefix code and column.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from equity_pipeline.events import EVENT_SCHEMA
from equity_pipeline.io import ROW, write_parquet_atomic

_FILLED = (pl.col("claim_version").fill_null(1), pl.col("claim_status").fill_null("paid"))


def _adjudicated(lines: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.DataFrame, int, pl.DataFrame]:
    """(lines with version and status filled and a claim id, the per-claim final version and void flag
    of the irregular claims, the number of lines with a claim id, the irregular claims' lines: ``_row``
    when ``lines`` has it, id, version, status), from two narrow streaming passes."""
    filled = lines.with_columns(*_FILLED).filter(pl.col("claim_id").is_not_null())
    irregular = (pl.col("claim_version") != 1) | (pl.col("claim_status") == "void")
    ids, total = pl.collect_all([filled.filter(irregular).select("claim_id").unique(), filled.select(n=pl.len())],
                                engine="streaming")
    row = [ROW] if ROW in lines.collect_schema().names() else []
    narrow = (
        filled.select(*row, "claim_id", "claim_version", "claim_status")
        .filter(pl.col("claim_id").is_in(ids["claim_id"].implode()))
        .collect(engine="streaming")
    )
    per_claim = narrow.group_by("claim_id").agg(
        _final_version=pl.col("claim_version").max(), _voided=(pl.col("claim_status") == "void").any()
    )
    return filled, per_claim, int(total.item()), narrow


#: restricted/claims/medical_claims_adjudication.parquet: the lines adjudication drops (superseded or
#: voided), by their input row number ``_row``, with their claim's final version and void flag
ADJUDICATION_SCHEMA = {ROW: pl.UInt32, "claim_id": pl.String, "claim_version": pl.Int64, "final_version": pl.Int64,
                       "voided": pl.Boolean}


def final_from(lines: pl.LazyFrame, dropped: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """The lines of ``claims.final_claims(lines)`` in input order, from ``lines`` (with a unique
    ``_row``, as every used table) and the dropped lines :func:`write_adjudication` wrote for them: one
    filter on the row number, no pass over the lines until the result is collected, and only the
    columns the consumer selects are read."""
    rows = dropped.lazy().select(ROW).collect()[ROW]
    return lines.with_columns(*_FILLED).filter(pl.col("claim_id").is_not_null() & ~pl.col(ROW).is_in(rows.implode()))


def write_adjudication(lines: pl.LazyFrame, path: Path) -> dict[str, int]:
    """Write the lines adjudication drops from ``lines`` (:data:`ADJUDICATION_SCHEMA`; ``lines`` has a
    unique ``_row``, as every used table) to ``path``, and return the counts of
    ``claims.adjudication_counts`` (final, superseded, voided lines). ``final_from(lines, <that
    file>)`` gives the lines of ``claims.final_claims(lines)``.

    Lines without a claim id are in neither (as the reference, whose joins drop null keys)."""
    _, per_claim, total, narrow = _adjudicated(lines)
    narrow = narrow.join(per_claim, on="claim_id")
    kept = (pl.col("claim_version") == pl.col("_final_version")) & ~pl.col("_voided")
    row = narrow.select(
        voided=pl.col("_voided").sum(),
        superseded=((pl.col("claim_version") < pl.col("_final_version")) & ~pl.col("_voided")).sum(),
        kept=kept.sum(),
    ).row(0, named=True)
    dropped = narrow.filter(~kept).select(ROW, "claim_id", "claim_version", final_version="_final_version", voided="_voided")
    write_parquet_atomic(dropped.cast(ADJUDICATION_SCHEMA).sort(ROW), path)
    return {"voided": int(row["voided"] or 0), "superseded": int(row["superseded"] or 0),
            "final": total - narrow.height + int(row["kept"] or 0)}


def _match(code: pl.Expr, exact: list[str], prefixes: dict[int, list[str]]) -> pl.Expr:
    """True where ``code`` is one of ``exact`` or starts with one of ``prefixes`` (by length)."""
    test = code.is_in(exact) if exact else pl.lit(False)
    for length, values in prefixes.items():
        test = test | code.str.slice(0, length).is_in(values)
    return test


def _tagged(lf: pl.LazyFrame, code_cols: list[str], system: str, codes: pl.DataFrame, date_col: str, source: str) -> pl.LazyFrame | None:
    """Events of ``system`` from the ``code_cols`` of ``lf`` (as ``events._events`` per column)."""
    mine = codes.filter(pl.col("code_system") == system).select("value_set", "code")
    if mine.height == 0 or not code_cols:
        return None
    star = pl.col("code").str.ends_with("*")
    exact = mine.filter(~star)
    prefixed = mine.filter(star).with_columns(pl.col("code").str.strip_suffix("*")).with_columns(_len=pl.col("code").str.len_chars())
    prefixes = {int(n): sorted(set(part["code"].to_list())) for (n,), part in prefixed.group_by("_len")}
    exact_codes = sorted(set(exact["code"].to_list()))
    # distinct (member, date, code) first: the tagged rows are then distinct too, unless a value set
    # matches one code twice (an exact code under one of its prefixes, or nested prefixes)
    hits = pl.concat([
        lf.select("member_id", pl.col(date_col).alias("event_date"), pl.col(c).alias("code"))
        .filter(pl.col("code").is_not_null() & _match(pl.col("code"), exact_codes, prefixes))
        for c in code_cols
    ]).unique()
    parts = []
    if exact.height:
        parts.append(hits.join(exact.lazy(), on="code", how="inner"))
    for length in prefixes:
        table = prefixed.filter(pl.col("_len") == length).select("value_set", _prefix="code").lazy()
        parts.append(hits.with_columns(_prefix=pl.col("code").str.slice(0, length)).join(table, on="_prefix", how="inner").drop("_prefix"))
    tagged = pl.concat(parts, how="diagonal").select(
        "member_id", "event_date", "value_set", pl.lit(system).alias("code_system"), "code",
        pl.lit(source).alias("source"), pl.lit(None).cast(pl.Float64).alias("value_numeric"),
    )
    return tagged.unique() if _overlapping(exact, prefixed) else tagged


def _overlapping(exact: pl.DataFrame, prefixed: pl.DataFrame) -> bool:
    """Whether some code could be tagged twice with one value set: a repeated (value set, code), an
    exact code under one of the set's prefixes, or one prefix under another."""
    if exact.height != exact.unique().height or prefixed.height != prefixed.unique().height:
        return True
    stars: dict[str, list[str]] = {}
    for vs, code in prefixed.select("value_set", "code").iter_rows():
        stars.setdefault(vs, []).append(code)
    for vs, code in exact.select("value_set", "code").iter_rows():
        if any(code.startswith(p) for p in stars.get(vs, ())):
            return True
    return any(a != b and a.startswith(b) for codes in stars.values() for a in codes for b in codes)


def claim_events(claims: pl.LazyFrame, codes: pl.DataFrame) -> pl.LazyFrame:
    """The rows of ``events.claim_events(claims, codes)`` (distinct; row order not fixed). Systems
    never share a row (the code system is a column), so distinct per system is distinct overall."""
    names = claims.collect_schema().names()
    parts = [
        _tagged(claims, [c for c in names if c.startswith("diagnosis_code_")], "ICD10CM", codes, "claim_from_date", "claims"),
        _tagged(claims, [c for c in names if c.startswith("procedure_code_")], "ICD10PCS", codes, "claim_from_date", "claims"),
    ]
    if "hcpcs_code" in names:
        is_cpt = pl.col("hcpcs_code").str.slice(0, 1).str.contains("[0-9]")
        parts.append(_tagged(claims.filter(is_cpt), ["hcpcs_code"], "CPT", codes, "claim_from_date", "claims"))
        parts.append(_tagged(claims.filter(~is_cpt), ["hcpcs_code"], "HCPCS", codes, "claim_from_date", "claims"))
    for col, system in (("revenue_code", "REV"), ("place_of_service", "POS"), ("bill_type", "BILLTYPE"), ("snomed_code", "SNOMEDCT")):
        if col in names:
            parts.append(_tagged(claims, [col], system, codes, "claim_from_date", "claims"))
    parts = [p for p in parts if p is not None]
    if not parts:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    return pl.concat(parts, how="vertical")
