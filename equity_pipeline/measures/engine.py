"""Evaluate a measure spec: eligible population -> exclusions -> denominator -> numerator.

Output is member-level (Tuva's "long" shape), one row per member in the eligible population:
``member_id, measure_id, measure_version, submeasure, period, age, payer, line_of_business,
dual_status, is_excluded, exclusion_reason, in_denominator, in_numerator, evidence_date,
evidence_source``. ``in_numerator`` is null for excluded members. Members outside the eligible
population are counted by reason in :class:`MeasureCounts`, so the manifest reconciles every member.

Dates in a spec are *anchors*: fixed by the measurement period (``period_begin``,
``{months_before_begin: 15}`` ...), or per member: ``birth``, or a spec-defined anchor such as IET's
``index`` (the earliest new SUD episode). ``{anchor: A, years: y, months: m, days: d}`` offsets any
of them (months are calendar months, clamped to the month's last day as polars ``offset_by`` does).
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl

from equity_pipeline.enrollment import continuously_enrolled, enrolled_in_windows, payer_on, payer_on_dates
from equity_pipeline.events import EVENT_SCHEMA
from equity_pipeline.measures.spec import (
    Anchor, AnyOf, Composite, Condition, EventCriterion, HasAnchor, MeasureSpec, Row, anchor_names,
)
from equity_pipeline.periods import MeasurementPeriod

ALL_ROWS = "all"
#: column holding a per-member anchor's date (and its evidence source)
ANCHOR_COLUMN = "_at_{}"
ANCHOR_SOURCE = "_src_{}"


@dataclass
class MeasureCounts:
    members_in: int
    not_eligible: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    denominator: int = 0
    numerator: int = 0
    #: measure-specific aggregate figures (e.g. index stays and the risk model of PCR); no member data
    details: dict[str, Any] = field(default_factory=dict)

    def reconciles(self) -> bool:
        return self.members_in == sum(self.not_eligible.values()) + sum(self.excluded.values()) + self.denominator


# ---------------------------------------------------------------- dates and ages
def add_months(d: date, months: int) -> date:
    """``d`` plus calendar months, clamped to the last day of the month (as polars ``offset_by``)."""
    total = d.year * 12 + d.month - 1 + months
    y, m = divmod(total, 12)
    return date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def bound(anchor: Any, period: MeasurementPeriod) -> pl.Expr:
    """A date anchor as an expression: a literal for period anchors, a column for member anchors."""
    if isinstance(anchor, dict) and "anchor" in anchor:
        months = int(anchor.get("years", 0)) * 12 + int(anchor.get("months", 0))
        days = int(anchor.get("days", 0))
        base = anchor["anchor"]
        if not anchor_names(base):
            return pl.lit(add_months(_literal(base, period), months) + timedelta(days=days))
        expr = bound(base, period)
        if months:
            expr = expr.dt.offset_by(f"{months}mo")
        return expr + pl.duration(days=days) if days else expr
    if anchor_names(anchor):
        return pl.col("birth_date") if anchor == "birth" else pl.col(ANCHOR_COLUMN.format(anchor))
    return pl.lit(period.resolve(anchor))


def _literal(anchor: Any, period: MeasurementPeriod) -> date:
    if isinstance(anchor, dict) and "anchor" in anchor:
        months = int(anchor.get("years", 0)) * 12 + int(anchor.get("months", 0))
        return add_months(_literal(anchor["anchor"], period), months) + timedelta(days=int(anchor.get("days", 0)))
    return period.resolve(anchor)


def _age_on_event(birth: pl.Expr, event: pl.Expr) -> pl.Expr:
    years = event.dt.year() - birth.dt.year()
    before = (birth.dt.month() > event.dt.month()) | ((birth.dt.month() == event.dt.month()) & (birth.dt.day() > event.dt.day()))
    return years - before.cast(pl.Int32)


def age_in_months(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Completed months on ``on``: the largest n with birth + n months (clamped) on or before ``on``."""
    n = (on.dt.year() - birth.dt.year()) * 12 + (on.dt.month().cast(pl.Int32) - birth.dt.month().cast(pl.Int32))
    due_day = pl.min_horizontal(birth.dt.day(), on.dt.month_end().dt.day())
    return (n - (due_day > on.dt.day()).cast(pl.Int32)).cast(pl.Int32)


