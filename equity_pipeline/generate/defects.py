"""Messy records, injected so that the planted truth survives a correct pipeline exactly.

Rules that keep the truth exact:

* claim-level defects are **extra** claims copied from background lines (invalid codes, bad NPI check
  digits, future / impossible / reversed dates, orphan members, voided claims), or exact duplicate
  lines, so dropping them restores the true utilisation; planted lines are never touched;
* ``normalisable_code`` changes true background lines in place (lowercase, stray spaces): valid once
  stripped and upper-cased, so a correct pipeline keeps them;
* ``adjusted_claim`` turns a true background claim into version 2 and adds a different version 1
  (the final version is the true one); ``voided_claim`` adds a claim the member never received, as
  version 1 paid plus version 2 void;
* member-row defects hit random members (their removal does not bias any stratum); ``missing_rel``
  is applied before strata are computed, so those members truly belong to "Unknown".

``DEFECT_CLASSES`` documents every class; ``truth.json`` records how many of each were injected.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from .context import ChunkContext, cents_to_str, isin, str_series

DEFECT_CLASSES: dict[str, dict[str, str]] = {
    "missing_rel": {"unit": "members", "rule": "-", "handling": "keep; race/ethnicity null -> stratum Unknown"},
    "unknown_county_fips": {"unit": "members", "rule": "unknown_county_fips", "handling": "quarantine member row ('99999')"},
    "invalid_county_fips_format": {"unit": "members", "rule": "invalid_county_fips_format",
                                   "handling": "quarantine member row (4-digit FIPS)"},
    "invalid_date_birth_date": {"unit": "members", "rule": "invalid_date_birth_date",
                                "handling": "quarantine member row (impossible date such as YYYY-02-30)"},
    "duplicate_member_id": {"unit": "member ids", "rule": "duplicate_member_id",
                            "handling": "quarantine every copy (a second, conflicting row)"},
    "normalisable_code": {"unit": "lines", "rule": "-", "handling": "keep after strip + upper-case (lowercase or padded ICD-10-CM / HCPCS)"},
    "invalid_icd10cm": {"unit": "lines", "rule": "invalid_icd10cm", "handling": "quarantine (ICD-9 code in diagnosis_code_1; extra claim)"},
    "invalid_hcpcs_code": {"unit": "lines", "rule": "invalid_hcpcs_code", "handling": "quarantine (malformed CPT/HCPCS; extra claim)"},
    "invalid_npi_check_digit": {"unit": "lines", "rule": "invalid_npi_check_digit", "handling": "quarantine (extra claim)"},
    "future_claim_from_date": {"unit": "lines", "rule": "future_claim_from_date", "handling": "quarantine (3-6 years after MY; extra claim)"},
    "invalid_date_claim_from_date": {"unit": "lines", "rule": "invalid_date_claim_from_date",
                                     "handling": "quarantine (YYYY-02-30, YYYY-04-31, YYYY-13-01; extra claim)"},
    "claim_from_date_after_claim_thru_date": {"unit": "lines", "rule": "claim_from_date_after_claim_thru_date",
                                              "handling": "quarantine (thru before from; extra claim)"},
    "duplicate_line": {"unit": "rows", "rule": "-", "handling": "drop exact duplicate rows"},
    "adjusted_claim": {"unit": "claims", "rule": "-", "handling": "keep only the highest claim_version of a claim_id"},
    "voided_claim": {"unit": "claims", "rule": "-", "handling": "drop every version of a claim_id with a void version"},
    "orphan_member": {"unit": "rows", "rule": "orphan_member", "handling": "quarantine (member_id absent from members)"},
    "invalid_ndc": {"unit": "rows", "rule": "invalid_ndc", "handling": "quarantine (10- or 12-digit NDC; extra fill)"},
    "future_fill_date": {"unit": "rows", "rule": "future_fill_date", "handling": "quarantine (extra fill)"},
    "enrollment_start_after_enrollment_end": {"unit": "rows", "rule": "enrollment_start_after_enrollment_end",
                                              "handling": "quarantine (extra span, years before the lookback)"},
}
# members whose own row carries one of these is quarantined (drops out of every denominator)
QUARANTINING_MEMBER_DEFECTS = ("unknown_county_fips", "invalid_county_fips_format", "invalid_date_birth_date",
                               "duplicate_member_id")

MEDICAL_CLASSES = ("normalisable_code", "invalid_icd10cm", "invalid_hcpcs_code", "invalid_npi_check_digit",
                   "future_claim_from_date", "invalid_date_claim_from_date", "claim_from_date_after_claim_thru_date",
                   "duplicate_line", "adjusted_claim", "voided_claim", "orphan_member")
PHARMACY_CLASSES = ("invalid_ndc", "future_fill_date", "orphan_member", "duplicate_line", "voided_claim", "adjusted_claim")
ICD9_CODES = ("4019", "25000", "49390", "78650", "2724")
BAD_HCPCS = ("9921", "992134", "W1234", "ABCDE")
IMPOSSIBLE_SUFFIXES = ("-02-30", "-04-31", "-06-31", "-13-01", "-02-31")


def _orphan_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Member ids in the generator's format that no member has (9xxxxxxx is never issued)."""
    if n == 0:
        return np.array([], dtype=str)
    return np.char.add("M9", np.char.zfill(rng.integers(0, 10**7, size=n).astype(str), 7))


