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
from .planted import PlantResult, died_by, proportion_summary, quota, sample_covered_dates, stratum_index, stratum_rates
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "CBP"
NAME = "Controlling High Blood Pressure"
AGE_MIN, AGE_MAX = 18, 85
RATES: dict[str, float] = {
    CATEGORY_LABELS["WHITE"]: 0.66,
    CATEGORY_LABELS["BLACK"]: 0.55,
    CATEGORY_LABELS["HISPANIC"]: 0.60,
    CATEGORY_LABELS["ASIAN"]: 0.64,
    CATEGORY_LABELS["AIAN"]: 0.51,
    CATEGORY_LABELS["NHPI"]: 0.56,
    CATEGORY_LABELS["MENA"]: 0.61,
    MULTIRACIAL: 0.60,
    CATEGORY_LABELS["OTHER"]: 0.60,
    DECLINED: 0.63,
    UNKNOWN: 0.58,
}
assert set(RATES) == set(RACE_ETHNICITY_STRATA)
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


def latest_readings(obs: pl.DataFrame, lo: int, hi: int, loincs: tuple[str, ...]) -> pl.DataFrame:
    """(pos, day): each member's latest date in [lo, hi] with a reading of every code in ``loincs``."""
    sel = obs.filter(pl.col("day").is_between(lo, hi) & pl.col("loinc").is_in(list(loincs)))
    full = sel.group_by("pos", "day").agg(pl.col("loinc").n_unique().alias("k")).filter(pl.col("k") == len(loincs))
    return full.group_by("pos").agg(pl.col("day").max()).sort("pos")


