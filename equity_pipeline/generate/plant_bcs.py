"""Planted measure: Breast Cancer Screening (BCS), stratified by race and ethnicity.

Truth, per woman of the chunk:

* eligible: sex F, aged 50-74 on Dec 31 of the measurement year (MY), continuously enrolled from
  Oct 1 of MY-2 through Dec 31 of MY in the union of her spans across payers (enrolled on Dec 31, at
  most one uncovered run, of at most 45 days);
* excluded: bilateral mastectomy any time through Dec 31 MY (ICD-10-CM Z9013 or ICD-10-PCS 0HTV0ZZ),
  hospice during MY (hospice revenue codes or HCPCS), or death during MY;
* screened: Bernoulli with a probability that depends ONLY on her race/ethnicity stratum
  (``race_ethnicity_stratum`` of the codes written in the members table) -> a mammogram claim between
  Oct 1 MY-2 and Dec 31 MY (CPT 77065-77067, HCPCS G0202/G0204/G0206, or revenue code 0403).

Traps that a correct pipeline must see through (none changes the truth): mammograms before the
lookback (Jan-Sep MY-2), mammograms of women outside the denominator, unilateral mastectomy (Z9011 or
Z9012 alone), hospice only in the year before MY, and - when messy_share > 0 - voided mammogram
claims and mammogram claims adjusted away (version 1 mammogram, final version 2 a breast ultrasound)
for unscreened women, plus screened women whose mammogram appears only in the final version 2.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from equity_pipeline.standards.race_ethnicity import RACE_ETHNICITY_STRATA, ROLLUP_VERSION

from . import vocab
from .claims import assemble
from .context import ChunkContext, pick, to_date
from .planted import PlantResult, by_stratum, sample_covered_dates, stratum_index
from .planting import fixed_margin_hits
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "BCS"
NAME = "Breast Cancer Screening"
AGE_MIN, AGE_MAX = 50, 74
MAX_GAP_DAYS, MAX_GAPS = 45, 1

# Planted probability of a mammogram in the window for an eligible woman, by stratum label.
RATES: dict[str, float] = by_stratum(0.74, 0.69, 0.64, 0.67, 0.55, 0.60, 0.62, 0.68, 0.66, 0.71, 0.60)

MASTECTOMY_SHARE = 0.015        # of eligible women: bilateral mastectomy on record
HOSPICE_SHARE = 0.010           # of eligible women: hospice during MY
SECOND_MAMMOGRAM_SHARE = 0.25   # screened women with a second mammogram in the window
EARLY_DECOY_SHARE = 0.10        # unscreened eligible women with a mammogram Jan-Sep MY-2 (outside)
UNILATERAL_DECOY_SHARE = 0.004  # eligible women with one unilateral mastectomy code only
HOSPICE_PRIOR_YEAR_SHARE = 0.004
OUTSIDE_SCREEN_RATE = 0.45      # women 40-85 outside the denominator with a mammogram in the window

# Mammogram claim forms: professional CPT/HCPCS, institutional 0403 + HCPCS, institutional 0403 only.
PROF_CODES = (("77067", 0.82, 14000), ("77066", 0.06, 16000), ("77065", 0.03, 13000), ("G0202", 0.05, 14000),
              ("G0204", 0.02, 16000), ("G0206", 0.02, 13000))
FORMS = (("professional", 0.60), ("inst_hcpcs", 0.25), ("inst_revenue_only", 0.15))
SCREENING_CODES = {"77067", "G0202"}
ULTRASOUND = ("76641", 11000)  # breast ultrasound, complete: not a mammogram
# what a mammogram line becomes in the other version of an adjusted claim
_NOT_A_MAMMOGRAM = (
    pl.lit(ULTRASOUND[0]).alias("hcpcs_code"),
    pl.lit("N644").alias("diagnosis_code_1"),
    pl.when(pl.col("revenue_code").is_not_null()).then(pl.lit("0402")).otherwise(None).alias("revenue_code"),
)

HOSPICE_PROF_CODES = ("G9473", "G9474", "G9475", "G9476", "G9477", "G9478", "G9479", "T2042", "T2043",
                      "T2044", "T2045", "T2046", "S9126")
HOSPICE_DX = ("C3490", "I509", "G309", "J449")
MASTECTOMY_CANCER_DX = ("C50911", "C50912", "C50919")


def _mammograms(ctx: ChunkContext, pop: Population, providers: Providers, rng, pos: np.ndarray, dates: np.ndarray,
                background: bool = False) -> pl.DataFrame:
    """One single-line mammogram claim per (member, date), in one of the three claim forms."""
    n = len(pos)
    form = pick(rng, FORMS, n)
    code_i = pick(rng, PROF_CODES, n)
    code = np.array([c[0] for c in PROF_CODES], dtype=object)[code_i]
    price = np.array([c[2] for c in PROF_CODES], dtype=float)[code_i]
    screening = np.isin(code, list(SCREENING_CODES))
    dx1 = np.where(screening | (form == 2), "Z1231", "N644")
    frames = []
    prof = form == 0
    if prof.any():
        p = pos[prof]
        frames.append(assemble(ctx, pop, rng, member_pos=p, claim_type="professional", from_date=dates[prof],
                               thru_date=dates[prof], line_claim=np.arange(len(p)), line_price=price[prof],
                               header={"billing_npi": providers.roles["radiology"].pick(pop.county[p], rng)},
                               lines={"hcpcs_code": code[prof], "place_of_service": "11"},
                               dx=[dx1[prof]], background=background))
    inst = ~prof
    if inst.any():
        p = pos[inst]
        hosp = providers.roles["hospital"].positions(pop.county[p], rng)
        hcpcs = np.where(form[inst] == 1, code[inst], None)
        frames.append(assemble(ctx, pop, rng, member_pos=p, claim_type="institutional", from_date=dates[inst],
                               thru_date=dates[inst], line_claim=np.arange(len(p)), line_price=price[inst] * 1.6,
                               header={"bill_type": "131", "discharge_status": "01",
                                       "billing_npi": providers.roles["hospital"].ids[hosp],
                                       "facility_ccn": providers.roles["hospital"].ccns[hosp]},
                               lines={"revenue_code": "0403", "hcpcs_code": hcpcs}, dx=[dx1[inst]],
                               background=background))
    return pl.concat(frames) if frames else frames


def _office_claims(ctx, pop, providers, rng, pos, dates, dx_codes) -> pl.DataFrame:
    n = len(pos)
    return assemble(ctx, pop, rng, member_pos=pos, claim_type="professional", from_date=dates, thru_date=dates,
                    line_claim=np.arange(n), line_price=np.full(n, 9200.0), header={"billing_npi": pop.pcp[pos]},
                    lines={"hcpcs_code": "99213", "place_of_service": "11"}, dx=[dx_codes, np.full(n, "I10")],
                    background=False)


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    rng = ctx.rng("plant_bcs")
    female = pop.sex == "F"
    in_age = (pop.age >= AGE_MIN) & (pop.age <= AGE_MAX)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.lookback_start, p.my_end, MAX_GAP_DAYS, MAX_GAPS)
    eligible = female & in_age & ce
    n = pop.n
    rate = np.array([RATES[s] for s in pop.stratum])
    u = rng.random((n, 4))
    mastectomy = eligible & (u[:, 0] < MASTECTOMY_SHARE)
    hospice = eligible & (u[:, 1] < HOSPICE_SHARE)
    died_in_my = eligible & (pop.death >= p.my_start) & (pop.death <= p.my_end)
    # fixed margin: among women not meant to be excluded, each stratum gets round(rate x n) screened women
    want_screen = fixed_margin_hits(rng, eligible, mastectomy | hospice | died_in_my, stratum_index(pop), rate, u=u[:, 2])
    frames: list[pl.DataFrame] = []
    defects = {"voided_claim": 0, "adjusted_claim": 0}

    # ---- numerator evidence
    pos = np.nonzero(want_screen)[0]
    d1, ok1 = sample_covered_dates(rng, pop, pos, p.lookback_start, p.my_end)
    screened = np.zeros(n, dtype=bool)
    screened[pos[ok1]] = True
    second = ok1 & (rng.random(len(pos)) < SECOND_MAMMOGRAM_SHARE)
    d2, ok2 = sample_covered_dates(rng, pop, pos[second], p.lookback_start, p.my_end)
    # when messy: some screened women's mammogram arrives as the final version of an adjusted claim
    adj_screened = np.zeros(len(pos), dtype=bool)
    if ctx.messy_share > 0 and ok1.any():
        k = max(1, int(round(ctx.messy_share * ok1.sum())))
        adj_screened[rng.choice(np.nonzero(ok1)[0], size=min(k, int(ok1.sum())), replace=False)] = True
    plain = ok1 & ~adj_screened
    mpos = np.concatenate([pos[plain], pos[second][ok2]])
    mdates = np.concatenate([d1[plain], d2[ok2]])
    if len(mpos):
        frames.append(_mammograms(ctx, pop, providers, rng, mpos, mdates))
    if adj_screened.any():
        v2 = _mammograms(ctx, pop, providers, rng, pos[adj_screened], d1[adj_screened])
        v1 = v2.with_columns(*_NOT_A_MAMMOGRAM)
        frames += [v1, v2.with_columns(pl.lit(2, dtype=pl.Int32).alias("claim_version"))]
        defects["adjusted_claim"] += int(adj_screened.sum())

    # ---- decoys that must not count
    unscreened = np.nonzero(eligible & ~screened)[0]
    early = unscreened[rng.random(len(unscreened)) < EARLY_DECOY_SHARE]
    de, oke = sample_covered_dates(rng, pop, early, p.window_start, p.lookback_start - 1)
    if oke.any():
        frames.append(_mammograms(ctx, pop, providers, rng, early[oke], de[oke]))
    if ctx.messy_share > 0 and len(unscreened):
        k = max(1, int(round(ctx.messy_share * len(unscreened))))
        pick_u = rng.choice(unscreened, size=min(2 * k, len(unscreened)), replace=False)
        void_pos, adj_pos = pick_u[: len(pick_u) // 2 + len(pick_u) % 2], pick_u[len(pick_u) // 2 + len(pick_u) % 2:]
        dv, okv = sample_covered_dates(rng, pop, void_pos, p.lookback_start, p.my_end)
        if okv.any():
            v1 = _mammograms(ctx, pop, providers, rng, void_pos[okv], dv[okv])
            v2 = v1.with_columns(pl.lit(2, dtype=pl.Int32).alias("claim_version"), pl.lit("void").alias("claim_status"),
                                 pl.lit(0, dtype=pl.Int64).alias("paid_amount"), pl.lit(0, dtype=pl.Int64).alias("allowed_amount"))
            frames += [v1, v2]
            defects["voided_claim"] += int(okv.sum())
        da, oka = sample_covered_dates(rng, pop, adj_pos, p.lookback_start, p.my_end)
        if oka.any():
            v1 = _mammograms(ctx, pop, providers, rng, adj_pos[oka], da[oka])
            v2 = v1.with_columns(pl.lit(2, dtype=pl.Int32).alias("claim_version"), *_NOT_A_MAMMOGRAM)
            frames += [v1, v2]
            defects["adjusted_claim"] += int(oka.sum())

    outside = female & ~eligible & (pop.age >= 40) & (pop.age <= 85) & (rng.random(n) < OUTSIDE_SCREEN_RATE)
    opos = np.nonzero(outside)[0]
    do, oko = sample_covered_dates(rng, pop, opos, p.window_start, p.my_end)
    if oko.any():
        frames.append(_mammograms(ctx, pop, providers, rng, opos[oko], do[oko]))

    # ---- exclusions: bilateral mastectomy (any time through MY)
    mpos = np.nonzero(mastectomy)[0]
    dm, okm = sample_covered_dates(rng, pop, mpos, p.window_start, p.my_end)
    mastectomy_final = np.zeros(n, dtype=bool)
    mastectomy_final[mpos[okm]] = True
    mpos, dm = mpos[okm], dm[okm]
    as_history = rng.random(len(mpos)) < 0.5
    if as_history.any():
        frames.append(_office_claims(ctx, pop, providers, rng, mpos[as_history], dm[as_history],
                                     np.full(int(as_history.sum()), vocab.BILATERAL_MASTECTOMY_DX[0])))
    sp = mpos[~as_history]
    if len(sp):
        ds = dm[~as_history]
        hosp = providers.roles["hospital"].positions(pop.county[sp], rng)
        k = len(sp)
        frames.append(assemble(
            ctx, pop, rng, member_pos=sp, claim_type="institutional", from_date=ds, thru_date=ds + 2,
            line_claim=np.concatenate([np.arange(k), np.arange(k)]),
            line_price=np.concatenate([np.full(k, 500000.0), np.full(k, 900000.0)]),
            header={"bill_type": "111", "admit_date": ds, "discharge_date": ds + 2, "discharge_status": "01",
                    "drg_code": np.where(rng.random(k) < 0.3, "582", "583"),
                    "billing_npi": providers.roles["hospital"].ids[hosp], "facility_ccn": providers.roles["hospital"].ccns[hosp]},
            lines={"revenue_code": np.concatenate([np.full(k, "0120"), np.full(k, "0360")])},
            dx=[np.array(MASTECTOMY_CANCER_DX, dtype=object)[rng.integers(0, 3, k)]],
            pcs=[np.full(k, vocab.BILATERAL_MASTECTOMY_PCS[0])], background=False,
        ))
    upos = np.nonzero(eligible & ~mastectomy & (rng.random(n) < UNILATERAL_DECOY_SHARE))[0]
    du, oku = sample_covered_dates(rng, pop, upos, p.window_start, p.my_end)
    if oku.any():
        frames.append(_office_claims(ctx, pop, providers, rng, upos[oku], du[oku],
                                     np.array(vocab.UNILATERAL_MASTECTOMY_DX, dtype=object)[rng.integers(0, 2, int(oku.sum()))]))

    # ---- exclusions: hospice during MY (and decoys: hospice in MY-1 only)
    hpos = np.nonzero(hospice)[0]
    dh, okh = sample_covered_dates(rng, pop, hpos, p.my_start, p.my_end)
    hospice_final = np.zeros(n, dtype=bool)
    hospice_final[hpos[okh]] = True
    frames += _hospice_claims(ctx, pop, providers, rng, hpos[okh], dh[okh])
    decoy = np.nonzero(eligible & ~hospice & (rng.random(n) < HOSPICE_PRIOR_YEAR_SHARE))[0]
    dd, okd = sample_covered_dates(rng, pop, decoy, p.my_start - 365, p.my_start - 40)
    frames += _hospice_claims(ctx, pop, providers, rng, decoy[okd], dd[okd])

    excluded = eligible & (mastectomy_final | hospice_final | died_in_my)
    denominator = eligible & ~excluded
    numerator = denominator & screened
    keep = female & in_age
    members = pl.DataFrame({
        "member_id": pop.member_id[keep],
        "stratum": pop.stratum[keep],
        "age": pop.age[keep],
        "continuously_enrolled": ce[keep],
        "eligible": eligible[keep],
        "bilateral_mastectomy": mastectomy_final[keep],
        "hospice": hospice_final[keep],
        "died_in_my": died_in_my[keep],
        "excluded": excluded[keep],
        "denominator": denominator[keep],
        "screened": screened[keep],
        "numerator": numerator[keep],
        "planted_probability": np.where(eligible, rate, np.nan)[keep],
    })
    return PlantResult(medical_lines=frames, members=members, defects=defects)


def _hospice_claims(ctx, pop, providers, rng, pos, dates) -> list[pl.DataFrame]:
    """Hospice evidence: institutional 81x with a hospice revenue code, or professional hospice HCPCS."""
    if len(pos) == 0:
        return []
    frames = []
    n = len(pos)
    form = rng.random(n)
    dx = np.array(HOSPICE_DX, dtype=object)[rng.integers(0, len(HOSPICE_DX), n)]
    inst = form < 0.7
    if inst.any():
        p, d = pos[inst], dates[inst]
        k = len(p)
        fac = providers.roles["hospice"].positions(pop.county[p], rng)
        rev = np.where(rng.random(k) < 0.75, "0651", "0656")
        hcpcs = np.where(rev == "0651", np.array(["Q5003", "Q5004", "Q5009"], dtype=object)[rng.integers(0, 3, k)], None)
        frames.append(assemble(ctx, pop, rng, member_pos=p, claim_type="institutional", from_date=d,
                               thru_date=np.minimum(d + 14, ctx.period.my_end), line_claim=np.arange(k),
                               line_price=np.full(k, 280000.0),
                               header={"bill_type": "812", "billing_npi": providers.roles["hospice"].ids[fac],
                                       "facility_ccn": providers.roles["hospice"].ccns[fac], "discharge_status": "30"},
                               lines={"revenue_code": rev, "hcpcs_code": hcpcs}, dx=[dx[inst]], background=False))
    prof = ~inst
    if prof.any():
        p, d = pos[prof], dates[prof]
        k = len(p)
        fac = providers.roles["hospice"].positions(pop.county[p], rng)
        frames.append(assemble(ctx, pop, rng, member_pos=p, claim_type="professional", from_date=d, thru_date=d,
                               line_claim=np.arange(k), line_price=np.full(k, 15000.0),
                               header={"billing_npi": providers.roles["hospice"].ids[fac]},
                               lines={"hcpcs_code": np.array(HOSPICE_PROF_CODES, dtype=object)[rng.integers(0, len(HOSPICE_PROF_CODES), k)],
                                      "place_of_service": "34"}, dx=[dx[prof]], background=False))
    return frames


def _counts(df: pl.DataFrame) -> dict[str, dict[str, int]]:
    agg = df.group_by("stratum").agg(
        pl.col("eligible").sum().alias("eligible"),
        (pl.col("eligible") & pl.col("excluded")).sum().alias("excluded"),
        pl.col("denominator").sum().alias("denominator"),
        pl.col("numerator").sum().alias("numerator"),
    )
    rows = {r["stratum"]: r for r in agg.to_dicts()}
    out = {}
    for s in RACE_ETHNICITY_STRATA:
        r = rows.get(s, {"eligible": 0, "excluded": 0, "denominator": 0, "numerator": 0})
        d, k = int(r["denominator"]), int(r["numerator"])
        out[s] = {"eligible": int(r["eligible"]), "excluded": int(r["excluded"]), "denominator": d, "numerator": k,
                  "rate": round(k / d, 6) if d else None}
    return out


def summarize(members: pl.DataFrame, period) -> dict:
    """The truth.json entry for BCS from all chunks' member rows (with a ``quarantined`` column)."""
    my = period.measurement_year
    eligible = members.filter(pl.col("eligible"))
    clean = members.filter(~pl.col("quarantined"))
    total = lambda df: {  # noqa: E731
        "eligible": int(df["eligible"].sum()), "denominator": int(df["denominator"].sum()),
        "numerator": int(df["numerator"].sum()),
    }
    return {
        "measure_id": MEASURE_ID,
        "name": NAME,
        "kind": "proportion",
        "rows": [],
        "stratifier": "race_ethnicity",
        "rollup_version": ROLLUP_VERSION,
        "depends_only_on": "race_ethnicity",
        "rates": dict(RATES),
        "definition": {
            "sex": "F",
            "age_min": AGE_MIN,
            "age_max": AGE_MAX,
            "age_as_of": f"{my}-12-31",
            "continuous_enrollment": {
                "start": str(to_date(period.lookback_start)), "end": str(to_date(period.my_end)),
                "anchor_date": str(to_date(period.my_end)), "max_gaps": MAX_GAPS, "max_gap_days": MAX_GAP_DAYS,
                "gap_days": "uncovered days between spans (next_start - previous_end - 1); a late start or early end counts as a gap",
                "payers": "union of the member's spans across all payers",
            },
            "numerator_window": {"start": str(to_date(period.lookback_start)), "end": str(to_date(period.my_end))},
            "numerator_codes": {"cpt": list(vocab.MAMMOGRAPHY_CPT), "hcpcs": list(vocab.MAMMOGRAPHY_HCPCS),
                                "revenue": list(vocab.MAMMOGRAPHY_REVENUE)},
            "exclusions": {
                "bilateral_mastectomy": {"icd10cm": list(vocab.BILATERAL_MASTECTOMY_DX),
                                         "icd10pcs": list(vocab.BILATERAL_MASTECTOMY_PCS), "through": f"{my}-12-31"},
                "hospice": {"revenue": list(vocab.HOSPICE_REVENUE), "hcpcs": list(vocab.HOSPICE_HCPCS),
                            "during": [f"{my}-01-01", f"{my}-12-31"]},
                "death": {"during": [f"{my}-01-01", f"{my}-12-31"]},
            },
            "claims": "paid or void/adjusted per claim_version: the highest version of a claim_id is final; a void "
                      "version cancels the claim; denied claims never carry planted evidence",
        },
        "exclusion_counts": {
            "bilateral_mastectomy": int(eligible["bilateral_mastectomy"].sum()),
            "hospice": int(eligible["hospice"].sum()),
            "death": int(eligible["died_in_my"].sum()),
        },
        "planted": _counts(members),
        "planted_total": total(members),
        "expected": _counts(clean),
        "expected_total": total(clean),
        "expected_note": "planted counts without the members whose own members-table row carries an injected defect "
                         "(those rows are quarantined by a correct pipeline, so the member drops out)",
        "member_file": f"truth/{MEASURE_ID}_members",
    }
