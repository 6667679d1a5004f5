"""What a planted measure module provides, and helpers they share.

A planted measure is a module (``plant_<measure>.py``) with:

* ``MEASURE_ID``: the measure id used in ``truth.json`` (e.g. ``"BCS"``);
* ``plant(ctx, pop, providers) -> PlantResult``: decides, per member of a chunk, the true status
  (eligible, excluded, numerator) and emits the records that evidence it (medical claim lines,
  SDOH screening rows, clinical observations);
* ``summarize(members, period) -> dict``: the ``truth.json`` entry, from the concatenated member rows
  of all chunks (with a boolean ``quarantined`` column added by the generator: members whose own
  row carries an injected defect and that a correct pipeline therefore drops).

Modules run in the order of :func:`planted_measures`. Each sees, through ``ctx.evidence``
(:class:`~equity_pipeline.generate.evidence.Evidence`), everything produced before it: background
utilisation and the records of earlier modules. A module reads from there whatever it does not own
(hypertension diagnoses for CBP, visits for CDF, stays for ED visits, hospice for every measure with a
hospice exclusion) and must not add records that change what an earlier module read.

Planted lines are built with ``claims.assemble(..., background=False)`` so defects never touch them.
Steps that many modules take the same way (the usual exclusions, fixed-margin hits, voided-claim traps,
truth rows) are in :mod:`~equity_pipeline.generate.planting`.
Add a new measure by writing the module and listing it in :func:`planted_measures`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from equity_pipeline.standards.race_ethnicity import (
    CATEGORY_LABELS,
    DECLINED,
    MULTIRACIAL,
    RACE_ETHNICITY_STRATA,
    ROLLUP_VERSION,
    UNKNOWN,
)

from .context import EPOCH, NO_DATE
from .margins import allocate, quota  # noqa: F401  (fixed-margin planting, re-exported for the modules)
from .population import Population

ALL = "all"


@dataclass
class PlantResult:
    medical_lines: list[pl.DataFrame] = field(default_factory=list)  # internal line frames
    members: pl.DataFrame | None = None                             # member-level truth rows
    defects: dict[str, int] = field(default_factory=dict)           # consistent voids/adjustments planted
    screenings: list[pl.DataFrame] = field(default_factory=list)    # sdoh_screenings rows (contract layout)
    observations: list[pl.DataFrame] = field(default_factory=list)  # internal observation rows (background.OBSERVATION_INTERNAL)


# ------------------------------------------------------------------------------------------ dates and ages
def sample_covered_dates(rng: np.random.Generator, pop: Population, pos: np.ndarray, lo: int | np.ndarray,
                         hi: int | np.ndarray, tries: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A uniform day in [lo, hi] on which each member is enrolled and alive; ``ok`` False if none found."""
    return sample_days(rng, pop, pos, lo, hi, tries=tries)