def set_latest(obs: pl.DataFrame, targets: pl.DataFrame, values: dict[str, np.ndarray]) -> pl.DataFrame:
    """Set the value of the reading of each ``values`` loinc on each target (pos, day)."""
    if targets.height == 0:
        return obs
    upd = pl.concat([targets.select("pos", "day", pl.lit(loinc).alias("loinc"), pl.Series("_new", v, dtype=pl.Float64))
                     for loinc, v in values.items()])
    return obs.join(upd, on=["pos", "day", "loinc"], how="left", maintain_order="left").with_columns(
        pl.coalesce("_new", "value").alias("value")).drop("_new")


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_cbp")
    n = pop.n
    my = p.measurement_year
    in_age = (pop.age >= AGE_MIN) & (pop.age <= AGE_MAX)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.my_start, p.my_end, 45, 1)
    dx_from = day(to_date(p.my_start).replace(year=my - 1))
    htn_dates = ev.dx_date_count("hypertension", dx_from, p.my_end)
    eligible = in_age & ce & (htn_dates >= 2)
    rate = stratum_rates(pop, RATES)
    frames: list = []

    # ---- exclusions (ESRD planted here; the others read from the records)
    died = eligible & died_by(pop, p.my_end)
    hospice = eligible & ev.has_line("hospice", p.my_start, p.my_end)
    pregnancy = eligible & ev.has_dx("pregnancy", p.my_start, p.my_end)
    epos = np.nonzero(eligible & (rng.random(n) < ESRD_SHARE))[0]
    de, oke = sample_covered_dates(rng, pop, epos, p.window_start, p.my_end)
    epos, de = epos[oke], de[oke]
    frames.append(professional(ctx, pop, rng, epos, de, ["99214"], [13100.0], providers.roles["specialist"].pick(pop.county[epos], rng),
                               dx=[np.where(rng.random(len(epos)) < 0.7, "N186", "Z992")]))
    esrd = eligible & (ev.has_dx("esrd", None, p.my_end))
    esrd[epos] = True
    excluded = eligible & (died | hospice | esrd | pregnancy)
    denominator = eligible & ~excluded
    controlled = quota(rng, denominator, stratum_index(pop), rate)  # fixed margin per stratum

    # ---- numerator evidence: the latest reading in MY
    latest = latest_readings(ev.observations, p.my_start, p.my_end, (SYS, DIA))
    has_obs = np.zeros(n, dtype=bool)
    has_obs[latest["pos"].to_numpy()] = True
    targets = latest.filter(pl.Series(denominator[latest["pos"].to_numpy()]))
    tpos = targets["pos"].to_numpy()
    s_val, d_val = bp_values(rng, controlled[tpos])
    ev.observations = set_latest(ev.observations, targets, {SYS: s_val, DIA: d_val})

    claim_pos = np.nonzero(denominator & ~has_obs & (controlled | (rng.random(n) >= NO_CODE_WHEN_UNCONTROLLED)))[0]
    dc, okc = sample_covered_dates(rng, pop, claim_pos, p.my_start, p.my_end)
    claim_pos, dc = claim_pos[okc], dc[okc]
    s_code, d_code = cpt2_codes(rng, controlled[claim_pos])
    em = np.where(rng.random(len(claim_pos)) < 0.7, "99213", "99214")
    frames.append(professional(ctx, pop, rng, claim_pos, dc, [em, s_code, d_code], [9200.0, 0.0, 0.0], pop.pcp[claim_pos],
                               dx=[np.full(len(claim_pos), "I10")]))
    # trap: an earlier reading in MY with the opposite result
    early = claim_pos[(dc > p.my_start) & (rng.random(len(claim_pos)) < EARLIER_OPPOSITE_SHARE)]
    last = dict(zip(claim_pos.tolist(), dc.tolist()))
    hi = np.array([last[m] - 1 for m in early.tolist()], dtype=np.int64)
    dd, okd = sample_covered_dates(rng, pop, early, p.my_start, hi)
    early, dd = early[okd], dd[okd]
    s_code, d_code = cpt2_codes(rng, ~controlled[early])
    frames.append(professional(ctx, pop, rng, early, dd, ["99213", s_code, d_code], [9200.0, 0.0, 0.0], pop.pcp[early],
                               dx=[np.full(len(early), "I10")]))
    # no reading at all: truth is "not controlled" (only uncontrolled members lack a reading)
    reading = has_obs | np.isin(np.arange(n), claim_pos)
    numerator = denominator & controlled & reading
    keep = in_age & (htn_dates > 0)
    members = pl.DataFrame({
        "member_id": pop.member_id[keep],
        "stratum": pop.stratum[keep],
        "submeasure": np.full(int(keep.sum()), "all"),
        "age": pop.age[keep],
        "continuously_enrolled": ce[keep],
        "hypertension_dates": htn_dates[keep],
        "eligible": eligible[keep],
        "died": died[keep],
        "hospice": hospice[keep],
        "esrd": esrd[keep],
        "pregnancy": pregnancy[keep],
        "excluded": excluded[keep],
        "denominator": denominator[keep],
        "reading_source": np.where(has_obs, "observation", np.where(reading, "cpt2", "none"))[keep],
        "controlled": controlled[keep],
        "numerator": numerator[keep],
        "planted_probability": np.where(denominator, rate, np.nan)[keep],
    }).with_columns(pl.col("planted_probability").fill_nan(None))
    return PlantResult(medical_lines=compact(frames), members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": AGE_MIN, "age_max": AGE_MAX, "age_as_of": f"{my}-12-31",
        "continuous_enrollment": {"start": f"{my}-01-01", "end": f"{my}-12-31", "max_gaps": 1, "max_gap_days": 45},
        "denominator_event": {"icd10cm": list(vocab.DX_FAMILIES["hypertension"]), "distinct_dates_min": 2,
                              "from": f"{my - 1}-01-01", "to": f"{my}-12-31"},
        "numerator": {"latest_reading_in": f"{my}", "controlled": "systolic < 140 and diastolic < 90",
                      "observations": [SYS, DIA], "cpt2": {**vocab.CPT2_SYSTOLIC, **vocab.CPT2_DIASTOLIC}},
        "exclusions": {"death": f"by {my}-12-31", "hospice": f"during {my}", "esrd": list(vocab.ESRD_DX),
                       "pregnancy": list(vocab.DX_FAMILIES["pregnancy"])},
    }
    return proportion_summary(MEASURE_ID, NAME, members, dict(RATES), definition,
                              {"death": "died", "hospice": "hospice", "esrd": "esrd", "pregnancy": "pregnancy"})
