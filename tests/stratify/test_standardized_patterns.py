"""The standardised rates' O/E logistic models fitted on covariate patterns, and the comorbidity
count read from the look-back window only (docs/performance.md).

Independent figures: the per-row logistic fit (``measures.readmission.fit_expected``, statsmodels on
one row per member) on the same members, which the pattern fit must reproduce up to floating-point
summation order (relative 1e-9); the c-statistic by brute force over all event/non-event pairs; the
comorbidity counts worked out by hand from dated claim lines around the window edges.
"""
from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from equity_pipeline import pipeline
from equity_pipeline import standardized as st
from equity_pipeline.measures.readmission import c_statistic_weighted, fit_expected, fit_expected_cells

MODEL = {"age_bands": [18, 45, 55], "sex": True, "comorbidities": True, "comorbidity_cap": 4, "min_events": 10}
REL = 1e-9


def _stays(n: int, seed: int, *, slope: float = 0.4) -> pl.DataFrame:
    """Rows (age, sex, comorbidities, readmitted) with readmission odds rising with age band, male sex
    and comorbidities."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    male = rng.random(n) < 0.45
    com = rng.poisson(1.2, n)
    logit = -1.6 + 0.3 * (age >= 45) + 0.5 * (age >= 55) + 0.2 * male + slope * np.minimum(com, 4)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pl.DataFrame({"age": age.astype(np.int32), "sex": np.where(male, "M", "F"), "comorbidities": com.astype(np.int64),
                         "readmitted": y})


def _cells(stays: pl.DataFrame) -> pl.DataFrame:
    return (stays.group_by("age", "sex", "comorbidities").agg(n=pl.len(), events=pl.col("readmitted").sum())
            .sort("age", "sex", "comorbidities"))


def _per_row(stays: pl.DataFrame, cells: pl.DataFrame, p_cells: np.ndarray) -> np.ndarray:
    """The cells' predictions spread back onto the rows of ``stays`` (row order kept)."""
    lookup = cells.select("age", "sex", "comorbidities", _p=pl.Series(p_cells, dtype=pl.Float64))
    return stays.join(lookup, on=["age", "sex", "comorbidities"], how="left", maintain_order="left")["_p"].to_numpy()


def test_pattern_fit_equals_the_per_row_fit():
    stays = _stays(6000, 7)
    cells = _cells(stays)
    assert cells.height < stays.height / 5   # the point: fewer rows to fit (at scale: a few hundred patterns, millions of rows)
    p_row, s_row = fit_expected(stays, MODEL)
    p_cell, s_cell = fit_expected_cells(cells, MODEL)
    assert s_row["method"] == s_cell["method"] == "logistic"
    assert s_cell["covariates"] == s_row["covariates"] and s_cell["stays"] == 6000 and s_cell["readmissions"] == s_row["readmissions"]
    np.testing.assert_allclose(_per_row(stays, cells, p_cell), p_row, rtol=REL, atol=0)
    for part in ("coefficients", "std_errors"):   # rounded to 6 decimals in the summary: at most one unit apart
        assert s_cell[part].keys() == s_row[part].keys()
        for name, value in s_row[part].items():
            assert s_cell[part][name] == pytest.approx(value, abs=1.01e-6)
    assert s_cell["c_statistic"] == pytest.approx(s_row["c_statistic"], abs=1.01e-4)
    assert s_cell["expected"] == pytest.approx(s_row["expected"], rel=REL)
    # in-sample the logistic model reproduces the total: sum of n * p = events
    assert float((p_cell * cells["n"].to_numpy()).sum()) == pytest.approx(float(stays["readmitted"].sum()), rel=1e-8)


def test_pattern_fit_fallbacks_are_the_per_row_ones():
    few = _stays(60, 3).with_columns(readmitted=pl.int_range(pl.len()) < 5)   # 5 events: too few
    for stays in (few, few.with_columns(sex=pl.lit("F"), age=pl.lit(30, dtype=pl.Int32), comorbidities=pl.lit(0, dtype=pl.Int64))):
        p_row, s_row = fit_expected(stays, MODEL)
        cells = _cells(stays)
        p_cell, s_cell = fit_expected_cells(cells, MODEL)
        assert s_cell == s_row and s_cell["method"] == "intercept_only"
        np.testing.assert_array_equal(_per_row(stays, cells, p_cell), p_row)
    # comorbidity separates the outcome perfectly: both fits fail the same way
    rng = np.random.default_rng(1)
    com = rng.integers(0, 2, 400)
    sep = pl.DataFrame({"age": rng.integers(20, 80, 400).astype(np.int32), "sex": np.where(rng.random(400) < 0.5, "M", "F"),
                        "comorbidities": com.astype(np.int64), "readmitted": com == 1})
    _, s_row = fit_expected(sep, MODEL)
    _, s_cell = fit_expected_cells(_cells(sep), MODEL)
    assert s_row["method"] == s_cell["method"] == "intercept_only"
    assert s_cell["reason"] == s_row["reason"] and s_cell["reason"].startswith("logistic fit failed")


