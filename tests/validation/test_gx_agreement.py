"""GX 1.x and the polars evaluator count the same failing rows for every expectation of every suite.

Frames: hand-made text tables with a planted defect for every row-level expectation (``planted.py``)
plus the edge cases where the engines are known to differ; and, when the generator is available, a
generated dataset. The edge cases (strptime's exact date grammar, date-typed bounds and pairs, NaN
as missing) are where a naive polars evaluator would differ from GX; ``rules.failure_expr`` must
agree on every one of them.
"""
from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation import gx_runner
from equity_pipeline.validation.rules import failure_expr, row_rules
from tests.validation import planted

def _row_rule_params() -> list:
    params = []
    for table in TABLES:
        for i, e in enumerate(load_suite(table).expectations):
            if e["type"] in gx_runner.STRUCTURAL_TYPES:
                continue
            params.append(pytest.param(table, i, id=f"{table}-{i}-{e['meta']['rule']}"))
    return params


def prepared(table: str, raw: pl.DataFrame, known: pl.LazyFrame | None) -> pl.DataFrame:
    return gx_runner.prepare(table, raw, known_members=None if table == "members" else known).collect()


def polars_counts(table: str, frame: pl.DataFrame, parameters: dict[str, Any]) -> dict[int, int]:
    rules = row_rules(load_suite(table), set(frame.columns))
    exprs = [failure_expr(r, parameters).sum().alias(str(r.index)) for r in rules]
    counts = frame.select(exprs).row(0, named=True)
    return {int(k): int(v) for k, v in counts.items()}


@pytest.fixture(scope="module")
def planted_runs(gx_ctx) -> dict[str, dict[str, Any]]:
    """Per table: the prepared frame, GX outcomes (small batches) and polars counts."""
    out = {}
    for table in TABLES:
        raw = planted.planted_table(table, divergence=True)
        frame = prepared(table, raw, planted.known_members_frame())
        outcomes = gx_runner.run_suite(table, frame, planted.PARAMETERS, batch_rows=64, context=gx_ctx)
        out[table] = {
            "raw": raw, "frame": frame, "gx": {o["index"]: o for o in outcomes},
            "polars": polars_counts(table, frame, planted.PARAMETERS),
        }
    return out


@pytest.mark.parametrize("table, index", _row_rule_params())
def test_polars_evaluator_agrees_with_gx(planted_runs, table, index):
    run = planted_runs[table]
    gx = run["gx"][index]
    assert gx["error"] is None, f"GX raised {gx['error']}"
    assert run["polars"][index] == gx["unexpected_count"]


@pytest.mark.parametrize("table", TABLES)
def test_every_expectation_has_planted_failures(planted_runs, table):
    """The planted frame exercises every row rule (so agreement is not 0 == 0), and GX ran all of them."""
    gx = planted_runs[table]["gx"]
    for o in gx.values():
        assert o["error"] is None, (o["rule"], o["error"])
        if o["type"] in gx_runner.STRUCTURAL_TYPES:
            assert o["success"] is True and o["evaluated_on"] == gx_runner.HEADER
            continue
        assert o["evaluated_on"] != gx_runner.SKIPPED
        assert o["unexpected_count"] > 0 and o["success"] is False, o["rule"]
        assert o["element_count"] == planted_runs[table]["frame"].height


def test_views(planted_runs):
    """Uniqueness runs on the whole column, date comparisons on the typed view, the rest on text."""
    views = {(o["type"], o["column"]): o["evaluated_on"] for o in planted_runs["members"]["gx"].values()}
    assert views[("expect_column_values_to_be_unique", "member_id")] == gx_runner.FULL_COLUMN
    assert views[("expect_column_values_to_be_between", "birth_date")] == gx_runner.TYPED
    assert views[("expect_column_pair_values_a_to_be_greater_than_b", "death_date")] == gx_runner.TYPED
    assert views[("expect_column_values_to_match_strftime_format", "birth_date")] == gx_runner.TEXT
    claims = {(o["type"], o["column"]): o["evaluated_on"] for o in planted_runs["medical_claims"]["gx"].values()}
    assert claims[("expect_column_values_to_be_between", "_paid_amount_num")] == gx_runner.TEXT


