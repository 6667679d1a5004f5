"""Analyst calculator: summary disparity measures for a CSV with one row per group.

``equity-pipeline disparity --input groups.csv --out result.json`` calls :func:`run_calculator`.

Input columns (names are case-insensitive, surrounding spaces ignored):

* either ``numerator,denominator`` (counts: the rate is ``numerator / denominator`` as a proportion
  of 1, its SE the binomial ``sqrt(p (1 - p) / n)`` unless an ``se`` column is given, and the
  denominator is the group's population), or ``rate,population`` with an optional ``se`` (the rate
  is used in the units given, never rescaled; its scale, e.g. 100 for percent, is taken from the
  ``scale`` option or inferred as healthequal does: the smallest of 1, 100, 1,000 ... 1,000,000 not
  below the largest rate);
* optional ``group`` (name), ``reference`` (1/0, true/false, yes/no: marks one reference group),
  ``order`` (distinct integers, 1 = most disadvantaged; makes the dimension ordered).

The JSON has one key per measure (snake_case, see :func:`~equity_pipeline.stats.summary.all_summaries`),
each ``{estimate, se, ci_lower, ci_upper, method}`` with null where not defined, plus ``input``
describing how the file was read. No group-level counts are echoed back.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl

from equity_pipeline.errors import PipelineError
from equity_pipeline.io import write_text_atomic
from equity_pipeline.stats.summary import DEFAULT_SEED, DEFAULT_SIMULATIONS, Model, all_summaries

TRUE_WORDS = {"1", "true", "t", "yes", "y"}
FALSE_WORDS = {"0", "false", "f", "no", "n", ""}
SCALES = (1, 100, 1_000, 10_000, 100_000, 1_000_000)


class CalculatorInputError(PipelineError, ValueError):
    """The groups CSV cannot be used; the message names the file, column and row, never a value."""


def _fail(path: Path, message: str) -> CalculatorInputError:
    return CalculatorInputError(f"{path.name}: {message}")


def _read(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not a readable CSV ({type(exc).__name__})") from None
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if frame.height == 0:
        raise _fail(path, "has no data rows")
    return frame


def _numbers(frame: pl.DataFrame, column: str, path: Path, *, required: bool) -> np.ndarray:
    """The column as floats; names the first bad row (1-based data row) on failure."""
    text = frame[column].str.strip_chars()
    values = text.cast(pl.Float64, strict=False)
    for row, (raw, value) in enumerate(zip(text.to_list(), values.to_list(), strict=True), start=1):
        blank = raw is None or raw == ""
        if blank and required:
            raise _fail(path, f"column '{column}' is empty in row {row}")
        if not blank and (value is None or not math.isfinite(value)):
            raise _fail(path, f"column '{column}' is not a number in row {row}")
    return values.to_numpy().astype(np.float64)


def _check_non_negative(values: np.ndarray, column: str, path: Path, *, strictly: bool = False) -> None:
    bad = np.flatnonzero(values <= 0 if strictly else values < 0)
    if bad.size:
        need = "greater than 0" if strictly else "0 or more"
        raise _fail(path, f"column '{column}' must be {need} (row {bad[0] + 1})")


def _estimates(frame: pl.DataFrame, path: Path, scale: float | None) -> tuple[dict, dict]:
    """(columns for all_summaries, description of how rates were read)."""
    counts = {"numerator", "denominator"} <= set(frame.columns)
    rates = {"rate", "population"} <= set(frame.columns)
    if counts == rates:
        found = ", ".join(frame.columns)
        raise _fail(path, "needs either numerator,denominator or rate,population columns (not both); "
                          f"found: {found}")
    se = _numbers(frame, "se", path, required=False) if "se" in frame.columns else None
    if se is not None:
        _check_non_negative(se[np.isfinite(se)], "se", path)
    if counts:
        num = _numbers(frame, "numerator", path, required=True)
        den = _numbers(frame, "denominator", path, required=True)
        _check_non_negative(num, "numerator", path)
        _check_non_negative(den, "denominator", path, strictly=True)
        if np.any(num > den):
            raise _fail(path, f"numerator is larger than denominator in row {np.flatnonzero(num > den)[0] + 1}")
        est = num / den
        if se is None or not np.all(np.isfinite(se)):
            se = np.sqrt(est * (1 - est) / den)
        return ({"estimate": est, "population": den, "se": se},
                {"rate_units": "proportion of 1 (numerator / denominator)", "scale": 1, "scale_source": "proportion"})
    est = _numbers(frame, "rate", path, required=True)
    pop = _numbers(frame, "population", path, required=True)
    _check_non_negative(est, "rate", path)
    _check_non_negative(pop, "population", path)
    if pop.sum() <= 0:
        raise _fail(path, "column 'population' is 0 in every row")
    source = "given"
    if scale is None:
        scale, source = next((s for s in SCALES if est.max() <= s), SCALES[-1]), "inferred from the largest rate"
    columns = {"estimate": est, "population": pop}
    if se is not None:
        columns["se"] = se
    return columns, {"rate_units": "as given", "scale": scale, "scale_source": source}


def _flags(frame: pl.DataFrame, path: Path) -> np.ndarray:
    words = frame["reference"].str.strip_chars().str.to_lowercase().fill_null("")
    unknown = [i for i, w in enumerate(words.to_list(), start=1) if w not in TRUE_WORDS | FALSE_WORDS]
    if unknown:
        raise _fail(path, f"column 'reference' must be 1/0, true/false or yes/no (row {unknown[0]})")
    flags = words.is_in(list(TRUE_WORDS)).to_numpy()
    if flags.sum() > 1:
        raise _fail(path, "column 'reference' marks more than one group; mark exactly one")
    return flags


def _order(frame: pl.DataFrame, path: Path) -> np.ndarray:
    order = _numbers(frame, "order", path, required=True)
    if np.any(order != np.round(order)) or np.unique(order).size != order.size:
        raise _fail(path, "column 'order' must hold distinct whole numbers (1 = most disadvantaged)")
    return order


def _groups(frame: pl.DataFrame, path: Path, scale: float | None) -> tuple[pl.DataFrame, dict]:
    columns, description = _estimates(frame, path, scale)
    if frame.height < 2:
        raise _fail(path, "needs at least two groups (rows)")
    names = (frame["group"].str.strip_chars() if "group" in frame.columns
             else pl.Series([f"group_{i}" for i in range(1, frame.height + 1)]))
    if names.null_count() or (names == "").any() or names.n_unique() != names.len():
        raise _fail(path, "column 'group' must name every row once (no blanks or duplicates)")
    columns["group"] = names.to_list()
    if "reference" in frame.columns:
        columns["reference"] = _flags(frame, path)
    if "order" in frame.columns:
        columns["order"] = _order(frame, path)
    return pl.DataFrame(columns), description


def _json_number(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def compute_from_csv(path: Path | str, *, favourable: bool = True, scale: float | None = None,
                     alpha: float = 0.05, simulations: int = DEFAULT_SIMULATIONS, seed: int = DEFAULT_SEED,
                     sii_model: Model = "logistic") -> dict:
    """All applicable summary measures for the groups in ``path`` as a JSON-ready dict.

    ``favourable=True``: higher rates are better (use False for adverse indicators such as mortality).
    ``scale`` applies to ``rate,population`` input only (counts are proportions, scale 1).
    Raises :class:`CalculatorInputError` (a ValueError) with a one-line message for unusable input.
    """
    path = Path(path)
    groups, description = _groups(_read(path), path, scale)
    ordered = "order" in groups.columns
    results = all_summaries(groups, favourable=favourable, ordered=ordered, scale=description["scale"],
                            alpha=alpha, simulations=simulations, seed=seed, sii_model=sii_model)
    reference = groups.filter(pl.col("reference"))["group"].to_list() if "reference" in groups.columns else []
    out: dict = {"input": {"file": path.name, "groups": groups.height, "ordered": ordered,
                           "favourable": favourable, "reference_group": reference[0] if reference else None,
                           "confidence_level": 1 - alpha, **description}}
    for name, result in results.items():
        out[name] = {k: _json_number(v) for k, v in result.as_dict().items() if k != "measure"}
    return out


def run_calculator(input_path: Path | str, out_path: Path | str | None = None, **options) -> dict:
    """:func:`compute_from_csv` on ``input_path``; also writes the JSON to ``out_path`` when given."""
    result = compute_from_csv(input_path, **options)
    if out_path is not None:
        write_text_atomic(json.dumps(result, indent=2, allow_nan=False) + "\n", Path(out_path))
    return result
