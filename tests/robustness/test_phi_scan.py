"""PHI scanner: run the whole pipeline on a generated dataset and look for the input's identifying
values in everything a run leaves outside ``restricted/``.

Scanned: public/, report/ (HTML and the xlsx workbook's XML parts), validation/, audit/, counts/,
manifest.json, the run lock, Dagster's SQLite run and event storage in ``out/.dagster`` (every
text value, and zlib-compressed snapshot blobs unpacked) and its compute logs, Parquet values and
Parquet key-value metadata, and everything the run printed or logged (stdout, stderr, Python logging).

Looked for, as whole tokens: member ids, claim ids (medical and pharmacy), birth dates, names
(first and last, and "first last" pairs), and street addresses if the input had any (the canonical
contract and the generator have no address column, so today there are none). What is left out, on
purpose, and why:

* values shorter than 6 characters (ids) or 4 letters (names): too short to identify anyone and
  they occur by chance in any text (e.g. the surname "Li");
* names that are words of the pipeline's own vocabulary -- source (the generator excepted),
  templates, suites, measure specs, the county names of the reference data -- such as "Wilson" (the Wilson interval) or "Juan" (San Juan
  County): their presence says nothing about a member (first-last pairs are still checked);
* dates that the pipeline writes for its own reasons (1 January / 31 December of any year, the run
  date): a birth date equal to one of them cannot be told apart;
* base64 payloads (embedded images), which contain every short letter sequence by chance;
* ZIP codes: 5-digit numbers, indistinguishable from counts.
"""
from __future__ import annotations

import contextlib
import html
import io
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
MEMBERS, SEED, MESSY, YEAR = 1500, 11, 0.05, 2025
RUN_DATE = "2026-11-22"
#: a measure of each kind (proportion, readmission with its risk model, event rate, cost, SDOH,
#: hybrid) keeps the run short while every output writer still runs
CONFIG = f"measurement_year: {YEAR}\nrun_date: {RUN_DATE}\nmeasures: [BCS, CBP, PCR, ED_VISITS, TCOC_PMPM, SDOH_POSITIVE]\n"

TOKEN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
WORD = re.compile(r"[A-Za-z]+")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BASE64 = re.compile(r"base64,[A-Za-z0-9+/=\s]+")
MIN_ID, MIN_NAME = 6, 4


def _generate(out: Path) -> None:
    """Generate with the working tree's generator; if it is broken mid-edit, with HEAD's."""
    kwargs = dict(members=MEMBERS, seed=SEED, out=out, messy_share=MESSY, measurement_year=YEAR)
    try:
        from equity_pipeline.generate import generate

        generate(**kwargs)
        return
    except Exception:  # noqa: BLE001 - another change in progress; fall back to the committed generator
        pass
    head = out.parent / "generator_head"
    head.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(head)], input=archive, check=True)
    code = ("from pathlib import Path; from equity_pipeline.generate import generate; "
            f"generate(members={MEMBERS}, seed={SEED}, out=Path({str(out)!r}), messy_share={MESSY}, measurement_year={YEAR})")
    subprocess.run([sys.executable, "-c", code], cwd=head, check=True)


