"""Planted measure: Screening for Depression and Follow-Up Plan (CDF), by age row and race/ethnicity.

Truth, per member of the chunk aged 12+ on Jan 1 MY:

* eligible: at least one outpatient visit in MY (office, preventive, telehealth and psychotherapy
  E/M codes of ``vocab.OUTPATIENT_ENCOUNTER_CODES``), read from everything produced before (background
  visits and the visits of earlier planted modules); rows ``12-17`` and ``18+`` by age on Jan 1 MY;
* excluded: death by Dec 31 MY, a depression or bipolar diagnosis (F31*, F32*, F33*, F341) before MY
  (background visits of members with depression carry them);
* screened: Bernoulli with a probability that depends ONLY on the row and the stratum -> G8510
  (negative screen) or G8431 (positive screen with a follow-up plan) on a separate claim dated the
  day of one of the member's visits in MY.

Traps: G8432 (screening not documented) and G8511 (positive, no plan) for some unscreened members -
neither counts; screening codes of members who are excluded.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext
from .forms import compact, professional
from .planted import PlantResult, age_on, by_stratum, died_by, proportion_summary, quota
from .planting import age_rows, members_with, one_visit_day, truth_rows
from .population import Population
from .providers import Providers

MEASURE_ID = "CDF"
NAME = "Screening for Depression and Follow-Up Plan"
ROWS = (("12-17", 12, 17), ("18+", 18, 200))
ROWS = (("12-17", 12, 17), ("18+", 18, 200))  # by age on Jan 1 MY
RATES: dict[str, dict[str, float]] = {
    "12-17": by_stratum(0.58, 0.50, 0.47, 0.44, 0.41, 0.45, 0.46, 0.53, 0.49, 0.50, 0.45),
    "18+": by_stratum(0.46, 0.40, 0.36, 0.32, 0.31, 0.35, 0.34, 0.42, 0.38, 0.40, 0.35),
}
POSITIVE_SHARE = 0.12       # of screened members: positive screen with a follow-up plan (G8431)
NOT_COUNTED_SHARE = 0.15    # of unscreened eligible members: G8432 or G8511 (do not count)


def _screens(ctx, pop, rng, pos, dates, codes) -> pl.DataFrame | None:
    return professional(ctx, pop, rng, pos, dates, [codes], [0.0], pop.pcp[pos], dx=[np.full(len(pos), "Z1331")])


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_cdf")
    n = pop.n
    age0 = age_on(pop.birth, np.full(n, p.my_start))
    visits = ev.line_days("outpatient_encounter", p.my_start, p.my_end)
    has_visit = members_with(visits["pos"].to_numpy(), n)
    eligible = (age0 >= 12) & has_visit
    row, rate, group = age_rows(pop, ROWS, RATES, age=age0)
    died = eligible & died_by(pop, p.my_end)
    prior_depression = eligible & ev.has_dx("depression_or_bipolar", None, p.my_start - 1)
    excluded = eligible & (died | prior_depression)
    denominator = eligible & ~excluded
    # fixed margin per row and stratum; excluded members are screened too (it must not matter)
    screened = quota(rng, denominator, group, rate) | (excluded & (rng.random(n) < rate))

    # one visit day per member: the screening (or a non-counting code) goes on that day
    visit_day = one_visit_day(rng, visits, eligible)
    spos = np.nonzero(screened)[0]
    codes = np.where(rng.random(len(spos)) < POSITIVE_SHARE, vocab.DEPRESSION_SCREEN_CODES["positive_with_plan"],
                     vocab.DEPRESSION_SCREEN_CODES["negative"]).astype(object)
    frames = [_screens(ctx, pop, rng, spos, visit_day[spos], codes)]
    npos = np.nonzero(eligible & ~screened & (rng.random(n) < NOT_COUNTED_SHARE))[0]
    ncodes = np.where(rng.random(len(npos)) < 0.6, vocab.DEPRESSION_SCREEN_CODES["not_screened"],
                      vocab.DEPRESSION_SCREEN_CODES["positive_no_plan"]).astype(object)
    frames.append(_screens(ctx, pop, rng, npos, visit_day[npos], ncodes))
    members = truth_rows(pop, age0 >= 12, row, {
        "age_at_start": age0, "outpatient_visit": has_visit, "eligible": eligible, "died": died,
        "prior_depression": prior_depression, "excluded": excluded, "denominator": denominator, "screened": screened,
        "numerator": denominator & screened,
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": 12, "age_as_of": f"{my}-01-01", "rows": {"12-17": [12, 17], "18+": [18, None]},
        "denominator_event": {"outpatient_encounter": list(vocab.OUTPATIENT_ENCOUNTER_CODES), "during": f"{my}"},
        "numerator": {"codes": [vocab.DEPRESSION_SCREEN_CODES["negative"], vocab.DEPRESSION_SCREEN_CODES["positive_with_plan"]],
                      "during": f"{my}"},
        "not_counted": [vocab.DEPRESSION_SCREEN_CODES["not_screened"], vocab.DEPRESSION_SCREEN_CODES["positive_no_plan"]],
        "exclusions": {"death": f"by {my}-12-31",
                       "depression_or_bipolar_before": {"icd10cm": list(vocab.DX_FAMILIES["depression_or_bipolar"]),
                                                        "through": f"{my - 1}-12-31"}},
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, {"death": "died", "prior_depression": "prior_depression"},
                              rows=tuple(r[0] for r in ROWS))
