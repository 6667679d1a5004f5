"""Planted measure: Well-Child Visits in the First 30 Months of Life (W30), by cohort row and stratum.

Every well-child visit of a member aged 3 or younger on Dec 31 MY comes from this module (background
utilisation draws none), except WCV's visits in MY of 3-year-olds, which are read back.

Truth, per child (age in completed months on Dec 31 MY; month birthdays clamped to the month's end):

* row ``first_15_months``: 15-26 months (the 15-month birthday falls in MY), continuously enrolled
  from 31 days of age to the 15-month birthday (one gap of at most 45 days, enrolled on the birthday);
  numerator: six or more well-child visits on distinct dates from birth through the 15-month birthday;
* row ``months_15_30``: 30-41 months, continuously enrolled from the day after the 15-month birthday
  to the 30-month birthday; numerator: two or more visits in that window;
* excluded: death by Dec 31 MY, hospice in MY;
* met: with a probability that depends ONLY on the row and the stratum (fixed margins) -> visits at
  the schedule ages (3-5 days, 1, 2, 4, 6, 9, 12, 15 / 18, 24, 30 months, +-10 days inside the
  window): 6-8 (resp. 2-3) when met, 2-5 (resp. 0-1, WCV's visit included) when not. Visits are CPT
  99381/99391 under one year, 99382/99392 from one, with Z00110/Z00111 (newborn) or Z00129/Z00121.

Routine visits at the other schedule ages (outside the child's own window) and of children in neither
cohort make the history realistic; traps: a visit a few days after the window of children who did not
meet the row (it must not count). Children aged 3 get no visit in MY from here (WCV owns those).
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
    add_months,
    age_in_months,
    by_stratum,
    death_and_hospice_definition,
    proportion_summary,
)
from .planting import death_and_hospice, fixed_margin_hits, rows_by_mask, truth_rows
from .population import MEDICAID, Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "W30"
NAME = "Well-Child Visits in the First 30 Months of Life"
ROWS = (("first_15_months", 15, 26, 6), ("months_15_30", 30, 41, 2))
RATES: dict[str, dict[str, float]] = {
    "first_15_months": by_stratum(0.66, 0.52, 0.57, 0.68, 0.45, 0.50, 0.60, 0.58, 0.56, 0.60, 0.52),
    "months_15_30": by_stratum(0.74, 0.63, 0.68, 0.76, 0.56, 0.60, 0.70, 0.68, 0.66, 0.70, 0.62),
}
# schedule points (months, days) of each window
FIRST_POINTS = ((0, 4), (1, 0), (2, 0), (4, 0), (6, 0), (9, 0), (12, 0), (15, 0))
SECOND_POINTS = ((18, 0), (24, 0), (30, 0))
ROUTINE_SHARE = 0.7
TRAP_SHARE = 0.3
JITTER = 10


def _visits(ctx, pop, rng, pos, dates) -> pl.DataFrame | None:
    n = len(pos)
    if n == 0:
        return None
    age_days = dates - pop.birth[pos]
    infant = age_days < 365
    new = rng.random(n) < 0.05
    code = np.where(infant, np.where(new, "99381", "99391"), np.where(new, "99382", "99392")).astype(object)
    dx = np.where(age_days < 8, "Z00110", np.where(age_days <= 28, "Z00111", np.where(rng.random(n) < 0.9, "Z00129", "Z00121")))
    epsdt = np.where((pop.payer_at(pos, dates) == MEDICAID) & (rng.random(n) < 0.3), "S0302", None)
    dev = np.where(rng.random(n) < 0.3, "96110", None)
    return professional(ctx, pop, rng, pos, dates, [code, epsdt, dev], [np.where(infant, 10500.0, 11200.0), 0.0, 900.0],
                        pop.pcp[pos], dx=[dx.astype(object)])


def _place(rng, pop, pos, need, points, lo, hi, not_in_my, my_start) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``need`` visits per child at distinct schedule points, each a covered day in [lo, hi]
    (children in ``not_in_my`` only before MY). Returns (positions, dates) of the visits placed."""
    out_p, out_d = [np.array([], dtype=np.int64)], [np.array([], dtype=np.int32)]
    need = need.copy()
    order = np.argsort(rng.random((len(pos), len(points))), axis=1)
    months = np.array([pt[0] for pt in points])
    days = np.array([pt[1] for pt in points])
    for r in range(len(points)):
        todo = np.nonzero(need > 0)[0]
        if len(todo) == 0:
            break
        pt = order[todo, r]
        base = add_months(pop.birth[pos[todo]], months[pt]) + days[pt]
        d = np.clip(base + rng.integers(-JITTER, JITTER + 1, size=len(todo)), lo[todo], hi[todo]).astype(np.int32)
        ok = pop.covered(pos[todo], d) & ~(not_in_my[todo] & (d >= my_start))
        out_p.append(pos[todo[ok]])
        out_d.append(d[ok])
        need[todo[ok]] -= 1
    return np.concatenate(out_p), np.concatenate(out_d)


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_w30")
    n = pop.n
    young = pop.age <= vocab.W30_MAX_AGE
    age_m = age_in_months(pop.birth, np.full(n, p.my_end))
    b15 = add_months(pop.birth, 15)
    b30 = add_months(pop.birth, 30)
    row, rate, group = rows_by_mask(pop, RATES, [(label, young & (age_m >= lo) & (age_m <= hi)) for label, lo, hi, _ in ROWS])
    ce1 = continuous_enrollment(pop.seg_start, pop.seg_end, pop.birth + 31, b15, 45, 1)
    ce2 = continuous_enrollment(pop.seg_start, pop.seg_end, b15 + 1, b30, 45, 1)
    ce = np.where(row == "first_15_months", ce1, (row == "months_15_30") & ce2)
    in_row = row != ""
    eligible = in_row & ce
    died, hospice = death_and_hospice(ctx, pop, eligible)
    met = fixed_margin_hits(rng, eligible, died | hospice, group, rate)
    first = eligible & (row == "first_15_months")
    second = eligible & (row == "months_15_30")
    not_in_my = pop.age >= vocab.WCV_AGE[0]  # 3-year-olds: their visits in MY belong to WCV

    # each child's own window, and the visits already on record in it (WCV's visits in MY of 3-year-olds)
    lo = np.where(row == "first_15_months", pop.birth, b15 + 1).astype(np.int64)
    hi = np.where(row == "first_15_months", b15, b30).astype(np.int64)
    wc = pl.concat([ev.line_days("well_care"), ev.dx_days("well_care")]).unique()
    wc = wc.filter(pl.Series(in_row[wc["pos"].to_numpy()])) if wc.height else wc
    wc = wc.filter((pl.col("day") >= pl.Series(lo[wc["pos"].to_numpy()])) & (pl.col("day") <= pl.Series(hi[wc["pos"].to_numpy()])))
    existing = np.bincount(wc["pos"].to_numpy(), minlength=n) if wc.height else np.zeros(n, dtype=np.int64)

    pos_all, day_all = [], []
    # ---- controlled windows
    fpos = np.nonzero(first)[0]
    want = np.where(met[fpos], rng.integers(6, 9, len(fpos)), rng.integers(2, 6, len(fpos)))
    need = np.maximum(want - existing[fpos], 0)
    pp, dd = _place(rng, pop, fpos, need, FIRST_POINTS, lo[fpos], hi[fpos], not_in_my[fpos], p.my_start)
    pos_all.append(pp)
    day_all.append(dd)
    spos = np.nonzero(second)[0]
    want = np.where(met[spos], rng.integers(2, 4, len(spos)), np.where(rng.random(len(spos)) < 0.5, 1, 0))
    need = np.maximum(want - existing[spos], 0)
    need = np.where(~met[spos] & (existing[spos] >= 1), 0, need)
    pp, dd = _place(rng, pop, spos, need, SECOND_POINTS, lo[spos], hi[spos], not_in_my[spos], p.my_start)
    pos_all.append(pp)
    day_all.append(dd)

    # ---- routine visits outside the controlled windows (and of children in neither cohort)
    ypos = np.nonzero(young)[0]
    for points, lo_all, hi_all, controlled in ((FIRST_POINTS, pop.birth, b15, first), (SECOND_POINTS, b15 + 1, b30, second)):
        cand = ypos[~controlled[ypos]]
        for pt in points:
            c = cand[rng.random(len(cand)) < ROUTINE_SHARE]
            base = add_months(pop.birth[c], pt[0]) + pt[1]
            d = np.clip(base + rng.integers(-JITTER, JITTER + 1, len(c)), lo_all[c], hi_all[c]).astype(np.int32)
            ok = (d >= p.window_start) & (d <= p.my_end) & pop.covered(c, d) & ~(not_in_my[c] & (d >= p.my_start))
            pos_all.append(c[ok])
            day_all.append(d[ok])
    # ---- traps: a visit just after the window of children who did not meet their row
    for mask, end in ((first & ~met, b15), (second & ~met, b30)):
        tpos = np.nonzero(mask & (rng.random(n) < TRAP_SHARE))[0]
        d = (end[tpos] + rng.integers(1, 21, len(tpos))).astype(np.int32)
        ok = (d <= p.my_end) & pop.covered(tpos, d) & ~(not_in_my[tpos] & (d >= p.my_start))
        pos_all.append(tpos[ok])
        day_all.append(d[ok])
    vp = np.concatenate(pos_all)
    vd = np.concatenate(day_all)
    # one visit per child and day
    key = np.unique(vp.astype(np.int64) * (1 << 20) + vd)
    vp, vd = (key >> 20).astype(np.int64), (key & ((1 << 20) - 1)).astype(np.int32)
    frames = [_visits(ctx, pop, rng, vp, vd)]

    # ---- truth from the visits (and WCV's) in each child's window
    mine = in_row[vp] & (vd >= lo[vp]) & (vd <= hi[vp])
    dates = np.unique(np.concatenate([vp[mine].astype(np.int64) * (1 << 20) + vd[mine],
                                      wc["pos"].to_numpy().astype(np.int64) * (1 << 20) + wc["day"].to_numpy()]))
    count = np.bincount((dates >> 20).astype(np.int64), minlength=n)
    threshold = np.where(row == "first_15_months", 6, 2)
    numerator_hit = count >= threshold
    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    members = truth_rows(pop, in_row, row, {
        "age_months": age_m, "continuously_enrolled": ce, "eligible": eligible, "died": died, "hospice": hospice,
        "excluded": excluded, "denominator": denominator, "visits_in_window": count, "numerator": denominator & numerator_hit,
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_as_of": f"{my}-12-31", "age_unit": "completed months (month birthdays clamped to the month's end)",
        "rows": {"first_15_months": {"age_months": [15, 26], "window": "birth .. 15-month birthday", "visits_min": 6,
                                     "continuous_enrollment": "31 days .. 15-month birthday, one gap <= 45 days"},
                 "months_15_30": {"age_months": [30, 41], "window": "day after the 15-month birthday .. 30-month birthday",
                                  "visits_min": 2, "continuous_enrollment": "window, one gap <= 45 days"}},
        "visit_codes": {"cpt": ["99381", "99382", "99391", "99392"], "icd10cm": ["Z00110", "Z00111", "Z00121", "Z00129"],
                        "hcpcs": ["S0302"]},
        "exclusions": death_and_hospice_definition(my),
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, DEATH_AND_HOSPICE, rows=tuple(r[0] for r in ROWS))