def _shift_date(col: str, days: pl.Expr | pl.Series) -> pl.Expr:
    return (pl.col(col).str.to_date("%Y-%m-%d") + pl.duration(days=days)).cast(pl.String).alias(col)


def _str_col(values) -> pl.Series:
    return str_series("", values)


def _sample(rng, idx: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or len(idx) == 0:
        return idx[:0]
    return np.sort(rng.choice(idx, size=min(k, len(idx)), replace=False))


# ------------------------------------------------------------------------------------------ members
def member_defects(ctx: ChunkContext, members: pl.DataFrame, n_classes: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Member-row defects on distinct random members; returns the frame and the quarantined member ids."""
    rng = ctx.rng("defects_members")
    n = members.height
    k = ctx.defect_count(n, n_classes)
    if k == 0:
        return members, np.array([], dtype=str)
    picks = rng.permutation(n)[: 4 * k]
    groups = np.array_split(picks, 4) if len(picks) >= 4 else [picks[:0]] * 4
    fips_unknown, fips_format, bad_birth, dup = groups
    idx = pl.Series(np.arange(n))
    out = members.with_columns(
        pl.when(isin(idx, fips_unknown)).then(pl.lit("99999"))
        .when(isin(idx, fips_format)).then(pl.col("county_fips").str.slice(1, 4))
        .otherwise(pl.col("county_fips")).alias("county_fips"),
        pl.when(isin(idx, bad_birth))
        .then(pl.col("birth_date").str.slice(0, 4) + _str_col(np.array(IMPOSSIBLE_SUFFIXES, dtype=object)[rng.integers(0, len(IMPOSSIBLE_SUFFIXES), n)]))
        .otherwise(pl.col("birth_date")).alias("birth_date"),
    )
    copies = members[dup].with_columns(
        pl.when(pl.col("sex") == "F").then(pl.lit("M")).otherwise(pl.lit("F")).alias("sex"),
        _shift_date("birth_date", pl.lit(-400)),
    )
    out = pl.concat([out, copies])
    for name, g in zip(QUARANTINING_MEMBER_DEFECTS, groups):
        ctx.add_defect(name, len(g), "members")
    quarantined = members["member_id"].to_numpy()[picks].astype(str)
    return out, quarantined


# ------------------------------------------------------------------------------------------ medical
def medical_defects(ctx: ChunkContext, df: pl.DataFrame) -> pl.DataFrame:
    """Inject the medical-claim defect classes into the stringified line frame of one chunk."""
    rng = ctx.rng("defects_medical")
    k = ctx.defect_count(df.height, len(MEDICAL_CLASSES))
    if k == 0:
        return df
    bg = df["_bg"].to_numpy()
    prof = bg & (df["claim_type"] == "professional").to_numpy()
    keys = df["claim_key"].to_numpy()

    # whole claims adjusted in place, claims used as void templates and rows duplicated are chosen first;
    # in-place normalisation then avoids all of them (so duplicates stay exact and copies stay raw)
    bg_claims = np.flatnonzero(np.bincount(keys[bg]))
    adj_keys = _sample(rng, bg_claims, k)
    void_tpl = _sample(rng, bg_claims[~np.isin(bg_claims, adj_keys)], k)
    in_adj = np.isin(keys, adj_keys)
    in_void = np.isin(keys, void_tpl)
    dup_i = _sample(rng, np.nonzero(bg & ~in_adj)[0], k)
    taken = in_adj | in_void
    taken[dup_i] = True
    free_prof = np.nonzero(prof & ~taken)[0]
    picks = rng.permutation(free_prof)[: 8 * k]
    norm_i, icd_i, hcpcs_i, npi_i, fut_i, bad_i, rev_i, orph_i = (picks[j * k:(j + 1) * k] for j in range(8))
    extras: list[pl.DataFrame] = []

    def extra(rows: np.ndarray, *exprs: pl.Expr) -> None:
        if len(rows) == 0:
            return
        t = df[rows].with_columns(
            pl.Series("claim_key", ctx.claim_keys(len(rows))), pl.lit("1").alias("claim_line"),
            pl.lit("1").alias("claim_version"), pl.lit("paid").alias("claim_status"), pl.lit(False).alias("_bg"),
        )
        extras.append(t.with_columns(*exprs))

    m = len(icd_i)
    extra(icd_i, _str_col(np.array(ICD9_CODES, dtype=object)[rng.integers(0, len(ICD9_CODES), m)]).alias("diagnosis_code_1"))
    m = len(hcpcs_i)
    extra(hcpcs_i, _str_col(np.array(BAD_HCPCS, dtype=object)[rng.integers(0, len(BAD_HCPCS), m)]).alias("hcpcs_code"))
    extra(npi_i, (pl.col("billing_npi").str.slice(0, 9)
                  + ((pl.col("billing_npi").str.slice(9, 1).cast(pl.Int32) + 1) % 10).cast(pl.String)).alias("billing_npi"))
    shift = pl.Series(rng.integers(3 * 365, 6 * 365, size=len(fut_i)))
    extra(fut_i, _shift_date("claim_from_date", shift), _shift_date("claim_thru_date", shift))
    suffix = _str_col(np.array(IMPOSSIBLE_SUFFIXES, dtype=object)[rng.integers(0, len(IMPOSSIBLE_SUFFIXES), len(bad_i))])
    extra(bad_i, (pl.col("claim_from_date").str.slice(0, 4) + suffix).alias("claim_from_date"),
          (pl.col("claim_from_date").str.slice(0, 4) + suffix).alias("claim_thru_date"))
    back = pl.Series(rng.integers(1, 31, size=len(rev_i)))
    extra(rev_i, _shift_date("claim_from_date", back))  # from moves later -> thru before from
    extra(orph_i, _str_col(_orphan_ids(rng, len(orph_i))).alias("member_id"))
    for name, rows in (("invalid_icd10cm", icd_i), ("invalid_hcpcs_code", hcpcs_i), ("invalid_npi_check_digit", npi_i),
                       ("future_claim_from_date", fut_i), ("invalid_date_claim_from_date", bad_i),
                       ("claim_from_date_after_claim_thru_date", rev_i), ("orphan_member", orph_i)):
        ctx.add_defect(name, len(rows), "medical_claims")

    # normalisable codes: lowercase / padded, in place on true background lines
    variant = rng.integers(0, 3, size=len(norm_i))
    idx = pl.Series(np.arange(df.height))
    low = norm_i[variant == 0]
    pad = norm_i[variant == 1]
    hc = norm_i[variant == 2]
    df = df.with_columns(
        pl.when(isin(idx, low)).then(pl.col("diagnosis_code_1").str.to_lowercase())
        .when(isin(idx, pad)).then(pl.lit(" ") + pl.col("diagnosis_code_1") + pl.lit(" "))
        .otherwise(pl.col("diagnosis_code_1")).alias("diagnosis_code_1"),
        pl.when(isin(idx, hc) & pl.col("hcpcs_code").is_not_null()).then(pl.col("hcpcs_code") + pl.lit(" "))
        .otherwise(pl.col("hcpcs_code")).alias("hcpcs_code"),
    )
    ctx.add_defect("normalisable_code", len(norm_i), "medical_claims")

    # adjusted claims: the true claim becomes version 2; version 1 differs in amounts and first diagnosis
    if len(adj_keys):
        v1 = df.filter(isin(pl.col("claim_key"), adj_keys)).with_columns(
            pl.lit("1").alias("claim_version"),
            (pl.col("paid_amount").str.replace(".", "", literal=True).cast(pl.Int64) * 5 // 4).alias("paid_amount"),
        ).with_columns(
            cents_to_str("paid_amount"),
        )
        df = df.with_columns(pl.when(isin(pl.col("claim_key"), adj_keys)).then(pl.lit("2"))
                             .otherwise(pl.col("claim_version")).alias("claim_version"))
        extras.append(v1)
        ctx.add_defect("adjusted_claim", len(adj_keys), "medical_claims")

    # voided claims: copies of background claims under new ids, paid then voided
    if len(void_tpl):
        tpl = df.filter(isin(pl.col("claim_key"), void_tpl))
        new_keys = pl.DataFrame({"claim_key": void_tpl, "_new": ctx.claim_keys(len(void_tpl))})
        v1 = tpl.join(new_keys, on="claim_key", maintain_order="left").with_columns(
            pl.col("_new").alias("claim_key"), pl.lit("1").alias("claim_version"), pl.lit("paid").alias("claim_status"),
            pl.lit(False).alias("_bg")).drop("_new")
        v2 = v1.with_columns(pl.lit("2").alias("claim_version"), pl.lit("void").alias("claim_status"),
                             pl.lit("0.00").alias("paid_amount"), pl.lit("0.00").alias("allowed_amount"))
        extras += [v1, v2]
        ctx.add_defect("voided_claim", len(void_tpl), "medical_claims")

    # exact duplicate lines
    extras.append(df[dup_i])
    ctx.add_defect("duplicate_line", len(dup_i), "medical_claims")
    return pl.concat([df, *extras])


# ------------------------------------------------------------------------------------------ pharmacy
def pharmacy_defects(ctx: ChunkContext, df: pl.DataFrame) -> pl.DataFrame:
    rng = ctx.rng("defects_pharmacy")
    k = ctx.defect_count(df.height, len(PHARMACY_CLASSES))
    if k == 0 or df.height == 0:
        return df
    n = df.height
    adj = _sample(rng, np.arange(n), k)
    free_mask = np.ones(n, dtype=bool)
    free_mask[adj] = False
    free = np.flatnonzero(free_mask)
    picks = rng.permutation(free)[: 5 * k]
    ndc_i, fut_i, orph_i, dup_i, void_i = (picks[j * k:(j + 1) * k] for j in range(5))
    extras = []

    def extra(rows, *exprs):
        if len(rows) == 0:
            return None
        t = df[rows].with_columns(pl.Series("rx_key", ctx.rx_keys(len(rows))), pl.lit("1").alias("claim_version"),
                                  pl.lit("paid").alias("claim_status"), pl.lit(False).alias("_bg")).with_columns(*exprs)
        extras.append(t)
        return t

    long_or_short = rng.random(len(ndc_i)) < 0.5
    extra(ndc_i, pl.when(pl.Series(long_or_short)).then(pl.col("ndc").str.slice(1, 10))
          .otherwise(pl.col("ndc") + pl.lit("0")).alias("ndc"))
    extra(fut_i, _shift_date("fill_date", pl.Series(rng.integers(3 * 365, 6 * 365, size=len(fut_i)))))
    extra(orph_i, _str_col(_orphan_ids(rng, len(orph_i))).alias("member_id"))
    v1 = extra(void_i)
    if v1 is not None:
        extras.append(v1.with_columns(pl.lit("2").alias("claim_version"), pl.lit("void").alias("claim_status"),
                                      pl.lit("0.00").alias("paid_amount")))
    extras.append(df[dup_i])
    idx = pl.Series(np.arange(n))
    if len(adj):
        extras.append(df[adj].with_columns(
            pl.lit("1").alias("claim_version"),
            (pl.col("quantity").cast(pl.Int64) * 2).cast(pl.String).alias("quantity"),
        ))
        df = df.with_columns(pl.when(isin(idx, adj)).then(pl.lit("2")).otherwise(pl.col("claim_version")).alias("claim_version"))
    for name, rows in (("invalid_ndc", ndc_i), ("future_fill_date", fut_i), ("orphan_member", orph_i),
                       ("duplicate_line", dup_i), ("voided_claim", void_i), ("adjusted_claim", adj)):
        ctx.add_defect(name, len(rows), "pharmacy_claims")
    return pl.concat([df, *extras])


# ------------------------------------------------------------------------------------------ others
def enrollment_defects(ctx: ChunkContext, df: pl.DataFrame) -> pl.DataFrame:
    rng = ctx.rng("defects_enrollment")
    k = ctx.defect_count(df.height, 2)
    if k == 0:
        return df
    my = ctx.period.measurement_year
    rows = rng.choice(df.height, size=min(2 * k, df.height), replace=False)
    rev, orph = rows[:k], rows[k:2 * k]
    bad = df[rev].with_columns(pl.lit(f"{my - 4}-06-01").alias("enrollment_start"),
                               pl.lit(f"{my - 4}-03-31").alias("enrollment_end"))
    orphan = df[orph].with_columns(_str_col(_orphan_ids(rng, len(orph))).alias("member_id"))
    ctx.add_defect("enrollment_start_after_enrollment_end", len(rev), "enrollment")
    ctx.add_defect("orphan_member", len(orph), "enrollment")
    return pl.concat([df, bad, orphan])


def orphan_rows(ctx: ChunkContext, df: pl.DataFrame, table: str, id_col: str | None = None) -> pl.DataFrame:
    """Extra copies of random rows under member ids that do not exist (screenings, observations)."""
    rng = ctx.rng(f"defects_{table}")
    k = ctx.defect_count(df.height, 1)
    if k == 0 or df.height == 0:
        return df
    rows = rng.choice(df.height, size=min(k, df.height), replace=False)
    extra = df[rows].with_columns(_str_col(_orphan_ids(rng, len(rows))).alias("member_id"))
    if id_col is not None:
        extra = extra.with_columns((pl.col(id_col) + pl.lit("X")).alias(id_col))
    ctx.add_defect("orphan_member", len(rows), table)
    return pl.concat([df, extra])