# ---------------------------------------------------------------- events
def with_composites(events: pl.LazyFrame, composites: tuple[Composite, ...]) -> pl.LazyFrame:
    """``events`` plus one row per member and date for each composite event type that holds (member ids
    of any type: strings, or the integer member keys ``pipeline.evaluate_measure`` passes)."""
    schema = {**EVENT_SCHEMA, "member_id": events.collect_schema()["member_id"]}
    for comp in composites:
        parts = []
        for how, sets in comp.alternatives:
            hits = events.filter(pl.col("value_set").is_in(list(sets)))
            if how == "same_day":
                # only member-days with an event of every set can qualify: keep those before the
                # per-day string aggregation (a visit value set can match most claim lines); each
                # set's days come from the rows the sets before it left, so a rare diagnosis set
                # first means the days of a frequent visit set are never all listed
                for vs in sorted(set(sets)):
                    days = hits.filter(pl.col("value_set") == vs).select("member_id", "event_date").unique()
                    hits = hits.join(days, on=["member_id", "event_date"], how="semi")
                hits = hits.group_by("member_id", "event_date").agg(
                    pl.col("source").unique().sort().str.join("+"), _n=pl.col("value_set").n_unique()
                ).filter(pl.col("_n") >= len(set(sets)))
            parts.append(hits.select("member_id", "event_date", "source"))
        derived = pl.concat(parts).group_by("member_id", "event_date").agg(pl.col("source").str.split("+").explode().unique().sort().str.join("+"))
        events = pl.concat([events, derived.select(
            "member_id", "event_date", pl.lit(comp.name).alias("value_set"), pl.lit(None, dtype=pl.String).alias("code_system"),
            pl.lit(None, dtype=pl.String).alias("code"), "source", pl.lit(None, dtype=pl.Float64).alias("value_numeric"),
        ).cast(schema)])
    return events


def _window(events: pl.LazyFrame, criterion: EventCriterion, period: MeasurementPeriod, dates: pl.LazyFrame) -> pl.LazyFrame:
    """Events of the criterion's value sets inside its window (and age band)."""
    tagged = events.filter(pl.col("value_set").is_in(list(criterion.value_sets)))
    needs_member = bool(anchor_names(criterion.start) | anchor_names(criterion.end)) or criterion.age_min is not None or criterion.age_max is not None
    if needs_member:
        tagged = tagged.join(dates, on="member_id", how="inner")
    tagged = tagged.filter(pl.col("event_date") <= bound(criterion.end, period))
    if criterion.start is not None:
        tagged = tagged.filter(pl.col("event_date") >= bound(criterion.start, period))
    if criterion.age_min is not None or criterion.age_max is not None:
        age = _age_on_event(pl.col("birth_date"), pl.col("event_date"))
        tagged = tagged.filter(
            age.is_between(criterion.age_min if criterion.age_min is not None else -1, criterion.age_max if criterion.age_max is not None else 200)
        )
    return tagged


def _sources_present(sources: list[str]) -> dict[str, pl.Expr]:
    """Aggregations: one flag per source string, whether a group has it."""
    return {f"_has{i}": (pl.col("source") == src).any() for i, src in enumerate(sources)}


def _sources_joined(sources: list[str], flags: dict[str, pl.Expr] | None = None) -> pl.Expr:
    """The flagged sources of :func:`_sources_present`, sorted, joined with ``+``: the same string as
    ``pl.col("source").unique().sort().str.join("+")`` over the group (nulls ignored, ``""`` when none),
    without a list of strings per group (6-10x less CPU per member). ``flags``: the flag expression
    of each flag name (default: the flag columns)."""
    if not sources:
        return pl.lit("")
    flags = flags or {}
    return pl.concat_str([pl.when(flags.get(f"_has{i}", pl.col(f"_has{i}"))).then(pl.lit(src)) for i, src in enumerate(sources)],
                         separator="+", ignore_nulls=True)


