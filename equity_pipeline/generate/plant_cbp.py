"""Planted measure: Controlling High Blood Pressure (CBP), stratified by race and ethnicity.

Truth, per member of the chunk aged 18-85 on Dec 31 MY:

* eligible: continuously enrolled through MY (one gap of at most 45 days, enrolled Dec 31) and
  essential hypertension (ICD-10-CM I10) on at least two distinct dates from Jan 1 MY-1 through
  Dec 31 MY - read from everything produced before (background visits carry the diagnoses of
  hypertensive members; BCS and PQI claims carry some too);
* excluded: death by Dec 31 MY, hospice in MY, ESRD any time through MY (planted here for a few
  eligible members: N186 / Z992 on a nephrology visit), pregnancy codes in MY (O*, Z33*, Z34*: the
  background deliveries);
* controlled: Bernoulli with a probability that depends ONLY on the stratum, applied to the member's
  most recent blood pressure in MY: when the member has recorded readings in MY (EHR/HIE feed) the
  values of the latest reading pair are set (controlled: systolic 100-139 and diastolic 60-89;
  otherwise systolic >= 140 and/or diastolic >= 90); without readings a controlled member gets CPT II
  result codes on an office visit in MY (3074F/3075F with 3078F/3079F), an uncontrolled member gets
  uncontrolled codes (3077F and/or 3080F) or nothing (no reading counts as not controlled).

Traps: an earlier CPT II reading in MY with the opposite result (only the latest counts), and
readings of the year before MY.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext
from .forms import compact, professional
from .planted import (
    DEATH_AND_HOSPICE,
    PlantResult,
    by_stratum,
    death_and_hospice_definition,
    enrollment_definition,
    proportion_summary,
    quota,
    stratum_index,
    stratum_rates,
)
from .planting import (
    death_and_hospice,
    earlier_in_my,
    jan1_prior_year,
    members_with,
    on_covered_days,
    set_latest_in_my,
    truth_rows,
)
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "CBP"
NAME = "Controlling High Blood Pressure"
AGE_MIN, AGE_MAX = 18, 85
RATES: dict[str, float] = by_stratum(0.66, 0.55, 0.60, 0.64, 0.51, 0.56, 0.61, 0.60, 0.60, 0.63, 0.58)
ESRD_SHARE = 0.015
NO_CODE_WHEN_UNCONTROLLED = 0.4  # uncontrolled members without readings: share with no result at all
EARLIER_OPPOSITE_SHARE = 0.2
SYS, DIA = vocab.LOINC_SYSTOLIC[0], vocab.LOINC_DIASTOLIC[0]


def bp_values(rng, controlled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Systolic and diastolic values: controlled < 140/90, uncontrolled at or above in one or both."""
    n = len(controlled)
    sys_ok = rng.integers(100, 140, size=n)
    dia_ok = rng.integers(60, 90, size=n)
    which = rng.random(n)
    sys_bad = np.where(which < 0.75, rng.integers(140, 181, size=n), sys_ok)
    dia_bad = np.where(which >= 0.5, rng.integers(90, 111, size=n), dia_ok)
    return np.where(controlled, sys_ok, sys_bad).astype(float), np.where(controlled, dia_ok, dia_bad).astype(float)


