"""Encounters and readmission pairing on Tuva's synthetic ICD-10 payer claims (../shared/realdata).

The Tuva medical claim seed is mapped to the canonical ``medical_claims`` columns with the mapping of
tests/validation/test_realdata.py, read through the real ingest (validation, typing) and claim
adjudication, then :func:`encounters.inpatient_stays`, :func:`encounters.ed_visits` and
:func:`readmission.readmissions` (PCR's rule: 30 days, planned readmissions left out) are compared
with counts done here in plain polars on Tuva's own column names:

* inpatient stay: institutional claim with ``bill_type_code`` 11x; stay = member + admission and
  discharge date (``admission_date``/``discharge_date``, else the claim's start/end date, which Tuva
  leaves the only dates on some lines). Our rule also merges stays that touch (admission on or the
  day after a discharge: transfers); the count of such merges is computed here independently and is
  0 on this file, so the stay sets are equal as they are.
* ED visit: a line with ``revenue_center_code`` 0450-0459 / 0981 or ``place_of_service_code`` 23,
  one per member and ``claim_start_date``, less those followed by an admission the same or the next
  day (they resulted in the stay). Our code also takes CPT 99281-99285; on this file every such
  line already has revenue code 0450 or POS 23, so the counts are equal.
* readmission: a stay whose discharge is followed by another stay of the member admitted 1-30 days
  later. Tuva leaves ``diagnosis_code_1`` empty on most inpatient claims and has no ICD-10-PCS
  procedures, so no readmission can be recognised as planned: the PCR rule and the plain rule agree.
"""
from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from tests.validation.conftest import REALDATA

TUVA = REALDATA / "claims" / "tuva_synthetic_claims"
pytestmark = pytest.mark.skipif(
    not (TUVA / "medical_claim_seed.csv").is_file(),
    reason=f"Tuva synthetic claims not found at {TUVA} (expected ../shared/realdata next to the repo)",
)

ED_REVENUE = [f"045{i}" for i in range(10)] + ["0981"]
#: what this file holds (checked so that a changed seed is noticed, not silently re-baselined)
EXPECTED = {"stays": 6, "ed_visits": 22, "readmitted_stays": 1}


@pytest.fixture(scope="module")
def pipeline_lines(tmp_path_factory) -> pl.DataFrame:
    """Tuva medical claims -> canonical CSV -> ingest (validation + typing) -> final claim lines."""
    from equity_pipeline.claims import final_claims
    from equity_pipeline.validation.ingest import ingest_table
    from tests.validation.test_realdata import PARAMS, canonical

    tmp = tmp_path_factory.mktemp("tuva")
    inp = tmp / "input"
    inp.mkdir()
    canonical(REALDATA, "medical_claims").write_csv(inp / "medical_claims.csv")
    members = canonical(REALDATA, "enrollment").select("member_id").lazy()
    result = ingest_table("medical_claims", inp, tmp / "restricted", parameters=PARAMS, known_members=members)
    # Every line passes: Tuva's 8 lines with type of bill "13I" (hospital outpatient, Medicare letter
    # frequency code I = intermediary adjustment) are valid bill types (suite 2026.2).
    assert result.rule_counts == {}, result.rule_counts
    assert result.quarantined == 0 and result.used == result.read
    return final_claims(pl.scan_parquet(tmp / "restricted" / "tables" / "medical_claims.parquet")).collect()


@pytest.fixture(scope="module")
def tuva() -> pl.DataFrame:
    return pl.read_csv(TUVA / "medical_claim_seed.csv", infer_schema=False)


def _date(col: str) -> pl.Expr:
    return pl.col(col).str.to_date("%Y-%m-%d")