def _source_parts_joined(sources: list[str]) -> pl.Expr:
    """:func:`_sources_joined` normalised as :func:`_any_of` normalises a member's sources (the
    ``+``-separated parts, distinct and sorted), built from the flags: a part is in when a flagged
    source has it. The same string without splitting, deduplicating and sorting a list per member
    (about 1 CPU-s per million members)."""
    parts = sorted({part for src in sources for part in src.split("+")})
    if not parts:
        return pl.lit("")
    has = {part: pl.any_horizontal([pl.col(f"_has{i}") for i, src in enumerate(sources) if part in src.split("+")]) for part in parts}
    return pl.concat_str([pl.when(has[part]).then(pl.lit(part)) for part in parts], separator="+", ignore_nulls=True)


def matching(events: pl.LazyFrame, criterion: EventCriterion, period: MeasurementPeriod, dates: pl.LazyFrame, *,
             normalised: bool = False) -> pl.LazyFrame:
    """member_id, evidence_date (latest qualifying event), source, for members meeting ``criterion``.

    ``dates`` has member_id, birth_date and the spec's per-member anchor columns. ``normalised``: the
    source's ``+``-separated parts distinct and sorted (:func:`_source_parts_joined`)."""
    # the distinct sources of the criterion's events (a handful: claims, clinical, pharmacy, sdoh, composites)
    sources = sorted(
        events.filter(pl.col("value_set").is_in(list(criterion.value_sets)) & pl.col("source").is_not_null())
        .select(pl.col("source").unique()).collect()["source"].to_list()
    )
    per_member = _window(events, criterion, period, dates).group_by("member_id").agg(
        evidence_date=pl.col("event_date").max(), **_sources_present(sources), **_counted(criterion),
    )
    source = _source_parts_joined(sources) if normalised else _sources_joined(sources)
    return per_member.filter(_meets(criterion)).select("member_id", "evidence_date", source=source)


def matching_members(events: pl.LazyFrame, criterion: EventCriterion, period: MeasurementPeriod, dates: pl.LazyFrame) -> pl.LazyFrame:
    """member_id of the members meeting ``criterion`` (:func:`matching` without evidence)."""
    window, counted = _window(events, criterion, period, dates), _counted(criterion)
    if not counted:
        return window.select("member_id").unique()
    return window.group_by("member_id").agg(**counted).filter(_meets(criterion)).select("member_id")


def _counted(criterion: EventCriterion) -> dict[str, pl.Expr]:
    """The per-member counts a criterion tests: distinct dates (``min_count`` above 1; every member
    with an event has one) and distinct value sets (``all_of``)."""
    out = {}
    if criterion.min_count > 1:
        out["n_dates"] = pl.col("event_date").n_unique()
    if criterion.all_of:
        # distinct value sets among the window's (never null) sets, as one flag per set: the same
        # count as value_set.n_unique() without hashing each member's strings
        out["n_sets"] = pl.sum_horizontal([(pl.col("value_set") == vs).any() for vs in sorted(set(criterion.value_sets))])
    return out


def _meets(criterion: EventCriterion) -> pl.Expr:
    keep = pl.col("n_dates") >= criterion.min_count if criterion.min_count > 1 else pl.lit(True)
    if criterion.all_of:
        keep = keep & (pl.col("n_sets") >= len(set(criterion.all_of)))
    return keep


def _any_of(parts: list[pl.LazyFrame]) -> pl.LazyFrame:
    return pl.concat(parts).group_by("member_id").agg(
        pl.col("evidence_date").max(), pl.col("source").str.split("+").list.explode().unique().sort().str.join("+")
    )


def satisfied(events: pl.LazyFrame, cond: Condition, period: MeasurementPeriod, dates: pl.LazyFrame) -> pl.LazyFrame:
    """member_id, evidence_date, source for members meeting a condition tree."""
    if isinstance(cond, EventCriterion):
        return matching(events, cond, period, dates)
    if isinstance(cond, HasAnchor):
        col = ANCHOR_COLUMN.format(cond.anchor)
        return dates.filter(pl.col(col).is_not_null()).select(
            "member_id", pl.col(col).alias("evidence_date"), pl.col(ANCHOR_SOURCE.format(cond.anchor)).alias("source"))
    if isinstance(cond, AnyOf) and len(cond.parts) == 1 and isinstance(cond.parts[0], EventCriterion):
        # one row per member already (matching groups by member): the aggregation of _any_of is the identity
        # on the rows but for the source's normalisation
        return matching(events, cond.parts[0], period, dates, normalised=True)
    parts = [satisfied(events, p, period, dates) for p in cond.parts]
    if isinstance(cond, AnyOf):
        return _any_of(parts)
    joined = parts[0].rename({"evidence_date": "_d0", "source": "_s0"})
    for i, part in enumerate(parts[1:], start=1):
        joined = joined.join(part.rename({"evidence_date": f"_d{i}", "source": f"_s{i}"}), on="member_id", how="inner")
    n = len(parts)
    return joined.select(
        "member_id",
        pl.max_horizontal([f"_d{i}" for i in range(n)]).alias("evidence_date"),
        pl.concat_list([pl.col(f"_s{i}").str.split("+") for i in range(n)]).list.unique().list.sort().list.join("+").alias("source"),
    )


