"""Tiny frames for measure tests: members, enrollment spans and claim lines by hand."""
from __future__ import annotations

from datetime import date

import polars as pl

from equity_pipeline.events import claim_events, observation_events, value_set_frame
from equity_pipeline.measures.engine import evaluate
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.periods import MeasurementPeriod

MY = MeasurementPeriod.calendar_year(2025)
CLAIM_SCHEMA = {"member_id": pl.String, "claim_from_date": pl.Date, "hcpcs_code": pl.String, "revenue_code": pl.String,
                "place_of_service": pl.String, "diagnosis_code_1": pl.String, "procedure_code_1": pl.String, "snomed_code": pl.String}


def person(mid: str, birth: date = date(1965, 5, 1), sex: str = "F", death: date | None = None) -> dict:
    return {"member_id": mid, "sex": sex, "birth_date": birth, "death_date": death}


def covered(mid: str, start=date(2014, 1, 1), end=None, payer="commercial", dual="none") -> dict:
    return {"member_id": mid, "payer": payer, "line_of_business": "x", "dual_status": dual, "enrollment_start": start, "enrollment_end": end}


def line(mid: str, d: date, hcpcs=None, rev=None, dx=None, pcs=None, pos="11", snomed=None) -> dict:
    return {"member_id": mid, "claim_from_date": d, "hcpcs_code": hcpcs, "revenue_code": rev, "place_of_service": pos,
            "diagnosis_code_1": dx, "procedure_code_1": pcs, "snomed_code": snomed}


def run(measure_id: str, members: list[dict], spans: list[dict], claims: list[dict], observations: list[dict] | None = None):
    spec = load_specs()[measure_id]
    m = pl.DataFrame(members, schema={"member_id": pl.String, "sex": pl.String, "birth_date": pl.Date, "death_date": pl.Date})
    e = pl.DataFrame(spans, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                                     "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    c = pl.DataFrame(claims, schema=CLAIM_SCHEMA)
    o = pl.DataFrame(observations or [], schema={"member_id": pl.String, "observation_date": pl.Date, "loinc_code": pl.String, "value_numeric": pl.Float64})
    codes = value_set_frame(spec.value_set_names)
    events = pl.concat([claim_events(c.lazy(), codes), observation_events(o.lazy(), codes)])
    return evaluate(spec, MY, m.lazy(), e.lazy(), events)
