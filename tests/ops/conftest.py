"""Shared fixtures for the operations tests: one small generated dataset and one clean run per session.

Runs use a fixed ``run_date`` (config file) so that results do not depend on the day the tests run."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from equity_pipeline.suites import TABLES

REPO = Path(__file__).resolve().parents[2]
MEMBERS, SEED = 800, 23
#: a proportion, an event rate and the two money measures (float sums: the determinism risk); fewer
#: measures keep the report, which draws every chart, short
CONFIG = "measurement_year: 2025\nrun_date: 2026-11-22\nmeasures: [BCS, ED_VISITS, TCOC_PMPM, PRIMARY_CARE_SHARE]\n"

_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?")


@pytest.fixture(scope="session")
def ops_input(tmp_path_factory) -> Path:
    from equity_pipeline.generate import generate

    out = tmp_path_factory.mktemp("ops_input")
    generate(members=MEMBERS, seed=SEED, out=out, messy_share=0.02, measurement_year=2025)
    return out


@pytest.fixture(scope="session")
def ops_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ops_config") / "program.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def run_in_process(input_dir: Path, out: Path, config: Path) -> str:
    """``run_pipeline`` in this process, leaving DAGSTER_HOME as it was (run_pipeline sets it)."""
    from equity_pipeline.cli import run_pipeline

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        return run_pipeline(input_dir, out, str(config), quiet=True)


@pytest.fixture(scope="session")
def clean_run(ops_input, ops_config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ops_clean") / "out"
    run_in_process(ops_input, out, ops_config)
    return out


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}  # the CLI then uses <out>/.dagster
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "equity_pipeline.cli", *args]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=timeout)


def public_files(out: Path) -> dict[str, bytes]:
    """Every file under ``public/``, as bytes."""
    root = out / "public"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def normalized(text: str) -> str:
    return _TIMESTAMP.sub("<timestamp>", _RUN_ID.sub("<run-id>", text))


def audit_files(out: Path) -> dict[str, str]:
    """Outputs besides public/ that must not change between runs on the same inputs, with run ids and
    timestamps masked: counts/, validation/<table>.json, manifest.json, report/index.html."""
    paths = [*sorted((out / "counts").glob("*.json")), *[out / "validation" / f"{t}.json" for t in TABLES],
             out / "manifest.json", out / "report" / "index.html"]
    return {str(p.relative_to(out)): normalized(p.read_text(encoding="utf-8")) for p in paths if p.is_file()}


def temp_files(out: Path) -> list[str]:
    """Temp files of atomic writes left in the output folder (Dagster's own folder excluded)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.tmp") if ".dagster" not in p.relative_to(out).parts)