def independent_stays(tuva: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Stays by member + admission/discharge dates from Tuva's fields, and how many of them touch
    the member's previous stay (admitted on or the day after its discharge)."""
    per_claim = (
        tuva.filter((pl.col("claim_type") == "institutional") & pl.col("bill_type_code").str.starts_with("11"))
        .group_by("claim_id").agg(
            pl.col("member_id").first(),
            admit=pl.coalesce(_date("admission_date"), _date("claim_start_date")).min(),
            discharge=pl.coalesce(_date("discharge_date"), _date("claim_end_date")).max(),
        )
    )
    stays = per_claim.select("member_id", "admit", "discharge").unique().sort("member_id", "admit")
    touching, last = 0, {}
    for member, admit, discharge in stays.iter_rows():
        if member in last and admit <= last[member] + timedelta(days=1):
            touching += 1
        last[member] = max(discharge, last.get(member, discharge))
    return stays, touching


def independent_ed_visits(tuva: pl.DataFrame, stays: pl.DataFrame) -> pl.DataFrame:
    ed = tuva.filter(pl.col("revenue_center_code").is_in(ED_REVENUE) | (pl.col("place_of_service_code") == "23"))
    days = ed.select("member_id", visit=_date("claim_start_date")).unique()
    admitted = days.join(stays, on="member_id").filter(
        (pl.col("admit") >= pl.col("visit")) & (pl.col("admit") <= pl.col("visit") + pl.duration(days=1))
    ).select("member_id", "visit").unique()
    return days.join(admitted, on=["member_id", "visit"], how="anti").sort("member_id", "visit")


def independent_readmissions(stays: pl.DataFrame) -> pl.DataFrame:
    """Index stays (member, discharge) followed by another stay admitted 1-30 days after discharge."""
    later = stays.select("member_id", readmit="admit")
    return (
        stays.join(later, on="member_id")
        .filter((pl.col("readmit") >= pl.col("discharge") + pl.duration(days=1))
                & (pl.col("readmit") <= pl.col("discharge") + pl.duration(days=30)))
        .group_by("member_id", "discharge").agg(pl.col("readmit").min())
        .sort("member_id", "discharge")
    )


def test_inpatient_stays_match_tuva(pipeline_lines, tuva):
    from equity_pipeline.encounters import inpatient_stays

    ours = inpatient_stays(pipeline_lines.lazy()).collect()
    stays, touching = independent_stays(tuva)
    assert touching == 0  # no transfers to merge on this file: the raw stays are our stays
    assert ours.height == stays.height - touching == EXPECTED["stays"]
    got = ours.select("member_id", admit="admit_date", discharge="discharge_date").sort("member_id", "admit")
    assert got.to_dicts() == stays.to_dicts()


def test_ed_visits_match_tuva(pipeline_lines, tuva):
    from equity_pipeline.encounters import ED_CPT, ed_visits, inpatient_stays

    # every CPT 99281-99285 line (which only our rule uses) is also caught by revenue code or POS 23
    cpt_only = tuva.filter(pl.col("hcpcs_code").is_in(ED_CPT) & ~pl.col("revenue_center_code").is_in(ED_REVENUE).fill_null(False)
                           & (pl.col("place_of_service_code") != "23").fill_null(True))
    assert cpt_only.height == 0
    stays, _ = independent_stays(tuva)
    expected = independent_ed_visits(tuva, stays)
    ours = ed_visits(pipeline_lines.lazy(), inpatient_stays(pipeline_lines.lazy())).collect()
    assert ours.height == expected.height == EXPECTED["ed_visits"]
    assert ours.select("member_id", visit="visit_date").sort("member_id", "visit").to_dicts() == expected.to_dicts()
    # 29 ED visit-days in all; 7 resulted in a stay: the revenue 0450 lines of 4 inpatient claims
    # (dated on the admission day) and the POS 23 visits the day before 3 of those admissions
    all_days = tuva.filter(pl.col("revenue_center_code").is_in(ED_REVENUE) | (pl.col("place_of_service_code") == "23")) \
        .select("member_id", "claim_start_date").unique().height
    assert (all_days, all_days - expected.height) == (29, 7)


def test_readmission_pairs_match_tuva(pipeline_lines, tuva):
    from equity_pipeline.encounters import inpatient_stays
    from equity_pipeline.events import value_set_frame
    from equity_pipeline.measures.extract import claim_events
    from equity_pipeline.measures.readmission import readmissions
    from equity_pipeline.measures.spec import load_specs

    spec = load_specs()["PCR"]
    rule = spec.counting["readmission"]
    assert rule["within_days"] == 30
    lines = pipeline_lines.lazy()
    stays = inpatient_stays(lines).collect()
    events = claim_events(lines, value_set_frame(spec.value_set_names)).collect()
    ours = readmissions(stays.lazy(), stays.lazy(), events.lazy(), rule).collect()
    plain = readmissions(stays.lazy(), stays.lazy(), events.lazy(), {"within_days": 30}).collect()
    expected = independent_readmissions(independent_stays(tuva)[0])
    assert ours.height == plain.height == expected.height == EXPECTED["readmitted_stays"]
    got = ours.join(stays.select("member_id", "stay_id", "discharge_date"), on=["member_id", "stay_id"]).select(
        "member_id", discharge="discharge_date", readmit="readmit_date").sort("member_id", "discharge")
    assert got.to_dicts() == expected.to_dicts()
