"""Run a suite in ``expectations/`` with Great Expectations 1.x itself (the reference engine).

The ingest path uses the fast polars evaluator (:mod:`equity_pipeline.validation.rules`); this module
runs the *same* suite JSON through GX so that (a) the Dagster asset checks report GX's own verdict and
(b) a test can prove both engines count the same failing rows for every expectation.

What GX sees
    The frame the polars evaluator sees: the input read as text, structure-checked, trimmed and
    normalised, plus the derived ``_`` helper columns (:func:`text_frame`, which calls the same
    functions as :func:`equity_pipeline.validation.ingest.ingest_table`). GX has no polars
    datasource, so each batch is converted with ``DataFrame.to_pandas()`` and handed to a pandas
    dataframe asset with a whole-dataframe batch definition as a batch parameter.

Four views of one table (each expectation runs on exactly one)
    ``header``       ``expect_column_to_exist`` on a 0-row frame with the file's own columns (after the
                     reader's case/space-insensitive renaming), so a missing required column is
                     reported as a failed block-level expectation instead of being hidden by the
                     reader adding absent columns.
    ``text``         every other row rule, on the text frame, in batches of ``batch_rows`` rows.
    ``typed``        ``be_between`` and ``column_pair_values_a_to_be_greater_than_b`` whose column is
                     a ``date`` column of the contract: GX 1.x coerces date-like bounds
                     (``"1900-01-01"``, the ``run_date`` parameter) to ``datetime.date`` and refuses
                     to compare them with strings, so these run on the same batch with the date
                     columns parsed by Python's ``datetime.strptime`` with the column's own
                     ``strftime_format`` (the parser GX's strftime expectation uses). Values that do
                     not parse are missing here (they are counted by the format rule instead).
    ``full_column``  ``expect_column_values_to_be_unique`` needs every row at once, so it runs on a
                     one-column frame holding the whole column (memory: one pandas column, not the
                     table).

Batches are summed: ``element_count``, ``missing_count`` and ``unexpected_count`` add up across
batches, and ``success`` is recomputed from the totals with GX's own rule (vacuously true when no
non-missing value; otherwise ``(nonmissing - unexpected) / nonmissing >= mostly``).

Which rows GX evaluates (:class:`Sampling`, docs/validation.md "GX at scale")
    GX validates pandas at about 10-60 microseconds per row and expectation batch, so it cannot look
    at every row of a 28-million-line claims file in the time the polars evaluator takes. The polars
    evaluator (same suites, proven equal to GX by the agreement tests) validates every row and decides
    quarantine; its counts are the authoritative ones. GX runs on every row of tables up to
    ``full_rows`` rows (mode ``full``). Above that (mode ``sample``) it runs on a seeded random sample
    of ``sample_rows`` rows plus, for every row-level expectation, up to ``failing_rows`` of the rows
    the polars evaluator found failing it (all of them when fewer), so GX independently confirms the
    failures of every rule; uniqueness always runs on the whole column. On exactly the rows GX
    evaluated the polars evaluator is run too, and every expectation whose counts differ is reported
    (``gx_polars_differ``). The run says what GX evaluated: ``mode``, ``rows``, ``rows_evaluated``
    and ``sample`` (seed, random rows, failing rows).

PHI
    GX is asked for counts only (``partial_unexpected_count: 0``, no unexpected rows, no index
    lists), and the outcome dicts are built field by field from numeric result fields, so no data
    value can reach a result even if GX changes what it returns. Errors are reported by exception
    class name only (exception messages can quote values). Progress bars and analytics are off.

``import great_expectations`` costs ~4-5 s: it happens inside :func:`gx_context`, never at import
time of this module, and one context is cached per process.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import ROW, find_input, scan_text, sha256_file
from equity_pipeline.suites import Suite, load_suite
from equity_pipeline.validation.derived import add_derived, known_member_ids
from equity_pipeline.validation.ingest import DUPLICATE_ROW, REASONS, check_structure, duplicate_copies, gx_failing_path, gx_sample_path
from equity_pipeline.validation.normalize import normalize
from equity_pipeline.validation.rules import failure_expr, row_rules
from equity_pipeline.validation.sampling import Sampling, choose_rows, parameters_digest, random_rows, sample_key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: rows per GX batch: bounds the pandas copy (about 0.5-1 kB per row for a claims table)
BATCH_ROWS = 200_000
#: counts only, never values
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
DEFAULT_DATE_FORMAT = "%Y-%m-%d"

HEADER, TEXT, TYPED, FULL_COLUMN, SKIPPED = "header", "text", "typed", "full_column", "skipped"
STRUCTURAL_TYPES = frozenset({"expect_column_to_exist"})
COMPARISON_TYPES = frozenset({"expect_column_values_to_be_between", "expect_column_pair_values_a_to_be_greater_than_b"})
WHOLE_COLUMN_TYPES = frozenset({"expect_column_values_to_be_unique"})
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_INDEX_KEY = "suite_index"
#: the only fields an outcome may carry (the auditor view filters on the same list)
OUTCOME_FIELDS: tuple[str, ...] = (
    "index", "type", "column", "column_B", "rule", "severity", "why", "evaluated_on", "success",
    "element_count", "missing_count", "unexpected_count", "unexpected_percent", "unexpected_percent_total",
    "mostly", "thresholds", "error",
)


# ---------------------------------------------------------------------------------------------------
# which rows GX evaluates

FULL, SAMPLE = "full", "sample"


# ---------------------------------------------------------------------------------------------------
# GX context and suite


@lru_cache(maxsize=1)
def gx_context() -> Any:
    """One ephemeral GX context per process: in-memory stores, progress bars and analytics off.

    Holds a pandas datasource ``equity_pipeline`` with a dataframe asset ``frame`` and its
    whole-dataframe batch definition ``whole``; every validation passes its frame as a batch parameter.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("equity_pipeline").add_dataframe_asset("frame")
    asset.add_batch_definition_whole_dataframe("whole")
    return context


