"""Planted measure: Initiation and Engagement of SUD Treatment (IET), rows initiation and engagement.

Every substance use disorder (SUD) diagnosis (F10-F16, F18, F19) and SUD service or medication code
comes from this module: background utilisation draws none (no detoxification stays either).

Truth, per member with a planted new SUD episode:

* index episode: an office visit (99213/99214) or an inpatient detoxification stay (DRG 896/897)
  with an SUD diagnosis on a covered day from Jan 1 through Nov 14 MY, nothing SUD-related in the 194
  days before; eligible when aged 13+ on that day and continuously enrolled from 194 days before to
  47 days after it with no gap;
* excluded: death by Dec 31 MY, hospice in MY;
* initiation (row ``initiation``): with a probability that depends ONLY on the stratum (fixed margins):
  the detoxification stay itself, or SUD treatment 1-13 days after the episode - a visit with an SUD
  diagnosis (office 99213 / telehealth POS 10 / psychotherapy 90834), an SUD service (H0001, H0005,
  H0015) or a medication (H0020 methadone, J0572 buprenorphine, J2315 naltrexone);
* engagement (row ``engagement`` and the whole-measure row): initiated, then two or three more
  treatment days, or one long-acting injection (J2315, Q9992), 1-34 days after the initiation; the
  initiated members who do not engage get at most one more treatment day.

Traps: members whose first MY diagnosis follows one 100-190 days earlier (in MY-1) have no new episode;
members who do not initiate may get treatment 14-20 days after the episode (too late). SUD diagnoses
fall only on episode and treatment days, and those days are registered so that no later module admits
a stay on them (an admission on a day with an SUD diagnosis is inpatient SUD treatment).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .context import ChunkContext
from .forms import compact, inpatient_stay, professional
from .plant_pqi import _overlaps
from .planted import (
    ALL,
    DEATH_AND_HOSPICE,
    PlantResult,
    age_on,
    by_stratum,
    death_and_hospice_definition,
    proportion_summary,
    quota,
    sample_days,
    stratum_index,
    stratum_rates,
)
from .planting import death_and_hospice, outcome_truth_rows
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "IET"
NAME = "Initiation and Engagement of Substance Use Disorder Treatment"
ENGAGEMENT = by_stratum(0.16, 0.11, 0.12, 0.10, 0.14, 0.11, 0.12, 0.13, 0.12, 0.13, 0.12)
RATES: dict[str, dict[str, float]] = {
    ALL: ENGAGEMENT,
    "initiation": by_stratum(0.44, 0.37, 0.36, 0.33, 0.45, 0.37, 0.35, 0.40, 0.38, 0.40, 0.37),
    "engagement": ENGAGEMENT,
}
EPISODE_SHARE = ((13, 17, 0.012), (18, 64, 0.045), (65, 200, 0.015))  # members with a new SUD episode in MY
PRIOR_TRAP_SHARE = 0.004
INPATIENT_INDEX_SHARE = 0.15   # of initiating members: the episode is a detoxification stay
LATE_TRAP_SHARE = 0.25
SUD_DX = ("F1020", "F1120", "F1220", "F1420", "F1520", "F1920", "F10239", "F11230")
KEY = 1 << 20


def _dx(rng, n):
    return np.array(SUD_DX, dtype=object)[rng.integers(0, len(SUD_DX), n)]


def _treatments(ctx, pop, providers, rng, pos, days, kind: np.ndarray) -> list[pl.DataFrame]:
    """kind 0 office visit, 1 telehealth visit, 2 psychotherapy, 3 SUD service, 4 medication, 5 long-acting."""
    frames = []
    dx = _dx(rng, len(pos))
    specs = {
        0: (["99213"], [9200.0], "11", "pcp"), 1: (["99213"], [9200.0], "10", "pcp"), 2: (["90834"], [10200.0], "11", "specialist"),
        3: ([np.array(["H0001", "H0005", "H0015"], dtype=object)], [15000.0], "57", "specialist"),
        4: ([np.array(["H0020", "J0572", "J0572"], dtype=object)], [2500.0], "11", "specialist"),
        5: ([np.array(["J2315", "Q9992"], dtype=object)], [120000.0], "11", "specialist"),
    }
    for k, (codes, prices, place, role) in specs.items():
        sel = kind == k
        if not sel.any():
            continue
        p, d = pos[sel], days[sel]
        c = [x if isinstance(x, str) else x[rng.integers(0, len(x), len(p))] for x in codes]
        billing = pop.pcp[p] if role == "pcp" else providers.roles["specialist"].pick(pop.county[p], rng)
        frames.append(professional(ctx, pop, rng, p, d, c, prices, billing, place=place, dx=[dx[sel]]))
    return compact(frames)


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_iet")
    n = pop.n
    sidx = stratum_index(pop)
    share = np.zeros(n)
    for lo, hi, s in EPISODE_SHARE:
        share[(pop.age >= lo) & (pop.age <= hi)] = s
    u = rng.random((n, 2))
    episode = u[:, 0] < share
    intake_end = p.my_end - 47
    stays = ev.stays()
    admits = set((stays["pos"].to_numpy().astype(np.int64) * KEY + stays["admit"].to_numpy()).tolist())
    busy = ev.busy_days(margin=1)
    bpos, blo, bhi = busy["pos"].to_numpy(), busy["lo"].to_numpy(), busy["hi"].to_numpy()

    admit_keys = np.fromiter(admits, dtype=np.int64, count=len(admits))

    def free(pos, d):  # no admission on record that day
        return ~np.isin(pos.astype(np.int64) * KEY + d, admit_keys)

    epos = np.nonzero(episode)[0]
    d, ok = sample_days(rng, pop, epos, p.my_start, intake_end, accept=lambda i, dd: free(epos[i], dd))
    epos, d0 = epos[ok], d[ok].astype(np.int64)
    index = np.full(n, -1, dtype=np.int64)
    index[epos] = d0
    has = index >= 0
    ce = np.zeros(n, dtype=bool)
    ce[epos] = continuous_enrollment(pop.seg_start[epos], pop.seg_end[epos], d0 - 194, d0 + 47, 0, 0)
    age_ok = np.zeros(n, dtype=bool)
    age_ok[epos] = age_on(pop.birth[epos], d0) >= 13
    eligible = has & ce & age_ok
    died, hospice = death_and_hospice(ctx, pop, eligible)
    meant_excluded = died | hospice
    p_init = stratum_rates(pop, RATES["initiation"])
    p_eng = stratum_rates(pop, RATES["engagement"])
    init = quota(rng, eligible & ~meant_excluded, sidx, p_init) | (has & ~(eligible & ~meant_excluded) & (u[:, 1] < p_init))
    eng = quota(rng, init & eligible & ~meant_excluded, sidx, p_eng / p_init) | (init & ~(eligible & ~meant_excluded) & (u[:, 1] < p_eng))

    frames: list = []
    sud_days: list[np.ndarray] = []
    # ---- the episode: office visit, or (for some initiating members) a detoxification stay
    inpatient = init & has & (rng.random(n) < INPATIENT_INDEX_SHARE)
    ipos = np.nonzero(inpatient)[0]
    los = rng.integers(3, 6, len(ipos)).astype(np.int64)
    fits = pop.covered(ipos, index[ipos] + los) & ~_overlaps(ipos, index[ipos], index[ipos] + los, bpos, blo, bhi)
    inpatient[ipos[~fits]] = False
    ipos, los = ipos[fits], los[fits]
    stay = inpatient_stay(ctx, pop, providers, rng, ipos, index[ipos], los, np.where(rng.random(len(ipos)) < 0.5, "896", "897"),
                          dx=[np.array(["F10239", "F11230", "F1020"], dtype=object)[rng.integers(0, 3, len(ipos))]])
    # the attending's claim keeps only the admission-day visit: an SUD diagnosis on the discharge day
    # could become a treatment day if a later module put a visit there
    frames += [f.filter(pl.col("hcpcs_code").is_null() | (pl.col("hcpcs_code") != "99238")) for f in stay]
    opos = np.nonzero(has & ~inpatient)[0]
    frames.append(professional(ctx, pop, rng, opos, index[opos], [np.where(rng.random(len(opos)) < 0.6, "99213", "99214")],
                               [10000.0], pop.pcp[opos], dx=[_dx(rng, len(opos))]))
    sud_days.append(np.nonzero(has)[0].astype(np.int64) * KEY + index[has])

    # ---- initiation: the stay itself, or treatment 1-13 days after the episode
    initiation = np.full(n, -1, dtype=np.int64)
    initiation[ipos] = index[ipos]
    tpos = np.nonzero(init & has & ~inpatient)[0]
    td, tok = sample_days(rng, pop, tpos, index[tpos] + 1, index[tpos] + 13, accept=lambda i, dd: free(tpos[i], dd))
    tpos, td = tpos[tok], td[tok].astype(np.int64)
    kind = rng.choice(5, size=len(tpos), p=[0.35, 0.15, 0.1, 0.25, 0.15])
    frames += _treatments(ctx, pop, providers, rng, tpos, td, kind)
    initiation[tpos] = td
    sud_days.append(tpos * KEY + td)
    initiated = initiation >= 0

    # ---- engagement: 2-3 more treatment days (or one long-acting injection) within 34 days
    epos2 = np.nonzero(eng & initiated)[0]
    long_acting = rng.random(len(epos2)) < 0.2
    k = np.where(long_acting, 1, rng.integers(2, 4, len(epos2)))
    nein = np.nonzero(initiated & ~eng)[0]
    k2 = (rng.random(len(nein)) < 0.5).astype(np.int64)  # at most one more day: not engaged
    extra_pos = np.concatenate([epos2, nein])
    extra_k = np.concatenate([k, k2])
    extra_la = np.concatenate([long_acting, np.zeros(len(nein), dtype=bool)])
    engaged_days = np.zeros(n, dtype=np.int64)
    la_given = np.zeros(n, dtype=bool)
    taken = set()
    for r in range(int(extra_k.max()) if len(extra_k) else 0):
        sel = np.nonzero(extra_k > r)[0]
        m = extra_pos[sel]

        def accept(i, dd, m=m):
            keys = m[i].astype(np.int64) * KEY + dd
            return free(m[i], dd) & np.array([kk not in taken for kk in keys.tolist()], dtype=bool)

        dd, okd = sample_days(rng, pop, m, initiation[m] + 1, initiation[m] + 34, accept=accept)
        m2, dd2, la = m[okd], dd[okd].astype(np.int64), extra_la[sel][okd]
        kind = np.where(la, 5, rng.choice(4, size=len(m2), p=[0.4, 0.2, 0.15, 0.25]))
        frames += _treatments(ctx, pop, providers, rng, m2, dd2, kind)
        taken.update((m2 * KEY + dd2).tolist())
        sud_days.append(m2 * KEY + dd2)
        np.add.at(engaged_days, m2, 1)
        la_given[m2[la]] = True
    engaged = initiated & ((engaged_days >= 2) | la_given)

    # ---- traps
    late = np.nonzero(has & ~initiated & (rng.random(n) < LATE_TRAP_SHARE))[0]
    ld, lok = sample_days(rng, pop, late, index[late] + 14, np.minimum(index[late] + 20, p.my_end),
                          accept=lambda i, dd: free(late[i], dd))
    late, ld = late[lok], ld[lok].astype(np.int64)
    frames += _treatments(ctx, pop, providers, rng, late, ld, np.zeros(len(late), dtype=np.int64))
    sud_days.append(late * KEY + ld)
    prior = np.nonzero(~episode & (pop.age >= 19) & (u[:, 1] < PRIOR_TRAP_SHARE))[0]
    d1, ok1 = sample_days(rng, pop, prior, p.my_start - 92, p.my_start - 1, accept=lambda i, dd: free(prior[i], dd))
    prior, d1 = prior[ok1], d1[ok1].astype(np.int64)
    d2, ok2 = sample_days(rng, pop, prior, np.maximum(d1 + 100, p.my_start), np.minimum(d1 + 190, intake_end),
                          accept=lambda i, dd: free(prior[i], dd))
    for pp, dd in ((prior, d1), (prior[ok2], d2[ok2].astype(np.int64))):
        frames.append(professional(ctx, pop, rng, pp, dd, ["99213"], [9200.0], pop.pcp[pp], dx=[_dx(rng, len(pp))]))
        sud_days.append(pp.astype(np.int64) * KEY + dd)
    ev.no_admission.append(np.unique(np.concatenate(sud_days)))

    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    members = outcome_truth_rows(pop, np.nonzero(has)[0], {
        "episode_day": index, "continuously_enrolled": ce, "eligible": eligible, "died": died, "hospice": hospice,
        "excluded": excluded, "denominator": denominator,
    }, denominator, "hit", [(ALL, engaged, p_eng), ("initiation", initiated, p_init), ("engagement", engaged, p_eng)])
    return PlantResult(medical_lines=compact(frames), members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "index_episode": {"sud_dx": list(SUD_DX), "intake": f"{my}-01-01 .. {my}-11-14", "negative_history_days": 194,
                          "age_min_at_episode": 13, "continuous_enrollment": "194 days before .. 47 days after, no gap"},
        "initiation": "detoxification stay on the episode day, or treatment 1-13 days after (visit with SUD dx, SUD service, medication)",
        "engagement": "initiated, then >= 2 treatment days or one long-acting medication 1-34 days after the initiation",
        "codes": {"services": list(vocab.SUD_SERVICES), "medications": list(vocab.SUD_MEDICATIONS),
                  "long_acting": list(vocab.SUD_LONG_ACTING)},
        "exclusions": death_and_hospice_definition(my),
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, DEATH_AND_HOSPICE, rows=("initiation", "engagement"),
                              outcome_rows=True)