def test_weighted_c_statistic_by_brute_force():
    p = np.array([0.1, 0.1, 0.2, 0.3, 0.3, 0.5])
    y = np.array([0, 1, 0, 1, 0, 1])
    w = np.array([3.0, 2.0, 4.0, 1.0, 2.0, 5.0])
    rows_p, rows_y = np.repeat(p, w.astype(int)), np.repeat(y, w.astype(int))
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a, ya in zip(rows_p, rows_y) if ya for b, yb in zip(rows_p, rows_y) if not yb]
    assert c_statistic_weighted(p, y, w) == pytest.approx(sum(pairs) / len(pairs), rel=1e-12)
    assert c_statistic_weighted(p, np.ones(6), w) is None


def _members(stays: pl.DataFrame) -> pl.DataFrame:
    """``stays`` as BCS member rows of one state with a race/ethnicity stratum."""
    n = stays.height
    return stays.with_columns(member_id=pl.format("M{}", pl.int_range(n).cast(pl.String).str.zfill(6)),
                              _sex=pl.when(pl.col("sex") == "M").then(pl.lit("Male")).otherwise(pl.lit("Female")))


def test_expected_values_equal_a_per_row_fit_on_member_rows():
    """standardized.expected_values (the O/E of proportions): each member row's expected equals the
    probability of a logistic model fitted on every member row, with and without the comorbidity term;
    a member without age gets none."""
    stays = _members(_stays(5000, 11))
    bands = st.DEFAULT_AGE_BANDS
    base = stays.select("member_id", measure_id=pl.lit("BCS"), submeasure=pl.lit("all"), age="age", _sex="_sex",
                        numerator_value=pl.col("readmitted").cast(pl.Float64), denominator_value=pl.lit(1.0),
                        _comorbidities="comorbidities", _band=st.band_of(pl.col("age"), bands))
    base = base.with_columns(age=pl.when(pl.int_range(pl.len()) == 17).then(None).otherwise(pl.col("age")))
    for cap in (2, None):
        out, models = st.expected_values(base, {"BCS": "proportion"}, bands, cap)
        got = out.sort("member_id")
        aged = stays.filter(pl.int_range(pl.len()) != 17)
        present = [b for b, nxt in zip(bands, [*bands[1:], None]) if ((aged["age"] >= b) & ((aged["age"] < nxt) if nxt else True)).any()]
        want, summary = fit_expected(aged, {"age_bands": present, "sex": True, "comorbidities": cap is not None,
                                            "comorbidity_cap": cap or 4, "min_events": 10})
        assert summary["method"] == "logistic" and models["BCS/all"]["method"] == "logistic"
        assert got["_expected"][17] is None
        np.testing.assert_allclose(got.filter(pl.int_range(pl.len()) != 17)["_expected"].to_numpy(), want, rtol=REL, atol=0)
        assert ("comorbidities" in models["BCS/all"]["coefficients"]) == (cap is not None)


def _claims_only_layout(tmp_path, lines):
    """(claim lines: member, claim_from_date, dx1, dx2; an output layout with no observations and no
    fills, and the pharmacy adjudication file as build_events leaves it before the standardised rates)."""
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.measures.extract import write_adjudication

    claims = pl.DataFrame(lines, schema={"member_id": pl.String, "claim_from_date": pl.Date, "diagnosis_code_1": pl.String,
                                         "diagnosis_code_2": pl.String}, orient="row")
    layout = OutputLayout(tmp_path)
    (tmp_path / "restricted" / "tables").mkdir(parents=True)
    pl.DataFrame(schema={"member_id": pl.String, "observation_date": pl.Date, "loinc_code": pl.String, "value_numeric": pl.Float64}).write_parquet(
        layout.table("clinical_observations"))
    pl.DataFrame(schema={"_row": pl.UInt32, "member_id": pl.String, "fill_date": pl.Date, "ndc": pl.String, "claim_id": pl.String,
                         "claim_version": pl.Int64, "claim_status": pl.String}).write_parquet(layout.table("pharmacy_claims"))
    write_adjudication(pl.scan_parquet(layout.table("pharmacy_claims")), layout.pharmacy_adjudication)
    return claims, layout