def anchor_dates(events: pl.LazyFrame, anchor: Anchor, period: MeasurementPeriod, dates: pl.LazyFrame) -> pl.LazyFrame:
    """member_id, ``_at_<name>`` (earliest qualifying date) and ``_src_<name>`` for one anchor."""
    candidates = pl.concat([_window(events, c, period, dates).select("member_id", "event_date", "source") for c in anchor.first])
    if anchor.no_prior:
        history = events.filter(pl.col("value_set").is_in(list(anchor.no_prior))).select("member_id", _h=pl.col("event_date")).unique()
        clash = (
            candidates.select("member_id", "event_date").unique().join(history, on="member_id", how="inner")
            .filter((pl.col("_h") < pl.col("event_date")) & (pl.col("_h") >= pl.col("event_date") - pl.duration(days=anchor.no_prior_days)))
            .select("member_id", "event_date").unique()
        )
        candidates = candidates.join(clash, on=["member_id", "event_date"], how="anti")
    first = candidates.group_by("member_id").agg(pl.col("event_date").min().alias("_first"))
    return candidates.join(first, on="member_id").filter(pl.col("event_date") == pl.col("_first")).group_by("member_id").agg(
        pl.col("event_date").first().alias(ANCHOR_COLUMN.format(anchor.name)),
        pl.col("source").str.split("+").explode().unique().sort().str.join("+").alias(ANCHOR_SOURCE.format(anchor.name)),
    )


# ---------------------------------------------------------------- results
def latest_result(events: pl.LazyFrame, rule: dict, period: MeasurementPeriod) -> pl.LazyFrame:
    """member_id, evidence_date, source, controlled for members with a complete reading in the window.

    Each component's readings are observations (controlled when the value is below / at most the
    threshold) or claims result codes (CPT II: controlled or uncontrolled by value set). The latest
    date on which every component has a reading is used; on that date a component counts as
    controlled if any of its readings is (the lowest reading, as HEDIS specifies for BP)."""
    start, end = period.resolve(rule.get("from", "period_begin")), period.resolve(rule.get("to", "period_end"))
    window = events.filter(pl.col("event_date").is_between(start, end))
    read = sorted({v for comp in rule["components"] for v in (comp.get("observation"), comp.get("controlled_codes"),
                                                              comp.get("uncontrolled_codes")) if v})
    # the distinct sources of the readings (a handful): one flag per source and component instead of a
    # list of source strings per member and date (as :func:`matching`)
    sources = sorted(window.filter(pl.col("value_set").is_in(read) & pl.col("source").is_not_null())
                     .select(pl.col("source").unique()).collect()["source"].to_list())
    per_component = []
    for comp in rule["components"]:
        obs, good, bad = comp.get("observation"), comp.get("controlled_codes"), comp.get("uncontrolled_codes")
        value = pl.col("value_numeric")
        ok_value = value < comp["controlled_below"] if "controlled_below" in comp else value <= comp["controlled_at_most"]
        ok = (
            pl.when(pl.col("value_set") == good).then(True)
            .when(pl.col("value_set") == bad).then(False)
            .when((pl.col("value_set") == obs) & value.is_not_null()).then(ok_value)
            .otherwise(None)
        )
        readings = window.filter(pl.col("value_set").is_in([v for v in (obs, good, bad) if v])).with_columns(_ok=ok).filter(pl.col("_ok").is_not_null())
        per_component.append(
            readings.group_by("member_id", "event_date").agg(
                pl.col("_ok").any().alias(f"ok_{comp['name']}"),
                **{f"{flag}_{comp['name']}": has for flag, has in _sources_present(sources).items()},
            )
        )
    joined = per_component[0]
    for other in per_component[1:]:
        joined = joined.join(other, on=["member_id", "event_date"], how="inner")
    names = [c["name"] for c in rule["components"]]
    # one row per member and date (the group-by keys): the member's latest date is one row, found
    # without sorting every reading date
    latest = joined.filter(pl.col("event_date") == pl.col("event_date").max().over("member_id"))
    return latest.select(
        "member_id",
        pl.col("event_date").alias("evidence_date"),
        # the sources of every component's readings that day, distinct, sorted, joined with "+"
        _sources_joined(sources, {flag: pl.any_horizontal([f"{flag}_{n}" for n in names]) for flag in _sources_present(sources)})
        .alias("source"),
        pl.all_horizontal([f"ok_{n}" for n in names]).alias("controlled"),
    )


