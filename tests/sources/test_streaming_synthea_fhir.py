"""Synthea, FHIR Bulk NDJSON and AHC HRSN read and mapped in bounded batches (issue 8 "huge files streamed").

The reference is the one-shot path: the same conversion with a batch size larger than every file
(one batch per file). Shrinking the batch to a few rows must not change one value, row order,
count, note or quarantine record. Spies on the batch readers show that the batched path was taken
and that no batch exceeded the limit. Real samples (../shared/realdata/synthea) are skipped with a
reason when absent; the hand-made inputs always run.
"""
from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.sources import ahc_hrsn, canonical_input_dir, common, convert, fhir, synthea
from tests.sources.conftest import FHIR_SUBSET, SETS, need

AHC_FIXTURES = Path(__file__).parent / "fixtures" / "ahc_hrsn"
WHOLE = 10**9
STREAM, LINE_BATCHES = synthea._stream, fhir._batches  # the real batchers (the spies wrap these)


def _convert(source: str, folder: Path, out: Path, batch: int, monkeypatch) -> tuple[dict, dict[str, pl.DataFrame], list[int]]:
    """Convert with every batch size set to ``batch``; the sizes of the batches the readers took."""
    sizes: list[int] = []

    def table_spy(path, **kw):
        for b in common.iter_table(path, **kw):
            sizes.append(b.height)
            yield b

    def stream_spy(lf):
        for b in STREAM(lf):
            sizes.append(b.height)
            yield b

    def lines_spy(lines):
        for b in LINE_BATCHES(lines):
            sizes.append(len(b))
            yield b

    monkeypatch.setattr(common, "BATCH_ROWS", batch)
    monkeypatch.setattr(synthea, "BATCH_ROWS", batch)
    monkeypatch.setattr(ahc_hrsn, "BATCH_ROWS", batch)
    monkeypatch.setattr(fhir, "BATCH_LINES", batch)
    monkeypatch.setattr(synthea, "iter_table", table_spy)
    monkeypatch.setattr(ahc_hrsn, "iter_table", table_spy)
    monkeypatch.setattr(synthea, "_stream", stream_spy)
    monkeypatch.setattr(fhir, "_batches", lines_spy)
    result = convert(source, folder, out)
    d = canonical_input_dir(out)
    tables = {str(p.relative_to(d)): pl.read_parquet(p) for p in sorted(d.rglob("*.parquet"))}
    return {k: v for k, v in result.items() if k != "input_dir"}, tables, sizes


def _same(a: tuple, b: tuple) -> None:
    assert json.dumps(a[0], sort_keys=True) == json.dumps(b[0], sort_keys=True)  # counts, notes, reasons, warnings, inputs
    assert a[1].keys() == b[1].keys()  # the same tables and quarantine files
    for name in a[1]:
        assert a[1][name].equals(b[1][name]), name  # same values, same row order


def _both(source: str, folder: Path, tmp_path: Path, batch: int, monkeypatch) -> tuple[tuple, tuple]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    whole = _convert(source, folder, tmp_path / "whole", WHOLE, monkeypatch)
    batched = _convert(source, folder, tmp_path / "batched", batch, monkeypatch)
    assert batched[2] and max(batched[2]) <= batch  # no batch over the limit
    assert len(batched[2]) > len(whole[2])  # the batched path was taken
    _same(whole, batched)
    assert not list((tmp_path / "tmp").iterdir())  # spilled parts and spools removed
    return whole, batched


