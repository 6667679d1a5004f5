"""Nothing reaches public/ before its privacy check passes (equity_pipeline/publish.py, docs/design.md, Privacy).

The helper on its own; then public_rates (a small canonical run whose suppression step is patched
to suppress nothing, so the check must find exactly the cells with a count of 1-10, counted here
from the restricted stratified counts) and the statewide equity-plan table (the hand-built world of
tests/equity_plans with one small cell left unsuppressed): no public file, an earlier public file
of that name removed, the table in restricted/withheld/, the asset check failed with the count,
and the manifest listing the withheld table with counts only."""
from __future__ import annotations

import json
import shutil
import stat
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline import pipeline
from equity_pipeline.config import config_from_dict
from equity_pipeline.io import write_csv_atomic, write_parquet_atomic
from equity_pipeline.layout import OutputLayout
from equity_pipeline.publish import publish_checked, withheld_outputs, withheld_path
from equity_pipeline.suites import TABLES
from equity_pipeline.suppression import PRIMARY_REASON, PUBLIC_REASON
from tests.builders import claim, member, span, write_table

FRAME = pl.DataFrame({"unit_id": ["all", "MD"], "numerator": [40, 5], "suppressed": [False, False]})


def _value(v):
    """A Dagster metadata entry's value (normalised or as given)."""
    return getattr(v, "value", v)


