"""Program configuration: which measures, which period, which stratifiers, how disparities are judged.

A YAML file (``--config FILE``, or the Dagster resource ``config_file``); every key is optional::

    measurement_year: 2025          # default: the last complete calendar year before the run date
    # measurement_period: {end: 2025-03-31}   # instead of measurement_year: the rolling 12 months
    #                                 #   ending on a month end (2024-04-01..2025-03-31); label of the
    #                                 #   public tables' period column "2024-04-01/2025-03-31"
    measures: [BCS]                 # default: every packaged measure spec
    stratifiers: [race_ethnicity, language, county]   # default: stratify.DEFAULT_STRATIFIERS
    run_date: 2026-11-22            # default: today; dates after it are "future" in validation
    intersections:                  # two-way intersections; stratifier "race_ethnicity x rurality",
      - [race_ethnicity, rurality]  #   strata "White | Metro"; default: none
    age_bands: [0, 18, 45, 65, 75]  # lower bounds of the age_band strata (age at period end); first 0
    regions:                        # county groupings for the "region" stratifier; may cross state
      Capital: ["24031", "24033", "11001"]   # lines; a county in at most one region; quote FIPS
    reference_group: largest        # largest (default) | best | overall, for every stratifier; or per stratifier:
    # reference_group: {default: largest, race_ethnicity: White, payer: commercial}
    multiple_comparisons: holm      # holm | bh (Benjamini-Hochberg), within measure x unit x stratifier
    disparity_min_denominator: 30   # members below which a stratum's disparity is insufficient_data
    imputed_race: true              # BISG track (public/rates_imputed_race); default: true when members have surnames
    standardization:                # public/standardized_rates (docs/stratification.md)
      standard: run                 # run (the run's own population by age band x sex) | us2000 | esp2013
      age_bands: [0, 18, 25, 35, 45, 55, 65, 75, 85]
      method: dobson                # dobson | fay_feuer
      stratifiers: [race_ethnicity] # configured stratifiers (or intersections) to standardise
    equity_plans:                   # equity-plan program rules and baseline (docs/equity_plans.md)
      program: AHEAD
      overrides: {states: [MD, NY]}
      baseline: {year: 2024, path: prior/public/equity_plan/state_metrics.parquet}
    completeness_thresholds:        # REL completeness levels per reporting unit (docs/validation.md);
      self_reported_race_ethnicity: {warn: 0.8, fail: 0.5}   # share below warn -> WARN, below fail -> ERROR
      language: {warn: 0.9}         # metrics: report.completeness.COMPLETENESS_METRICS; default: none
    trend:                          # trend lines in the report and workbook (docs/reports.md)
      history: [prior/public/rates.parquet]   # earlier runs' public rates (.parquet or .csv)

Every stratifier and reference policy is described in docs/stratification.md. Errors are
:class:`ConfigError` with a message naming the setting and what is allowed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from equity_pipeline.errors import ConfigError
from equity_pipeline.periods import MeasurementPeriod, is_month_end

KNOWN_KEYS = {
    "measurement_year", "measurement_period", "measures", "stratifiers", "run_date", "intersections", "age_bands", "regions",
    "reference_group", "multiple_comparisons", "disparity_min_denominator", "imputed_race", "standardization",
    "equity_plans", "completeness_thresholds", "trend",
}
STANDARDIZATION_KEYS = ("standard", "age_bands", "method", "stratifiers")
REFERENCE_POLICIES = ("best", "largest", "overall")
#: "largest" by default: a reference fixed before looking at the rates keeps the family-wise error
#: rate at alpha; "best" (HD*Calc's choice) compares with the sample maximum and roughly doubles
#: false flags among equal groups (tests/stratify/test_detection.py, docs/stratification.md)
DEFAULT_REFERENCE = "largest"
MULTIPLE_COMPARISONS = ("holm", "bh")
DEFAULT_MIN_DENOMINATOR = 30


@dataclass(frozen=True)
class ProgramConfig:
    measurement_year: int
    run_date: date
    measures: tuple[str, ...]
    stratifiers: tuple[str, ...]
    source: str | None = field(default=None)
    intersections: tuple[tuple[str, str], ...] = ()
    age_bands: tuple[int, ...] = (0, 18, 45, 65, 75)
    regions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: ("default", policy) first, then (stratifier, policy or stratum name) overrides
    reference_group: tuple[tuple[str, str], ...] = (("default", DEFAULT_REFERENCE),)
    multiple_comparisons: str = "holm"
    disparity_min_denominator: int = DEFAULT_MIN_DENOMINATOR
    #: BISG imputed-race track: True, False, or None = on when the members table has surnames
    imputed_race: bool | None = None
    standard_population: str = "run"
    standardization_age_bands: tuple[int, ...] = (0, 18, 25, 35, 45, 55, 65, 75, 85)
    standardization_method: str = "dobson"
    standardization_stratifiers: tuple[str, ...] = ("race_ethnicity",)
    #: equity-plan settings (program, rules_file, overrides, baseline), checked by equity_plans.rules
    equity_plans: dict[str, Any] = field(default_factory=dict, hash=False)
    #: (metric, warn, fail) with shares 0-1 (None = level not set); see report.completeness
    completeness_thresholds: tuple[tuple[str, float | None, float | None], ...] = ()
    #: earlier runs' public rates tables (resolved paths) for the report's trends; see report.trends
    trend_history: tuple[str, ...] = ()
    #: end of a rolling 12-month measurement period (``measurement_period.end``); None: the calendar
    #: year ``measurement_year``. With it, ``measurement_year`` is the year of the period end.
    period_end: date | None = None

    @property
    def period(self) -> MeasurementPeriod:
        """The measurement period: the calendar year ``measurement_year``, or the rolling 12 months
        ending ``period_end`` (``periods.MeasurementPeriod.rolling``)."""
        if self.period_end is None:
            return MeasurementPeriod.calendar_year(self.measurement_year)
        return MeasurementPeriod.rolling(self.period_end)

    @property
    def region_map(self) -> dict[str, tuple[str, ...]]:
        return dict(self.regions)

    def reference_for(self, stratifier: str) -> str:
        """The reference policy (best | largest | overall) or stratum name for ``stratifier``."""
        policies = dict(self.reference_group)
        return policies.get(stratifier, policies.get("default", DEFAULT_REFERENCE))

    def to_dict(self) -> dict[str, Any]:
        return {
            "measurement_year": self.measurement_year,
            "run_date": self.run_date.isoformat(),
            "measures": list(self.measures),
            "stratifiers": list(self.stratifiers),
            "source": self.source,
            "intersections": [list(p) for p in self.intersections],
            "age_bands": list(self.age_bands),
            "regions": {name: list(counties) for name, counties in self.regions},
            "reference_group": dict(self.reference_group),
            "multiple_comparisons": self.multiple_comparisons,
            "disparity_min_denominator": self.disparity_min_denominator,
            "equity_plans": self.equity_plans,
            "completeness_thresholds": {m: {k: v for k, v in (("warn", w), ("fail", f)) if v is not None}
                                        for m, w, f in self.completeness_thresholds},
            "imputed_race": self.imputed_race,
            "trend": {"history": list(self.trend_history)},
            "standardization": {"standard": self.standard_population, "age_bands": list(self.standardization_age_bands),
                                "method": self.standardization_method, "stratifiers": list(self.standardization_stratifiers)},
            # only for a rolling period, so a calendar-year config's manifest is unchanged
            **({"measurement_period": {"begin": self.period.begin.isoformat(), "end": self.period_end.isoformat(),
                                       "label": self.period.label}} if self.period_end is not None else {}),
        }


def load_config(path: str | Path | None = None, *, run_date: date | None = None) -> ProgramConfig:
    from equity_pipeline.measures.spec import load_specs

    raw: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, ValueError) as exc:  # ValueError: a YAML date that is no real date (2026-02-30)
            raise ConfigError(f"{p.name}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p.name}: expected a mapping of settings")
        unknown = set(raw) - KNOWN_KEYS
        if unknown:
            raise ConfigError(f"{p.name}: unknown setting(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    return config_from_dict(raw, run_date=run_date, source=str(path) if path else None, specs=load_specs())


def config_from_dict(raw: dict[str, Any], *, run_date: date | None = None, source: str | None = None,
                     specs: dict | None = None) -> ProgramConfig:
    """Validate a settings mapping (the parsed YAML) into a :class:`ProgramConfig`."""
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.stratify import DEFAULT_STRATIFIERS, STRATIFIERS

    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    rd = raw.get("run_date", run_date or date.today())
    if isinstance(rd, str):
        try:
            rd = date.fromisoformat(rd)
        except ValueError:
            raise ConfigError(f"run_date {rd!r} is not a YYYY-MM-DD date") from None
    if not isinstance(rd, date):  # e.g. run_date: 20261122 (a number) or a list
        raise ConfigError(f"run_date {rd!r} is not a YYYY-MM-DD date")
    period_end = _period_end(raw, rd)
    year = raw.get("measurement_year", rd.year - 1) if period_end is None else period_end.year
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= rd.year:
        raise ConfigError(f"measurement_year {year!r} must be a year between 2000 and the run date's year")
    period = MeasurementPeriod.calendar_year(year) if period_end is None else MeasurementPeriod.rolling(period_end)
    specs = specs if specs is not None else load_specs()
    measures = tuple(_string_list(raw.get("measures", list(specs)), "measures"))
    bad = [m for m in measures if m not in specs]
    if bad:
        raise ConfigError(f"unknown measure id(s) {bad}; known: {sorted(specs)}")
    if not measures or len(set(measures)) != len(measures):  # a repeated measure would be counted twice
        raise ConfigError(f"measures {list(measures)!r} must list each measure id once, at least one "
                          "(leave the setting out for every packaged measure)")
    stratifiers = tuple(_string_list(raw.get("stratifiers", list(DEFAULT_STRATIFIERS)), "stratifiers"))
    bad = [s for s in stratifiers if s not in STRATIFIERS]
    if bad:
        raise ConfigError(f"unknown stratifier(s) {bad}; known: {sorted(STRATIFIERS)} "
                          "(intersections go under 'intersections', e.g. [[race_ethnicity, rurality]])")
    if len(set(stratifiers)) != len(stratifiers):
        raise ConfigError(f"stratifiers: {sorted({s for s in stratifiers if stratifiers.count(s) > 1})} listed more than once")
    intersections = _intersections(raw.get("intersections", []), STRATIFIERS)
    age_bands = _age_bands(raw.get("age_bands", list(ProgramConfig.age_bands)))
    regions = _regions(raw.get("regions", {}), year)
    used = set(stratifiers) | {s for pair in intersections for s in pair}
    if "region" in used and not regions:
        raise ConfigError("stratifier 'region' needs a 'regions' setting (region name -> list of county FIPS)")
    reference = _reference_group(raw.get("reference_group", DEFAULT_REFERENCE), stratifiers, intersections,
                                 age_bands, dict(regions))
    method = raw.get("multiple_comparisons", "holm")
    if method not in MULTIPLE_COMPARISONS:
        raise ConfigError(f"multiple_comparisons {method!r} must be one of {', '.join(MULTIPLE_COMPARISONS)} "
                          "(holm: family-wise error; bh: Benjamini-Hochberg false discovery rate)")
    min_den = raw.get("disparity_min_denominator", DEFAULT_MIN_DENOMINATOR)
    if isinstance(min_den, bool) or not isinstance(min_den, int) or min_den < 1:
        raise ConfigError(f"disparity_min_denominator {min_den!r} must be a whole number of members, at least 1")
    imputed = raw.get("imputed_race")
    if imputed is not None and not isinstance(imputed, bool):
        raise ConfigError(f"imputed_race {imputed!r} must be true or false (leave it out: on when members have surnames)")
    std = _standardization(raw.get("standardization", {}), stratifiers, intersections)
    from equity_pipeline.equity_plans.rules import validate_settings

    plans = validate_settings(raw.get("equity_plans", {}), period, measures=measures,
                              base_dir=Path(source).parent if source else None)  # docs/equity_plans.md
    thresholds = _completeness_thresholds(raw.get("completeness_thresholds", {}))
    history = _trend_history(raw.get("trend", {}), Path(source).parent if source else None)
    return ProgramConfig(year, rd, measures, stratifiers, source, intersections, age_bands, regions, reference,
                         method, min_den, imputed, *std, equity_plans=plans, completeness_thresholds=thresholds,
                         trend_history=history, period_end=period_end)


def _period_end(raw: dict[str, Any], rd: date) -> date | None:
    """The end of the ``measurement_period`` setting (a month end), or None when it is not set."""
    if "measurement_period" not in raw:
        return None
    value = raw["measurement_period"]
    if "measurement_year" in raw:
        raise ConfigError("measurement_year and measurement_period are mutually exclusive: set one "
                          "(a calendar year, or {end: YYYY-MM-DD} for the rolling 12 months ending on a month end)")
    if not isinstance(value, dict) or set(value) != {"end"}:
        raise ConfigError(f"measurement_period must be a mapping with the key end (the last day of a month), "
                          f"e.g. {{end: 2025-03-31}} for the 12 months 2024-04-01..2025-03-31 (got {value!r})")
    end = value["end"]
    if isinstance(end, str):
        try:
            end = date.fromisoformat(end)
        except ValueError:
            raise ConfigError(f"measurement_period.end {end!r} is not a YYYY-MM-DD date") from None
    if not isinstance(end, date) or isinstance(end, datetime):
        raise ConfigError(f"measurement_period.end {end!r} is not a YYYY-MM-DD date")
    if not is_month_end(end):
        raise ConfigError(f"measurement_period.end {end.isoformat()} must be the last day of a month "
                          "(rolling 12-month periods end on a month end, e.g. 2025-03-31)")
    if not 2000 <= end.year <= rd.year:
        raise ConfigError(f"measurement_period.end {end.isoformat()} must be in a year between 2000 and the run date's year")
    return end


def _trend_history(value: Any, base_dir: Path | None) -> tuple[str, ...]:
    """The ``trend.history`` files: earlier runs' public rates (.parquet or .csv), resolved against the
    config file's folder like ``equity_plans.baseline.path``; each must exist, hold the public rates
    columns (report.trends.HISTORY_REQUIRED) and lie outside any ``restricted`` folder (member-level
    tables never feed a published trend)."""
    from equity_pipeline.report.trends import missing_history_columns

    if value is None or value == {}:
        return ()
    if not isinstance(value, dict) or set(value) - {"history"}:
        raise ConfigError(f"trend must be a mapping with the key history (a list of earlier public rates files), got {value!r}")
    paths = value.get("history") or []
    if not isinstance(paths, list):
        raise ConfigError(f"trend.history must be a list of file paths (earlier runs' public/rates.parquet), got {paths!r}")
    out: list[str] = []
    for p in paths:
        path = published_file(p, "trend.history", base_dir, "a published rates table")
        try:
            columns = _column_names(path)
        except Exception as exc:  # unreadable or not the format its name says
            raise ConfigError(f"trend.history file {path.name} cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        missing = missing_history_columns(columns)
        if missing:
            raise ConfigError(f"trend.history file {path.name} is not a public rates table: missing column(s) {missing}")
        if str(path) in out:
            raise ConfigError(f"trend.history lists {path.name} more than once")
        out.append(str(path))
    return tuple(out)


def published_file(p: Any, setting: str, base_dir: Path | None, what: str) -> Path:
    """A config path to an earlier run's *published* table (``trend.history``, ``equity_plans.baseline``):
    resolved against the config file's folder, an existing .parquet or .csv file, outside any
    ``restricted`` folder (member-level tables never feed a published figure); else ConfigError."""
    if not isinstance(p, str) or not p:
        raise ConfigError(f"{setting} path {p!r} must be a file path")
    path = Path(p) if Path(p).is_absolute() or base_dir is None else base_dir / p
    if not path.is_file():
        raise ConfigError(f"{setting} file not found: {path}")
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"{setting} file {path.name} must be .parquet or .csv ({what})")
    if "restricted" in path.resolve().parts:
        raise ConfigError(f"{setting} file {path.name} is in a restricted folder; use {what} from public/")
    return path


def _column_names(path: Path) -> list[str]:
    """Column names of a parquet or CSV file (header only)."""
    import polars as pl

    if path.suffix.lower() == ".csv":
        return pl.read_csv(path, n_rows=0).columns
    return list(pl.read_parquet_schema(path))


def _completeness_thresholds(value: Any) -> tuple[tuple[str, float | None, float | None], ...]:
    from equity_pipeline.report.completeness import COMPLETENESS_METRICS

    if value is None or value == {}:
        return ()
    if not isinstance(value, dict):
        raise ConfigError("completeness_thresholds must be a mapping of metric -> {warn: share, fail: share}, "
                          f"e.g. {{self_reported_race_ethnicity: {{warn: 0.8, fail: 0.5}}}} (got {value!r})")
    out = []
    for metric, levels in value.items():
        if metric not in COMPLETENESS_METRICS:
            raise ConfigError(f"completeness_thresholds: unknown metric {metric!r}; known: {sorted(COMPLETENESS_METRICS)}")
        if not isinstance(levels, dict) or not levels or set(levels) - {"warn", "fail"}:
            raise ConfigError(f"completeness_thresholds for {metric!r} must be a mapping with warn and/or fail (got {levels!r})")
        for k, v in levels.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ConfigError(f"completeness_thresholds for {metric!r}: {k} {v!r} must be a share between 0 and 1")
        warn, fail = levels.get("warn"), levels.get("fail")
        if warn is not None and fail is not None and fail > warn:
            raise ConfigError(f"completeness_thresholds for {metric!r}: fail {fail!r} must not be above warn {warn!r}")
        out.append((str(metric), None if warn is None else float(warn), None if fail is None else float(fail)))
    return tuple(sorted(out))


def _standardization(value: Any, stratifiers: tuple[str, ...], intersections: tuple[tuple[str, str], ...]):
    """(standard, age_bands, method, stratifiers) of the ``standardization`` setting."""
    from equity_pipeline.standardized import DEFAULT_AGE_BANDS, STANDARDS, standard_weights
    from equity_pipeline.stratify import intersection_name

    if not isinstance(value, dict) or set(value) - set(STANDARDIZATION_KEYS):
        raise ConfigError(f"standardization must be a mapping with keys among {list(STANDARDIZATION_KEYS)} (got {value!r})")
    standard = value.get("standard", "run")
    if standard not in STANDARDS:
        raise ConfigError(f"standardization standard {standard!r} must be one of {', '.join(STANDARDS)} "
                          "(run: this run's population by age band x sex; us2000: US 2000 standard million; esp2013: European 2013)")
    bands = _age_bands(value.get("age_bands", list(DEFAULT_AGE_BANDS)))
    if standard != "run":
        try:
            standard_weights(standard, bands, 0, 120)
        except ValueError as exc:
            raise ConfigError(f"standardization age_bands: {exc}") from None
    method = value.get("method", "dobson")
    if method not in ("dobson", "fay_feuer"):
        raise ConfigError(f"standardization method {method!r} must be dobson or fay_feuer")
    published = [*stratifiers, *(intersection_name(a, b) for a, b in intersections)]
    chosen = value.get("stratifiers", ["race_ethnicity"] if "race_ethnicity" in stratifiers else [])
    chosen = tuple(_string_list(chosen, "standardization stratifiers"))
    bad = [s for s in chosen if s not in published]
    if bad:
        raise ConfigError(f"standardization stratifiers {bad} are not configured stratifiers or intersections; configured: {published}")
    return standard, bands, method, chosen


def _string_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of names (got {value!r})")
    return value


def _intersections(value: Any, known: dict[str, str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise ConfigError(f"intersections must be a list of pairs, e.g. [[race_ethnicity, rurality]] (got {value!r})")
    out: list[tuple[str, str]] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item)):
            raise ConfigError(f"intersection {item!r} must be a pair of stratifier names, e.g. [race_ethnicity, rurality]")
        a, b = item
        bad = [s for s in (a, b) if s not in known]
        if bad:
            raise ConfigError(f"intersection {item!r}: unknown stratifier(s) {bad}; known: {sorted(known)}")
        if a == b:
            raise ConfigError(f"intersection {item!r} crosses a stratifier with itself")
        if (a, b) in out or (b, a) in out:
            raise ConfigError(f"intersection {item!r} is listed more than once (in either order)")
        out.append((a, b))
    return tuple(out)


def _age_bands(value: Any) -> tuple[int, ...]:
    ok = isinstance(value, list) and len(value) >= 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok or value[0] != 0 or any(b <= a for a, b in zip(value, value[1:])) or value[-1] > 120:
        raise ConfigError(f"age_bands {value!r} must be increasing whole-year lower bounds starting at 0, "
                          "at least two, e.g. [0, 18, 45, 65, 75] (bands 0-17, 18-44, 45-64, 65-74, 75+)")
    return tuple(value)


def _regions(value: Any, year: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    from equity_pipeline.attributes import NO_REGION, UNKNOWN_STRATA
    from equity_pipeline.standards.geography import county_names

    if not isinstance(value, dict):
        raise ConfigError("regions must be a mapping of region name -> list of county FIPS, e.g. {Capital: ['24031', '24033']}")
    valid = county_names(year)
    seen: dict[str, str] = {}
    out = []
    for name, counties in value.items():
        if not isinstance(name, str) or not name.strip() or name in UNKNOWN_STRATA or name == NO_REGION:
            raise ConfigError(f"region name {name!r} must be a non-empty text other than {sorted({*UNKNOWN_STRATA, NO_REGION})}")
        if not isinstance(counties, list) or not counties:
            raise ConfigError(f"region {name!r} needs a non-empty list of county FIPS codes")
        for fips in counties:
            if not isinstance(fips, str):
                raise ConfigError(f"region {name!r}: county {fips!r} must be quoted text ('09001'), so leading zeros survive YAML")
            if len(fips) != 5 or not fips.isdigit():
                raise ConfigError(f"region {name!r}: county {fips!r} is not a 5-digit county FIPS code")
            if fips not in valid:
                raise ConfigError(f"region {name!r}: county {fips!r} is not a county valid in {year}")
            if fips in seen and seen[fips] != name:
                raise ConfigError(f"county {fips!r} is in both region {seen[fips]!r} and {name!r}; a county belongs to at most one region")
            seen[fips] = name
        out.append((name, tuple(dict.fromkeys(counties))))
    return tuple(out)


def _reference_group(value: Any, stratifiers: tuple[str, ...], intersections: tuple[tuple[str, str], ...],
                     age_bands: tuple[int, ...], regions: dict[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    from equity_pipeline.attributes import UNKNOWN_STRATA
    from equity_pipeline.stratify import intersection_name, known_strata

    if isinstance(value, str):
        value = {"default": value}
    if not isinstance(value, dict):
        raise ConfigError(f"reference_group must be one of {', '.join(REFERENCE_POLICIES)} or a mapping "
                          "{default: best, <stratifier>: <policy or stratum>}")
    default = value.get("default", DEFAULT_REFERENCE)
    if default not in REFERENCE_POLICIES:
        raise ConfigError(f"reference_group default {default!r} must be one of {', '.join(REFERENCE_POLICIES)} "
                          "(a named stratum can only be given per stratifier)")
    published = set(stratifiers) | {intersection_name(a, b) for a, b in intersections}
    out = [("default", default)]
    for stratifier, policy in value.items():
        if stratifier == "default":
            continue
        if stratifier not in published:
            raise ConfigError(f"reference_group for {stratifier!r}: not a configured stratifier or intersection; "
                              f"configured: {sorted(published)}")
        if not isinstance(policy, str) or not policy:
            raise ConfigError(f"reference_group for {stratifier!r} must be a policy or a stratum name (got {policy!r})")
        if policy in UNKNOWN_STRATA:
            raise ConfigError(f"reference_group for {stratifier!r}: {policy!r} stands for missing data and cannot be a reference")
        strata = known_strata(stratifier, age_bands=age_bands, regions=regions)
        if policy not in REFERENCE_POLICIES and strata is not None and policy not in strata:
            raise ConfigError(f"reference_group {policy!r} not found in stratifier {stratifier!r}; "
                              f"use {', '.join(REFERENCE_POLICIES)} or one of {', '.join(strata)}")
        out.append((stratifier, policy))
    return tuple(out)
