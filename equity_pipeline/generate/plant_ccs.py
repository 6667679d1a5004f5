"""Planted measure: Cervical Cancer Screening (CCS), stratified by race and ethnicity.

Truth, per woman of the chunk:

* eligible: sex F, aged 21-64 on Dec 31 MY, continuously enrolled through MY (enrolled on Dec 31, at
  most one uncovered run of at most 45 days);
* excluded: death by Dec 31 MY, hospice in MY (read from earlier producers: BCS plants hospice), or a
  hysterectomy with no residual cervix any time through MY (planted here: history code Z90710/Z90712
  on an office visit, or the procedure, CPT 58150/58571/58572);
* screened: Bernoulli with a probability that depends ONLY on her race/ethnicity stratum -> a
  cervical cytology test (CPT 88142/88175, HCPCS G0123/P3000/Q0091) at age 21 or older, or, for women
  30 or older on the test date, a high-risk HPV test (CPT 87624/87625, HCPCS G0476, alone or with
  cytology), on a covered day from Jan 1 MY-2 through Dec 31 MY (every day of the generated history
  lies inside both look-back windows).

Traps (none changes the truth): cytology before the 21st birthday, HPV tests before the 30th birthday,
tests of women outside the denominator, and, when messy, voided cytology claims and cytology claims
adjusted away (final version a urinalysis) for unscreened women.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext, to_date
from .forms import compact, professional
from .planted import (
    DEATH_AND_HOSPICE,
    PlantResult,
    birthday,
    by_stratum,
    death_and_hospice_definition,
    enrollment_definition,
    messy_count,
    proportion_summary,
    stratum_index,
    stratum_rates,
)
from .planting import counted_adjustment, counted_void, death_and_hospice, fixed_margin_hits, on_covered_days, truth_rows
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "CCS"
NAME = "Cervical Cancer Screening"
AGE_MIN, AGE_MAX = 21, 64
RATES: dict[str, float] = by_stratum(0.74, 0.71, 0.67, 0.61, 0.57, 0.59, 0.60, 0.69, 0.65, 0.68, 0.60)
HYSTERECTOMY_SHARE = (0.01, 0.05)   # eligible women under 40 / 40 and older
HPV_SHARE = 0.45                    # of tests of women 30+ on the test date: HPV (with or without cytology)
UNDERAGE_DECOY_SHARE = 0.3          # unscreened women 21-23: a cytology before the 21st birthday
YOUNG_HPV_DECOY_SHARE = 0.15        # unscreened women 25-31: an HPV test before the 30th birthday
OUTSIDE_SHARE = 0.4                 # women 18-20 and 65-70, and non-enrolled women 21-64, with a test
CYTOLOGY = (("88175", 0.45, 4500), ("88142", 0.30, 2800), ("G0123", 0.10, 2800), ("P3000", 0.05, 1500))
HPV = (("87624", 0.7, 3500), ("87625", 0.2, 4000), ("G0476", 0.1, 3500))


def _pick(rng, table, n):
    w = np.array([t[1] for t in table])
    i = rng.choice(len(table), size=n, p=w / w.sum())
    return np.array([t[0] for t in table], dtype=object)[i], np.array([t[2] for t in table], dtype=float)[i]


def _tests(ctx, pop, providers, rng, pos, dates, hpv: np.ndarray, cytology: np.ndarray) -> pl.DataFrame | None:
    """Lab claims (POS 81): a cytology line and/or an HPV line; Q0091 collection by the PCP sometimes."""
    n = len(pos)
    if n == 0:
        return None
    cyto_code, cyto_price = _pick(rng, CYTOLOGY, n)
    hpv_code, hpv_price = _pick(rng, HPV, n)
    dx = np.where(hpv & ~cytology, "Z1151", "Z124")
    lab = professional(ctx, pop, rng, pos, dates, [np.where(cytology, cyto_code, None), np.where(hpv, hpv_code, None)],
                       [cyto_price, hpv_price], providers.roles["lab"].pick(pop.county[pos], rng), place="81", dx=[dx])
    collect = cytology & (rng.random(n) < 0.3)
    pcp = professional(ctx, pop, rng, pos[collect], dates[collect], ["Q0091"], [4200.0], pop.pcp[pos[collect]], dx=[np.full(int(collect.sum()), "Z124")])
    return pl.concat(compact([lab, pcp]))


def _cytology(ctx, pop, providers, rng, pos, dates) -> pl.DataFrame | None:
    n = len(pos)
    return _tests(ctx, pop, providers, rng, pos, dates, np.zeros(n, bool), np.ones(n, bool))


def _hpv(ctx, pop, providers, rng, pos, dates) -> pl.DataFrame | None:
    n = len(pos)
    return _tests(ctx, pop, providers, rng, pos, dates, np.ones(n, bool), np.zeros(n, bool))


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    rng = ctx.rng("plant_ccs")
    n = pop.n
    female = pop.sex == "F"
    in_age = (pop.age >= AGE_MIN) & (pop.age <= AGE_MAX)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.my_start, p.my_end, 45, 1)
    eligible = female & in_age & ce
    rate = stratum_rates(pop, RATES)
    u = rng.random((n, 2))
    died, hospice = death_and_hospice(ctx, pop, eligible)
    want_hyst = eligible & (u[:, 0] < np.where(pop.age >= 40, HYSTERECTOMY_SHARE[1], HYSTERECTOMY_SHARE[0]))
    want_screen = fixed_margin_hits(rng, eligible, died | hospice | want_hyst, stratum_index(pop), rate, u=u[:, 1])
    frames: list = []
    defects = {"voided_claim": 0, "adjusted_claim": 0}
    age21 = birthday(pop.birth, 21)
    age30 = birthday(pop.birth, 30)

    # ---- numerator evidence: one test on a covered day at 21+ (HPV only at 30+)
    pos = np.nonzero(want_screen)[0]
    pos, d = on_covered_days(rng, pop, pos, np.maximum(p.window_start, age21[pos]), p.my_end)
    screened = np.zeros(n, dtype=bool)
    screened[pos] = True
    hpv = (d >= age30[pos]) & (rng.random(len(pos)) < HPV_SHARE)
    cytology = ~hpv | (rng.random(len(pos)) < 0.5)  # co-testing for half of the HPV tests
    frames.append(_tests(ctx, pop, providers, rng, pos, d, hpv, cytology))

    # ---- traps
    unscreened = np.nonzero(eligible & ~screened)[0]
    young = unscreened[(pop.age[unscreened] <= 23) & (rng.random(len(unscreened)) < UNDERAGE_DECOY_SHARE)]
    frames.append(_cytology(ctx, pop, providers, rng, *on_covered_days(rng, pop, young, p.window_start, age21[young] - 1)))
    mid = unscreened[(pop.age[unscreened] >= 25) & (pop.age[unscreened] <= 31) & (rng.random(len(unscreened)) < YOUNG_HPV_DECOY_SHARE)]
    frames.append(_hpv(ctx, pop, providers, rng, *on_covered_days(rng, pop, mid, p.window_start, np.minimum(age30[mid] - 1, p.my_end))))
    outside = female & ~eligible & (pop.age >= 18) & (pop.age <= 70) & (rng.random(n) < OUTSIDE_SHARE)
    frames.append(_cytology(ctx, pop, providers, rng, *on_covered_days(rng, pop, np.nonzero(outside)[0], p.window_start, p.my_end)))
    if ctx.messy_share > 0 and len(unscreened):
        trap = rng.choice(unscreened, size=min(2 * messy_count(ctx, len(unscreened)), len(unscreened)), replace=False)
        trap, dt = on_covered_days(rng, pop, trap, np.maximum(p.window_start, age21[trap]), p.my_end)
        half = len(trap) // 2
        if half:
            frames += counted_void(_cytology(ctx, pop, providers, rng, trap[:half], dt[:half]), defects)
        if len(trap) - half:
            frames += counted_adjustment(_cytology(ctx, pop, providers, rng, trap[half:], dt[half:]), defects,
                                         pl.lit("81001").alias("hcpcs_code"), pl.lit("R829").alias("diagnosis_code_1"))

    # ---- exclusion: hysterectomy with no residual cervix (history code, or the surgery)
    hpos, dh = on_covered_days(rng, pop, np.nonzero(want_hyst)[0], p.window_start, p.my_end)
    hysterectomy = np.zeros(n, dtype=bool)
    hysterectomy[hpos] = True
    history = rng.random(len(hpos)) < 0.6
    hx = hpos[history]
    frames.append(professional(ctx, pop, rng, hx, dh[history], ["99213"], [9200.0], pop.pcp[hx],
                               dx=[np.where(rng.random(len(hx)) < 0.8, "Z90710", "Z90712")]))
    sx = hpos[~history]
    cpt = np.where(rng.random(len(sx)) < 0.5, "58571", np.where(rng.random(len(sx)) < 0.5, "58572", "58150"))
    frames.append(professional(ctx, pop, rng, sx, dh[~history], [cpt], [120000.0],
                               providers.roles["specialist"].pick(pop.county[sx], rng), place="22",
                               dx=[np.where(rng.random(len(sx)) < 0.7, "D259", "N858")]))

    excluded = eligible & (died | hospice | hysterectomy)
    denominator = eligible & ~excluded
    members = truth_rows(pop, female & in_age, "all", {
        "age": pop.age, "continuously_enrolled": ce, "eligible": eligible, "died": died, "hospice": hospice,
        "hysterectomy": hysterectomy, "excluded": excluded, "denominator": denominator, "screened": screened,
        "numerator": denominator & screened,
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members, defects=defects)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "sex": "F", "age_min": AGE_MIN, "age_max": AGE_MAX, "age_as_of": f"{my}-12-31",
        "continuous_enrollment": enrollment_definition(my),
        "numerator": {"cervical_cytology": {"codes": list(vocab.CERVICAL_CYTOLOGY), "from": str(to_date(period.window_start)),
                                            "age_at_test_min": 21},
                      "hpv_test": {"codes": list(vocab.HPV_TESTS), "from": str(to_date(period.window_start)), "age_at_test_min": 30},
                      "to": f"{my}-12-31"},
        "exclusions": {**death_and_hospice_definition(my),
                       "hysterectomy": {"icd10cm": list(vocab.HYSTERECTOMY_DX), "cpt": ["58150", "58571", "58572"],
                                        "through": f"{my}-12-31"}},
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, {**DEATH_AND_HOSPICE, "hysterectomy": "hysterectomy"})
