"""Hospital equity plan, per facility: ``public/equity_plan/hospital_metrics.parquet``.

Facilities are CCNs (``medical_claims.facility_ccn``). A facility's **patients** are the members with
an inpatient stay (type of bill 11x, transfers merged: ``encounters.inpatient_stays``) overlapping
the measurement year or an ED visit in the year (``encounters.every_ed_visit``) at that
facility. A member can be a patient of several facilities, so facilities overlap and never add up
to a total; each facility is its own population (``unit_level = facility``, ``payer = all``).

Metrics (docs/equity_plans.md):

* REL completeness among its patients (categories of ``public/completeness``);
* SDOH screening at the facility (``sdoh_screenings.facility_ccn``, rules ``sdoh_settings``) among
  its adult patients: all five core domains (submeasure ``all``) and each domain; the positive rate
  per domain among those screened in it there (``any``: positive in any domain among those screened
  in at least one);
* 30-day readmission: index stays *at the facility* (adults per the PCR spec's age floor, discharged
  from January 1 to ``readmission_days`` before year end; PCR's discharge-status, same-day, principal
  diagnosis and death exclusions), readmission = an unplanned acute stay *anywhere* (PCR's planned
  rules) 1..N days after discharge; share of index stays, by race/ethnicity and dual status with the
  within-hospital gap against the reference group (difference with 95% CI);
* 7-day ED revisit: index ED visits at the facility that did not end in an admission (January 1 to
  ``ed_revisit_days`` before year end), revisit = another ED visit anywhere 1..N days later;
* safety-net indicators: share of patients dual eligible (stratification payer rule) and share
  living in high-SVI counties (rules ``high_svi``, default the top quintile; unknown county counts in
  the denominator as not high).

Suppression: the 1-10 rule by kind (stays and visits: patients, readmitted and not readmitted), with
complementary suppression along strata -> facility total, identities between strata of different
stratifiers found in each facility's data, and links: a hidden "screened in domain d" cell hides the
positive-rate cell whose denominator it is, and any hidden screening cell hides the "any domain"
positive rate (whose denominator, screened in at least one domain, usually equals them). Suppressed
rows say ``suppression.PUBLIC_REASON`` only; whether each is small or complementary goes to the
restricted suppression log.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from equity_pipeline.attributes import DUAL
from equity_pipeline.encounters import ed_visits, every_ed_visit, inpatient_stays, not_admitted
from equity_pipeline.equity_plans import cells as C
from equity_pipeline.equity_plans.rules import DUAL_ELIGIBLE, NOT_DUAL_ELIGIBLE, PlanRules
from equity_pipeline.equity_plans.state import COLLECTION, COMPUTED, REL_LANGUAGE, REL_RACE
from equity_pipeline.equity_plans.table import finish, published, with_rates
from equity_pipeline.periods import MeasurementPeriod, age_at, as_period
from equity_pipeline.standards.race_ethnicity import UNKNOWN
from equity_pipeline.standards.sdoh import CORE_DOMAINS
from equity_pipeline.suppression import publishable_reasons

READMISSION, ED_REVISIT = "HOSP_READMISSION", "HOSP_ED_REVISIT"
SDOH_SCREEN, SDOH_POSITIVE = "SDOH_SCREEN_FACILITY", "SDOH_POSITIVE_FACILITY"
DUAL_SHARE, HIGH_SVI_SHARE = "DUAL_SHARE", "HIGH_SVI_SHARE"
SVI_GROUP, HIGH_SVI, NOT_HIGH_SVI = "svi_group", "High SVI", "Not high SVI"
ANY_DOMAIN = "any"
FACILITY = "facility"


def dual_eligible(payer: pl.Expr) -> pl.Expr:
    """Dual eligible (payer rule: medicare_medicaid_dual), Unknown without enrollment, else not dual."""
    return (pl.when(payer == DUAL).then(pl.lit(DUAL_ELIGIBLE)).when(payer.is_null() | (payer == UNKNOWN)).then(pl.lit(UNKNOWN))
            .otherwise(pl.lit(NOT_DUAL_ELIGIBLE)))


def facility_patients(stays: pl.DataFrame, visits: pl.DataFrame, period: MeasurementPeriod) -> pl.DataFrame:
    """member_id, facility: inpatient stays overlapping the period and ED visits in it, by facility."""
    inpatient = stays.filter((pl.col("admit_date") <= period.end) & (pl.col("discharge_date") >= period.begin))
    ed = visits.filter(pl.col("visit_date").is_between(period.begin, period.end))
    both = pl.concat([inpatient.select("member_id", facility="facility_ccn"), ed.select("member_id", facility="facility_ccn")])
    return both.filter(pl.col("facility").is_not_null()).unique().sort("facility", "member_id")


def readmission_index(stays: pl.DataFrame, people: pl.DataFrame, spec, days: int, period: MeasurementPeriod,
                      events: pl.LazyFrame) -> pl.DataFrame:
    """Index stays at their facility with ``readmitted`` (bool): see the module docstring."""
    from equity_pipeline.measures.engine import _age_on_event
    from equity_pipeline.measures.readmission import _principal_in, readmissions

    last = period.end - timedelta(days=days)
    index = (stays.filter(pl.col("discharge_date").is_between(period.begin, last) & pl.col("facility_ccn").is_not_null())
             .join(people, on="member_id", how="inner")
             .with_columns(age=_age_on_event(pl.col("birth_date"), pl.col("discharge_date"))))
    if spec.age_min is not None:
        index = index.filter(pl.col("age") >= spec.age_min)
    excluded = pl.lit(False)
    for excl in spec.exclusions:
        if excl.discharge_status:
            excluded = excluded | pl.col("discharge_status").is_in(list(excl.discharge_status)).fill_null(False)
        if excl.same_day_stay:
            excluded = excluded | (pl.col("admit_date") == pl.col("discharge_date"))
        if excl.deceased_by is not None:
            excluded = excluded | (pl.col("death_date") <= pl.col("discharge_date")).fill_null(False)
    index = index.filter(~excluded)
    dx = [v for e in spec.exclusions for v in e.principal_diagnosis]
    if dx and index.height:
        index = index.join(_principal_in(index.lazy(), dx).collect(), on=["member_id", "stay_id"], how="anti")
    rule = {**spec.counting.get("readmission", {}), "within_days": days}
    hit = readmissions(index.lazy(), stays.lazy(), events, rule).collect() if index.height else pl.DataFrame(
        schema={"member_id": pl.String, "stay_id": pl.String, "readmit_date": pl.Date})
    return index.join(hit.select("member_id", "stay_id", readmitted=pl.lit(True)), on=["member_id", "stay_id"], how="left").select(
        "member_id", facility="facility_ccn", numerator_value=pl.col("readmitted").fill_null(False).cast(pl.Float64),
        denominator_value=pl.lit(1.0))


def collect_encounters(claims: pl.LazyFrame, stays: pl.DataFrame | None = None,
                       every: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(inpatient stays, every ED visit, ED visits not ending in an admission) of ``claims``
    (``encounters.inpatient_stays``, ``encounters.every_ed_visit`` and ``encounters.not_admitted``),
    collected together so that the claim lines are read once (the queries share the scan and the
    adjudication join). ``stays`` and ``every``: the stays and every ED visit of these claims when
    already made (the run's shared frames, restricted/measure_base): then only what is missing is
    read from the claims, and nothing when both are given."""
    if stays is None and every is None:
        made, visits = inpatient_stays(claims), every_ed_visit(claims)
        return tuple(pl.collect_all([made, visits, not_admitted(visits, made)]))
    if stays is None:
        stays = inpatient_stays(claims).collect()
    if every is None:
        visits = every_ed_visit(claims)
        return (stays, *pl.collect_all([visits, not_admitted(visits, stays.lazy())]))
    return stays, every, not_admitted(every.lazy(), stays.lazy()).collect()


