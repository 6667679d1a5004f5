"""Big source files read and mapped in bounded batches (issue 8 "huge files streamed").

``common.iter_table`` reads a file in batches of at most ``BATCH_ROWS`` rows; the claim files of
``cms-rif``, ``desynpuf`` and ``tuva`` are mapped batch by batch and spilled to temporary Parquet
parts (``common.SpilledTable``) that the writer streams into the canonical table. The reference
here is the one-shot path: the same conversion with a batch size larger than every file (one batch
per file, i.e. the whole file at once, as ``read_table`` reads it). Shrinking the batch to a few rows
must not change one value, row order, count or quarantine record; a spy on the batch reader shows
that the batched path was really taken and that no batch exceeded the limit (a memory bound that
does not depend on timing).
"""
from __future__ import annotations

import csv
import gzip
import json
import tempfile
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.errors import StructuralError
from equity_pipeline.sources import canonical_input_dir, cms_common, common, convert, tuva
from equity_pipeline.sources.common import SOURCE_ROW, iter_table, read_table

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "claims"
RIF = SHARED / "cms_ccw_rif_samples"
SYNPUF = SHARED / "cms_desynpuf_samples" / "DE_0"
TUVA = SHARED / "tuva_synthetic_claims"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared claims sample not found at {path} (expected ../shared/realdata next to the repo)")
    return path


# ---------------------------------------------------------------------------------------------
# iter_table: batches put together = read_table
# ---------------------------------------------------------------------------------------------
def _rows(n: int) -> list[list[str]]:
    # leading zeros, a quoted delimiter, a quoted line break every 7th row, an accent, blanks
    return [[f"{i:05d}", f'"Apt {i}, rear"' if i % 3 else f'"two\nlines {i}"', "Zoë" if i % 7 == 0 else "  ", f"{i % 4:02d}"]
            for i in range(n)]


