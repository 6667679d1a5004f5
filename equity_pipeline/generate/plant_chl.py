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
)
from .planting import age_rows, death_and_hospice, fixed_margin_hits, on_covered_days, truth_rows, voided_trap
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "CHL"
NAME = "Chlamydia Screening in Women"
ROWS = (("16-20", 16, 20), ("21-24", 21, 24))
RATES: dict[str, dict[str, float]] = {
    "16-20": by_stratum(0.46, 0.64, 0.55, 0.40, 0.50, 0.51, 0.43, 0.55, 0.51, 0.49, 0.47),
    "21-24": by_stratum(0.52, 0.69, 0.60, 0.45, 0.55, 0.56, 0.48, 0.60, 0.56, 0.54, 0.52),
}
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
    row, rate, group = age_rows(pop, ROWS, RATES)
    active_share = np.zeros(n)
    for label, share in ACTIVE_SHARE.items():
        active_share[row == label] = share
    u = rng.random((n, 2))
    frames: list = []
    defects = {"voided_claim": 0}

    # ---- sexual activity in MY: already on record (deliveries) or planted here
    prior = in_age & (ev.has_dx("sexual_activity", p.my_start, p.my_end) | ev.has_line("sexual_activity", p.my_start, p.my_end))
    apos, da = on_covered_days(rng, pop, np.nonzero(in_age & (u[:, 0] < active_share))[0], p.my_start, p.my_end)
    frames += _activity(ctx, pop, providers, rng, apos, da)
    active = prior.copy()
    active[apos] = True
    eligible = in_age & ce & active
    died, hospice = death_and_hospice(ctx, pop, eligible)

    # ---- numerator evidence
    pos = np.nonzero(fixed_margin_hits(rng, eligible, died | hospice, group, rate, u=u[:, 1]))[0]
    pos, d = on_covered_days(rng, pop, pos, p.my_start, p.my_end)
    tested = np.zeros(n, dtype=bool)
    tested[pos] = True
    frames.append(_tests(ctx, pop, providers, rng, pos, d))

    # ---- traps
    untested = np.nonzero(eligible & ~tested)[0]
    early = untested[rng.random(len(untested)) < PRIOR_YEAR_DECOY_SHARE]
    frames.append(_tests(ctx, pop, providers, rng, *on_covered_days(rng, pop, early, p.my_start - 365, p.my_start - 1)))
    other = np.nonzero(in_age & ~active & (rng.random(n) < NOT_ACTIVE_TEST_SHARE))[0]
    frames.append(_tests(ctx, pop, providers, rng, *on_covered_days(rng, pop, other, p.my_start, p.my_end)))
    frames += voided_trap(ctx, rng, pop, untested, p.my_start, p.my_end,
                          lambda pos, days: _tests(ctx, pop, providers, rng, pos, days), defects)

    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    members = truth_rows(pop, in_age, row, {
        "age": pop.age, "continuously_enrolled": ce, "sexually_active": active, "active_from_other_records": prior,
        "eligible": eligible, "died": died, "hospice": hospice, "excluded": excluded, "denominator": denominator,
        "tested": tested, "numerator": denominator & tested,
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members, defects=defects)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "sex": "F", "age_min": 16, "age_max": 24, "age_as_of": f"{my}-12-31", "rows": {r[0]: [r[1], r[2]] for r in ROWS},
        "continuous_enrollment": enrollment_definition(my),
        "sexual_activity": {"planted_share": dict(ACTIVE_SHARE), "icd10cm": list(vocab.CONTRACEPTION_DX[:4]) + ["Z3202", "Z30430"],
                            "cpt_hcpcs": ["81025", "11981", "J7307"], "other_records": "deliveries (O80) on background stays",
                            "during": f"{my}"},
        "numerator": {"codes": [t[0] for t in TESTS], "during": f"{my}"},
        "exclusions": death_and_hospice_definition(my),
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, DEATH_AND_HOSPICE, rows=tuple(r[0] for r in ROWS))