def _age_rows(spec: MeasureSpec) -> list[Row]:
    return [r for r in spec.rows if r.is_age_row]


def _in_band(lo: int | None, hi: int | None, unit: str) -> pl.Expr:
    col = pl.col("age_months" if unit == "months" else "age")
    return col.is_between(lo if lo is not None else -1, hi if hi is not None else 10_000)


def _submeasure(spec: MeasureSpec) -> pl.Expr:
    """Age-row label of each member (``all`` when the spec has no age rows)."""
    expr = pl.lit(ALL_ROWS)
    for row in reversed(_age_rows(spec)):
        expr = pl.when(_in_band(row.age_min, row.age_max, row.age_unit)).then(pl.lit(row.submeasure)).otherwise(expr)
    return expr


def _fixed_enrollment_key(ce: dict, period: MeasurementPeriod) -> str | None:
    """Name of the enrolled-members frame of a continuous-enrollment rule whose dates the period fixes
    (the same frame for every spec with that rule), None for per-member dates."""
    anchor = ce.get("anchor", ce["to"])
    if anchor_names(ce["from"]) | anchor_names(ce["to"]) | anchor_names(anchor):
        return None
    return (f"enrolled_{_literal(ce['from'], period).isoformat()}_{_literal(ce['to'], period).isoformat()}"
            f"_gaps{int(ce.get('allowed_gaps', 0))}_max{int(ce.get('max_gap_days', 0))}_on{_literal(anchor, period).isoformat()}")


def _payer_date(spec: MeasureSpec, period: MeasurementPeriod) -> date | None:
    """The date the payer of every member is taken on, when the period fixes it (None: per member)."""
    row_ce = [r for r in _age_rows(spec) if r.enrollment]
    if row_ce or (spec.enrollment and anchor_names(spec.enrollment.get("anchor", spec.enrollment["to"]))):
        return None
    return _literal(spec.enrollment.get("anchor", spec.enrollment["to"]), period) if spec.enrollment else period.end


