"""Planted measure: Primary Care Share of Total Spend (PRIMARY_CARE_SHARE), by stratum.

Adds no records: ``plant_tcoc`` plants both cost measures (see its docstring). The truth is the
members' primary-care paid amounts (medical lines billed by a provider the providers table flags as
primary care) over their total paid amounts (medical and pharmacy) in MY, per stratum, read back from
every record.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from .context import ChunkContext
from .evidence import member_months
from .plant_tcoc import PC_SHARE, cost_summary
from .planted import PlantResult
from .population import Population
from .providers import Providers

MEASURE_ID = "PRIMARY_CARE_SHARE"
NAME = "Primary Care Share of Total Spend"
RATES = dict(PC_SHARE)


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    ev = ctx.evidence
    mm = member_months(pop, ctx.period).sum(axis=1)
    members = pl.DataFrame({
        "member_id": pop.member_id, "stratum": pop.stratum, "member_months": mm, "denominator": mm > 0,
        "paid_cents": ev.paid_my, "primary_care_paid_cents": ev.primary_care_paid_my,
        "planted_share": np.where(mm > 0, [RATES[s] for s in pop.stratum], np.nan),
    })
    return PlantResult(members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    definition = {
        "population": "members with at least one member month in MY",
        "numerator": "paid amounts in MY of medical lines whose billing provider is primary care (providers.is_primary_care)",
        "denominator": "all paid amounts in MY (final medical lines, denied at zero, and pharmacy fills)",
    }
    return cost_summary(MEASURE_ID, NAME, members, RATES, "pc_paid", "paid", "share of spend", definition)
