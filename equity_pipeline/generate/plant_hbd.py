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

from equity_pipeline.standards.race_ethnicity import (
    CATEGORY_LABELS,
    DECLINED,
    MULTIRACIAL,
    RACE_ETHNICITY_STRATA,
    UNKNOWN,
)

from . import vocab
from .context import ChunkContext, day, to_date
from .forms import compact, professional
from .plant_cbp import latest_readings, set_latest
from .planted import PlantResult, died_by, proportion_summary, quota, sample_covered_dates, stratum_index, stratum_rates
from .population import DX_VOCAB, Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "HBD"
NAME = "Hemoglobin A1c Poor Control (>9.0%)"
AGE_MIN, AGE_MAX = 18, 75
RATES: dict[str, float] = {  # probability of poor control (>9 % or no result)
    CATEGORY_LABELS["WHITE"]: 0.26,
    CATEGORY_LABELS["BLACK"]: 0.38,
    CATEGORY_LABELS["HISPANIC"]: 0.35,
    CATEGORY_LABELS["ASIAN"]: 0.24,
    CATEGORY_LABELS["AIAN"]: 0.42,
    CATEGORY_LABELS["NHPI"]: 0.37,
    CATEGORY_LABELS["MENA"]: 0.30,
    MULTIRACIAL: 0.32,
    CATEGORY_LABELS["OTHER"]: 0.32,
    DECLINED: 0.29,
    UNKNOWN: 0.34,
}
assert set(RATES) == set(RACE_ETHNICITY_STRATA)
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
    my = p.measurement_year
    in_age = (pop.age >= AGE_MIN) & (pop.age <= AGE_MAX)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.my_start, p.my_end, 45, 1)
    dx_from = day(to_date(p.my_start).replace(year=my - 1))
    dm_dates = ev.dx_date_count("diabetes", dx_from, p.my_end)
    eligible = in_age & ce & (dm_dates >= 2)
    rate = stratum_rates(pop, RATES)
    died = eligible & died_by(pop, p.my_end)
    hospice = eligible & ev.has_line("hospice", p.my_start, p.my_end)
    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    poor = quota(rng, denominator, stratum_index(pop), rate)  # fixed margin per stratum
    frames: list = []

    latest = latest_readings(ev.observations, p.my_start, p.my_end, (A1C,))
    has_obs = np.zeros(n, dtype=bool)
    has_obs[latest["pos"].to_numpy()] = True
    targets = latest.filter(pl.Series(denominator[latest["pos"].to_numpy()]))
    ev.observations = set_latest(ev.observations, targets, {A1C: a1c_values(rng, poor[targets["pos"].to_numpy()])})

    claim_pos = np.nonzero(denominator & ~has_obs & (~poor | (rng.random(n) >= NO_RESULT_WHEN_POOR)))[0]
    dc, okc = sample_covered_dates(rng, pop, claim_pos, p.my_start, p.my_end)
    claim_pos, dc = claim_pos[okc], dc[okc]
    dm_code = _diabetes_code(pop, claim_pos)
    em = np.where(rng.random(len(claim_pos)) < 0.6, "99213", "99214")
    frames.append(professional(ctx, pop, rng, claim_pos, dc, [em, cpt2(rng, poor[claim_pos])], [9200.0, 0.0], pop.pcp[claim_pos],
                               dx=[dm_code]))
    early = claim_pos[(dc > p.my_start) & (rng.random(len(claim_pos)) < EARLIER_OPPOSITE_SHARE)]
    last = dict(zip(claim_pos.tolist(), dc.tolist()))
    dd, okd = sample_covered_dates(rng, pop, early, p.my_start, np.array([last[m] - 1 for m in early.tolist()], dtype=np.int64))
    early, dd = early[okd], dd[okd]
    frames.append(professional(ctx, pop, rng, early, dd, ["99213", cpt2(rng, ~poor[early])], [9200.0, 0.0], pop.pcp[early],
                               dx=[_diabetes_code(pop, early)]))
    result = has_obs | np.isin(np.arange(n), claim_pos)
    # poor control or no result at all (members whose controlled result could not be placed count as poor)
    numerator = denominator & (poor | ~result)
    keep = in_age & (dm_dates > 0)
    members = pl.DataFrame({
        "member_id": pop.member_id[keep],
        "stratum": pop.stratum[keep],
        "submeasure": np.full(int(keep.sum()), "all"),
        "age": pop.age[keep],
        "continuously_enrolled": ce[keep],
        "diabetes_dates": dm_dates[keep],
        "eligible": eligible[keep],
        "died": died[keep],
        "hospice": hospice[keep],
        "excluded": excluded[keep],
        "denominator": denominator[keep],
        "result_source": np.where(has_obs, "observation", np.where(result, "cpt2", "none"))[keep],
        "poor_control": poor[keep],
        "numerator": numerator[keep],
        "planted_probability": np.where(denominator, rate, np.nan)[keep],
    }).with_columns(pl.col("planted_probability").fill_nan(None))
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
        "continuous_enrollment": {"start": f"{my}-01-01", "end": f"{my}-12-31", "max_gaps": 1, "max_gap_days": 45},
        "denominator_event": {"icd10cm": list(vocab.DX_FAMILIES["diabetes"]), "distinct_dates_min": 2,
                              "from": f"{my - 1}-01-01", "to": f"{my}-12-31"},
        "numerator": {"latest_result_in": f"{my}", "poor_control": "HbA1c > 9.0 % or no result",
                      "observations": [A1C], "cpt2": dict(vocab.CPT2_HBA1C)},
        "exclusions": {"death": f"by {my}-12-31", "hospice": f"during {my}"},
    }
    return proportion_summary(MEASURE_ID, NAME, members, dict(RATES), definition, {"death": "died", "hospice": "hospice"})