def _public_state(layout: OutputLayout) -> dict[str, bytes]:
    return {p.relative_to(layout.public).as_posix(): p.read_bytes() for p in sorted(layout.public.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the helper
def test_a_passing_check_publishes_the_same_bytes_as_a_direct_write(tmp_path):
    layout = OutputLayout(tmp_path / "out").prepare()
    direct = OutputLayout(tmp_path / "direct").prepare()
    write_parquet_atomic(FRAME, direct.rates)
    write_csv_atomic(FRAME, direct.rates_csv)
    # a copy an earlier run held back is no longer current once the table is published
    stale = withheld_path(layout, layout.rates)
    stale.parent.mkdir(parents=True)
    FRAME.write_parquet(stale)
    stale.with_name(stale.name + ".withheld.json").write_text("{}", encoding="utf-8")
    seen = []
    result = publish_checked(layout, {layout.rates: FRAME, layout.rates_csv: FRAME},
                             {"no_small_cells": lambda: seen.append(layout.rates.exists()) or 0})
    assert seen == [False]  # the check ran before anything was written
    assert result.passed and result.checks == {"no_small_cells": 0} and result.withheld == ()
    assert result.published == ("public/rates.parquet", "public/rates.csv")
    assert _public_state(layout) == _public_state(direct)
    assert not stale.exists() and withheld_outputs(layout) == []


def test_a_failing_check_withholds_the_table_and_removes_the_stale_public_file(tmp_path):
    layout = OutputLayout(tmp_path).prepare()
    path = layout.state_metrics  # nested under public/equity_plan/
    path.parent.mkdir(parents=True)
    FRAME.head(1).write_parquet(path)  # an earlier run's table
    layout.rates.write_bytes(b"other table")  # not named in this publish: untouched
    result = publish_checked(layout, {path: FRAME}, {"no_small_cells": lambda: 1, "no_suppressed_cell_revealed": 2})
    assert not result.passed and result.checks == {"no_small_cells": 1, "no_suppressed_cell_revealed": 2}
    assert result.offending == 3 and result.published == ()
    assert not path.exists() and result.removed == ("public/equity_plan/state_metrics.parquet",)
    assert _public_state(layout) == {"rates.parquet": b"other table"}
    held = tmp_path / "restricted" / "withheld" / "equity_plan" / "state_metrics.parquet"
    assert result.withheld == ("restricted/withheld/equity_plan/state_metrics.parquet",) and held.is_file()
    assert pl.read_parquet(held).equals(FRAME)
    for folder in (held.parent, held.parent.parent):  # owner-only, as all of restricted/
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    record = {"public_file": "public/equity_plan/state_metrics.parquet",
              "withheld_file": "restricted/withheld/equity_plan/state_metrics.parquet", "rows": 2,
              "checks": {"no_small_cells": 1, "no_suppressed_cell_revealed": 2}}
    assert withheld_outputs(layout) == [record]
    # published again on a passing run: the withheld copy and its record go
    assert publish_checked(layout, {path: FRAME}, {"no_small_cells": 0}).passed
    assert pl.read_parquet(path).equals(FRAME) and not held.exists() and withheld_outputs(layout) == []


def test_only_public_paths_are_published(tmp_path):
    layout = OutputLayout(tmp_path).prepare()
    with pytest.raises(ValueError):
        publish_checked(layout, {layout.restricted / "x.parquet": FRAME}, {"no_small_cells": 0})
    with pytest.raises(ValueError):
        publish_checked(layout, {layout.public / "x.json": FRAME}, {"no_small_cells": 0})


# ---------------------------------------------------------------- public_rates
SEXES = ["F"] * 40
RACES = ["2106-3"] * 30 + ["2054-5"] * 8 + ["2028-9"] * 2   # White 30, Black 8, Asian 2
SCREENED = set(range(0, 18)) | {30, 31, 32}                  # White 18 of 30, Black 3 of 8, Asian 0 of 2
CONFIG = {"measurement_year": 2025, "measures": ["BCS"], "imputed_race": False}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, Path]:
    """(input folder, output folder) of 40 BCS-eligible members through the stratified counts."""
    root = tmp_path_factory.mktemp("publish_checked")
    inp = root / "in"
    people = [member(f"M{i:03d}", race_ethnicity_codes=race) for i, race in enumerate(RACES)]
    write_table(inp, "members", people)
    write_table(inp, "enrollment", [span(m["member_id"]) for m in people])
    write_table(inp, "medical_claims", [claim(people[i]["member_id"], "2025-03-01", hcpcs="77067") for i in sorted(SCREENED)])
    config = config_from_dict(CONFIG, run_date=date(2026, 11, 22))
    layout = OutputLayout(root / "out").prepare()
    for table in TABLES:
        pipeline.ingest(table, inp, layout, config)
    pipeline.build_events(layout, config)
    pipeline.evaluate_measure("BCS", layout, config)
    pipeline.build_member_attributes(layout, config)
    pipeline.build_stratified_counts(layout, config)
    return inp, layout.root


def _copy(small_run, tmp_path: Path) -> OutputLayout:
    shutil.copytree(small_run[1], tmp_path / "out")
    return OutputLayout(tmp_path / "out").prepare()


def _small_counts(counts: pl.DataFrame) -> int:
    """Cells with a denominator, numerator or complement of 1-10 (BCS is a proportion)."""
    def small(e: pl.Expr) -> pl.Expr:
        return (e >= 1) & (e <= 10)
    return counts.filter(small(pl.col("denominator")) | small(pl.col("numerator"))
                         | small(pl.col("denominator") - pl.col("numerator"))).height


def test_public_rates_pass_as_before(small_run, tmp_path):
    layout = _copy(small_run, tmp_path)
    config = config_from_dict(CONFIG, run_date=date(2026, 11, 22))
    meta = pipeline.build_public_rates(layout, config)
    rates = pl.read_parquet(layout.rates)
    assert meta["small_cells"] == 0 == pipeline.published_small_cells(layout) and "withheld" not in meta
    assert meta["rows"] == rates.height == pl.read_parquet(layout.stratified_counts).height
    assert pl.read_csv(layout.rates_csv).height == rates.height
    # the planted figures: overall 21 of 40 published, Asian (0 of 2) suppressed
    overall = rates.filter(pl.col("stratifier") == "overall", pl.col("unit_level") == "population")
    assert overall.select("denominator", "numerator").row(0) == (40, 21)
    assert rates.filter(pl.col("stratifier") == "race_ethnicity", pl.col("unit_level") == "population",
                        pl.col("stratum") == "Asian")["suppressed"].to_list() == [True]
    assert not withheld_path(layout, layout.rates).exists()


def test_public_rates_with_unsuppressed_small_cells_are_withheld(small_run, tmp_path, monkeypatch):
    from assets.resources import PipelineResource
    from assets.stratification import public_rates
    from equity_pipeline import stratify

    layout = _copy(small_run, tmp_path)
    config = config_from_dict(CONFIG, run_date=date(2026, 11, 22))
    pipeline.build_public_rates(layout, config)   # an earlier, good run's public/rates.*
    assert layout.rates.is_file() and layout.rates_csv.is_file()
    counts = pl.read_parquet(layout.stratified_counts)
    expected = _small_counts(counts)
    # the race strata Black (3 of 8) and Asian (0 of 2), for the population and its one state; every
    # other stratum holds all 40 members (one county, sex, age band, language, payer)
    assert expected == 4

    # the suppression step broken: nothing suppressed
    monkeypatch.setattr(stratify, "suppress", lambda rated, *a, **k: rated.with_columns(
        suppressed=pl.lit(False), suppression_reason=pl.lit(None, pl.String)))
    (tmp_path / "program.yaml").write_text("measurement_year: 2025\nmeasures: [BCS]\nimputed_race: false\n", encoding="utf-8")
    resource = PipelineResource(input_dir=str(small_run[0]), out_dir=str(layout.root), config_file=str(tmp_path / "program.yaml"),
                                run_date="2026-11-22")
    result = public_rates(pipeline_config=resource)
    (check,) = result.check_results
    assert check.check_name == "no_small_cells" and check.passed is False
    assert _value(check.metadata["small_cells"]) == expected == _value(result.metadata["small_cells"])
    assert "restricted/withheld/rates.parquet" in check.description
    assert not layout.rates.exists() and not layout.rates_csv.exists()   # the earlier files are gone too
    held = pl.read_parquet(withheld_path(layout, layout.rates))
    assert held.height == counts.height and not held["suppressed"].any()
    assert pipeline.rates_small_cells(held) == expected
    assert pl.read_csv(withheld_path(layout, layout.rates_csv)).height == held.height
    # the manifest lists it: file names and counts, no member data
    manifest = pipeline.build_manifest_dict(layout, config, "run-1", input_dir=None)
    assert manifest["withheld"] == [
        {"public_file": "public/rates.csv", "withheld_file": "restricted/withheld/rates.csv", "rows": counts.height,
         "checks": {"no_small_cells": expected}},
        {"public_file": "public/rates.parquet", "withheld_file": "restricted/withheld/rates.parquet", "rows": counts.height,
         "checks": {"no_small_cells": expected}}]
    assert "M0" not in json.dumps(manifest["withheld"])


def test_a_cli_run_names_the_tables_it_withheld(small_run, tmp_path, monkeypatch):
    """A CLI run stopped by a failed privacy check says, on its one error line, which files it held
    back (not a table an earlier run held back and nothing has published since)."""
    import os

    from equity_pipeline import stratify
    from equity_pipeline.cli import run_pipeline
    from equity_pipeline.errors import PipelineError

    out = tmp_path / "out"
    # held back by an earlier run, from a step after public_rates (it does not run this time)
    earlier = withheld_path(OutputLayout(out), OutputLayout(out).public / "disparities.parquet")
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"PAR1")
    record = earlier.with_name(earlier.name + ".withheld.json")
    record.write_text(json.dumps({"public_file": "public/disparities.parquet", "withheld_file": "restricted/withheld/disparities.parquet",
                                  "rows": 1, "checks": {"no_suppressed_cell_revealed": 1}}), encoding="utf-8")
    os.utime(earlier, (1_000_000_000, 1_000_000_000))
    monkeypatch.setattr(stratify, "suppress", lambda rated, *a, **k: rated.with_columns(
        suppressed=pl.lit(False), suppression_reason=pl.lit(None, pl.String)))
    (tmp_path / "program.yaml").write_text("measurement_year: 2025\nmeasures: [BCS]\nimputed_race: false\n", encoding="utf-8")
    with pytest.raises(PipelineError) as failed:
        run_pipeline(small_run[0], out, str(tmp_path / "program.yaml"), run_date="2026-11-22", quiet=True)
    message = str(failed.value)
    assert message.startswith("blocking check failed (public_rates: no_small_cells); withheld (not published): "
                              "restricted/withheld/rates.csv, restricted/withheld/rates.parquet; later steps did not run"), message
    assert earlier.is_file()   # still held back (nothing published it since), but not by this run
    assert "disparities" not in message and "M0" not in message


