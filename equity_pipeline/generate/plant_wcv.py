"""Planted measure: Child and Adolescent Well-Care Visits (WCV), by age row and race/ethnicity.

Truth, per member of the chunk aged 3-21 on Dec 31 MY:

* eligible: continuously enrolled through MY (enrolled on Dec 31, at most one gap of at most 45 days);
  row ``3-11``, ``12-17`` or ``18-21`` by age on Dec 31 MY;
* excluded: death by Dec 31 MY, hospice in MY (from earlier producers);
* visited: Bernoulli with a probability that depends ONLY on the row and the stratum -> one preventive
  visit in MY (CPT 99382-99385 / 99392-99395 by age on the visit date, ICD-10-CM Z00121/Z00129 under
  18, Z0000/Z0001 from 18), billed by the member's primary-care practice.

Background utilisation never draws a preventive visit in MY for members aged 3-21 (and lab claims
carry Z0189, not Z0000), so these visits are the only well-care evidence in MY. Traps: members outside
the denominator (not continuously enrolled) also get visits, and when messy voided well visits are
added for members without one.
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
    age_on,
    by_stratum,
    death_and_hospice_definition,
    enrollment_definition,
    proportion_summary,
)
from .planting import age_rows, death_and_hospice, fixed_margin_hits, on_covered_days, truth_rows, voided_trap
from .population import Population, continuous_enrollment
from .providers import Providers

MEASURE_ID = "WCV"
NAME = "Child and Adolescent Well-Care Visits"
ROWS = (("3-11", 3, 11), ("12-17", 12, 17), ("18-21", 18, 21))
RATES: dict[str, dict[str, float]] = {
    "3-11": by_stratum(0.66, 0.61, 0.58, 0.64, 0.47, 0.52, 0.60, 0.62, 0.58, 0.60, 0.52),
    "12-17": by_stratum(0.58, 0.52, 0.49, 0.57, 0.39, 0.44, 0.52, 0.54, 0.50, 0.52, 0.45),
    "18-21": by_stratum(0.34, 0.28, 0.26, 0.33, 0.20, 0.23, 0.29, 0.30, 0.27, 0.30, 0.24),
}
OUTSIDE_SHARE = 0.45
NEW_PATIENT_SHARE = 0.08
# (max age on the visit date, established code, new-patient code, price cents)
CODES_BY_AGE = ((4, "99392", "99382", 11200), (11, "99393", "99383", 11000), (17, "99394", "99384", 11800),
                (39, "99395", "99385", 12000))


def _visits(ctx, pop, rng, pos, dates) -> pl.DataFrame | None:
    n = len(pos)
    if n == 0:
        return None
    age = age_on(pop.birth[pos], dates)
    band = np.searchsorted(np.array([c[0] for c in CODES_BY_AGE]), np.maximum(age, 0))
    new = rng.random(n) < NEW_PATIENT_SHARE
    code = np.where(new, np.array([c[2] for c in CODES_BY_AGE], dtype=object)[band],
                    np.array([c[1] for c in CODES_BY_AGE], dtype=object)[band])
    price = np.array([c[3] for c in CODES_BY_AGE], dtype=float)[band] * np.where(new, 1.15, 1.0)
    child = age < 18
    zi = rng.integers(0, 2, size=n)
    dx = np.where(child, np.array(vocab.PREVENTIVE_DX_CHILD, dtype=object)[zi], np.array(vocab.PREVENTIVE_DX_ADULT, dtype=object)[zi])
    extras_vax = np.where(rng.random(n) < 0.5, "90471", None)
    extras_scr = np.where(rng.random(n) < 0.4, "96127", None)
    return professional(ctx, pop, rng, pos, dates, [code, extras_vax, extras_scr], [price, 1700.0, 450.0], pop.pcp[pos], dx=[dx])


def plant(ctx: ChunkContext, pop: Population, providers: Providers) -> PlantResult:
    p = ctx.period
    rng = ctx.rng("plant_wcv")
    n = pop.n
    in_age = (pop.age >= vocab.WCV_AGE[0]) & (pop.age <= vocab.WCV_AGE[1])
    ce = continuous_enrollment(pop.seg_start, pop.seg_end, p.my_start, p.my_end, 45, 1)
    eligible = in_age & ce
    row, rate, group = age_rows(pop, ROWS, RATES)
    died, hospice = death_and_hospice(ctx, pop, eligible)
    want = fixed_margin_hits(rng, eligible, died | hospice, group, rate)
    frames: list = []
    defects = {"voided_claim": 0}

    pos, d = on_covered_days(rng, pop, np.nonzero(want)[0], p.my_start, p.my_end)
    visited = np.zeros(n, dtype=bool)
    visited[pos] = True
    frames.append(_visits(ctx, pop, rng, pos, d))

    outside = np.nonzero(in_age & ~eligible & (rng.random(n) < OUTSIDE_SHARE))[0]
    frames.append(_visits(ctx, pop, rng, *on_covered_days(rng, pop, outside, p.my_start, p.my_end)))
    unvisited = np.nonzero(eligible & ~visited)[0]
    frames += voided_trap(ctx, rng, pop, unvisited, p.my_start, p.my_end, lambda pos, days: _visits(ctx, pop, rng, pos, days),
                          defects)

    excluded = eligible & (died | hospice)
    denominator = eligible & ~excluded
    members = truth_rows(pop, in_age, row, {
        "age": pop.age, "continuously_enrolled": ce, "eligible": eligible, "died": died, "hospice": hospice,
        "excluded": excluded, "denominator": denominator, "visited": visited, "numerator": denominator & visited,
    }, denominator, rate)
    return PlantResult(medical_lines=compact(frames), members=members, defects=defects)


def summarize(members: pl.DataFrame, period) -> dict:
    my = period.measurement_year
    definition = {
        "age_min": vocab.WCV_AGE[0], "age_max": vocab.WCV_AGE[1], "age_as_of": f"{my}-12-31",
        "rows": {label: [lo, hi] for label, lo, hi in ROWS},
        "continuous_enrollment": enrollment_definition(my),
        "numerator": {"codes": [c for row in CODES_BY_AGE for c in row[1:3]], "icd10cm": list(vocab.PREVENTIVE_DX_CHILD)
                      + list(vocab.PREVENTIVE_DX_ADULT), "during": f"{my}"},
        "exclusions": death_and_hospice_definition(my),
    }
    return proportion_summary(MEASURE_ID, NAME, members, RATES, definition, DEATH_AND_HOSPICE, rows=tuple(r[0] for r in ROWS))
