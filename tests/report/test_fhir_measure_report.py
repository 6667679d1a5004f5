"""public/fhir/measure_reports.ndjson (report.fhir_measure_report): the public rates as FHIR R4
MeasureReport resources, checked against the R4B models of fhir.resources (R4B's MeasureReport has
R4's elements) and against the hand-built rates frame, suppressed cells carrying no count or score."""
from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from fhir.resources.R4B.measurereport import MeasureReport

from equity_pipeline.report.fhir_measure_report import (
    DATA_ABSENT_REASON,
    POPULATION_SYSTEM,
    measure_reports,
    period_bounds,
    resource_id,
    write_measure_reports,
)
from tests.report.frames import frame, row

POPULATION_CODES = {"initial-population", "numerator", "denominator", "denominator-exclusion", "measure-population"}


def rates() -> pl.DataFrame:
    """BCS-E (proportion) for all members with race, an intersection and a sub-measure, and for MD;
    ED (events per 1,000 member-months). The suppressed Asian row (wrongly) still holds numbers."""
    rows = [
        row("BCS-E", "overall", "all", 400, 260, (0.60, 0.69)),
        row("BCS-E", "race_ethnicity", "White", 250, 175, (0.64, 0.75)),
        row("BCS-E", "race_ethnicity", "Black or African American", 130, 78, (0.51, 0.68)),
        row("BCS-E", "race_ethnicity", "Unknown", None),
        row("BCS-E", "race_ethnicity x rurality", "White | Metro", 150, 100, (0.59, 0.74)),
        row("BCS-E", "race_ethnicity x rurality", "White | Rural", None),
        row("BCS-E", "overall", "all", 170, 105, (0.54, 0.69), submeasure="50-64"),
        row("BCS-E", "race_ethnicity", "White", 90, 60, (0.56, 0.75), submeasure="50-64"),
        row("BCS-E", "overall", "all", 210, 140, (0.60, 0.73), unit="MD"),
        row("BCS-E", "race_ethnicity", "White", None, unit="MD"),
        row("ED", "overall", "all", 5987.5, 180.0, (25.8, 34.8), members=520),
        row("ED", "race_ethnicity", "White", 3100.25, 70.0, (17.6, 28.5), members=270),
    ]
    asian = {**row("BCS-E", "race_ethnicity", "Asian", None), "members": 17, "denominator": 17.0, "numerator": 9.0,
             "rate": 9 / 17, "ci_lower": 0.31, "ci_upper": 0.74}
    return frame([*rows, asian])


@pytest.fixture(scope="module")
def reports() -> list[dict]:
    return measure_reports(rates(), created_at="2026-01-10T08:00:00+00:00")


def _pops(entry: dict) -> dict[str, int]:
    out = {}
    for p in entry.get("population", []):
        (coding,) = p["code"]["coding"]
        assert coding["system"] == POPULATION_SYSTEM and coding["code"] in POPULATION_CODES
        out[coding["code"]] = p["count"]
    return out


