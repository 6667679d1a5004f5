"""Each published stratum against the program's reference group: difference and ratio with 95% CIs.

Only published rows enter (a comparison of two published rates reveals nothing new), so the
comparison is done after suppression. Methods are those of the disparity table
(``stats.pairwise_disparities``): proportions and stay/visit shares by the Newcombe hybrid score
interval (difference) and the Miettinen-Nurminen score interval (ratio); event rates per person-time
by the Poisson score interval (difference) and the exact conditional interval (ratio). Estimates are
on the published scale (``rate_per``). No multiplicity adjustment: the plan reports the gap and its
interval for each group; ``public/disparities.parquet`` carries the adjusted tests.

Reference (rules ``reference_groups``): a named stratum, or ``best`` / ``largest`` among the published
strata other than Unknown, Declined and Not screened. A row whose reference is missing or suppressed
gets no comparison (``reference_stratum`` null).
"""
from __future__ import annotations

import math

import polars as pl

from equity_pipeline.attributes import UNKNOWN_STRATA
from equity_pipeline.stats.disparities import pairwise_disparities

COUNT_KINDS = {"proportion": "proportion", "readmission": "proportion", "event_rate": "rate"}
GROUP = ["plan", "metric_id", "submeasure", "unit_level", "unit_id", "payer", "stratifier"]
OUTPUT = {
    "reference_stratum": pl.String, "is_reference": pl.Boolean,
    "difference": pl.Float64, "difference_ci_lower": pl.Float64, "difference_ci_upper": pl.Float64,
    "ratio": pl.Float64, "ratio_ci_lower": pl.Float64, "ratio_ci_upper": pl.Float64, "reference_n": pl.Float64,
}


def _choose(rows: list[dict], policy: str, higher_is_better: bool) -> dict | None:
    usable = [r for r in rows if r["stratum"] not in UNKNOWN_STRATA]
    if policy == "largest":
        return max(usable, key=lambda r: (r["denominator"], r["stratum"]), default=None)
    if policy == "best":
        sign = 1 if higher_is_better else -1
        return max(usable, key=lambda r: (sign * r["numerator"] / r["denominator"], r["denominator"]), default=None)
    return next((r for r in usable if r["stratum"] == policy), None)


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def compare_to_reference(table: pl.DataFrame, references: dict[str, str]) -> pl.DataFrame:
    """``table`` plus :data:`OUTPUT` columns for rows whose stratifier has a reference in ``references``.

    ``table`` has GROUP, stratum, kind, numerator, denominator, members, rate_per, direction and
    suppressed (suppressed rows carry null counts)."""
    filled = {k: [None] * table.height for k in OUTPUT}
    idx = table.with_row_index("_i")
    eligible = idx.filter(pl.col("stratifier").is_in(list(references)) & pl.col("kind").is_in(list(COUNT_KINDS)))
    for _, group in eligible.group_by(GROUP, maintain_order=True):
        stratifier, kind = group["stratifier"][0], group["kind"][0]
        per = float(group["rate_per"][0] or 1.0)
        higher = group["direction"][0] == "higher_is_better"
        rows = [r for r in group.to_dicts() if not r["suppressed"] and r["denominator"] is not None and r["denominator"] > 0
                and r["numerator"] is not None]
        ref = _choose(rows, references[stratifier], higher)
        if ref is None:
            continue
        for r in group.to_dicts():
            filled["reference_stratum"][r["_i"]] = ref["stratum"]
            filled["is_reference"][r["_i"]] = r["stratum"] == ref["stratum"]
            filled["reference_n"][r["_i"]] = ref["members"] if ref["members"] is not None else ref["denominator"]
        others = [r for r in rows if r["stratum"] != ref["stratum"]]
        if not others:
            continue
        summary = pl.DataFrame({"group": [r["stratum"] for r in [ref, *others]],
                                "numerator": [float(r["numerator"]) for r in [ref, *others]],
                                "denominator": [float(r["denominator"]) for r in [ref, *others]]})
        result = pairwise_disparities(summary, reference=ref["stratum"], higher_is_better=higher,
                                      outcome=COUNT_KINDS[kind], adjust="none")
        by_group = {(g, m): (e, lo, hi) for g, m, e, lo, hi in result.select("group", "metric", "estimate", "ci_lower", "ci_upper").iter_rows()}
        for r in others:
            d, q = by_group[(r["stratum"], "rate_difference")], by_group[(r["stratum"], "rate_ratio")]
            i = r["_i"]
            filled["difference"][i], filled["difference_ci_lower"][i], filled["difference_ci_upper"][i] = (
                _finite(v * per) if v is not None else None for v in d)
            filled["ratio"][i], filled["ratio_ci_lower"][i], filled["ratio_ci_upper"][i] = (_finite(v) for v in q)
    return table.with_columns(pl.Series(k, v, dtype=t) for (k, t), v in zip(OUTPUT.items(), filled.values()))
