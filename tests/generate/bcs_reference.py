"""An independent, deliberately plain BCS count straight from the generated files.

It shares no code with the generator except the stratum labels (``race_ethnicity_stratum``): it
cleans the raw tables the way a correct pipeline would (quarantine, normalisation, duplicates,
claim versions and voids) and counts eligible women, exclusions and mammograms itself.
"""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from equity_pipeline.standards.race_ethnicity import race_ethnicity_stratum

MAMMOGRAPHY = {"77065", "77066", "77067", "G0202", "G0204", "G0206"}
HOSPICE_REVENUE = {"0115", "0125", "0135", "0145", "0155", "0650", "0651", "0652", "0655", "0656", "0657", "0658", "0659"}
HOSPICE_HCPCS = {f"G947{i}" for i in range(3, 10)} | {f"Q50{i:02d}" for i in range(3, 11)} | {"S9126"} | {
    f"T204{i}" for i in range(2, 7)}
RUN_DATE = date(2026, 11, 1)


def read(out: Path, table: str) -> pl.DataFrame:
    truth = json.loads((out / "truth.json").read_text())
    path = out / truth["tables"][table]["file"]
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema_length=0)
    return pl.read_parquet(path)


def _date(col: str) -> pl.Expr:
    return pl.col(col).str.strptime(pl.Date, "%Y-%m-%d", strict=False)


def clean_members(members: pl.DataFrame, valid_fips: set[str]) -> pl.DataFrame:
    dup = members.group_by("member_id").len().filter(pl.col("len") > 1)["member_id"]
    return members.filter(
        ~pl.col("member_id").is_in(dup.implode()),
        pl.col("county_fips").is_null() | pl.col("county_fips").is_in(sorted(valid_fips)),
        _date("birth_date").is_not_null(),
    )


def clean_claims(claims: pl.DataFrame, member_ids: pl.Series) -> pl.DataFrame:
    code_cols = [c for c in claims.columns if c.startswith(("diagnosis_code_", "procedure_code_"))] + ["hcpcs_code"]
    claims = claims.with_columns([pl.col(c).str.strip_chars().str.to_uppercase() for c in code_cols])
    claims = claims.with_columns(_date("claim_from_date").alias("_from"), _date("claim_thru_date").alias("_thru"))
    claims = claims.filter(
        pl.col("_from").is_not_null(),
        pl.col("_from") <= RUN_DATE,
        pl.col("_thru").is_null() | (pl.col("_thru") >= pl.col("_from")),
        pl.col("member_id").is_in(member_ids.implode()),
        pl.col("hcpcs_code").is_null() | pl.col("hcpcs_code").str.contains(r"^([0-9]{4}[0-9AFMTU]|[A-V][0-9]{4})$"),
        pl.col("diagnosis_code_1").str.contains(r"^[A-TV-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$"),
    ).unique(maintain_order=True)
    voided = claims.filter(pl.col("claim_status") == "void")["claim_id"].unique()
    claims = claims.filter(~pl.col("claim_id").is_in(voided.implode()))
    version = pl.col("claim_version").cast(pl.Int64)
    return claims.filter(version == version.max().over("claim_id"), pl.col("claim_status") == "paid")


def continuous(enrollment: pl.DataFrame, start: date, end: date, max_gap: int = 45) -> pl.DataFrame:
    """Member ids enrolled on ``end`` with at most one uncovered run of at most ``max_gap`` days."""
    spans = enrollment.select(
        "member_id", _date("enrollment_start").alias("s"),
        _date("enrollment_end").fill_null(date(2100, 1, 1)).alias("e"),
    ).filter(pl.col("s") <= pl.col("e"), pl.col("e") >= start, pl.col("s") <= end)
    rows: dict[str, list[tuple[date, date]]] = {}
    for m, s, e in spans.iter_rows():
        rows.setdefault(m, []).append((max(s, start), min(e, end)))
    ok = []
    for m, segs in rows.items():
        segs.sort()
        covered_to = start - timedelta(days=1)
        gaps = []
        for s, e in segs:
            if s > covered_to + timedelta(days=1):
                gaps.append((s - covered_to).days - 1)
            covered_to = max(covered_to, e)
        if covered_to < end:
            gaps.append((end - covered_to).days)
        if covered_to == end and len(gaps) <= 1 and all(g <= max_gap for g in gaps):
            ok.append(m)
    return pl.DataFrame({"member_id": ok}, schema={"member_id": pl.String})


def bcs_counts(out: Path, valid_fips: set[str]) -> dict[str, dict[str, int]]:
    truth = json.loads((out / "truth.json").read_text())
    my = truth["measurement_year"]
    lookback, my_start, my_end = date(my - 2, 10, 1), date(my, 1, 1), date(my, 12, 31)
    members = clean_members(read(out, "members"), valid_fips)
    enrollment = read(out, "enrollment").filter(pl.col("member_id").is_in(members["member_id"].implode()))
    ce = continuous(enrollment, lookback, my_end)
    women = members.filter(pl.col("sex") == "F").with_columns(
        (my - _date("birth_date").dt.year()).alias("age"),
        race_ethnicity_stratum(pl.col("race_ethnicity_codes")).alias("stratum"),
        _date("death_date").alias("death"),
    ).filter(pl.col("age").is_between(50, 74), pl.col("member_id").is_in(ce["member_id"].implode()))
    claims = clean_claims(read(out, "medical_claims").filter(pl.col("member_id").is_in(women["member_id"].implode())),
                          women["member_id"])
    pcs_cols = [c for c in claims.columns if c.startswith("procedure_code_")]
    dx_cols = [c for c in claims.columns if c.startswith("diagnosis_code_")]
    mast = claims.filter(
        pl.col("_from") <= my_end,
        pl.any_horizontal([pl.col(c) == "Z9013" for c in dx_cols] + [pl.col(c) == "0HTV0ZZ" for c in pcs_cols]),
    )["member_id"].unique()
    hospice = claims.filter(
        pl.col("_from").is_between(my_start, my_end),
        pl.col("revenue_code").is_in(sorted(HOSPICE_REVENUE)) | pl.col("hcpcs_code").is_in(sorted(HOSPICE_HCPCS)),
    )["member_id"].unique()
    mammo = claims.filter(
        pl.col("_from").is_between(lookback, my_end),
        pl.col("hcpcs_code").is_in(sorted(MAMMOGRAPHY)) | (pl.col("revenue_code") == "0403"),
    )["member_id"].unique()
    women = women.with_columns(
        excluded=pl.col("member_id").is_in(mast.implode()) | pl.col("member_id").is_in(hospice.implode())
        | pl.col("death").is_between(my_start, my_end).fill_null(False),
        screened=pl.col("member_id").is_in(mammo.implode()),
    )
    agg = women.group_by("stratum").agg(
        pl.len().alias("eligible"),
        pl.col("excluded").sum().alias("excluded"),
        (~pl.col("excluded")).sum().alias("denominator"),
        (~pl.col("excluded") & pl.col("screened")).sum().alias("numerator"),
    )
    return {r["stratum"]: {k: int(r[k]) for k in ("eligible", "excluded", "denominator", "numerator")}
            for r in agg.to_dicts()}
