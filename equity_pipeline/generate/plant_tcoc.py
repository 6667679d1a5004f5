"""Planted measures: Total Cost of Care PMPM (TCOC_PMPM) and Primary Care Share of spend.

A mean cost cannot be planted by drawing claims: what background utilisation spends per member
month in a stratum is known only after the fact. So these two run last and plant with fixed margins
on top of everything produced before: per chunk and stratum they read the members' paid amounts with
a service date in MY (medical lines after claim versions and voids, denied lines at zero, pharmacy
fills) and their member months, and add two payments per member (in proportion to member months) so
that the stratum's spend per member month equals the planted TCOC and its primary-care share the
planted share, to the cent:

* a chronic care management claim billed by the member's primary-care practice (CPT 99490: primary
  care, since the providers table flags the PCP);
* a remote monitoring claim billed by a specialist practice (CPT 99091: not primary care).

Both codes appear nowhere else in the data. Members without a covered day in MY hand their share to
other members of the stratum. Planted values: ``TCOC_PMPM`` USD per member month, ``PRIMARY_CARE_SHARE``
primary-care paid / total paid (medical and pharmacy), per stratum. Where a stratum's spend already
exceeds the target (tiny groups with a large stay), nothing is added and the truth is what was spent.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from equity_pipeline.standards.race_ethnicity import RACE_ETHNICITY_STRATA, ROLLUP_VERSION

from .claims import PAYER_PAID_RATIO
from .context import ChunkContext
from .evidence import member_months
from .forms import professional
from .planted import PlantResult, by_stratum, sample_covered_dates, stratum_index
from .population import Population
from .providers import Providers

MEASURE_ID = "TCOC_PMPM"
NAME = "Total Cost of Care per Member per Month"
RATES: dict[str, float] = by_stratum(610.0, 690.0, 640.0, 560.0, 720.0, 670.0, 600.0, 640.0, 630.0, 600.0, 640.0)
PC_SHARE: dict[str, float] = by_stratum(0.16, 0.13, 0.14, 0.17, 0.12, 0.13, 0.15, 0.15, 0.14, 0.15, 0.14)
CODES = {"primary_care": "99490", "other": "99091"}


def _spread(rng, total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` cents over members in proportion to ``weights``, summing exactly."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    raw = total * weights / weights.sum()
    base = np.floor(raw).astype(np.int64)
    rest = int(total - base.sum())  # fewer than len(weights): one more cent for that many members
    if rest:
        base[rng.choice(len(weights), size=rest, replace=False, p=weights / weights.sum())] += 1
    return base


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    rng = ctx.rng("plant_tcoc")
    n = pop.n
    mm = member_months(pop, p).sum(axis=1)
    sidx = stratum_index(pop)
    day, has_day = sample_covered_dates(rng, pop, np.arange(n), p.my_start, p.my_end, tries=32)
    pay_pc = np.zeros(n, dtype=np.int64)
    pay_other = np.zeros(n, dtype=np.int64)
    theta = np.array([RATES[s] for s in RACE_ETHNICITY_STRATA])
    rho = np.array([PC_SHARE[s] for s in RACE_ETHNICITY_STRATA])
    for j in range(len(RACE_ETHNICITY_STRATA)):
        members = np.nonzero((sidx == j) & (mm > 0))[0]
        if len(members) == 0:
            continue
        months = int(mm[members].sum())
        spend, pc = int(ev.paid_my[members].sum()), int(ev.primary_care_paid_my[members].sum())
        target = int(round(theta[j] * months * 100))
        a = max(int(round(rho[j] * target)) - pc, 0)
        b = max(target - spend - a, 0)
        payers = members[has_day[members]]
        w = mm[payers].astype(np.float64)
        pay_pc[payers] += _spread(rng, a, w)
        pay_other[payers] += _spread(rng, b, w)
    frames = []
    for amount, code, billing in ((pay_pc, CODES["primary_care"], pop.pcp),
                                  (pay_other, CODES["other"], None)):
        pos = np.nonzero(amount > 0)[0]
        if len(pos) == 0:
            continue
        bill = billing[pos] if billing is not None else providers.roles["specialist"].pick(pop.county[pos], rng)
        f = professional(ctx, pop, rng, pos, day[pos], [code], [1.0], bill, place="11", dx=[np.full(len(pos), "Z7189")])
        paid = pl.Series(amount[pos])
        ratio = PAYER_PAID_RATIO[pop.payer_at(pos, day[pos])]
        frames.append(f.with_columns(paid_amount=paid, allowed_amount=(paid / pl.Series(ratio)).round(0).cast(pl.Int64)))
    after = ev.preview(frames)
    members = pl.DataFrame({
        "member_id": pop.member_id, "stratum": pop.stratum, "member_months": mm, "denominator": mm > 0,
        "paid_cents": after.paid_my, "primary_care_paid_cents": after.primary_care_paid_my,
        "planted_pmpm": np.where(mm > 0, theta[sidx], np.nan), "planted_share": np.where(mm > 0, rho[sidx], np.nan),
    })
    return PlantResult(medical_lines=frames, members=members)


def cost_summary(measure_id: str, name: str, members: pl.DataFrame, rates: dict[str, float], numerator: str,
                 denominator: str, unit: str, definition: dict) -> dict:
    """truth.json entry of a cost measure: per stratum members, numerator and denominator (dollars or
    member months) and the rate, for all members (``planted``) and without quarantined ones (``expected``)."""

    def block(df: pl.DataFrame) -> dict:
        df = df.filter(pl.col("denominator"))
        agg = {r["stratum"]: r for r in df.group_by("stratum").agg(
            pl.len().alias("members"), pl.col(numerator).sum().alias("num"), pl.col(denominator).sum().alias("den")).to_dicts()}
        out = {}
        for s in RACE_ETHNICITY_STRATA:
            r = agg.get(s, {"members": 0, "num": 0, "den": 0})
            num, den = float(r["num"]), float(r["den"])
            out[s] = {"members": int(r["members"]), "numerator": round(num, 2), "denominator": round(den, 2),
                      "rate": round(num / den, 6) if den else None}
        return out

    df = members.with_columns((pl.col("paid_cents") / 100).alias("paid"), (pl.col("primary_care_paid_cents") / 100).alias("pc_paid"))
    clean = df.filter(~pl.col("quarantined"))
    return {
        "measure_id": measure_id, "name": name, "kind": "cost", "stratifier": "race_ethnicity", "rollup_version": ROLLUP_VERSION,
        "depends_only_on": "race_ethnicity", "unit": unit, "rates": dict(rates), "definition": definition,
        "planted": block(df), "expected": block(clean),
        "expected_note": "numerator and denominator per stratum as a correct pipeline sums them (dollars, member months); "
                         "planted with fixed margins per chunk and stratum, so rate == the planted value up to cents",
    }


def summarize(members: pl.DataFrame, period) -> dict:
    definition = {
        "population": "members with at least one member month in MY", "numerator": "paid amounts with a service date in MY "
        "(final medical lines, denied at zero, and pharmacy fills)", "denominator": "member months (enrolled on the 15th)",
        "planted_by": {"primary_care": CODES["primary_care"], "other": CODES["other"]},
    }
    return cost_summary(MEASURE_ID, NAME, members, RATES, "paid", "member_months", "USD per member month", definition)
