"""The one resource every asset uses: where inputs and outputs live, and the program config file."""

import os
from pathlib import Path

import dagster as dg

from equity_pipeline.config import ProgramConfig, load_config
from equity_pipeline.layout import OutputLayout


class PipelineResource(dg.ConfigurableResource):
    """Input folder (canonical tables), output folder, and optional program config YAML.

    Defaults come from ``EQUITY_INPUT_DIR`` / ``EQUITY_OUT_DIR`` / ``EQUITY_CONFIG`` so that
    ``dagster dev -w workspace.yaml`` works after ``equity-pipeline demo`` (which writes
    ``demo_out/input`` and ``demo_out``)."""

    input_dir: str = os.environ.get("EQUITY_INPUT_DIR", "demo_out/input")
    out_dir: str = os.environ.get("EQUITY_OUT_DIR", "demo_out")
    config_file: str | None = os.environ.get("EQUITY_CONFIG") or None
    run_date: str | None = None
    # input format of input_dir: canonical (default) or a source of sources.READERS (synthea, fhir, ahc-hrsn,
    # tuva, cms-rif, desynpuf, ...; docs/sources.md); EQUITY_SOURCE
    source: str = os.environ.get("EQUITY_SOURCE", "canonical")

    @property
    def input_path(self) -> Path:
        """The folder of canonical tables the ingest step reads: input_dir itself for canonical
        input, else the tables the ``canonical_input`` asset converted (restricted/canonical_input)."""
        from equity_pipeline.sources import ingest_dir

        return ingest_dir(self.source, Path(self.input_dir), Path(self.out_dir))

    @property
    def source_input_path(self) -> Path:
        """input_dir as given (in the ``source`` format)."""
        return Path(self.input_dir)

    @property
    def layout(self) -> OutputLayout:
        return OutputLayout(Path(self.out_dir)).prepare()

    @property
    def program(self) -> ProgramConfig:
        from datetime import date

        return load_config(self.config_file, run_date=date.fromisoformat(self.run_date) if self.run_date else None)
