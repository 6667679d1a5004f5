"""Planted measure: potentially preventable admissions (PQI 90 composite), per 100,000 member-years.

Truth, per member aged 18+ on Dec 31 MY with at least one member month in MY (enrolled on the 15th):

* exposure: member-years = member months / 12 (the enrollment file counts, deaths do not end it);
* admissions: ``rate(stratum) x member-years / 100,000`` per stratum - the rate depends ONLY on the
  stratum. Fixed margin: each chunk's stratum gets exactly that many admissions (randomised rounding),
  spread over its members in proportion to their member months. Each admission is a planted stay (facility claim 111 + hospitalist claim) admitted in
  MY on a covered day at age 18+ (COPD 40+, asthma 18-39 for their principal diagnosis), with a PQI
  principal diagnosis (diabetes complications, COPD/asthma, hypertension, heart failure, pneumonia,
  UTI), never touching another stay of the member (a correct pipeline would merge touching stays).

Background utilisation never draws a stay with a PQI principal diagnosis in MY, so the planted stays
are the only PQI admissions in MY. The exact event count is read back from all records (stays merged
as a pipeline does) so that it equals what a correct pipeline finds. An admission that finds no free
day (months before the 18th birthday and enrolment months after a death are exposure without risk)
goes to another member of the stratum, so the realised rate equals the planted one up to rounding.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext
from .evidence import _matcher, member_months
from .forms import inpatient_stay
from .planted import (
    PlantResult,
    age_on,
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

MEASURE_ID = "PQI90"
NAME = "Potentially Preventable Admissions (PQI 90)"
PER = 100_000.0
# admissions per 100,000 member-years
RATES: dict[str, float] = by_stratum(1300.0, 2500.0, 1700.0, 800.0, 2700.0, 2100.0, 1300.0, 1600.0, 1500.0, 1300.0, 1500.0)
# (PQI family, principal diagnosis codes, DRG, weight, minimum age, maximum age)
CASES = (
    ("pneumonia", ("J189", "J159", "J181"), "194", 0.24, 18, 200),
    ("heart_failure", ("I5023", "I5033", "I509"), "291", 0.20, 18, 200),
    ("copd_asthma", ("J441", "J440", "J439"), "190", 0.16, 40, 200),
    ("uti", ("N390", "N10"), "690", 0.12, 18, 200),
    ("diabetes_short_term", ("E1110", "E1100"), "638", 0.06, 18, 200),
    ("diabetes_long_term", ("E1122", "E1140", "E1151"), "637", 0.06, 18, 200),
    ("uncontrolled_diabetes", ("E1165",), "638", 0.05, 18, 200),
    ("hypertension", ("I10", "I119"), "305", 0.05, 18, 200),
    ("asthma_young", ("J45901", "J4541"), "203", 0.06, 18, 39),
)
TRIES = 24


def is_pqi(principal: np.ndarray, age: np.ndarray) -> np.ndarray:
    """The generator's reading of the PQI 90 composite for (principal diagnosis, age at admission)."""
    out = np.zeros(len(principal), dtype=bool)
    for patterns, lo, hi in vocab.PQI_DX.values():
        match = _matcher(patterns)
        hit = np.array([c is not None and match(c) for c in principal], dtype=bool)
        out |= hit & (age >= lo) & (age <= hi)
    return out


