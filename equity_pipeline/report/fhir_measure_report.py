"""Stratified results as FHIR R4 ``MeasureReport`` resources (summary reports), for machine exchange.

``public/fhir/measure_reports.ndjson``: one resource per line, one per measure x period x reporting
unit, built from the public (already suppressed) rates table only, the shape eCQM tools
(cqf-ruler, fqm-execution) exchange:

* ``status = complete``, ``type = summary``, ``measure`` the canonical ``urn:equity-pipeline:measure:<ID>|<version>``
  (this pipeline's spec of the measure, not a published eCQM), ``period`` the measurement period,
  ``date`` the run's time, ``improvementNotation`` from the measure's direction, ``subject`` the
  reporting unit when it is not the whole population (a reference by identifier, system
  ``urn:equity-pipeline:unit:<unit_level>``, e.g. ``state`` / ``MD``).
* one ``group`` per sub-measure (``code.text`` the sub-measure, ``all`` for the whole measure), with
  the unit's overall row as ``group.population`` and ``group.measureScore``;
* one ``group.stratifier`` per stratifier (``code.text`` the stratifier; an intersection ``a x b``
  has two codes and its strata two ``component`` entries), one ``stratum`` per public row: ``value``
  (text), ``population`` counts and ``measureScore``.

Populations (``http://terminology.hl7.org/CodeSystem/measure-population``) carry the counts the
public table holds, as whole numbers: proportion measures ``denominator`` and ``numerator``; event
rates ``initial-population`` (members with enrolment) and ``numerator`` (events); cost measures
``initial-population`` (members). ``initial-population`` and ``denominator-exclusion`` of proportion
measures are not in the public tables (the whole-population exclusion counts in ``counts/`` are not
suppressed and can be 1-10), so they are not emitted; neither are member-months or dollars, which
are no counts (the score's unit says what the rate is per). ``measureScore`` is the rate on the
published scale (proportions 0-1) with the unit in words; 95% CIs have no element in R4's
MeasureReport and stay in ``public/rates``.

Suppressed cells (``suppressed = true``) carry no count and no score: no ``population``, and a
``measureScore`` holding only the data-absent-reason extension with code ``masked``; a shown cell
without a rate (nobody eligible) gets code ``not-applicable``. See docs/reports.md.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import polars as pl

POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MEASURE_CANONICAL = "urn:equity-pipeline:measure:"
UNIT_SYSTEM = "urn:equity-pipeline:unit:"
#: data-absent-reason codes: a suppressed cell, a shown cell without a rate
MASKED, NOT_APPLICABLE = "masked", "not-applicable"
IMPROVEMENT = {"higher_is_better": "increase", "lower_is_better": "decrease"}
REQUIRED_COLUMNS: tuple[str, ...] = (
    "measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum",
    "members", "denominator", "numerator", "rate", "rate_type", "rate_per", "suppressed", "direction",
)


def _absent(code: str) -> dict[str, Any]:
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": code}]}


def _count(value: Any) -> int | None:
    """A whole, non-negative count, or None (not a count: member-months, dollars, missing)."""
    if value is None or isinstance(value, bool):
        return None
    v = float(value)
    if not math.isfinite(v) or v < 0 or abs(v - round(v)) > 1e-9:
        return None
    return int(round(v))


def populations(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``population`` entries of one public row (empty for a suppressed row)."""
    if row["suppressed"]:
        return []
    rate_type = row.get("rate_type") or "proportion"
    if rate_type == "proportion":
        pairs = [("denominator", row["denominator"]), ("numerator", row["numerator"])]
    elif rate_type in ("per_member_months", "per_member_years"):
        pairs = [("initial-population", row["members"]), ("numerator", row["numerator"])]
    else:  # cost: members only (dollars and member-months are no counts)
        pairs = [("initial-population", row["members"])]
    out = []
    for code, value in pairs:
        n = _count(value)
        if n is not None:
            out.append({"code": {"coding": [{"system": POPULATION_SYSTEM, "code": code}]}, "count": n})
    return out


def score_unit(rate_type: str | None, per: float | None) -> str | None:
    """The measure score's unit in words (None for proportions, scored 0-1)."""
    from equity_pipeline.charts import RateScale

    scale = RateScale.of(rate_type, per)
    if scale.rate_type == "proportion":
        return None
    if scale.rate_type == "share_of_spend":
        return "share of spend (0-1)"
    if scale.is_money:
        return "US dollars per member per month"
    return scale.unit or None


def measure_score(row: dict[str, Any]) -> dict[str, Any]:
    """``measureScore``: the rate as a Quantity, or only a data-absent-reason when suppressed or undefined."""
    if row["suppressed"]:
        return _absent(MASKED)
    rate = row["rate"]
    if rate is None or not math.isfinite(float(rate)):
        return _absent(NOT_APPLICABLE)
    q: dict[str, Any] = {"value": float(rate)}
    unit = score_unit(row.get("rate_type"), row.get("rate_per"))
    if unit:
        q["unit"] = unit
    return q