@pytest.mark.parametrize("table", ["members", "medical_claims"])
def test_batches_sum_to_the_unbatched_result(gx_ctx, planted_runs, table):
    """Counts and verdicts do not depend on the batch size (uniqueness spans batches)."""
    frame = planted_runs[table]["frame"]
    whole = gx_runner.run_suite(table, frame, planted.PARAMETERS, batch_rows=10**9, context=gx_ctx)
    batched = list(planted_runs[table]["gx"].values())
    assert sorted(batched, key=lambda o: o["index"]) == whole


def test_uniqueness_spans_batches(gx_ctx):
    """Copies of one member_id in different batches are all unexpected, as in one batch."""
    rows = [planted.BASE["members"] | {"member_id": f"M{i}"} for i in range(10)] + [planted.BASE["members"] | {"member_id": "M0"}]
    raw = pl.DataFrame(rows, schema={c: pl.String for c in planted.BASE["members"]})
    frame = prepared("members", raw, None)
    out = {o["rule"]: o for o in gx_runner.run_suite("members", frame, planted.PARAMETERS, batch_rows=3, context=gx_ctx)}
    assert out["duplicate_member_id"]["unexpected_count"] == 2
    index = next(i for i, e in enumerate(load_suite("members").expectations) if e["meta"]["rule"] == "duplicate_member_id")
    assert polars_counts("members", frame, planted.PARAMETERS)[index] == 2


def test_missing_required_column_fails_block_level_expectation(gx_ctx, tmp_path):
    """A file without a required column: column_to_exist fails (severity block); row rules not evaluated."""
    raw = planted.planted_table("members").drop("sex")
    raw.write_csv(tmp_path / "members.csv")
    run = gx_runner.run_table("members", tmp_path, planted.PARAMETERS, context=gx_ctx)
    assert run["blocked"] is True and run["rows"] == 0
    by_rule = {o["rule"]: o for o in run["expectations"]}
    assert by_rule["sex_present"]["success"] is False and by_rule["sex_present"]["severity"] == "block"
    assert by_rule["member_id_present"]["success"] is True
    assert all(o["success"] is None for o in run["expectations"] if o["type"] not in gx_runner.STRUCTURAL_TYPES)
    summary = gx_runner.summarize(run["expectations"])
    assert summary["failed_block"] == ["sex_present"]


def test_header_matching_is_case_and_space_insensitive(gx_ctx, tmp_path):
    raw = planted.planted_table("clinical_observations").rename({"member_id": " Member_ID ", "loinc_code": "LOINC_CODE"})
    raw.write_csv(tmp_path / "clinical_observations.csv")
    run = gx_runner.run_table("clinical_observations", tmp_path, planted.PARAMETERS, context=gx_ctx)
    assert not run["blocked"]
    assert all(o["success"] for o in run["expectations"] if o["type"] in gx_runner.STRUCTURAL_TYPES)


def test_gx_outcomes_carry_counts_never_values(planted_runs):
    """No planted value (ids, names, birth dates, defect strings) appears in GX outcomes."""
    suites_text = " ".join(load_suite(t).path.read_text() for t in TABLES)
    for table, run in planted_runs.items():
        blob = json.dumps(list(run["gx"].values()))
        values = {v for col in run["raw"].columns for v in run["raw"][col].drop_nulls().to_list()}
        leaked = sorted(v for v in values if len(v.strip()) >= 4 and v not in suites_text and v in blob)
        assert leaked == [], f"{table}: {leaked[:5]}"
        for o in run["gx"].values():
            assert set(o) == set(gx_runner.OUTCOME_FIELDS)


@pytest.mark.slow
def test_generated_dataset_agrees(gx_ctx, tmp_path):
    """~2,000 generated members with 5% messy rows: every table, every expectation."""
    try:
        from equity_pipeline.generate import generate
    except ImportError:
        pytest.skip("equity_pipeline.generate.generate is not available yet")
    generate(members=2000, seed=7, out=tmp_path / "input", messy_share=0.05, measurement_year=2025)
    runs = _agree_on_folder(gx_ctx, tmp_path / "input", _parameters(2025, planted.RUN_DATE))
    assert runs["members"]["frame"].height >= 2000
    assert any(o["unexpected_count"] for run in runs.values() for o in run["gx"]), "messy rows should fail some rules"


def _parameters(measurement_year: int, run_date: str) -> dict[str, Any]:
    from equity_pipeline.standards.geography import valid_county_fips

    return {"run_date": run_date, "valid_county_fips": valid_county_fips(measurement_year)}


