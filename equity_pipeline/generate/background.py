"""Background utilisation: office, preventive, telehealth, behavioural, lab, ED, inpatient and imaging
claims, pharmacy fills, SDOH screenings and clinical observations.

None of it carries a code reserved for planted measures (``vocab.RESERVED_CODES``), so planted truth
is never disturbed by background noise. Everything is vectorised over encounters; encounters fall on
days the member is enrolled and alive.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .claims import assemble
from .context import ChunkContext, cents_to_str, dates_to_str, pick, str_series, year_of, year_start
from .population import COMMERCIAL, DX_INDEX, DX_VOCAB, MEDICAID, MEDICARE, PAYER_SERIES, Population
from .providers import Providers

DX_SERIES = pl.Series("dx", [None, *DX_VOCAB], dtype=pl.String)
COND_INDEX = {c.name: j for j, c in enumerate(vocab.CONDITIONS)}
MAX_DX = 12


# ------------------------------------------------------------------------------------------ helpers
def _dx_strings(mat: np.ndarray) -> list[pl.Series]:
    """(n, k) matrix of DX_VOCAB indices (-1 empty) -> k string series, de-duplicated and left-packed."""
    mat = mat.copy()
    for j in range(1, mat.shape[1]):
        dup = (mat[:, :j] == mat[:, j:j + 1]).any(axis=1)
        mat[dup, j] = -1
    order = np.argsort(mat < 0, axis=1, kind="stable")
    mat = np.take_along_axis(mat, order, axis=1)[:, :MAX_DX]
    return [DX_SERIES.gather(pl.Series(mat[:, j] + 1)) for j in range(mat.shape[1])]


def _acute(rng: np.random.Generator, pairs, size: int) -> np.ndarray:
    idx = np.array([DX_INDEX[c] for c, _ in pairs])
    return idx[pick(rng, pairs, size)]


def _primary_dx(rng, pop: Population, m: np.ndarray, chronic_share: float, acute_pairs) -> np.ndarray:
    """A chronic problem of the member (if any, with ``chronic_share``) or an acute diagnosis."""
    pl_rows = pop.problem_list[m]
    n_prob = (pl_rows >= 0).sum(axis=1)
    choose = np.floor(rng.random(len(m)) * np.maximum(n_prob, 1)).astype(np.int64)
    chronic = pl_rows[np.arange(len(m)), choose]
    use_chronic = (n_prob > 0) & (rng.random(len(m)) < chronic_share)
    return np.where(use_chronic, chronic, _acute(rng, acute_pairs, len(m)))


def _with_problems(primary: np.ndarray, pop: Population, m: np.ndarray, k: int, extra: list[np.ndarray] = ()) -> np.ndarray:
    cols = [primary[:, None], *[e[:, None] for e in extra], pop.problem_list[m][:, :k]]
    return np.concatenate(cols, axis=1)


def _lines_from_matrix(sel: np.ndarray):
    """Boolean (claims, options) matrix -> (line_claim, option index) for every True cell."""
    c, o = np.nonzero(sel)
    return c, o


def _encounters(rng, pop: Population, rate: np.ndarray, years: list[int]):
    """Poisson counts per member and year; returns (member_pos, day) of covered encounters."""
    ms, ds = [], []
    for y in years:
        counts = rng.poisson(rate)
        m = np.repeat(np.arange(pop.n), counts)
        y0 = int(year_start(np.array([y]))[0])
        y1 = int(year_start(np.array([y + 1]))[0])
        d = rng.integers(y0, y1, size=len(m)).astype(np.int32)
        ms.append(m)
        ds.append(d)
    m = np.concatenate(ms)
    d = np.concatenate(ds)
    ok = pop.covered(m, d)
    return m[ok], d[ok]


def _codes(pairs, idx):
    return np.array([p[0] for p in pairs], dtype=object)[idx]


def _prices(pairs, idx):
    return np.array([p[2] for p in pairs], dtype=np.float64)[idx]


# ------------------------------------------------------------------------------------------ medical
def background_medical(ctx: ChunkContext, pop: Population, providers: Providers) -> list[pl.DataFrame]:
    p = ctx.period
    years = [p.measurement_year - 2, p.measurement_year - 1, p.measurement_year]
    n_cond = pop.conditions.sum(axis=1)
    age = pop.age
    age_f = np.select([age < 18, age < 45, age < 65, age < 75], [0.8, 0.8, 1.0, 1.3], 1.5)
    sex_f = np.where((pop.sex == "F") & (age >= 18), 1.15, 1.0)
    m_base = (1 + 0.35 * n_cond) * age_f * sex_f
    out: list[pl.DataFrame] = []
    roles = providers.roles

    # ---- office visits
    rng = ctx.rng("office")
    m, d = _encounters(rng, pop, 1.3 * m_base, years)
    n = len(m)
    new = rng.random(n) < 0.08
    em_est = pick(rng, vocab.OFFICE_EM_EST, n)
    em_new = pick(rng, vocab.OFFICE_EM_NEW, n)
    em_code = np.where(new, _codes(vocab.OFFICE_EM_NEW, em_new), _codes(vocab.OFFICE_EM_EST, em_est))
    em_price = np.where(new, _prices(vocab.OFFICE_EM_NEW, em_new), _prices(vocab.OFFICE_EM_EST, em_est))
    anc_p = np.array([a[1] for a in vocab.ANCILLARY]) * 0.7
    sel = rng.random((n, len(vocab.ANCILLARY))) < anc_p
    ac, ao = _lines_from_matrix(sel)
    line_claim = np.concatenate([np.arange(n), ac])
    hcpcs = np.concatenate([em_code, _codes(vocab.ANCILLARY, ao)])
    mods = np.concatenate([np.where(sel.any(axis=1), "25", None), np.array([a[3] or None for a in vocab.ANCILLARY], dtype=object)[ao]])
    price = np.concatenate([em_price, _prices(vocab.ANCILLARY, ao)])
    u = rng.random(n)
    medicaid = pop.payer_at(m, d) == MEDICAID
    billing = np.where(u < 0.7, pop.pcp[m], roles["specialist"].pick(pop.county[m], rng))
    fqhc = rng.random(n) < np.where(medicaid, 0.30, 0.05)
    billing = np.where(fqhc, roles["fqhc"].pick(pop.county[m], rng), billing)
    pos = np.select([rng.random(n) < 0.90], ["11"], "22")
    primary = _primary_dx(rng, pop, m, 0.55, vocab.ACUTE_OFFICE_DX)
    sdoh_extra = np.where(pop.sdoh_need[m, 0] & (rng.random(n) < 0.15), DX_INDEX[vocab.SDOH_Z_CODES["food"]], -1)
    dx = _dx_strings(_with_problems(primary, pop, m, 3, [sdoh_extra]))
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="professional", from_date=d, thru_date=d,
                        line_claim=line_claim, line_price=price, header={"billing_npi": billing},
                        lines={"hcpcs_code": hcpcs, "hcpcs_modifier": mods, "place_of_service": pos[line_claim]},
                        dx=dx, denied_share=0.02))

    # ---- preventive visits (at most one a year)
    rng = ctx.rng("preventive")
    p_prev = np.where(age < 18, 0.7, np.where(age >= 65, 0.55, 0.42))
    mm, d = _encounters(rng, pop, -np.log1p(-p_prev), years)
    _, first = np.unique(mm.astype(np.int64) * 10_000 + year_of(d), return_index=True)  # one per member-year
    m, d = mm[first], d[first]
    # well-care visits of members 3-21 in MY are planted by WCV (plant_wcv.py), and every well-child
    # visit of members up to 3 on Dec 31 MY by W30 (plant_w30.py): never background
    wcv_age = (pop.age[m] >= vocab.WCV_AGE[0]) & (pop.age[m] <= vocab.WCV_AGE[1]) & (d >= p.my_start)
    w30_age = pop.age[m] <= vocab.W30_MAX_AGE
    m, d = m[~(wcv_age | w30_age)], d[~(wcv_age | w30_age)]
    n = len(m)
    ages_at = pop.age[m] - (p.measurement_year - year_of(d))
    thresholds = np.array([t[0] for t in vocab.PREVENTIVE_BY_AGE])
    band = np.searchsorted(thresholds, np.maximum(ages_at, 0))
    prev_code = np.array([t[1] for t in vocab.PREVENTIVE_BY_AGE], dtype=object)[band]
    prev_price = np.array([t[2] for t in vocab.PREVENTIVE_BY_AGE], dtype=np.float64)[band]
    awv = (pop.payer_at(m, d) == MEDICARE) & (ages_at >= 65) & (rng.random(n) < 0.6)
    prev_code = np.where(awv, "G0439", prev_code)
    prev_price = np.where(awv, 13000.0, prev_price)
    extras = (("90471", 0.45, 1700), ("36415", 0.4, 300), ("96127", 0.3, 450))
    sel = rng.random((n, len(extras))) < np.array([e[1] for e in extras])
    ac, ao = _lines_from_matrix(sel)
    line_claim = np.concatenate([np.arange(n), ac])
    hcpcs = np.concatenate([prev_code, _codes(extras, ao)])
    price = np.concatenate([prev_price, _prices(extras, ao)])
    child = ages_at < 18
    z_child = np.array([DX_INDEX[c] for c in vocab.PREVENTIVE_DX_CHILD])
    z_adult = np.array([DX_INDEX[c] for c in vocab.PREVENTIVE_DX_ADULT])
    zi = rng.integers(0, 2, size=n)
    primary = np.where(child, z_child[zi], z_adult[zi])
    dx = _dx_strings(_with_problems(primary, pop, m, 3))
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="professional", from_date=d, thru_date=d,
                        line_claim=line_claim, line_price=price, header={"billing_npi": pop.pcp[m]},
                        lines={"hcpcs_code": hcpcs, "place_of_service": "11"}, dx=dx))

    # ---- telehealth and behavioural health
    rng = ctx.rng("telehealth")
    m, d = _encounters(rng, pop, 0.3 * m_base, years)
    n = len(m)
    t = pick(rng, vocab.TELEHEALTH_EM, n)
    dx = _dx_strings(_with_problems(_primary_dx(rng, pop, m, 0.6, vocab.ACUTE_OFFICE_DX), pop, m, 2))
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="professional", from_date=d, thru_date=d,
                        line_claim=np.arange(n), line_price=_prices(vocab.TELEHEALTH_EM, t),
                        header={"billing_npi": pop.pcp[m]},
                        lines={"hcpcs_code": _codes(vocab.TELEHEALTH_EM, t), "hcpcs_modifier": "95",
                               "place_of_service": "10"}, dx=dx, denied_share=0.01))

    rng = ctx.rng("behavioral")
    dep = pop.conditions[:, COND_INDEX["depression"]]
    anx = pop.conditions[:, COND_INDEX["anxiety"]]
    in_therapy = (dep | anx) & (rng.random(pop.n) < 0.3)
    m, d = _encounters(rng, pop, np.where(in_therapy, 6.0, 0.0), years)
    n = len(m)
    b = pick(rng, vocab.BEHAVIORAL, n)
    primary = np.where(dep[m], pop.condition_code[m, COND_INDEX["depression"]], pop.condition_code[m, COND_INDEX["anxiety"]])
    dx = _dx_strings(_with_problems(primary, pop, m, 1))
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="professional", from_date=d, thru_date=d,
                        line_claim=np.arange(n), line_price=_prices(vocab.BEHAVIORAL, b),
                        header={"billing_npi": roles["specialist"].pick(pop.county[m], rng)},
                        lines={"hcpcs_code": _codes(vocab.BEHAVIORAL, b),
                               "place_of_service": np.where(rng.random(n) < 0.3, "10", "11")}, dx=dx))

    # ---- laboratory
    rng = ctx.rng("lab")
    m, d = _encounters(rng, pop, 0.6 * (1 + 0.3 * n_cond) * np.where(age < 18, 0.4, 1.0), years)
    n = len(m)
    lab_p = np.minimum(np.array([x[1] for x in vocab.LAB_TESTS]) * 2.2, 0.8)
    sel = rng.random((n, len(vocab.LAB_TESTS))) < lab_p
    sel[~sel.any(axis=1), 2] = True  # at least a CBC
    ac, ao = _lines_from_matrix(sel)
    diab = pop.conditions[m, COND_INDEX["diabetes"]] & (rng.random(n) < 0.7)
    a1c = np.nonzero(diab)[0]
    line_claim = np.concatenate([ac, a1c])
    hcpcs = np.concatenate([_codes(vocab.LAB_TESTS, ao), np.full(len(a1c), vocab.HBA1C_LAB[0], dtype=object)])
    price = np.concatenate([_prices(vocab.LAB_TESTS, ao), np.full(len(a1c), float(vocab.HBA1C_LAB[1]))])
    primary = np.where(pop.problem_list[m, 0] >= 0, pop.problem_list[m, 0], DX_INDEX[vocab.LAB_DX_FALLBACK])
    dx = _dx_strings(_with_problems(primary, pop, m, 2))
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="professional", from_date=d, thru_date=d,
                        line_claim=line_claim, line_price=price, header={"billing_npi": roles["lab"].pick(pop.county[m], rng)},
                        lines={"hcpcs_code": hcpcs, "place_of_service": "81"}, dx=dx, denied_share=0.02))

    # ---- emergency department: facility claim (131) and ED physician claim (POS 23)
    rng = ctx.rng("ed")
    ed_rate = 0.22 * (1 + 0.25 * n_cond) * np.where(pop.payer_pre == MEDICAID, 1.8, 1.0)
    m, d = _encounters(rng, pop, ed_rate, years[:-1])  # ED visits in MY are planted (plant_ed.py)
    n = len(m)
    hosp = np.where(rng.random(n) < 0.8, pop.hospital_pos[m], roles["hospital"].positions(pop.county[m], rng))
    em = pick(rng, vocab.ED_FACILITY_EM, n)
    sel = rng.random((n, len(vocab.ED_FACILITY_EXTRA))) < np.array([x[2] for x in vocab.ED_FACILITY_EXTRA])
    ac, ao = _lines_from_matrix(sel)
    line_claim = np.concatenate([np.arange(n), ac])
    rev = np.concatenate([np.array([x[0] for x in vocab.ED_FACILITY_EM], dtype=object)[em],
                          np.array([x[0] for x in vocab.ED_FACILITY_EXTRA], dtype=object)[ao]])
    hcpcs = np.concatenate([np.array([x[1] for x in vocab.ED_FACILITY_EM], dtype=object)[em],
                            np.array([x[1] or None for x in vocab.ED_FACILITY_EXTRA], dtype=object)[ao]])
    price = np.concatenate([np.array([x[3] for x in vocab.ED_FACILITY_EM], dtype=float)[em],
                            np.array([x[3] for x in vocab.ED_FACILITY_EXTRA], dtype=float)[ao]])
    primary = _acute(rng, vocab.ED_DX, n)
    dx_idx = _with_problems(primary, pop, m, 3)
    dx = _dx_strings(dx_idx)
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="institutional", from_date=d, thru_date=d,
                        line_claim=line_claim, line_price=price,
                        header={"bill_type": "131", "discharge_status": "01", "billing_npi": roles["hospital"].ids[hosp],
                                "facility_ccn": roles["hospital"].ccns[hosp]},
                        lines={"revenue_code": rev, "hcpcs_code": hcpcs}, dx=dx, denied_share=0.02))
    e = pick(rng, vocab.ED_PROF, n)
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="professional", from_date=d, thru_date=d,
                        line_claim=np.arange(n), line_price=_prices(vocab.ED_PROF, e),
                        header={"billing_npi": roles["ed_group"].pick(pop.county[m], rng)},
                        lines={"hcpcs_code": _codes(vocab.ED_PROF, e), "place_of_service": "23"},
                        dx=_dx_strings(dx_idx[:, :2])))

    # ---- inpatient stays: facility claim (111) and hospitalist claim (POS 21)
    rng = ctx.rng("inpatient")
    ip_base = np.select([age < 18, age < 45, age < 65, age < 75], [0.012, 0.03, 0.05, 0.12], 0.22)
    m, d = _encounters(rng, pop, ip_base * (1 + 0.3 * n_cond), years)
    cases = vocab.INPATIENT_CASES
    ages_m, female_m = pop.age[m], pop.sex[m] == "F"
    allowed_case = np.stack([(ages_m >= c.age_min) & (ages_m <= c.age_max) & (female_m | ~c.female_only) for c in cases], axis=1)
    w = np.array([c.weight for c in cases]) * allowed_case
    # admissions in MY with a PQI principal diagnosis are planted (plant_pqi.py), never background
    pqi_case = np.array([c.drg in vocab.PQI_DRGS for c in cases])
    w = np.where((d >= p.my_start)[:, None] & pqi_case[None, :], 0.0, w)
    ok = w.sum(axis=1) > 0
    m, d, w = m[ok], d[ok], w[ok]
    cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    case = np.minimum((cum < rng.random(len(m))[:, None]).sum(axis=1), len(cases) - 1)
    surgical = np.array([c.surgical for c in cases])[case]
    los = np.minimum(1 + rng.geometric(np.where(surgical, 0.45, 0.3)), 20).astype(np.int32)
    disch = d + los
    ok = pop.covered(m, disch)
    m, d, case, surgical, los, disch = m[ok], d[ok], case[ok], surgical[ok], los[ok], disch[ok]
    # newborn stays on the day of birth
    born = (pop.birth >= p.window_start) & pop.covered(np.arange(pop.n), pop.birth)
    nb = np.nonzero(born)[0]
    nb_los = np.full(len(nb), 2, dtype=np.int32)
    self_idx = len(cases)
    all_cases = (*cases, vocab.NEWBORN_CASE)
    m = np.concatenate([m, nb])
    d = np.concatenate([d, pop.birth[nb]]).astype(np.int32)
    case = np.concatenate([case, np.full(len(nb), self_idx)])
    surgical = np.concatenate([surgical, np.zeros(len(nb), dtype=bool)])
    los = np.concatenate([los, nb_los])
    disch = (d + los).astype(np.int32)
    n = len(m)
    hosp = np.where(rng.random(n) < 0.85, pop.hospital_pos[m], roles["hospital"].positions(pop.county[m], rng))
    # lines: room and board (x LOS), ancillaries, OR for surgical cases
    extras = vocab.IP_REVENUE_EXTRA
    probs = np.array([x[1] for x in extras])
    sel = rng.random((n, len(extras))) < probs
    sel[:, -1] = surgical
    newborn = case == self_idx
    sel[newborn] = False
    ac, ao = _lines_from_matrix(sel)
    line_claim = np.concatenate([np.arange(n), ac])
    room_rev = np.where(newborn, "0171", vocab.IP_REVENUE_ROOM[0])
    rev = np.concatenate([room_rev, np.array([x[0] for x in extras], dtype=object)[ao]])
    price = np.concatenate([np.where(newborn, 60000.0, float(vocab.IP_REVENUE_ROOM[1])) * los,
                            np.array([x[2] for x in extras], dtype=float)[ao]])
    case_dx = np.full((n, 3), -1, dtype=np.int64)
    case_pcs = np.full((n, 2), None, dtype=object)
    for ci, c in enumerate(all_cases):
        mask = case == ci
        for j, code in enumerate(c.dx[:3]):
            case_dx[mask, j] = DX_INDEX[code]
        for j, code in enumerate(c.pcs[:2]):
            case_pcs[mask, j] = code
    dx_idx = np.concatenate([case_dx, np.where(newborn[:, None], -1, pop.problem_list[m])], axis=1)
    dx = _dx_strings(dx_idx)
    ds = _codes(vocab.DISCHARGE_STATUS, pick(rng, vocab.DISCHARGE_STATUS, n))
    ds = np.where(newborn, "01", ds)
    drg = np.array([c.drg for c in all_cases], dtype=object)[case]
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="institutional", from_date=d, thru_date=disch,
                        line_claim=line_claim, line_price=price,
                        header={"bill_type": "111", "admit_date": d, "discharge_date": disch, "discharge_status": ds,
                                "drg_code": drg, "billing_npi": roles["hospital"].ids[hosp],
                                "facility_ccn": roles["hospital"].ccns[hosp]},
                        lines={"revenue_code": rev}, dx=dx, pcs=[case_pcs[:, 0], case_pcs[:, 1]], denied_share=0.01))
    # hospitalist: initial day, up to four subsequent days, discharge day
    adult = ~newborn
    ma, da, la = m[adult], d[adult], los[adult]
    k_sub = np.minimum(la - 1, 4)
    n_lines = 2 + k_sub
    line_claim = np.repeat(np.arange(len(ma)), n_lines)
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    offs = np.arange(len(line_claim)) - starts[line_claim]
    last = offs == n_lines[line_claim] - 1
    day_off = np.where(last, la[line_claim], offs)
    code = np.where(offs == 0, vocab.IP_PROF_FIRST[0], np.where(last, vocab.IP_PROF_DISCHARGE[0], vocab.IP_PROF_SUBSEQUENT[0]))
    price = np.where(offs == 0, vocab.IP_PROF_FIRST[1], np.where(last, vocab.IP_PROF_DISCHARGE[1], vocab.IP_PROF_SUBSEQUENT[1]))
    line_day = (da[line_claim] + day_off).astype(np.int32)
    out.append(assemble(ctx, pop, rng, member_pos=ma, claim_type="professional", from_date=da, thru_date=da + la,
                        line_claim=line_claim, line_price=price.astype(float),
                        header={"billing_npi": roles["hospitalist"].pick(pop.county[ma], rng)},
                        lines={"hcpcs_code": code.astype(object), "place_of_service": "21"},
                        dx=[s.filter(pl.Series(adult)) for s in dx[:3]], line_from=line_day, line_thru=line_day))

    # ---- outpatient hospital imaging (131)
    rng = ctx.rng("imaging")
    m, d = _encounters(rng, pop, np.where(age >= 18, 0.12 * (1 + 0.3 * n_cond), 0.0), years)
    n = len(m)
    k = pick(rng, [(x[0], x[2]) for x in vocab.OP_IMAGING], n)
    hosp = roles["hospital"].positions(pop.county[m], rng)
    dx = _dx_strings(_with_problems(_primary_dx(rng, pop, m, 0.5, vocab.ACUTE_OFFICE_DX), pop, m, 2))
    out.append(assemble(ctx, pop, rng, member_pos=m, claim_type="institutional", from_date=d, thru_date=d,
                        line_claim=np.arange(n), line_price=np.array([x[3] for x in vocab.OP_IMAGING], dtype=float)[k],
                        header={"bill_type": "131", "discharge_status": "01", "billing_npi": roles["hospital"].ids[hosp],
                                "facility_ccn": roles["hospital"].ccns[hosp]},
                        lines={"revenue_code": np.array([x[0] for x in vocab.OP_IMAGING], dtype=object)[k],
                               "hcpcs_code": np.array([x[1] for x in vocab.OP_IMAGING], dtype=object)[k]},
                        dx=dx, denied_share=0.02))
    return out


# ------------------------------------------------------------------------------------------ pharmacy
PHARMACY_INTERNAL = ("rx_key", "_bg", "claim_version", "claim_status", "member_id", "payer", "ndc", "fill_date",
                     "days_supply", "quantity", "prescriber_npi", "paid_amount")


def background_pharmacy(ctx: ChunkContext, pop: Population, providers: Providers) -> pl.DataFrame:
    """Maintenance fills for chronic conditions (30- or 90-day, imperfect adherence) and acute fills."""
    p = ctx.period
    rng = ctx.rng("pharmacy")
    slots = np.array([c.ndc_slots for c in vocab.CONDITIONS])
    per_member = (pop.conditions * slots).astype(np.int64)
    m = np.repeat(np.repeat(np.arange(pop.n), per_member.shape[1]), per_member.ravel())
    nd = len(m)
    drug = rng.integers(0, len(vocab.MAINTENANCE_NDCS), size=nd)
    ds = np.where(rng.random(nd) < 0.35, 30, 90)
    adherence = rng.uniform(0.5, 0.95, size=nd)
    interval = ds / adherence
    first = p.window_start + rng.random(nd) * interval
    n_fills = np.floor((p.my_end - first) / interval).astype(np.int64) + 1
    fm = np.repeat(np.arange(nd), n_fills)
    starts = np.concatenate([[0], np.cumsum(n_fills)[:-1]])
    k = np.arange(len(fm)) - starts[fm]
    fill = np.round(first[fm] + k * interval[fm] + rng.integers(-2, 3, size=len(fm))).astype(np.int32)
    mem = m[fm]
    ndc = np.array([x[0] for x in vocab.MAINTENANCE_NDCS], dtype=object)[drug[fm]]
    qty30 = np.array([x[1] for x in vocab.MAINTENANCE_NDCS], dtype=float)[drug[fm]]
    price30 = np.array([x[2] for x in vocab.MAINTENANCE_NDCS], dtype=float)[drug[fm]]
    dsf = ds[fm]
    # acute fills
    ma, da = _encounters(rng, pop, np.full(pop.n, 0.5), [p.measurement_year - 2, p.measurement_year - 1, p.measurement_year])
    a = rng.integers(0, len(vocab.ACUTE_NDCS), size=len(ma))
    mem = np.concatenate([mem, ma])
    fill = np.concatenate([fill, da]).astype(np.int32)
    ndc = np.concatenate([ndc, np.array([x[0] for x in vocab.ACUTE_NDCS], dtype=object)[a]])
    qty = np.concatenate([qty30 * dsf / 30, np.array([x[1] for x in vocab.ACUTE_NDCS], dtype=float)[a]])
    price = np.concatenate([price30 * dsf / 30, np.array([x[2] for x in vocab.ACUTE_NDCS], dtype=float)[a]])
    days_supply = np.concatenate([dsf, np.minimum(np.array([x[1] for x in vocab.ACUTE_NDCS])[a], 10)])
    ok = (fill >= p.window_start) & (fill <= p.my_end) & pop.covered(mem, fill)
    mem, fill, ndc, qty, price, days_supply = mem[ok], fill[ok], ndc[ok], qty[ok], price[ok], days_supply[ok]
    n = len(mem)
    payer_idx = pop.payer_at(mem, fill)
    paid = np.round(price * np.array([1.0, 0.8, 1.3])[payer_idx] * rng.lognormal(0, 0.1, n)).astype(np.int64)
    denied = rng.random(n) < 0.01
    paid = np.where(denied, 0, paid)
    prescriber = np.where(rng.random(n) < 0.8, pop.pcp[mem], providers.roles["specialist"].pick(pop.county[mem], rng))
    df = pl.DataFrame({
        "rx_key": ctx.rx_keys(n),
        "_bg": np.ones(n, dtype=bool),
        "fill_date": fill,
        "days_supply": days_supply.astype(np.int64),
        "quantity": np.round(qty).astype(np.int64),
        "paid_amount": paid,
    }).with_columns(
        pl.lit("1").alias("claim_version"),
        pl.Series(["paid", "denied"]).gather(denied.astype(np.int64)).alias("claim_status"),
        pop.member_id_s.gather(mem).alias("member_id"),
        PAYER_SERIES.gather(payer_idx).alias("payer"),
        str_series("ndc", ndc),
        str_series("prescriber_npi", prescriber),
    )
    return df.with_columns(
        dates_to_str("fill_date"), pl.col("days_supply").cast(pl.String), pl.col("quantity").cast(pl.String),
        cents_to_str("paid_amount"),
    ).select(PHARMACY_INTERNAL)


# ------------------------------------------------------------------------------------------ SDOH
SDOH_SCREEN_RATE = {MEDICAID: 0.40, MEDICARE: 0.22, COMMERCIAL: 0.15}
OBSERVATION_FEED_SHARE = 0.35
SETTINGS = (("outpatient", 0.6), ("inpatient", 0.12), ("ed", 0.1), ("community", 0.18))


def background_sdoh(ctx: ChunkContext, pop: Population, providers: Providers) -> pl.DataFrame:
    """AHC HRSN (and some PRAPARE) screenings in the measurement year and the year before."""
    p = ctx.period
    rng = ctx.rng("sdoh")
    rate = np.array([SDOH_SCREEN_RATE[int(x)] for x in range(3)])[pop.payer_pre]
    rate = np.where(pop.age >= 18, rate, 0.3 * rate)
    m, d = _encounters(rng, pop, rate, [p.measurement_year - 1, p.measurement_year])
    n = len(m)
    keys = ctx.screening_keys(n)
    prapare = rng.random(n) < 0.15
    setting = _codes([(s, w, 0) for s, w in SETTINGS], pick(rng, SETTINGS, n))
    hosp = providers.roles["hospital"].positions(pop.county[m], rng)
    ccn = np.where(setting == "community", None,
                   np.where(setting == "outpatient",
                            np.where(rng.random(n) < 0.5, providers.roles["fqhc"].ccns[providers.roles["fqhc"].positions(pop.county[m], rng)],
                                     providers.roles["hospital"].ccns[hosp]),
                            providers.roles["hospital"].ccns[hosp]))
    frames = []
    domain_col = {dom: j for j, dom in enumerate(("food", "housing", "transportation", "utilities"))}
    for instrument, questions, mask in (("ahc_hrsn", vocab.AHC_HRSN_QUESTIONS, ~prapare), ("prapare", vocab.PRAPARE_QUESTIONS, prapare)):
        idx = np.nonzero(mask)[0]
        for q in questions:
            need = pop.sdoh_need[m[idx], domain_col[q.domain]]
            pos_answers = np.array([a for a, pos in zip(q.answers, q.positive) if pos], dtype=object)
            neg_answers = np.array([a for a, pos in zip(q.answers, q.positive) if not pos], dtype=object)
            ans = np.where(need, pos_answers[rng.integers(0, len(pos_answers), len(idx))],
                           neg_answers[rng.integers(0, len(neg_answers), len(idx))])
            ans = np.where(rng.random(len(idx)) < 0.03, "ASKU", ans)
            frames.append(pl.DataFrame({
                "_key": keys[idx], "member_id": pop.member_id[m[idx]], "screening_date": d[idx],
                "instrument": np.full(len(idx), instrument), "question_code": np.full(len(idx), q.loinc),
                "answer_code": ans.astype(str), "setting": setting[idx].astype(str),
                "facility_ccn": str_series("facility_ccn", ccn[idx]),
            }))
    df = pl.concat(frames).sort("_key", "question_code")
    df = df.with_columns(
        ("S" + pl.lit(f"{ctx.chunk_index:04d}") + pl.col("_key").cast(pl.String).str.zfill(8)).alias("screening_id"),
        pl.lit(None, dtype=pl.String).alias("answer_value"),
        dates_to_str("screening_date"),
    ).unique(["screening_id", "question_code"], keep="first", maintain_order=True)
    return df.select("member_id", "screening_id", "screening_date", "instrument", "question_code", "answer_code",
                     "answer_value", "setting", "facility_ccn")


# ------------------------------------------------------------------------------------------ clinical
OBSERVATION_INTERNAL = {"pos": pl.Int64, "day": pl.Int32, "loinc": pl.String, "value": pl.Float64, "unit": pl.String,
                        "source_system": pl.String}


def background_observations(ctx: ChunkContext, pop: Population) -> pl.DataFrame:
    """Blood pressure pairs and HbA1c results for members whose clinics send an EHR/HIE feed.

    Returns the internal frame (``OBSERVATION_INTERNAL``: member position, day number, numeric value);
    planted measures (CBP, HBD) may set the values of a member's latest readings, and
    :func:`stringify_observations` writes the contract layout at the end."""
    p = ctx.period
    rng = ctx.rng("observations")
    feed = rng.random(pop.n) < OBSERVATION_FEED_SHARE
    adult = pop.age >= 18
    htn = pop.conditions[:, COND_INDEX["hypertension"]]
    diab = pop.conditions[:, COND_INDEX["diabetes"]]
    years = [p.measurement_year - 2, p.measurement_year - 1, p.measurement_year]
    m, d = _encounters(rng, pop, np.where(feed & adult, 1.5 + htn, 0.0), years)
    n = len(m)
    sys_v = np.round(rng.normal(124 + 12 * htn[m], 14)).clip(85, 210)
    dia_v = np.round(rng.normal(77 + 6 * htn[m], 9)).clip(45, 125)
    src = np.where(rng.random(n) < 0.8, "ehr", "hie")
    bp = pl.DataFrame({
        "pos": np.concatenate([m, m]).astype(np.int64),
        "day": np.concatenate([d, d]).astype(np.int32),
        "loinc": np.concatenate([np.full(n, vocab.LOINC_SYSTOLIC[0]), np.full(n, vocab.LOINC_DIASTOLIC[0])]),
        "value": np.concatenate([sys_v, dia_v]).astype(np.float64),
        "unit": np.full(2 * n, vocab.LOINC_SYSTOLIC[1]),
        "source_system": np.concatenate([src, src]),
    }, schema=OBSERVATION_INTERNAL)
    ma, da = _encounters(rng, pop, np.where(feed & adult, np.where(diab, 2.0, 0.15), 0.0), years)
    na = len(ma)
    a1c = np.where(diab[ma], rng.normal(7.4, 1.3, na), rng.normal(5.5, 0.4, na)).clip(4.0, 14.0)
    a1c_df = pl.DataFrame({
        "pos": ma.astype(np.int64), "day": da.astype(np.int32),
        "loinc": np.full(na, vocab.LOINC_HBA1C[0]),
        "value": np.round(a1c, 1),
        "unit": np.full(na, vocab.LOINC_HBA1C[1]),
        "source_system": np.where(rng.random(na) < 0.6, "lab", "ehr"),
    }, schema=OBSERVATION_INTERNAL)
    return pl.concat([bp, a1c_df]).unique(["pos", "day", "loinc"], keep="first", maintain_order=True)


def stringify_observations(df: pl.DataFrame, pop: Population) -> pl.DataFrame:
    """Internal observation frame -> contract columns (blood pressure as whole numbers, HbA1c with one decimal)."""
    whole = pl.col("loinc").is_in([vocab.LOINC_SYSTOLIC[0], vocab.LOINC_DIASTOLIC[0]])
    return df.select(
        pop.member_id_s.gather(df["pos"]).alias("member_id"),
        pl.col("day").alias("observation_date"),
        pl.col("loinc").alias("loinc_code"),
        pl.when(whole).then(pl.col("value").round(0).cast(pl.Int64).cast(pl.String))
        .otherwise(pl.col("value").round(1).cast(pl.String)).alias("value_numeric"),
        "unit", "source_system",
    ).with_columns(dates_to_str("observation_date"))