def _write(path: Path, n: int, *, encoding: str = "utf-8", bom: bool = False, eol: str = "\n", gz: bool = False) -> None:
    text = eol.join(",".join(r) for r in [["zip", "note", "name", "code"], *_rows(n)]) + eol
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("kind", ["utf8", "bom_crlf", "latin1", "gzip", "parquet"])
def test_batches_put_together_equal_the_whole_file(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = tmp_path / ("t.csv.gz" if kind == "gzip" else "t.parquet" if kind == "parquet" else "t.csv")
    if kind == "parquet":
        _write(tmp_path / "src.csv", 103)
        read_table(tmp_path / "src.csv").drop(SOURCE_ROW).write_parquet(path)
    else:
        _write(path, 103, encoding="latin-1" if kind == "latin1" else "utf-8", bom=kind == "bom_crlf",
               eol="\r\n" if kind == "bom_crlf" else "\n", gz=kind == "gzip")
    whole = read_table(path, required=("ZIP",), optional=("absent",))
    batches = list(iter_table(path, batch_rows=10, required=("ZIP",), optional=("absent",)))
    assert [b.height for b in batches] == [10] * 10 + [3]  # 103 rows, never more than 10 at once
    together = pl.concat(batches)
    assert together.equals(whole)
    assert together[SOURCE_ROW].to_list() == list(range(1, 104))  # numbered on across batches
    assert whole.height == 103 and whole["ZIP"][0] == "00000" and whole["name"][7] == "Zoë"
    assert whole["note"][0] == "two\nlines 0" and whole["name"][1] is None
    assert not list((tmp_path / "tmp").iterdir())  # transcoded copies removed


def test_header_only_file_gives_one_empty_batch_and_faults_are_structural(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b\n", encoding="utf-8")
    batches = list(iter_table(path, optional=("c",)))
    assert len(batches) == 1 and batches[0].height == 0 and batches[0].columns == [SOURCE_ROW, "a", "b", "c"]
    with pytest.raises(StructuralError, match=r"h\.csv, column member_id: required column is missing"):
        list(iter_table(path, required=("member_id",)))
    ragged = tmp_path / "r.csv"
    ragged.write_text("a,b\n" + "1,2\n" * 30 + "1,2,3\n", encoding="utf-8")
    with pytest.raises(StructuralError, match=r"r\.csv: not a readable delimited text file"):
        list(iter_table(ragged, batch_rows=4))


# ---------------------------------------------------------------------------------------------
# readers: batched conversion = one-shot conversion
# ---------------------------------------------------------------------------------------------
def _convert(source: str, folder: Path, out: Path, batch_rows: int, monkeypatch) -> tuple[dict, dict[str, pl.DataFrame], list[int]]:
    """Convert with ``BATCH_ROWS = batch_rows``; the sizes of the claim-file batches read."""
    sizes: list[int] = []

    def spy(path, **kw):
        for batch in iter_table(path, **kw):
            sizes.append(batch.height)
            yield batch

    monkeypatch.setattr(common, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(cms_common, "iter_table", spy)  # cms-rif and desynpuf claim files
    monkeypatch.setattr(tuva, "iter_table", spy)
    result = convert(source, folder, out)
    d = canonical_input_dir(out)
    tables = {str(p.relative_to(d)): pl.read_parquet(p) for p in sorted(d.rglob("*.parquet"))}
    result = {k: v for k, v in result.items() if k != "input_dir"}
    return result, tables, sizes


def _same(a: tuple, b: tuple) -> None:
    assert json.dumps(a[0], sort_keys=True) == json.dumps(b[0], sort_keys=True)  # counts, notes, reasons, warnings
    assert a[1].keys() == b[1].keys()  # the same tables and quarantine files
    for name in a[1]:
        assert a[1][name].equals(b[1][name]), name  # same values, same row order


def _lines(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


@pytest.mark.parametrize("source, folder, claim_files, batch", [
    ("cms-rif", RIF, ("carrier.csv", "inpatient.csv", "outpatient.csv", "snf.csv", "hha.csv", "hospice.csv", "dme.csv"), 7),
    ("tuva", TUVA, ("medical_claim_seed.csv",), 150),
])
def test_claim_files_converted_in_batches_equal_the_one_shot_conversion(source, folder, claim_files, batch, tmp_path, monkeypatch):
    need(folder)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    whole = _convert(source, folder, tmp_path / "whole", 10**9, monkeypatch)
    rows = sum(_lines(folder / f) for f in claim_files)
    # one-shot: one batch per claim file (cms-rif reads its claim files twice: keys, then lines)
    passes = 2 if source == "cms-rif" else 1
    assert sum(whole[2]) == passes * rows and len(whole[2]) == passes * len(claim_files)
    batched = _convert(source, folder, tmp_path / "batched", batch, monkeypatch)
    assert max(batched[2]) <= batch and sum(batched[2]) == passes * rows
    assert len(batched[2]) > len(whole[2])  # the batched path was taken
    _same(whole, batched)
    assert whole[1]["medical_claims.parquet"].height >= rows - whole[0]["totals"]["quarantined"]
    assert not list((tmp_path / "tmp").iterdir())  # spilled parts removed after writing


def test_desynpuf_claim_segments_in_different_batches_are_numbered_as_one_claim(tmp_path, monkeypatch):
    """A DE-SynPUF inpatient claim continued in a second segment row at the end of the file: with one
    row per batch its two segments are mapped in different batches, and its lines are still
    numbered 1..n across both, exactly as when the file is read whole."""
    src = need(SYNPUF)
    folder = tmp_path / "in"
    folder.mkdir()
    for p in src.glob("*.csv"):
        (folder / p.name).write_bytes(p.read_bytes())
    inpatient = next(folder.glob("*Inpatient*"))
    with inpatient.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    second = dict(rows[0], SEGMENT="2")
    with inpatient.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows([*rows, second])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    whole = _convert("desynpuf", folder, tmp_path / "whole", 10**9, monkeypatch)
    batched = _convert("desynpuf", folder, tmp_path / "batched", 1, monkeypatch)
    assert set(batched[2]) == {1} and len(batched[2]) > len(whole[2])
    _same(whole, batched)
    claim = batched[1]["medical_claims.parquet"].filter(pl.col("claim_id") == rows[0]["CLM_ID"])
    assert claim["claim_line"].to_list() == [str(i) for i in range(1, claim.height + 1)] and claim.height == 2
    assert not list((tmp_path / "tmp").iterdir())


def test_spilled_parts_are_removed_when_a_conversion_fails(tmp_path, monkeypatch):
    """The outpatient file lacks CLM_ID: the conversion stops with a structural error after the
    carrier lines were spilled, and no member-level temporary file is left behind."""
    src = need(SYNPUF)
    folder = tmp_path / "in"
    folder.mkdir()
    for p in src.glob("*.csv"):
        text = p.read_text(encoding="utf-8")
        if "Outpatient" in p.name:
            text = text.replace("CLM_ID", "CLAIM_NUMBER", 1)
        (folder / p.name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(StructuralError, match="column CLM_ID: required column is missing"):
        convert("desynpuf", folder, tmp_path / "out")
    assert not list((tmp_path / "tmp").iterdir())


# ---------------------------------------------------------------------------------------------
# Tuva: ICD-9 carried and flagged, as in the CMS readers
# ---------------------------------------------------------------------------------------------
def test_tuva_icd9_lines_are_carried_and_flagged_not_quarantined(tmp_path):
    """Two lines of Tuva's seed rewritten as 2014 ICD-9 claims (diagnosis_code_type icd-9-cm, codes
    4280 and V5869; procedure_code_type icd-9-pcs, code 3722): like cms-rif and desynpuf, the ICD-9
    codes go to icd9_diagnosis_codes / icd9_procedure_codes with diagnosis_code_system ICD-9-CM, the
    ICD-10 columns stay empty, the lines are mapped (not quarantined), counted in notes and warned."""
    src = need(TUVA)
    folder = tmp_path / "in"
    folder.mkdir()
    for p in src.glob("*.csv"):
        (folder / p.name).write_bytes(p.read_bytes())
    path = folder / "medical_claim_seed.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    for i in (0, 5):
        rows[i].update({f"diagnosis_code_{k}": "" for k in range(1, 26)})
        rows[i].update({f"procedure_code_{k}": "" for k in range(1, 26)})
        rows[i].update(diagnosis_code_type="icd-9-cm", diagnosis_code_1="4280", diagnosis_code_2="V58.69",
                       claim_start_date="2014-03-01", claim_end_date="2014-03-04")
    rows[5].update(procedure_code_type="icd-9-pcs", procedure_code_1="3722")
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    result = convert("tuva", folder, tmp_path / "out")
    c = result["files"]["medical_claim_seed.csv"]
    assert (c["read"], c["mapped"], c["quarantined"]) == (len(rows), len(rows), 0)
    assert c["notes"]["icd9_diagnosis_lines"] == 2 and c["notes"]["icd9_procedure_lines"] == 1
    assert "icd9_codes" in result["warnings"]
    med = pl.read_parquet(canonical_input_dir(tmp_path / "out") / "medical_claims.parquet")
    nine = med.filter(pl.col("icd9_diagnosis_codes").is_not_null())
    assert nine.height == 2
    assert nine["icd9_diagnosis_codes"].to_list() == ["4280|V5869"] * 2  # dots removed, order kept
    assert nine["diagnosis_code_system"].to_list() == ["ICD-9-CM"] * 2
    assert all(n == 2 for n in nine.select(pl.col(r"^(diagnosis|procedure)_code_\d+$")).null_count().row(0))  # never in ICD-10 columns
    assert nine["icd9_procedure_codes"].to_list() == [None, "3722"]
    assert med.filter(pl.col("icd9_diagnosis_codes").is_null())["diagnosis_code_system"].drop_nulls().unique().to_list() == ["ICD-10-CM"]