def cpt2_codes(rng, controlled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sys_v, dia_v = bp_values(rng, controlled)
    s = np.where(sys_v < 130, vocab.CPT2_SYSTOLIC["lt_130"], np.where(sys_v < 140, vocab.CPT2_SYSTOLIC["130_139"], vocab.CPT2_SYSTOLIC["ge_140"]))
    d = np.where(dia_v < 80, vocab.CPT2_DIASTOLIC["lt_80"], np.where(dia_v < 90, vocab.CPT2_DIASTOLIC["80_89"], vocab.CPT2_DIASTOLIC["ge_90"]))
    return s.astype(object), d.astype(object)


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_cbp")
    n = pop.n
    in_age = (pop.age >= AGE_MIN) & (pop.age <= AGE_MAX)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.my_start, p.my_end, 45, 1)
    htn_dates = ev.dx_date_count("hypertension", jan1_prior_year(p), p.my_end)
    eligible = in_age & ce & (htn_dates >= 2)
    rate = stratum_rates(pop, RATES)
    frames: list = []

    # ---- exclusions (ESRD planted here; the others read from the records)
    died, hospice = death_and_hospice(ctx, pop, eligible)
    pregnancy = eligible & ev.has_dx("pregnancy", p.my_start, p.my_end)
    epos, de = on_covered_days(rng, pop, np.nonzero(eligible & (rng.random(n) < ESRD_SHARE))[0], p.window_start, p.my_end)
    frames.append(professional(ctx, pop, rng, epos, de, ["99214"], [13100.0], providers.roles["specialist"].pick(pop.county[epos], rng),
                               dx=[np.where(rng.random(len(epos)) < 0.7, "N186", "Z992")]))
    esrd = eligible & (ev.has_dx("esrd", None, p.my_end))
    esrd[epos] = True
    excluded = eligible & (died | hospice | esrd | pregnancy)
    denominator = eligible & ~excluded
    controlled = quota(rng, denominator, stratum_index(pop), rate)  # fixed margin per stratum

    # ---- numerator evidence: the latest reading in MY
    has_obs = set_latest_in_my(ev, p, denominator, (SYS, DIA),
                               lambda pos: dict(zip((SYS, DIA), bp_values(rng, controlled[pos]))))

    claim_pos = np.nonzero(denominator & ~has_obs & (controlled | (rng.random(n) >= NO_CODE_WHEN_UNCONTROLLED)))[0]
    claim_pos, dc = on_covered_days(rng, pop, claim_pos, p.my_start, p.my_end)
    s_code, d_code = cpt2_codes(rng, controlled[claim_pos])
    em = np.where(rng.random(len(claim_pos)) < 0.7, "99213", "99214")
    frames.append(professional(ctx, pop, rng, claim_pos, dc, [em, s_code, d_code], [9200.0, 0.0, 0.0], pop.pcp[claim_pos],
                               dx=[np.full(len(claim_pos), "I10")]))
    # trap: an earlier reading in MY with the opposite result
    early, dd = earlier_in_my(rng, pop, p, claim_pos, dc, EARLIER_OPPOSITE_SHARE)
    s_code, d_code = cpt2_codes(rng, ~controlled[early])
    frames.append(professional(ctx, pop, rng, early, dd, ["99213", s_code, d_code], [9200.0, 0.0, 0.0], pop.pcp[early],
                               dx=[np.full(len(early), "I10")]))
    # no reading at all: truth is "not controlled" (only uncontrolled members lack a reading)
    reading = has_obs | members_with(claim_pos, n)
    members = truth_rows(pop, in_age & (htn_dates > 0), "all", {
        "age": pop.age, "continuously_enrolled": ce, "hypertension_dates": htn_dates, "eligible": eligible, "died": died,
        "hospice": hospice, "esrd": esrd, "pregnancy": pregnancy, "excluded": excluded, "denominator": denominator,
        "reading_source": np.where(has_obs, "observation", np.where(reading, "cpt2", "none")), "controlled": controlled,
        "numerator": denominator & controlled & reading,
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": AGE_MIN, "age_max": AGE_MAX, "age_as_of": f"{my}-12-31",
        "continuous_enrollment": enrollment_definition(my),
        "denominator_event": {"icd10cm": list(vocab.DX_FAMILIES["hypertension"]), "distinct_dates_min": 2,
                              "from": f"{my - 1}-01-01", "to": f"{my}-12-31"},
        "numerator": {"latest_reading_in": f"{my}", "controlled": "systolic < 140 and diastolic < 90",
                      "observations": [SYS, DIA], "cpt2": {**vocab.CPT2_SYSTOLIC, **vocab.CPT2_DIASTOLIC}},
        "exclusions": {**death_and_hospice_definition(my), "esrd": list(vocab.ESRD_DX),
                       "pregnancy": list(vocab.DX_FAMILIES["pregnancy"])},
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition,
                              {**DEATH_AND_HOSPICE, "esrd": "esrd", "pregnancy": "pregnancy"})
