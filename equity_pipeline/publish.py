"""Publishing a public table only after its privacy checks pass (docs/design.md, Privacy; docs/operations.md).

Every public table with a privacy check (no small cells, no suppressed cell revealed) is written
through :func:`publish_checked`: the checks run on the in-memory frames first; only when every
check counts 0 offending rows are the files written (atomically) to ``public/``. When a check
fails nothing is written to ``public/``; an earlier public file of the same name is removed (a stale
table from an earlier run must not stay looking current), and the frames go to
``restricted/withheld/<same path relative to public/>`` (owner-only) with a record
``<file>.withheld.json`` (check names and counts only) so an auditor can see what was held back.
A later passing publish removes the withheld copy and its record again.

Return values and records hold counts, check names and file names only: never values of cells.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from equity_pipeline.io import ensure_restricted_dir, write_csv_atomic, write_json_atomic, write_parquet_atomic
from equity_pipeline.layout import OutputLayout

#: folder under ``restricted/`` that holds the tables a failing check kept out of ``public/``
WITHHELD_DIR = "withheld"
#: suffix of the record written next to each withheld file
RECORD_SUFFIX = ".withheld.json"

Check = Callable[[], int] | int


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish_checked` did: per check the offending rows, and the files (relative to the
    output root) written to ``public/`` or, when a check failed, to ``restricted/withheld/``."""
    checks: dict[str, int]
    published: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    removed: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(n == 0 for n in self.checks.values())

    @property
    def offending(self) -> int:
        return sum(self.checks.values())


def withheld_metadata(result: PublishResult) -> dict[str, str]:
    """``{"withheld": "<files>"}`` for a step's returned counts when the publish was held back, else {}
    (file names only; the asset check's description says where they went)."""
    return {"withheld": ", ".join(result.withheld)} if result.withheld else {}


def check_description(meta: dict) -> str | None:
    """The asset check's description from a step's returned counts: where the withheld files are."""
    return f"not published; withheld to {meta['withheld']}" if meta.get("withheld") else None


def withheld_path(layout: OutputLayout, path: Path) -> Path:
    """``restricted/withheld/<path relative to public/>`` for a public file ``path``."""
    return layout.restricted / WITHHELD_DIR / Path(path).relative_to(layout.public)


def _write(frame: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        write_csv_atomic(frame, path)
    elif path.suffix == ".parquet":
        write_parquet_atomic(frame, path)
    else:
        raise ValueError(f"publish_checked writes .parquet or .csv files, not {path.name}")


def _run(check: Check) -> int:
    n = check() if callable(check) else check
    return int(n)


def _rel(layout: OutputLayout, path: Path) -> str:
    return Path(path).relative_to(layout.root).as_posix()


def publish_checked(layout: OutputLayout, outputs: Mapping[Path, pl.DataFrame], checks: Mapping[str, Check]) -> PublishResult:
    """Write ``outputs`` (public path -> frame; ``.parquet`` or ``.csv`` by suffix) to ``public/`` only
    when every check counts 0 offending rows.

    ``checks`` maps the check name (as the Dagster asset check calls it) to a function of no
    arguments evaluated on the in-memory frames before anything is written, or to a count the caller
    already computed from them. On failure: nothing is written to ``public/``, earlier public files
    of these names are removed, and the frames are written to :func:`withheld_path` with a record
    of the check counts. Every path must lie under ``layout.public``."""
    for path in outputs:
        Path(path).relative_to(layout.public)  # ValueError: not a public path
    counts = {name: _run(check) for name, check in checks.items()}
    if any(n < 0 for n in counts.values()):
        raise ValueError("a check returned a negative count")
    if all(n == 0 for n in counts.values()):
        for path, frame in outputs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(frame, path)
            remove_withheld(layout, path)  # a copy an earlier run held back is no longer current
        return PublishResult(counts, published=tuple(_rel(layout, p) for p in outputs))
    removed = []
    for path, frame in outputs.items():
        if path.is_file():
            path.unlink()
            removed.append(_rel(layout, path))
        held = withheld_path(layout, path)
        ensure_restricted_dir(layout.restricted)
        for folder in reversed(held.relative_to(layout.restricted).parents[:-1]):
            ensure_restricted_dir(layout.restricted / folder)
        _write(frame, held)
        write_json_atomic({"public_file": _rel(layout, path), "withheld_file": _rel(layout, held), "rows": frame.height,
                           "checks": counts}, held.with_name(held.name + RECORD_SUFFIX))
    return PublishResult(counts, withheld=tuple(_rel(layout, withheld_path(layout, p)) for p in outputs), removed=tuple(removed))


def remove_withheld(layout: OutputLayout, path: Path) -> None:
    """Remove the withheld copy of public file ``path`` and its record (when the table is published
    again, or no longer produced)."""
    held = withheld_path(layout, path)
    held.unlink(missing_ok=True)
    held.with_name(held.name + RECORD_SUFFIX).unlink(missing_ok=True)


def withheld_outputs(layout: OutputLayout) -> list[dict]:
    """The records of the tables held back from ``public/`` (sorted by public file): public file,
    withheld file, rows and offending rows per check. Counts and file names only."""
    folder = layout.restricted / WITHHELD_DIR
    if not folder.is_dir():
        return []
    records = [json.loads(p.read_text(encoding="utf-8")) for p in folder.rglob(f"*{RECORD_SUFFIX}")]
    return sorted((r for r in records if (layout.root / r["withheld_file"]).is_file()), key=lambda r: r["public_file"])