def enrollment_frames(spec: MeasureSpec, period: MeasurementPeriod, enrollment: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """The frames of a proportion spec that depend on the enrollment spans and fixed dates only, by a
    name that says what they are: members continuously enrolled under each rule with fixed dates
    (``enrolled_<from>_<to>_gaps<n>_max<days>_on<anchor>``) and the payer of every member on a fixed
    date (``payer_on_<date>``). Specs sharing a rule share the frame, so a run can compute it once
    (``pipeline.build_events``) and pass it to :func:`evaluate`."""
    out = {}
    for ce in spec.enrollment_rules:
        key = _fixed_enrollment_key(ce, period)
        if key:
            out[key] = continuously_enrolled(enrollment, _literal(ce["from"], period), _literal(ce["to"], period),
                                             allowed_gaps=int(ce.get("allowed_gaps", 0)), max_gap_days=int(ce.get("max_gap_days", 0)),
                                             anchor=_literal(ce.get("anchor", ce["to"]), period))
    on = _payer_date(spec, period)
    if on is not None:
        out[f"payer_on_{on.isoformat()}"] = payer_on(enrollment, on)
    return out


def _enrolled(enrollment: pl.LazyFrame, frame: pl.LazyFrame, ce: dict, period: MeasurementPeriod,
              shared: dict[str, pl.LazyFrame] | None = None) -> pl.LazyFrame:
    """member_id of members of ``frame`` meeting a continuous-enrollment rule (fixed or per-member dates)."""
    anchor = ce.get("anchor", ce["to"])
    gaps, longest = int(ce.get("allowed_gaps", 0)), int(ce.get("max_gap_days", 0))
    key = _fixed_enrollment_key(ce, period)
    if key is not None:
        if shared and key in shared:
            return shared[key]
        return continuously_enrolled(enrollment, _literal(ce["from"], period), _literal(ce["to"], period),
                                     allowed_gaps=gaps, max_gap_days=longest, anchor=_literal(anchor, period))
    windows = frame.select("member_id", start=bound(ce["from"], period), end=bound(ce["to"], period), anchor=bound(anchor, period))
    return enrolled_in_windows(enrollment, windows, key=["member_id"], allowed_gaps=gaps, max_gap_days=longest)


def composite_only_value_sets(spec: MeasureSpec) -> set[str]:
    """The value sets ``spec`` reads only as parts of its composite events (IET: the visits and the
    inpatient stays, read only with an SUD diagnosis the same day): no criterion, result reading or
    anchor history reads them directly, so :func:`evaluate` can drop their events once the composites
    are built."""
    direct = set().union(*(c.value_sets for c in spec.criteria))
    for comp in spec.latest_result.get("components", []):
        direct |= {comp[k] for k in ("observation", "controlled_codes", "uncontrolled_codes") if comp.get(k)}
    for anchor in spec.anchors:
        direct |= set(anchor.no_prior)
    parts = set().union(*(c.value_sets for c in spec.composites))
    return parts - direct - {c.name for c in spec.composites}


def evaluate(
    spec: MeasureSpec,
    period: MeasurementPeriod,
    members: pl.LazyFrame,
    enrollment: pl.LazyFrame,
    events: pl.LazyFrame,
    shared: dict[str, pl.LazyFrame] | None = None,
) -> tuple[pl.DataFrame, MeasureCounts]:
    """Member-level results of ``spec`` over ``period`` and the reconciliation counts. ``shared``: frames
    of :func:`enrollment_frames` already computed (by name; the same frames, read instead of computed)."""
    # only this spec's events, read once (the events table holds every measure's value sets)
    # (code system and code are not read: nothing here uses them, and a composite's rows have none)
    events = events.filter(pl.col("value_set").is_in(sorted(spec.event_value_set_names))).select(
        [pl.lit(None, dtype=dtype).alias(c) if c in ("code_system", "code") else pl.col(c) for c, dtype in EVENT_SCHEMA.items()]
    ).collect().lazy()
    # one composite at a time, each collected: a later composite reads the earlier ones' rows, and one
    # lazy plan for all of them would compute the earlier ones again for every reference (IET: 3x the CPU).
    # A value set read only through composites is dropped once the last composite reading it is built
    # (IET's visits, most of its events: the later composites and criteria do not copy and filter them)
    parts_only = composite_only_value_sets(spec)
    for i, comp in enumerate(spec.composites):
        events = with_composites(events, (comp,))
        done = parts_only - set().union(*(later.value_sets for later in spec.composites[i + 1:]))
        if done:
            events = events.filter(~pl.col("value_set").is_in(sorted(done)))
            parts_only -= done
        events = events.collect().lazy()
    at = bound(spec.age_at, period)
    if spec.anchors:
        dates = members.select("member_id", "birth_date")
        for anchor in spec.anchors:
            dates = dates.join(anchor_dates(events, anchor, period, dates), on="member_id", how="left")
        dates = dates.collect().lazy()
        people = members.select("member_id", "sex", "death_date").join(dates, on="member_id", how="left")
    else:
        # no per-member anchors: the members' own columns, without joining the members to themselves
        # (member ids are unique in the members table: a validation rule)
        dates = None
        people = members.select("member_id", "sex", "death_date", "birth_date")
    people = people.with_columns(
        age=_age_on_event(pl.col("birth_date"), at).cast(pl.Int32), age_months=age_in_months(pl.col("birth_date"), at)
    ).collect().lazy()   # counted, narrowed and read for the deaths: computed once
    if dates is None:
        dates = people.select("member_id", "birth_date")
    members_in = people.select(pl.len()).collect().item()
    not_eligible: dict[str, int] = {}

    def narrow(frame: pl.LazyFrame, reason: str, keep: pl.LazyFrame | pl.Expr) -> pl.LazyFrame:
        before = frame.select(pl.len()).collect().item()
        frame = frame.join(keep, on="member_id", how="semi") if isinstance(keep, pl.LazyFrame) else frame.filter(keep)
        frame = frame.collect().lazy()
        not_eligible[reason] = not_eligible.get(reason, 0) + int(before - frame.select(pl.len()).collect().item())
        return frame

    eligible = people
    if spec.sex:
        eligible = narrow(eligible, "not_sex", pl.col("sex").is_in(list(spec.sex)))
    for anchor in spec.anchors:
        if anchor.required:
            eligible = narrow(eligible, f"no_{anchor.name}", pl.col(ANCHOR_COLUMN.format(anchor.name)).is_not_null())
    if spec.age_min is not None or spec.age_max is not None:
        eligible = narrow(eligible, "not_age", _in_band(spec.age_min, spec.age_max, spec.age_unit).fill_null(False))
    age_rows = _age_rows(spec)
    if age_rows:
        # members in no age row (e.g. W30: 27-29 months old) are not in the measure
        eligible = narrow(eligible, "not_age", pl.any_horizontal([_in_band(r.age_min, r.age_max, r.age_unit) for r in age_rows]).fill_null(False))
    eligible = eligible.with_columns(_sub=_submeasure(spec))
    payer_date = bound("period_end", period)
    if spec.enrollment:
        payer_date = bound(spec.enrollment.get("anchor", spec.enrollment["to"]), period)
    for ce in spec.enrollment_rules:
        eligible = narrow(eligible, "not_continuously_enrolled", _enrolled(enrollment, eligible, ce, period, shared))
    row_ce = [r for r in age_rows if r.enrollment]
    for row in row_ce:
        for ce in row.enrollment_rules:
            in_row = eligible.filter(pl.col("_sub") == row.submeasure)
            ok = _enrolled(enrollment, in_row, ce, period)
            others = eligible.filter(pl.col("_sub") != row.submeasure).select("member_id")
            eligible = narrow(eligible, "not_continuously_enrolled", pl.concat([others, ok]))
        ce = row.enrollment
        payer_date = pl.when(pl.col("_sub") == row.submeasure).then(bound(ce.get("anchor", ce["to"]), period)).otherwise(payer_date)
    for criterion in spec.denominator_events:
        hits = matching_members(events, criterion, period, dates)
        eligible = narrow(eligible, criterion.not_eligible_reason, hits)
    on = _payer_date(spec, period)
    if on is None:
        payers = payer_on_dates(enrollment, eligible.select("member_id", on=payer_date))
    else:
        payers = (shared or {}).get(f"payer_on_{on.isoformat()}")
        payers = payer_on(enrollment, on) if payers is None else payers
    eligible = eligible.join(payers, on="member_id", how="left")

    # exclusions: the first matching reason in spec order wins
    excluded_parts = []
    for order, excl in enumerate(spec.exclusions):
        if excl.deceased_by is not None:
            died = people.filter(pl.col("death_date") <= bound(excl.deceased_by, period)).select("member_id")
            excluded_parts.append(died.with_columns(reason=pl.lit(excl.reason), _o=pl.lit(order)))
        if excl.events is not None:
            hits = matching_members(events, excl.events, period, dates)
            excluded_parts.append(hits.with_columns(reason=pl.lit(excl.reason), _o=pl.lit(order)))
    if excluded_parts:
        # per member the reason of the first exclusion in spec order (one reason per order number)
        exclusions = pl.concat(excluded_parts).group_by("member_id").agg(
            exclusion_reason=pl.col("reason").get(pl.col("_o").arg_min())
        )
        eligible = eligible.join(exclusions, on="member_id", how="left")
    else:
        eligible = eligible.with_columns(exclusion_reason=pl.lit(None, dtype=pl.String))

    spec_has_result = pl.lit(bool(spec.latest_result))
    # each eligible member's rank by id (one string sort of the members), so that the result rows (a
    # member once per submeasure) are put in (member_id, submeasure) order by one integer key, not by
    # sorting every result row on two strings
    eligible = eligible.sort("member_id").with_row_index("_m").collect().lazy()
    labels = sorted({ALL_ROWS, *(r.submeasure for r in spec.rows)})   # every submeasure a result row can have
    order = pl.col("_m").cast(pl.UInt64) * len(labels) + pl.col("submeasure").replace_strict(
        labels, list(range(len(labels))), return_dtype=pl.UInt64)
    own = [r for r in age_rows if r.numerator is not None]
    rest = eligible.filter(~pl.col("_sub").is_in([r.submeasure for r in own]))
    frames = []
    if spec.latest_result:
        readings = latest_result(events, spec.latest_result, period).rename({"source": "evidence_source"})
        controlled = pl.col("controlled").fill_null(False)
        hit = controlled if spec.latest_result["numerator_when"] == "controlled" else ~controlled
        frames.append((rest.join(readings, on="member_id", how="left"), hit, pl.col("_sub")))
    elif spec.numerator:
        numerator = satisfied(events, AnyOf(spec.numerator), period, dates).rename({"source": "evidence_source"})
        frames.append((rest.join(numerator, on="member_id", how="left"), pl.col("evidence_date").is_not_null(), pl.col("_sub")))
    # age rows with their own numerator (cohort rows such as W30's)
    for row in own:
        row_hits = satisfied(events, row.numerator, period, dates).rename({"source": "evidence_source"})
        frames.append((eligible.filter(pl.col("_sub") == row.submeasure).join(row_hits, on="member_id", how="left"),
                       pl.col("evidence_date").is_not_null(), pl.col("_sub")))
    # outcome rows: every member is in each row, with the row's own numerator
    for row in (r for r in spec.rows if not r.is_age_row):
        row_hits = satisfied(events, row.numerator, period, dates).rename({"source": "evidence_source"})
        frames.append((eligible.join(row_hits, on="member_id", how="left"), pl.col("evidence_date").is_not_null(), pl.lit(row.submeasure)))
    result = pl.concat([_finish(spec, period, frame, hit, sub, spec_has_result) for frame, hit, sub in frames]).sort(order).drop("_m").collect()
    main = result.filter(pl.col("submeasure").is_in(main_rows(spec)))
    excluded = main.filter(pl.col("is_excluded")).group_by("exclusion_reason").len()
    counts = MeasureCounts(
        members_in=members_in,
        not_eligible=not_eligible,
        excluded={r: int(n) for r, n in excluded.sort("exclusion_reason").iter_rows()},
        denominator=int(main["in_denominator"].sum()),
        numerator=int(main["in_numerator"].fill_null(False).sum()),
    )
    return result, counts


def main_rows(spec: MeasureSpec) -> list[str]:
    """Submeasure values that hold each member exactly once (for reconciliation)."""
    if any(not r.is_age_row for r in spec.rows):
        return [ALL_ROWS]
    return [ALL_ROWS, *(r.submeasure for r in spec.rows)]


def _finish(spec: MeasureSpec, period: MeasurementPeriod, joined: pl.LazyFrame, hit: pl.Expr, submeasure: pl.Expr,
            spec_has_result: pl.Expr) -> pl.LazyFrame:
    """Flags and the member-level output columns."""
    return (
        joined
        .with_columns(is_excluded=pl.col("exclusion_reason").is_not_null())
        .with_columns(
            in_denominator=~pl.col("is_excluded"),
            in_numerator=pl.when(pl.col("is_excluded")).then(None).otherwise(hit),
        )
        .select(
            "member_id",
            pl.lit(spec.measure_id).alias("measure_id"),
            pl.lit(spec.version).alias("measure_version"),
            submeasure.alias("submeasure"),
            pl.lit(period.label).alias("period"),
            "age", "payer", "line_of_business", "dual_status",
            "is_excluded", "exclusion_reason", "in_denominator", "in_numerator",
            pl.when(pl.col("in_numerator") | spec_has_result).then(pl.col("evidence_date")).alias("evidence_date"),
            pl.when(pl.col("in_numerator") | spec_has_result).then(pl.col("evidence_source")).alias("evidence_source"),
            pl.col("in_numerator").fill_null(False).cast(pl.Float64).alias("numerator_value"),
            pl.col("in_denominator").cast(pl.Float64).alias("denominator_value"),
            "_m",   # the member's rank by id (evaluate's sort key; dropped)
        )
    )
