"""Statewide equity plan (AHEAD-style): ``public/equity_plan/state_metrics.parquet``.

Reporting units: ``population`` (every member of the run, all states), each program ``state`` (rules
``states``: the cohorts in effect for the measurement year) and each configured ``region``; payer
``all`` (each member once) and each payer group of the stratification payer rule (medicare, medicaid,
commercial, medicare_medicaid_dual; docs/stratification.md).

Metrics (docs/equity_plans.md):

* the PQI measure (PQI90, admissions per 100,000 member-years) by payer x race/ethnicity, computed
  here from the restricted member results, with its gap against the reference group;
* each rules measure the run computed, reshaped from ``public/rates`` (rows, values and suppression
  as published there; the rates' ``payer`` stratifier becomes the ``payer`` column, its ``region``
  stratifier the ``region`` unit, an intersection with payer or region both);
* REL data completeness by payer: shares self-reported, imputed, source not stated, declined and
  unknown (race/ethnicity) and reported, declined, unknown (language), categories as in
  ``public/completeness``;
* SDOH screening by domain (share of the SDOH_SCREEN denominator screened in each core domain) by
  payer; the all-domain screening rate and positive rates by domain are the SDOH_SCREEN and
  SDOH_POSITIVE rows from ``public/rates``;
* TCOC PMPM and primary-care share by group: TCOC_PMPM and PRIMARY_CARE_SHARE rows from rates.

Cells computed here that are also cells of ``public/rates`` or ``public/completeness`` (e.g. all-payer
PQI90 by race per state; a payer's overall PQI90 row is the rates' ``payer`` stratum) are *locked*:
they show what that table shows and suppression works around them (see ``cells``). Locks key on the
other table's ``suppressed`` flag only: its ``suppression_reason`` is the one public reason.

Suppressed rows say ``suppression.PUBLIC_REASON`` and nothing else; why each is hidden (small,
complementary, suppressed in another public table, ...) goes to the restricted suppression log.
"""
from __future__ import annotations

import math
from typing import Any

import polars as pl

from equity_pipeline.attributes import DUAL, PAYERS
from equity_pipeline.equity_plans import cells as C
from equity_pipeline.equity_plans.rules import PlanRules
from equity_pipeline.equity_plans.table import finish, published, with_rates
from equity_pipeline.periods import as_period
from equity_pipeline.standards.race_ethnicity import UNKNOWN
from equity_pipeline.standards.sdoh import CORE_DOMAINS
from equity_pipeline.stratify import INTERSECTION_SEPARATOR, STRATUM_SEPARATOR, known_strata
from equity_pipeline.suppression import publishable_reasons

PAYER_GROUPS = (*PAYERS, DUAL, UNKNOWN)
REL_RACE, REL_LANGUAGE, SDOH_DOMAIN = "REL_RACE_ETHNICITY", "REL_LANGUAGE", "SDOH_SCREEN_DOMAIN"
COLLECTION = "collection_status"
TITLES = {
    REL_RACE: "Race and ethnicity data completeness (share of members by how it was collected)",
    REL_LANGUAGE: "Preferred language data completeness (share of members by how it was collected)",
    SDOH_DOMAIN: "Screened for a social need domain (share of the SDOH screening population)",
}
RATES_TABLE, COMPLETENESS_TABLE, COMPUTED = "public/rates", "public/completeness", "computed"


