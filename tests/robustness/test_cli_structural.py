"""Structural faults through the command line (in process, tiny inputs): exit code 2, one error line
naming the file and column, no data values anywhere on the console, and no partial public outputs.

Two whole-pipeline runs only (each costs seconds of Dagster start-up); every other file fault is
tested on the ingest of one table in test_bad_files.py, which the CLI reports the same way."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from equity_pipeline import cli
from tests.builders import claim, member, span, write_table
from tests.robustness.corpus import PHI_VALUES

ERROR = "equity-pipeline: error: "
#: what a run publishes; none of it may exist after a structural fault
PUBLISHED = ("public", "report", "audit", "counts", "manifest.json")


def _input(folder: Path) -> Path:
    members = [member(f"M{i:03d}") for i in range(12)]
    write_table(folder, "members", members)
    write_table(folder, "enrollment", [span(m["member_id"]) for m in members])
    write_table(folder, "medical_claims", [claim(m["member_id"], "2025-03-01", hcpcs="77067") for m in members[:6]])
    return folder


BASE_CONFIG = "measurement_year: 2025\nrun_date: 2026-11-22\nmeasures: [BCS]\n"


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory) -> Path:
    """One Dagster instance for these runs: creating its SQLite storage is most of a failing run's time."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return home


@pytest.fixture(autouse=True)
def _shared_dagster_home(dagster_home, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))  # restored after each test


def _run(tmp_path: Path, capfd, monkeypatch, inp: Path, config: str = BASE_CONFIG) -> tuple[int, str, Path]:
    cfg = tmp_path / "program.yaml"
    cfg.write_text(config, encoding="utf-8")
    out = tmp_path / "out"
    code = cli.main(["run", "--input", str(inp), "--out", str(out), "--config", str(cfg)])
    captured = capfd.readouterr()
    console = captured.out + captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith(ERROR)]
    assert len(errors) == 1, captured.err[-2000:]
    assert captured.err.rstrip().splitlines()[-1] == errors[0], "the error line must be the last line"
    assert not any(v in console for v in PHI_VALUES), "a data value reached the console"
    return code, errors[0][len(ERROR):], out


def _published(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for name in PUBLISHED for p in [out / name, *(out / name).rglob("*")]
                  if p.is_file())


def test_missing_required_column(tmp_path, capfd, monkeypatch):
    inp = _input(tmp_path / "in")
    text = (inp / "medical_claims.csv").read_text().splitlines()
    cols = text[0].split(",")
    drop = cols.index("diagnosis_code_1")
    (inp / "medical_claims.csv").write_text("\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != drop) for line in text) + "\n")
    code, message, out = _run(tmp_path, capfd, monkeypatch, inp)
    assert code == 2 and message.startswith("medical_claims.csv, column diagnosis_code_1: ")
    assert _published(out) == []


def test_malformed_optional_table_with_member_data(tmp_path, capfd, monkeypatch):
    """An unclosed quote in front of member data: the message names the file and the row, quotes nothing."""
    inp = _input(tmp_path / "in")
    (inp / "providers.csv").write_text('provider_id,id_type,name\n1234567893,npi,"Quinzella Vantongeren\n'
                                       "1957-03-19,MBR-QX-0001,CLM-QX-000001\n", encoding="utf-8")
    code, message, out = _run(tmp_path, capfd, monkeypatch, inp)
    assert code == 2 and message.startswith("providers.csv, row 1: ") and "never closed" in message, message
    assert _published(out) == []


def test_full_disk_during_the_run(tmp_path, capfd, monkeypatch):
    """The disk fills while the first table is written: one clear error line, exit 2, and an output of
    an earlier run is left as it was (no half-written file, no temp file)."""
    import errno

    from equity_pipeline.validation import ingest

    inp = _input(tmp_path / "in")
    earlier = tmp_path / "out" / "public" / "rates.csv"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("earlier run\n")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ingest, "sink_parquet_atomic", disk_full)
    code, message, out = _run(tmp_path, capfd, monkeypatch, inp)
    assert code == 2 and message.startswith(f"cannot write outputs in {out} (No space left on device)"), message
    assert earlier.read_text() == "earlier run\n"
    assert not [p for p in out.rglob("*.tmp")]
    assert json.loads((out / ".run.lock").read_text())["state"] == "failed"


@pytest.mark.parametrize("config, words", [
    ("measures: [BCS, NOPE]\n", ["NOPE", "measure"]),
    ("measures: [BCS]\nstratifiers: [race_ethnicity, planet]\n", ["planet", "stratifier"]),
    ("measures: [BCS]\nrun_date: 2026-02-30\n", ["program.yaml"]),  # YAML reads it as a date, which fails
    ("measures: [BCS]\nrun_date: 20261122\n", ["run_date", "20261122"]),
])
def test_bad_config_fails_before_anything_is_written(tmp_path, capfd, monkeypatch, config, words):
    inp = _input(tmp_path / "in")
    code, message, out = _run(tmp_path, capfd, monkeypatch, inp, config=config)
    assert code == 2 and all(w in message for w in words), message
    assert not out.exists()


def test_input_folder_missing(tmp_path, capfd, monkeypatch):
    code, message, out = _run(tmp_path, capfd, monkeypatch, tmp_path / "nowhere")
    assert code == 2 and "input folder not found" in message and not out.exists()