@pytest.fixture(scope="module")
def phi_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("phi")
    inp, out = root / "input", root / "out"
    _generate(inp)
    cfg = root / "program.yaml"
    cfg.write_text(CONFIG, encoding="utf-8")
    from equity_pipeline.cli import run_pipeline

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"{record.name} {record.levelname} {record.getMessage()} {record.exc_text or ''}")

    handler, root_logger = Keep(level=logging.DEBUG), logging.getLogger()
    old_level = root_logger.level
    loggers = [root_logger, logging.getLogger("dagster")]
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        for lg in loggers:
            lg.addHandler(handler)
        root_logger.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                run_pipeline(inp, out, str(cfg), quiet=True)
        finally:
            root_logger.setLevel(old_level)
            for lg in loggers:
                lg.removeHandler(handler)
    console = {"stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "logging": "\n".join(records)}
    return inp, out, console


# --- what to look for --------------------------------------------------------------------------------


def _vocabulary() -> set[str]:
    """Words the pipeline itself may print: its source, templates, suites, docs and reference data."""
    import addfips

    roots = [REPO / "equity_pipeline", REPO / "expectations", REPO / "assets", Path(addfips.__file__).resolve().parent / "data"]
    generator = REPO / "equity_pipeline" / "generate"  # where the names come from: not output text
    words: set[str] = set()
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and generator not in p.parents and p.suffix in {".py", ".j2", ".json", ".yaml", ".yml", ".csv", ".txt", ".html"}:
                words.update(w.lower() for w in WORD.findall(p.read_text(encoding="utf-8", errors="replace")))
    return words


def _column(inp: Path, table: str, columns: list[str] | None = None) -> pl.DataFrame:
    path = next(p for p in (inp / f"{table}.parquet", inp / f"{table}.csv") if p.exists())
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    return frame.select(columns) if columns else frame


def _clean(values) -> set[str]:
    return {str(v).strip() for v in values if v is not None and str(v).strip()}


def phi_values(inp: Path) -> tuple[dict[str, set[str]], set[tuple[str, str]], dict[str, int]]:
    members = _column(inp, "members")
    ids = {v for v in _clean(members["member_id"]) if len(v) >= MIN_ID}
    claims = {v for t in ("medical_claims", "pharmacy_claims") for v in _clean(_column(inp, t, ["claim_id"])["claim_id"])
              if len(v) >= MIN_ID}
    structural = {RUN_DATE} | {f"{y}-{md}" for y in range(1900, 2100) for md in ("01-01", "12-31")}
    births = {v for v in _clean(members["birth_date"]) if DATE.fullmatch(v) and v not in structural}
    vocabulary = _vocabulary()
    all_names = _clean([*members.get_column("first_name"), *members.get_column("last_name")]) if "first_name" in members.columns else set()
    names = {n for n in all_names if len(n) >= MIN_NAME and n.replace("-", "").isalpha() and n.lower() not in vocabulary}
    pairs = {(f.strip(), l.strip()) for f, l in zip(members.get_column("first_name"), members.get_column("last_name"))
             if f and l} if "first_name" in members.columns else set()
    addresses = {v for c in members.columns if "address" in c.lower() or "street" in c.lower()
                 for v in _clean(members[c]) if len(v) >= MIN_ID}
    skipped = {"names_in_vocabulary_or_short": len(all_names - names), "structural_birth_dates":
               len(_clean(members["birth_date"])) - len(births)}
    return {"member_id": ids, "claim_id": claims, "birth_date": births, "name": names, "address": addresses}, pairs, skipped


# --- where to look --------------------------------------------------------------------------------------


def _sqlite_text(path: Path) -> str:
    parts: list[str] = []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for (table,) in con.execute("select name from sqlite_master where type='table'").fetchall():
            for values in con.execute(f'select * from "{table}"'):
                for v in values:
                    if isinstance(v, bytes):
                        with contextlib.suppress(zlib.error):
                            v = zlib.decompress(v)
                        v = v.decode("utf-8", "replace")
                    if v is not None:
                        parts.append(str(v))
    finally:
        con.close()
    return "\n".join(parts)


def _parquet_text(path: Path) -> str:
    frame = pl.read_parquet(path)
    text = " ".join(frame.columns) + "\n" + frame.write_ndjson()
    with contextlib.suppress(ImportError):
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path).metadata or {}
        text += "\n" + "\n".join(f"{k.decode(errors='replace')} {v.decode(errors='replace')}" for k, v in meta.items())
    return text