def count_pqi(ev, lo: int, hi: int) -> np.ndarray:
    """PQI admissions in [lo, hi] per member, from every stay on record (merged as a pipeline merges)."""
    stays = ev.stays().filter(pl.col("admit").is_between(lo, hi))
    out = np.zeros(ev.pop.n, dtype=np.int64)
    if stays.height == 0:
        return out
    pos = stays["pos"].to_numpy()
    admit = stays["admit"].to_numpy()
    hit = is_pqi(stays["principal_dx"].to_numpy(), age_on(ev.pop.birth[pos], admit))
    np.add.at(out, pos[hit], 1)
    return out


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_pqi")
    n = pop.n
    months = member_months(pop, p)
    mm = months.sum(axis=1)
    adult = pop.age >= 18
    denominator = adult & (mm > 0)
    rate = stratum_rates(pop, RATES)
    group = stratum_index(pop)
    # fixed margin: each stratum gets round(rate x member-years / 100,000) admissions over its members
    k = allocate(rng, denominator, group, np.where(denominator, rate * mm / 12.0 / PER, 0.0), mm)
    # a member's r-th admission is placed in round r, so her stays can be kept apart: a stay may not touch
    # an existing stay or one placed before
    busy = ev.busy_days(margin=1)
    state = {"pos": busy["pos"].to_numpy(), "lo": busy["lo"].to_numpy(), "hi": busy["hi"].to_numpy()}
    w = np.array([c[3] for c in CASES])
    placed_pos, placed_day, placed_los, placed_case = [], [], [], []

    def place_round(cur: np.ndarray) -> np.ndarray:
        los = np.minimum(1 + rng.geometric(0.35, size=len(cur)), 12).astype(np.int32)

        def accept(idx, d):
            m = cur[idx]
            good = pop.covered(m, d) & pop.covered(m, d + los[idx]) & (age_on(pop.birth[m], d) >= 18) & ~ev.admission_blocked(m, d)
            return good & ~_overlaps(m, d, d + los[idx], state["pos"], state["lo"], state["hi"])

        day, ok = place_in_months(rng, months, cur, p, accept, tries=TRIES)
        m, day, los = cur[ok], day[ok], los[ok]
        age = age_on(pop.birth[m], day)
        allowed = np.stack([(age >= c[4]) & (age <= c[5]) for c in CASES], axis=1) * w
        cum = np.cumsum(allowed / allowed.sum(axis=1, keepdims=True), axis=1)
        case = np.minimum((cum < rng.random(len(m))[:, None]).sum(axis=1), len(CASES) - 1)
        placed_pos.append(m)
        placed_day.append(day)
        placed_los.append(los)
        placed_case.append(case)
        state["pos"] = np.concatenate([state["pos"], m])
        state["lo"] = np.concatenate([state["lo"], day - 1])
        state["hi"] = np.concatenate([state["hi"], day + los + 1])
        return ok

    place_counts(rng, k, group, mm, place_round)
    frames: list = []
    if placed_pos and sum(len(x) for x in placed_pos):
        pos = np.concatenate(placed_pos)
        adm = np.concatenate(placed_day)
        los = np.concatenate(placed_los)
        case = np.concatenate(placed_case)
        principal = np.array([CASES[c][1][j % len(CASES[c][1])] for c, j in zip(case, rng.integers(0, 3, len(case)))], dtype=object)
        drg = np.array([CASES[c][2] for c in case], dtype=object)
        vocab_arr = np.array([None, *DX_VOCAB], dtype=object)
        sec = vocab_arr[pop.problem_list[pos, 0] + 1]
        sec2 = vocab_arr[pop.problem_list[pos, 1] + 1]
        status = np.where(rng.random(len(pos)) < 0.8, "01", "06")
        frames += inpatient_stay(ctx, pop, providers, rng, pos, adm, los, drg, dx=[principal, sec, sec2], discharge_status=status)
    events = count_pqi(ev.preview(frames), p.my_start, p.my_end)
    members = event_truth_rows(pop, adult, {
        "age": pop.age, "member_months": mm, "denominator": denominator, "exposure": mm / 12.0,
        "planted_admissions": placed_counts(placed_pos, n), "events": events,
    }, denominator, rate)
    return PlantResult(medical_lines=frames, members=members)


def _overlaps(m, lo, hi, bpos, blo, bhi) -> np.ndarray:
    """Whether [lo, hi] of member m intersects any busy interval of the same member."""
    if len(bpos) == 0 or len(m) == 0:
        return np.zeros(len(m), dtype=bool)
    order = np.argsort(bpos, kind="stable")
    bpos, blo, bhi = bpos[order], blo[order], bhi[order]
    start = np.searchsorted(bpos, m, side="left")
    stop = np.searchsorted(bpos, m, side="right")
    out = np.zeros(len(m), dtype=bool)
    maxk = int((stop - start).max()) if len(m) else 0
    for j in range(maxk):
        idx = start + j
        valid = idx < stop
        i = np.where(valid, idx, 0)
        out |= valid & (blo[i] <= hi) & (bhi[i] >= lo)
    return out


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": 18, "age_as_of": f"{my}-12-31", "exposure": "member months (enrolled on the 15th) / 12",
        "admissions": {"admitted": f"during {my}", "principal_diagnosis": {k: list(v[0]) for k, v in vocab.PQI_DX.items()},
                       "age_at_admission": {k: [v[1], v[2]] for k, v in vocab.PQI_DX.items()},
                       "stays": "type of bill 11x; stays that overlap or touch are merged, keeping the first principal diagnosis"},
        "planted_cases": {c[0]: {"codes": list(c[1]), "drg": c[2], "weight": c[3]} for c in CASES},
    }
    return event_rate_summary(MEASURE_ID, NAME, members, RATES, PER, "member_years", definition)