def _batch_definition(context: Any) -> Any:
    return context.data_sources.get("equity_pipeline").get_asset("frame").get_batch_definition("whole")


def build_gx_suite(suite: Suite, indices: list[int] | None = None, *, name: str | None = None) -> Any:
    """A ``gx.ExpectationSuite`` built from the suite file's expectations (optionally a subset).

    The expectation dicts are the JSON file's own (``load_suite`` keeps them as read). Each keeps its
    ``meta`` plus ``suite_index`` (its position in the file) so results, which GX returns in its own
    order, map back to the file.
    """
    import great_expectations as gx

    chosen = range(len(suite.expectations)) if indices is None else indices
    expectations = []
    for i in chosen:
        e = suite.expectations[i]
        expectations.append({"type": e["type"], "kwargs": dict(e["kwargs"]), "meta": {**e.get("meta", {}), _INDEX_KEY: i}})
    return gx.ExpectationSuite(name=name or suite.name, expectations=expectations, meta={"suite_version": suite.version})


# ---------------------------------------------------------------------------------------------------
# the frame GX validates


def text_frame(table: str, path: Path, *, known_members: pl.LazyFrame | None = None) -> tuple[pl.LazyFrame, list[str]]:
    """The normalised + derived text frame of the input file ``path`` (what the polars rules see).

    Returns the frame and the file's header after the reader's renaming (for ``expect_column_to_exist``).
    Raises :class:`StructuralError` when the reader would (missing required column, unreadable file).
    """
    suite = load_suite(table)
    raw = scan_text(path)
    return prepare(table, raw, known_members=known_members, file=path.name), file_header(raw, suite)


def prepare(table: str, raw: pl.LazyFrame | pl.DataFrame, *, known_members: pl.LazyFrame | None = None, file: str = "<frame>") -> pl.LazyFrame:
    """The steps :func:`~equity_pipeline.validation.ingest.ingest_table` runs before the rules.

    ``raw``: text columns as read (a ``_row`` column is added when absent). Structure check (absent
    optional columns become null), trim + normalise, derived ``_`` helper columns.
    """
    suite = load_suite(table)
    lf = raw.lazy()
    if ROW not in lf.collect_schema().names():
        lf = lf.with_row_index(ROW, offset=1)
    lf, _extras, _missing = check_structure(lf, suite, file)
    lf = normalize(lf, suite)
    return add_derived(lf, table, known_members=known_members)


def file_header(raw: pl.LazyFrame, suite: Suite) -> list[str]:
    """Column names of a scanned file, renamed as :func:`check_structure` renames them."""
    names = [n for n in raw.collect_schema().names() if n != ROW]
    lowered = {n.strip().lower(): n for n in names}
    renames = {lowered[c.name]: c.name for c in suite.columns if c.name not in names and c.name in lowered}
    return [renames.get(n, n) for n in names]


# ---------------------------------------------------------------------------------------------------
# planning: which expectation runs on which view


@dataclass(frozen=True)
class _Planned:
    index: int
    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    view: str

    @property
    def columns(self) -> list[str]:
        return [self.kwargs[k] for k in _COLUMN_KWARGS if self.kwargs.get(k)]


def _date_columns(suite: Suite) -> set[str]:
    return {c.name for c in suite.columns if c.type == "date"}


def date_formats(suite: Suite) -> dict[str, str]:
    """strftime format per date column: the suite's own strftime expectation, else ISO."""
    formats = {c: DEFAULT_DATE_FORMAT for c in _date_columns(suite)}
    for e in suite.expectations:
        if e["type"] == "expect_column_values_to_match_strftime_format" and e["kwargs"]["column"] in formats:
            formats[e["kwargs"]["column"]] = e["kwargs"]["strftime_format"]
    return formats