def _agree_on_folder(gx_ctx, folder, parameters) -> dict[str, dict[str, Any]]:
    """GX vs polars per expectation for every table in ``folder``."""
    from equity_pipeline.io import find_input

    known = None
    out = {}
    for table in TABLES:
        path = find_input(folder, table)
        if path is None:
            continue
        lf, header = gx_runner.text_frame(table, path, known_members=None if table == "members" else known)
        frame = lf.collect()
        outcomes = gx_runner.run_suite(table, frame, parameters, header=header, context=gx_ctx)
        current = polars_counts(table, frame, parameters)
        for o in outcomes:
            if o["type"] in gx_runner.STRUCTURAL_TYPES or o["evaluated_on"] == gx_runner.SKIPPED:
                continue
            assert o["error"] is None, (table, o["rule"], o["error"])
            assert current[o["index"]] == o["unexpected_count"], (table, o["index"], o["rule"])
        if table == "members":
            known = frame.lazy().select("member_id")
        out[table] = {"frame": frame, "gx": outcomes}
    return out


def test_gx_errors_are_reported_by_class_only(gx_ctx):
    """An expectation GX cannot evaluate (numeric bounds on text) is an error, named by class, no message."""
    raw = planted.planted_table("medical_claims")
    frame = prepared("medical_claims", raw, planted.known_members_frame()).with_columns(
        _paid_amount_num=pl.lit("Quinzella-secret"))
    out = gx_runner.run_suite("medical_claims", frame, planted.PARAMETERS, context=gx_ctx)
    bad = next(o for o in out if o["rule"] == "implausible_paid_amount")
    assert bad["success"] is None and bad["error"] and bad["error"].isidentifier()
    assert "Quinzella" not in json.dumps(out)
    assert gx_runner.summarize(out)["errors"] == ["implausible_paid_amount"]


def test_value_set_parameter_cut_to_the_batch_changes_no_count():
    """``_narrowed`` keeps, of a list parameter used by an in-set rule, exactly the values of the
    batch's column (never none: then one value of the set, absent from the batch); other parameters
    and other columns are untouched."""
    import pandas as pd

    batch = pd.DataFrame({"county_fips": ["25017", "99999", None, "25017"], "other": ["06037", "x", "y", "z"]})
    params = {"run_date": "2026-01-01", "valid_county_fips": ["06037", "25017", "36061"]}
    got = gx_runner._narrowed(params, {"valid_county_fips": ["county_fips"]}, batch)
    assert got == {"run_date": "2026-01-01", "valid_county_fips": ["25017"]}
    assert params["valid_county_fips"] == ["06037", "25017", "36061"]   # not changed in place
    none_valid = gx_runner._narrowed(params, {"valid_county_fips": ["county_fips"]}, batch.iloc[[1, 2]])
    assert none_valid["valid_county_fips"] == ["06037"] and "06037" not in set(batch.iloc[[1, 2]]["county_fips"])
    assert gx_runner._narrowed(params, {}, batch) is params


def test_members_county_counts_same_with_and_without_the_cut(gx_ctx, monkeypatch):
    """With the real list of valid counties (about 3,200) and batches of two rows (one batch holds no
    valid county at all), every GX count of the members suite is the same as with the whole list,
    and the unknown-county count is the number of rows with a 5-digit code that is not a county."""
    from equity_pipeline.standards.geography import valid_county_fips

    counties = ["25017", "99999", "06037", "00000", "99998", None, "36061", "25017"]
    rows = [planted.BASE["members"] | {"member_id": f"M{i}", "county_fips": c} for i, c in enumerate(counties)]
    frame = prepared("members", pl.DataFrame(rows, schema={c: pl.String for c in planted.BASE["members"]}), None)
    params = {**planted.PARAMETERS, "valid_county_fips": valid_county_fips(2025)}
    cut = gx_runner.run_suite("members", frame, params, batch_rows=2, context=gx_ctx)
    monkeypatch.setattr(gx_runner, "_narrowed", lambda parameters, uses, batch: parameters)
    whole = gx_runner.run_suite("members", frame, params, batch_rows=2, context=gx_ctx)
    assert cut == whole
    assert {o["rule"]: o for o in cut}["unknown_county_fips"]["unexpected_count"] == 3
