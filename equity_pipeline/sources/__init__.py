"""Source-format readers: real-world exports -> the canonical input tables (issue 8).

``convert(source, input_dir, out_root)`` maps a folder in a source format to the canonical tables
(docs/input-contract.md), written as Parquet under ``<out>/restricted/canonical_input/`` (owner-only),
and writes the per-source-file reconciliation ``<out>/validation/source_reconciliation.json``:
for every file read, ``read = mapped + quarantined`` with the quarantine reasons, plus warnings for
files missing from the export. The quarantined source rows (row number and reason, no values) go to
``<out>/restricted/canonical_input/_quarantine/``. The ingest step then validates the converted
tables exactly as it validates canonical input.

Sources: ``canonical`` (no conversion: ``--input`` already holds the canonical tables),
``synthea`` (Synthea CSV export), ``fhir`` (FHIR R4 transaction/collection bundles as ``.json`` or
Bulk Data ``.ndjson``), ``cms-rif`` (CMS CCW RIF extracts: pipe-delimited beneficiary, claim and PDE
files), ``desynpuf`` (CMS DE-SynPUF 2008-2010 CSV files), ``ahc-hrsn`` (AHC HRSN screening flat files
in New York's SHIN-NY ``SDOH_PtInfo`` / ``SDOH_ScreeningProf`` / ``SDOH_ScreeningObs`` layout), ``tuva``
(Tuva Project input-layer tables). ``common.read_table`` reads a source file for any reader (CSV or
Parquet, delimiter and encoding sniffed or declared, all values text); ``common.iter_table`` reads
the same way in bounded batches, and the big claim files (cms-rif, desynpuf, Tuva medical_claim)
are mapped batch by batch into a ``common.SpilledTable`` that the writer streams. Mapping tables:
``sources/data/*.csv``; documented in docs/sources.md.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from equity_pipeline.errors import ConfigError, PipelineError
from equity_pipeline.io import write_json_atomic
from equity_pipeline.sources.common import Reconciliation, write_canonical

CANONICAL = "canonical"
#: source name -> module under equity_pipeline.sources with ``convert(input_dir, recon) -> {table: frame}``
#: (imported only when that source is used). Add a reader by adding one line here.
READERS = {
    "synthea": "synthea",
    "fhir": "fhir",
    "ahc-hrsn": "ahc_hrsn",
    "tuva": "tuva",
    "cms-rif": "cms_rif",
    "desynpuf": "desynpuf",
}
SOURCES = (CANONICAL, *READERS)


def canonical_input_dir(out_root: Path) -> Path:
    """Where converted canonical tables are written (under restricted/: member-level data)."""
    return Path(out_root) / "restricted" / "canonical_input"


def reconciliation_path(out_root: Path) -> Path:
    return Path(out_root) / "validation" / "source_reconciliation.json"


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    return source


def ingest_dir(source: str, input_dir: Path, out_root: Path) -> Path:
    """The folder the ingest step reads: ``input_dir`` for canonical input, else the converted tables."""
    return Path(input_dir) if check_source(source) == CANONICAL else canonical_input_dir(out_root)


def convert(source: str, input_dir: Path, out_root: Path) -> dict[str, Any]:
    """Convert ``input_dir`` from ``source`` format; return the reconciliation (counts only, no values)."""
    check_source(source)
    input_dir = Path(input_dir)
    recon = Reconciliation(source=source, input_dir=str(input_dir))
    if source != CANONICAL:
        if not input_dir.is_dir():
            raise PipelineError(f"input folder not found: {input_dir}")
        import importlib

        reader = importlib.import_module(f"equity_pipeline.sources.{READERS[source]}")
        try:
            tables = reader.convert(input_dir, recon)
            # a reader may name its own writer (common.write_canonical_contract keeps every contract column)
            getattr(reader, "write_tables", write_canonical)(tables, canonical_input_dir(out_root), recon)
        finally:
            recon.discard_spills()  # batches a reader spilled to temporary Parquet parts (common.SpilledTable)
    result = recon.to_dict()
    write_json_atomic(result, reconciliation_path(out_root))
    return result


def manifest_section(out_root: Path) -> dict[str, Any] | None:
    """The reconciliation JSON of the last conversion in ``out_root`` (for manifest.json), or None."""
    path = reconciliation_path(out_root)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
