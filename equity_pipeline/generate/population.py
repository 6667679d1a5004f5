"""Members and their enrollment: demographics, REL, residence, payers, coverage spans, conditions.

All draws are vectorised over the members of one chunk. Coverage is kept per member as up to three
segments (``seg_start``/``seg_end``, inclusive day numbers; ``OPEN_END`` = still enrolled); payer
changes (turning 65) split segments into contiguous spans, so the union of a member's spans equals
her segments and continuous enrollment can be judged from either.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from equity_pipeline.standards.race_ethnicity import (
    CATEGORY_LABELS,
    DECLINED,
    MULTIRACIAL,
    RACE_ETHNICITY_STRATA,
    UNKNOWN,
    race_ethnicity_stratum,
)

from . import vocab
from .context import NO_DATE, OPEN_END, ChunkContext, dates_to_str, month_first, month_last, str_series, year_start
from .geography import Geography
from .margins import quota
from .providers import Providers

MEDICARE, MEDICAID, COMMERCIAL = 0, 1, 2
PAYER_NAMES = np.array(["medicare", "medicaid", "commercial"])
PAYER_SERIES = pl.Series("payer", PAYER_NAMES.tolist(), dtype=pl.String)
N_SEGMENTS = 3

AGE_BANDS = ((0, 17, 0.22), (18, 44, 0.30), (45, 64, 0.27), (65, 74, 0.12), (75, 84, 0.065), (85, 99, 0.025))
SEX_WEIGHTS = (("F", 0.51), ("M", 0.485), ("X", 0.002), ("U", 0.003))
ANNUAL_MORTALITY = ((17, 0.0005), (44, 0.0015), (64, 0.005), (74, 0.015), (84, 0.04), (200, 0.12))

# enrollment patterns and their probability by pre-65 payer (medicare, medicaid, commercial)
FULL, SHORT_GAP, LONG_GAP, TWO_GAPS, LATE_START, EARLY_END = range(6)
PATTERN_WEIGHTS = {
    MEDICARE: (0.90, 0.03, 0.02, 0.01, 0.02, 0.02),
    MEDICAID: (0.70, 0.08, 0.07, 0.03, 0.07, 0.05),
    COMMERCIAL: (0.84, 0.04, 0.03, 0.01, 0.05, 0.03),
}
MAX_SHORT_GAP = 45

SDOH_DOMAINS = vocab.SDOH_DOMAINS  # food, housing, transportation, utilities, interpersonal_safety
# Member-level social need by domain: probability by race/ethnicity stratum ONLY (the planted truth of
# SDOH_POSITIVE; screenings answer from this need, so every screening of a member agrees).
SDOH_NEED_BY_STRATUM: dict[str, tuple[float, float, float, float, float]] = {
    CATEGORY_LABELS["WHITE"]: (0.10, 0.06, 0.05, 0.06, 0.030),
    CATEGORY_LABELS["BLACK"]: (0.22, 0.14, 0.12, 0.13, 0.050),
    CATEGORY_LABELS["HISPANIC"]: (0.20, 0.12, 0.10, 0.10, 0.040),
    CATEGORY_LABELS["ASIAN"]: (0.08, 0.06, 0.04, 0.04, 0.020),
    CATEGORY_LABELS["AIAN"]: (0.26, 0.16, 0.18, 0.14, 0.060),
    CATEGORY_LABELS["NHPI"]: (0.18, 0.14, 0.10, 0.10, 0.050),
    CATEGORY_LABELS["MENA"]: (0.12, 0.08, 0.06, 0.07, 0.030),
    MULTIRACIAL: (0.15, 0.10, 0.08, 0.08, 0.040),
    CATEGORY_LABELS["OTHER"]: (0.14, 0.09, 0.08, 0.08, 0.040),
    DECLINED: (0.12, 0.08, 0.07, 0.07, 0.040),
    UNKNOWN: (0.14, 0.09, 0.08, 0.08, 0.040),
}

PROBLEM_LIST_SIZE = 6
MEMBER_DEFECT_CLASSES = ("missing_rel", "unknown_county_fips", "invalid_county_fips_format",
                         "invalid_date_birth_date", "duplicate_member_id")

# Diagnosis vocabulary shared by the background generator (index -> code).
DX_VOCAB: tuple[str, ...] = tuple(dict.fromkeys(
    [c for cond in vocab.CONDITIONS for c in cond.codes]
    + [c for c, _ in vocab.ACUTE_OFFICE_DX] + list(vocab.PREVENTIVE_DX_CHILD) + list(vocab.PREVENTIVE_DX_ADULT)
    + [c for c, _ in vocab.ED_DX] + [c for case in vocab.INPATIENT_CASES for c in case.dx]
    + list(vocab.NEWBORN_CASE.dx) + list(vocab.SDOH_Z_CODES.values()) + [vocab.LAB_DX_FALLBACK]
))
DX_INDEX = {c: i for i, c in enumerate(DX_VOCAB)}
assert not set(DX_VOCAB) & vocab.RESERVED_CODES
assert not [c for c in DX_VOCAB if c.startswith(vocab.RESERVED_PREFIXES)]


@dataclass
class Population:
    n: int
    member_id: np.ndarray
    member_id_s: pl.Series       # the same ids as a polars series (fast gathers)
    county: np.ndarray
    sex: np.ndarray
    age: np.ndarray              # age in whole years on Dec 31 of the measurement year
    birth: np.ndarray
    death: np.ndarray            # NO_DATE when alive through the generated history
    dominant: np.ndarray         # latent main category (drives language and surname)
    rel_codes: pl.Series         # as written (nullable)
    stratum: np.ndarray          # race_ethnicity_stratum label of rel_codes
    payer_pre: np.ndarray        # payer before Medicare (MEDICARE when Medicare from the start)
    medicare_from: np.ndarray    # first day of Medicare for those who turn 65 (OPEN_END if never)
    dual: np.ndarray
    seg_start: np.ndarray        # (n, 3)
    seg_end: np.ndarray          # (n, 3); invalid segments have start > end
    conditions: np.ndarray       # (n, len(CONDITIONS)) bool
    condition_code: np.ndarray   # (n, len(CONDITIONS)) index into DX_VOCAB of the member's code, -1 if absent
    problem_list: np.ndarray     # (n, PROBLEM_LIST_SIZE) index into DX_VOCAB, -1 empty
    sdoh_need: np.ndarray        # (n, 5) bool, domains in SDOH_DOMAINS order
    pcp: np.ndarray              # assigned primary-care NPI
    hospital_pos: np.ndarray     # index into providers.roles['hospital']
    members_df: pl.DataFrame
    enrollment_df: pl.DataFrame

    def payer_at(self, pos: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Payer index of member ``pos`` on day ``d`` (Medicare is primary for duals)."""
        pre = self.payer_pre[pos]
        return np.where((pre == MEDICARE) | (d >= self.medicare_from[pos]), MEDICARE, pre)

    def covered(self, pos: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Whether member ``pos`` is enrolled and alive (and born) on day ``d``."""
        s = self.seg_start[pos]
        e = self.seg_end[pos]
        inside = ((s <= d[:, None]) & (d[:, None] <= e)).any(axis=1)
        alive = (self.death[pos] == NO_DATE) | (d <= self.death[pos])
        return inside & alive & (d >= self.birth[pos])


def strata_of(codes: pl.Series) -> pl.Series:
    """``race_ethnicity_stratum`` label of each code string (computed once per distinct string)."""
    col = "race_ethnicity_codes"
    frame = pl.DataFrame([codes.alias(col)])
    labels = frame.unique(col).with_columns(race_ethnicity_stratum(pl.col(col)).alias("stratum"))
    return frame.join(labels, on=col, how="left", nulls_equal=True, maintain_order="left")["stratum"]


def _stratum_index(stratum: np.ndarray) -> np.ndarray:
    """Index of each member's stratum label in RACE_ETHNICITY_STRATA."""
    lookup = {s: i for i, s in enumerate(RACE_ETHNICITY_STRATA)}
    labels, inverse = np.unique(stratum, return_inverse=True)
    return np.array([lookup[s] for s in labels], dtype=np.int64)[inverse]


assert set(SDOH_NEED_BY_STRATUM) == set(RACE_ETHNICITY_STRATA)


def _age_band(age: np.ndarray) -> np.ndarray:
    return np.select([age <= 17, age <= 44, age <= 64, age <= 74], [0, 1, 2, 3], 4)


def _choice_str(rng: np.random.Generator, pairs, size: int) -> np.ndarray:
    codes = np.array([p[0] for p in pairs], dtype=object)
    w = np.array([p[1] for p in pairs], dtype=float)
    return codes[rng.choice(len(pairs), size=size, p=w / w.sum())]


def continuous_enrollment(seg_start: np.ndarray, seg_end: np.ndarray, start, end,
                          max_gap_days: int = MAX_SHORT_GAP, max_gaps: int = 1) -> np.ndarray:
    """HEDIS-style continuous enrollment over [start, end] from (n, k) segment arrays.

    Enrolled on ``end`` (the anchor date) and at most ``max_gaps`` uncovered runs inside the window,
    none longer than ``max_gap_days`` days (a late start or an early end counts as a run).
    ``start`` and ``end`` are day numbers, one for everyone or one per member.
    """
    n = seg_start.shape[0]
    start = np.broadcast_to(np.asarray(start, dtype=np.int64), (n,))
    end = np.broadcast_to(np.asarray(end, dtype=np.int64), (n,))
    s = np.maximum(seg_start, start[:, None])
    e = np.minimum(seg_end, end[:, None])
    valid = s <= e
    gaps = np.zeros(n, dtype=np.int32)
    longest = np.zeros(n, dtype=np.int64)
    prev_end = (start - 1).astype(np.int64)
    for k in range(seg_start.shape[1]):
        run = np.where(valid[:, k], s[:, k] - prev_end - 1, 0)
        has = valid[:, k] & (run > 0)
        gaps += has
        longest = np.maximum(longest, np.where(has, run, 0))
        prev_end = np.where(valid[:, k], np.maximum(prev_end, e[:, k]), prev_end)
    tail = end - prev_end
    gaps += tail > 0
    longest = np.maximum(longest, tail)
    return (prev_end == end) & (gaps <= max_gaps) & (longest <= max_gap_days)


def make_population(ctx: ChunkContext, geo: Geography, providers: Providers, first_index: int, n: int) -> Population:
    p = ctx.period
    my = p.measurement_year

    # ---- residence
    rng = ctx.rng("geo")
    county = rng.choice(geo.n_counties, size=n, p=geo.weight)
    zlo = geo.zip_offsets[county]
    zcnt = geo.zip_offsets[county + 1] - zlo
    zips = geo.zip_codes[zlo + np.floor(rng.random(n) * zcnt).astype(np.int64)]
    state = geo.county_state[county]

    # ---- age, sex, birth date
    rng = ctx.rng("age")
    band = rng.choice(len(AGE_BANDS), size=n, p=np.array([b[2] for b in AGE_BANDS]) / sum(b[2] for b in AGE_BANDS))
    lo = np.array([b[0] for b in AGE_BANDS])[band]
    hi = np.array([b[1] for b in AGE_BANDS])[band]
    age = (lo + np.floor(rng.random(n) * (hi - lo + 1))).astype(np.int32)
    dec31 = year_start(my - age + 1) - 1
    birth = (dec31 - rng.integers(0, 365, size=n)).astype(np.int32)
    sex = _choice_str(rng, SEX_WEIGHTS, n).astype(str)

    # ---- race / ethnicity: latent profile by state, then what was recorded
    rng = ctx.rng("rel")
    profile = np.zeros(n, dtype=np.int64)
    for st, w in vocab.REL_PROFILE_WEIGHTS.items():
        m = state == st
        w = np.array(w, dtype=float)
        profile[m] = rng.choice(len(vocab.REL_PROFILES), size=int(m.sum()), p=w / w.sum())
    slot_cats = [np.array([pr[j] if len(pr) > j else "" for pr in vocab.REL_PROFILES], dtype=object)[profile]
                 for j in range(3)]
    dominant = slot_cats[0].astype(str)
    slot_codes = []
    for j in range(3):
        codes = np.full(n, None, dtype=object)
        for cat, pairs in vocab.REL_CODES.items():
            m = slot_cats[j] == cat
            if m.any():
                codes[m] = _choice_str(rng, pairs, int(m.sum()))
        slot_codes.append(codes)
    n_cats = np.array([len(pr) for pr in vocab.REL_PROFILES])[profile]
    u = rng.random(n)
    declined = u < vocab.REL_DECLINED_SHARE
    unknown = (~declined) & (u < vocab.REL_DECLINED_SHARE + vocab.REL_UNKNOWN_SHARE)
    known = ~(declined | unknown)
    imputed = known & (rng.random(n) < vocab.REL_IMPUTED_SHARE)
    legacy = known & ~imputed & (n_cats == 1) & (dominant != "HISPANIC") & (rng.random(n) < vocab.REL_LEGACY_NOT_HISPANIC_SHARE)
    rel = pl.DataFrame([str_series("a", slot_codes[0]), str_series("b", slot_codes[1]), str_series("c", slot_codes[2])])
    joined = rel.select(pl.concat_str(["a", "b", "c"], separator="|", ignore_nulls=True)).to_series().to_numpy().astype(object)
    root = np.array([vocab.ROOT_CODE.get(c, "") for c in vocab.REL_CODES], dtype=object)
    cat_index = {c: i for i, c in enumerate(vocab.REL_CODES)}
    dom_idx = np.array([cat_index[c] for c in dominant])
    codes = np.where(imputed, root[dom_idx], joined)
    codes = np.where(legacy, codes + "|" + vocab.NOT_HISPANIC_CODE, codes)
    codes = np.where(declined, "ASKU", np.where(unknown, "UNK", codes)).astype(object)
    source = np.where(unknown, "unknown", np.where(imputed, "imputed", "self_reported")).astype(object)
    # defect: missing REL (null), on random members, applied before strata are computed
    k = ctx.defect_count(n, len(MEMBER_DEFECT_CLASSES))
    missing = rng.choice(n, size=min(k, n), replace=False)
    codes[missing] = None
    source[missing] = "unknown"
    ctx.add_defect("missing_rel", len(missing), "members")
    rel_codes = str_series("race_ethnicity_codes", codes)
    stratum = strata_of(rel_codes).to_numpy().astype(str)

    # ---- language, interpreter, names
    rng = ctx.rng("language")
    lang = np.empty(n, dtype=object)
    for cat in list(vocab.REL_CODES):
        m = dominant == cat
        if m.any():
            lang[m] = _choice_str(rng, vocab.LANGUAGES[cat], int(m.sum()))
    u = rng.random(n)
    lang = np.where(u < vocab.LANGUAGE_DECLINED_SHARE, "ASKU", lang)
    lang = np.where((u >= vocab.LANGUAGE_DECLINED_SHARE) & (u < vocab.LANGUAGE_DECLINED_SHARE + vocab.LANGUAGE_UNK_SHARE), "UNK", lang)
    lang_missing = (u >= vocab.LANGUAGE_DECLINED_SHARE + vocab.LANGUAGE_UNK_SHARE) & (
        u < vocab.LANGUAGE_DECLINED_SHARE + vocab.LANGUAGE_UNK_SHARE + vocab.LANGUAGE_MISSING_SHARE)
    lang = np.where(lang_missing, None, lang)
    is_en = np.array([x is not None and (x == "en" or x.startswith("en-")) for x in lang])
    lang_known = np.array([x is not None and x not in ("ASKU", "UNK") for x in lang])
    v = rng.random(n)
    interp = np.where(
        lang_known & ~is_en, np.where(v < 0.65, "true", "false"),
        np.where(is_en, np.where(v < 0.003, "true", "false"), np.where(v < 0.3, "false", None)),
    ).astype(object)
    interp = np.where(rng.random(n) < 0.03, None, interp)

    rng = ctx.rng("names")
    first_f = np.array(vocab.FIRST_NAMES_F, dtype=object)[rng.integers(0, len(vocab.FIRST_NAMES_F), n)]
    first_m = np.array(vocab.FIRST_NAMES_M, dtype=object)[rng.integers(0, len(vocab.FIRST_NAMES_M), n)]
    female_name = (sex == "F") | (((sex == "X") | (sex == "U")) & (rng.random(n) < 0.5))
    first = np.where(female_name, first_f, first_m)
    last = np.empty(n, dtype=object)
    general = rng.random(n) < 0.2
    for cat, names in vocab.LAST_NAMES.items():
        m = (dominant == cat) & ~general if cat != "NONE" else general
        if m.any():
            last[m] = np.array(names, dtype=object)[rng.integers(0, len(names), int(m.sum()))]
    no_name = rng.random(n) < 0.01
    first = np.where(no_name, None, first)

    # ---- payers
    rng = ctx.rng("payer")
    t65 = (birth.astype("datetime64[D]").astype("datetime64[M]") + 65 * 12).astype("datetime64[D]").astype(np.int32)
    senior_at_start = t65 <= p.window_start
    child = age <= 20
    u = rng.random(n)
    payer_pre = np.where(child, np.where(u < 0.45, MEDICAID, COMMERCIAL),
                         np.where(u < 0.22, MEDICAID, np.where(u < 0.96, COMMERCIAL, MEDICARE)))
    disabled = (payer_pre == MEDICARE) & ~senior_at_start
    payer_pre = np.where(senior_at_start, MEDICARE, payer_pre).astype(np.int8)
    medicare_from = np.where(payer_pre == MEDICARE, NO_DATE, np.where(t65 <= p.history_end, t65, OPEN_END)).astype(np.int32)
    u = rng.random(n)
    dual = np.where(payer_pre == MEDICARE, u < np.where(disabled, 0.40, 0.15), (payer_pre == MEDICAID) & (u < 0.6))
    dual_status = np.where(dual, np.where(rng.random(n) < 0.7, "full", "partial"), "none")
    u = rng.random(n)
    lob_medicare = np.where(u < 0.52, "medicare_ffs", "medicare_advantage")
    u = rng.random(n)
    lob_medicaid = np.where(child, np.where(u < 0.25, "chip", np.where(u < 0.85, "medicaid_managed_care", "medicaid_ffs")),
                            np.where(u < 0.75, "medicaid_managed_care", "medicaid_ffs"))
    lob_commercial = np.where(rng.random(n) < 0.85, "commercial_group", "commercial_individual")
    lob_dual_medicaid = np.where(rng.random(n) < 0.5, "medicaid_ffs", "medicaid_managed_care")
    lob_pre = np.where(payer_pre == MEDICARE, lob_medicare, np.where(payer_pre == MEDICAID, lob_medicaid, lob_commercial))
    plan_no = rng.integers(1, 4, size=n)

    # ---- enrollment segments
    rng = ctx.rng("enrollment")
    pattern = np.zeros(n, dtype=np.int8)
    for pay, w in PATTERN_WEIGHTS.items():
        m = payer_pre == pay
        pattern[m] = rng.choice(6, size=int(m.sum()), p=np.array(w) / sum(w))
    newborn = birth > p.lookback_start
    pattern[newborn] = FULL
    earliest = np.maximum(birth, np.int32(-1280))  # 1966-07-01
    start = month_first(p.window_start - rng.integers(0, 3650, size=n))
    start = np.maximum(start, earliest)
    start = np.where(newborn, birth, start).astype(np.int32)
    end = np.where(rng.random(n) < 0.85, OPEN_END, month_last(p.my_end + rng.integers(31, 180, size=n))).astype(np.int32)
    late = pattern == LATE_START
    start = np.where(late, np.maximum(month_first(rng.integers(p.lookback_start + 62, p.my_end - 62, size=n)), birth), start)
    early = pattern == EARLY_END
    end = np.where(early, month_last(rng.integers(p.lookback_start + 31, p.my_end - 62, size=n)), end)

    g1s = np.full(n, OPEN_END, dtype=np.int64)
    g1l = np.zeros(n, dtype=np.int64)
    g2s = np.full(n, OPEN_END, dtype=np.int64)
    g2l = np.zeros(n, dtype=np.int64)
    m = pattern == SHORT_GAP
    g1l[m] = rng.integers(1, MAX_SHORT_GAP + 1, size=int(m.sum()))
    g1s[m] = rng.integers(p.lookback_start + 30, p.my_end - 60, size=int(m.sum()))
    m = pattern == LONG_GAP
    g1l[m] = rng.integers(MAX_SHORT_GAP + 1, 181, size=int(m.sum()))
    g1s[m] = rng.integers(p.lookback_start + 30, p.my_end - 30 - g1l[m])
    m = pattern == TWO_GAPS
    g1l[m] = rng.integers(1, MAX_SHORT_GAP + 1, size=int(m.sum()))
    g1s[m] = rng.integers(p.lookback_start + 30, p.lookback_start + 330, size=int(m.sum()))
    g2l[m] = rng.integers(1, MAX_SHORT_GAP + 1, size=int(m.sum()))
    g2s[m] = rng.integers(p.lookback_start + 450, p.my_end - 60, size=int(m.sum()))
    # most payers work in whole months: 60 % of gaps run from the 1st of a month to the 1st of a later one
    aligned = rng.random(n) < 0.6
    months = np.where(pattern == LONG_GAP, rng.integers(2, 6, size=n), 1)
    a1 = month_first(np.minimum(g1s, p.my_end))
    a1_len = (month_first(a1 + 31 * months + 15) - a1).astype(np.int64)  # whole months (<=45 days for one)
    a2 = month_first(np.minimum(g2s, p.my_end))
    a2_len = (month_first(a2 + 45) - a2).astype(np.int64)
    use1 = aligned & (g1s < OPEN_END) & (a1 > p.lookback_start) & (a1 + a1_len < p.my_end - 30)
    use2 = aligned & (g2s < OPEN_END) & (a2 > g1s + g1l + 30) & (a2 + a2_len < p.my_end - 30)
    g1s, g1l = np.where(use1, a1, g1s), np.where(use1, a1_len, g1l)
    g2s, g2l = np.where(use2, a2, g2s), np.where(use2, a2_len, g2l)
    seg_start = np.stack([start, g1s + g1l, g2s + g2l], axis=1).astype(np.int64)
    seg_end = np.stack([np.minimum(g1s - 1, end), np.minimum(g2s - 1, end), end], axis=1).astype(np.int64)
    seg_start[:, 1] = np.where(g1s < OPEN_END, seg_start[:, 1], OPEN_END)  # no gap: segment 1 unused
    seg_start[:, 2] = np.where(g2s < OPEN_END, seg_start[:, 2], OPEN_END)
    seg_end[:, 0] = np.where(g1s < OPEN_END, seg_end[:, 0], end)
    seg_end = np.where(seg_start >= OPEN_END, NO_DATE, seg_end)  # unused segment: start > end

    # ---- deaths (enrollment ends with the month of death, except some reporting lag in and after MY)
    rng = ctx.rng("death")
    q = np.select([age <= a for a, _ in ANNUAL_MORTALITY], [qq for _, qq in ANNUAL_MORTALITY])
    died = rng.random(n) < 1 - (1 - q) ** 3.5
    death = rng.integers(p.window_start, p.history_end + 1, size=n).astype(np.int32)
    died &= death > np.maximum(start, birth) + 30
    death = np.where(died, death, NO_DATE).astype(np.int32)
    lag = rng.random(n) < np.where(death < p.my_start, 0.0, np.where(death <= p.my_end, 0.5, 0.4))
    cut = died & ~lag
    death_month_end = month_last(np.where(died, death, 0))
    seg_end = np.where(cut[:, None], np.minimum(seg_end, death_month_end[:, None]), seg_end)
    unused = seg_start > seg_end
    seg_start = np.where(unused, OPEN_END, seg_start).astype(np.int32)
    seg_end = np.where(unused, NO_DATE, seg_end)
    seg_end = seg_end.astype(np.int32)

    # ---- chronic conditions and problem list
    rng = ctx.rng("conditions")
    band5 = _age_band(age)
    prev = np.array([c.prevalence for c in vocab.CONDITIONS]).T  # (5, C)
    mult = np.where(payer_pre == MEDICAID, 1.15, 1.0)[:, None]
    conditions = rng.random((n, len(vocab.CONDITIONS))) < prev[band5] * mult
    variant = np.zeros_like(conditions, dtype=np.int64)
    for j, cond in enumerate(vocab.CONDITIONS):
        idx = np.array([DX_INDEX[c] for c in cond.codes])
        variant[:, j] = idx[rng.integers(0, len(idx), size=n)]
    code_mat = np.where(conditions, variant, -1)
    order = np.argsort(np.where(conditions, rng.random(conditions.shape), 2.0), axis=1, kind="stable")
    problem_list = np.take_along_axis(code_mat, order, axis=1)[:, :PROBLEM_LIST_SIZE]
    if problem_list.shape[1] < PROBLEM_LIST_SIZE:
        problem_list = np.pad(problem_list, ((0, 0), (0, PROBLEM_LIST_SIZE - problem_list.shape[1])), constant_values=-1)

    rng = ctx.rng("sdoh_need")
    sidx = _stratum_index(stratum)
    need_p = np.array([SDOH_NEED_BY_STRATUM[s] for s in RACE_ETHNICITY_STRATA])[sidx]
    # fixed margins per stratum, adults and children apart (the SDOH measures count adults)
    group = sidx * 2 + (age >= 18)
    sdoh_need = np.stack([quota(rng, np.ones(n, dtype=bool), group, need_p[:, j]) for j in range(len(SDOH_DOMAINS))], axis=1)

    # ---- assigned providers
    rng = ctx.rng("attribution")
    pcp = np.where((age < 18) & (rng.random(n) < 0.7), providers.roles["pediatrics"].pick(county, rng),
                   providers.roles["pcp"].pick(county, rng))
    hospital_pos = providers.roles["hospital"].positions(county, rng)

    # ---- disability flag (own random stream, so adding it changed no other column): about 4% of
    # children, 10% of adults under 65 and 25% from 65; 3% not recorded
    drng = ctx.rng("disability")
    p_dis = np.select([age < 18, age < 65], [0.04, 0.10], 0.25)
    disability = np.where(drng.random(n) < p_dis, "true", "false").astype(object)
    disability[drng.random(n) < 0.03] = None

    # ---- output frames
    gidx = np.arange(first_index, first_index + n, dtype=np.int64)
    member_id = np.char.add("M", np.char.zfill((gidx + 1).astype(str), 8))
    members_df = pl.DataFrame([
        str_series("member_id", member_id),
        rel_codes,
        str_series("race_ethnicity_source", source),
        str_series("language", lang),
        str_series("interpreter_needed", interp),
        str_series("disability", disability),
        str_series("sex", sex),
        pl.Series("birth_date", birth),
        pl.Series("death_date", death),
        str_series("zip", zips),
        str_series("county_fips", geo.county_fips[county]),
        str_series("first_name", first),
        str_series("last_name", last),
    ]).with_columns(dates_to_str("birth_date"), dates_to_str("death_date"))

    enrollment_df = _enrollment_spans(
        n, member_id, seg_start, seg_end, payer_pre, medicare_from, dual, dual_status, lob_pre, lob_medicare,
        lob_dual_medicaid, state, plan_no,
    )
    return Population(
        n=n, member_id=member_id, member_id_s=members_df["member_id"], county=county, sex=sex, age=age, birth=birth, death=death, dominant=dominant,
        rel_codes=rel_codes, stratum=stratum, payer_pre=payer_pre, medicare_from=medicare_from, dual=dual,
        seg_start=seg_start, seg_end=seg_end, conditions=conditions, condition_code=code_mat, problem_list=problem_list, sdoh_need=sdoh_need,
        pcp=pcp, hospital_pos=hospital_pos, members_df=members_df, enrollment_df=enrollment_df,
    )


def _plan_ids(lob: np.ndarray, state: np.ndarray, plan_no: np.ndarray) -> np.ndarray:
    st = state.astype(object)
    k = plan_no.astype(str).astype(object)
    state_num = np.array([{"MD": "21", "NY": "33", "NM": "32", "HI": "12"}[s] for s in state], dtype=object)
    return np.select(
        [lob == "medicare_ffs", lob == "medicare_advantage", lob == "medicaid_managed_care", lob == "medicaid_ffs",
         lob == "chip", lob == "commercial_group"],
        ["MEDICARE-FFS", "H" + state_num + "0" + k + "-00" + k, st + "-MCO-0" + k, st + "-MEDICAID-FFS", st + "-CHIP",
         st + "-GRP-0" + k],
        st + "-QHP-0" + k,
    )


def _enrollment_spans(n, member_id, seg_start, seg_end, payer_pre, medicare_from, dual, dual_status, lob_pre,
                      lob_medicare, lob_dual_medicaid, state, plan_no) -> pl.DataFrame:
    """Split coverage segments at the start of Medicare and add the Medicaid span of dual eligibles."""
    parts = []
    pos_all = np.arange(n)
    for k in range(N_SEGMENTS):
        s = seg_start[:, k].astype(np.int64)
        e = seg_end[:, k].astype(np.int64)
        ok = s <= e
        t = medicare_from.astype(np.int64)
        pre_e = np.where(t >= OPEN_END, e, np.minimum(e, t - 1))
        pre_ok = ok & (payer_pre != MEDICARE) & (s <= pre_e)
        med_s = np.where(payer_pre == MEDICARE, s, np.maximum(s, t))
        med_ok = ok & (med_s <= e) & ((payer_pre == MEDICARE) | (t < OPEN_END))
        parts.append((pos_all[pre_ok], s[pre_ok], pre_e[pre_ok], payer_pre[pre_ok], lob_pre[pre_ok],
                      np.full(int(pre_ok.sum()), "none", dtype=object)))
        parts.append((pos_all[med_ok], med_s[med_ok], e[med_ok], np.full(int(med_ok.sum()), MEDICARE), lob_medicare[med_ok],
                      dual_status[med_ok]))
        dm = med_ok & dual
        parts.append((pos_all[dm], med_s[dm], e[dm], np.full(int(dm.sum()), MEDICAID), lob_dual_medicaid[dm],
                      dual_status[dm]))
    pos = np.concatenate([x[0] for x in parts])
    start = np.concatenate([x[1] for x in parts])
    end = np.concatenate([x[2] for x in parts])
    payer = np.concatenate([x[3] for x in parts]).astype(np.int64)
    lob = np.concatenate([x[4] for x in parts]).astype(str)
    dstat = np.concatenate([x[5] for x in parts]).astype(str)
    df = pl.DataFrame({
        "_pos": pos, "member_id": member_id[pos], "payer": PAYER_NAMES[payer], "line_of_business": lob,
        "plan_id": _plan_ids(lob, state[pos], plan_no[pos]).astype(str), "dual_status": dstat,
        "enrollment_start": start.astype(np.int32), "enrollment_end": end.astype(np.int32),
    })
    return (
        df.sort("_pos", "enrollment_start", "payer")
        .drop("_pos")
        .with_columns(dates_to_str("enrollment_start"), dates_to_str("enrollment_end"))
    )