def test_comorbidities_count_the_look_back_window_only(tmp_path, monkeypatch):
    """standardization_comorbidities reads only the claim lines dated in the year before the period
    end; the count is per member of the list given, distinct value sets, 0 without any."""
    from equity_pipeline.config import config_from_dict

    config = config_from_dict({"measurement_year": 2025, "run_date": "2026-06-30"})
    end = config.period.end
    assert end == date(2025, 12, 31)
    start = date(2024, 12, 31)   # 365 days before the end: the first day counted
    lines = [  # member, date, dx1, dx2
        ("A", date(2025, 6, 1), "E119", "J449"),      # diabetes + COPD in the window: 2
        ("A", date(2025, 7, 1), "E110", None),        # diabetes again: still 2
        ("A", date(2024, 12, 30), "I509", None),      # heart failure one day before the window: not counted
        ("B", start, None, "I509"),                   # on the first day: 1
        ("B", date(2026, 1, 1), "J449", None),        # after the end: not counted
        ("C", date(2023, 5, 1), "E119", None),        # only long before: 0
        ("D", end, "Z000", "E119"),                   # on the last day, second column: 1
        ("X", date(2025, 3, 1), "E119", None),        # not in the member list
    ]
    claims, layout = _claims_only_layout(tmp_path, lines)
    monkeypatch.setattr(pipeline, "final_medical_claims", lambda lay: claims.lazy(), raising=False)
    members = pl.DataFrame({"member_id": ["A", "B", "C", "D", "E"]})
    counts, info = pipeline.standardization_comorbidities(layout, config, members)
    assert dict(counts.sort("member_id").iter_rows()) == {"A": 2, "B": 1, "C": 0, "D": 1, "E": 0}
    assert info["lookback_days"] == 365 and info["period_end"] == "2025-12-31"
    json.dumps(info)   # metadata stays plain data (no ids)


def test_comorbidities_from_the_runs_coded_events_equal_the_extraction(tmp_path, monkeypatch):
    """When restricted/events.parquet says (in its footer) that it holds the comorbidity value sets, the
    counts come from its events in the look-back window, without reading the claim lines again: the
    same counts as the extraction. A file that does not hold them all is not used."""
    from equity_pipeline.config import config_from_dict
    from equity_pipeline.events import value_set_frame
    from equity_pipeline.io import sink_parquet_atomic
    from equity_pipeline.measures.extract import claim_events
    from equity_pipeline.measures.spec import load_specs

    config = config_from_dict({"measurement_year": 2025, "run_date": "2026-06-30"})
    lines = [("A", date(2025, 6, 1), "E119", "J449"), ("A", date(2024, 12, 30), "I509", None), ("B", date(2024, 12, 31), None, "I509"),
             ("B", date(2026, 1, 1), "J449", None), ("C", date(2023, 5, 1), "E119", None), ("D", date(2025, 12, 31), "Z000", "E119"),
             ("D", date(2025, 2, 1), "F329", "C50911")]
    claims, layout = _claims_only_layout(tmp_path, lines)
    reads = []
    monkeypatch.setattr(pipeline, "final_medical_claims", lambda lay: reads.append(1) or claims.lazy(), raising=False)
    members = pl.DataFrame({"member_id": ["A", "B", "C", "D", "E"]})
    extracted, _ = pipeline.standardization_comorbidities(layout, config, members)
    assert dict(extracted.sort("member_id").iter_rows()) == {"A": 2, "B": 1, "C": 0, "D": 3, "E": 0} and reads == [1]

    held = set(load_specs()["PCR"].event_value_set_names)  # what build_events writes when PCR is configured
    every_date = claim_events(claims.lazy(), value_set_frame(held))
    sink_parquet_atomic({layout.events: every_date}, metadata={layout.events: {pipeline.EVENTS_VALUE_SETS: json.dumps(sorted(held))}})
    assert pipeline.events_value_sets(layout) == held
    reads.clear()
    from_events, _ = pipeline.standardization_comorbidities(layout, config, members)
    assert reads == [] and from_events.sort("member_id").equals(extracted.sort("member_id"))

    # a file without every comorbidity value set (PCR not configured) is not used
    sink_parquet_atomic({layout.events: every_date}, metadata={layout.events: {pipeline.EVENTS_VALUE_SETS: json.dumps(["diabetes"])}})
    again, _ = pipeline.standardization_comorbidities(layout, config, members)
    assert reads == [1] and again.sort("member_id").equals(extracted.sort("member_id"))
