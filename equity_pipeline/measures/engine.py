"""Evaluate a measure spec: eligible population -> exclusions -> denominator -> numerator.

Output is member-level (Tuva's "long" shape), one row per member in the eligible population:
``member_id, measure_id, measure_version, submeasure, period, age, payer, line_of_business,
dual_status, is_excluded, exclusion_reason, in_denominator, in_numerator, evidence_date,
evidence_source``. ``in_numerator`` is null for excluded members. Members outside the eligible
population are counted by reason in :class:`MeasureCounts`, so the manifest reconciles every member.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from equity_pipeline.enrollment import continuously_enrolled, payer_on
from equity_pipeline.measures.spec import EventCriterion, MeasureSpec
from equity_pipeline.periods import MeasurementPeriod, age_at

ALL_ROWS = "all"


@dataclass
class MeasureCounts:
    members_in: int
    not_eligible: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    denominator: int = 0
    numerator: int = 0

    def reconciles(self) -> bool:
        return self.members_in == sum(self.not_eligible.values()) + sum(self.excluded.values()) + self.denominator


def _age_on_event(birth: pl.Expr, event: pl.Expr) -> pl.Expr:
    years = event.dt.year() - birth.dt.year()
    before = (birth.dt.month() > event.dt.month()) | ((birth.dt.month() == event.dt.month()) & (birth.dt.day() > event.dt.day()))
    return years - before.cast(pl.Int32)


def matching(events: pl.LazyFrame, criterion: EventCriterion, period: MeasurementPeriod, births: pl.LazyFrame) -> pl.LazyFrame:
    """member_id, evidence_date (latest qualifying event), source, for members meeting ``criterion``."""
    end = period.resolve(criterion.end)
    window = events.filter(pl.col("event_date") <= end)
    if criterion.start is not None:
        window = window.filter(pl.col("event_date") >= period.resolve(criterion.start))
    tagged = window.filter(pl.col("value_set").is_in(list(criterion.value_sets)))
    if criterion.age_min is not None or criterion.age_max is not None:
        age = _age_on_event(pl.col("birth_date"), pl.col("event_date"))
        tagged = tagged.join(births, on="member_id", how="inner").filter(
            age.is_between(criterion.age_min if criterion.age_min is not None else -1, criterion.age_max if criterion.age_max is not None else 200)
        )
    per_member = tagged.group_by("member_id").agg(
        evidence_date=pl.col("event_date").max(),
        source=pl.col("source").unique().sort().str.join("+"),
        n_dates=pl.col("event_date").n_unique(),
        n_sets=pl.col("value_set").n_unique(),
    )
    keep = pl.col("n_dates") >= criterion.min_count
    if criterion.all_of:
        keep = keep & (pl.col("n_sets") >= len(set(criterion.all_of)))
    return per_member.filter(keep).select("member_id", "evidence_date", "source")


def _any_of(parts: list[pl.LazyFrame]) -> pl.LazyFrame:
    return pl.concat(parts).group_by("member_id").agg(
        pl.col("evidence_date").max(), pl.col("source").str.split("+").list.explode().unique().sort().str.join("+")
    )


def latest_result(events: pl.LazyFrame, rule: dict, period: MeasurementPeriod) -> pl.LazyFrame:
    """member_id, evidence_date, source, controlled for members with a complete reading in the window.

    Each component's readings are observations (controlled when the value is below / at most the
    threshold) or claims result codes (CPT II: controlled or uncontrolled by value set). The latest
    date on which every component has a reading is used; on that date a component counts as
    controlled if any of its readings is (the lowest reading, as HEDIS specifies for BP)."""
    start, end = period.resolve(rule.get("from", "period_begin")), period.resolve(rule.get("to", "period_end"))
    window = events.filter(pl.col("event_date").is_between(start, end))
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
                pl.col("_ok").any().alias(f"ok_{comp['name']}"), pl.col("source").unique().alias(f"src_{comp['name']}")
            )
        )
    joined = per_component[0]
    for other in per_component[1:]:
        joined = joined.join(other, on=["member_id", "event_date"], how="inner")
    names = [c["name"] for c in rule["components"]]
    latest = joined.sort("member_id", "event_date").group_by("member_id", maintain_order=True).last()
    return latest.select(
        "member_id",
        pl.col("event_date").alias("evidence_date"),
        pl.concat_list([f"src_{n}" for n in names]).list.unique().list.sort().list.join("+").alias("source"),
        pl.all_horizontal([f"ok_{n}" for n in names]).alias("controlled"),
    )


def _submeasure(spec: MeasureSpec) -> pl.Expr:
    """Age-row label of each member (``all`` when the spec has no age rows)."""
    expr = pl.lit(ALL_ROWS)
    for row in reversed([r for r in spec.rows if r.numerator is None]):
        lo = row.age_min if row.age_min is not None else -1
        hi = row.age_max if row.age_max is not None else 200
        expr = pl.when(pl.col("age").is_between(lo, hi)).then(pl.lit(row.submeasure)).otherwise(expr)
    return expr


def evaluate(
    spec: MeasureSpec,
    period: MeasurementPeriod,
    members: pl.LazyFrame,
    enrollment: pl.LazyFrame,
    events: pl.LazyFrame,
) -> tuple[pl.DataFrame, MeasureCounts]:
    """Member-level results of ``spec`` over ``period`` and the reconciliation counts."""
    people = members.select("member_id", "sex", "birth_date", "death_date").with_columns(age=age_at(pl.col("birth_date"), period.resolve(spec.age_at)))
    births = members.select("member_id", "birth_date")
    members_in = people.select(pl.len()).collect().item()
    not_eligible: dict[str, int] = {}

    def narrow(frame: pl.LazyFrame, reason: str, keep: pl.LazyFrame | pl.Expr) -> pl.LazyFrame:
        before = frame.select(pl.len()).collect().item()
        frame = frame.join(keep, on="member_id", how="semi") if isinstance(keep, pl.LazyFrame) else frame.filter(keep)
        not_eligible[reason] = int(before - frame.select(pl.len()).collect().item())
        return frame

    eligible = people
    if spec.sex:
        eligible = narrow(eligible, "not_sex", pl.col("sex").is_in(list(spec.sex)))
    if spec.age_min is not None or spec.age_max is not None:
        lo = spec.age_min if spec.age_min is not None else -1
        hi = spec.age_max if spec.age_max is not None else 200
        eligible = narrow(eligible, "not_age", pl.col("age").is_between(lo, hi))
    anchor = period.end
    if spec.enrollment:
        ce = spec.enrollment
        anchor = period.resolve(ce.get("anchor", "period_end"))
        enrolled = continuously_enrolled(
            enrollment, period.resolve(ce["from"]), period.resolve(ce["to"]),
            allowed_gaps=int(ce.get("allowed_gaps", 0)), max_gap_days=int(ce.get("max_gap_days", 0)), anchor=anchor,
        )
        eligible = narrow(eligible, "not_continuously_enrolled", enrolled)
    for criterion in spec.denominator_events:
        hits = matching(events, criterion, period, births).select("member_id")
        eligible = narrow(eligible, f"no_{criterion.value_sets[0]}", hits)
    eligible = eligible.join(payer_on(enrollment, anchor), on="member_id", how="left")

    # exclusions: the first matching reason in spec order wins
    excluded_parts = []
    for order, excl in enumerate(spec.exclusions):
        if excl.deceased_by is not None:
            died = people.filter(pl.col("death_date") <= period.resolve(excl.deceased_by)).select("member_id")
            excluded_parts.append(died.with_columns(reason=pl.lit(excl.reason), _o=pl.lit(order)))
        if excl.events is not None:
            hits = matching(events, excl.events, period, births).select("member_id")
            excluded_parts.append(hits.with_columns(reason=pl.lit(excl.reason), _o=pl.lit(order)))
    if excluded_parts:
        exclusions = pl.concat(excluded_parts).sort("member_id", "_o").group_by("member_id", maintain_order=True).agg(
            exclusion_reason=pl.col("reason").first()
        )
        eligible = eligible.join(exclusions, on="member_id", how="left")
    else:
        eligible = eligible.with_columns(exclusion_reason=pl.lit(None, dtype=pl.String))

    spec_has_result = pl.lit(bool(spec.latest_result))
    if spec.latest_result:
        readings = latest_result(events, spec.latest_result, period).rename({"source": "evidence_source"})
        controlled = pl.col("controlled").fill_null(False)
        hit = controlled if spec.latest_result["numerator_when"] == "controlled" else ~controlled
        frames = [(eligible.join(readings, on="member_id", how="left"), hit, _submeasure(spec))]
    else:
        numerator = _any_of([matching(events, c, period, births) for c in spec.numerator]).rename({"source": "evidence_source"})
        frames = [(eligible.join(numerator, on="member_id", how="left"), pl.col("evidence_date").is_not_null(), _submeasure(spec))]
        # outcome rows: every member is in each row, with the row's own numerator
        for row in (r for r in spec.rows if r.numerator is not None):
            row_hits = matching(events, row.numerator, period, births).rename({"source": "evidence_source"})
            frames.append((eligible.join(row_hits, on="member_id", how="left"), pl.col("evidence_date").is_not_null(), pl.lit(row.submeasure)))
    result = pl.concat([_finish(spec, period, frame, hit, sub, spec_has_result) for frame, hit, sub in frames]).sort("member_id", "submeasure").collect()
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
    if any(r.numerator is not None for r in spec.rows):
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
        )
    )