def _data_lines(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


# ---------------------------------------------------------------------------------------------
# Synthea
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SETS))
def test_synthea_export_in_batches_equals_the_one_shot_conversion(name, tmp_path, monkeypatch):
    folder = need(SETS[name])
    whole, batched = _both("synthea", folder, tmp_path, 400, monkeypatch)
    # every row of the big files went through a bounded batch: the CSV batches add up to the files' data lines
    big = [f for f in synthea.BIG if (folder / f"{f}.csv").is_file()]
    read_sizes = sum(whole[0]["files"][f"{f}.csv"]["read"] for f in big)
    assert read_sizes == sum(_data_lines(folder / f"{f}.csv") for f in big)
    assert len(batched[2]) >= sum(-(-_data_lines(folder / f"{f}.csv") // 400) for f in big)


def _cut(src: Path, dst: Path, rows: int) -> None:
    """The export with each big file cut to its first ``rows`` rows (small files whole)."""
    dst.mkdir()
    for p in src.glob("*.csv"):
        if p.stem in synthea.BIG:
            pl.read_csv(p, infer_schema=False, n_rows=rows).write_csv(dst / p.name)
        else:
            (dst / p.name).write_bytes(p.read_bytes())


def _append(path: Path, row: dict[str, str], at: int | None = None) -> int:
    """Insert ``row`` (other columns empty) at data row ``at`` (None: the end); its 1-based row number."""
    frame = pl.read_csv(path, infer_schema=False)
    new = pl.DataFrame([{c: row.get(c) for c in frame.columns}], schema={c: pl.String for c in frame.columns})
    at = frame.height if at is None else at
    pl.concat([frame.head(at), new, frame.slice(at)]).write_csv(path)
    return at + 1


def test_synthea_links_across_batches_three_rows_at_a_time(tmp_path, monkeypatch):
    """A cut of a real export, three rows a batch, with a quarantined encounter near the top of
    encounters.csv and, in later batches of other files, a procedure, a condition and a claim of it
    and a transaction of that claim: each link crosses batches (and files), and each dependent row
    is quarantined for the encounter (or claim) as when the files are read whole."""
    src = need(SETS["ma27"])
    folder = tmp_path / "in"
    _cut(src, folder, 20)
    enc = pl.read_csv(folder / "encounters.csv", infer_schema=False).row(0, named=True)
    _append(folder / "encounters.csv", {**enc, "Id": "enc-bad", "ENCOUNTERCLASS": "teleport"}, at=1)
    proc = pl.read_csv(folder / "procedures.csv", infer_schema=False).row(0, named=True)
    proc_row = _append(folder / "procedures.csv", {**proc, "ENCOUNTER": "enc-bad"})
    cond = pl.read_csv(folder / "conditions.csv", infer_schema=False).row(0, named=True)
    cond_row = _append(folder / "conditions.csv", {**cond, "ENCOUNTER": "enc-bad"})
    claim_row = _append(folder / "claims.csv", {"Id": "claim-bad", "APPOINTMENTID": "enc-bad", "PATIENTID": enc["PATIENT"]})
    tx_row = _append(folder / "claims_transactions.csv", {"ID": "tx-bad", "CLAIMID": "claim-bad"})
    whole, batched = _both("synthea", folder, tmp_path, 3, monkeypatch)
    q = batched[1]
    for file, row, reason in (("procedures.csv", proc_row, "encounter_quarantined"), ("conditions.csv", cond_row, "encounter_quarantined"),
                              ("claims.csv", claim_row, "encounter_quarantined"), ("claims_transactions.csv", tx_row, "claim_not_mapped"),
                              ("encounters.csv", 2, "unmapped_encounter_class")):
        rows = q[f"_quarantine/{file}.parquet"].filter(pl.col("source_row") == row)
        assert rows["reason"].to_list() == [reason], file
    claims = q["medical_claims.parquet"]
    assert "enc-bad" not in claims["claim_id"].to_list()
    # lines numbered 1..n within each claim, across the batches they came from
    numbered = claims.group_by("claim_id").agg(pl.col("claim_line").cast(pl.Int64).sort(), pl.len())
    assert all(lines == list(range(1, n + 1)) for lines, n in numbered.select("claim_line", "len").iter_rows())


# ---------------------------------------------------------------------------------------------
# FHIR: bundles (one document each, read whole) and Bulk Data NDJSON (batches of lines)
# ---------------------------------------------------------------------------------------------
def test_fhir_bundles_mapped_in_batches_equal_the_one_shot_conversion(tmp_path, monkeypatch):
    folder = need(FHIR_SUBSET)
    whole, _ = _both("fhir", folder, tmp_path, 25, monkeypatch)
    assert whole[0]["totals"]["read"] > 1000


def _ndjson_from_bundles(src: Path, dst: Path) -> int:
    """The bundles' resources as Bulk Data files, one per resource type; the number of resources."""
    dst.mkdir()
    by_type: dict[str, list[str]] = {}
    for p in sorted(src.glob("*.json")):
        for entry in json.loads(p.read_text(encoding="utf-8")).get("entry") or []:
            res = entry["resource"]
            by_type.setdefault(res["resourceType"], []).append(json.dumps(res))
    for rtype, lines in by_type.items():
        (dst / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(len(v) for v in by_type.values())


def test_fhir_bulk_ndjson_from_real_bundles_in_batches_equals_one_shot(tmp_path, monkeypatch):
    n = _ndjson_from_bundles(need(FHIR_SUBSET), tmp_path / "in")
    whole, batched = _both("fhir", tmp_path / "in", tmp_path, 25, monkeypatch)
    assert whole[0]["totals"]["read"] == n  # every line read once, mapped or quarantined
    assert sum(batched[2]) >= 2 * n  # each line read from its file, then from the spool, in batches


def _res(rtype: str, rid: str, **kw) -> dict:
    return {"resourceType": rtype, "id": rid, **kw}


def _hand_made_bulk(folder: Path) -> None:
    folder.mkdir()
    pat = [_res("Patient", f"p{i}", gender="female", birthDate="1970-01-01") for i in range(1, 5)]
    enc = [_res("Encounter", f"e{i}", subject={"reference": f"Patient/p{1 + i % 4}"}, **{"class": {"code": "AMB"}},
                period={"start": f"2023-0{i}-10T09:00:00Z", "end": f"2023-0{i}-10T10:00:00Z"},
                type=[{"coding": [{"system": fhir.SNOMED, "code": "185349003"}]}]) for i in range(1, 6)]
    enc[1]["class"] = {"code": "TELEPORT"}  # e2: quarantined (unmapped class)
    procs = [_res("Procedure", f"pr{i}", subject={"reference": f"Patient/p{1 + i % 4}"}, encounter={"reference": f"Encounter/e{e}"},
                  code={"coding": [{"system": fhir.SNOMED, "code": f"7312700{i}"}]}, performedDateTime=f"2023-0{e}-10", status="completed")
             for i, e in enumerate([1, 1, 3, 2, 4, 5, 1], start=1)]  # pr4 on e2 (quarantined encounter), three on e1
    conds = [_res("Condition", f"c{i}", subject={"reference": "Patient/p2"}, encounter={"reference": f"Encounter/e{e}"},
                  code={"coding": [{"system": fhir.ICD10CM, "code": "E11.9"}]}, onsetDateTime="2023-01-10") for i, e in enumerate([1, 2], start=1)]
    obs = [_res("Observation", f"o{i}", subject={"reference": f"Patient/p{i}"}, encounter={"reference": "Encounter/e1"},
                code={"coding": [{"system": fhir.LOINC, "code": "4548-4"}]}, effectiveDateTime="2023-01-10",
                valueQuantity={"value": 6.0 + i, "unit": "%"}) for i in range(1, 5)]
    files = {"Patient": pat, "Encounter": enc, "Procedure": procs, "Condition": conds, "Observation": obs}
    for rtype, items in files.items():
        lines = [json.dumps(r) for r in items]
        if rtype == "Patient":
            lines[2:2] = ["", "{not json"]  # a blank line (skipped) and a broken one (counted unparseable)
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_hand_made_bulk_ndjson_split_across_batches(tmp_path, monkeypatch):
    """Resources split three lines a batch, so an encounter and its procedures, conditions and
    observations sit in different batches (and files)."""
    _hand_made_bulk(tmp_path / "in")
    whole, batched = _both("fhir", tmp_path / "in", tmp_path, 3, monkeypatch)
    files = batched[0]["files"]
    assert files["Encounter"]["reasons"] == {"unmapped_encounter_class": 1}
    assert files["Procedure"]["reasons"] == {"encounter_quarantined": 1}  # pr4 on e2
    assert files["Condition"]["reasons"] == {"encounter_quarantined": 1}  # c2 on e2
    assert files["unparseable"]["reasons"] == {"invalid_json_line": 1}
    assert (files["Patient"]["mapped"], files["Observation"]["mapped"]) == (4, 4)
    claims = batched[1]["medical_claims.parquet"]
    # 4 encounter lines + 6 procedure lines + 1 condition line; e1 holds its own line, 3 procedures, 1 condition
    assert claims.height == 4 + 6 + 1
    e1 = claims.filter(pl.col("claim_id") == "e1")
    assert e1["claim_line"].to_list() == ["1", "2", "3", "4", "5"]
    assert e1["snomed_code"].to_list()[:4] == ["185349003", "73127001", "73127002", "73127007"]
    assert e1["diagnosis_code_1"].to_list()[4] == "E119"
    assert batched[1]["clinical_observations.parquet"]["value_numeric"].to_list() == ["7.0", "8.0", "9.0", "10.0"]
    positions = batched[1]["_quarantine/Procedure.parquet"]
    assert positions.select("file", "position", "reason").rows() == [("Procedure.ndjson", 4, "encounter_quarantined")]


# ---------------------------------------------------------------------------------------------
# AHC HRSN screening observations
# ---------------------------------------------------------------------------------------------
def test_ahc_hrsn_screening_observations_in_batches_equal_one_shot(tmp_path, monkeypatch):
    whole, batched = _both("ahc-hrsn", AHC_FIXTURES, tmp_path, 3, monkeypatch)
    obs = next(AHC_FIXTURES.glob("SDOH_ScreeningObs_*.csv"))
    assert whole[0]["files"][obs.name]["read"] == _data_lines(obs)
    assert "sdoh_screenings.parquet" in batched[1]
