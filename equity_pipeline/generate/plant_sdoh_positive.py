"""Planted measure: Screen Positive Rate for Social Drivers of Health (SDOH_POSITIVE), per domain.

Adds no records: its truth is read from the screenings produced before (background and SDOH_SCREEN).

* eligible: aged 18+ on Dec 31 MY with every core domain screened (answered, not declined) in MY;
* excluded: death by Dec 31 MY;
* positive in a domain: the member's social need in that domain (``Population.sdoh_need``), drawn with a
  probability that depends ONLY on the stratum (``population.SDOH_NEED_BY_STRATUM``). Every screening
  answers from the same need, and the complete screenings answer every domain, so a screened member is
  positive in a domain exactly when she has the need.

Rows: ``housing``, ``food``, ``transportation``, ``utilities``, ``interpersonal_safety`` (planted rate =
the need probability) and ``all`` (positive in any domain: 1 - prod(1 - q), the domains being independent).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from equity_pipeline.standards.race_ethnicity import RACE_ETHNICITY_STRATA

from . import vocab
from .context import ChunkContext
from .planted import ALL, PlantResult, died_by, proportion_summary, stratum_rates
from .planting import outcome_truth_rows
from .population import SDOH_NEED_BY_STRATUM, Population
from .providers import Providers

MEASURE_ID = "SDOH_POSITIVE"
NAME = "Screen Positive Rate for Social Drivers of Health"
ROWS = ("housing", "food", "transportation", "utilities", "interpersonal_safety")
RATES: dict[str, dict[str, float]] = {
    ALL: {s: round(1.0 - float(np.prod([1.0 - q for q in SDOH_NEED_BY_STRATUM[s]])), 6) for s in RACE_ETHNICITY_STRATA},
    **{d: {s: SDOH_NEED_BY_STRATUM[s][vocab.SDOH_DOMAINS.index(d)] for s in RACE_ETHNICITY_STRATA} for d in ROWS},
}


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    ev = ctx.evidence
    n = pop.n
    adult = pop.age >= 18
    domains = ev.screened_domains(p.my_start, p.my_end)
    eligible = adult & domains.all(axis=1)
    died = eligible & died_by(pop, p.my_end)
    excluded = eligible & died
    denominator = eligible & ~excluded
    need = pop.sdoh_need
    positive = {ALL: need.any(axis=1), **{row: need[:, vocab.SDOH_DOMAINS.index(row)] for row in ROWS}}
    members = outcome_truth_rows(pop, np.nonzero(adult & domains.any(axis=1))[0], {
        "age": pop.age, "domains_screened": domains.sum(axis=1), "eligible": eligible, "died": died, "excluded": excluded,
        "denominator": denominator,
    }, denominator, "positive", [(row, positive[row], stratum_rates(pop, RATES[row])) for row in (ALL, *ROWS)])
    return PlantResult(members=members)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": 18, "age_as_of": f"{my}-12-31",
        "denominator_event": {"all_domains_screened": list(vocab.SDOH_DOMAINS), "during": f"{my}"},
        "numerator": {"positive_in_domain": "the member's need (every screening answers from it)",
                      "all": "positive in any domain", "interpersonal_safety": "AHC HRSN items 7-10 score sum > 10"},
        "need_probability_by_stratum": {s: dict(zip(vocab.SDOH_DOMAINS, SDOH_NEED_BY_STRATUM[s])) for s in RACE_ETHNICITY_STRATA},
        "exclusions": {"death": f"by {my}-12-31"},
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, {"death": "died"}, rows=ROWS, outcome_rows=True)