def _stratum(stratifier: str, row: dict[str, Any]) -> dict[str, Any]:
    names = stratifier.split(" x ")
    values = str(row["stratum"]).split(" | ")
    out: dict[str, Any] = {}
    if len(names) > 1 and len(values) == len(names):
        out["component"] = [{"code": {"text": n}, "value": {"text": v}} for n, v in zip(names, values)]
    else:
        out["value"] = {"text": str(row["stratum"])}
    pops = populations(row)
    if pops:
        out["population"] = pops
    out["measureScore"] = measure_score(row)
    return out


def period_bounds(period: str) -> dict[str, str]:
    """FHIR ``Period`` of a rates ``period``: '2025' -> 2025-01-01..2025-12-31; 'YYYY-MM-DD/YYYY-MM-DD' as given."""
    text = str(period)
    if re.fullmatch(r"\d{4}", text):
        return {"start": f"{text}-01-01", "end": f"{text}-12-31"}
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})", text)
    if m:
        return {"start": m.group(1), "end": m.group(2)}
    raise ValueError(f"period {text!r} is neither a year nor 'YYYY-MM-DD/YYYY-MM-DD'")


def resource_id(measure_id: str, period: str, unit_level: str, unit_id: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) for one measure x period x unit; long ones end in a hash."""
    text = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{measure_id}-{period}-{unit_level}-{unit_id}").strip("-")
    if len(text) <= 64:
        return text
    return f"{text[:47]}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _group_order(sub: str) -> tuple[int, Any]:
    from equity_pipeline.charts import submeasure_sort_key

    return (0, ()) if sub == "all" else (1, submeasure_sort_key(sub))


def measure_reports(rates: pl.DataFrame, *, created_at: str | None = None) -> list[dict[str, Any]]:
    """MeasureReport resources (dicts, FHIR R4 JSON) of the public rates: one per measure x period x
    reporting unit, groups per sub-measure, stratifiers per stratifier (see the module docstring)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in rates.columns]
    if missing:
        raise ValueError(f"rates table lacks columns: {', '.join(missing)}")
    frame = rates.select(REQUIRED_COLUMNS)
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in frame.iter_rows(named=True):
        cells.setdefault((r["measure_id"], str(r["period"]), r["unit_level"], r["unit_id"]), []).append(r)
    level_rank = {"population": 0, "state": 1}
    out = []
    for (mid, period, level, uid) in sorted(cells, key=lambda k: (k[0], k[1], level_rank.get(k[2], 2), k[2], k[3])):
        rows = cells[(mid, period, level, uid)]
        first = rows[0]
        version = next((r["measure_version"] for r in rows if r["measure_version"]), None)
        resource: dict[str, Any] = {
            "resourceType": "MeasureReport",
            "id": resource_id(mid, period, level, uid),
            "status": "complete",
            "type": "summary",
            "measure": f"{MEASURE_CANONICAL}{mid}" + (f"|{version}" if version else ""),
        }
        if level != "population":
            resource["subject"] = {"type": "Group", "identifier": {"system": f"{UNIT_SYSTEM}{level}", "value": str(uid)},
                                   "display": f"{level.replace('_', ' ')} {uid}"}
        if created_at:
            resource["date"] = created_at
        resource["period"] = period_bounds(period)
        if first["direction"] in IMPROVEMENT:
            resource["improvementNotation"] = {"coding": [{"system": IMPROVEMENT_SYSTEM, "code": IMPROVEMENT[first["direction"]]}]}
        groups = []
        for sub in sorted({r["submeasure"] for r in rows}, key=_group_order):
            sub_rows = [r for r in rows if r["submeasure"] == sub]
            group: dict[str, Any] = {"code": {"text": sub}}
            overall = next((r for r in sub_rows if r["stratifier"] == "overall"), None)
            if overall is not None:
                pops = populations(overall)
                if pops:
                    group["population"] = pops
                group["measureScore"] = measure_score(overall)
            stratifiers = []
            for strat in sorted({r["stratifier"] for r in sub_rows if r["stratifier"] != "overall"}):
                strata = sorted((r for r in sub_rows if r["stratifier"] == strat), key=lambda r: str(r["stratum"]))
                stratifiers.append({"code": [{"text": n} for n in strat.split(" x ")],
                                    "stratum": [_stratum(strat, r) for r in strata]})
            if stratifiers:
                group["stratifier"] = stratifiers
            groups.append(group)
        resource["group"] = groups
        out.append(resource)
    return out


def write_measure_reports(path: Path, rates: pl.DataFrame, *, created_at: str | None = None) -> dict[str, int]:
    """Write ``path`` (NDJSON, one MeasureReport per line) atomically; counts for metadata."""
    from equity_pipeline.io import write_text_atomic

    resources = measure_reports(rates, created_at=created_at)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in resources), Path(path))
    strata = [s for r in resources for g in r["group"] for st in g.get("stratifier", []) for s in st["stratum"]]
    masked = sum(any(e.get("valueCode") == MASKED for e in s["measureScore"].get("extension", [])) for s in strata)
    return {"resources": len(resources), "strata": len(strata), "strata_masked": masked}


__all__ = ["DATA_ABSENT_REASON", "MASKED", "POPULATION_SYSTEM", "measure_reports", "measure_score", "period_bounds",
           "populations", "resource_id", "write_measure_reports"]