# ------------------------------------------------------------------------------------------ units
def member_units(attributes: pl.DataFrame, states: tuple[str, ...], regions: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """member_id, unit_level, unit_id, publish_unit: every unit a member counts in.

    All states are units (states outside the program are margins only, unpublished), so states
    always add up to the population. With regions: the region, the region's part in the member's
    state (unpublished) and, for members in no region, their state's rest (unpublished)."""
    parts = [
        attributes.select("member_id", unit_level=pl.lit("population"), unit_id=pl.lit("all"), publish_unit=pl.lit(True)),
        attributes.select("member_id", unit_level=pl.lit("state"), unit_id="state", publish_unit=pl.col("state").is_in(list(states))),
    ]
    if regions:
        in_region = pl.col("region").is_in(list(regions))
        # a state's rest only where some of the state is in a region (else the rest is the state)
        split = attributes.filter(in_region)["state"].unique().to_list()
        parts += [
            attributes.filter(in_region).select("member_id", unit_level=pl.lit(C.REGION), unit_id="region", publish_unit=pl.lit(True)),
            attributes.filter(in_region).select("member_id", unit_level=pl.lit(C.REGION_PART),
                                                unit_id=pl.col("region") + STRATUM_SEPARATOR + pl.col("state"), publish_unit=pl.lit(False)),
            attributes.filter(~in_region & pl.col("state").is_in(split)).select(
                "member_id", unit_level=pl.lit(C.STATE_REST), unit_id="state", publish_unit=pl.lit(False)),
        ]
    return pl.concat(parts)


def unit_rows(values: pl.DataFrame, units: pl.DataFrame) -> pl.DataFrame:
    """``values`` joined with every unit of its members, in member order: what :func:`aggregate` adds
    up. The order fixes the order of the sums (member-years are not whole numbers), so callers that
    add up several families of the same members join once and pass the result to
    :func:`aggregate_rows` (the same rows in the same order as :func:`aggregate`)."""
    return values.join(units, on="member_id", how="inner").sort("member_id", "unit_level", "unit_id")


def aggregate(values: pl.DataFrame, units: pl.DataFrame, *, family: str, submeasure: str, stratifiers: list[str],
              strata: dict[str, list[str]] | None = None) -> pl.DataFrame:
    """Counts per unit x payer (``all`` and each payer group) x stratifier x stratum, on a full grid.

    ``values``: member_id, payer, numerator_value, denominator_value and one column per stratifier.
    The grid has every payer group and every stratum of a fixed-vocabulary stratifier (``strata``
    or observed otherwise) with zeros where nobody is, so a margin never has a single cell (see
    ``cells``: locked totals must not be the only complement)."""
    return aggregate_rows(unit_rows(values, units), units, family=family, submeasures={submeasure: "numerator_value"},
                          stratifiers={s: s for s in stratifiers}, strata=strata)


def aggregate_rows(base: pl.DataFrame, units: pl.DataFrame, *, family: str, submeasures: dict[str, str],
                   stratifiers: dict[str, str], strata: dict[str, list[str]] | None = None) -> pl.DataFrame:
    """:func:`aggregate` of :func:`unit_rows`, several sub-measures at once: ``submeasures`` maps each
    sub-measure to its numerator column (all share ``denominator_value``), ``stratifiers`` each
    stratifier to the column holding its strata. Rows: per sub-measure in the order given, each on
    the full grid (one pass over ``base`` per payer x stratifier for all sub-measures together)."""
    names = list(submeasures)
    sums = {f"_n{i}": pl.col(c).sum() for i, c in enumerate(submeasures.values())}
    counted = []
    for payer in (pl.lit("all"), pl.col("payer")):
        for s in ("overall", *stratifiers):
            stratum = pl.lit("all") if s == "overall" else pl.col(stratifiers[s])
            counted.append(
                base.group_by("unit_level", "unit_id", payer.alias("payer"), stratum.alias("stratum"), maintain_order=True)
                .agg(members=pl.len().cast(pl.Float64), denominator=pl.col("denominator_value").sum(), **sums)
                .with_columns(stratifier=pl.lit(s))
            )
    counted = pl.concat(counted, how="diagonal")
    unit_frame = units.select("unit_level", "unit_id", "publish_unit").unique()
    grid_strata = [("overall", "all")]
    for s in stratifiers:
        known = (strata or {}).get(s) or known_strata(s)
        observed = counted.filter(pl.col("stratifier") == s)["stratum"].unique().to_list()
        grid_strata += [(s, x) for x in sorted(set(known or []) | set(observed))]
    grid = (unit_frame.join(pl.DataFrame({"payer": ["all", *PAYER_GROUPS]}), how="cross")
            .join(pl.DataFrame(grid_strata, schema={"stratifier": pl.String, "stratum": pl.String}, orient="row"), how="cross"))
    out = grid.join(counted, on=["unit_level", "unit_id", "payer", "stratifier", "stratum"], how="left")
    parts = []
    for i, sub in enumerate(names):
        part = out.select(*grid.columns, "members", numerator=f"_n{i}", denominator="denominator").select(
            *grid.columns, "members", "numerator", "denominator")
        parts.append(part.with_columns(pl.col(c).fill_null(0.0) for c in C.COUNT_COLUMNS).with_columns(
            family=pl.lit(family), submeasure=pl.lit(sub)))
    return pl.concat(parts)


def as_shares(cells: pl.DataFrame) -> pl.DataFrame:
    """Partition counts -> shares of the unit: numerator = members in the stratum, denominator (and
    ``members``, as for every proportion) = the unit's members (the ``overall`` row, whose share is 1)."""
    totals = cells.filter(pl.col("stratifier") == "overall").select("family", "submeasure", "unit_level", "unit_id", "payer", _t="members")
    return (cells.join(totals, on=["family", "submeasure", "unit_level", "unit_id", "payer"], how="left")
            .with_columns(numerator=pl.col("members"), denominator=pl.col("_t"), members=pl.col("_t")).drop("_t"))


# ------------------------------------------------------------------------------------------ locks
def _conditions(unit_level: str, unit_id: str, payer: str, stratifier: str, stratum: str) -> tuple[tuple[str, str] | None, list]:
    """(rates unit, [(stratifier, stratum) conditions]) describing the same members as a plan cell."""
    conds = []
    if payer != "all":
        conds.append(("payer", payer))
    if unit_level == "population":
        unit = ("population", "all")
    elif unit_level == "state":
        unit = ("state", unit_id)
    elif unit_level == C.REGION:
        unit, conds = ("population", "all"), [*conds, ("region", unit_id)]
    elif unit_level == C.REGION_PART:
        region, state = unit_id.split(STRATUM_SEPARATOR)
        unit, conds = ("state", state), [*conds, ("region", region)]
    else:
        return None, []
    if stratifier != "overall":
        conds.append((stratifier, stratum))
    return unit, conds


def rates_key(measure_id: str, submeasure: str, unit_level: str, unit_id: str, payer: str, stratifier: str,
              stratum: str, index: dict) -> tuple | None:
    """The public/rates key of the cell with the same members, when the rates table has one."""
    unit, conds = _conditions(unit_level, unit_id, payer, stratifier, stratum)
    if unit is None or len(conds) > 2:
        return None
    if not conds:
        keys = [(measure_id, submeasure, *unit, "overall", "all")]
    elif len(conds) == 1:
        keys = [(measure_id, submeasure, *unit, *conds[0])]
    else:
        (a, x), (b, y) = conds
        keys = [(measure_id, submeasure, *unit, f"{a}{INTERSECTION_SEPARATOR}{b}", f"{x}{STRATUM_SEPARATOR}{y}"),
                (measure_id, submeasure, *unit, f"{b}{INTERSECTION_SEPARATOR}{a}", f"{y}{STRATUM_SEPARATOR}{x}")]
    return next((k for k in keys if k in index), None)


def _rates_index(rates: pl.DataFrame) -> dict[tuple, bool]:
    """Rates key -> suppressed. Only the flag counts: public/rates gives one reason for every
    suppressed cell (``suppression.PUBLIC_REASON``), whatever its kind."""
    cols = ["measure_id", "submeasure", "unit_level", "unit_id", "stratifier", "stratum"]
    return {tuple(r[:6]): bool(r[6]) for r in rates.select(*cols, "suppressed").iter_rows()}


def lock_to_rates(cells: pl.DataFrame, measure_id: str, index: dict, *, as_force: bool = False) -> pl.DataFrame:
    """Lock each cell that is also a rates cell of ``measure_id`` (or, ``as_force``, force-hide cells
    whose denominator is a *suppressed* rates cell of that measure)."""
    lock, lock_reason, force, force_reason, source = [], [], [], [], []
    for row in cells.select("submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum", "lock", "lock_reason",
                            "force", "force_reason").iter_rows():
        sub = "all" if as_force else row[0]
        key = rates_key(measure_id, sub, *row[1:6], index)
        hit = index.get(key) if key else None   # None: not a rates cell; else whether rates suppressed it
        if as_force:
            lock.append(row[6]), lock_reason.append(row[7]), source.append(None)
            force.append(row[8] or bool(hit))
            force_reason.append(f"denominator suppressed in {RATES_TABLE} ({measure_id})" if hit else row[9])
        else:
            lock.append(None if hit is None else ("suppressed" if hit else "published"))
            lock_reason.append(f"suppressed in {RATES_TABLE}" if hit else None)
            force.append(row[8]), force_reason.append(row[9]), source.append(None if hit is None else RATES_TABLE)
    out = cells.with_columns(lock=pl.Series(lock, dtype=pl.String), lock_reason=pl.Series(lock_reason, dtype=pl.String),
                             force=pl.Series(force, dtype=pl.Boolean), force_reason=pl.Series(force_reason, dtype=pl.String))
    if not as_force:
        out = out.with_columns(pl.Series("_src", source, dtype=pl.String)).with_columns(
            derived_from=pl.coalesce("_src", "derived_from")).drop("_src")
    return out


def lock_mismatches(cells: pl.DataFrame, rates: pl.DataFrame) -> int:
    """Cells locked as shown to a ``public/rates`` cell whose counts differ from what rates shows (must
    be 0). A lock says both are the same members (a payer's overall row *is* the rates' ``payer``
    stratum); when they are not, the plan shows other numbers under that key, and its suppression
    treats as known a value nobody can read, so a hidden cell may be recoverable. Counts only."""
    if cells.height == 0 or rates.height == 0:
        return 0
    key_cols = ["measure_id", "submeasure", "unit_level", "unit_id", "stratifier", "stratum"]
    shown = {tuple(r[:6]): r[6:] for r in rates.filter(~pl.col("suppressed").fill_null(True))
             .select(*key_cols, "members", "denominator", "numerator").iter_rows()}
    index = dict.fromkeys(shown, False)
    locked = cells.filter((pl.col("lock") == "published") & (pl.col("derived_from") == RATES_TABLE)).select(
        "family", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum", *C.COUNT_COLUMNS)
    bad = 0
    for row in locked.iter_rows():
        key = rates_key(*row[:7], index)
        theirs = shown.get(key) if key else None
        if theirs is None or not all(math.isclose(float(a or 0), float(b or 0), rel_tol=1e-9, abs_tol=1e-9)
                                     for a, b in zip(row[7:], theirs)):
            bad += 1
    return bad


def completeness_totals_known(completeness: pl.DataFrame) -> dict[tuple[str, str], bool]:
    """(unit_level, unit_id) -> whether a reader of public/completeness knows the unit's total.

    The total is the unit's members, the same for both attributes (each member is in one category of
    each): it is printed with every shown category of *either* attribute. A total none of whose
    categories is shown is still known when the states (a partition of the population, Unknown
    included) and the population leave it as the only unknown: population minus the other states,
    or the sum of the states (completeness's own suppression counts its totals as shown margin rows)."""
    known = {(u, i): not all(g["suppressed"].to_list()) for (u, i), g in completeness.group_by("unit_level", "unit_id")}
    population, states = ("population", "all"), [k for k in known if k[0] == "state"]
    if population in known and states:
        unknown = [k for k in states if not known[k]]
        if known[population] and len(unknown) == 1:
            known[unknown[0]] = True
        elif not known[population] and not unknown:
            known[population] = True
    return known


def lock_to_completeness(cells: pl.DataFrame, completeness: pl.DataFrame | None, attribute: str) -> pl.DataFrame:
    """All-payer population/state REL cells are public/completeness cells; the unit's total is locked
    as completeness lets a reader know it (:func:`completeness_totals_known`): shown when known, else
    hidden. Locking a known total as hidden asks the plan to protect a public number, which no
    pattern of its own cells can do (the states -> population margin of all-payer totals is all locked)."""
    if completeness is None or completeness.height == 0:
        return cells
    table = completeness.filter(pl.col("attribute") == attribute)
    cats = {(r["unit_level"], r["unit_id"], r["category"]): bool(r["suppressed"]) for r in table.to_dicts()}
    totals = completeness_totals_known(completeness)
    lock, reason, source = [], [], []
    for unit_level, unit_id, payer, stratifier, stratum, old, old_reason, old_source in cells.select(
            "unit_level", "unit_id", "payer", "stratifier", "stratum", "lock", "lock_reason", "derived_from").iter_rows():
        hit = None
        if payer == "all" and unit_level in ("population", "state"):
            if stratifier == "overall" and (unit_level, unit_id) in totals:
                hit = not totals[(unit_level, unit_id)]
            elif stratifier == COLLECTION:
                hit = cats.get((unit_level, unit_id, stratum))
        if hit is None:
            lock.append(old), reason.append(old_reason), source.append(old_source)
        else:
            lock.append("suppressed" if hit else "published")
            reason.append(f"suppressed in {COMPLETENESS_TABLE}" if hit else None)
            source.append(COMPLETENESS_TABLE)
    return cells.with_columns(lock=pl.Series(lock, dtype=pl.String), lock_reason=pl.Series(reason, dtype=pl.String),
                              derived_from=pl.Series(source, dtype=pl.String))


# ------------------------------------------------------------------------------------------ metrics
def _decorate(cells: pl.DataFrame, *, metric_id: str, title: str, measure_id: str | None, kind: str, rate_type: str,
              rate_per: float, direction: str, data_source: str, payers: tuple[str, ...]) -> pl.DataFrame:
    return cells.with_columns(
        metric_id=pl.lit(metric_id), metric_title=pl.lit(title), measure_id=pl.lit(measure_id, pl.String), kind=pl.lit(kind),
        rate_type=pl.lit(rate_type), rate_per=pl.lit(float(rate_per)), direction=pl.lit(direction), data_source=pl.lit(data_source),
        derived_from=pl.lit(COMPUTED),
        publish=pl.col("publish_unit") & pl.col("payer").is_in(["all", *payers]),
    ).drop("publish_unit")


def pqi_counts(results: pl.DataFrame, attributes: pl.DataFrame, units: pl.DataFrame, spec, rules: PlanRules) -> pl.DataFrame:
    """The PQI measure's denominator members: admissions and member-years by unit x payer x stratum (counts)."""
    strat = list(rules.pqi_stratifiers)
    values = (results.filter(pl.col("in_denominator") & (pl.col("submeasure") == "all"))
              .select("member_id", "numerator_value", "denominator_value")
              .join(attributes.select("member_id", "payer", *strat), on="member_id", how="left")
              .with_columns(pl.col(c).fill_null(UNKNOWN) for c in ("payer", *strat)))
    return aggregate(values, units, family=spec.measure_id, submeasure="all", stratifiers=strat)


def pqi_cells(counts: pl.DataFrame, spec, rules: PlanRules, rates_index: dict) -> pl.DataFrame:
    """:func:`pqi_counts` -> cells locked to the same public/rates cells."""
    cells = C.cell_frame(_decorate(counts, metric_id=spec.measure_id, title=spec.title, measure_id=spec.measure_id, kind=spec.kind,
                                   rate_type=spec.rate.get("type", "event_rate"), rate_per=float(spec.rate.get("per", 1)),
                                   direction=spec.direction, data_source="claims", payers=rules.payers))
    return lock_to_rates(cells, spec.measure_id, rates_index)


def rel_counts(members: pl.DataFrame, attributes: pl.DataFrame, units: pl.DataFrame, year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """REL completeness: members by unit x payer x category (categories of ``public/completeness``;
    counts, shares are taken in :func:`rel_cells`), and the label cells for identity margins between
    the two attributes (``cells.label_cells`` of the member-level labels: members per unit x payer x
    race category x language category, payer ``all`` and each payer group)."""
    from equity_pipeline.report.completeness import CATEGORIES, member_categories

    m = members.select("member_id", "race_ethnicity_codes", "race_ethnicity_source", "language", "county_fips")
    # member_categories keeps row order (element-wise expressions only), so member_id lines up
    cats = member_categories(m, year).select(_race="race_ethnicity", _lang="language").with_columns(member_id=m["member_id"])
    labelled = cats.join(attributes.select("member_id", "payer"), on="member_id", how="left").with_columns(pl.col("payer").fill_null(UNKNOWN))
    # both families count the same members: one join with the units for both (every value is 1, so
    # the sums are whole numbers whatever their order)
    base = unit_rows(labelled.with_columns(numerator_value=pl.lit(1.0), denominator_value=pl.lit(1.0)), units)
    parts = [aggregate_rows(base, units, family=family, submeasures={"all": "numerator_value"}, stratifiers={COLLECTION: column},
                            strata={COLLECTION: list(CATEGORIES[attribute])})
             for family, column, attribute in ((REL_RACE, "_race", "race_ethnicity"), (REL_LANGUAGE, "_lang", "language"))]
    # members per label combination, per payer group and for all payers (the sum over payer groups)
    keys = ["_race", "_lang", "payer", "unit_level", "unit_id", "submeasure"]
    by_payer = base.group_by("_race", "_lang", "payer", "unit_level", "unit_id").agg(n=pl.len())
    every = by_payer.group_by("_race", "_lang", "unit_level", "unit_id").agg(pl.col("n").sum()).with_columns(payer=pl.lit("all"))
    labels = (pl.concat([every, by_payer], how="diagonal").with_columns(submeasure=pl.lit("all"))
              .select(*keys, pl.col("n").cast(pl.UInt32)).sort(keys, nulls_last=True))
    return pl.concat(parts), labels


def rel_cells(counts: pl.DataFrame, rules: PlanRules, completeness: pl.DataFrame | None) -> pl.DataFrame:
    """:func:`rel_counts` -> REL completeness shares by unit x payer, locked to public/completeness."""
    parts = []
    for family, attribute in ((REL_RACE, "race_ethnicity"), (REL_LANGUAGE, "language")):
        cells = as_shares(counts.filter(pl.col("family") == family))
        cells = C.cell_frame(_decorate(cells, metric_id=family, title=TITLES[family], measure_id=None, kind="proportion",
                                       rate_type="proportion", rate_per=1.0, direction="higher_is_better", data_source="members",
                                       payers=rules.payers))
        # the overall row is the unit's total (a margin; its size is each category row's denominator)
        cells = cells.with_columns(publish=pl.col("publish") & (pl.col("stratifier") != "overall"))
        parts.append(lock_to_completeness(cells, completeness, attribute))
    return pl.concat(parts)


def sdoh_domain_counts(results: pl.DataFrame, attributes: pl.DataFrame, units: pl.DataFrame) -> pl.DataFrame:
    """The SDOH_SCREEN denominator screened (answered, not declined) in each core domain (counts)."""
    from equity_pipeline.attributes import NEGATIVE, POSITIVE

    den = results.filter(pl.col("in_denominator") & (pl.col("submeasure") == "all")).select("member_id").unique()
    labelled = den.join(attributes.select("member_id", "payer", *[f"sdoh_need_{d}" for d in CORE_DOMAINS]), on="member_id", how="left")
    values = labelled.select(
        "member_id", pl.col("payer").fill_null(UNKNOWN), denominator_value=pl.lit(1.0),
        **{f"_s_{d}": pl.col(f"sdoh_need_{d}").is_in([POSITIVE, NEGATIVE]).fill_null(False).cast(pl.Float64) for d in CORE_DOMAINS})
    # one join with the units and one pass per payer grouping for every domain (0/1 values: whole sums)
    return aggregate_rows(unit_rows(values, units), units, family=SDOH_DOMAIN, submeasures={d: f"_s_{d}" for d in CORE_DOMAINS},
                          stratifiers={})


def sdoh_domain_cells(counts: pl.DataFrame, rules: PlanRules, rates_index: dict) -> pl.DataFrame:
    """:func:`sdoh_domain_counts` -> share screened in each core domain, locked to SDOH_SCREEN rates cells."""
    cells = C.cell_frame(_decorate(counts, metric_id=SDOH_DOMAIN, title=TITLES[SDOH_DOMAIN], measure_id="SDOH_SCREEN",
                                   kind="proportion", rate_type="proportion", rate_per=1.0, direction="higher_is_better",
                                   data_source="clinical", payers=rules.payers))
    return lock_to_rates(cells, "SDOH_SCREEN", rates_index, as_force=True)


def rates_rows(rates: pl.DataFrame, specs: dict, rules: PlanRules, regions: dict) -> pl.DataFrame:
    """Rules measures' rows of public/rates in the plan's shape (values and suppression as published;
    the restricted reason of a suppressed row is ``suppressed in public/rates``)."""
    wanted = set(rules.stratifiers) | {"payer", "region"}
    rows = []
    for r in rates.filter(pl.col("measure_id").is_in(list(rules.measures))).to_dicts():
        if r["unit_level"] == "state" and r["unit_id"] not in rules.states:
            continue
        parts = [] if r["stratifier"] == "overall" else list(zip(r["stratifier"].split(INTERSECTION_SEPARATOR),
                                                                   r["stratum"].split(STRATUM_SEPARATOR)))
        if any(p not in wanted for p, _ in parts):
            continue
        conds = dict(parts)
        payer = conds.pop("payer", "all")
        if payer != "all" and payer not in rules.payers:
            continue  # Unknown (no enrollment in the year) and payers the program leaves out
        region = conds.pop("region", None)
        if region is not None and (r["unit_level"] != "population" or region not in regions):
            continue  # a region's part in one state, or No region / Unknown
        if len(conds) > 1:
            continue
        (stratifier, stratum), = conds.items() if conds else (("overall", "all"),)
        spec = specs[r["measure_id"]]
        rows.append({**{k: r[k] for k in ("measure_id", "submeasure", "members", "numerator", "denominator", "rate", "ci_lower",
                                           "ci_upper", "rate_type", "rate_per", "direction", "data_source", "suppressed")},
                     # rates tells no kind (one public reason); its restricted log has it
                     "suppression_reason": f"suppressed in {RATES_TABLE}" if r["suppressed"] else None,
                     "metric_id": r["measure_id"], "metric_title": r["measure_title"], "kind": spec.kind,
                     "unit_level": "region" if region is not None else r["unit_level"], "unit_id": region or r["unit_id"],
                     "payer": payer, "stratifier": stratifier, "stratum": stratum, "derived_from": RATES_TABLE,
                     "_rates_stratifier": r["stratifier"]})
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(pl.col("members").cast(pl.Float64))


def _cost_disparities(rows: pl.DataFrame, disparities: pl.DataFrame | None, references: dict[str, str]) -> pl.DataFrame:
    """Cost rows (TCOC PMPM, primary-care share) take their comparison from public/disparities, whose
    standard errors need the restricted member-level sums; its reference group is the run's."""
    if disparities is None or disparities.height == 0 or "_rates_stratifier" not in rows.columns:
        return rows.drop("_rates_stratifier", strict=False)
    cols = ["reference_stratum", "difference", "difference_ci_lower", "difference_ci_upper", "ratio", "ratio_ci_lower", "ratio_ci_upper"]
    d = disparities.select("measure_id", "submeasure", "unit_level", "unit_id", _rates_stratifier="stratifier", stratum="stratum",
                           **{f"_d_{c}": c for c in cols}, _d_is_reference="is_reference")
    cost = pl.col("kind").is_in(["cost", "cost_share"]) & (pl.col("payer") == "all") & pl.col("stratifier").is_in(list(references)) \
        & (pl.col("_rates_stratifier") == pl.col("stratifier"))
    joined = rows.join(d, on=["measure_id", "submeasure", "unit_level", "unit_id", "_rates_stratifier", "stratum"], how="left")
    return joined.with_columns(
        *[pl.when(cost).then(pl.col(f"_d_{c}")).otherwise(pl.col(c)).alias(c) for c in cols],
        is_reference=pl.when(cost).then(pl.col("_d_is_reference")).otherwise(pl.col("is_reference")),
    ).drop([f"_d_{c}" for c in cols] + ["_d_is_reference", "_rates_stratifier"])


def state_counts(*, attributes: pl.DataFrame, members: pl.DataFrame, results: dict[str, pl.DataFrame], specs: dict,
                 rules: PlanRules, year: int, regions: dict[str, tuple[str, ...]] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Step (a) of the state plan: (cell counts, label cells). Counts per family x unit x payer x
    stratifier x stratum (members, numerator, denominator on the full grid, ``publish_unit``) before any
    share, rate, lock or suppression; label cells: members per unit x payer x REL race x language
    category (no ids). Both add up over disjoint sets of members (``cells.sum_counts``,
    ``cells.sum_label_cells``): a partitioned run writes them per state and the roll-up adds them up
    and runs :func:`state_metrics_from_counts`."""
    units = member_units(attributes, rules.states, dict(regions or {}))
    parts = []
    if rules.pqi_measure in results:
        parts.append(pqi_counts(results[rules.pqi_measure], attributes, units, specs[rules.pqi_measure], rules))
    rel, labels = rel_counts(members, attributes, units, year)
    parts.append(rel)
    if "SDOH_SCREEN" in results:
        parts.append(sdoh_domain_counts(results["SDOH_SCREEN"], attributes, units))
    return pl.concat(parts, how="diagonal_relaxed"), labels


def complete_grid(counts: pl.DataFrame) -> pl.DataFrame:
    """Summed counts back on the full grid of :func:`aggregate` (per family x sub-measure: every unit x
    payer group x stratum seen in any part, zeros where nobody is); a no-op on one run's counts."""
    if counts.height == 0:
        return counts
    parts = []
    payers = pl.DataFrame({"payer": ["all", *PAYER_GROUPS]})
    for (family, submeasure), part in counts.group_by("family", "submeasure", maintain_order=True):
        grid = (part.select("unit_level", "unit_id", "publish_unit").unique().join(payers, how="cross")
                .join(part.select("stratifier", "stratum").unique(), how="cross"))
        missing = grid.join(part, on=["unit_level", "unit_id", "payer", "stratifier", "stratum"], how="anti").with_columns(
            *[pl.lit(0.0).alias(c) for c in C.COUNT_COLUMNS], family=pl.lit(family), submeasure=pl.lit(submeasure))
        parts.append(pl.concat([part, missing.select(part.columns)]) if missing.height else part)
    return pl.concat(parts)


def state_metrics(*, rates: pl.DataFrame, attributes: pl.DataFrame, members: pl.DataFrame, results: dict[str, pl.DataFrame],
                  specs: dict, rules: PlanRules, year: int, regions: dict[str, tuple[str, ...]] | None = None,
                  completeness: pl.DataFrame | None = None, disparities: pl.DataFrame | None = None,
                  with_reasons: bool = False) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The state plan table and counts for metadata (no values).

    ``results``: restricted member results by measure id (the PQI measure and SDOH_SCREEN when run).
    Every suppressed row says ``suppression.PUBLIC_REASON``; ``with_reasons``: the same table with the
    restricted reasons instead (small cell, complementary, suppressed in public/rates, ...), for the
    restricted suppression log (``suppression.suppression_detail``). :func:`state_counts`, then
    :func:`state_metrics_from_counts`."""
    counts, labels = state_counts(attributes=attributes, members=members, results=results, specs=specs, rules=rules, year=year,
                                  regions=regions)
    return state_metrics_from_counts(counts, labels, rates=rates, specs=specs, rules=rules, year=year, regions=regions,
                                     completeness=completeness, disparities=disparities, with_reasons=with_reasons)


def state_metrics_from_counts(counts: pl.DataFrame, labels: pl.DataFrame, *, rates: pl.DataFrame, specs: dict, rules: PlanRules,
                              year: int, regions: dict[str, tuple[str, ...]] | None = None, completeness: pl.DataFrame | None = None,
                              disparities: pl.DataFrame | None = None, with_reasons: bool = False) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Step (b) of the state plan, from :func:`state_counts` (one run's, or several disjoint runs'
    added up): shares, locks to public/rates and public/completeness, suppression with every margin,
    rates and CIs, the rates rows reshaped, comparisons, baseline and targets."""
    regions = dict(regions or {})
    counts = complete_grid(counts)
    index = _rates_index(rates)
    own = []
    if rules.pqi_measure in specs and counts.filter(pl.col("family") == rules.pqi_measure).height:
        own.append(pqi_cells(counts.filter(pl.col("family") == rules.pqi_measure), specs[rules.pqi_measure], rules, index))
    own.append(rel_cells(counts, rules, completeness))
    if counts.filter(pl.col("family") == SDOH_DOMAIN).height:
        own.append(sdoh_domain_cells(counts.filter(pl.col("family") == SDOH_DOMAIN), rules, index))
    cells = pl.concat(own, how="diagonal_relaxed").sort(C.COORDS)
    margins = (C.partition_margins(cells) + C.unit_margins(cells) + C.payer_margins(cells) + C.region_margins(cells)
               + C.identity_margins(cells, labels, ["submeasure", "unit_level", "unit_id", "payer"],
                                    {"_race": (REL_RACE, COLLECTION), "_lang": (REL_LANGUAGE, COLLECTION)}))
    cells, conflicts = C.protect(cells, margins)
    stats = {"cells": cells.height, "margins": len(margins), "lock_conflicts": conflicts,
             "lock_mismatches": lock_mismatches(cells, rates),
             "unprotected_margins": C.unprotected_margins(cells, margins), "small_cells": C.small_published(cells),
             "locked_cells": int(cells["lock"].is_not_null().sum())}
    own_rows = published(with_rates(cells))
    reshaped = rates_rows(rates, specs, rules, regions)
    rows = pl.concat([own_rows, reshaped], how="diagonal_relaxed") if reshaped.height else own_rows
    # a cell computed here wins over the same rates row (they are equal: the cell is locked to it)
    rows = rows.unique(["metric_id", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum"], keep="first",
                       maintain_order=True)
    references = dict(rules.reference_groups)
    table = finish(rows, rules, "state", as_period(year).label, after_compare=lambda r: _cost_disparities(r, disparities, references))
    stats.update(rows=table.height, suppressed=int(table["suppressed"].sum()),
                 measures_reshaped=int(reshaped["metric_id"].n_unique()) if reshaped.height else 0,
                 states=len(rules.states), regions=len(regions))
    return (table if with_reasons else publishable_reasons(table)), stats
