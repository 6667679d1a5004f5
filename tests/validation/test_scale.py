"""Validation at scale: the streaming ingest and the sampled GX check (docs/performance.md).

* The streaming ingest (whole-table facts first, then one pass batch by batch) gives exactly what the
  in-memory evaluation of the suite gives: same used rows, same quarantined rows and reasons, same
  counts per rule and per expectation. The reference here is written out in full, independently of
  ``ingest.py``.
* Exact duplicate rows are found exactly on every path (key candidates; hash-of-every-column
  candidates; and the 128-bit row hash beyond ``EXACT_ROWS``).
* In sample mode GX evaluates a seeded sample plus failing rows of every expectation: it confirms every
  expectation that fails in the table, agrees with the polars evaluator on exactly the rows it saw,
  runs uniqueness on every row, and says so in its result, the Dagster check and the auditor view.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from equity_pipeline.io import scan_text
from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation import gx_runner
from equity_pipeline.validation import ingest as ingest_mod
from equity_pipeline.validation.auditor import write_auditor_view
from equity_pipeline.validation.ingest import DUPLICATE_ROW, REASONS, ingest_table
from equity_pipeline.validation.rules import failure_expr, row_rules
from tests.validation import planted

TINY = gx_runner.Sampling(full_rows=0, sample_rows=4, failing_rows=2, seed=7)


def reference(table: str, path: Path, known: pl.LazyFrame | None, parameters: dict[str, Any]) -> dict[str, Any]:
    """The suite evaluated on the whole table in memory (the semantics the streaming ingest must keep)."""
    suite = load_suite(table)
    lf, _ = gx_runner.text_frame(table, path, known_members=known)
    frame = lf.collect()
    cols = list(suite.column_names)
    rules = row_rules(suite, set(frame.columns))
    first = pl.struct(cols).is_first_distinct()
    distinct = frame.filter(first)  # uniqueness is judged without the later exact copies (duplicate_row)

    def fails(r) -> pl.Expr:
        if r.type != "expect_column_values_to_be_unique":
            return failure_expr(r, parameters).fill_null(False)
        repeated = distinct.filter(pl.col(r.column).is_not_null() & pl.col(r.column).is_duplicated())[r.column]
        return first & pl.col(r.column).is_in(repeated.implode())
    flags = frame.select(
        pl.col("_row"), (~first).alias("__dup"), *[fails(r).alias(f"e{r.index}") for r in rules],
    )
    reasons, rule_counts = [], {}
    for row in flags.iter_rows(named=True):
        ids = [DUPLICATE_ROW] if row["__dup"] else []
        for r in rules:
            if row[f"e{r.index}"] and r.rule not in ids:
                ids.append(r.rule)
        for rid in ids:
            rule_counts[rid] = rule_counts.get(rid, 0) + 1
        reasons.append(";".join(ids))
    bad = pl.Series(reasons) != ""
    return {
        "used_rows": flags.filter(~bad)["_row"].to_list(),
        "quarantine": list(zip(flags.filter(bad)["_row"].to_list(), [r for r in reasons if r])),
        "rule_counts": rule_counts,
        "expectation_counts": {str(r.index): int(flags[f"e{r.index}"].sum()) for r in rules},
    }


def _folder_cases(tmp_path: Path) -> list[tuple[str, Path]]:
    planted_dir = tmp_path / "planted"
    planted_dir.mkdir()
    for t in TABLES:
        raw = planted.planted_table(t, divergence=True)
        # exact copies, copies that differ only in case and spaces, and a same-key row that is not a copy
        extra = [raw.row(0, named=True), raw.row(0, named=True), raw.row(1, named=True)]
        first = raw.row(0, named=True)
        text_cols = [c.name for c in load_suite(t).columns if c.normalize in ("upper", "lower") and first.get(c.name)]
        if text_cols:
            c = text_cols[0]
            extra.append({**first, c: f"  {first[c].swapcase()} "})
        not_copy = dict(first)
        other = next(c.name for c in load_suite(t).columns if c.name not in load_suite(t).key and c.type == "string")
        not_copy[other] = (first[other] or "") + "X"
        extra.append(not_copy)
        pl.concat([raw, pl.DataFrame(extra, schema=raw.schema)]).write_csv(planted_dir / f"{t}.csv")
    folders = [("planted", planted_dir)]
    try:
        from equity_pipeline.generate import generate
    except ImportError:  # pragma: no cover
        return folders
    generate(members=400, seed=11, out=tmp_path / "generated", messy_share=0.1, measurement_year=2025)
    return folders + [("generated", tmp_path / "generated")]


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[tuple[str, Path]]:
    return _folder_cases(tmp_path_factory.mktemp("scale"))


def _parameters(name: str) -> dict[str, Any]:
    """The suite parameters of a case: the planted tables' own county list, and for the generated
    data the counties of its measurement year (as a run passes them), so that its members are valid
    and the other tables' rows name known members (with the planted list every generated member was
    quarantined, and every row of the other tables was an orphan)."""
    if name != "generated":
        return planted.PARAMETERS
    from equity_pipeline.standards.geography import valid_county_fips

    return {**planted.PARAMETERS, "valid_county_fips": valid_county_fips(2025)}


def _ingest_folder(folder: Path, out: Path, parameters: dict[str, Any], gx_sampling: gx_runner.Sampling | None = None) -> dict[str, Any]:
    results = {}
    for t in TABLES:
        known = pl.scan_parquet(out / "tables" / "members.parquet") if t != "members" else None
        results[t] = ingest_table(t, folder, out, parameters=parameters, known_members=known, gx_sampling=gx_sampling).to_dict()
    return results


def test_streaming_ingest_equals_in_memory_evaluation(cases, tmp_path):
    for name, folder in cases:
        out = tmp_path / name
        results = _ingest_folder(folder, out, _parameters(name))
        if name == "generated":
            assert results["members"]["used"] > 300 and results["medical_claims"]["used"] > 0   # not all orphans
        for t in TABLES:
            known = pl.scan_parquet(out / "tables" / "members.parquet") if t != "members" else None
            from equity_pipeline.io import find_input

            ref = reference(t, find_input(folder, t), known, _parameters(name))
            used = pl.read_parquet(out / "tables" / f"{t}.parquet")
            quarantine = pl.read_parquet(out / "quarantine" / f"{t}.parquet")
            assert used["_row"].to_list() == ref["used_rows"], (name, t)
            assert list(zip(quarantine["_row"].to_list(), quarantine[REASONS].to_list())) == ref["quarantine"], (name, t)
            r = results[t]
            assert r["rule_counts"] == ref["rule_counts"], (name, t)
            assert r["expectation_counts"] == ref["expectation_counts"], (name, t)
            assert r["read"] == r["used"] + r["quarantined"] == len(ref["used_rows"]) + len(ref["quarantine"])
        assert results["members"]["rule_counts"].get(DUPLICATE_ROW, 0) > 0 or name != "planted"


@pytest.mark.parametrize("columnar", [False, True])
@pytest.mark.parametrize("path", ["key", "every_column", "row_hash"])
def test_duplicate_copies_are_exact_on_every_path(monkeypatch, tmp_path, path, columnar):
    """Copies after normalisation are found; a repeated key with different values is not a copy.
    ``columnar``: read from a Parquet file, where the candidates are also filtered on their raw first
    key column (claim_id; rows 9-12 have none: a null value must still find its copies)."""
    base = planted.BASE["medical_claims"]
    rows = [
        base,                                              # 1 first
        {**base, "claim_line": "2"},                       # 2 another line: not a copy
        {**base, "claim_status": "  PAID "},               # 3 copy of 1 after trimming and lower-casing
        {**base, "paid_amount": "1520.36"},                # 4 same key, other amount: not a copy
        dict(base),                                        # 5 exact copy of 1
        {**base, "claim_line": "2"},                       # 6 copy of 2
        {**base, "claim_line": None},                      # 7 empty line number
        {**base, "claim_line": "   "},                     # 8 copy of 7 (blank is empty)
        {**base, "claim_id": None},                        # 9 no claim id
        {**base, "claim_id": None, "paid_amount": "1"},    # 10 no claim id, other amount: not a copy
        {**base, "claim_id": " "},                         # 11 copy of 9 (blank is empty), another raw value
        {**base, "claim_id": None},                        # 12 copy of 9
    ]
    raw = pl.DataFrame(rows, schema={c: pl.String for c in base})
    if columnar:
        raw.write_parquet(tmp_path / "medical_claims.parquet")
        source = scan_text(tmp_path / "medical_claims.parquet")
    else:
        source = raw.with_row_index("_row", offset=1).lazy()
    suite = load_suite("medical_claims")
    lf, _, _ = ingest_mod.check_structure(source, suite, "test")
    if path in ("every_column", "row_hash"):
        monkeypatch.setattr(ingest_mod, "CANDIDATE_SHARE", 0.0)  # key candidates always "too many"
    if path == "row_hash":
        monkeypatch.setattr(ingest_mod, "EXACT_ROWS", 0)  # decide by the 128-bit row hash
    copies, n = ingest_mod.copies_and_rows(lf, suite, columnar=columnar)
    assert copies.to_list() == [3, 5, 6, 8, 11, 12] and n == len(rows)


def test_sampling_is_seeded_and_configurable():
    failing = pl.DataFrame({"_row": [3, 50, 70, 90], "4": [True, True, True, False], "9": [False, False, True, True]},
                           schema_overrides={"_row": pl.UInt32})
    rows_a, info = gx_runner.choose_rows(1000, failing, TINY)
    rows_b, _ = gx_runner.choose_rows(1000, failing, TINY)
    assert rows_a.to_list() == rows_b.to_list() == sorted(set(rows_a.to_list()))
    assert info["random_rows"] == 4 and info["failing_rows_per_expectation"] == 2 and info["seed"] == 7
    assert 4 <= info["rows_evaluated"] == len(rows_a) <= 8 and all(1 <= r <= 1000 for r in rows_a)
    chosen = set(rows_a.to_list())
    assert len(chosen & {3, 50, 70}) >= 2 and {70, 90} <= chosen  # 2 failing rows of each expectation (capped)
    assert 2 <= info["failing_rows"] <= 4
    other, _ = gx_runner.choose_rows(1000, failing, gx_runner.Sampling(full_rows=0, sample_rows=4, failing_rows=2, seed=8))
    assert other.to_list() != rows_a.to_list()
    assert gx_runner.Sampling.from_env({}) == gx_runner.Sampling()
    env = {"EQUITY_GX_FULL_ROWS": "1_000_000", "EQUITY_GX_SAMPLE_ROWS": "500", "EQUITY_GX_FAILING_ROWS": "0", "EQUITY_GX_SEED": "3"}
    assert gx_runner.Sampling.from_env(env) == gx_runner.Sampling(1_000_000, 500, 0, 3)
    with pytest.raises(ValueError):
        gx_runner.Sampling.from_env({"EQUITY_GX_SAMPLE_ROWS": "-1"})


def test_no_suite_uses_mostly():
    """In sample mode GX's pass/fail comes from the sampled rows, where failing rows are over-represented
    on purpose: right for 'no row may fail' (every suite today), wrong for a ``mostly`` threshold.
    A suite that adds ``mostly`` must first get a whole-table verdict in gx_runner (docs/validation.md)."""
    for t in TABLES:
        assert all("mostly" not in e["kwargs"] for e in load_suite(t).expectations), t


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, gx_ctx, cases):
    """Ingest, then GX in sample mode (failing rows from the quarantine file, as in a run) and from its own pass."""
    name, folder = cases[0]
    root = tmp_path_factory.mktemp("sampled")
    results = _ingest_folder(folder, root / "restricted", planted.PARAMETERS, gx_sampling=TINY)
    (root / "validation").mkdir()
    for t, r in results.items():
        (root / "validation" / f"{t}.json").write_text(json.dumps(r))
    runs = {t: gx_runner.run_table_cached(t, folder, root, planted.PARAMETERS, context=gx_ctx, sampling=TINY) for t in TABLES}
    known = pl.scan_parquet(root / "restricted" / "tables" / "members.parquet")
    own = gx_runner.run_table("medical_claims", folder, planted.PARAMETERS, known_members=known, context=gx_ctx, sampling=TINY)
    return {"folder": folder, "root": root, "results": results, "runs": runs, "own": own}


@pytest.mark.parametrize("table", TABLES)
def test_sample_mode_confirms_every_failing_expectation(sampled, table):
    run, result = sampled["runs"][table], sampled["results"][table]
    assert run["mode"] == gx_runner.SAMPLE and run["rows"] == result["read"]
    assert run["rows_evaluated"] == run["sample"]["rows_evaluated"] < run["rows"]
    assert run["gx_polars_differ"] == []
    for o in run["expectations"]:
        if o["type"] in gx_runner.STRUCTURAL_TYPES:
            continue
        assert o["error"] is None, o["rule"]
        assert o["unexpected_count"] == run["polars_unexpected"][str(o["index"])], o["rule"]
        table_count = result["expectation_counts"][str(o["index"])]
        assert table_count > 0  # planted: every expectation fails somewhere in the table
        assert o["success"] is False and o["unexpected_count"] > 0, o["rule"]  # ... and GX sees it fail
        if o["evaluated_on"] == gx_runner.FULL_COLUMN:
            # every row but the later exact copies (duplicate_row), as the ingest judges uniqueness
            assert o["element_count"] == run["rows"] - result["rule_counts"].get(DUPLICATE_ROW, 0)
            assert o["unexpected_count"] == table_count
        else:
            assert o["element_count"] == run["rows_evaluated"] and o["unexpected_count"] <= table_count


def test_failing_rows_from_quarantine_equal_own_pass(sampled):
    a, b = sampled["runs"]["medical_claims"], sampled["own"]
    assert a["sample"] == b["sample"] and a["expectations"] == b["expectations"]


@pytest.mark.parametrize("table", ["members", "medical_claims"])
def test_reused_ingest_facts_equal_own_pass(sampled, gx_ctx, table):
    """With the ingest's quarantine, GX takes the row count and the exact copies left out of uniqueness
    rules from the ingest instead of its own pass over every row: the same results either way."""
    assert sampled["results"][table]["rule_counts"].get(DUPLICATE_ROW, 0) > 0  # copies are planted: the reuse matters
    known = None if table == "members" else pl.scan_parquet(sampled["root"] / "restricted" / "tables" / "members.parquet")
    own = gx_runner.run_table(table, sampled["folder"], planted.PARAMETERS, known_members=known, context=gx_ctx, sampling=TINY)
    reused = sampled["runs"][table]
    # members: uniqueness rules, judged without the copies; medical_claims: none (the row count only)
    assert any(o["evaluated_on"] == gx_runner.FULL_COLUMN for o in own["expectations"]) == (table == "members")
    for field in ("rows", "sha256", "sample", "expectations", "polars_unexpected", "gx_polars_differ"):
        assert reused[field] == own[field], field


def test_ingest_writes_the_sample_rows_gx_would_read(cases, tmp_path):
    """The ingest writes the sample's random rows in its pass; with the quarantine's failing rows they
    are exactly the rows GX would otherwise read from the input (same values, columns and types)."""
    for name, folder in cases:
        out = tmp_path / name
        results = _ingest_folder(folder, out, _parameters(name), gx_sampling=TINY)
        for t in TABLES:
            assert results[t]["gx_sample"] == {"sampling": TINY.to_dict(),
                                               "parameters_digest": gx_runner.parameters_digest(_parameters(name))}, (name, t)
            drawn = pl.read_parquet(ingest_mod.gx_sample_path(out, t))
            assert drawn["_row"].to_list() == gx_runner.random_rows(results[t]["read"], TINY).to_list(), (name, t)
            known = pl.scan_parquet(out / "tables" / "members.parquet") if t != "members" else None
            from equity_pipeline.io import find_input

            lf, _ = gx_runner.text_frame(t, find_input(folder, t), known_members=known)
            quarantined = pl.scan_parquet(out / "quarantine" / f"{t}.parquet")
            failing = gx_runner.failing_rows(t, quarantined, lf, _parameters(name), known_members=known)
            # the ingest's failing flags are what the check would compute from the quarantine
            flags = pl.scan_parquet(ingest_mod.gx_failing_path(out, t))
            assert gx_runner._ingest_failing(t, flags, lf).equals(failing), (name, t)
            if failing.height == 0 and name == "generated":
                continue   # a generated table without defects (its providers): no failing rows to add
            assert failing.height > 0, (name, t)
            assert gx_runner._ingest_failing(t, flags.select(pl.all().exclude(failing.columns[-1])), lf) is None
            rows, _ = gx_runner.choose_rows(results[t]["read"], failing, TINY)
            via = gx_runner.sample_frame(t, drawn.lazy(), quarantined, rows, results[t]["read"], TINY, lf.collect_schema(),
                                         known_members=known)
            direct = lf.filter(pl.col("_row").is_in(rows.implode())).collect()
            assert via is not None and via.height > drawn.height, (name, t)  # failing rows were added from the quarantine
            assert via.equals(direct), (name, t)
            if name == "generated" and t in ("enrollment", "medical_claims", "pharmacy_claims"):
                added = via.filter(~pl.col("_row").is_in(drawn["_row"].implode()))["_member_known"]
                assert set(added.to_list()) == {"true", "false"}, t   # known members and orphans among the added rows
            # another sampling's rows are not taken for this one
            assert gx_runner.sample_frame(t, drawn.lazy(), quarantined, rows, results[t]["read"],
                                          gx_runner.Sampling(full_rows=0, sample_rows=4, failing_rows=2, seed=8),
                                          lf.collect_schema(), known_members=known) is None
        # a table within full_rows: no sample written, and none left from before
        small = _ingest_folder(folder, out, _parameters(name), gx_sampling=gx_runner.Sampling())
        assert all(r["gx_sample"] is None and not ingest_mod.gx_sample_path(out, t).exists()
                   and not ingest_mod.gx_failing_path(out, t).exists() for t, r in small.items())


def test_full_mode_up_to_the_row_limit(sampled, gx_ctx):
    rows = sampled["results"]["members"]["read"]
    run = gx_runner.run_table("members", sampled["folder"], planted.PARAMETERS, context=gx_ctx,
                              sampling=gx_runner.Sampling(full_rows=rows))
    assert run["mode"] == gx_runner.FULL and run["rows_evaluated"] == run["rows"] == rows and run["sample"] is None
    assert run["gx_polars_differ"] == []


def test_auditor_view_says_what_gx_evaluated(sampled, tmp_path):
    path = write_auditor_view(tmp_path, sampled["results"], sampled["runs"])
    html = path.read_text()
    report = json.loads((tmp_path / "validation" / "validation_report.json").read_text())
    claims = next(t for t in report["tables"] if t["table"] == "medical_claims")
    run = sampled["runs"]["medical_claims"]
    assert claims["gx"]["mode"] == "sample" and claims["gx"]["rows_evaluated"] == run["rows_evaluated"]
    assert claims["gx"]["sample"]["seed"] == 7 and claims["gx"]["engines_differ_on"] == []
    assert f"on {run['rows_evaluated']:,} of {run['rows']:,} rows: a random sample of 4 rows (seed 7)" in html
    for e in claims["expectations"]:
        if e["type"] != "expect_column_to_exist":
            assert e["table_unexpected_count"] == sampled["results"]["medical_claims"]["expectation_counts"][str(e["index"])]
            assert e["engines_agree"] is True
    for v in (*planted.PHI_NAMES, *planted.PHI_BIRTH_DATES, *planted.KNOWN_MEMBERS, "MBR-ORPHAN-0001", "DUP-0001"):
        assert v not in html and v not in json.dumps(report)


def test_dagster_check_metadata_in_sample_mode(tmp_path, monkeypatch, gx_ctx):
    from assets.ingest import table_assets
    from assets.resources import PipelineResource
    from assets.validation import gx_checks

    inp = tmp_path / "input"
    inp.mkdir()
    for t in ("members", "enrollment", "medical_claims"):
        planted.planted_table(t).write_csv(inp / f"{t}.csv")
    monkeypatch.setenv("EQUITY_GX_FULL_ROWS", "0")
    monkeypatch.setenv("EQUITY_GX_SAMPLE_ROWS", "3")
    monkeypatch.setenv("EQUITY_GX_FAILING_ROWS", "1")
    resource = PipelineResource(input_dir=str(inp), out_dir=str(tmp_path / "out"), run_date=planted.RUN_DATE)
    selected = [a for a in table_assets if a.key.path[-1] in ("members", "medical_claims")]
    checks = [c for c in gx_checks if next(iter(c.check_keys)).name in ("gx_members", "gx_medical_claims")]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*selected, *checks], resources={"pipeline_config": resource}, instance=instance,
                                raise_on_error=True, selection=[a.key for a in selected])
        evaluations = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    meta = {k: v.value for k, v in evaluations["gx_medical_claims"].metadata.items()}
    assert meta["gx_mode"] == "sample" and meta["gx_rows_evaluated"] < meta["rows"]
    assert meta["gx_sample"]["random_rows"] == 3 and meta["gx_sample"]["failing_rows_per_expectation"] == 1
    assert meta["rules_where_gx_and_polars_differ_on_evaluated_rows"] == []
    assert meta["quarantined_rows_by_rule"]["orphan_member"] > 0
    assert evaluations["gx_medical_claims"].passed is False  # the planted failures are confirmed by GX


def test_quarantined_rows_look_up_only_the_members_they_name(tmp_path):
    """The failing rows added to the sample (``rows``) look up their member ids among only the known
    members they name: ``_member_known`` as among all of them, true for a known id, false for an
    orphan, a null and an empty id."""
    cols = load_suite("medical_claims").column_names
    ids = ["M3", "M1", "M2", "M9", None, "", "M2", "M4"]
    quarantined = pl.DataFrame(
        {"_row": pl.Series(range(len(ids)), dtype=pl.UInt32),
         **{c: (ids if c == "member_id" else ["1"] * len(ids)) for c in cols}},
    ).lazy()
    known = pl.DataFrame({"member_id": ["M2", "M1", "M3", None, "M4"], "sex": ["F"] * 5}).lazy()
    rows = pl.Series(range(1, len(ids)), dtype=pl.UInt32)   # not the first row (a known member no other row names)
    narrowed = gx_runner._quarantined_text("medical_claims", quarantined, known, rows=rows).collect()
    whole = gx_runner._quarantined_text("medical_claims", quarantined, known).filter(pl.col("_row") >= 1).collect()
    assert narrowed.equals(whole)
    assert narrowed["_member_known"].to_list() == ["true", "true", "false", "false", "false", "true", "true"]
