"""Measure specifications: parsed, checked YAML (one file per measure, file name == measure_id)."""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any, Union

import yaml

from equity_pipeline.errors import ConfigError

KINDS = {"proportion", "event_rate", "cost", "cost_share", "readmission"}
#: date anchors fixed by the measurement period (see ``MeasurementPeriod.resolve``)
PERIOD_ANCHORS = {"period_begin", "period_end", "before_period_begin"}
PERIOD_ANCHOR_KEYS = {"months_before_begin", "years_before_begin", "years_before_end"}
#: per-member anchors every spec can use; specs add their own under ``anchors`` (e.g. ``index``)
MEMBER_ANCHORS = {"birth"}
#: per-stay anchors of ``kind: readmission`` specs
STAY_ANCHORS = {"index_admit", "index_discharge"}
OFFSET_KEYS = {"anchor", "years", "months", "days"}
CODE_SYSTEMS = {"ICD10CM", "ICD10PCS", "CPT", "HCPCS", "LOINC", "SNOMEDCT", "REV", "POS", "NDC", "BILLTYPE"}
DIRECTIONS = {"higher_is_better", "lower_is_better"}


@dataclass(frozen=True)
class EventCriterion:
    """Events of some value sets inside a window relative to the measurement period.

    ``any_of``: an event from any of these value sets; ``all_of``: events from every one of them.
    ``min_count``: at least this many distinct event dates. ``age_min``/``age_max``: the member's age
    on the event date must lie in this band (e.g. HPV co-testing counts from age 30)."""
    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()
    start: Any = None   # anchor; None = no lower bound
    end: Any = "period_end"
    min_count: int = 1
    age_min: int | None = None
    age_max: int | None = None
    #: eligible-population criteria: the not-eligible reason of a member without such events (the
    #: spec's ``reason``; else :attr:`not_eligible_reason` names the value sets)
    reason: str | None = None

    @property
    def value_sets(self) -> tuple[str, ...]:
        return self.any_of + self.all_of

    @property
    def not_eligible_reason(self) -> str:
        """``reason`` if the spec gives one, else ``no_<set>`` for one value set, ``no_<a>_or_<b>``
        for any of several, ``no_<a>_and_<b>`` for all of several (every set named: a member counted
        there lacks all of them, or one of them)."""
        if self.reason:
            return self.reason
        return "no_" + ("_or_".join(self.any_of) if self.any_of else "_and_".join(self.all_of))