def plan(suite: Suite, present: set[str]) -> list[_Planned]:
    """Assign each expectation of ``suite`` to a view; row rules on absent columns are skipped."""
    dates = _date_columns(suite)
    out = []
    for i, e in enumerate(suite.expectations):
        etype, kw = e["type"], e["kwargs"]
        cols = [kw[k] for k in _COLUMN_KWARGS if kw.get(k)]
        if etype in STRUCTURAL_TYPES:
            view = HEADER
        elif not all(c in present for c in cols):
            view = SKIPPED
        elif etype in WHOLE_COLUMN_TYPES:
            view = FULL_COLUMN
        elif etype in COMPARISON_TYPES and any(c in dates for c in cols):
            view = TYPED
        else:
            view = TEXT
        out.append(_Planned(i, etype, dict(kw), dict(e.get("meta", {})), view))
    return out


# ---------------------------------------------------------------------------------------------------
# running GX and reading its results (counts only)


def _error_class(exception_info: Any) -> str | None:
    """Exception class name of a failed GX evaluation (never the message: it can quote values)."""
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            tb = (info.get("exception_traceback") or "").strip().splitlines()
            last = tb[-1] if tb else ""
            m = re.match(r"^([A-Za-z_][\w.]*)(:|$)", last)
            return m.group(1).rsplit(".", 1)[-1] if m else "Exception"
    return None


