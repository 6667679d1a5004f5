"""Planted measure: Chlamydia Screening in Women (CHL), by age row and race/ethnicity.

Truth, per woman of the chunk aged 16-24 on Dec 31 MY:

* eligible: continuously enrolled through MY (one gap of at most 45 days, enrolled Dec 31) and
  identified as sexually active in MY: a planted contraceptive-management visit (ICD-10-CM Z3009,
  Z3041, Z3042, Z30430), a urine pregnancy test (CPT 81025 with Z3202) or a contraceptive implant
  (CPT 11981 + HCPCS J7307) - or, from earlier producers, a delivery (background inpatient stays
  carry O80). Rows ``16-20`` and ``21-24`` by age on Dec 31 MY;
* excluded: death by Dec 31 MY, hospice in MY (from earlier producers);
* tested: Bernoulli with a probability that depends ONLY on the row and the stratum -> a chlamydia
  NAAT in MY (CPT 87491, 87490 or 87492; lab claim with Z118, which is not a sexual-activity code).

Traps: tests in MY-1 for women not tested in MY, tests of women not identified as sexually active
(they are outside the denominator), and when messy voided test claims for untested women.
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
from .context import ChunkContext
from .forms import compact, professional
from .planted import (
    PlantResult,
    died_by,
    messy_count,
    proportion_summary,
    quota,
    sample_covered_dates,
    stratum_index,
    voided,
)
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "CHL"
NAME = "Chlamydia Screening in Women"
ROWS = (("16-20", 16, 20), ("21-24", 21, 24))
_S = (CATEGORY_LABELS["WHITE"], CATEGORY_LABELS["BLACK"], CATEGORY_LABELS["HISPANIC"], CATEGORY_LABELS["ASIAN"],
      CATEGORY_LABELS["AIAN"], CATEGORY_LABELS["NHPI"], CATEGORY_LABELS["MENA"], MULTIRACIAL, CATEGORY_LABELS["OTHER"],
      DECLINED, UNKNOWN)
RATES: dict[str, dict[str, float]] = {
    "16-20": dict(zip(_S, (0.46, 0.64, 0.55, 0.40, 0.50, 0.51, 0.43, 0.55, 0.51, 0.49, 0.47))),
    "21-24": dict(zip(_S, (0.52, 0.69, 0.60, 0.45, 0.55, 0.56, 0.48, 0.60, 0.56, 0.54, 0.52))),
}
for _r in RATES.values():
    assert set(_r) == set(RACE_ETHNICITY_STRATA)
ACTIVE_SHARE = {"16-20": 0.50, "21-24": 0.66}  # planted sexual-activity evidence (does not depend on stratum)
PRIOR_YEAR_DECOY_SHARE = 0.2
NOT_ACTIVE_TEST_SHARE = 0.05
TESTS = (("87491", 0.8, 3500), ("87490", 0.1, 2800), ("87492", 0.1, 4500))


def _activity(ctx, pop, providers, rng, pos, dates) -> list[pl.DataFrame]:
    n = len(pos)
    form = rng.random(n)
    frames = []
    visit = form < 0.5
    dx = np.array(vocab.CONTRACEPTION_DX[:4], dtype=object)[rng.integers(0, 4, int(visit.sum()))]
    frames.append(professional(ctx, pop, rng, pos[visit], dates[visit], ["99213"], [9200.0], pop.pcp[pos[visit]], dx=[dx]))
    preg = (form >= 0.5) & (form < 0.8)
    frames.append(professional(ctx, pop, rng, pos[preg], dates[preg], ["99212", "81025"], [5700.0, 900.0], pop.pcp[pos[preg]],
                               dx=[np.full(int(preg.sum()), "Z3202")]))
    impl = form >= 0.8
    frames.append(professional(ctx, pop, rng, pos[impl], dates[impl], ["11981", "J7307"], [15000.0, 90000.0], pop.pcp[pos[impl]],
                               dx=[np.full(int(impl.sum()), "Z30430")]))
    return compact(frames)


def _tests(ctx, pop, providers, rng, pos, dates) -> pl.DataFrame | None:
    n = len(pos)
    if n == 0:
        return None
    w = np.array([t[1] for t in TESTS])
    i = rng.choice(len(TESTS), size=n, p=w / w.sum())
    return professional(ctx, pop, rng, pos, dates, [np.array([t[0] for t in TESTS], dtype=object)[i]],
                        [np.array([t[2] for t in TESTS], dtype=float)[i]], providers.roles["lab"].pick(pop.county[pos], rng),
                        place="81", dx=[np.full(n, "Z118")])


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_chl")
    n = pop.n
    female = pop.sex == "F"
    in_age = female & (pop.age >= 16) & (pop.age <= 24)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.my_start, p.my_end, 45, 1)
    row = np.full(n, "", dtype=object)
    rate = np.full(n, np.nan)
    active_share = np.zeros(n)
    sidx = stratum_index(pop)
    group = np.full(n, -1, dtype=np.int64)
    for j, (label, lo, hi) in enumerate(ROWS):
        m = (pop.age >= lo) & (pop.age <= hi)
        row[m] = label
        rate[m] = np.array([RATES[label][s] for s in RACE_ETHNICITY_STRATA])[sidx[m]]
        active_share[m] = ACTIVE_SHARE[label]
        group[m] = j * len(RACE_ETHNICITY_STRATA) + sidx[m]
    u = rng.random((n, 2))
    frames: list = []
    defects = {"voided_claim": 0}

    # ---- sexual activity in MY: already on record (deliveries) or planted here
    prior = in_age & (ev.has_dx("sexual_activity", p.my_start, p.my_end) | ev.has_line("sexual_activity", p.my_start, p.my_end))
    apos = np.nonzero(in_age & (u[:, 0] < active_share))[0]
    da, oka = sample_covered_dates(rng, pop, apos, p.my_start, p.my_end)
    frames += _activity(ctx, pop, providers, rng, apos[oka], da[oka])
    active = prior.copy()
    active[apos[oka]] = True
    eligible = in_age & ce & active
    died = eligible & died_by(pop, p.my_end)
    hospice = eligible & ev.has_line("hospice", p.my_start, p.my_end)

    # ---- numerator evidence
    meant_excluded = died | hospice
    pos = np.nonzero(quota(rng, eligible & ~meant_excluded, group, rate)
                     | (eligible & meant_excluded & (u[:, 1] < np.nan_to_num(rate))))[0]
    d, ok = sample_covered_dates(rng, pop, pos, p.my_start, p.my_end)
    tested = np.zeros(n, dtype=bool)
    tested[pos[ok]] = True
    frames.append(_tests(ctx, pop, providers, rng, pos[ok], d[ok]))

    # ---- traps
    untested = np.nonzero(eligible & ~tested)[0]
    early = untested[rng.random(len(untested)) < PRIOR_YEAR_DECOY_SHARE]
    de, oke = sample_covered_dates(rng, pop, early, p.my_start - 365, p.my_start - 1)
    frames.append(_tests(ctx, pop, providers, rng, early[oke], de[oke]))
    other = np.nonzero(in_age & ~active & (rng.random(n) < NOT_ACTIVE_TEST_SHARE))[0]
    do, oko = sample_covered_dates(rng, pop, other, p.my_start, p.my_end)
    frames.append(_tests(ctx, pop, providers, rng, other[oko], do[oko]))
    k = messy_count(ctx, len(untested))
    if k:
        trap = rng.choice(untested, size=k, replace=False)
        dt, okt = sample_covered_dates(rng, pop, trap, p.my_start, p.my_end)
        v = _tests(ctx, pop, providers, rng, trap[okt], dt[okt])
        if v is not None:
            frames += voided(v)
            defects["voided_claim"] += v["claim_key"].n_unique()

    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    numerator = denominator & tested
    keep = in_age
    members = pl.DataFrame({
        "member_id": pop.member_id[keep],
        "stratum": pop.stratum[keep],
        "submeasure": row[keep].astype(str),
        "age": pop.age[keep],
        "continuously_enrolled": ce[keep],
        "sexually_active": active[keep],
        "active_from_other_records": prior[keep],
        "eligible": eligible[keep],
        "died": died[keep],
        "hospice": hospice[keep],
        "excluded": excluded[keep],
        "denominator": denominator[keep],
        "tested": tested[keep],
        "numerator": numerator[keep],
        "planted_probability": np.where(denominator, rate, np.nan)[keep],
    }).with_columns(pl.col("planted_probability").fill_nan(None))
    return PlantResult(medical_lines=compact(frames), members=members, defects=defects)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "sex": "F", "age_min": 16, "age_max": 24, "age_as_of": f"{my}-12-31", "rows": {r[0]: [r[1], r[2]] for r in ROWS},
        "continuous_enrollment": {"start": f"{my}-01-01", "end": f"{my}-12-31", "max_gaps": 1, "max_gap_days": 45},
        "sexual_activity": {"planted_share": dict(ACTIVE_SHARE), "icd10cm": list(vocab.CONTRACEPTION_DX[:4]) + ["Z3202", "Z30430"],
                            "cpt_hcpcs": ["81025", "11981", "J7307"], "other_records": "deliveries (O80) on background stays",
                            "during": f"{my}"},
        "numerator": {"codes": [t[0] for t in TESTS], "during": f"{my}"},
        "exclusions": {"death": f"by {my}-12-31", "hospice": f"during {my}"},
    }
    return proportion_summary(MEASURE_ID, NAME, members, {k: dict(v) for k, v in RATES.items()}, definition,
                              {"death": "died", "hospice": "hospice"}, rows=tuple(r[0] for r in ROWS))
