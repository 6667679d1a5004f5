"""Tiny frames for measure tests: members, enrollment spans and claim lines by hand."""
from __future__ import annotations

from datetime import date

import polars as pl

from equity_pipeline.events import observation_events, value_set_frame
from equity_pipeline.measures.extract import claim_events  # the production path (events.claim_events is its oracle in test_extract)
from equity_pipeline.measures.engine import evaluate
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.periods import MeasurementPeriod

MY = MeasurementPeriod.calendar_year(2025)
CLAIM_SCHEMA = {"member_id": pl.String, "claim_from_date": pl.Date, "hcpcs_code": pl.String, "revenue_code": pl.String,
                "place_of_service": pl.String, "diagnosis_code_1": pl.String, "procedure_code_1": pl.String, "snomed_code": pl.String,
                "bill_type": pl.String}


def person(mid: str, birth: date = date(1965, 5, 1), sex: str = "F", death: date | None = None) -> dict:
    return {"member_id": mid, "sex": sex, "birth_date": birth, "death_date": death}


def covered(mid: str, start=date(2014, 1, 1), end=None, payer="commercial", dual="none") -> dict:
    return {"member_id": mid, "payer": payer, "line_of_business": "x", "dual_status": dual, "enrollment_start": start, "enrollment_end": end}


def line(mid: str, d: date, hcpcs=None, rev=None, dx=None, pcs=None, pos="11", snomed=None, bill_type=None) -> dict:
    return {"member_id": mid, "claim_from_date": d, "hcpcs_code": hcpcs, "revenue_code": rev, "place_of_service": pos,
            "diagnosis_code_1": dx, "procedure_code_1": pcs, "snomed_code": snomed, "bill_type": bill_type}


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


# ---------------- readmission measures (kind: readmission) need institutional claims with stay dates
STAY_SCHEMA = {**CLAIM_SCHEMA, "claim_id": pl.String, "claim_line": pl.Int64, "claim_type": pl.String,
               "admit_date": pl.Date, "discharge_date": pl.Date, "claim_thru_date": pl.Date, "discharge_status": pl.String,
               "facility_ccn": pl.String, "payer": pl.String, "paid_amount": pl.Float64}
_stay_ids = iter(range(1, 1_000_000))


def stay(mid: str, admit: date, discharge: date, dx: str = "J189", status: str = "01", pcs: str | None = None, bill_type: str = "111") -> dict:
    """One institutional inpatient claim line (type of bill 111) for a stay."""
    return {**line(mid, admit, dx=dx, pcs=pcs, pos=None, bill_type=bill_type), "claim_id": f"S{next(_stay_ids):06d}", "claim_line": 1,
            "claim_type": "institutional", "admit_date": admit, "discharge_date": discharge,
            "claim_thru_date": discharge, "discharge_status": status, "facility_ccn": "220071", "payer": "commercial", "paid_amount": 1000.0}


def run_readmission(measure_id: str, members: list[dict], spans: list[dict], claims: list[dict]):
    """Evaluate a readmission spec; ``claims`` mixes :func:`stay` lines and plain :func:`line` dicts."""
    from equity_pipeline.measures.readmission import evaluate_readmission

    spec = load_specs()[measure_id]
    m = pl.DataFrame(members, schema={"member_id": pl.String, "sex": pl.String, "birth_date": pl.Date, "death_date": pl.Date})
    e = pl.DataFrame(spans, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                                     "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    rows = [{**{k: None for k in STAY_SCHEMA}, "claim_type": "professional", "claim_line": 1, **c} for c in claims]
    for i, r in enumerate(rows):
        r["claim_id"] = r["claim_id"] or f"P{i:06d}"
    c = pl.DataFrame(rows, schema=STAY_SCHEMA)
    events = claim_events(c.lazy(), value_set_frame(spec.value_set_names))
    return evaluate_readmission(spec, MY, m.lazy(), e.lazy(), c.lazy(), events)