def _validate(context: Any, frame: "pd.DataFrame", suite: Suite, indices: list[int], parameters: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Validate ``frame`` with the expectations ``indices`` of ``suite``; counts per suite index."""
    if not indices:
        return {}
    gx_suite = build_gx_suite(suite, indices, name=f"{suite.name}.{'_'.join(map(str, indices[:3]))}")
    parameters = _narrowed(parameters, _set_parameters(suite, indices, parameters), frame)
    # the validator GX's own ValidationDefinition.run builds: the frame becomes a batch once. Through
    # BatchDefinition.get_batch(...).validate(...) GX built it twice, fingerprinting (hashing) every
    # value each time: 0.5 s for the members' 1M ids (docs/performance.md, twelfth session)
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(batch_definition=_batch_definition(context), batch_parameters={"dataframe": frame},
                          result_format=RESULT_FORMAT)
    with warnings.catch_warnings():
        # pandas warns that suite regexes have groups (GX calls str.contains); harmless, and noisy per batch
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression, and has match groups")
        result = validator.validate_expectation_suite(gx_suite, expectation_parameters=parameters)
    out: dict[int, dict[str, Any]] = {}
    for r in result.results:
        idx = int(r.expectation_config.meta[_INDEX_KEY])
        res = r.result or {}
        out[idx] = {
            "success": None if r.success is None else bool(r.success),
            "element_count": _int_or_none(res.get("element_count")),
            "missing_count": _int_or_none(res.get("missing_count")),
            "unexpected_count": _int_or_none(res.get("unexpected_count")),
            "error": _error_class(r.exception_info),
        }
    return out


def _set_parameters(suite: Suite, indices: list[int], parameters: dict[str, Any]) -> dict[str, list[str]]:
    """Parameter name -> the columns of the in-set expectations ``indices`` of ``suite`` whose
    ``value_set`` is that (list) parameter."""
    out: dict[str, list[str]] = {}
    for i in indices:
        e = suite.expectations[i]
        ref = e["kwargs"].get("value_set")
        if e["type"] == "expect_column_values_to_be_in_set" and isinstance(ref, dict) and isinstance(parameters.get(ref.get("$PARAMETER")), list):
            out.setdefault(ref["$PARAMETER"], []).append(e["kwargs"]["column"])
    return out


def _narrowed(parameters: dict[str, Any], uses: dict[str, list[str]], batch: "pd.DataFrame") -> dict[str, Any]:
    """``parameters`` with each value-set parameter of ``uses`` cut to the values of its columns in
    ``batch``: the same result per row (a value is in the cut set exactly when it is in the whole set),
    for a fraction of GX's cost. GX copies an expectation's configuration, value set included, about
    a hundred times per validation (pydantic ``dict()``); the 3,237 valid county codes made that
    about 1.8 s per members batch (docs/performance.md). Applied by :func:`_validate` to every view."""
    if not uses:
        return parameters
    out = dict(parameters)
    for name, columns in uses.items():
        seen = set().union(*(set(batch[c].dropna().unique()) for c in columns if c in batch.columns))
        # never empty (GX's own checks on a set): a value of the whole set absent from the batch changes nothing
        out[name] = [v for v in parameters[name] if v in seen] or parameters[name][:1]
    return out


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def _typed_batch(text: "pd.DataFrame", columns: list[str], formats: dict[str, str], cache: dict[str, dict[str, Any]]) -> "pd.DataFrame":
    """Date columns of a text batch as ``datetime.date`` objects (Python strptime); non-dates missing."""
    import pandas as pd

    data = {}
    for c in columns:
        s = text[c]
        if c in formats:
            mapping = cache.setdefault(c, {})
            fmt = formats[c]
            for v in s.dropna().unique():
                if v not in mapping:
                    mapping[v] = _parse_date(v, fmt)
            s = s.map(mapping).astype(object)
            s = s.where(s.notna(), None)
        data[c] = s
    return pd.DataFrame(data, index=text.index)


def _parse_date(value: str, fmt: str) -> date | None:
    try:
        return datetime.strptime(value, fmt).date()  # noqa: DTZ007 - calendar dates, no time zone
    except (TypeError, ValueError):
        return None


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    for k in ("element_count", "missing_count", "unexpected_count"):
        if part.get(k) is not None:
            total[k] = (total.get(k) or 0) + part[k]
    if part.get("error"):
        total["error"] = part["error"]
    total.setdefault("batch_success", []).append(part.get("success"))


def _outcome(p: _Planned, counts: dict[str, Any] | None, parameters: dict[str, Any]) -> dict[str, Any]:
    """One expectation's outcome: metadata from the suite, numbers from GX (summed over batches)."""
    kw = p.kwargs
    mostly = kw.get("mostly")
    out: dict[str, Any] = {
        "index": p.index, "type": p.type, "column": kw.get("column") or kw.get("column_A"),
        "column_B": kw.get("column_B"), "rule": p.meta.get("rule", f"{p.type}:{kw.get('column') or kw.get('column_A')}"),
        "severity": p.meta.get("severity", "quarantine"), "why": p.meta.get("why", ""), "evaluated_on": p.view,
        "success": None, "element_count": None, "missing_count": None, "unexpected_count": None,
        "unexpected_percent": None, "unexpected_percent_total": None, "mostly": mostly,
        "thresholds": thresholds(kw, parameters), "error": None,
    }
    if counts is None:  # skipped: a column of the rule is absent from the file (optional column)
        return out
    out["error"] = counts.get("error")
    if out["error"]:
        return out
    successes = counts.get("batch_success", [])
    if p.view == HEADER or counts.get("unexpected_count") is None:
        out["success"] = all(bool(s) for s in successes) if successes else None
        return out
    element = counts.get("element_count") or 0
    missing = counts.get("missing_count") or 0
    unexpected = counts["unexpected_count"]
    nonmissing = element - missing
    out.update(element_count=element, missing_count=counts.get("missing_count"), unexpected_count=unexpected)
    out["unexpected_percent"] = 100.0 * unexpected / nonmissing if nonmissing else None
    out["unexpected_percent_total"] = 100.0 * unexpected / element if element else None
    if nonmissing == 0:
        out["success"] = True  # GX: vacuously true
    else:
        out["success"] = (nonmissing - unexpected) / nonmissing >= (1.0 if mostly is None else float(mostly))
    return out


def thresholds(kwargs: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The rule's settings (suite constants, resolved parameters; long parameter lists summarised)."""
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if k in _COLUMN_KWARGS or k == "mostly":
            continue
        if isinstance(v, dict) and "$PARAMETER" in v:
            name = v["$PARAMETER"]
            value = parameters.get(name)
            if isinstance(value, (list, tuple, set, frozenset)):
                value = f"{len(value)} values"
            out[k] = {"parameter": name, "value": None if value is None else str(value) if not isinstance(value, (int, float, str)) else value}
        else:
            out[k] = v
    return out


def run_suite(
    table: str,
    frame: pl.DataFrame | pl.LazyFrame,
    parameters: dict[str, Any],
    *,
    header: list[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    context: Any = None,
    whole_columns: pl.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Validate ``frame`` (normalised + derived text) with ``table``'s suite in GX; one dict per expectation.

    ``header``: the file's columns for ``expect_column_to_exist`` (default: the frame's columns).
    ``whole_columns``: the whole table's columns for uniqueness rules when ``frame`` is a sample
    (default: ``frame``'s own columns).
    """
    import pandas as pd

    suite = load_suite(table)
    context = context if context is not None else gx_context()
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    present = set(df.columns)
    planned = plan(suite, present)
    by_view: dict[str, list[_Planned]] = {}
    for p in planned:
        by_view.setdefault(p.view, []).append(p)
    totals: dict[int, dict[str, Any]] = {p.index: {} for p in planned if p.view != SKIPPED}

    # header view: a 0-row frame with the file's columns
    if HEADER in by_view:
        cols = [c for c in (header if header is not None else df.columns) if c != ROW]
        empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        for idx, part in _validate(context, empty, suite, [p.index for p in by_view[HEADER]], parameters).items():
            _add(totals[idx], part)

    # text + typed views: in batches
    text_rules = by_view.get(TEXT, [])
    typed_rules = by_view.get(TYPED, [])
    text_cols = sorted({c for p in text_rules for c in p.columns})
    typed_cols = sorted({c for p in typed_rules for c in p.columns})
    formats = {c: f for c, f in date_formats(suite).items() if c in typed_cols}
    needed = sorted(set(text_cols) | set(typed_cols))
    cache: dict[str, dict[str, Any]] = {}
    if text_rules or typed_rules:
        n = df.height
        step = max(1, int(batch_rows))
        for offset in range(0, max(n, 1), step):  # an empty frame still gets one (empty) batch
            chunk = df.select(needed).slice(offset, step).to_pandas()
            parts = _validate(context, chunk[text_cols], suite, [p.index for p in text_rules], parameters) if text_rules else {}
            if typed_rules:
                parts.update(_validate(context, _typed_batch(chunk, typed_cols, formats, cache), suite, [p.index for p in typed_rules], parameters))
            for idx, part in parts.items():
                _add(totals[idx], part)
            del chunk

    # full-column view: uniqueness over the whole column (of the whole table when ``frame`` is a sample)
    for p in by_view.get(FULL_COLUMN, []):
        source = whole_columns if whole_columns is not None and all(c in whole_columns.columns for c in p.columns) else df
        col = source.select(p.columns).to_pandas()
        for idx, part in _validate(context, col, suite, [p.index], parameters).items():
            _add(totals[idx], part)
        del col

    return [_outcome(p, totals.get(p.index) if p.view != SKIPPED else None, parameters) for p in planned]


def run_table(
    table: str,
    input_dir: Path,
    parameters: dict[str, Any],
    *,
    known_members: pl.LazyFrame | None = None,
    batch_rows: int = BATCH_ROWS,
    context: Any = None,
    sampling: Sampling | None = None,
    quarantined: pl.LazyFrame | None = None,
    ingest_read: int | None = None,
    input_sha256: str | None = None,
    ingest_sample: pl.LazyFrame | None = None,
    ingest_failing: pl.LazyFrame | None = None,
) -> dict[str, Any]:
    """Run ``table``'s suite in GX on its input file; a JSON-safe dict with counts only.

    ``{"table", "file", "sha256", "suite_version", "rows", "parameters_digest", "seconds",
    "blocked", "mode", "rows_evaluated", "sampling", "sample", "polars_unexpected",
    "gx_polars_differ", "expectations": [outcome, ...]}``. A table whose file is absent has no
    outcomes (``file`` None). When the reader rejects the file's structure, only the header view runs
    and every row rule is reported as not evaluated (``blocked`` True).

    ``sampling`` (default :meth:`Sampling.from_env`) decides between mode ``full`` (GX on every row)
    and ``sample``. In sample mode the failing rows are taken from ``quarantined`` (the ingest's
    quarantine file of the same input: normalised text, ``_row``) when given, else found by a
    streaming polars pass over the input. ``polars_unexpected``: the polars evaluator's count per
    expectation (suite index) on exactly the rows GX evaluated; ``gx_polars_differ``: rule ids of the
    expectations where the two differ.

    With ``quarantined``, the ingest's facts about the same input are reused instead of recomputed
    with a pass over every row: ``ingest_read`` (its rows read) is the row count, and the exact
    copies left out of uniqueness rules are its ``duplicate_row`` rows (the ingest finds them with
    the same :func:`duplicate_copies`). ``input_sha256``: the file's hash when the caller has just
    computed it (:func:`run_table_cached`). ``ingest_sample``: the random rows of the sample as the
    ingest wrote them in its pass over every row (``restricted/gx_sample/<table>.parquet``, made with
    the same ``sampling``): then the evaluated frame is those rows plus the chosen failing rows from
    ``quarantined`` with the derived columns added (:func:`sample_frame`), instead of a filtered read
    of the whole input. Without it, or when it does not hold exactly the sample's random rows, the
    rows are read from the input. ``ingest_failing``: the ingest's failing flags of the same input
    (``restricted/gx_sample/<table>.failing.parquet``: what :func:`failing_rows` computes from the
    quarantine), read instead of evaluating the rules again on the quarantined rows.
    """
    suite = load_suite(table)
    sampling = sampling if sampling is not None else Sampling.from_env()
    started = time.perf_counter()
    path = find_input(input_dir, table)
    base = {"table": table, "file": None, "sha256": None, "suite_version": suite.version, "rows": 0,
            "parameters_digest": parameters_digest(parameters), "blocked": False, "mode": FULL, "rows_evaluated": 0,
            "sampling": sampling.to_dict(), "sample": None, "polars_unexpected": {}, "gx_polars_differ": []}
    if path is None:
        return {**base, "seconds": 0.0, "expectations": []}
    base.update(file=path.name, sha256=input_sha256 or sha256_file(path))
    context = context if context is not None else gx_context()
    try:
        lf, header = text_frame(table, path, known_members=known_members)
        reuse = quarantined is not None and ingest_read is not None
        n = int(ingest_read) if reuse else int(lf.select(pl.len()).collect(engine="streaming").item())
        # uniqueness runs on every row of the column except later exact copies (duplicate_row), as in the ingest
        unique_cols = sorted({c for p in plan(suite, set(lf.collect_schema().names())) if p.view == FULL_COLUMN for c in p.columns})
        whole = None
        if unique_cols:
            if reuse:
                copies = (quarantined.filter(pl.col(REASONS).str.split(";").list.contains(DUPLICATE_ROW))
                          .select(ROW).collect().get_column(ROW))
            else:
                copies = duplicate_copies(lf.select(ROW, *suite.column_names), suite)
            whole = lf.filter(~pl.col(ROW).is_in(copies.implode())).select(unique_cols).collect(engine="streaming")
        if n <= sampling.full_rows:
            frame, info = lf.collect(engine="streaming"), None
        else:
            failing = _ingest_failing(table, ingest_failing, lf) if reuse and ingest_failing is not None else None
            if failing is None:
                failing = failing_rows(table, quarantined, lf, parameters, known_members=known_members)
            rows, info = choose_rows(n, failing, sampling)
            frame = None
            if reuse and ingest_sample is not None:
                frame = sample_frame(table, ingest_sample, quarantined, rows, n, sampling, lf.collect_schema(),
                                     known_members=known_members)
            if frame is None:
                frame = lf.filter(pl.col(ROW).is_in(rows.implode())).collect(engine="streaming")
    except (StructuralError, pl.exceptions.ComputeError):
        try:
            header = file_header(scan_text(path), suite)
        except StructuralError:
            header = []
        outcomes = run_suite(table, pl.DataFrame(), parameters, header=header, batch_rows=batch_rows, context=context)
        return {**base, "blocked": True, "seconds": round(time.perf_counter() - started, 3), "expectations": outcomes}
    outcomes = run_suite(table, frame, parameters, header=header, batch_rows=batch_rows, context=context, whole_columns=whole)
    polars = polars_unexpected(table, frame, parameters, whole_columns=whole)
    return {
        **base, "rows": n, "mode": FULL if info is None else SAMPLE, "rows_evaluated": frame.height, "sample": info,
        "polars_unexpected": {str(i): c for i, c in sorted(polars.items())},
        "gx_polars_differ": differences(outcomes, polars),
        "seconds": round(time.perf_counter() - started, 3), "expectations": outcomes,
    }


def sample_frame(
    table: str, drawn: pl.LazyFrame, quarantined: pl.LazyFrame, rows: pl.Series, n: int, sampling: Sampling,
    schema: pl.Schema, *, known_members: pl.LazyFrame | None = None,
) -> pl.DataFrame | None:
    """The rows ``rows`` of the text frame (schema ``schema``) without reading the input: the random
    rows from ``drawn`` (the ingest's copy of them) and the other rows, all failing rows and so all
    quarantined, from ``quarantined`` with the derived columns added as the ingest adds them.
    None when ``drawn`` is not exactly :func:`random_rows` of ``n`` and ``sampling``, or a part does
    not have ``schema`` (the caller then reads the rows from the input)."""
    random = random_rows(n, sampling)
    first = drawn.collect().sort(ROW)
    if not first.get_column(ROW).equals(random, check_names=False) or first.schema != schema:
        return None
    others = rows.filter(~rows.is_in(random.implode()))
    second = _quarantined_text(table, quarantined, known_members, rows=others).collect()
    if second.schema != schema or second.height != others.len():
        return None
    return pl.concat([first, second]).sort(ROW)


def _quarantined_text(table: str, quarantined: pl.LazyFrame, known_members: pl.LazyFrame | None,
                      rows: pl.Series | None = None) -> pl.LazyFrame:
    """The ingest's quarantined rows (normalised text) as the text frame has them: the contract
    columns with the derived columns added as the ingest adds them. ``rows``: only these rows (by
    ``_row``), read first; their member ids are then looked up among only the known members they
    name, the same test as among all of them without hashing every member id (about 0.4 s a table
    at 1M members)."""
    frame = quarantined.select(ROW, *load_suite(table).column_names)
    known = known_members if table != "members" else None
    if rows is not None:
        frame = frame.filter(pl.col(ROW).is_in(rows.implode())).collect(engine="streaming")
        if known is not None and "member_id" in frame.columns:
            named = frame.get_column("member_id").cast(pl.String).unique().drop_nulls()
            known = known_member_ids(known.lazy().select(pl.col("member_id").cast(pl.String))
                                     .filter(pl.col("member_id").is_in(named.implode())))
        frame = frame.lazy()
    return add_derived(frame, table, known_members=known)


def _ingest_failing(table: str, flags: pl.LazyFrame, prepared: pl.LazyFrame) -> pl.DataFrame | None:
    """The ingest's failing flags, as :func:`failing_rows` gives them; None when their columns are not
    the row-level expectations of ``prepared`` (the caller then evaluates them)."""
    rules = [r for r in row_rules(load_suite(table), set(prepared.collect_schema().names())) if r.type not in WHOLE_COLUMN_TYPES]
    frame = flags.collect()
    if frame.columns != [ROW, *[str(r.index) for r in rules]]:
        return None
    return frame.sort(ROW)


def failing_rows(
    table: str, quarantined: pl.LazyFrame | None, prepared: pl.LazyFrame, parameters: dict[str, Any],
    *, known_members: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """``_row`` and one boolean column per row-level expectation (named by suite index) for the rows
    failing at least one of them in the polars evaluator, in row order. Uniqueness rules are left out
    (GX evaluates them on the whole column anyway).

    From ``quarantined`` (the ingest's quarantine rows: every failing row is there) when given, with
    the derived columns added as the ingest adds them; otherwise from ``prepared`` (every row).
    """
    frame = _quarantined_text(table, quarantined, known_members) if quarantined is not None else prepared
    rules = [r for r in row_rules(load_suite(table), set(frame.collect_schema().names())) if r.type not in WHOLE_COLUMN_TYPES]
    if not rules:
        return pl.DataFrame(schema={ROW: pl.UInt32})
    flags = [failure_expr(r, parameters).fill_null(False).alias(str(r.index)) for r in rules]
    return (
        frame.select(ROW, *flags).filter(pl.any_horizontal([str(r.index) for r in rules]))
        .collect(engine="streaming").sort(ROW)
    )


def polars_unexpected(
    table: str, frame: pl.DataFrame, parameters: dict[str, Any], *, whole_columns: pl.DataFrame | None = None,
) -> dict[int, int]:
    """The polars evaluator's failing-row count per row-level expectation, on the rows GX evaluated:
    ``frame``, and for uniqueness rules ``whole_columns`` when given (as :func:`run_suite`)."""
    rules = row_rules(load_suite(table), set(frame.columns))
    out: dict[int, int] = {}
    on_frame = [r for r in rules if not (r.type in WHOLE_COLUMN_TYPES and whole_columns is not None and r.column in whole_columns.columns)]
    if on_frame:
        row = frame.select(failure_expr(r, parameters).fill_null(False).sum().alias(str(r.index)) for r in on_frame).row(0, named=True)
        out.update({int(k): int(v) for k, v in row.items()})
    for r in rules:
        if r not in on_frame:
            out[r.index] = int(whole_columns.select(failure_expr(r, parameters).fill_null(False).sum()).item())
    return out


def differences(outcomes: list[dict[str, Any]], polars: dict[int, int]) -> list[str]:
    """Rule ids of the expectations where GX's unexpected count differs from the polars evaluator's
    on the same rows (expectations GX could not evaluate are reported as errors instead)."""
    out = set()
    for o in outcomes:
        if o["index"] in polars and o["error"] is None and o["unexpected_count"] is not None and o["unexpected_count"] != polars[o["index"]]:
            out.add(o["rule"])
    return sorted(out)


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for logs and Dagster metadata: failed expectations by severity, unexpected rows per rule."""
    failed = [o for o in outcomes if o["success"] is False or o["error"]]
    per_rule: dict[str, int] = {}
    for o in outcomes:
        if o["unexpected_count"]:
            per_rule[o["rule"]] = per_rule.get(o["rule"], 0) + int(o["unexpected_count"])
    return {
        "expectations": len(outcomes),
        "evaluated": sum(1 for o in outcomes if o["evaluated_on"] != SKIPPED),
        "failed": len(failed),
        "failed_block": sorted({o["rule"] for o in failed if o["severity"] == "block"}),
        "failed_quarantine": sorted({o["rule"] for o in failed if o["severity"] != "block"}),
        "errors": sorted({o["rule"] for o in outcomes if o["error"]}),
        "unexpected_by_rule": dict(sorted(per_rule.items())),
    }



# ---------------------------------------------------------------------------------------------------
# within a run's output layout: results cached per input, shared by asset checks and the report


def _suite_sha256(table: str) -> str:
    return hashlib.sha256(load_suite(table).path.read_bytes()).hexdigest()


def run_key(table: str, input_dir: Path, layout_root: Path, parameters: dict[str, Any], sampling: Sampling | None = None) -> dict[str, Any]:
    """What a table's GX result depends on: its input file, its suite, the parameters, the members
    used, and which rows GX evaluates (:class:`Sampling`).

    Non-members tables depend on the *used* members (``_member_known``), which are fixed by the
    members input, the members suite and the parameters (taken from ``validation/members.json``).
    """
    path = find_input(input_dir, table)
    key: dict[str, Any] = {
        "input_sha256": sha256_file(path) if path else None,
        "suite_sha256": _suite_sha256(table),
        "parameters_digest": parameters_digest(parameters),
        "sampling": (sampling if sampling is not None else Sampling.from_env()).to_dict(),
    }
    if table != "members":
        members_result = Path(layout_root) / "validation" / "members.json"
        info = json.loads(members_result.read_text(encoding="utf-8")) if members_result.is_file() else {}
        key["members_input_sha256"] = info.get("sha256")
        key["members_suite_sha256"] = _suite_sha256("members")
    return key


def gx_result_path(layout_root: Path, table: str) -> Path:
    return Path(layout_root) / "validation" / "gx" / f"{table}.json"


def run_table_cached(
    table: str,
    input_dir: Path,
    layout_root: Path,
    parameters: dict[str, Any],
    *,
    batch_rows: int = BATCH_ROWS,
    context: Any = None,
    sampling: Sampling | None = None,
) -> dict[str, Any]:
    """:func:`run_table` for a run's output folder, reusing ``validation/gx/<table>.json`` when current.

    Known members are the run's used members (``restricted/tables/members.parquet``), as in ingest.
    In sample mode the failing rows come from the ingest's ``restricted/quarantine/<table>.parquet``
    when ``validation/<table>.json`` says it was made from the same input file and suite version.
    The stored result carries its :func:`run_key`; it is recomputed when any part of the key changed.
    """
    from equity_pipeline.io import write_text_atomic

    root = Path(layout_root)
    sampling = sampling if sampling is not None else Sampling.from_env()
    key = run_key(table, input_dir, root, parameters, sampling)
    stored_path = gx_result_path(root, table)
    if stored_path.is_file():
        stored = json.loads(stored_path.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            return stored
    members = root / "restricted" / "tables" / "members.parquet"
    known = pl.scan_parquet(members) if table != "members" and members.is_file() else None
    quarantined, ingest_read, drawn, flags = _ingest_quarantine(root, table, key["input_sha256"], sampling, parameters)
    result = {**run_table(table, input_dir, parameters, known_members=known, batch_rows=batch_rows, context=context,
                          sampling=sampling, quarantined=quarantined, ingest_read=ingest_read, input_sha256=key["input_sha256"],
                          ingest_sample=drawn, ingest_failing=flags),
              "key": key}
    write_text_atomic(json.dumps(result, indent=2, default=str) + "\n", stored_path)
    return result


def _ingest_quarantine(
    root: Path, table: str, input_sha256: str | None, sampling: Sampling, parameters: dict[str, Any],
) -> tuple[pl.LazyFrame | None, int | None, pl.LazyFrame | None, pl.LazyFrame | None]:
    """The ingest's quarantined rows of this input (same file hash and suite version), its rows
    read, and, when made with ``sampling`` and ``parameters``, its copy of the sample's random rows
    and its failing flags; or Nones."""
    result_path, quarantine = root / "validation" / f"{table}.json", root / "restricted" / "quarantine" / f"{table}.parquet"
    if input_sha256 is None or not (result_path.is_file() and quarantine.is_file()):
        return None, None, None, None
    info = json.loads(result_path.read_text(encoding="utf-8"))
    if info.get("sha256") != input_sha256 or info.get("suite_version") != load_suite(table).version:
        return None, None, None, None
    read = info.get("read")
    same = info.get("gx_sample") == sample_key(sampling, parameters)
    sample, failing = gx_sample_path(root / "restricted", table), gx_failing_path(root / "restricted", table)
    return (pl.scan_parquet(quarantine), (int(read) if isinstance(read, int) else None),
            pl.scan_parquet(sample) if same and sample.is_file() else None,
            pl.scan_parquet(failing) if same and failing.is_file() else None)


def compare_with_ingest(outcomes: list[dict[str, Any]], rule_counts: dict[str, int]) -> list[str]:
    """Rule ids where GX's failing-row count differs from the polars ingest's quarantine count.

    Only rules owned by one expectation are comparable (a shared rule id, e.g. ``invalid_icd10cm`` on
    12 columns, counts a row once however many of its columns fail).
    """
    owners: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        owners.setdefault(o["rule"], []).append(o)
    out = []
    for rule, group in sorted(owners.items()):
        if len(group) != 1 or group[0]["unexpected_count"] is None:
            continue
        if int(rule_counts.get(rule, 0)) != int(group[0]["unexpected_count"]):
            out.append(rule)
    return out
