"""Planted measure: Screening for Social Drivers of Health (SDOH_SCREEN), stratified by race/ethnicity.

Truth, per member of the chunk aged 18+ on Dec 31 MY:

* eligible: at least one outpatient visit in MY (read from every claim produced before);
* excluded: death by Dec 31 MY;
* screened: Bernoulli with a probability that depends ONLY on the stratum -> a complete AHC HRSN
  screening in MY covering all five core domains (housing 71802-3, food 88122-7 / 88123-5,
  transportation 93030-5, utilities 96779-4, interpersonal safety 95618-5 / 95617-7 / 95616-9 /
  95615-1), on the day of one of the member's visits, answered from the member's social needs
  (``Population.sdoh_need``, which depends only on the stratum: the truth of SDOH_POSITIVE).

Background screenings (AHC HRSN / PRAPARE in MY-1 and MY) never ask the interpersonal-safety items,
so only these complete screenings cover all five domains. Traps: complete screenings in MY-1 for some
unscreened members, and MY screenings where the member declined every safety item (``ASKU``: the domain
is not screened). Adults without a visit also get complete screenings in the community at a low rate
(outside this denominator; they count for SDOH_POSITIVE).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext, dates_to_str, str_series
from .planted import PlantResult, by_stratum, died_by, proportion_summary, quota, stratum_index, stratum_rates
from .planting import members_with, on_covered_days, one_visit_day, truth_rows
from .population import Population
from .providers import Providers

MEASURE_ID = "SDOH_SCREEN"
NAME = "Screening for Social Drivers of Health"
RATES: dict[str, float] = by_stratum(0.30, 0.38, 0.35, 0.25, 0.41, 0.34, 0.27, 0.32, 0.31, 0.22, 0.24)
COMMUNITY_SHARE = 0.05      # adults without a visit screened completely in the community
PRIOR_YEAR_SHARE = 0.15     # unscreened members with a complete screening in MY-1
DECLINED_SAFETY_SHARE = 0.10  # unscreened members with an MY screening whose safety items were all declined
# AHC HRSN answers (need -> positive answer choices, no need -> negative)
_AHC = {
    "housing": ("71802-3", ("LA31994-9", "LA31995-6"), ("LA31993-1",)),
    "food": (("88122-7", "88123-5"), ("LA28397-0", "LA6729-3"), ("LA28398-8",)),
    "transportation": ("93030-5", ("LA33-6",), ("LA32-8",)),
    "utilities": ("96779-4", ("LA33-6", "LA32002-0"), ("LA32-8",)),
}


def safety_scores(rng, need: np.ndarray) -> np.ndarray:
    """(n, 4) scores 1..5 of the four safety items: sum > 10 exactly when ``need``."""
    n = len(need)
    low = rng.choice([1, 1, 1, 2, 2, 3], size=(n, 4))
    low = np.where(low.sum(axis=1, keepdims=True) > vocab.AHC_SAFETY_THRESHOLD, 1, low)
    high = rng.integers(2, 6, size=(n, 4))
    short = vocab.AHC_SAFETY_THRESHOLD + 1 - high.sum(axis=1)
    high[:, 0] = np.where(short > 0, np.minimum(high[:, 0] + short, 5), high[:, 0])
    high = np.where(high.sum(axis=1, keepdims=True) > vocab.AHC_SAFETY_THRESHOLD, high, 4)
    return np.where(need[:, None], high, low)


def screenings(ctx: ChunkContext, pop: Population, providers: Providers, rng, pos: np.ndarray, dates: np.ndarray,
               setting: np.ndarray, safety_declined: np.ndarray | None = None) -> pl.DataFrame | None:
    """Complete AHC HRSN screenings (one row per question) answered from ``pop.sdoh_need``."""
    n = len(pos)
    if n == 0:
        return None
    keys = ctx.screening_keys(n)
    need = pop.sdoh_need[pos]
    dom = {d: j for j, d in enumerate(vocab.SDOH_DOMAINS)}
    rows_q, rows_a, rows_i = [], [], []
    for domain, (questions, yes, no) in _AHC.items():
        qs = questions if isinstance(questions, tuple) else (questions,)
        has = need[:, dom[domain]]
        for qi, q in enumerate(qs):
            ans = np.where(has, np.array(yes, dtype=object)[rng.integers(0, len(yes), n)],
                           np.array(no, dtype=object)[rng.integers(0, len(no), n)])
            if domain == "food" and qi == 1:  # a need shows on at least one of the two food items
                ans = np.where(has & (rng.random(n) < 0.3), "LA28398-8", ans)
            rows_i.append(np.arange(n))
            rows_q.append(np.full(n, q, dtype=object))
            rows_a.append(ans)
    scores = safety_scores(rng, need[:, dom["interpersonal_safety"]])
    answers = np.array(vocab.AHC_SAFETY_ANSWERS, dtype=object)
    declined = np.zeros(n, dtype=bool) if safety_declined is None else safety_declined
    for j, q in enumerate(vocab.AHC_SAFETY_QUESTIONS):
        rows_i.append(np.arange(n))
        rows_q.append(np.full(n, q, dtype=object))
        rows_a.append(np.where(declined, "ASKU", answers[scores[:, j] - 1]))
    i = np.concatenate(rows_i)
    fqhc = providers.roles["fqhc"]
    hosp = providers.roles["hospital"]
    ccn = np.where(setting == "community", None,
                   np.where(rng.random(n) < 0.5, fqhc.ccns[fqhc.positions(pop.county[pos], rng)],
                            hosp.ccns[hosp.positions(pop.county[pos], rng)]))
    df = pl.DataFrame({
        "member_id": pop.member_id[pos][i], "_key": keys[i], "screening_date": np.asarray(dates, dtype=np.int32)[i],
        "question_code": np.concatenate(rows_q).astype(str), "answer_code": np.concatenate(rows_a).astype(str),
        "setting": np.asarray(setting).astype(str)[i],
    }).with_columns(str_series("facility_ccn", ccn[i]))
    return df.with_columns(
        ("S" + pl.lit(f"{ctx.chunk_index:04d}") + pl.col("_key").cast(pl.String).str.zfill(8)).alias("screening_id"),
        pl.lit("ahc_hrsn").alias("instrument"), pl.lit(None, dtype=pl.String).alias("answer_value"),
        dates_to_str("screening_date"),
    ).select("member_id", "screening_id", "screening_date", "instrument", "question_code", "answer_code",
             "answer_value", "setting", "facility_ccn")


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_sdoh")
    n = pop.n
    adult = pop.age >= 18
    visits = ev.line_days("outpatient_encounter", p.my_start, p.my_end)
    has_visit = members_with(visits["pos"].to_numpy(), n)
    eligible = adult & has_visit
    rate = stratum_rates(pop, RATES)
    died = eligible & died_by(pop, p.my_end)
    excluded = eligible & died
    denominator = eligible & ~excluded
    # fixed margin per stratum, spread evenly over the members' need patterns (so the screened members'
    # needs mirror the stratum's: the SDOH_POSITIVE truth); excluded members are screened at random
    pattern = pop.sdoh_need @ (1 << np.arange(len(vocab.SDOH_DOMAINS)))
    sidx = stratum_index(pop)
    want = quota(rng, denominator, sidx, rate, balance=pattern) | (excluded & (rng.random(n) < rate))
    visit_day = one_visit_day(rng, visits, eligible)
    spos = np.nonzero(want)[0]
    out = [screenings(ctx, pop, providers, rng, spos, visit_day[spos], np.full(len(spos), "outpatient"))]
    screened = want.copy()
    # community screenings of adults without a visit (outside this denominator)
    cpos = np.nonzero(quota(rng, adult & ~has_visit, sidx, np.full(n, COMMUNITY_SHARE), balance=pattern))[0]
    cpos, dc = on_covered_days(rng, pop, cpos, p.my_start, p.my_end)
    out.append(screenings(ctx, pop, providers, rng, cpos, dc, np.full(len(cpos), "community")))
    # traps
    unscreened = np.nonzero(eligible & ~want)[0]
    prior = unscreened[rng.random(len(unscreened)) < PRIOR_YEAR_SHARE]
    prior, dp = on_covered_days(rng, pop, prior, p.my_start - 365, p.my_start - 1)
    out.append(screenings(ctx, pop, providers, rng, prior, dp, np.full(len(prior), "outpatient")))
    dec = unscreened[rng.random(len(unscreened)) < DECLINED_SAFETY_SHARE]
    out.append(screenings(ctx, pop, providers, rng, dec, visit_day[dec], np.full(len(dec), "outpatient"),
                          safety_declined=np.ones(len(dec), dtype=bool)))
    members = truth_rows(pop, adult, "all", {
        "age": pop.age, "outpatient_visit": has_visit, "eligible": eligible, "died": died, "excluded": excluded,
        "denominator": denominator, "screened": screened, "numerator": denominator & screened,
    }, denominator, rate)
    return PlantResult(members=members, screenings=[f for f in out if f is not None])


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": 18, "age_as_of": f"{my}-12-31",
        "denominator_event": {"outpatient_encounter": list(vocab.OUTPATIENT_ENCOUNTER_CODES), "during": f"{my}"},
        "numerator": {"all_domains_screened": list(vocab.SDOH_DOMAINS), "instrument": "ahc_hrsn", "during": f"{my}",
                      "screened": "at least one question of the domain answered (ASKU = declined, not screened)"},
        "exclusions": {"death": f"by {my}-12-31"},
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, {"death": "died"})