@dataclass(frozen=True)
class AllOf:
    """Every part holds (e.g. each antigen of an immunization combination); evidence = the latest part."""
    parts: tuple["Condition", ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part holds (alternatives); evidence = the latest part that holds."""
    parts: tuple["Condition", ...]


@dataclass(frozen=True)
class HasAnchor:
    """The member has a date for this anchor (e.g. treatment ``initiation`` was found)."""
    anchor: str


Condition = Union[EventCriterion, AllOf, AnyOf, HasAnchor]


def leaves(cond: Condition) -> Iterator[EventCriterion]:
    """The event criteria inside a condition tree."""
    if isinstance(cond, EventCriterion):
        yield cond
    elif isinstance(cond, (AllOf, AnyOf)):
        for part in cond.parts:
            yield from leaves(part)


@dataclass(frozen=True)
class Anchor:
    """A per-member date: the earliest event meeting any of ``first`` (each with its own window).

    ``no_prior``/``no_prior_days``: the event only counts when none of these value sets occurs in the
    ``no_prior_days`` days before it (a *new* episode, e.g. IET's negative SUD history).
    ``required``: members without this date are not in the eligible population (reason ``no_<name>``)."""
    name: str
    first: tuple[EventCriterion, ...]
    no_prior: tuple[str, ...] = ()
    no_prior_days: int = 0
    required: bool = False


@dataclass(frozen=True)
class Composite:
    """A derived event type: dates on which any alternative holds. An alternative is either
    ``("any_of", sets)`` (an event of any of the sets) or ``("same_day", sets)`` (events of every one
    of the sets on the same date, e.g. an outpatient visit with an SUD diagnosis)."""
    name: str
    alternatives: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def value_sets(self) -> tuple[str, ...]:
        return tuple(v for _, sets in self.alternatives for v in sets)


@dataclass(frozen=True)
class Exclusion:
    """First matching reason wins. Stay attributes (``discharge_status``, ``principal_diagnosis``,
    ``same_day_stay``) apply to ``kind: readmission`` specs, where exclusions are per index stay."""
    reason: str
    events: EventCriterion | None = None
    deceased_by: Any = None
    discharge_status: tuple[str, ...] = ()
    principal_diagnosis: tuple[str, ...] = ()
    same_day_stay: bool = False


@dataclass(frozen=True)
class Row:
    """A sub-measure row reported separately.

    Age rows (e.g. chlamydia screening ages 16-20 and 21-24) split the denominator: each member is in
    one row and the rows add up to the measure's ``all`` row. Members in no age row are not eligible.
    An age row may have its own ``numerator`` and ``enrollment`` (cohort rows, e.g. W30: children
    turning 15 months need 6 visits, children turning 30 months need 2). Ages are in completed
    ``years`` or ``months`` at the spec's age anchor. Outcome rows have a ``numerator`` and no age
    band (e.g. SDOH positive by domain): every member is in every row, and ``all`` is the spec's
    main numerator."""
    submeasure: str
    age_min: int | None = None
    age_max: int | None = None
    numerator: "Condition | None" = None
    age_unit: str = "years"
    enrollment_rules: tuple[dict[str, Any], ...] = ()

    @property
    def is_age_row(self) -> bool:
        return self.age_min is not None or self.age_max is not None

    @property
    def enrollment(self) -> dict[str, Any] | None:
        """The first continuous-enrollment rule (its anchor is the payer anchor), or None."""
        return self.enrollment_rules[0] if self.enrollment_rules else None


@dataclass(frozen=True)
class MeasureSpec:
    measure_id: str
    title: str
    description: str
    version: str
    ids: dict[str, str]
    direction: str
    rate_type: str
    data_sources: tuple[str, ...]
    sex: tuple[str, ...] | None
    age_min: int | None
    age_max: int | None
    age_at: Any
    enrollment_rules: tuple[dict[str, Any], ...]
    denominator_events: tuple[EventCriterion, ...]
    exclusions: tuple[Exclusion, ...]
    numerator: tuple[Condition, ...]
    rows: tuple[Row, ...] = ()
    latest_result: dict[str, Any] = field(default_factory=dict)
    kind: str = "proportion"
    rate: dict[str, Any] = field(default_factory=dict)
    counting: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    age_unit: str = "years"
    anchors: tuple[Anchor, ...] = ()
    composites: tuple[Composite, ...] = ()
    index_stays: dict[str, Any] = field(default_factory=dict)
    risk_model: dict[str, Any] = field(default_factory=dict)

    @property
    def enrollment(self) -> dict[str, Any] | None:
        """The first continuous-enrollment rule (its anchor is the payer anchor), or None. A spec may
        list several rules that must all hold (PCR: one gap allowed before discharge, none after)."""
        return self.enrollment_rules[0] if self.enrollment_rules else None

    @property
    def criteria(self) -> Iterator[EventCriterion]:
        """Every event criterion of the spec (numerators, rows, anchors, denominator, exclusions)."""
        for cond in (*self.numerator, *(r.numerator for r in self.rows if r.numerator)):
            yield from leaves(cond)
        yield from self.denominator_events
        for a in self.anchors:
            yield from a.first
        for e in self.exclusions:
            if e.events:
                yield e.events

    @property
    def value_set_names(self) -> set[str]:
        """Packaged (or derived) value sets the spec uses: those whose events it reads
        (:attr:`event_value_set_names`) and those it tests a stay's principal diagnosis against
        (:attr:`principal_diagnosis_value_sets`); composite names excluded."""
        return self.event_value_set_names | self.principal_diagnosis_value_sets

    @property
    def event_value_set_names(self) -> set[str]:
        """Value sets whose coded events the spec reads from the run's events table (criteria, result
        readings, anchors' histories, composites' parts, planned-readmission procedures, risk-model
        comorbidities); composite names excluded. The events table holds these only
        (``pipeline.build_events``)."""
        names = set().union(*(c.value_sets for c in self.criteria))
        for comp in self.latest_result.get("components", []):
            names |= {comp[k] for k in ("observation", "controlled_codes", "uncontrolled_codes") if comp.get(k)}
        for a in self.anchors:
            names |= set(a.no_prior)
        for c in self.composites:
            names |= set(c.value_sets)
        names |= set(self.counting.get("readmission", {}).get("planned", {}).get("procedures", ()))
        names |= set(self.risk_model.get("comorbidities", ()))
        return names - {c.name for c in self.composites}

    @property
    def principal_diagnosis_value_sets(self) -> set[str]:
        """Value sets the spec tests the principal diagnosis of an inpatient stay against (PQI admissions,
        stay exclusions, planned readmissions): read from the stays, not from the events table."""
        names = {c["value_set"] for c in self.counting.get("principal_diagnosis", [])}
        for e in self.exclusions:
            names |= set(e.principal_diagnosis)
        names |= set(self.counting.get("readmission", {}).get("planned", {}).get("principal_diagnosis", ()))
        return names - {c.name for c in self.composites}


def anchor_names(anchor: Any) -> set[str]:
    """Per-member (or per-stay) anchor names a date anchor refers to; empty for period anchors."""
    if isinstance(anchor, dict) and "anchor" in anchor:
        return anchor_names(anchor["anchor"])
    if isinstance(anchor, str) and anchor not in PERIOD_ANCHORS:
        try:
            date.fromisoformat(anchor)
            return set()
        except ValueError:
            return {anchor}
    return set()


def _check_anchor(anchor: Any, known: set[str], where: str) -> None:
    if anchor is None:
        return
    if isinstance(anchor, dict):
        if "anchor" in anchor:
            extra = set(anchor) - OFFSET_KEYS
            if extra:
                raise ConfigError(f"{where}: unknown offset keys {sorted(extra)} (use anchor, years, months, days)")
            for k in ("years", "months", "days"):
                if not isinstance(anchor.get(k, 0), int):
                    raise ConfigError(f"{where}: offset {k} must be a whole number")
            _check_anchor(anchor["anchor"], known, where)
            return
        if len(anchor) != 1 or not set(anchor) <= PERIOD_ANCHOR_KEYS:
            raise ConfigError(f"{where}: unknown date anchor {anchor!r}")
        return
    unknown = anchor_names(anchor) - known
    if unknown:
        raise ConfigError(f"{where}: unknown date anchor {sorted(unknown)[0]!r}; known: {sorted(PERIOD_ANCHORS | known)}")


def _criterion(raw: dict[str, Any], where: str) -> EventCriterion:
    unknown = set(raw) - {"any_of", "all_of", "from", "to", "min_count", "age"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if not raw.get("any_of") and not raw.get("all_of"):
        raise ConfigError(f"{where}: needs any_of or all_of value sets")
    age = raw.get("age", {})
    return EventCriterion(tuple(raw.get("any_of", ())), tuple(raw.get("all_of", ())), raw.get("from"), raw.get("to", "period_end"),
                          int(raw.get("min_count", 1)), age.get("min"), age.get("max"))


def _eligibility_criterion(raw: dict[str, Any], where: str) -> EventCriterion:
    """An eligible-population event criterion: :func:`_criterion` plus an optional ``reason`` (the
    not-eligible reason of members without such events, a lower-case identifier)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: an event criterion is a mapping, not {raw!r}")
    reason = raw.get("reason")
    if reason is not None and not (isinstance(reason, str) and re.fullmatch(r"[a-z][a-z0-9_]*", reason)):
        raise ConfigError(f"{where}: reason must be a lower-case identifier (letters, digits, _), not {reason!r}")
    return replace(_criterion({k: v for k, v in raw.items() if k != "reason"}, where), reason=reason)


def _condition(raw: dict[str, Any], where: str) -> Condition:
    """One node of a numerator: ``events``, ``anchor`` (has that date), ``any`` or ``all`` of nodes."""
    keys = set(raw) & {"events", "anchor", "any", "all"}
    if len(keys) != 1 or len(raw) != 1:
        raise ConfigError(f"{where}: a condition is exactly one of events, anchor, any, all (got {sorted(raw)})")
    if "events" in raw:
        return _criterion(raw["events"], where)
    if "anchor" in raw:
        return HasAnchor(str(raw["anchor"]))
    key = "any" if "any" in raw else "all"
    parts = tuple(_condition(p, f"{where} {key}[{i + 1}]") for i, p in enumerate(raw[key]))
    if not parts:
        raise ConfigError(f"{where}: {key} needs at least one condition")
    return AnyOf(parts) if key == "any" else AllOf(parts)


def _numerator(raw: dict[str, Any], source: str) -> tuple[Condition, ...]:
    """``numerator: {events: {...}}``, ``{any: [...]}`` (alternatives), ``{all: [...]}`` or
    ``{anchor: name}``; empty for ``numerator: {latest_result: ...}`` (result-value measures such as
    CBP and HBD) and for specs whose age rows all carry their own numerator (``numerator`` omitted)."""
    if raw is None:
        return ()
    if "latest_result" in raw:
        lr = raw["latest_result"]
        if lr.get("numerator_when") not in ("controlled", "uncontrolled_or_missing"):
            raise ConfigError(f"{source}: latest_result.numerator_when must be controlled or uncontrolled_or_missing")
        for comp in lr.get("components", []):
            if ("controlled_below" in comp) == ("controlled_at_most" in comp):
                raise ConfigError(f"{source}: component {comp.get('name')} needs exactly one of controlled_below / controlled_at_most")
        return ()
    if "any" in raw and len(raw) == 1:
        return tuple(_condition(alt, f"{source} numerator alternative {i + 1}") for i, alt in enumerate(raw["any"]))
    return (_condition(raw, f"{source} numerator"),)


def _enrollment_rules(raw: dict[str, Any] | list[dict[str, Any]] | None, where: str) -> tuple[dict[str, Any], ...]:
    """``continuous_enrollment``: one rule or a list of rules that must all hold."""
    if not raw:
        return ()
    rules = tuple(dict(r) for r in (raw if isinstance(raw, list) else [raw]))
    for r in rules:
        unknown = set(r) - {"from", "to", "anchor", "allowed_gaps", "max_gap_days"}
        if unknown or "from" not in r or "to" not in r:
            raise ConfigError(f"{where}: a rule has from, to and optionally anchor, allowed_gaps, max_gap_days (got {sorted(r)})")
    return rules


def _age_unit(age: dict[str, Any], where: str) -> str:
    unit = age.get("unit", "years")
    if unit not in ("years", "months"):
        raise ConfigError(f"{where}: age unit must be years or months")
    return unit


def _row(r: dict[str, Any], source: str) -> Row:
    where = f"{source} row {r.get('submeasure')}"
    unknown = set(r) - {"submeasure", "age", "numerator", "continuous_enrollment"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    age = r.get("age", {})
    row = Row(str(r["submeasure"]), age.get("min"), age.get("max"),
              _condition(r["numerator"] if set(r["numerator"]) & {"events", "anchor", "any", "all"} else {"events": r["numerator"]}, where)
              if "numerator" in r else None,
              _age_unit(age, where), _enrollment_rules(r.get("continuous_enrollment"), where))
    if not row.is_age_row and row.numerator is None:
        raise ConfigError(f"{where}: a row needs an age band or its own numerator")
    if row.enrollment and not row.is_age_row:
        raise ConfigError(f"{where}: continuous_enrollment applies to age rows only")
    return row


def _anchor(name: str, raw: dict[str, Any], source: str) -> Anchor:
    where = f"{source} anchor {name}"
    unknown = set(raw) - {"first", "no_prior", "required"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    first = raw["first"] if isinstance(raw["first"], list) else [raw["first"]]
    no_prior = raw.get("no_prior", {})
    return Anchor(name, tuple(_criterion(c, f"{where} first[{i + 1}]") for i, c in enumerate(first)),
                  tuple(no_prior.get("any_of", ())), int(no_prior.get("days", 0)), bool(raw.get("required", False)))


def _composite(name: str, raw: list[dict[str, Any]], source: str) -> Composite:
    alts = []
    for alt in raw:
        if set(alt) == {"any_of"}:
            alts.append(("any_of", tuple(alt["any_of"])))
        elif set(alt) == {"all_on_same_day"}:
            alts.append(("same_day", tuple(alt["all_on_same_day"])))
        else:
            raise ConfigError(f"{source} composite {name}: each alternative is {{any_of: [...]}} or {{all_on_same_day: [...]}}")
    return Composite(name, tuple(alts))


def _exclusion(e: dict[str, Any], source: str, kind: str) -> Exclusion:
    where = f"{source} exclusion {e.get('reason')}"
    stay_keys = {"discharge_status", "principal_diagnosis", "same_day_stay"}
    unknown = set(e) - {"reason", "events", "deceased_by"} - stay_keys
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if set(e) & stay_keys and kind != "readmission":
        raise ConfigError(f"{where}: {sorted(set(e) & stay_keys)} apply to kind readmission only")
    return Exclusion(
        e["reason"], _criterion(e["events"], where) if "events" in e else None, e.get("deceased_by"),
        tuple(str(s) for s in e.get("discharge_status", ())), tuple(e.get("principal_diagnosis", ())), bool(e.get("same_day_stay", False)),
    )


def _check_spec(spec: MeasureSpec, source: str) -> None:
    """Anchor references, composite names and rows that make sense together."""
    known = set(MEMBER_ANCHORS) | (STAY_ANCHORS if spec.kind == "readmission" else set())
    for a in spec.anchors:
        for c in a.first:
            _check_anchor(c.start, known, f"{source} anchor {a.name}")
            _check_anchor(c.end, known, f"{source} anchor {a.name}")
        known.add(a.name)
    for c in spec.criteria:
        _check_anchor(c.start, known, f"{source} criterion {c.value_sets}")
        _check_anchor(c.end, known, f"{source} criterion {c.value_sets}")
    for cond in (*spec.numerator, *(r.numerator for r in spec.rows if r.numerator)):
        for node in _nodes(cond):
            if isinstance(node, HasAnchor) and node.anchor not in known:
                raise ConfigError(f"{source}: numerator refers to unknown anchor {node.anchor!r}")
    _check_anchor(spec.age_at, known, f"{source} age.at")
    for ce in (*spec.enrollment_rules, *(ce for r in spec.rows for ce in r.enrollment_rules)):
        for k in ("from", "to", "anchor"):
            if k in ce:
                _check_anchor(ce[k], known, f"{source} continuous_enrollment.{k}")
    for e in spec.exclusions:
        _check_anchor(e.deceased_by, known, f"{source} exclusion {e.reason}")
    composites = {c.name for c in spec.composites}
    for i, c in enumerate(spec.composites):
        later = set(v for v in c.value_sets if v in composites) - {x.name for x in spec.composites[:i]}
        if later:
            raise ConfigError(f"{source} composite {c.name}: uses {sorted(later)} before it is defined")
    age_rows = [r for r in spec.rows if r.is_age_row]
    if spec.kind == "proportion" and not spec.numerator and not spec.latest_result:
        if not age_rows or any(r.numerator is None for r in age_rows):
            raise ConfigError(f"{source}: numerator is required unless every age row has its own numerator")
    if age_rows and any(not r.is_age_row for r in spec.rows):
        raise ConfigError(f"{source}: age rows and outcome rows cannot be mixed")
    if spec.kind == "readmission" and not spec.index_stays:
        raise ConfigError(f"{source}: kind readmission needs index_stays")


def _nodes(cond: Condition) -> Iterator[Condition]:
    yield cond
    if isinstance(cond, (AllOf, AnyOf)):
        for p in cond.parts:
            yield from _nodes(p)


def parse_spec(raw: dict[str, Any], source: str) -> MeasureSpec:
    try:
        pop = raw.get("eligible_population", {})
        age = pop.get("age", {})
        kind = raw.get("kind", "proportion")
        if kind not in KINDS:
            raise ConfigError(f"{source}: kind must be one of {sorted(KINDS)}")
        direction = raw["direction"]
        if direction not in DIRECTIONS:
            raise ConfigError(f"{source}: direction must be one of {sorted(DIRECTIONS)}")
        numerator_raw = raw.get("numerator")
        if numerator_raw is None and (kind != "proportion" or not raw.get("rows")):
            raise KeyError("numerator")
        spec = MeasureSpec(
            measure_id=raw["measure_id"], title=raw["title"], description=" ".join(str(raw.get("description", "")).split()),
            version=str(raw["version"]), ids={k: str(v) for k, v in raw.get("ids", {}).items()},
            direction=direction, rate_type=raw.get("rate", {}).get("type", "proportion"),
            data_sources=tuple(raw.get("data_sources", ["claims"])),
            sex=tuple(pop["sex"]) if pop.get("sex") else None,
            age_min=age.get("min"), age_max=age.get("max"), age_at=age.get("at", "period_end"),
            enrollment_rules=_enrollment_rules(pop.get("continuous_enrollment"), f"{source} continuous_enrollment"),
            denominator_events=tuple(_eligibility_criterion(e, f"{source} eligible_population.events") for e in pop.get("events", [])),
            exclusions=tuple(_exclusion(e, source, kind) for e in raw.get("exclusions", [])),
            numerator=_numerator(numerator_raw, source) if kind == "proportion" else (),
            latest_result=dict((numerator_raw or {}).get("latest_result", {})) if kind == "proportion" else {},
            kind=kind, rate=dict(raw.get("rate", {})), counting=dict(numerator_raw) if kind != "proportion" else {},
            rows=tuple(_row(r, source) for r in raw.get("rows", [])),
            notes=" ".join(str(raw.get("notes", "")).split()),
            raw=raw,
            age_unit=_age_unit(age, f"{source} eligible_population.age"),
            anchors=tuple(_anchor(n, a, source) for n, a in (raw.get("anchors") or {}).items()),
            composites=tuple(_composite(n, c, source) for n, c in (raw.get("composite_events") or {}).items()),
            index_stays=dict(raw.get("index_stays") or {}),
            risk_model=dict(raw.get("risk_model") or {}),
        )
    except KeyError as exc:
        raise ConfigError(f"{source}: missing required key {exc.args[0]!r}") from None
    _check_spec(spec, source)
    from equity_pipeline.standards.sdoh import DERIVED_VALUE_SETS

    missing = [v for v in spec.value_set_names if v not in available_value_sets() and v not in DERIVED_VALUE_SETS]
    if missing:
        raise ConfigError(f"{source}: value sets not found: {sorted(missing)}")
    return spec


@lru_cache(maxsize=1)
def available_value_sets() -> frozenset[str]:
    folder = resources.files("equity_pipeline.measures") / "value_sets"
    return frozenset(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".csv"))


@lru_cache(maxsize=None)
def value_set(name: str) -> tuple[tuple[str, str, str], ...]:
    """(code_system, code, description) rows of one value set."""
    path = resources.files("equity_pipeline.measures") / "value_sets" / f"{name}.csv"
    with path.open(encoding="utf-8") as fh:
        rows = tuple((r["code_system"], r["code"], r["description"]) for r in csv.DictReader(fh))
    bad = {s for s, _, _ in rows} - CODE_SYSTEMS
    if bad:
        raise ConfigError(f"value set {name}: unknown code systems {sorted(bad)}")
    return rows


@lru_cache(maxsize=1)
def load_specs() -> dict[str, MeasureSpec]:
    """Every packaged spec, keyed by measure_id (file name must equal measure_id)."""
    folder = resources.files("equity_pipeline.measures") / "specs"
    specs = {}
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if not p.name.endswith(".yaml"):
            continue
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
        spec = parse_spec(raw, p.name)
        if spec.measure_id != p.name[:-5]:
            raise ConfigError(f"{p.name}: measure_id {spec.measure_id} differs from the file name")
        specs[spec.measure_id] = spec
    return specs
