"""Planted measure: Colorectal Cancer Screening (COL), stratified by race and ethnicity.

Truth, per member of the chunk:

* eligible: aged 45-75 on Dec 31 MY, continuously enrolled Jan 1 MY-1 .. Dec 31 MY (enrolled on
  Dec 31, at most two uncovered runs of at most 45 days each);
* excluded: death by Dec 31 MY, hospice in MY (from earlier producers), colorectal cancer on record
  any time through MY (ICD-10-CM C18x/C19/C20/Z85038 on an office visit), or a total colectomy
  (CPT 44150/44210 and an inpatient stay with ICD-10-PCS 0DTE0ZZ/0DTE4ZZ);
* screened: Bernoulli with a probability that depends ONLY on the stratum -> one test inside its own
  look-back window: colonoscopy (facility 131 + physician claim, 10 years), FIT/FOBT (measurement year
  only), stool DNA 81528 (3 years), flexible sigmoidoscopy or CT colonography (5 years). Generated
  history starts Jan 1 MY-2, so every test date lies in [Jan 1 MY-2, Dec 31 MY] (FOBT: MY).

Traps: FOBT in MY-1 for unscreened members (outside its one-year window), tests of members outside the
denominator, and when messy voided colonoscopy claims for unscreened members.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext, to_date
from .forms import compact, inpatient_stay, outpatient_facility, professional
from .planted import (
    DEATH_AND_HOSPICE,
    PlantResult,
    by_stratum,
    death_and_hospice_definition,
    enrollment_definition,
    proportion_summary,
    sample_covered_dates,
    stratum_index,
    stratum_rates,
)
from .planting import (
    death_and_hospice,
    fixed_margin_hits,
    jan1_prior_year,
    on_covered_days,
    truth_rows,
    voided_trap,
)
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "COL"
NAME = "Colorectal Cancer Screening"
AGE_MIN, AGE_MAX = 45, 75
RATES: dict[str, float] = by_stratum(0.71, 0.65, 0.55, 0.59, 0.49, 0.53, 0.57, 0.63, 0.60, 0.64, 0.55)
MODALITIES = (("colonoscopy", 0.50), ("fobt", 0.30), ("stool_dna", 0.12), ("flex_sig", 0.04), ("ct_colonography", 0.04))
CANCER_SHARE = 0.012
COLECTOMY_SHARE = 0.003
EARLY_FOBT_DECOY_SHARE = 0.15
OUTSIDE_SHARE = 0.25  # members 40-44 / 76-80 / not enrolled with a colonoscopy or FOBT


def _tests(ctx, pop, providers, rng, pos, dates, modality: np.ndarray) -> list[pl.DataFrame]:
    frames = []
    county = pop.county
    col = modality == 0
    if col.any():
        p, d = pos[col], dates[col]
        k = len(p)
        code = np.array(["45378", "45380", "45385", "G0121", "G0105"], dtype=object)[rng.choice(5, k, p=[.35, .3, .2, .1, .05])]
        dx = np.where(np.isin(code, ["45380", "45385"]), "K635", "Z1211")
        frames.append(outpatient_facility(ctx, pop, providers, rng, p, d, ["0750", "0370"], [code, None], [180000.0, 60000.0], dx=[dx]))
        frames.append(professional(ctx, pop, rng, p, d, [code], [45000.0], providers.roles["specialist"].pick(county[p], rng),
                                   place="22", dx=[dx]))
    for m, codes, price, place in ((1, ("82274", "G0328", "82270"), 2000.0, "81"), (2, ("81528",), 50000.0, "81"),
                                   (3, ("45330", "45331", "G0104"), 20000.0, "11")):
        sel = modality == m
        if sel.any():
            p, d = pos[sel], dates[sel]
            code = np.array(codes, dtype=object)[rng.integers(0, len(codes), len(p))]
            billing = providers.roles["lab"].pick(county[p], rng) if place == "81" else providers.roles["specialist"].pick(county[p], rng)
            frames.append(professional(ctx, pop, rng, p, d, [code], [price], billing, place=place, dx=[np.full(len(p), "Z1211")]))
    ctc = modality == 4
    if ctc.any():
        p, d = pos[ctc], dates[ctc]
        frames.append(outpatient_facility(ctx, pop, providers, rng, p, d, ["0350"], [np.full(len(p), "74263")], [60000.0],
                                          dx=[np.full(len(p), "Z1211")]))
    return compact(frames)


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    rng = ctx.rng("plant_col")
    n = pop.n
    in_age = (pop.age >= AGE_MIN) & (pop.age <= AGE_MAX)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, jan1_prior_year(p), p.my_end, 45, 2)
    eligible = in_age & ce
    rate = stratum_rates(pop, RATES)
    u = rng.random((n, 3))
    died, hospice = death_and_hospice(ctx, pop, eligible)
    want_cancer = eligible & (u[:, 1] < CANCER_SHARE)
    want_colectomy = eligible & ~want_cancer & (u[:, 2] < COLECTOMY_SHARE)
    meant_excluded = died | hospice | want_cancer | want_colectomy
    want_screen = fixed_margin_hits(rng, eligible, meant_excluded, stratum_index(pop), rate, u=u[:, 0])
    frames: list = []
    defects = {"voided_claim": 0}

    # ---- numerator evidence
    pos = np.nonzero(want_screen)[0]
    w = np.array([m[1] for m in MODALITIES])
    modality = rng.choice(len(MODALITIES), size=len(pos), p=w / w.sum())
    lo = np.where(modality == 1, p.my_start, p.window_start)
    d, ok = sample_covered_dates(rng, pop, pos, lo, p.my_end)
    screened = np.zeros(n, dtype=bool)
    screened[pos[ok]] = True
    frames += _tests(ctx, pop, providers, rng, pos[ok], d[ok], modality[ok])

    # ---- traps
    unscreened = np.nonzero(eligible & ~screened)[0]
    early = unscreened[rng.random(len(unscreened)) < EARLY_FOBT_DECOY_SHARE]
    epos, de = on_covered_days(rng, pop, early, p.window_start + 365, p.my_start - 1)
    frames += _tests(ctx, pop, providers, rng, epos, de, np.ones(len(epos), dtype=np.int64))
    outside = ~eligible & (pop.age >= 40) & (pop.age <= 80) & (rng.random(n) < OUTSIDE_SHARE)
    opos, do = on_covered_days(rng, pop, np.nonzero(outside)[0], p.window_start, p.my_end)
    frames += _tests(ctx, pop, providers, rng, opos, do, np.where(rng.random(len(opos)) < 0.5, 0, 1))
    frames += voided_trap(ctx, rng, pop, unscreened, p.window_start, p.my_end,
                          lambda pos, days: _tests(ctx, pop, providers, rng, pos, days, np.zeros(len(pos), dtype=np.int64)),
                          defects)

    # ---- exclusions: colorectal cancer on record, total colectomy
    cpos, dc = on_covered_days(rng, pop, np.nonzero(want_cancer)[0], p.window_start, p.my_end)
    cancer = np.zeros(n, dtype=bool)
    cancer[cpos] = True
    codes = np.array(vocab.COLORECTAL_CANCER_DX, dtype=object)[rng.integers(0, len(vocab.COLORECTAL_CANCER_DX), len(cpos))]
    frames.append(professional(ctx, pop, rng, cpos, dc, ["99214"], [13100.0], providers.roles["specialist"].pick(pop.county[cpos], rng),
                               dx=[codes]))
    xpos = np.nonzero(want_colectomy & ~cancer)[0]
    los = rng.integers(4, 8, size=len(xpos)).astype(np.int32)
    dx_, okx = sample_covered_dates(rng, pop, xpos, p.window_start, p.my_end - 8)
    okx &= pop.covered(xpos, dx_ + los)
    xpos, dx_, los = xpos[okx], dx_[okx], los[okx]
    colectomy = np.zeros(n, dtype=bool)
    colectomy[xpos] = True
    reason = np.where(rng.random(len(xpos)) < 0.6, "K5190", "K5730")  # ulcerative colitis, diverticulosis
    frames += inpatient_stay(ctx, pop, providers, rng, xpos, dx_, los, np.where(rng.random(len(xpos)) < 0.5, "330", "331"),
                             dx=[reason], pcs=[np.where(rng.random(len(xpos)) < 0.5, "0DTE0ZZ", "0DTE4ZZ")], surgical=True)
    frames.append(professional(ctx, pop, rng, xpos, dx_, [np.where(rng.random(len(xpos)) < 0.5, "44150", "44210")], [190000.0],
                               providers.roles["specialist"].pick(pop.county[xpos], rng), place="21", dx=[reason]))

    excluded = eligible & (died | hospice | cancer | colectomy)
    denominator = eligible & ~excluded
    members = truth_rows(pop, in_age, "all", {
        "age": pop.age, "continuously_enrolled": ce, "eligible": eligible, "died": died, "hospice": hospice,
        "colorectal_cancer": cancer, "total_colectomy": colectomy, "excluded": excluded, "denominator": denominator,
        "screened": screened, "numerator": denominator & screened,
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members, defects=defects)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": AGE_MIN, "age_max": AGE_MAX, "age_as_of": f"{my}-12-31",
        "continuous_enrollment": enrollment_definition(my, start_year=my - 1, max_gaps=2),
        "numerator": {"colonoscopy": list(vocab.COLONOSCOPY), "fobt": list(vocab.FOBT), "stool_dna": list(vocab.STOOL_DNA),
                      "flexible_sigmoidoscopy": list(vocab.FLEX_SIG), "ct_colonography": list(vocab.CT_COLONOGRAPHY),
                      "windows": {"fobt": f"{my}", "others": f"{to_date(period.window_start)} .. {my}-12-31"}},
        "exclusions": {**death_and_hospice_definition(my),
                       "colorectal_cancer": list(vocab.COLORECTAL_CANCER_DX), "total_colectomy": ["44150", "44210", "0DTE0ZZ", "0DTE4ZZ"]},
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition,
                              {**DEATH_AND_HOSPICE, "colorectal_cancer": "colorectal_cancer", "total_colectomy": "total_colectomy"})
