"""Program configuration: which measures, which period, which stratifiers.

A YAML file (``--config FILE``, or the Dagster resource ``config_file``); every key is optional::

    measurement_year: 2025          # default: the last complete calendar year before the run date
    measures: [BCS]                 # default: every packaged measure spec
    stratifiers: [race_ethnicity, language, county]
    run_date: 2026-11-22            # default: today; dates after it are "future" in validation
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from equity_pipeline.errors import ConfigError

KNOWN_KEYS = {"measurement_year", "measures", "stratifiers", "run_date"}


@dataclass(frozen=True)
class ProgramConfig:
    measurement_year: int
    run_date: date
    measures: tuple[str, ...]
    stratifiers: tuple[str, ...]
    source: str | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_date"] = self.run_date.isoformat()
        d["measures"], d["stratifiers"] = list(self.measures), list(self.stratifiers)
        return d


def load_config(path: str | Path | None = None, *, run_date: date | None = None) -> ProgramConfig:
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.stratify import STRATIFIERS

    raw: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p.name}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p.name}: expected a mapping of settings")
        unknown = set(raw) - KNOWN_KEYS
        if unknown:
            raise ConfigError(f"{p.name}: unknown setting(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    rd = raw.get("run_date", run_date or date.today())
    if isinstance(rd, str):
        try:
            rd = date.fromisoformat(rd)
        except ValueError:
            raise ConfigError(f"run_date {rd!r} is not a YYYY-MM-DD date") from None
    year = raw.get("measurement_year", rd.year - 1)
    if not isinstance(year, int) or not 2000 <= year <= rd.year:
        raise ConfigError(f"measurement_year {year!r} must be a year between 2000 and the run date's year")
    specs = load_specs()
    measures = tuple(raw.get("measures", list(specs)))
    bad = [m for m in measures if m not in specs]
    if bad:
        raise ConfigError(f"unknown measure id(s) {bad}; known: {sorted(specs)}")
    stratifiers = tuple(raw.get("stratifiers", list(STRATIFIERS)))
    bad = [s for s in stratifiers if s not in STRATIFIERS]
    if bad:
        raise ConfigError(f"unknown stratifier(s) {bad}; known: {sorted(STRATIFIERS)}")
    return ProgramConfig(year, rd, measures, stratifiers, str(path) if path else None)