# ---------------------------------------------------------------- an equity-plan table
def _plan_layout(tmp_path: Path) -> tuple[OutputLayout, object]:
    from tests.equity_plans.world import build

    world = build()
    layout = OutputLayout(tmp_path).prepare()
    world["rates"].write_parquet(layout.rates)
    world["completeness"].write_parquet(layout.completeness)
    world["attributes"].write_parquet(layout.member_attributes)
    layout.table("members").parent.mkdir(parents=True, exist_ok=True)
    world["members"].write_parquet(layout.table("members"))
    layout.member_results("PQI90").parent.mkdir(parents=True, exist_ok=True)
    world["results"]["PQI90"].write_parquet(layout.member_results("PQI90"))
    config = config_from_dict({"measurement_year": 2025, "measures": ["PQI90"], "equity_plans": {"overrides": {"states": ["MD"]}}},
                              run_date=date(2026, 6, 1))
    return layout, config


def test_state_metrics_with_a_small_cell_left_unsuppressed_are_withheld(tmp_path, monkeypatch):
    from assets.equity_plans import _result
    from equity_pipeline.equity_plans import cells as C

    layout, config = _plan_layout(tmp_path)
    good = pipeline.build_state_metrics(layout, config)   # the earlier run: published
    assert good["small_cells"] == 0 and "withheld" not in good and layout.state_metrics.is_file()
    published = pl.read_parquet(layout.state_metrics)
    assert all(r.passed for r in _result(good, asset="state_metrics").check_results)

    real = C.protect
    left: list[tuple] = []

    def leave_one_small_cell(cells, margins, *args, **kwargs):
        out, conflicts = real(cells, margins, *args, **kwargs)
        small = out.with_row_index("_i").filter(pl.col("publish") & (pl.col("suppression_reason") == PRIMARY_REASON))
        i = small["_i"][0]
        left.append(tuple(small.row(0, named=True)[c] for c in ("metric_id", "unit_id", "stratum")))
        shown = pl.int_range(pl.len()) == i
        return out.with_columns(suppressed=pl.when(shown).then(False).otherwise(pl.col("suppressed")),
                                suppression_reason=pl.when(shown).then(None).otherwise(pl.col("suppression_reason"))), conflicts

    monkeypatch.setattr(C, "protect", leave_one_small_cell)
    meta = pipeline.build_state_metrics(layout, config)
    assert len(left) == 1 and meta["small_cells"] == 1     # the one cell left shown
    checks = {r.check_name: r for r in _result(meta, asset="state_metrics").check_results}
    assert checks["no_small_cells"].passed is False and _value(checks["no_small_cells"].metadata["small_cells"]) == 1
    assert "restricted/withheld/equity_plan/state_metrics.parquet" in checks["no_small_cells"].description
    assert not layout.state_metrics.exists()     # the earlier run's table is gone from public/
    held = pl.read_parquet(withheld_path(layout, layout.state_metrics))
    assert held.columns == published.columns
    # the withheld table shows the cell the published one hid
    metric, unit, stratum = left[0]
    key = (pl.col("metric_id") == metric) & (pl.col("unit_id") == unit) & (pl.col("stratum") == stratum)
    assert published.filter(key)["suppressed"].any() and not held.filter(key)["suppressed"].all()
    assert set(held.filter(pl.col("suppressed"))["suppression_reason"]) <= {PUBLIC_REASON}
    assert [r["public_file"] for r in withheld_outputs(layout)] == ["public/equity_plan/state_metrics.parquet"]
    assert withheld_outputs(layout)[0]["checks"]["no_small_cells"] == 1
