"""Issue 7: after a step fails (a full disk while writing public/rates.csv), re-execution from failure runs
only the failed and skipped steps and the outputs match a clean run byte for byte."""
from __future__ import annotations

import errno

import dagster as dg
import pytest

from assets.jobs import reexecute_from_failure, run_job
from equity_pipeline import publish
from tests.ops.conftest import audit_files, public_files, temp_files

pytestmark = pytest.mark.slow


def test_reexecute_from_failure_gives_clean_run_outputs(ops_input, ops_config, clean_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_write_csv = publish.write_csv_atomic   # public CSVs are written by publish.publish_checked
    failures = []

    def disk_full_once(frame, path):
        if not failures and path == out / "public" / "rates.csv":
            failures.append(path.name)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_csv(frame, path)

    monkeypatch.setattr(publish, "write_csv_atomic", disk_full_once)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        first = run_job(instance, input_dir=str(ops_input), out_dir=str(out), config_file=str(ops_config))
        assert not first.success and failures == ["rates.csv"]
        failed = [e.step_key for e in first.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert failed == ["public_rates"]
        assert not (out / "public" / "rates.csv").exists() and not (out / "report" / "index.html").exists()
        assert temp_files(out) == []  # the failed write left no temp file behind

        again = reexecute_from_failure(instance, first.run_id)
        assert again.success
        assert again.dagster_run.parent_run_id == first.run_id
        rerun_steps = {e.step_key for e in again.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
        assert "public_rates" in rerun_steps and "run_manifest" in rerun_steps
        assert not rerun_steps & {"members", "medical_claims", "measure_events", "stratified_counts"}  # succeeded before: not re-run

    assert public_files(out) == public_files(clean_run)
    assert audit_files(out) == audit_files(clean_run)
