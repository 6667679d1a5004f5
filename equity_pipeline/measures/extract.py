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
- **Events**: the distinct codes of the claims' code columns (a narrow pass) are matched against
  the value sets, exact and by ``*`` prefix, in a small frame; each code column is then filtered
  once with an ``is_in`` against the codes that matched, and the distinct (member, date, code) hits
  are split by code: a value set's events are the hits of its codes, instead of one filter of the
  whole table per prefix code and column (or a prefix slice of every code of every line), and the
  events come out grouped by value set (:func:`events_by_value_set`).
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
    filter on the row number, and only the columns the consumer selects are read.

    Lines without a claim id are in neither the final nor the dropped lines (as the reference); their
    row numbers are found first (one narrow pass, which Parquet statistics usually answer: the used
    tables have none) and joined to the dropped rows, so that the filter reads ``_row`` alone and not
    the claim id strings of every line (about 0.1 CPU-s per consumer and per 5M lines)."""
    row_type = lines.collect_schema()[ROW]
    rows = dropped.lazy().select(pl.col(ROW).cast(row_type)).collect()[ROW]
    no_id = lines.filter(pl.col("claim_id").is_null()).select(pl.col(ROW).cast(row_type)).collect()[ROW]
    if no_id.len():
        rows = pl.concat([rows, no_id])
    return lines.with_columns(*_FILLED).filter(~pl.col(ROW).is_in(rows.implode()))


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


def _code_map(vocabulary: pl.Series, system: str, codes: pl.DataFrame) -> pl.DataFrame:
    """code, value_set (distinct): the codes of ``vocabulary`` that are one of the ``system`` value-set
    codes of ``codes`` or start with one of its ``*`` prefixes (as ``events._tag``)."""
    mine = codes.filter(pl.col("code_system") == system).select("value_set", "code")
    star = pl.col("code").str.ends_with("*")
    exact = mine.filter(~star)
    prefixed = mine.filter(star).with_columns(pl.col("code").str.strip_suffix("*"))
    seen = pl.DataFrame({"code": vocabulary.cast(pl.String)}).unique()
    parts = [seen.join(exact, on="code", how="inner")]
    for length in sorted(set(prefixed["code"].str.len_chars().to_list())):
        table = prefixed.filter(pl.col("code").str.len_chars() == length).select("value_set", _prefix="code")
        parts.append(seen.with_columns(_prefix=pl.col("code").str.slice(0, length)).join(table, on="_prefix", how="inner").drop("_prefix"))
    # distinct pairs: a code under two rules of one set (an exact code under a prefix, nested prefixes) tags it once
    return pl.concat(parts, how="diagonal").select("code", "value_set").unique().sort("code", "value_set")


_IS_CPT = pl.col("hcpcs_code").str.slice(0, 1).str.contains("[0-9]")


def _families(names: list[str], codes: pl.DataFrame) -> dict[str, list[str]]:
    """Code system -> the claim columns holding its codes (``HCPCS``: the HCPCS/CPT column), for the
    systems ``codes`` uses."""
    families = {
        "ICD10CM": [c for c in names if c.startswith("diagnosis_code_")],
        "ICD10PCS": [c for c in names if c.startswith("procedure_code_")],
        **{system: [col] for col, system in (("hcpcs_code", "HCPCS"), ("revenue_code", "REV"), ("place_of_service", "POS"),
                                             ("bill_type", "BILLTYPE"), ("snomed_code", "SNOMEDCT")) if col in names},
    }
    systems = set(codes["code_system"].to_list())
    return {s: cols for s, cols in families.items() if cols and (s in systems or (s == "HCPCS" and "CPT" in systems))}


def claim_event_parts(claims: pl.LazyFrame, codes: pl.DataFrame, *, vocabulary_from: pl.LazyFrame | None = None,
                      member_keys: pl.Series | None = None) -> dict[str, list[pl.LazyFrame]]:
    """The rows of ``events.claim_events(claims, codes)`` by value set: value set -> frames of its events
    (:data:`EVENT_SCHEMA` columns; one frame per code system). Systems never share a row (the code
    system is a column), so distinct per system is distinct overall.

    The distinct codes of each code column family are collected first (one narrow pass over
    ``claims``; a few hundred to a few tens of thousands of codes) and matched against the value
    sets, exact and by prefix, in that small frame; the lines are then filtered with one ``is_in``
    per column (no prefix slicing of every code of every line) and the distinct (member, date, code)
    hits of every system collected in one streaming pass, as one packed integer per hit when the
    dates are dates (:func:`_packed_hits`; else on the strings, :func:`_string_hits`). The hits are
    split by code, and a value set's events are the hits of its codes with the value set, system and
    source as constants: no join of every hit with the (code, value set) pairs, and the events come
    out grouped by value set (:func:`events_by_value_set`), so that a reader of a few value sets can
    skip the rest of a file written in that order. The returned frames are lazy over data already in memory.

    ``vocabulary_from``: lines whose codes include every code of ``claims`` (the used table that
    ``claims`` are the final lines of), scanned for the distinct codes instead of ``claims``: a code
    of a dropped line only adds a code no kept line has, and the scan skips the row filter. When both
    have ``_row``, the lines of ``claims`` must be lines of ``vocabulary_from`` by that number (their
    member ids and dates are looked up there); a ``claims`` without ``_row`` is numbered here.

    ``member_keys``: member ids (distinct, sorted); each event then also has ``member_key``, the
    position of its member id among them (UInt32; null for an id not among them): :func:`with_member_key`."""
    schema = claims.collect_schema()
    families = _families(schema.names(), codes)
    # the hits' (member, date, code) are packed into integers when the dates are dates (_packed_hits)
    packable = schema.get("claim_from_date") == pl.Date
    if packable and ROW not in schema:
        claims = claims.with_row_index(ROW)   # line numbers for the member keys
    source = claims if vocabulary_from is None else vocabulary_from
    # the lines whose member ids and dates the packed keys are made from: ``vocabulary_from`` when its
    # line numbers are those of ``claims`` (the used table of the final lines)
    keyed = source if ROW in source.collect_schema().names() and ROW in schema else claims
    # the distinct codes of every family and, for the packed hits, the date range and (without
    # ``member_keys``, which the packed members are then positions among) the distinct member ids: one pass
    distinct_ids = keyed.select(pl.col("member_id").cast(pl.String)).unique().sort("member_id", nulls_last=True)
    *seen, ids, dates = pl.collect_all([
        pl.concat([source.select(pl.col(c).alias("code")) for c in cols]).drop_nulls().unique() for cols in families.values()
    ] + ([distinct_ids if member_keys is None else pl.LazyFrame(),
          keyed.select(first=pl.col("claim_from_date").min().cast(pl.Int32), last=pl.col("claim_from_date").max().cast(pl.Int32))]
         if packable else [pl.LazyFrame(), pl.LazyFrame()]))
    vocabulary = {s: frame["code"] for s, frame in zip(families, seen)}
    jobs = []   # (system, columns, its code map)
    for system, cols in families.items():
        if system == "HCPCS":   # one column, two systems: CPT codes start with a digit
            hcpcs = pl.DataFrame({"hcpcs_code": vocabulary[system]})
            jobs.append(("CPT", cols, _code_map(hcpcs.filter(_IS_CPT)["hcpcs_code"], "CPT", codes)))
            jobs.append(("HCPCS", cols, _code_map(hcpcs.filter(~_IS_CPT)["hcpcs_code"], "HCPCS", codes)))
        else:
            jobs.append((system, cols, _code_map(vocabulary[system], system, codes)))
    jobs = [job for job in jobs if job[2].height]
    if not jobs:
        return {}
    if packable:
        hits = _packed_hits(claims, keyed, jobs, ids["member_id"] if member_keys is None else None, dates.row(0), member_keys)
    else:
        hits = _string_hits(claims, jobs, member_keys)
    keyed_columns = ["member_key"] if member_keys is not None else []
    parts: dict[str, list[pl.LazyFrame]] = {}
    for system, _, code_map in jobs:
        by_code = hits.pop(0)   # code -> its distinct hits (member_id, event_date)
        # code_map holds distinct (code, value set) pairs: a value set's frames hold distinct rows
        for (vs,), pairs in code_map.group_by("value_set"):
            frames = [by_code[code].with_columns(code=pl.lit(code, dtype=pl.String)) for code in pairs["code"] if code in by_code]
            if frames:
                parts.setdefault(vs, []).append(pl.concat(frames).select(
                    "member_id", "event_date", pl.lit(vs).alias("value_set"), pl.lit(system).alias("code_system"), "code",
                    pl.lit("claims").alias("source"), pl.lit(None, dtype=pl.Float64).alias("value_numeric"), *keyed_columns,
                ))
    return parts


def member_key_frame(member_keys: pl.Series) -> pl.LazyFrame:
    """member_key (UInt32, the position), member_id: ``member_keys`` (distinct member ids, sorted) by key."""
    return member_keys.rename("member_id").to_frame().with_row_index("member_key").lazy()


def with_member_key(frame: pl.LazyFrame, member_keys: pl.Series) -> pl.LazyFrame:
    """``frame`` with ``member_key``: the position of its ``member_id`` among ``member_keys`` (distinct
    member ids, sorted), UInt32, null for an id not among them (row order kept)."""
    return frame.join(member_key_frame(member_keys), on="member_id", how="left", maintain_order="left")


def _string_hits(claims: pl.LazyFrame, jobs: list[tuple[str, list[str], pl.DataFrame]],
                 member_keys: pl.Series | None = None) -> list[dict[str, pl.LazyFrame]]:
    """Per job of :func:`claim_event_parts`: code -> the distinct (member_id, event_date) of its hits
    (lazy over the collected hits; with ``member_key`` when ``member_keys`` are given), made distinct
    on the strings themselves (claims whose ``claim_from_date`` is not a date, or keys too wide to pack)."""
    hits = pl.collect_all([
        pl.concat([
            claims.filter(pl.col(c).is_in(code_map["code"].unique().implode()))
            .select("member_id", pl.col("claim_from_date").alias("event_date"), pl.col(c).alias("code"))
            for c in cols
        ]).unique()
        for _, cols, code_map in jobs
    ], engine="streaming")
    out = []
    for frame in hits:
        out.append({code: rows.lazy() if member_keys is None else with_member_key(rows.lazy(), member_keys)
                    for (code,), rows in frame.partition_by("code", as_dict=True, include_key=False).items()})
        del frame
    return out


def _u64(value: int) -> pl.Expr:
    """An unsigned 64-bit literal (the packed keys' arithmetic stays unsigned)."""
    return pl.lit(value, dtype=pl.UInt64)


def _bits(n: int) -> int:
    """Bits that hold the values 0 .. n."""
    return max(1, int(n).bit_length())


def _line_members(keyed: pl.LazyFrame, ids: pl.Series | None, member_keys: pl.Series | None) -> tuple[pl.Series, pl.Series]:
    """(the member position of every line of ``keyed``, by its line number ``_row``; the member ids the
    positions are positions among) for :func:`_packed_hits`: among ``ids`` (the lines' distinct ids), or
    among ``member_keys`` followed by the lines' ids not among them (sorted; a null id last), numbered
    after them, so that a position below ``len(member_keys)`` is the member key itself. Those other ids
    (no member: orphan lines the ingest quarantines, so none in a run) are looked up in a second pass
    over their lines only."""
    table = ids if member_keys is None else member_keys
    lines = (keyed.select(ROW, pl.col("member_id").cast(pl.String))
             .join(member_key_frame(table), on="member_id", how="left", nulls_equal=True)
             .select(ROW, _k="member_key").collect(engine="streaming"))
    key_of = pl.Series("_k", [0], dtype=pl.UInt32).extend_constant(0, int(lines[ROW].max() or 0))
    key_of = key_of.scatter(lines[ROW], lines["_k"])
    unknown = lines.filter(pl.col("_k").is_null())[ROW]
    del lines
    if not unknown.len():
        return key_of, table.rename("member_id")
    rows = (keyed.filter(pl.col(ROW).is_in(unknown.implode())).select(ROW, pl.col("member_id").cast(pl.String))
            .collect(engine="streaming"))
    others = rows["member_id"].unique().sort(nulls_last=True)
    rows = rows.join(others.to_frame().with_row_index("_k", offset=table.len()), on="member_id", how="left", nulls_equal=True)
    return key_of.scatter(rows[ROW], rows["_k"]), pl.concat([table.rename("member_id"), others])


def _packed_hits(claims: pl.LazyFrame, keyed: pl.LazyFrame, jobs: list[tuple[str, list[str], pl.DataFrame]],
                 ids: pl.Series | None, dates: tuple[int | None, int | None],
                 member_keys: pl.Series | None = None) -> list[dict[str, pl.LazyFrame]]:
    """:func:`_string_hits` with the (member, date, code) of each hit packed into one unsigned 64-bit
    key, so that the distinct hits are found among integers, not strings (docs/performance.md).

    ``keyed``: lines with ``_row``, ``member_id`` and ``claim_from_date``, among them every line of
    ``claims`` by its ``_row``; ``ids``: their distinct member ids (sorted; a null id, if any, last),
    or None with ``member_keys``; ``dates``: their first and last ``claim_from_date`` (days). The
    member position of a line is found once per line of ``keyed`` (:func:`_line_members`: one join,
    scattered into an array by the line number ``_row``) instead of decoding and hashing the member id
    string of every hit of every code column (22 columns). The hits read ``_row``, the date (days from
    the first, 0 for a null date) and the code's position in the job's code list, and are made
    distinct on the packed key in the streaming pass. When the three do not fit in 64 bits, the hits
    are made distinct on the strings (:func:`_string_hits`). The distinct keys are split by code and
    kept packed; the frames returned take the ids and dates back from them when they are read: the
    same rows, and about 8 bytes a hit in memory until then instead of the strings (at 5M members, 5
    GB less while the events are written). ``member_keys`` (:func:`claim_event_parts`): the positions
    are member keys (the ids not among them numbered after them, with a null key), so that the lines'
    distinct ids are not collected and each hit's key is its packed member position."""
    first, last = dates
    first, last = (0, 0) if first is None else (first, last)
    lists = [code_map["code"].unique().sort() for _, _, code_map in jobs]
    key_of, ids = _line_members(keyed, ids, member_keys)
    member_bits, date_bits = _bits(ids.len()), _bits(last - first + 1)
    if member_bits + date_bits + _bits(max(len(c) for c in lists)) > 64:
        return _string_hits(claims, jobs, member_keys)
    shifts = [(2 ** _bits(len(codes_of)), 2 ** (_bits(len(codes_of)) + date_bits)) for codes_of in lists]
    day = (pl.col("claim_from_date").cast(pl.Int32).cast(pl.Int64) - (first - 1)).fill_null(0).cast(pl.UInt64)
    packed = pl.collect_all([
        pl.concat([
            claims.filter(pl.col(c).is_in(codes_of.implode()))
            .select(_k=pl.lit(key_of).gather(pl.col(ROW)).cast(pl.UInt64) * _u64(member_shift) + day * _u64(date_shift)
                    + pl.col(c).cast(pl.Enum(codes_of)).to_physical().cast(pl.UInt64))
            for c in cols
        ]).unique()
        for (_, cols, _), codes_of, (date_shift, member_shift) in zip(jobs, lists, shifts)
    ], engine="streaming")
    del key_of
    out = []
    ids_of = pl.lit(ids)
    for codes_of, (date_shift, member_shift) in zip(lists, shifts):
        keys = packed.pop(0)
        by_code = keys.with_columns(_c=(pl.col("_k") % _u64(date_shift)).cast(pl.UInt32)).partition_by("_c", as_dict=True, include_key=False)
        del keys
        # kept packed (8 bytes a hit) until the frames are read (the events sink): the member ids and
        # dates are taken back per batch, not held as strings for every hit at once
        day_of = pl.col("_k") // _u64(date_shift) % _u64(member_shift // date_shift)   # 0: a null date
        member = (pl.col("_k") // _u64(member_shift)).cast(pl.UInt32)
        unpacked = {
            "member_id": ids_of.gather(member),
            "event_date": pl.when(day_of > 0).then(day_of.cast(pl.Int64) + (first - 1)).cast(pl.Int32).cast(pl.Date),
            **({} if member_keys is None else {"member_key": pl.when(member < member_keys.len()).then(member)}),
        }
        out.append({codes_of[int(c)]: rows_of.lazy().select(**unpacked) for (c,), rows_of in by_code.items()})
        del by_code
    return out


def events_by_value_set(parts: dict[str, list[pl.LazyFrame]], *others: pl.DataFrame, member_key: bool = False) -> pl.LazyFrame:
    """One frame of events (:data:`EVENT_SCHEMA`) from :func:`claim_event_parts` and other events
    (collected: observations, fills, screenings), grouped by value set in name order: written as one
    Parquet file, each row group then holds one or a few value sets, and a reader filtering on
    ``value_set`` skips the other row groups by their statistics (each measure reads its own value
    sets of an events table holding every measure's). ``member_key``: the frames have ``member_key``
    (:func:`claim_event_parts`, :func:`with_member_key`), kept as the last column."""
    schema = {**EVENT_SCHEMA, **({"member_key": pl.UInt32} if member_key else {})}
    parts = {vs: list(frames) for vs, frames in parts.items()}
    for frame in others:
        # a lazy filter per value set, read when the events are written: the same rows in the same
        # order as splitting the frame, without holding a copy of it (at 5M members the SDOH screening
        # events alone are about 3 GB)
        for vs in frame.get_column("value_set").unique().to_list():
            same = pl.col("value_set").is_null() if vs is None else pl.col("value_set") == vs
            parts.setdefault(vs, []).append(frame.lazy().filter(same))
    if not parts:
        return pl.LazyFrame(schema=schema)
    order = sorted(parts, key=lambda vs: (vs is None, vs or ""))   # (a null value set, never expected, last)
    return pl.concat([frame.select(schema.keys()).cast(schema) for vs in order for frame in parts[vs]], how="vertical")


def claim_events(claims: pl.LazyFrame, codes: pl.DataFrame, *, vocabulary_from: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """The rows of ``events.claim_events(claims, codes)`` (distinct; grouped by value set), from
    :func:`claim_event_parts`: ``claims`` has been scanned already (the frame is lazy over the
    collected events)."""
    return events_by_value_set(claim_event_parts(claims, codes, vocabulary_from=vocabulary_from))