def ed_revisit_index(claims: pl.LazyFrame | None, stays: pl.DataFrame, days: int, period: MeasurementPeriod, *,
                     visits: tuple[pl.DataFrame, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Index ED visits at their facility (not ending in an admission) with a revisit anywhere in 1..days.
    ``visits``: (every ED visit, visits not ending in an admission) of :func:`collect_encounters`, when already
    collected (then ``claims`` is not read)."""
    every, not_admitted_ed = visits if visits is not None else (
        every_ed_visit(claims).collect(), ed_visits(claims, stays.lazy()).collect())
    every = every.select("member_id", "visit_date")
    index = not_admitted_ed.filter(
        pl.col("visit_date").is_between(period.begin, period.end - timedelta(days=days)) & pl.col("facility_ccn").is_not_null())
    back = (index.select("member_id", "visit_date").join(every.rename({"visit_date": "_next"}), on="member_id")
            .filter(pl.col("_next").is_between(pl.col("visit_date") + pl.duration(days=1), pl.col("visit_date") + pl.duration(days=days)))
            .select("member_id", "visit_date").unique().with_columns(revisit=pl.lit(True)))
    return index.join(back, on=["member_id", "visit_date"], how="left").select(
        "member_id", facility="facility_ccn", numerator_value=pl.col("revisit").fill_null(False).cast(pl.Float64),
        denominator_value=pl.lit(1.0))


def sdoh_by_facility(screenings: pl.LazyFrame, period: MeasurementPeriod, settings: tuple[str, ...],
                     among: pl.DataFrame | None = None) -> pl.DataFrame:
    """member_id, facility, domain, screened, positive: screenings at the facility in the period (a
    screening's facility is the CCN of its first answer row). ``among``: only these (member_id,
    facility) pairs (the facilities' adult patients): the answers of other pairs are dropped before
    their domains are scored (whole screenings, so the kept pairs' results are the same)."""
    from equity_pipeline.standards.sdoh import domain_results

    at = screenings.filter(pl.col("screening_date").is_between(period.begin, period.end) & pl.col("facility_ccn").is_not_null()
                           & pl.col("setting").is_in(list(settings)).fill_null(False))
    where = at.group_by("screening_id").agg(facility=pl.col("facility_ccn").first())
    if among is not None:
        at = at.join(where, on="screening_id", how="inner").join(
            among.lazy().select("member_id", "facility").unique(), on=["member_id", "facility"], how="semi").drop("facility")
    results = domain_results(at).join(where, on="screening_id", how="inner")
    return results.group_by("member_id", "facility", "domain").agg(pl.col("screened").any(), pl.col("positive").any()).collect()


def _counts(values: pl.DataFrame, *, family: str, submeasure: str, stratifiers: list[str]) -> pl.DataFrame:
    """Counts per facility x stratifier x stratum (observed strata; absent ones are known zeros), in
    (facility, stratum) order: the few aggregate rows are sorted, not the member rows (the counts are
    sums of whole numbers and distinct counts, the same in any row order)."""
    parts = []
    for s in ("overall", *stratifiers):
        stratum = pl.lit("all") if s == "overall" else pl.col(s)
        parts.append(values.group_by("facility", stratum.alias("stratum")).agg(
            members=pl.col("member_id").n_unique().cast(pl.Float64), numerator=pl.col("numerator_value").sum(),
            denominator=pl.col("denominator_value").sum()).sort("facility", "stratum").with_columns(stratifier=pl.lit(s)))
    return pl.concat(parts).select(
        family=pl.lit(family), submeasure=pl.lit(submeasure), unit_level=pl.lit(FACILITY), unit_id="facility", payer=pl.lit("all"),
        stratifier="stratifier", stratum="stratum", members="members", numerator="numerator", denominator="denominator")


def _meta(cells: pl.DataFrame, metric_id: str, title: str, measure_id: str | None, kind: str, direction: str,
          data_source: str) -> pl.DataFrame:
    return C.cell_frame(cells.with_columns(
        metric_id=pl.lit(metric_id), metric_title=pl.lit(title), measure_id=pl.lit(measure_id, pl.String), kind=pl.lit(kind),
        rate_type=pl.lit("proportion"), rate_per=pl.lit(1.0), direction=pl.lit(direction), data_source=pl.lit(data_source),
        derived_from=pl.lit(COMPUTED)))


def _share_counts(patients: pl.DataFrame, column: str, family: str, shown: tuple[str, ...]) -> pl.DataFrame:
    """A partition of each facility's patients: patients per stratum (shares of the facility's patients
    are taken by :func:`as_shares`). Only the ``shown`` strata are published, each for every facility
    (0 when nobody is in it); the others are margins."""
    values = patients.select("member_id", "facility", pl.col(column).alias(family), numerator_value=pl.lit(1.0), denominator_value=pl.lit(1.0))
    counted = _counts(values, family=family, submeasure="all", stratifiers=[family])
    grid = (counted.select("family", "submeasure", "unit_level", "unit_id", "payer").unique()
            .join(pl.DataFrame({"stratifier": family, "stratum": list(shown)}), how="cross"))
    counted = pl.concat([counted, grid.join(counted, on=list(grid.columns), how="anti").with_columns(
        members=pl.lit(0.0), numerator=pl.lit(0.0), denominator=pl.lit(0.0))], how="diagonal")
    return counted.with_columns(publish=(pl.col("stratifier") != "overall") & pl.col("stratum").is_in(list(shown)))


def as_shares(counted: pl.DataFrame) -> pl.DataFrame:
    """:func:`_share_counts` of one family -> shares: numerator = patients in the stratum, denominator
    and ``members`` = the facility's patients (its ``overall`` row)."""
    totals = counted.filter(pl.col("stratifier") == "overall").select("unit_id", _t="members")
    return counted.join(totals, on="unit_id").with_columns(numerator=pl.col("members"), denominator=pl.col("_t"),
                                                           members=pl.col("_t")).drop("_t")


TITLES = {
    REL_RACE: "Race and ethnicity data completeness among the facility's patients",
    REL_LANGUAGE: "Preferred language data completeness among the facility's patients",
    DUAL_SHARE: "Share of the facility's patients dual eligible (Medicare and Medicaid)",
    HIGH_SVI_SHARE: "Share of the facility's patients living in high social vulnerability (SVI) counties",
    SDOH_SCREEN: "Adult patients screened for social needs at the facility",
    SDOH_POSITIVE: "Screen-positive rate at the facility among patients screened in the domain",
}


SHARE_FAMILIES = (REL_RACE, REL_LANGUAGE, DUAL_SHARE, HIGH_SVI_SHARE)
PATIENTS = "patients"


def hospital_metrics(*, claims: pl.LazyFrame, members: pl.DataFrame, attributes: pl.DataFrame, screenings: pl.LazyFrame,
                     events: pl.LazyFrame, specs: dict, rules: PlanRules, year: int,
                     with_reasons: bool = False, stays: pl.DataFrame | None = None,
                     every_ed: pl.DataFrame | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The hospital plan table and counts for metadata (no values). Every suppressed row says
    ``suppression.PUBLIC_REASON``; ``with_reasons``: the same table with the restricted reasons
    instead (small cell, complementary), for the restricted suppression log. :func:`hospital_counts`,
    then :func:`hospital_metrics_from_counts`. ``stays``, ``every_ed``: the inpatient stays and every
    ED visit of ``claims`` when already made (:func:`collect_encounters`)."""
    counts, labels = hospital_counts(claims=claims, members=members, attributes=attributes, screenings=screenings, events=events,
                                     specs=specs, rules=rules, year=year, stays=stays, every_ed=every_ed)
    return hospital_metrics_from_counts(counts, labels, rules=rules, year=year, with_reasons=with_reasons)


def hospital_counts(*, claims: pl.LazyFrame, members: pl.DataFrame, attributes: pl.DataFrame, screenings: pl.LazyFrame,
                    events: pl.LazyFrame, specs: dict, rules: PlanRules, year: int,
                    stays: pl.DataFrame | None = None, every_ed: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Step (a) of the hospital plan: (cell counts, label cells), before shares, rates and suppression.
    Counts per family x facility x stratifier x stratum with the cell attributes; ``members`` counts
    distinct patients, stays or visits of the facility, so counts of disjoint sets of members add up
    (``cells.sum_counts``): a member's stays, visits and screenings are all theirs, wherever the
    facility is. Label cells: patients per facility x label combination (``label_set`` ``patients``)
    and per facility x stratum combination of each encounter family (no ids)."""
    from equity_pipeline.report.completeness import CATEGORIES, member_categories

    period = as_period(year)  # a measurement year or a (rolling) MeasurementPeriod
    stays, every_ed, not_admitted_ed = collect_encounters(claims, stays, every_ed)
    patients = facility_patients(stays, every_ed, period)
    # labels of the facilities' patients only (every index stay, ED visit and adult counted below is a
    # patient's): the categories are row-wise, so the other members' would never be read
    patient_ids = patients.select("member_id").unique()
    m = members.select("member_id", "race_ethnicity_codes", "race_ethnicity_source", "language", "county_fips").join(
        patient_ids, on="member_id", how="semi")
    cats = member_categories(m, year).select(_race="race_ethnicity", _lang="language").with_columns(member_id=m["member_id"])
    strat = [s for s in rules.hospital_stratifiers if s != "dual_eligible"]
    labels = (attributes.select("member_id", "payer", "svi_quintile", *strat).join(patient_ids, on="member_id", how="semi")
              .with_columns(dual_eligible=dual_eligible(pl.col("payer")),
                            **{SVI_GROUP: pl.when(pl.col("svi_quintile").is_in(list(rules.high_svi))).then(pl.lit(HIGH_SVI))
                               .when(pl.col("svi_quintile") == UNKNOWN).then(pl.lit(UNKNOWN)).otherwise(pl.lit(NOT_HIGH_SVI))})
              .join(cats, on="member_id", how="left"))
    people = members.select("member_id", "birth_date", *[c for c in ("death_date",) if c in members.columns])
    if "death_date" not in people.columns:
        people = people.with_columns(death_date=pl.lit(None, pl.Date))
    pt = patients.join(labels, on="member_id", how="left").with_columns(
        *[pl.col(c).fill_null(UNKNOWN) for c in ("dual_eligible", SVI_GROUP, *strat)],
        *[pl.col(c).fill_null("unknown") for c in ("_race", "_lang")])
    h_strat = list(rules.hospital_stratifiers)
    parts = []

    # patient mix: REL completeness, dual and high-SVI shares (one population per facility)
    for family, column, shown, source, direction in (
            (REL_RACE, "_race", CATEGORIES["race_ethnicity"], "members", "higher_is_better"),
            (REL_LANGUAGE, "_lang", CATEGORIES["language"], "members", "higher_is_better"),
            (DUAL_SHARE, "dual_eligible", (DUAL_ELIGIBLE,), "enrollment", "higher_is_better"),
            (HIGH_SVI_SHARE, SVI_GROUP, (HIGH_SVI,), "members", "higher_is_better")):
        cells = _share_counts(pt, column, family, shown)
        cells = cells.with_columns(stratifier=pl.when(pl.col("stratifier") == family).then(
            pl.lit(COLLECTION if family in (REL_RACE, REL_LANGUAGE) else column)).otherwise(pl.col("stratifier")))
        parts.append(_meta(cells, family, TITLES[family], None, "proportion", direction, source))

    # readmission and ED revisit at the facility, by stratum
    pcr = specs["PCR"]
    readmit = readmission_index(stays, people, pcr, rules.readmission_days, period, events)
    revisit = ed_revisit_index(None, stays, rules.ed_revisit_days, period, visits=(every_ed, not_admitted_ed))
    encounter_labels = {}
    for family, values, title, source_measure in (
            (READMISSION, readmit, f"{rules.readmission_days}-day readmission after a stay at the facility (readmitted anywhere)", "PCR"),
            (ED_REVISIT, revisit, f"{rules.ed_revisit_days}-day return to any ED after an ED visit at the facility", None)):
        v = values.join(labels.select("member_id", "dual_eligible", *strat), on="member_id", how="left").with_columns(
            pl.col(c).fill_null(UNKNOWN) for c in h_strat)
        encounter_labels[family] = C.label_cells(v.select("member_id", unit_id="facility", *h_strat).unique())
        parts.append(_meta(_counts(v, family=family, submeasure="all", stratifiers=h_strat), family, title, source_measure,
                           "readmission", "lower_is_better", "claims"))

    # SDOH screening and positive rates at the facility
    adults = pt.join(people.select("member_id", "birth_date"), on="member_id", how="left").filter(
        age_at(pl.col("birth_date"), period.end) >= rules.sdoh_min_age).select("member_id", "facility")
    sdoh = sdoh_by_facility(screenings, period, rules.sdoh_settings, among=adults)
    per = adults.join(sdoh, on=["member_id", "facility"], how="left")
    flags = per.group_by("member_id", "facility").agg(
        *[(pl.col("screened") & (pl.col("domain") == d)).any().alias(f"s_{d}") for d in CORE_DOMAINS],
        *[(pl.col("positive") & (pl.col("domain") == d)).any().alias(f"p_{d}") for d in CORE_DOMAINS])
    flags = flags.with_columns(pl.col("^[sp]_.*$").fill_null(False)).with_columns(
        s_all=pl.all_horizontal(*[pl.col(f"s_{d}") for d in CORE_DOMAINS]),
        s_any=pl.any_horizontal(*[pl.col(f"s_{d}") for d in CORE_DOMAINS]),
        p_any=pl.any_horizontal(*[pl.col(f"p_{d}") & pl.col(f"s_{d}") for d in CORE_DOMAINS]))
    for sub, num in (("all", "s_all"), *[(d, f"s_{d}") for d in CORE_DOMAINS]):
        v = flags.select("member_id", "facility", numerator_value=pl.col(num).cast(pl.Float64), denominator_value=pl.lit(1.0))
        parts.append(_meta(_counts(v, family=SDOH_SCREEN, submeasure=sub, stratifiers=[]), SDOH_SCREEN, TITLES[SDOH_SCREEN],
                           "SDOH_SCREEN", "proportion", "higher_is_better", "clinical"))
    for sub, num, den in ((ANY_DOMAIN, "p_any", "s_any"), *[(d, f"p_{d}", f"s_{d}") for d in CORE_DOMAINS]):
        v = flags.filter(pl.col(den)).select("member_id", "facility", numerator_value=(pl.col(num) & pl.col(den)).cast(pl.Float64),
                                             denominator_value=pl.lit(1.0))
        if v.height:
            parts.append(_meta(_counts(v, family=SDOH_POSITIVE, submeasure=sub, stratifiers=[]), SDOH_POSITIVE, TITLES[SDOH_POSITIVE],
                               "SDOH_POSITIVE", "proportion", "lower_is_better", "clinical"))

    patient_labels = C.label_cells(pt.select("member_id", unit_id="facility", _race="_race", _lang="_lang", dual_eligible="dual_eligible",
                                             **{SVI_GROUP: SVI_GROUP}))
    labels = pl.concat([patient_labels.with_columns(label_set=pl.lit(PATIENTS)),
                        *[lab.with_columns(label_set=pl.lit(family)) for family, lab in encounter_labels.items()]], how="diagonal_relaxed")
    return pl.concat(parts, how="diagonal_relaxed"), labels


def hospital_metrics_from_counts(counts: pl.DataFrame, labels: pl.DataFrame, *, rules: PlanRules, year: int,
                                 with_reasons: bool = False) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Step (b) of the hospital plan, from :func:`hospital_counts` (one run's, or several disjoint runs'
    added up): shares of patients, margins (strata, identities from the label cells), links, suppression,
    rates and CIs, comparisons, baseline and targets."""
    period = as_period(year)
    h_strat = list(rules.hospital_stratifiers)
    share = pl.col("family").is_in(list(SHARE_FAMILIES))
    cells = pl.concat([*[as_shares(counts.filter(pl.col("family") == f)) for f in SHARE_FAMILIES], counts.filter(~share)],
                      how="diagonal_relaxed").sort(C.COORDS)
    margins = C.partition_margins(cells)
    key = ["submeasure", "unit_level", "unit_id", "payer"]
    facility = dict(submeasure=pl.lit("all"), unit_level=pl.lit(FACILITY), payer=pl.lit("all"))
    patient_labels = labels.filter(pl.col("label_set") == PATIENTS).select("unit_id", "_race", "_lang", "dual_eligible", SVI_GROUP, "n")
    margins += C.identity_margins(cells, patient_labels.with_columns(**facility), key, {
        "_race": (REL_RACE, COLLECTION), "_lang": (REL_LANGUAGE, COLLECTION), "dual_eligible": (DUAL_SHARE, "dual_eligible"),
        SVI_GROUP: (HIGH_SVI_SHARE, SVI_GROUP)})
    for family in (READMISSION, ED_REVISIT):
        lab = labels.filter(pl.col("label_set") == family).select("unit_id", *h_strat, "n").with_columns(**facility)
        margins += C.identity_margins(cells, lab, key, {s: (family, s) for s in h_strat})
    # a hidden "screened in d" count is the hidden denominator of the positive rate in d; "screened in
    # any domain" (the denominator of "any") often equals a screening count too (screenings usually
    # cover every domain), so any hidden screening row of the facility hides "any"
    links = []
    idx = cells.with_row_index("_i").filter(pl.col("stratifier") == "overall")
    screen = {(r["unit_id"], r["submeasure"]): r["_i"] for r in idx.filter(pl.col("family") == SDOH_SCREEN).to_dicts()}
    for r in idx.filter(pl.col("family") == SDOH_POSITIVE).to_dicts():
        if r["submeasure"] == ANY_DOMAIN:
            links += [(i, r["_i"]) for (unit, _), i in screen.items() if unit == r["unit_id"]]
        elif (r["unit_id"], r["submeasure"]) in screen:
            links.append((screen[(r["unit_id"], r["submeasure"])], r["_i"]))
    cells, conflicts = C.protect(cells, margins, links)
    overall = cells.filter(pl.col("stratifier") == "overall")
    stats = {"facilities": overall.filter(pl.col("family") == REL_RACE)["unit_id"].n_unique(), "cells": cells.height,
             "margins": len(margins), "links": len(links),
             "unprotected_margins": C.unprotected_margins(cells, margins), "small_cells": C.small_published(cells),
             "index_stays": int(overall.filter(pl.col("family") == READMISSION)["denominator"].sum()),
             "index_ed_visits": int(overall.filter(pl.col("family") == ED_REVISIT)["denominator"].sum())}
    table = finish(published(with_rates(cells)), rules, "hospital", period.label)
    stats.update(rows=table.height, suppressed=int(table["suppressed"].sum()))
    return (table if with_reasons else publishable_reasons(table)), stats
