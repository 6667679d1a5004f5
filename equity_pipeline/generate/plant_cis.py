"""Planted measure: Childhood Immunization Status (CIS Combination 3, row combo10), by stratum.

Truth, per child aged 2 on Dec 31 MY (born in MY-2, so the whole vaccination history is generated):

* eligible: continuously enrolled from the first to the second birthday (birthdays as calendar
  months, clamped: Feb 29 + 12 months = Feb 28), one gap of at most 45 days, enrolled on the second
  birthday;
* excluded: death by Dec 31 MY, hospice in MY;
* Combination 3 (row ``all``) and Combination 10 (row ``combo10``): with probabilities that depend
  ONLY on the stratum (fixed margins; Combination 10 children are a subset of Combination 3
  children) -> vaccine claims on covered days in the recommended windows, one dose per claim (CPT
  vaccine code + 90460 administration, Z23): HepB 0 d, 1-2 m, 6-18 m (90744); DTaP 2, 4, 6, 15-18 m
  (90700); IPV 2, 4, 6-18 m (90713); Hib 2, 4, 12-15 m (90648);
  PCV 2, 4, 6, 12-15 m (90670/90671); MMR and varicella 12-15 m (90707 + 90716, or MMRV 90710); and
  for Combination 10 HepA 12-23 m (90633), rotavirus (2 doses 90681 or 3 doses 90680) and two
  influenza doses at 7-10 m (90685/90686/90687).
* children short of Combination 3 miss one required dose, or have it where it does not count (DTaP
  before 42 days of age, MMR before the first birthday); Combination 3 children short of
  Combination 10 miss HepA, a rotavirus dose or an influenza dose.

The truth is computed from the doses actually placed, with the measure's rules (distinct dates per
antigen inside its age window; a combination vaccine counts for each of its antigens).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from equity_pipeline.standards.race_ethnicity import RACE_ETHNICITY_STRATA

from .context import ChunkContext
from .forms import compact, professional
from .planted import (
    ALL,
    DEATH_AND_HOSPICE,
    PlantResult,
    add_months,
    by_stratum,
    death_and_hospice_definition,
    proportion_summary,
    quota,
    sample_days,
    stratum_index,
    stratum_rates,
)
from .planting import death_and_hospice, fixed_margin_hits, outcome_truth_rows
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "CIS"
NAME = "Childhood Immunization Status (Combination 3)"
RATES: dict[str, dict[str, float]] = {
    ALL: by_stratum(0.72, 0.60, 0.66, 0.76, 0.55, 0.58, 0.68, 0.65, 0.64, 0.62, 0.58),        # Combination 3
    "combo10": by_stratum(0.42, 0.28, 0.34, 0.48, 0.25, 0.30, 0.38, 0.35, 0.33, 0.32, 0.29),   # Combination 10
}
assert all(RATES["combo10"][s] <= RATES[ALL][s] for s in RACE_ETHNICITY_STRATA)

# (antigens the code counts for, code)
CODES = {
    "hepb": ("90744",), "dtap": ("90700",), "ipv": ("90713",), "hib": ("90648", "90647"), "pcv": ("90670", "90671"),
    "mmr": ("90707",), "vzv": ("90716",), "hepa": ("90633",), "rota2": ("90681",), "rota3": ("90680",),
    "flu": ("90685", "90686", "90687"),
}
COMBO = {"90710": ("mmr", "vzv")}  # MMRV counts for both antigens
# dose windows as (months, days) from birth .. (months, days) exclusive of the end; per antigen
SCHEDULE = {
    "hepb": (((0, 0), (0, 2)), ((1, 0), (2, 0)), ((6, 0), (18, 0))),
    "dtap": (((0, 42), (3, 0)), ((4, 0), (5, 0)), ((6, 0), (7, 0)), ((15, 0), (18, 0))),
    "ipv": (((0, 42), (3, 0)), ((4, 0), (5, 0)), ((6, 0), (18, 0))),
    "hib": (((0, 42), (3, 0)), ((4, 0), (5, 0)), ((12, 0), (15, 0))),
    "pcv": (((0, 42), (3, 0)), ((4, 0), (5, 0)), ((6, 0), (7, 0)), ((12, 0), (15, 0))),
    "mmr": (((12, 0), (15, 0)),),
    "vzv": (((12, 0), (15, 0)),),
    "hepa": (((12, 0), (23, 0)),),
    "rota2": (((0, 42), (3, 0)), ((4, 0), (5, 0))),
    "rota3": (((0, 42), (3, 0)), ((4, 0), (5, 0)), ((6, 0), (7, 0))),
    "flu": (((7, 0), (8, 0)), ((8, 0), (10, 0))),
}
COMBO3 = ("dtap", "ipv", "mmr", "hib", "hepb", "vzv", "pcv")
# counting rules: antigen -> (doses, window start (months, days) from birth); all end on the 2nd birthday
RULES = {"dtap": (4, (0, 42)), "ipv": (3, (0, 42)), "mmr": (1, (12, 0)), "hib": (3, (0, 42)), "hepb": (3, (0, 0)),
         "vzv": (1, (12, 0)), "pcv": (4, (0, 42)), "hepa": (1, (12, 0)), "flu": (2, (0, 180))}


def _day(birth: np.ndarray, md: tuple[int, int]) -> np.ndarray:
    return add_months(birth, md[0]) + md[1]


def _meets(doses: dict[str, list[tuple[np.ndarray, np.ndarray]]], n: int, birth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(combo3, combo10) per member from placed doses {antigen: [(pos, day), ...]}."""
    end = add_months(birth, 24)

    def count(antigen: str, start_md) -> np.ndarray:
        parts = doses.get(antigen, [])
        if not parts:
            return np.zeros(n, dtype=np.int64)
        pos = np.concatenate([p for p, _ in parts])
        day = np.concatenate([d for _, d in parts]).astype(np.int64)
        ok = (day >= _day(birth[pos], start_md)) & (day <= end[pos])
        key = np.unique(pos[ok].astype(np.int64) * (1 << 20) + day[ok])
        return np.bincount((key >> 20).astype(np.int64), minlength=n)

    combo3 = np.ones(n, dtype=bool)
    for antigen in COMBO3:
        k, start = RULES[antigen]
        combo3 &= count(antigen, start) >= k
    rota = count("rota2", (0, 42)), count("rota3", (0, 42))
    rota_ok = (rota[0] >= 2) | (rota[1] >= 3) | (rota[0] + rota[1] >= 3)
    combo10 = combo3 & (count("hepa", RULES["hepa"][1]) >= 1) & rota_ok & (count("flu", RULES["flu"][1]) >= 2)
    return combo3, combo10


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    rng = ctx.rng("plant_cis")
    n = pop.n
    in_age = pop.age == 2
    b12, b24 = add_months(pop.birth, 12), add_months(pop.birth, 24)
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, b12, b24, 45, 1)
    eligible = in_age & ce
    died, hospice = death_and_hospice(ctx, pop, eligible)
    meant_excluded = died | hospice
    sidx = stratum_index(pop)
    p3 = stratum_rates(pop, RATES[ALL])
    p10 = stratum_rates(pop, RATES["combo10"])
    u = rng.random(n)
    want3 = fixed_margin_hits(rng, eligible, meant_excluded, sidx, p3, u=u)
    want10 = quota(rng, want3 & ~meant_excluded, sidx, np.where(p3 > 0, p10 / p3, 0.0)) | (want3 & meant_excluded & (u < p10))
    # every child aged 2 gets vaccines (children outside the denominator too); plan the doses per child
    kids = np.nonzero(in_age)[0]
    k = len(kids)
    # what is missing: combo3 short children drop one dose of one antigen or get it where it does not count
    short3 = ~want3[kids]
    flaw = np.where(short3, rng.integers(0, 3, k), -1)  # 0 drop a dose, 1 DTaP before 42 days, 2 MMR before 1 year
    drop_antigen = np.array(COMBO3, dtype=object)[rng.integers(0, len(COMBO3), k)]
    drop_dose = rng.integers(0, 12, k)
    # combo10 parts: present for combo10 children; combo3-only children miss one part; others at random
    rota_kind = np.where(rng.random(k) < 0.6, "rota2", "rota3")
    only3 = want3[kids] & ~want10[kids]
    miss10 = np.array(("hepa", "rota", "flu"), dtype=object)[rng.integers(0, 3, k)]
    part = {name: np.where(want10[kids], True, np.where(only3, miss10 != name, rng.random(k) < 0.6))
            for name in ("hepa", "rota", "flu")}
    rota_short = ~part["rota"] & ((only3 & (miss10 == "rota")) | (rng.random(k) < 0.5))  # one dose short
    flu_one = only3 & (miss10 == "flu")

    doses: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    shots_pos, shots_day, shots_code = [], [], []

    def give(sel: np.ndarray, antigens: tuple[str, ...], lo: np.ndarray, hi: np.ndarray, code) -> None:
        idx = np.nonzero(sel)[0]
        if len(idx) == 0:
            return
        d, ok = sample_days(rng, pop, kids[idx], lo[idx], hi[idx] - 1, tries=24)
        idx, d = idx[ok], d[ok]
        for a in antigens:
            doses.setdefault(a, []).append((kids[idx], d))
        shots_pos.append(kids[idx])
        shots_day.append(d)
        shots_code.append(np.asarray(code, dtype=object)[idx] if np.ndim(code) else np.full(len(idx), code, dtype=object))

    birth = pop.birth[kids]
    dropped = lambda antigen: (flaw == 0) & (drop_antigen == antigen)  # noqa: E731
    for antigen in ("hepb", "dtap", "ipv", "hib", "pcv"):
        n_doses = len(SCHEDULE[antigen])
        codes = np.array(CODES[antigen], dtype=object)[rng.integers(0, len(CODES[antigen]), k)]
        for j, (lo_md, hi_md) in enumerate(SCHEDULE[antigen]):
            take = ~(dropped(antigen) & (drop_dose % n_doses == j))
            lo, hi = _day(birth, lo_md), _day(birth, hi_md)
            if antigen == "dtap" and j == 0:  # flaw 1: the first DTaP at 4-5 weeks, too early to count
                lo = np.where(flaw == 1, birth + 28, lo)
                hi = np.where(flaw == 1, birth + 42, hi)
            give(take, (antigen,), lo, hi, codes)
    # MMR and varicella at 12-15 months (MMRV for some); flaw 2: MMR at 11 months, too early to count
    mmrv = (rng.random(k) < 0.25) & (flaw != 2) & ~dropped("vzv")
    lo = np.where(flaw == 2, _day(birth, (11, 0)), _day(birth, (12, 0)))
    hi = np.where(flaw == 2, _day(birth, (12, 0)), _day(birth, (15, 0)))
    give(~dropped("mmr") & mmrv, ("mmr", "vzv"), lo, hi, "90710")
    give(~dropped("mmr") & ~mmrv, ("mmr",), lo, hi, CODES["mmr"][0])
    give(~dropped("vzv") & ~mmrv, ("vzv",), _day(birth, (12, 0)), _day(birth, (15, 0)), CODES["vzv"][0])
    lo_md, hi_md = SCHEDULE["hepa"][0]
    give(part["hepa"], ("hepa",), _day(birth, lo_md), _day(birth, hi_md), "90633")
    for kind in ("rota2", "rota3"):
        n_doses = len(SCHEDULE[kind])
        n_give = np.where(part["rota"], n_doses, np.where(rota_short, n_doses - 1, 0))
        for j, (lo_md, hi_md) in enumerate(SCHEDULE[kind]):
            give((rota_kind == kind) & (j < n_give), (kind,), _day(birth, lo_md), _day(birth, hi_md), CODES[kind][0])
    flu_code = np.array(CODES["flu"], dtype=object)[rng.integers(0, 3, k)]
    for j, (lo_md, hi_md) in enumerate(SCHEDULE["flu"]):
        give(part["flu"] | (flu_one & (j == 0)), ("flu",), _day(birth, lo_md), _day(birth, hi_md), flu_code)

    frames: list = []
    if shots_pos:
        sp, sd, sc = np.concatenate(shots_pos), np.concatenate(shots_day), np.concatenate(shots_code)
        frames.append(professional(ctx, pop, rng, sp, sd, [sc, "90460"], [9000.0, 2500.0], pop.pcp[sp],
                                   dx=[np.full(len(sp), "Z23")]))
    combo3, combo10 = _meets(doses, n, pop.birth)
    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    members = outcome_truth_rows(pop, np.nonzero(in_age)[0], {
        "continuously_enrolled": ce, "eligible": eligible, "died": died, "hospice": hospice, "excluded": excluded,
        "denominator": denominator,
    }, denominator, "complete", [(ALL, combo3, p3), ("combo10", combo10, p10)])
    return PlantResult(medical_lines=compact(frames), members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age": 2, "age_as_of": f"{my}-12-31",
        "continuous_enrollment": "1st .. 2nd birthday (calendar months, clamped), one gap <= 45 days",
        "combo3": {a: {"doses": RULES[a][0], "from": f"{RULES[a][1][0]} months + {RULES[a][1][1]} days"} for a in COMBO3},
        "combo10": "combo3 + HepA >= 1 (from 1 year) + rotavirus (2 x 90681, 3 x 90680, or 3 mixed; from 42 days) + influenza >= 2 (from 180 days)",
        "codes": {**{a: list(c) for a, c in CODES.items()}, **{c: list(a) for c, a in COMBO.items()}},
        "exclusions": death_and_hospice_definition(my),
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, DEATH_AND_HOSPICE, rows=("combo10",),
                              outcome_rows=True)
