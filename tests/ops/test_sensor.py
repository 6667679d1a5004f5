"""Sensor new_input_files: one run per new input content, keyed by content hashes (build_sensor_context)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import PipelineResource
from assets.sensors import SETTLE_SECONDS_ENV, new_input_files


def _write(folder: Path, name: str, text: str, *, age: float = 3600) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def _tick(folder: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor,
                                      resources={"pipeline_config": PipelineResource(input_dir=str(folder), out_dir=str(folder / "out"))})
    return new_input_files(context)


def _runs(result: dg.SensorResult) -> list[dg.RunRequest]:
    return list(result.run_requests or [])


@pytest.fixture(autouse=True)
def _settle(monkeypatch):
    monkeypatch.setenv(SETTLE_SECONDS_ENV, "30")


def test_new_file_runs_once_and_cursor_holds_hashes(tmp_path):
    _write(tmp_path, "members.csv", "member_id\nM1\n")
    _write(tmp_path, "notes.txt", "not an input table")  # ignored: not <table><suffix>
    _write(tmp_path, ".enrollment.csv.tmp", "partial copy")  # ignored: hidden temp file

    first = _tick(tmp_path, None)
    [request] = _runs(first)
    assert request.run_key.startswith("inputs-")
    assert request.tags["equity_pipeline/trigger"] == "new_input_files"
    cursor = json.loads(first.cursor)
    assert list(cursor) == ["members.csv"] and len(cursor["members.csv"]) == 64

    again = _tick(tmp_path, first.cursor)  # nothing changed: no run
    assert _runs(again) == [] and "no new or changed" in again.skip_reason.skip_message
    assert json.loads(again.cursor) == cursor


def test_changed_content_runs_again_with_a_new_run_key(tmp_path):
    _write(tmp_path, "members.csv", "member_id\nM1\n")
    first = _tick(tmp_path, None)
    _write(tmp_path, "members.csv", "member_id\nM1\nM2\n")
    second = _tick(tmp_path, first.cursor)
    [r1], [r2] = _runs(first), _runs(second)
    assert r1.run_key != r2.run_key
    assert json.loads(second.cursor)["members.csv"] != json.loads(first.cursor)["members.csv"]

    # back to the first content after the change: a run again (not deduplicated against the first run)
    _write(tmp_path, "members.csv", "member_id\nM1\n")
    [r3] = _runs(_tick(tmp_path, second.cursor))
    assert r3.run_key not in (r1.run_key, r2.run_key)


def test_rename_with_same_content_does_not_run(tmp_path):
    _write(tmp_path, "members.csv", "member_id\nM1\n")
    first = _tick(tmp_path, None)
    (tmp_path / "members.csv").rename(tmp_path / "members.txt")
    renamed = _tick(tmp_path, first.cursor)
    assert _runs(renamed) == []
    assert "renamed" in renamed.skip_reason.skip_message
    assert list(json.loads(renamed.cursor)) == ["members.txt"]  # cursor follows the new name


def test_added_table_runs_and_same_tick_twice_gives_same_run_key(tmp_path):
    _write(tmp_path, "members.csv", "member_id\nM1\n")
    first = _tick(tmp_path, None)
    _write(tmp_path, "enrollment.csv", "member_id\nM1\n")
    a, b = _tick(tmp_path, first.cursor), _tick(tmp_path, first.cursor)
    assert [r.run_key for r in _runs(a)] == [r.run_key for r in _runs(b)] != []
    assert set(json.loads(a.cursor)) == {"members.csv", "enrollment.csv"}


def test_file_still_being_written_waits_and_keeps_cursor(tmp_path):
    _write(tmp_path, "members.csv", "member_id\nM1\n")
    first = _tick(tmp_path, None)
    _write(tmp_path, "medical_claims.csv", "claim_id\nC1\n", age=0)  # just modified: may be a partial copy
    waiting = _tick(tmp_path, first.cursor)
    assert _runs(waiting) == [] and "settle" in waiting.skip_reason.skip_message
    assert waiting.cursor is None  # cursor untouched: the file is picked up once it settles
    os.utime(tmp_path / "medical_claims.csv", (time.time() - 3600,) * 2)
    assert len(_runs(_tick(tmp_path, first.cursor))) == 1


def test_missing_folder_skips(tmp_path):
    result = _tick(tmp_path / "nope", None)
    assert _runs(result) == [] and "not found" in result.skip_reason.skip_message
