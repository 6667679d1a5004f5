"""Planted measure: Plan All-Cause Readmissions (PCR): readmitted share of index stays, by stratum.

The unit is the index stay, not the member. Index stays are every stay on record (background
utilisation, BCS, COL and PQI90 stays, and the readmissions planted here), built as a pipeline builds
them (type of bill 11x, overlapping or touching stays merged):

* index stay: discharged Jan 1 .. Dec 1 MY, member 18-64 on the discharge date, continuously enrolled
  365 days before the discharge through the discharge (one gap of at most 45 days) and from the
  discharge through 30 days after (no gap);
* excluded: discharge status died (20, 40-42) or transfer out (02, 05, 66, 82, 85, 94), member dead by
  the discharge, same-day stay, principal diagnosis of pregnancy (O*, Z33*, Z34*: the background
  deliveries) or perinatal (P*), hospice in MY;
* readmitted: another stay admitted 1-30 days after the discharge (2-30 in practice: a stay admitted
  the next day is merged), not planned (principal Z510/Z5111/Z5112/Z52*; none is generated).

Planted: a readmitted share that depends ONLY on the stratum, with fixed margins per chunk and
stratum: the stays already readmitted by chance are counted, and readmission stays (facility claim
111 + hospitalist; sepsis, acute kidney failure, GI bleeding, syncope, myocardial infarction - never a
PQI diagnosis) are added 2-30 days after randomly chosen non-readmitted index stays, never touching
another stay, until the stratum reaches its planted share (a planted readmission that is itself
discharged by Dec 1 is a new index stay, as in HEDIS). The truth is then read back from every stay.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from equity_pipeline.standards.race_ethnicity import RACE_ETHNICITY_STRATA

from . import vocab
from .context import NO_DATE, ChunkContext
from .evidence import _matcher
from .forms import inpatient_stay
from .plant_pqi import _overlaps
from .planted import PlantResult, age_on, by_stratum, proportion_summary, sample_days, stratum_index
from .population import DX_VOCAB, Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "PCR"
NAME = "Plan All-Cause Readmissions"
RATES: dict[str, float] = by_stratum(0.10, 0.15, 0.12, 0.09, 0.16, 0.14, 0.11, 0.12, 0.12, 0.11, 0.13)
DIED_STATUS = ("20", "40", "41", "42")
TRANSFER_STATUS = ("02", "05", "66", "82", "85", "94")
PLANNED_DX = ("Z510", "Z5111", "Z5112", "Z52*")
READMIT_CASES = (("A419", "871"), ("N179", "683"), ("K922", "378"), ("R55", "312"), ("I214", "280"))
ROUNDS = 4


def index_stays(ev, pop: Population, period) -> pl.DataFrame:
    """Every index stay on record with eligibility, exclusion flags and the readmission outcome."""
    stays = ev.stays()
    dec1 = period.my_end - 30
    idx = stays.filter(pl.col("discharge").is_between(period.my_start, dec1))
    pos = idx["pos"].to_numpy()
    adm = idx["admit"].to_numpy().astype(np.int64)
    dis = idx["discharge"].to_numpy().astype(np.int64)
    age = age_on(pop.birth[pos], dis)
    ss, se = pop.seg_start[pos], pop.seg_end[pos]
    ce = (continuous_enrollment(ss, se, dis - 365, dis, 45, 1) & continuous_enrollment(ss, se, dis, dis + 30, 0, 0))
    eligible = (age >= 18) & (age <= 64) & ce
    status = idx["discharge_status"].to_numpy()
    principal = idx["principal_dx"].to_numpy()
    preg, peri = _matcher(vocab.DX_FAMILIES["pregnancy"]), _matcher(("P*",))
    hospice = ev.has_line("hospice", period.my_start, period.my_end)[pos]
    flags = {
        "died_in_hospital": np.isin(status, DIED_STATUS),
        "deceased": (pop.death[pos] != NO_DATE) & (pop.death[pos] <= dis),
        "transfer_out": np.isin(status, TRANSFER_STATUS),
        "same_day_stay": adm == dis,
        "pregnancy": np.array([c is not None and preg(c) for c in principal], dtype=bool),
        "perinatal": np.array([c is not None and peri(c) for c in principal], dtype=bool),
        "hospice": hospice,
    }
    excluded = eligible & np.any(np.stack(list(flags.values())), axis=0)
    # readmission: an unplanned stay admitted 1..30 days after the discharge
    planned = _matcher(PLANNED_DX)
    later = stays.filter(~pl.col("principal_dx").map_elements(lambda c: c is not None and planned(c), return_dtype=pl.Boolean)
                         .fill_null(False)).select("pos", pl.col("admit").alias("_a"))
    frame = idx.select("pos", "admit", "discharge").with_row_index("_i")
    hit = frame.join(later, on="pos").filter((pl.col("_a") >= pl.col("discharge") + 1) & (pl.col("_a") <= pl.col("discharge") + 30))
    readmitted = np.zeros(idx.height, dtype=bool)
    readmitted[hit["_i"].unique().to_numpy()] = True
    return pl.DataFrame({
        "pos": pos, "admit": adm, "discharge": dis, "age": age, "eligible": eligible, **{k: eligible & v for k, v in flags.items()},
        "excluded": excluded, "denominator": eligible & ~excluded, "readmitted": readmitted,
    })


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_pcr")
    n = pop.n
    sidx = stratum_index(pop)
    target = np.array([RATES[s] for s in RACE_ETHNICITY_STRATA])
    busy = ev.busy_days(margin=1)
    bpos, blo, bhi = busy["pos"].to_numpy(), busy["lo"].to_numpy(), busy["hi"].to_numpy()
    frames: list = []
    view = ev
    for _ in range(ROUNDS):
        t = index_stays(view, pop, p)
        s = sidx[t["pos"].to_numpy()]
        den = t["denominator"].to_numpy()
        readm = t["readmitted"].to_numpy()
        n_den = np.bincount(s[den], minlength=len(target))
        n_readm = np.bincount(s[den & readm], minlength=len(target))
        # readmissions to add per stratum; a planted readmission is itself an index stay about 85 % of the time
        deficit = (target * n_den - n_readm) / (1 - 0.85 * target)
        add = np.floor(np.maximum(deficit, 0) + rng.random(len(target))).astype(np.int64)
        if add.sum() == 0:
            break
        cand = np.nonzero(den & ~readm)[0]
        chosen = []
        for j in np.nonzero(add)[0]:
            mine = cand[s[cand] == j]
            if len(mine):
                chosen.append(rng.choice(mine, size=min(int(add[j]), len(mine)), replace=False))
        if not chosen:
            break
        rows = np.sort(np.concatenate(chosen))
        pos = t["pos"].to_numpy()[rows]
        dis = t["discharge"].to_numpy()[rows]
        los = np.minimum(1 + rng.geometric(0.35, size=len(rows)), 10).astype(np.int64)

        def accept(idx, d, pos=pos, los=los, bpos=bpos, blo=blo, bhi=bhi):
            m = pos[idx]
            return (pop.covered(m, d + los[idx]) & (d <= p.my_end) & ~ev.admission_blocked(m, d)
                    & ~_overlaps(m, d, d + los[idx], bpos, blo, bhi))

        day, ok = sample_days(rng, pop, pos, dis + 2, dis + 30, accept=accept, tries=24)
        # two readmissions of one member placed in the same round must not touch either
        pos, day, los = pos[ok], day[ok].astype(np.int64), los[ok]
        keep = np.ones(len(pos), dtype=bool)
        order = np.lexsort((day, pos))
        for a, b in zip(order[:-1], order[1:]):
            if pos[a] == pos[b] and day[b] <= day[a] + los[a] + 1 and keep[a]:
                keep[b] = False
        pos, day, los = pos[keep], day[keep], los[keep]
        if len(pos) == 0:
            break
        case = rng.integers(0, len(READMIT_CASES), size=len(pos))
        principal = np.array([READMIT_CASES[c][0] for c in case], dtype=object)
        drg = np.array([READMIT_CASES[c][1] for c in case], dtype=object)
        vocab_arr = np.array([None, *DX_VOCAB], dtype=object)
        new = inpatient_stay(ctx, pop, providers, rng, pos, day, los, drg,
                             dx=[principal, vocab_arr[pop.problem_list[pos, 0] + 1]],
                             discharge_status=np.where(rng.random(len(pos)) < 0.85, "01", "06"))
        frames += new
        view = ev.preview(frames)
        bpos = np.concatenate([bpos, pos])
        blo = np.concatenate([blo, day - 1])
        bhi = np.concatenate([bhi, day + los + 1])
    t = index_stays(view, pop, p)
    pos = t["pos"].to_numpy()
    den = t["denominator"].to_numpy()
    members = t.select(
        pl.Series("member_id", pop.member_id[pos]), pl.Series("stratum", pop.stratum[pos]),
        pl.lit("all").alias("submeasure"), pl.col("admit"), pl.col("discharge"), "age", "eligible", "died_in_hospital",
        "deceased", "transfer_out", "same_day_stay", "pregnancy", "perinatal", "hospice", "excluded", "denominator",
        "readmitted", (pl.col("denominator") & pl.col("readmitted")).alias("numerator"),
        pl.Series("planted_probability", np.where(den, target[sidx[pos]], np.nan)),
    ).with_columns(pl.col("planted_probability").fill_nan(None))
    return PlantResult(medical_lines=frames, members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "unit": "index stay (rows of the member file are stays; counts below are stays)",
        "index_stays": {"discharged": f"{my}-01-01 .. {my}-12-01", "age_at_discharge": [18, 64],
                        "continuous_enrollment": ["365 days before .. discharge, one gap <= 45 days", "discharge .. 30 days after, no gap"],
                        "stays": "type of bill 11x; overlapping or touching stays merged"},
        "exclusions": {"died_in_hospital": list(DIED_STATUS), "deceased": "by the discharge", "transfer_out": list(TRANSFER_STATUS),
                       "same_day_stay": "admit = discharge", "pregnancy": list(vocab.DX_FAMILIES["pregnancy"]),
                       "perinatal": ["P*"], "hospice": f"during {my}"},
        "numerator": {"readmission": "an unplanned stay admitted 1-30 days after the discharge", "planned_principal_dx": list(PLANNED_DX),
                      "planted_readmissions": {c[0]: c[1] for c in READMIT_CASES}},
    }
    flags = ("died_in_hospital", "deceased", "transfer_out", "same_day_stay", "pregnancy", "perinatal", "hospice")
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, {f: f for f in flags})
