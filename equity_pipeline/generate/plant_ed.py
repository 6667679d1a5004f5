"""Planted measure: emergency department visits per 1,000 member months (ED_VISITS).

Truth, per member with at least one member month in MY (enrolled on the 15th; any age):

* exposure: member months;
* visits: ``rate(stratum) x member months / 1,000`` per stratum - the rate depends ONLY on the stratum.
  Fixed margin: each chunk's stratum gets exactly that many visits (randomised rounding), spread over
  its members in proportion to their member months (so the member counts are Poisson-like). Each visit is a facility claim (type of bill 131: revenue 0450 with CPT 99283-99285, plus
  lab/imaging/drug lines) and an ED physician claim (POS 23) on a covered day of a counted month, on a
  day without another visit of the member, and never the day of or the day before an admission (a
  visit that results in an admission is not an ED visit).

Background utilisation draws no ED visit in MY, so the planted visits are the only ED visits in MY
(stays placed earlier, PQI90 among them, are avoided; no later module adds stays or ED lines). The exact
count is read back from all records with the rule a correct pipeline applies. A visit that finds no free
covered day (enrolment months after a death are exposure without risk) goes to another member of the
stratum, so the realised rate equals the planted one up to rounding.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext
from .evidence import member_months
from .forms import compact, outpatient_facility, professional
from .planted import (
    PlantResult,
    allocate,
    by_stratum,
    event_rate_summary,
    place_counts,
    place_in_months,
    stratum_index,
    stratum_rates,
)
from .planting import event_truth_rows, placed_counts
from .population import DX_VOCAB, Population
from .providers import Providers

MEASURE_ID = "ED_VISITS"
NAME = "Emergency Department Visits per 1,000 Member Months"
PER = 1000.0
# visits per 1,000 member months
RATES: dict[str, float] = by_stratum(34.0, 58.0, 43.0, 22.0, 62.0, 49.0, 35.0, 45.0, 40.0, 36.0, 41.0)
TRIES = 24
KEY = 1 << 20  # (member position, day number) -> one int64


def _visits(ctx, pop, providers, rng, pos, dates) -> list[pl.DataFrame]:
    n = len(pos)
    if n == 0:
        return []
    em = rng.choice(len(vocab.ED_FACILITY_EM), size=n, p=[x[2] for x in vocab.ED_FACILITY_EM])
    em_code = np.array([x[1] for x in vocab.ED_FACILITY_EM], dtype=object)[em]
    em_price = np.array([x[3] for x in vocab.ED_FACILITY_EM], dtype=float)[em]
    rev, codes, prices = ["0450"], [em_code], [em_price]
    for r, c, prob, price in vocab.ED_FACILITY_EXTRA:
        has = rng.random(n) < prob
        rev.append(np.where(has, r, None))
        codes.append(np.where(has, c or None, None))
        prices.append(float(price))
    dx_codes = np.array([c for c, _ in vocab.ED_DX], dtype=object)
    w = np.array([x[1] for x in vocab.ED_DX])
    primary = dx_codes[rng.choice(len(dx_codes), size=n, p=w / w.sum())]
    vocab_arr = np.array([None, *DX_VOCAB], dtype=object)
    second = vocab_arr[pop.problem_list[pos, 0] + 1]
    facility = outpatient_facility(ctx, pop, providers, rng, pos, dates, rev, codes, prices, dx=[primary, second])
    prof_i = rng.choice(len(vocab.ED_PROF), size=n, p=[x[1] for x in vocab.ED_PROF])
    physician = professional(ctx, pop, rng, pos, dates, [np.array([x[0] for x in vocab.ED_PROF], dtype=object)[prof_i]],
                             [np.array([x[2] for x in vocab.ED_PROF], dtype=float)[prof_i]],
                             providers.roles["ed_group"].pick(pop.county[pos], rng), place="23", dx=[primary, second])
    return compact([facility, physician])


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_ed")
    n = pop.n
    months = member_months(pop, p)
    mm = months.sum(axis=1)
    denominator = mm > 0
    rate = stratum_rates(pop, RATES)
    group = stratum_index(pop)
    # fixed margin: each stratum gets round(rate x member months / 1,000) visits, spread over its members
    k = allocate(rng, denominator, group, np.where(denominator, rate * mm / PER, 0.0), mm)
    # days a visit may not fall on: an admission that day or the next, or an ED line already on record
    stays = ev.stays()
    taken = pl.concat([
        stays.select("pos", pl.col("admit").cast(pl.Int64).alias("day")),
        stays.select("pos", (pl.col("admit") - 1).cast(pl.Int64).alias("day")),
        ev.line_days("ed").select("pos", pl.col("day").cast(pl.Int64)),
    ]).filter(pl.col("day").is_between(p.my_start, p.my_end))
    blocked = [(taken["pos"] * KEY + taken["day"]).to_numpy()]
    placed_pos, placed_day = [], []

    def place_round(cur: np.ndarray) -> np.ndarray:
        done = np.unique(np.concatenate(blocked))

        def accept(idx, d):
            m = cur[idx]
            key = m.astype(np.int64) * KEY + d
            i = np.minimum(np.searchsorted(done, key), max(len(done) - 1, 0))
            seen = (done[i] == key) if len(done) else np.zeros(len(key), dtype=bool)
            return pop.covered(m, d) & ~seen

        day, ok = place_in_months(rng, months, cur, p, accept, tries=TRIES)
        blocked.append(cur[ok].astype(np.int64) * KEY + day[ok])
        placed_pos.append(cur[ok])
        placed_day.append(day[ok])
        return ok

    place_counts(rng, k, group, mm, place_round)
    frames: list = []
    if placed_pos and sum(len(x) for x in placed_pos):
        frames = _visits(ctx, pop, providers, rng, np.concatenate(placed_pos), np.concatenate(placed_day))
    visits = ev.preview(frames).ed_visits(p.my_start, p.my_end)
    events = np.zeros(n, dtype=np.int64)
    if visits.height:
        np.add.at(events, visits["pos"].to_numpy(), 1)
    members = event_truth_rows(pop, None, {
        "age": pop.age, "member_months": mm, "denominator": denominator, "exposure": mm.astype(np.float64),
        "planted_visits": placed_counts(placed_pos, n), "events": events,
    }, denominator, rate)
    return PlantResult(medical_lines=frames, members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "population": "members with at least one member month in MY (any age)",
        "exposure": "member months (enrolled on the 15th of the month, any payer, counted once)",
        "visit": "a line with revenue 045x/0981, POS 23 or CPT 99281-99285; one per member per day; not counted "
                 "when a stay is admitted the same or the next day",
        "during": f"{my}",
    }
    return event_rate_summary(MEASURE_ID, NAME, members, RATES, PER, "member_months", definition)
