"""Planted measure: Hemoglobin A1c Poor Control >9.0% (HBD, inverse), stratified by race and ethnicity.

Truth, per member of the chunk aged 18-75 on Dec 31 MY:

* eligible: continuously enrolled through MY (one gap of at most 45 days, enrolled Dec 31) and
  diabetes (ICD-10-CM E10*, E11*, E13*) on at least two distinct dates from Jan 1 MY-1 through Dec 31 MY,
  read from everything produced before (background visits of diabetic members, PQI stays);
* excluded: death by Dec 31 MY, hospice in MY;
* poor control (the numerator; lower is better): Bernoulli with a probability that depends ONLY on the
  stratum, applied to the most recent HbA1c in MY: members with lab results in MY have the value of
  the latest one set (poor: 9.1-13.5 %, controlled: 5.6-9.0 %); members without get CPT II codes on an
  office visit in MY when controlled (3044F <7 %, 3051F 7-8 %, 3052F 8-9 %), and when poorly controlled
  3046F (>9 %) or no result at all (a missing result counts as poor control).

Trap: an earlier CPT II result in MY with the opposite status (only the latest counts).
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
from .population import DX_VOCAB, Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "HBD"
NAME = "Hemoglobin A1c Poor Control (>9.0%)"
AGE_MIN, AGE_MAX = 18, 75
# probability of poor control (>9 % or no result)
RATES: dict[str, float] = by_stratum(0.26, 0.38, 0.35, 0.24, 0.42, 0.37, 0.30, 0.32, 0.32, 0.29, 0.34)
NO_RESULT_WHEN_POOR = 0.5
EARLIER_OPPOSITE_SHARE = 0.2
A1C = vocab.LOINC_HBA1C[0]


def a1c_values(rng, poor: np.ndarray) -> np.ndarray:
    n = len(poor)
    good = np.round(rng.uniform(5.6, 9.0, size=n), 1)
    bad = np.round(rng.uniform(9.1, 13.5, size=n), 1)
    return np.where(poor, bad, np.minimum(good, 9.0))


def cpt2(rng, poor: np.ndarray) -> np.ndarray:
    v = a1c_values(rng, poor)
    c = vocab.CPT2_HBA1C
    return np.where(v > 9.0, c["gt_9"], np.where(v < 7.0, c["lt_7"], np.where(v < 8.0, c["7_8"], c["8_9"]))).astype(object)


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_hbd")
    n = pop.n
    in_age = (pop.age >= AGE_MIN) & (pop.age <= AGE_MAX)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.my_start, p.my_end, 45, 1)
    dm_dates = ev.dx_date_count("diabetes", jan1_prior_year(p), p.my_end)
    eligible = in_age & ce & (dm_dates >= 2)
    rate = stratum_rates(pop, RATES)
    died, hospice = death_and_hospice(ctx, pop, eligible)
    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    poor = quota(rng, denominator, stratum_index(pop), rate)  # fixed margin per stratum
    frames: list = []

    has_obs = set_latest_in_my(ev, p, denominator, (A1C,), lambda pos: {A1C: a1c_values(rng, poor[pos])})

    claim_pos = np.nonzero(denominator & ~has_obs & (~poor | (rng.random(n) >= NO_RESULT_WHEN_POOR)))[0]
    claim_pos, dc = on_covered_days(rng, pop, claim_pos, p.my_start, p.my_end)
    dm_code = _diabetes_code(pop, claim_pos)
    em = np.where(rng.random(len(claim_pos)) < 0.6, "99213", "99214")
    frames.append(professional(ctx, pop, rng, claim_pos, dc, [em, cpt2(rng, poor[claim_pos])], [9200.0, 0.0], pop.pcp[claim_pos],
                               dx=[dm_code]))
    early, dd = earlier_in_my(rng, pop, p, claim_pos, dc, EARLIER_OPPOSITE_SHARE)
    frames.append(professional(ctx, pop, rng, early, dd, ["99213", cpt2(rng, ~poor[early])], [9200.0, 0.0], pop.pcp[early],
                               dx=[_diabetes_code(pop, early)]))
    result = has_obs | members_with(claim_pos, n)
    # poor control or no result at all (members whose controlled result could not be placed count as poor)
    members = truth_rows(pop, in_age & (dm_dates > 0), "all", {
        "age": pop.age, "continuously_enrolled": ce, "diabetes_dates": dm_dates, "eligible": eligible, "died": died,
        "hospice": hospice, "excluded": excluded, "denominator": denominator,
        "result_source": np.where(has_obs, "observation", np.where(result, "cpt2", "none")), "poor_control": poor,
        "numerator": denominator & (poor | ~result),
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members)


def _diabetes_code(pop: Population, pos: np.ndarray) -> np.ndarray:
    """The member's own diabetes code (E11x) when the condition is on the problem list, else E119."""
    from .background import COND_INDEX

    j = COND_INDEX["diabetes"]
    code = pop.condition_code[pos, j]
    vocab_arr = np.array([None, *DX_VOCAB], dtype=object)
    return np.where(code >= 0, vocab_arr[code + 1], "E119")


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": AGE_MIN, "age_max": AGE_MAX, "age_as_of": f"{my}-12-31",
        "continuous_enrollment": enrollment_definition(my),
        "denominator_event": {"icd10cm": list(vocab.DX_FAMILIES["diabetes"]), "distinct_dates_min": 2,
                              "from": f"{my - 1}-01-01", "to": f"{my}-12-31"},
        "numerator": {"latest_result_in": f"{my}", "poor_control": "HbA1c > 9.0 % or no result",
                      "observations": [A1C], "cpt2": dict(vocab.CPT2_HBA1C)},
        "exclusions": death_and_hospice_definition(my),
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, DEATH_AND_HOSPICE)
