"""Read the public disparities table (``public/disparities.parquet``) for the report.

That table (built by :func:`equity_pipeline.disparity_tables.disparity_table`) has one row per
published-or-suppressed stratum: the stratum against its reference group (``reference_stratum``, a
published stratum or ``overall``), with ``rate``, ``reference_rate``, the rate ``difference`` and
``ratio`` with 95% CIs, ``p_value`` and the multiplicity-adjusted ``p_adjusted``, and the flags
``is_reference``, ``significant``, ``worse_than_reference``, ``insufficient_data``, ``suppressed``
and ``status`` (compared, reference, suppressed, unknown_group, no_reference, no_comparison,
unsupported). The report reads, never recomputes: a comparison is *significant* when the table says
so and its data are sufficient; a *gap* is a row flagged ``worse_than_reference`` whose status is
``compared`` (Unknown, Declined and similar non-response groups are compared but never gaps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

#: Columns the report needs; a table without them is ignored (the report then has no disparity parts).
REQUIRED: tuple[str, ...] = (
    "measure_id", "submeasure", "unit_id", "stratifier", "stratum", "reference_stratum", "rate", "reference_rate",
    "ratio", "ratio_ci_lower", "ratio_ci_upper", "significant", "worse_than_reference", "suppressed", "is_reference",
    "status",
)
OPTIONAL: dict[str, pl.DataType] = {
    "difference": pl.Float64, "difference_ci_lower": pl.Float64, "difference_ci_upper": pl.Float64,
    "p_value": pl.Float64, "p_adjusted": pl.Float64, "insufficient_data": pl.Boolean,
}


def comparisons(disparities: pl.DataFrame | None) -> pl.DataFrame:
    """The disparities table with every column the report reads (optional ones null when missing);
    an empty frame when there is no table or it lacks a required column."""
    if disparities is None or any(c not in disparities.columns for c in REQUIRED):
        return pl.DataFrame(schema={**{c: pl.String for c in REQUIRED}, **OPTIONAL})
    return disparities.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in OPTIONAL.items() if c not in disparities.columns)


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


@dataclass(frozen=True)
class Comparison:
    """One stratum against its reference group (numbers None when suppressed or not compared)."""

    group: str
    reference_group: str | None
    rate: float | None
    reference_rate: float | None
    ratio: float | None
    ratio_lower: float | None
    ratio_upper: float | None
    difference: float | None
    difference_lower: float | None
    difference_upper: float | None
    p: float | None
    significant: bool
    worse: bool
    insufficient: bool
    suppressed: bool
    status: str

    @property
    def log_size(self) -> float:
        """|log ratio|: how far from parity, the same for 0.5 and 2 (infinite for a ratio of 0 or ∞)."""
        if self.ratio is None:
            return 0.0
        return math.inf if self.ratio <= 0 or not math.isfinite(self.ratio) else abs(math.log(self.ratio))

    @property
    def verdict(self) -> str:
        """The table's words: 'yes', 'no', 'insufficient data', 'not tested' (non-response groups), ''."""
        if self.ratio is None:
            return ""
        if self.insufficient:
            return "insufficient data"
        if self.status != "compared":
            return "not tested"
        return "yes" if self.significant else "no"


def _comparison(r: dict) -> Comparison:
    hidden = bool(r["suppressed"])
    value = (lambda k: None) if hidden else (lambda k: _num(r.get(k)))
    p = value("p_adjusted")
    return Comparison(
        group=str(r["stratum"]), reference_group=r["reference_stratum"], rate=value("rate"),
        reference_rate=value("reference_rate"), ratio=value("ratio"), ratio_lower=value("ratio_ci_lower"),
        ratio_upper=value("ratio_ci_upper"), difference=value("difference"),
        difference_lower=value("difference_ci_lower"), difference_upper=value("difference_ci_upper"),
        p=p if p is not None else value("p_value"),
        significant=not hidden and bool(r["significant"]) and not bool(r.get("insufficient_data")),
        worse=not hidden and bool(r["worse_than_reference"]) and r["status"] == "compared",
        insufficient=bool(r.get("insufficient_data")), suppressed=hidden, status=str(r["status"] or ""),
    )


def unit_comparisons(frame: pl.DataFrame, *, measure_id: str, stratifier: str, unit_id: str = "all",
                     submeasure: str = "all") -> tuple[list[Comparison], Comparison | None]:
    """(the strata compared with the reference, sorted by ratio, largest first, those without a
    ratio last by name; the reference stratum's own row or None) for one measure x unit x stratifier."""
    rows = frame.filter((pl.col("measure_id") == measure_id) & (pl.col("stratifier") == stratifier)
                        & (pl.col("unit_id") == unit_id) & (pl.col("submeasure") == submeasure)).to_dicts()
    reference = next((_comparison(r) for r in rows if r["is_reference"]), None)
    others = [_comparison(r) for r in rows if not r["is_reference"]]
    shown = sorted((c for c in others if c.ratio is not None), key=lambda c: (-c.ratio, c.group))
    rest = sorted((c for c in others if c.ratio is None), key=lambda c: c.group)
    return shown + rest, reference
