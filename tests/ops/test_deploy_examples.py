"""deploy/dagster.yaml: everything but the Postgres storage block is valid Dagster 1.13 instance config."""
from __future__ import annotations

import dagster as dg
import yaml

from tests.ops.conftest import REPO


def test_example_instance_config_loads(tmp_path):
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text(encoding="utf-8"))
    assert set(config["storage"]) == {"postgres"}  # Postgres needs dagster-postgres and a server: not loaded here
    assert config["telemetry"] == {"enabled": False}
    del config["storage"]
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert instance.run_monitoring_enabled


def test_example_yaml_files_parse():
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        assert yaml.safe_load(path.read_text(encoding="utf-8")), path
