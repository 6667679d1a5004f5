"""Measure specifications: parsed, checked YAML (one file per measure, file name == measure_id)."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from equity_pipeline.errors import ConfigError

KINDS = {"proportion", "event_rate", "cost", "cost_share", "readmission"}
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

    @property
    def value_sets(self) -> tuple[str, ...]:
        return self.any_of + self.all_of


@dataclass(frozen=True)
class Exclusion:
    reason: str
    events: EventCriterion | None = None
    deceased_by: Any = None


@dataclass(frozen=True)
class Row:
    """A sub-measure row reported separately.

    Age rows (e.g. chlamydia screening ages 16-20 and 21-24) split the denominator: each member is in
    one row and the rows add up to the measure's ``all`` row. Outcome rows carry their own
    ``numerator`` (e.g. SDOH positive by domain): every member is in every row, and ``all`` is the
    spec's main numerator."""
    submeasure: str
    age_min: int | None = None
    age_max: int | None = None
    numerator: "EventCriterion | None" = None


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
    enrollment: dict[str, Any] | None
    denominator_events: tuple[EventCriterion, ...]
    exclusions: tuple[Exclusion, ...]
    numerator: tuple[EventCriterion, ...]
    rows: tuple[Row, ...] = ()
    latest_result: dict[str, Any] = field(default_factory=dict)
    kind: str = "proportion"
    rate: dict[str, Any] = field(default_factory=dict)
    counting: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def value_set_names(self) -> set[str]:
        names = set().union(*(c.value_sets for c in (*self.numerator, *self.denominator_events)))
        names |= {c["value_set"] for c in self.counting.get("principal_diagnosis", [])}
        names |= set().union(*(r.numerator.value_sets for r in self.rows if r.numerator))
        for comp in self.latest_result.get("components", []):
            names |= {comp[k] for k in ("observation", "controlled_codes", "uncontrolled_codes") if comp.get(k)}
        for e in self.exclusions:
            if e.events:
                names |= set(e.events.value_sets)
        return names


def _criterion(raw: dict[str, Any], where: str) -> EventCriterion:
    unknown = set(raw) - {"any_of", "all_of", "from", "to", "min_count", "age"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if not raw.get("any_of") and not raw.get("all_of"):
        raise ConfigError(f"{where}: needs any_of or all_of value sets")
    age = raw.get("age", {})
    return EventCriterion(tuple(raw.get("any_of", ())), tuple(raw.get("all_of", ())), raw.get("from"), raw.get("to", "period_end"),
                          int(raw.get("min_count", 1)), age.get("min"), age.get("max"))


def _numerator(raw: dict[str, Any], source: str) -> tuple[EventCriterion, ...]:
    """``numerator: {events: {...}}`` or ``numerator: {any: [{events: {...}}, ...]}`` (alternatives);
    empty for ``numerator: {latest_result: ...}`` (result-value measures such as CBP and HBD)."""
    if "latest_result" in raw:
        lr = raw["latest_result"]
        if lr.get("numerator_when") not in ("controlled", "uncontrolled_or_missing"):
            raise ConfigError(f"{source}: latest_result.numerator_when must be controlled or uncontrolled_or_missing")
        for comp in lr.get("components", []):
            if ("controlled_below" in comp) == ("controlled_at_most" in comp):
                raise ConfigError(f"{source}: component {comp.get('name')} needs exactly one of controlled_below / controlled_at_most")
        return ()
    if "any" in raw:
        return tuple(_criterion(alt["events"], f"{source} numerator alternative {i + 1}") for i, alt in enumerate(raw["any"]))
    return (_criterion(raw["events"], f"{source} numerator"),)


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
        spec = MeasureSpec(
            measure_id=raw["measure_id"], title=raw["title"], description=" ".join(str(raw.get("description", "")).split()),
            version=str(raw["version"]), ids={k: str(v) for k, v in raw.get("ids", {}).items()},
            direction=direction, rate_type=raw.get("rate", {}).get("type", "proportion"),
            data_sources=tuple(raw.get("data_sources", ["claims"])),
            sex=tuple(pop["sex"]) if pop.get("sex") else None,
            age_min=age.get("min"), age_max=age.get("max"), age_at=age.get("at", "period_end"),
            enrollment=pop.get("continuous_enrollment"),
            denominator_events=tuple(_criterion(e, f"{source} eligible_population.events") for e in pop.get("events", [])),
            exclusions=tuple(
                Exclusion(e["reason"], _criterion(e["events"], f"{source} exclusion {e['reason']}") if "events" in e else None, e.get("deceased_by"))
                for e in raw.get("exclusions", [])
            ),
            numerator=_numerator(raw["numerator"], source) if kind == "proportion" else (),
            latest_result=dict(raw["numerator"].get("latest_result", {})) if kind == "proportion" else {},
            kind=kind, rate=dict(raw.get("rate", {})), counting=dict(raw["numerator"]) if kind != "proportion" else {},
            rows=tuple(
                Row(str(r["submeasure"]), r.get("age", {}).get("min"), r.get("age", {}).get("max"),
                    _criterion(r["numerator"], f"{source} row {r['submeasure']}") if "numerator" in r else None)
                for r in raw.get("rows", [])
            ),
            notes=" ".join(str(raw.get("notes", "")).split()),
            raw=raw,
        )
    except KeyError as exc:
        raise ConfigError(f"{source}: missing required key {exc.args[0]!r}") from None
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
