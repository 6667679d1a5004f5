"""Coded events: claims and clinical data in one long table tagged with the value sets they hit.

Columns: ``member_id, event_date, value_set, code_system, code, source, value_numeric``. Only codes
that some value set uses are kept, and they are filtered *before* unpivoting, so the table stays
small even for hundreds of millions of claim lines. Value-set codes ending in ``*`` match by prefix
(``C18*`` = every code starting C18), for code families such as ICD-10-CM categories.
"""
from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from equity_pipeline.measures.spec import value_set

EVENT_SCHEMA = {"member_id": pl.String, "event_date": pl.Date, "value_set": pl.String, "code_system": pl.String,
                "code": pl.String, "source": pl.String, "value_numeric": pl.Float64}


def value_set_frame(names: Iterable[str]) -> pl.DataFrame:
    """(value_set, code_system, code) of packaged value sets; derived ones (SDOH results) are skipped."""
    from equity_pipeline.standards.sdoh import DERIVED_VALUE_SETS

    rows = [(n, s, c) for n in sorted(set(names) - DERIVED_VALUE_SETS) for s, c, _ in value_set(n)]
    return pl.DataFrame(rows, schema={"value_set": pl.String, "code_system": pl.String, "code": pl.String}, orient="row")


def _tag(lf: pl.LazyFrame, code_col: str, system: str, codes: pl.DataFrame) -> pl.LazyFrame:
    """Rows of ``lf`` whose ``code_col`` is in the ``system`` codes, one row per value set hit."""
    mine = codes.filter(pl.col("code_system") == system)
    exact = mine.filter(~pl.col("code").str.ends_with("*"))
    prefixes = mine.filter(pl.col("code").str.ends_with("*")).with_columns(pl.col("code").str.strip_suffix("*"))
    parts = []
    if exact.height:
        parts.append(lf.join(exact.lazy().rename({"code": code_col}), on=code_col, how="inner"))
    for prefix, vs in prefixes.select("code", "value_set").iter_rows():
        parts.append(lf.filter(pl.col(code_col).str.starts_with(prefix)).with_columns(value_set=pl.lit(vs), code_system=pl.lit(system)))
    return pl.concat(parts, how="diagonal") if parts else None


def _events(lf: pl.LazyFrame, code_col: str, system: str, codes: pl.DataFrame, date_col: str, source: str,
            value_col: str | None = None) -> pl.LazyFrame | None:
    slim = lf.select("member_id", date_col, code_col, *([value_col] if value_col else [])).filter(pl.col(code_col).is_not_null())
    tagged = _tag(slim, code_col, system, codes)
    if tagged is None:
        return None
    return tagged.select(
        "member_id", pl.col(date_col).alias("event_date"), "value_set", pl.lit(system).alias("code_system"),
        pl.col(code_col).alias("code"), pl.lit(source).alias("source"),
        (pl.col(value_col) if value_col else pl.lit(None)).cast(pl.Float64).alias("value_numeric"),
    )


def _concat(parts: list[pl.LazyFrame | None]) -> pl.LazyFrame:
    parts = [p for p in parts if p is not None]
    if not parts:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    return pl.concat(parts, how="vertical")


def claim_events(claims: pl.LazyFrame, codes: pl.DataFrame) -> pl.LazyFrame:
    """Events from final medical claim lines for the value-set codes in ``codes``."""
    names = claims.collect_schema().names()
    parts = [_events(claims, c, "ICD10CM", codes, "claim_from_date", "claims") for c in names if c.startswith("diagnosis_code_")]
    parts += [_events(claims, c, "ICD10PCS", codes, "claim_from_date", "claims") for c in names if c.startswith("procedure_code_")]
    if "hcpcs_code" in names:
        is_cpt = pl.col("hcpcs_code").str.slice(0, 1).str.contains("[0-9]")
        parts.append(_events(claims.filter(is_cpt), "hcpcs_code", "CPT", codes, "claim_from_date", "claims"))
        parts.append(_events(claims.filter(~is_cpt), "hcpcs_code", "HCPCS", codes, "claim_from_date", "claims"))
    for col, system in (("revenue_code", "REV"), ("place_of_service", "POS"), ("bill_type", "BILLTYPE"), ("snomed_code", "SNOMEDCT")):
        if col in names:
            parts.append(_events(claims, col, system, codes, "claim_from_date", "claims"))
    return _concat(parts).unique()


def observation_events(observations: pl.LazyFrame, codes: pl.DataFrame) -> pl.LazyFrame:
    """Events from clinical observations (LOINC, with their numeric value)."""
    return _concat([_events(observations, "loinc_code", "LOINC", codes, "observation_date", "clinical", "value_numeric")])


def pharmacy_events(fills: pl.LazyFrame, codes: pl.DataFrame) -> pl.LazyFrame:
    """Events from final pharmacy claims (NDC)."""
    return _concat([_events(fills, "ndc", "NDC", codes, "fill_date", "claims")])
