"""Project-level contracts: README commands, CI, generated docs, Dagster definitions, CLI start-up."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = readme_commands()[:2]
    assert "equity-pipeline demo" in demo
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_generated_docs_are_current():
    from equity_pipeline.docs_gen import main

    assert main(["--check"]) == 0, "run python -m equity_pipeline.docs_gen"


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_definitions_load_job_schedule_and_checks():
    from assets.definitions import defs

    job = defs.resolve_job_def("equity_pipeline_job")
    assert job is not None
    assert defs.resolve_schedule_def("monthly_refresh").cron_schedule == "0 6 2 * *"
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"members", "medical_claims", "BCS_member_results", "public_rates", "equity_report", "run_manifest"} <= keys


def test_help_is_fast_and_imports_nothing_heavy():
    code = "import sys, equity_pipeline.cli as c; c.build_parser(); print(','.join(m for m in ('dagster','polars','great_expectations','matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
