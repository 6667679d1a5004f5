"""The conversion step is a Dagster asset upstream of ingest, configured through PipelineResource."""
from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.definitions import defs
from assets.resources import PipelineResource


def test_canonical_input_asset_feeds_the_ingest_assets():
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("canonical_input")
    assert key in graph.get_all_asset_keys()
    assert graph.get(key).group_name == "ingest"
    assert key in graph.get(dg.AssetKey("members")).parent_keys
    job = defs.resolve_job_def("equity_pipeline_job")
    assert "canonical_input" in {n.name for n in job.nodes_in_topological_order}


def test_source_setting_points_ingest_at_the_converted_tables(tmp_path):
    canonical = PipelineResource(input_dir=str(tmp_path / "in"), out_dir=str(tmp_path / "out"), source="canonical")
    synthea = PipelineResource(input_dir=str(tmp_path / "in"), out_dir=str(tmp_path / "out"), source="synthea")
    assert canonical.input_path == tmp_path / "in"
    assert synthea.input_path == tmp_path / "out" / "restricted" / "canonical_input"
    assert synthea.source_input_path == tmp_path / "in"


def test_cli_run_accepts_source(tmp_path):
    from equity_pipeline.cli import build_parser

    args = build_parser().parse_args(["run", "--input", str(tmp_path), "--out", str(tmp_path / "o"), "--source", "fhir"])
    assert args.source == "fhir"
    assert build_parser().parse_args(["run", "--input", "x", "--out", "y"]).source == "canonical"


def test_unknown_source_fails_before_dagster_starts(tmp_path):
    import pytest

    from equity_pipeline.cli import main, run_pipeline
    from equity_pipeline.errors import ConfigError

    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit) as exc:  # argparse: exit code 2 with the list of choices
        main(["run", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--source", "hl7v2"])
    assert exc.value.code == 2
    with pytest.raises(ConfigError, match="unknown source"):  # the Python entry point checks too
        run_pipeline(tmp_path / "in", tmp_path / "o", source="hl7v2")
    assert not Path(tmp_path / "o" / ".dagster").exists()