def sample_days(rng: np.random.Generator, pop: Population, pos: np.ndarray, lo, hi, accept=None,
                tries: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`sample_covered_dates`, with an extra condition ``accept(indices, days) -> bool array``
    (``indices`` index into ``pos``)."""
    n = len(pos)
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), (n,))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.int64), (n,))
    out = np.zeros(n, dtype=np.int32)
    ok = np.zeros(n, dtype=bool)
    for _ in range(tries):
        todo = np.nonzero(~ok & (hi >= lo))[0]
        if len(todo) == 0:
            break
        d = (lo[todo] + np.floor(rng.random(len(todo)) * (hi[todo] - lo[todo] + 1))).astype(np.int32)
        good = pop.covered(pos[todo], d)
        if accept is not None and good.any():
            good[good] = accept(todo[good], d[good])
        out[todo[good]] = d[good]
        ok[todo[good]] = True
    return out, ok


def birthday(birth: np.ndarray, years: int) -> np.ndarray:
    """Day number of the ``years``-th birthday (Feb 29 births: March 1 in common years)."""
    b = np.asarray(birth, dtype="int64").astype("datetime64[D]")
    month = b.astype("datetime64[M]")
    dom = (b - month.astype("datetime64[D]")).astype(np.int64)
    return ((month + 12 * years).astype("datetime64[D]") + dom).astype(np.int64).astype(np.int32)


def age_on(birth: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Completed years on each day (the birthday itself counts, as in the pipeline)."""
    b = np.asarray(birth, dtype="int64").astype("datetime64[D]")
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    years = d.astype("datetime64[Y]").astype(np.int64) - b.astype("datetime64[Y]").astype(np.int64)
    # compare (month, day) of the day with the birth's
    def md(x):
        m = x.astype("datetime64[M]")
        return (m.astype(np.int64) % 12) * 100 + (x - m.astype("datetime64[D]")).astype(np.int64)
    return (years - (md(b) > md(d))).astype(np.int32)


def month_bounds(period) -> tuple[np.ndarray, np.ndarray]:
    """First and last day number of each month of the measurement year."""
    my = period.measurement_year
    starts = np.array([(date(my, m, 1) - EPOCH).days for m in range(1, 13)], dtype=np.int64)
    ends = np.array([(date(my + (m == 12), m % 12 + 1, 1) - EPOCH).days - 1 for m in range(1, 13)], dtype=np.int64)
    return starts, ends


def place_in_months(rng: np.random.Generator, months: np.ndarray, members: np.ndarray, period, accept,
                    tries: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of ``members``: a day in one of the member's counted months (``months``: (n, 12)
    bool; a counted month uniformly, then a day of it) for which ``accept(indices, days)`` holds."""
    starts, ends = month_bounds(period)
    out = np.zeros(len(members), dtype=np.int32)
    ok = np.zeros(len(members), dtype=bool)
    counted = months[members]
    has = counted.any(axis=1)
    cum = np.cumsum(counted, axis=1)
    for _ in range(tries):
        todo = np.nonzero(~ok & has)[0]
        if len(todo) == 0:
            break
        c = cum[todo]
        month = (rng.random(len(todo))[:, None] * c[:, -1:] < c).argmax(axis=1)
        d = (starts[month] + np.floor(rng.random(len(todo)) * (ends[month] - starts[month] + 1))).astype(np.int32)
        good = accept(todo, d)
        out[todo[good]] = d[good]
        ok[todo[good]] = True
    return out, ok


def _month_and_day(days):
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    return m, (d - m.astype("datetime64[D]")).astype(np.int64) + 1


def _month_length(m) -> np.ndarray:
    return ((m + 1).astype("datetime64[D]") - m.astype("datetime64[D]")).astype(np.int64)


def add_months(days, months) -> np.ndarray:
    """Day numbers plus calendar months, clamped to the month's last day (Aug 31 + 15 months = Nov 30)."""
    m, dom = _month_and_day(days)
    target = m + np.asarray(months, dtype=np.int64)
    return (target.astype("datetime64[D]") + np.minimum(dom, _month_length(target)) - 1).astype(np.int64)


def age_in_months(birth, on) -> np.ndarray:
    """Completed months on ``on``: the largest k with add_months(birth, k) on or before ``on``."""
    bm, bd = _month_and_day(birth)
    om, od = _month_and_day(on)
    k = (om - bm).astype(np.int64)
    return k - (np.minimum(bd, _month_length(om)) > od)


def died_by(pop: Population, day: int) -> np.ndarray:
    return (pop.death != NO_DATE) & (pop.death <= day)


# The order in which the modules write their per-stratum tables (:func:`by_stratum`); it is also the order
# of the rates in truth.json.
RATE_ORDER: tuple[str, ...] = (
    CATEGORY_LABELS["WHITE"], CATEGORY_LABELS["BLACK"], CATEGORY_LABELS["HISPANIC"], CATEGORY_LABELS["ASIAN"],
    CATEGORY_LABELS["AIAN"], CATEGORY_LABELS["NHPI"], CATEGORY_LABELS["MENA"], MULTIRACIAL, CATEGORY_LABELS["OTHER"],
    DECLINED, UNKNOWN,
)
assert set(RATE_ORDER) == set(RACE_ETHNICITY_STRATA)


def by_stratum(*values: float) -> dict[str, float]:
    """A per-stratum table from one value per stratum in :data:`RATE_ORDER`: White, Black, Hispanic,
    Asian, AIAN, NHPI, MENA, Multiracial, Other, Declined, Unknown."""
    if len(values) != len(RATE_ORDER):
        raise ValueError(f"by_stratum needs {len(RATE_ORDER)} values, got {len(values)}")
    return dict(zip(RATE_ORDER, values))


def stratum_rates(pop: Population, rates: dict[str, float]) -> np.ndarray:
    return np.array([rates[s] for s in RACE_ETHNICITY_STRATA])[stratum_index(pop)]


def stratum_index(pop: Population) -> np.ndarray:
    """Index of each member's stratum in RACE_ETHNICITY_STRATA (computed once per chunk)."""
    cached = getattr(pop, "_stratum_index", None)
    if cached is None:
        lookup = {s: i for i, s in enumerate(RACE_ETHNICITY_STRATA)}
        labels, inverse = np.unique(pop.stratum, return_inverse=True)
        cached = np.array([lookup[s] for s in labels], dtype=np.int64)[inverse]
        pop._stratum_index = cached
    return cached


# ------------------------------------------------------------------------------------------ fixed-margin planting
def place_counts(rng: np.random.Generator, counts: np.ndarray, group: np.ndarray, exposure: np.ndarray,
                 place_round, attempts: int = 4) -> None:
    """Place ``counts[m]`` events per member, one round at a time (``place_round(members) -> ok`` places
    one event for each of a set of distinct members). Events that cannot be placed (no free covered day)
    are handed to other members of the same group, in proportion to exposure, up to ``attempts`` times."""
    pending = counts.copy()
    for _ in range(attempts):
        failed = np.zeros_like(pending)
        while (pending > 0).any():
            cur = np.nonzero(pending > 0)[0]
            ok = place_round(cur)
            failed[cur[~ok]] += 1
            pending[cur] -= 1
        if not failed.any():
            return
        pending = np.zeros_like(counts)
        for gid in np.unique(group[failed > 0]):
            k = int(failed[group == gid].sum())
            mem = np.nonzero((group == gid) & (exposure > 0))[0]
            if len(mem) == 0:
                continue
            w = exposure[mem].astype(np.float64)
            np.add.at(pending, rng.choice(mem, size=k, p=w / w.sum()), 1)


# ------------------------------------------------------------------------------------------ messy traps
def voided(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """A claim the member never had: version 1 paid, version 2 void (a correct pipeline drops both)."""
    v2 = frame.with_columns(pl.lit(2, dtype=pl.Int32).alias("claim_version"), pl.lit("void").alias("claim_status"),
                            pl.lit(0, dtype=pl.Int64).alias("paid_amount"), pl.lit(0, dtype=pl.Int64).alias("allowed_amount"))
    return [frame, v2]


def adjusted(frame: pl.DataFrame, *final: pl.Expr) -> list[pl.DataFrame]:
    """Version 1 as built, version 2 (final) with the ``final`` column changes."""
    return [frame, frame.with_columns(pl.lit(2, dtype=pl.Int32).alias("claim_version"), *final)]


def messy_count(ctx, n: int) -> int:
    return 0 if ctx.messy_share <= 0 or n == 0 else min(n, max(1, int(round(ctx.messy_share * n))))


# ------------------------------------------------------------------------------------------ truth summaries
DEATH_AND_HOSPICE = {"death": "died", "hospice": "hospice"}  # exclusion reason -> member column


def death_and_hospice_definition(my: int) -> dict[str, str]:
    """The ``exclusions`` entries of a measure excluding death by Dec 31 MY and hospice in MY."""
    return {"death": f"by {my}-12-31", "hospice": f"during {my}"}


def enrollment_definition(my: int, start_year: int | None = None, max_gaps: int = 1) -> dict:
    """The ``continuous_enrollment`` entry: Jan 1 of ``start_year`` (default MY) through Dec 31 MY,
    at most ``max_gaps`` gaps of at most 45 days."""
    return {"start": f"{my if start_year is None else start_year}-01-01", "end": f"{my}-12-31", "max_gaps": max_gaps,
            "max_gap_days": 45}


def _copy_rates(rates: dict) -> dict:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in rates.items()}


def _prop_counts(df: pl.DataFrame) -> dict[str, dict]:
    agg = df.group_by("stratum").agg(
        pl.col("eligible").sum().alias("eligible"),
        (pl.col("eligible") & pl.col("excluded")).sum().alias("excluded"),
        pl.col("denominator").sum().alias("denominator"),
        pl.col("numerator").sum().alias("numerator"),
        pl.col("planted_probability").filter(pl.col("denominator")).mean().alias("expected_rate"),
    )
    rows = {r["stratum"]: r for r in agg.to_dicts()}
    out = {}
    for s in RACE_ETHNICITY_STRATA:
        r = rows.get(s, {"eligible": 0, "excluded": 0, "denominator": 0, "numerator": 0, "expected_rate": None})
        d, k = int(r["denominator"]), int(r["numerator"])
        out[s] = {"eligible": int(r["eligible"]), "excluded": int(r["excluded"]), "denominator": d, "numerator": k,
                  "rate": round(k / d, 6) if d else None,
                  "expected_rate": round(float(r["expected_rate"]), 6) if d and r["expected_rate"] is not None else None}
    return out


def _totals(df: pl.DataFrame) -> dict[str, int]:
    return {"eligible": int(df["eligible"].sum()), "denominator": int(df["denominator"].sum()),
            "numerator": int(df["numerator"].sum())}


def proportion_summary(measure_id: str, name: str, members: pl.DataFrame, rates: dict, definition: dict,
                       exclusions: dict[str, str], rows: tuple[str, ...] = (), outcome_rows: bool = False) -> dict:
    """truth.json entry of a proportion measure.

    ``members`` has one row per member (per submeasure for ``rows``) with ``stratum``, ``submeasure``,
    ``eligible``, ``excluded``, ``denominator``, ``numerator``, ``planted_probability`` (the member's
    Bernoulli probability; null outside the denominator), ``quarantined`` and the exclusion flag columns
    named in ``exclusions`` (reason -> column).

    Layout: without ``rows`` ``planted[stratum]``; with rows ``planted[row][stratum]`` including the
    ``all`` row. Age rows split the eligible members and ``all`` adds them up; outcome rows (``outcome_rows``)
    hold every member with a different numerator, and ``all`` is its own row in ``members``."""
    clean = members.filter(~pl.col("quarantined"))

    def block(df: pl.DataFrame):
        if not rows:
            return _prop_counts(df)
        out = {}
        for row in (ALL, *rows):
            part = df.filter(pl.col("submeasure") == row) if (row != ALL or outcome_rows) else df
            out[row] = _prop_counts(part)
        return out

    main = members if not outcome_rows else members.filter(pl.col("submeasure") == ALL)
    main_clean = clean if not outcome_rows else clean.filter(pl.col("submeasure") == ALL)
    eligible = main.filter(pl.col("eligible"))
    return {
        "measure_id": measure_id,
        "name": name,
        "kind": "proportion",
        "stratifier": "race_ethnicity",
        "rollup_version": ROLLUP_VERSION,
        "depends_only_on": "race_ethnicity",
        "rows": list(rows),
        "rates": _copy_rates(rates),
        "definition": definition,
        "exclusion_counts": {reason: int((eligible[col]).sum()) for reason, col in exclusions.items()},
        "planted": block(members),
        "planted_total": _totals(main),
        "expected": block(clean),
        "expected_total": _totals(main_clean),
        "expected_note": "planted counts without the members whose own members-table row carries an injected defect "
                         "(those rows are quarantined by a correct pipeline, so the member drops out); expected_rate "
                         "is the mean planted probability over the group's denominator",
    }


def event_rate_summary(measure_id: str, name: str, members: pl.DataFrame, rates: dict[str, float], per: float,
                       exposure: str, definition: dict) -> dict:
    """truth.json entry of an event-rate measure: ``members`` has ``stratum``, ``denominator`` (in the
    measure's population), ``exposure`` (member months or member-years), ``events``, ``quarantined``;
    ``rates`` are the planted Poisson intensities per ``per`` units of exposure."""

    def block(df: pl.DataFrame):
        df = df.filter(pl.col("denominator"))
        agg = {r["stratum"]: r for r in df.group_by("stratum").agg(
            pl.len().alias("members"), pl.col("exposure").sum(), pl.col("events").sum()).to_dicts()}
        out = {}
        for s in RACE_ETHNICITY_STRATA:
            r = agg.get(s, {"members": 0, "exposure": 0.0, "events": 0})
            e, k = float(r["exposure"]), int(r["events"])
            out[s] = {"members": int(r["members"]), exposure: round(e, 6), "events": k,
                      "rate": round(k / e * per, 6) if e else None}
        return out

    def total(df: pl.DataFrame):
        df = df.filter(pl.col("denominator"))
        return {"members": df.height, exposure: round(float(df["exposure"].sum()), 6), "events": int(df["events"].sum())}

    clean = members.filter(~pl.col("quarantined"))
    return {
        "measure_id": measure_id,
        "name": name,
        "kind": "event_rate",
        "stratifier": "race_ethnicity",
        "rollup_version": ROLLUP_VERSION,
        "depends_only_on": "race_ethnicity",
        "rate_per": per,
        "exposure": exposure,
        "rates": dict(rates),
        "definition": definition,
        "planted": block(members),
        "planted_total": total(members),
        "expected": block(clean),
        "expected_total": total(clean),
        "expected_note": "planted counts without the members whose own members-table row carries an injected defect; "
                         "rates are Poisson intensities per rate_per units of exposure",
    }


def planted_measures():
    """The planted measure modules, in the order they run (later modules read earlier modules' records)."""
    from . import (
        plant_bcs,
        plant_cbp,
        plant_ccs,
        plant_cdf,
        plant_chl,
        plant_cis,
        plant_col,
        plant_ed,
        plant_hbd,
        plant_iet,
        plant_pcr,
        plant_pqi,
        plant_primary_care_share,
        plant_sdoh,
        plant_sdoh_positive,
        plant_tcoc,
        plant_w30,
        plant_wcv,
    )

    return (plant_bcs, plant_ccs, plant_col, plant_wcv, plant_w30, plant_cis, plant_chl, plant_iet, plant_pqi,
            plant_pcr, plant_ed, plant_cbp, plant_hbd, plant_cdf, plant_sdoh, plant_sdoh_positive, plant_tcoc,
            plant_primary_care_share)