def _no_empty(value, where: str = "$") -> None:
    """FHIR JSON has no empty arrays, objects or strings, and no nulls."""
    assert value not in ([], {}, "", None), where
    if isinstance(value, dict):
        for k, v in value.items():
            _no_empty(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_empty(v, f"{where}[{i}]")


def _masked(score: dict) -> bool:
    return score == {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}


def test_resources_are_valid_r4_measure_reports(reports: list[dict]) -> None:
    assert [r["id"] for r in reports] == ["BCS-E-2024-population-all", "BCS-E-2024-state-MD", "ED-2024-population-all"]
    for r in reports:
        MeasureReport.model_validate(r)  # raises on a wrong element, type or cardinality
        _no_empty(r)
        assert (r["resourceType"], r["status"], r["type"]) == ("MeasureReport", "complete", "summary")
        assert r["period"] == {"start": "2024-01-01", "end": "2024-12-31"}
        assert r["date"] == "2026-01-10T08:00:00+00:00"
    bcs, md, ed = reports
    assert bcs["measure"] == "urn:equity-pipeline:measure:BCS-E|2025.1" and "subject" not in bcs
    assert md["subject"]["identifier"] == {"system": "urn:equity-pipeline:unit:state", "value": "MD"}
    assert bcs["improvementNotation"]["coding"][0]["code"] == "increase"
    assert ed["improvementNotation"]["coding"][0]["code"] == "decrease"


def test_counts_and_scores_match_the_public_rates(reports: list[dict]) -> None:
    frame_ = rates()
    by_id = {r["id"]: r for r in reports}
    bcs = by_id["BCS-E-2024-population-all"]
    assert [g["code"]["text"] for g in bcs["group"]] == ["all", "50-64"]
    checked = 0
    for resource in reports:
        mid, level, uid = resource["id"].split("-2024-")[0], *resource["id"].split("-2024-")[1].split("-", 1)
        for group in resource["group"]:
            sub = group["code"]["text"]
            cell = frame_.filter((pl.col("measure_id") == mid) & (pl.col("unit_id") == uid) & (pl.col("submeasure") == sub))
            overall = cell.filter(pl.col("stratifier") == "overall").row(0, named=True)
            strata = [(s["code"], st) for s in group.get("stratifier", []) for st in s["stratum"]]
            assert len(strata) == cell.height - 1  # every non-overall row is a stratum
            for entry, r in [(group, overall)] + [
                    (st, cell.filter((pl.col("stratifier") == " x ".join(c["text"] for c in code))
                                     & (pl.col("stratum") == (st["value"]["text"] if "value" in st else
                                                              " | ".join(c["value"]["text"] for c in st["component"])))).row(0, named=True))
                    for code, st in strata]:
                checked += 1
                if r["suppressed"]:
                    assert "population" not in entry and _masked(entry["measureScore"]), r
                    continue
                assert entry["measureScore"]["value"] == r["rate"]
                if r["rate_type"] == "proportion":
                    assert _pops(entry) == {"denominator": int(r["denominator"]), "numerator": int(r["numerator"])}
                    assert "unit" not in entry["measureScore"]
                else:  # events: people and events are counts; member-months are not
                    assert _pops(entry) == {"initial-population": r["members"], "numerator": int(r["numerator"])}
                    assert entry["measureScore"]["unit"] == "per 1,000 member-months"
    assert checked == rates().height


def test_suppressed_cells_carry_nothing(reports: list[dict]) -> None:
    text = json.dumps(reports)
    bcs = reports[0]
    race = next(s for s in bcs["group"][0]["stratifier"] if s["code"] == [{"text": "race_ethnicity"}])
    asian = next(st for st in race["stratum"] if st["value"]["text"] == "Asian")
    assert asian == {"value": {"text": "Asian"}, "measureScore": {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}}
    compact = text.replace(" ", "")
    assert str(9 / 17) not in text and str(0.31) not in text
    assert not re.search(r'"count":(17|9)[,}]', compact)  # the suppressed row's members, denominator, numerator
    md_white = reports[1]["group"][0]["stratifier"][0]["stratum"][0]
    assert md_white["value"]["text"] == "White" and "population" not in md_white and _masked(md_white["measureScore"])


def test_intersection_strata_have_components(reports: list[dict]) -> None:
    inter = next(s for s in reports[0]["group"][0]["stratifier"] if len(s["code"]) == 2)
    assert inter["code"] == [{"text": "race_ethnicity"}, {"text": "rurality"}]
    metro = inter["stratum"][0]
    assert metro["component"] == [{"code": {"text": "race_ethnicity"}, "value": {"text": "White"}},
                                  {"code": {"text": "rurality"}, "value": {"text": "Metro"}}]
    assert _pops(metro) == {"denominator": 150, "numerator": 100}


def test_ndjson_file(tmp_path: Path) -> None:
    path = tmp_path / "public" / "fhir" / "measure_reports.ndjson"
    counts = write_measure_reports(path, rates(), created_at="2026-01-10T08:00:00+00:00")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == counts["resources"] == 3
    assert [json.loads(line) for line in lines] == measure_reports(rates(), created_at="2026-01-10T08:00:00+00:00")
    suppressed = rates().filter(pl.col("suppressed") & (pl.col("stratifier") != "overall")).height
    assert counts["strata_masked"] == suppressed and counts["strata"] == rates().filter(pl.col("stratifier") != "overall").height


def test_periods_and_ids() -> None:
    assert period_bounds("2025-07-01/2026-06-30") == {"start": "2025-07-01", "end": "2026-06-30"}
    with pytest.raises(ValueError, match="neither a year"):
        period_bounds("FY25")
    long = resource_id("PRIMARY_CARE_SHARE", "2025-07-01/2026-06-30", "region", "Capital Region and Eastern Shore")
    assert len(long) <= 64 and long.startswith("PRIMARY-CARE-SHARE-2025-07-01-2026-06-30")
    assert MeasureReport.model_validate({"resourceType": "MeasureReport", "id": long, "status": "complete", "type": "summary",
                                         "measure": "urn:x", "period": {"start": "2025-07-01"}}).id == long
