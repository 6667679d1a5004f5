"""Equity-plan program rules: versioned configuration with effective dates, and the run's settings.

``program_rules.yaml`` (next to this module) lists, per program, versions with ``effective_from`` /
``effective_to`` dates; a run uses the version in effect on December 31 of its measurement year
(on the last day of a rolling measurement period; cohorts and the baseline year by the year of that day).
The program config's ``equity_plans`` mapping (all keys optional)::

    equity_plans:
      program: AHEAD                  # a program of the rules file (default AHEAD)
      rules_file: my_rules.yaml       # replaces the packaged rules file
      overrides:                      # replaces keys of the version in effect; mappings are merged
        states: [MD, NY]              #   (a states list replaces the cohorts)
        reference_groups: {race_ethnicity: White}
        targets: [{plan: state, metric_id: PQI90, stratifier: race_ethnicity, statistic: ratio, operator: "<=", value: 1.1}]
      baseline:                       # a published baseline for change columns
        year: 2024                    #   its measurement year, before the run's
        path: prior/public/equity_plan/state_metrics.parquet   # published table(s), parquet or csv
        values:                       #   and/or values; a value here wins over the same cell in path
          - {plan: state, metric_id: PQI90, unit_level: state, unit_id: MD, value: 1650.0}

Every problem is a :class:`ConfigError` whose message names the setting and what is allowed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from equity_pipeline.errors import ConfigError
from equity_pipeline.periods import MeasurementPeriod, as_period

DEFAULT_PROGRAM = "AHEAD"
SETTINGS_KEYS = {"program", "rules_file", "overrides", "baseline"}
VERSION_KEYS = {"version", "title", "effective_from", "effective_to", "cohorts", "states", "state_plan", "hospital_plan",
                "reference_groups", "thresholds", "targets"}
STATE_PLAN_KEYS = {"pqi_measure", "pqi_stratifiers", "measures", "stratifiers", "payers"}
HOSPITAL_PLAN_KEYS = {"readmission_days", "ed_revisit_days", "stratifiers", "sdoh_settings", "sdoh_min_age"}
THRESHOLD_KEYS = {"min_denominator", "high_svi"}
#: mappings in a version that overrides merge into (other keys are replaced)
MERGED_KEYS = ("state_plan", "hospital_plan", "reference_groups", "thresholds")
#: hospital-plan stratifiers: member attributes, plus dual_eligible (dual per the payer rule, or not)
HOSPITAL_STRATIFIERS = ("race_ethnicity", "ethnicity", "language", "lep", "sex", "age_band", "dual_eligible")
DUAL_ELIGIBLE, NOT_DUAL_ELIGIBLE = "Dual eligible", "Not dual eligible"
SDOH_SETTINGS = ("inpatient", "outpatient", "ed", "community", "other")
PLANS = ("state", "hospital")
TARGET_STATISTICS = ("rate", "difference", "ratio", "change")
TARGET_OPERATORS = ("<=", ">=")
TARGET_FILTERS = ("plan", "metric_id", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum")
BASELINE_KEYS = {"year", "path", "paths", "values"}
#: key columns of a baseline cell; defaults for absent ones
BASELINE_DEFAULTS = {"plan": "state", "submeasure": "all", "unit_level": "population", "unit_id": "all", "payer": "all",
                     "stratifier": "overall", "stratum": "all"}


class NoRulesInEffect(ConfigError):
    """No version of the program covers the measurement year."""


@dataclass(frozen=True)
class Target:
    """A target on one statistic of the matching rows: ``<statistic> <operator> <value>`` (e.g. ratio <= 1.2)."""

    statistic: str
    operator: str
    value: float
    filters: tuple[tuple[str, str], ...] = ()

    @property
    def basis(self) -> str:
        return f"{self.statistic} {self.operator} {self.value:g}"

    def to_dict(self) -> dict[str, Any]:
        return {**dict(self.filters), "statistic": self.statistic, "operator": self.operator, "value": self.value}


@dataclass(frozen=True)
class PlanRules:
    """The rules in effect for one measurement year (after config overrides)."""

    program: str
    version: str
    title: str
    effective_from: date
    effective_to: date | None
    states: tuple[str, ...]
    pqi_measure: str
    pqi_stratifiers: tuple[str, ...]
    measures: tuple[str, ...]
    stratifiers: tuple[str, ...]
    payers: tuple[str, ...]
    readmission_days: int
    ed_revisit_days: int
    hospital_stratifiers: tuple[str, ...]
    sdoh_settings: tuple[str, ...]
    sdoh_min_age: int
    reference_groups: tuple[tuple[str, str], ...]
    min_denominator: int
    high_svi: tuple[str, ...]
    targets: tuple[Target, ...] = ()
    baseline_year: int | None = None
    baseline_paths: tuple[str, ...] = ()
    baseline_values: tuple[tuple[tuple[str, Any], ...], ...] = field(default=())

    def reference_for(self, stratifier: str) -> str | None:
        return dict(self.reference_groups).get(stratifier)

    def to_dict(self) -> dict[str, Any]:
        """Counts and settings only (for Dagster metadata and the manifest)."""
        return {
            "program": self.program, "version": self.version, "title": self.title,
            "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
            "states": list(self.states), "pqi_measure": self.pqi_measure, "measures": list(self.measures),
            "stratifiers": list(self.stratifiers), "payers": list(self.payers),
            "hospital_stratifiers": list(self.hospital_stratifiers), "reference_groups": dict(self.reference_groups),
            "min_denominator": self.min_denominator, "targets": len(self.targets), "baseline_year": self.baseline_year,
        }


# ------------------------------------------------------------------------------------------ loading
def _read_yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = (resources.files("equity_pipeline.equity_plans") / "program_rules.yaml").read_text(encoding="utf-8")
        name = "program_rules.yaml"
    else:
        if not path.is_file():
            raise ConfigError(f"equity_plans.rules_file not found: {path}")
        text, name = path.read_text(encoding="utf-8"), path.name
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{name}: expected a mapping of program name -> {{versions: [...]}}")
    return data


def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where} {value!r} is not a YYYY-MM-DD date") from None


def version_in_effect(program: str, versions: Any, on: date) -> dict[str, Any]:
    """The version of ``program`` whose [effective_from, effective_to] contains ``on`` (inclusive)."""
    if not isinstance(versions, list) or not versions:
        raise ConfigError(f"equity_plans: program {program!r} needs a non-empty 'versions' list")
    spans = []
    for i, v in enumerate(versions):
        if not isinstance(v, dict):
            raise ConfigError(f"equity_plans: program {program!r} version #{i + 1} must be a mapping")
        name = str(v.get("version", f"#{i + 1}"))
        start = _date(v.get("effective_from"), f"equity_plans: {program} {name} effective_from")
        if start is None:
            raise ConfigError(f"equity_plans: {program} {name} needs effective_from (YYYY-MM-DD)")
        end = _date(v.get("effective_to"), f"equity_plans: {program} {name} effective_to")
        if end is not None and end < start:
            raise ConfigError(f"equity_plans: {program} {name} ends ({end}) before it starts ({start})")
        spans.append((start, end, name, v))
    spans.sort(key=lambda s: s[0])
    for (s1, e1, n1, _), (s2, _, n2, _) in zip(spans, spans[1:]):
        if e1 is None or e1 >= s2:
            raise ConfigError(f"equity_plans: {program} versions {n1} and {n2} overlap; effective dates must not")
    for start, end, _, v in spans:
        if start <= on and (end is None or on <= end):
            return v
    listed = ", ".join(f"{n} ({s} to {e or 'open'})" for s, e, n, _ in spans)
    raise NoRulesInEffect(f"equity_plans: no {program} rules in effect on {on} (the measurement year's end); versions: {listed}")


def _merge(version: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(version)
    for key, value in overrides.items():
        if key in MERGED_KEYS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
        if key == "states":
            out.pop("cohorts", None)
    return out


# ------------------------------------------------------------------------------------------ checks
def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of names (got {value!r})")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: {sorted({v for v in value if value.count(v) > 1})} listed more than once")
    return tuple(value)


def _mapping(value: Any, where: str, known: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping (got {value!r})")
    unknown = set(value) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return value


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{where} {value!r} must be a whole number from {lo} to {hi}")
    return value


def _states(version: dict[str, Any], year: int, where: str) -> tuple[str, ...]:
    from equity_pipeline.standards.geography import state_postal_by_fips

    usps = set(state_postal_by_fips().values())
    if "states" in version:
        states = _names(version["states"], f"{where}.states")
    else:
        cohorts = version.get("cohorts")
        if not isinstance(cohorts, list) or not cohorts:
            raise ConfigError(f"{where} needs 'cohorts' (name, states, first_year) or a 'states' list")
        states = []
        for c in cohorts:
            c = _mapping(c, f"{where}.cohorts[]", {"name", "states", "first_year"})
            first = _int(c.get("first_year"), f"{where}.cohorts {c.get('name')!r} first_year", 2000, 2100)
            if first <= year:
                states += [s for s in _names(c.get("states"), f"{where}.cohorts {c.get('name')!r} states") if s not in states]
        states = tuple(states)
    bad = sorted(s for s in states if s not in usps)
    if bad:
        raise ConfigError(f"{where}.states: {bad} are not USPS state codes (e.g. MD, NY, DC)")
    return tuple(sorted(states))


def _reference_groups(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    from equity_pipeline.attributes import UNKNOWN_STRATA
    from equity_pipeline.stratify import STRATIFIERS, known_strata

    value = _mapping(value, where, set(STRATIFIERS) | {"dual_eligible"})
    out = []
    for stratifier, stratum in value.items():
        if not isinstance(stratum, str) or not stratum:
            raise ConfigError(f"{where}.{stratifier} must be a stratum name (got {stratum!r})")
        if stratum in UNKNOWN_STRATA:
            raise ConfigError(f"{where}.{stratifier}: {stratum!r} stands for missing data and cannot be a reference")
        strata = (DUAL_ELIGIBLE, NOT_DUAL_ELIGIBLE) if stratifier == "dual_eligible" else known_strata(stratifier)
        if strata is not None and stratum not in strata and stratum not in ("best", "largest"):
            raise ConfigError(f"{where}: reference {stratum!r} not found in stratifier {stratifier!r}; "
                              f"use best, largest or one of {', '.join(strata)}")
        out.append((stratifier, stratum))
    return tuple(sorted(out))


def _targets(value: Any, where: str) -> tuple[Target, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of targets, e.g. [{{metric_id: PQI90, statistic: ratio, operator: '<=', value: 1.2}}]")
    out = []
    for i, t in enumerate(value):
        if isinstance(t, dict) and True in t:
            raise ConfigError(f"{where}[{i}]: YAML reads the key 'on' as true; name the compared value 'statistic'")
        t = _mapping(t, f"{where}[{i}]", {*TARGET_FILTERS, "statistic", "operator", "value", "source"})
        if "metric_id" not in t:
            raise ConfigError(f"{where}[{i}] needs metric_id")
        if t.get("statistic") not in TARGET_STATISTICS:
            raise ConfigError(f"{where}[{i}] statistic {t.get('statistic')!r} must be one of {', '.join(TARGET_STATISTICS)}")
        if t.get("operator") not in TARGET_OPERATORS:
            raise ConfigError(f"{where}[{i}] operator {t.get('operator')!r} must be '<=' or '>=' (quote it in YAML)")
        v = t.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}[{i}] value {v!r} must be a number")
        if "plan" in t and t["plan"] not in PLANS:
            raise ConfigError(f"{where}[{i}] plan {t['plan']!r} must be state or hospital")
        filters = tuple((k, str(t[k])) for k in TARGET_FILTERS if k in t)
        out.append(Target(t["statistic"], t["operator"], float(v), filters))
    return tuple(out)


def _baseline(value: Any, year: int, base_dir: Path | None) -> tuple[int | None, tuple[str, ...], tuple]:
    if value is None:
        return None, (), ()
    value = _mapping(value, "equity_plans.baseline", BASELINE_KEYS)
    b_year = _int(value.get("year"), "equity_plans.baseline.year", 2000, year - 1)
    paths = []
    for p in ([value["path"]] if "path" in value else []) + list(value.get("paths") or []):
        from equity_pipeline.config import published_file

        paths.append(str(published_file(p, "equity_plans.baseline", base_dir, "a published state_metrics table")))
    rows = []
    for i, r in enumerate(value.get("values") or []):
        r = _mapping(r, f"equity_plans.baseline.values[{i}]", {*BASELINE_DEFAULTS, "metric_id", "value"})
        if "metric_id" not in r or "value" not in r:
            raise ConfigError(f"equity_plans.baseline.values[{i}] needs metric_id and value")
        v = r["value"]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"equity_plans.baseline.values[{i}] value {v!r} must be a number or null (suppressed)")
        rows.append(tuple(sorted({**BASELINE_DEFAULTS, **{k: str(x) for k, x in r.items() if k != "value"},
                                  "value": None if v is None else float(v)}.items())))
    if not paths and not rows:
        raise ConfigError("equity_plans.baseline needs a path (published table) or values")
    return b_year, tuple(paths), tuple(rows)


def validate_settings(raw: Any, year: int | MeasurementPeriod, *, measures: tuple[str, ...] | None = None,
                      base_dir: Path | None = None) -> dict[str, Any]:
    """Check the config's ``equity_plans`` mapping; return it normalised (JSON-safe) for the manifest.

    Resolving the rules here means a bad rules file or override fails when the config is loaded,
    before any work. Without ``equity_plans`` settings, a measurement year no program version covers
    is not an error (the plan tables are empty); with settings it is."""
    settings = _mapping(raw, "equity_plans", SETTINGS_KEYS)
    try:
        rules = resolve_rules(settings, year, measures=measures, base_dir=base_dir)
    except NoRulesInEffect:
        if settings:
            raise
        return {}  # not asked for: a year without rules just has empty plan tables
    # file paths resolved against the config file's folder, so the run resolves the same rules
    out = copy.deepcopy(settings)
    if out.get("rules_file") and base_dir is not None and not Path(out["rules_file"]).is_absolute():
        out["rules_file"] = str(base_dir / out["rules_file"])
    if "baseline" in out:
        out["baseline"] = {**{k: v for k, v in out["baseline"].items() if k not in ("path", "paths")},
                           **({"paths": list(rules.baseline_paths)} if rules.baseline_paths else {})}
    return out


def resolve_rules(settings: dict[str, Any] | None, year: int | MeasurementPeriod, *, measures: tuple[str, ...] | None = None,
                  base_dir: Path | None = None) -> PlanRules:
    """The :class:`PlanRules` in effect for ``year`` (a measurement year or period: on its last day)
    from the rules file and the config's overrides."""
    from equity_pipeline.attributes import DUAL, PAYERS, SVI_QUINTILES
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.stratify import STRATIFIERS

    settings = _mapping(settings or {}, "equity_plans", SETTINGS_KEYS)
    program = settings.get("program", DEFAULT_PROGRAM)
    rules_file = settings.get("rules_file")
    if rules_file is not None and not isinstance(rules_file, str):
        raise ConfigError(f"equity_plans.rules_file {rules_file!r} must be a file path")
    path = None if rules_file is None else (Path(rules_file) if Path(rules_file).is_absolute() or base_dir is None else base_dir / rules_file)
    programs = _read_yaml(path)
    if program not in programs:
        raise ConfigError(f"equity_plans.program {program!r} not in the rules file; programs: {', '.join(sorted(programs))}")
    entry = _mapping(programs[program], f"equity_plans: program {program!r}", {"versions"})
    period = as_period(year)
    year = period.year  # cohorts and baseline by the year of the period end
    version = version_in_effect(program, entry.get("versions"), period.end)
    overrides = _mapping(settings.get("overrides"), "equity_plans.overrides", VERSION_KEYS - {"version", "effective_from", "effective_to"})
    v = _mapping(_merge(version, overrides), f"equity_plans: {program} {version.get('version')}", VERSION_KEYS)
    where = f"equity_plans: {program} {v.get('version')}"
    specs = load_specs()
    state = _mapping(v.get("state_plan"), f"{where} state_plan", STATE_PLAN_KEYS)
    hospital = _mapping(v.get("hospital_plan"), f"{where} hospital_plan", HOSPITAL_PLAN_KEYS)
    thresholds = _mapping(v.get("thresholds"), f"{where} thresholds", THRESHOLD_KEYS)

    plan_measures = _names(state.get("measures", []), f"{where} state_plan.measures")
    pqi = state.get("pqi_measure", "PQI90")
    bad = [m for m in (*plan_measures, pqi) if m not in specs]
    if bad:
        raise ConfigError(f"{where}: unknown measure id(s) {bad}; known: {sorted(specs)}")
    if specs[pqi].kind != "event_rate":
        raise ConfigError(f"{where} state_plan.pqi_measure {pqi!r} must be an event-rate measure (admissions per population)")
    stratifiers = _names(state.get("stratifiers", ["race_ethnicity"]), f"{where} state_plan.stratifiers")
    pqi_stratifiers = _names(state.get("pqi_stratifiers", ["race_ethnicity"]), f"{where} state_plan.pqi_stratifiers")
    bad = [s for s in (*stratifiers, *pqi_stratifiers) if s not in STRATIFIERS]
    if bad:
        raise ConfigError(f"{where}: unknown stratifier(s) {bad}; known: {sorted(STRATIFIERS)}")
    payers = _names(state.get("payers", [*PAYERS, DUAL]), f"{where} state_plan.payers")
    bad = [p for p in payers if p not in (*PAYERS, DUAL)]
    if bad:
        raise ConfigError(f"{where} state_plan.payers: {bad} unknown; allowed: {', '.join((*PAYERS, DUAL))}")
    h_strat = _names(hospital.get("stratifiers", ["race_ethnicity", "dual_eligible"]), f"{where} hospital_plan.stratifiers")
    bad = [s for s in h_strat if s not in HOSPITAL_STRATIFIERS]
    if bad:
        raise ConfigError(f"{where} hospital_plan.stratifiers: {bad} unknown; allowed: {', '.join(HOSPITAL_STRATIFIERS)}")
    settings_list = _names(hospital.get("sdoh_settings", ["inpatient", "ed", "outpatient"]), f"{where} hospital_plan.sdoh_settings")
    bad = [s for s in settings_list if s not in SDOH_SETTINGS]
    if bad:
        raise ConfigError(f"{where} hospital_plan.sdoh_settings: {bad} unknown; allowed: {', '.join(SDOH_SETTINGS)}")
    high_svi = _names(thresholds.get("high_svi", [SVI_QUINTILES[-1]]), f"{where} thresholds.high_svi")
    bad = [q for q in high_svi if q not in SVI_QUINTILES]
    if bad:
        raise ConfigError(f"{where} thresholds.high_svi: {bad} are not SVI quintiles; use {', '.join(SVI_QUINTILES)}")
    b_year, b_paths, b_values = _baseline(settings.get("baseline"), year, base_dir)
    return PlanRules(
        program=program, version=str(v.get("version", "")), title=str(v.get("title", program)),
        effective_from=_date(v.get("effective_from"), f"{where} effective_from"),
        effective_to=_date(v.get("effective_to"), f"{where} effective_to"),
        states=_states(v, year, where), pqi_measure=pqi, pqi_stratifiers=pqi_stratifiers,
        measures=tuple(m for m in plan_measures if measures is None or m in measures),
        stratifiers=stratifiers, payers=payers,
        readmission_days=_int(hospital.get("readmission_days", 30), f"{where} hospital_plan.readmission_days", 1, 365),
        ed_revisit_days=_int(hospital.get("ed_revisit_days", 7), f"{where} hospital_plan.ed_revisit_days", 1, 365),
        hospital_stratifiers=h_strat, sdoh_settings=settings_list,
        sdoh_min_age=_int(hospital.get("sdoh_min_age", 18), f"{where} hospital_plan.sdoh_min_age", 0, 120),
        reference_groups=_reference_groups(v.get("reference_groups"), f"{where} reference_groups"),
        min_denominator=_int(thresholds.get("min_denominator", 30), f"{where} thresholds.min_denominator", 1, 10**9),
        high_svi=high_svi, targets=_targets(v.get("targets"), f"{where} targets"),
        baseline_year=b_year, baseline_paths=b_paths, baseline_values=b_values,
    )