def artifacts(out: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if not p.is_file() or rel.parts[0] == "restricted":
            continue
        if p.suffix == ".parquet":
            text = _parquet_text(p)
        elif p.suffix == ".xlsx":
            with zipfile.ZipFile(p) as z:
                text = html.unescape("\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist()
                                               if n.endswith((".xml", ".rels", ".txt", ".csv"))))
        elif p.suffix == ".db":
            text = _sqlite_text(p)
        else:
            text = p.read_bytes().decode("utf-8", "replace")
            if p.suffix in (".html", ".htm"):
                text = html.unescape(text)
        texts[str(rel)] = BASE64.sub(" ", text)
    return texts


def find_phi(text: str, values: dict[str, set[str]], pairs: set[tuple[str, str]]) -> dict[str, list[str]]:
    tokens = TOKEN.findall(text)
    token_set = set(tokens) | {w for t in tokens for w in t.split("-")}
    hits = {kind: sorted(token_set & found) for kind, found in values.items() if kind != "birth_date"}
    hits["birth_date"] = sorted(set(DATE.findall(text)) & values["birth_date"])
    words = WORD.findall(text)
    hits["full_name"] = sorted({f"{a} {b}" for a, b in zip(words, words[1:]) if (a, b) in pairs})
    return {k: v[:3] for k, v in hits.items() if v}


# --- tests ------------------------------------------------------------------------------------------------


def test_scanner_finds_planted_values(phi_run, tmp_path):
    """The scanner itself works: values planted in each kind of artifact are found."""
    inp, _, _ = phi_run
    values, pairs, _ = phi_values(inp)
    member, claim, birth = sorted(values["member_id"])[0], sorted(values["claim_id"])[0], sorted(values["birth_date"])[0]
    first, last = sorted(pairs)[0]
    planted = tmp_path / "planted"
    (planted / "public").mkdir(parents=True)
    pl.DataFrame({"x": [f"id:{member}"]}).write_parquet(planted / "public" / "a.parquet")
    (planted / "report").mkdir()
    (planted / "report" / "index.html").write_text(f"<p>{first}&nbsp;{last} born {birth}T00:00</p>")
    con = sqlite3.connect(planted / "events.db")
    con.execute("create table e (body blob)")
    con.execute("insert into e values (?)", (zlib.compress(f'{{"claim": "{claim}"}}'.encode()),))
    con.commit()
    con.close()
    found = {rel: find_phi(text, values, pairs) for rel, text in artifacts(planted).items()}
    assert found["public/a.parquet"].get("member_id") == [member]
    assert found["report/index.html"].get("birth_date") == [birth] and found["report/index.html"].get("full_name")
    assert found["events.db"].get("claim_id") == [claim]


def test_values_to_look_for_are_many(phi_run):
    inp, _, _ = phi_run
    values, pairs, skipped = phi_values(inp)
    assert len(values["member_id"]) >= MEMBERS and len(values["claim_id"]) > 10 * MEMBERS
    assert len(values["birth_date"]) > 0.9 * MEMBERS and len(pairs) > MEMBERS / 2  # (first, last) pairs repeat
    assert len(values["name"]) >= 50, skipped  # most names are distinctive enough to look for
    assert not values["address"]  # the contract has no address column (see module docstring)


def test_no_phi_outside_restricted(phi_run):
    inp, out, console = phi_run
    values, pairs, _ = phi_values(inp)
    texts = artifacts(out)
    kinds = {rel.split("/")[0] for rel in texts}
    assert {"public", "report", "validation", "audit", "counts", "manifest.json", ".dagster"} <= kinds, kinds
    assert any(rel.endswith(".db") for rel in texts) and any(rel.endswith(".xlsx") for rel in texts)
    texts.update({f"console:{k}": v for k, v in console.items()})
    leaks = {rel: hits for rel, text in texts.items() if (hits := find_phi(text, values, pairs))}
    assert not leaks, f"identifying input values outside restricted/: {leaks}"


def test_restricted_is_owner_only(phi_run):
    _, out, _ = phi_run
    restricted = out / "restricted"
    assert stat.S_IMODE(os.stat(restricted).st_mode) == 0o700
    assert any(restricted.rglob("*.parquet"))  # the member-level data is there, behind that folder
