"""Public disparity tables from the public (suppressed) rates: pairwise and summary.

``disparity_table``: one row per published rates row of every stratifier (measure x sub-measure x
unit x stratifier x stratum): the stratum against its reference group, rate difference and rate
ratio with confidence intervals, p-value, multiplicity-adjusted p-value and flags.
``summary_table``: the applicable summary measures of inequality (healthequal / HD*Calc) per
measure x sub-measure x unit x stratifier.

The statistics are those of :mod:`equity_pipeline.stats` (``pairwise_vs_reference``,
``all_summaries``); this module chooses the groups, the reference and the family of comparisons.

Never revealing a suppressed cell:

* only strata published in ``public/rates`` enter any computation; a suppressed stratum keeps its
  row here with every value null and ``status = suppressed``;
* the reference group is chosen among published strata (or is the published ``overall`` row), so
  every figure is a function of published numbers; against ``overall``, "the rest" of the population
  is overall minus the group, both published;
* summary measures use published strata only; Unknown, Declined and Not screened are shown and
  compared but never the reference, never in the multiplicity family and never in summary measures.

Everything returned is aggregate (no member ids, no counts below the publication threshold).
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from itertools import groupby
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy.special import ndtr
from scipy.stats import norm

from equity_pipeline.stats.disparities import OVERALL, _versus_overall, compare_groups, pairwise_vs_reference, reference_group
from equity_pipeline.stats.summary import DEFAULT_SEED, DEFAULT_SIMULATIONS, all_summaries
from equity_pipeline.stratify import KEY, ORDERED_STRATIFIERS, is_unknown_stratum, ratio_estimator_se

GROUP_KEY = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier"]
UNIT_KEY = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id"]

DISPARITY_COLUMNS: dict[str, Any] = {
    "measure_id": pl.String, "measure_version": pl.String, "submeasure": pl.String, "period": pl.String,
    "unit_level": pl.String, "unit_id": pl.String, "stratifier": pl.String, "stratum": pl.String,
    "reference_stratum": pl.String, "reference_policy": pl.String, "direction": pl.String, "rate_type": pl.String,
    "rate_per": pl.Float64, "rate": pl.Float64, "reference_rate": pl.Float64,
    "difference": pl.Float64, "difference_ci_lower": pl.Float64, "difference_ci_upper": pl.Float64,
    "ratio": pl.Float64, "ratio_ci_lower": pl.Float64, "ratio_ci_upper": pl.Float64,
    "p_value": pl.Float64, "p_adjusted": pl.Float64, "adjustment": pl.String, "method": pl.String,
    "is_reference": pl.Boolean, "significant": pl.Boolean, "worse_than_reference": pl.Boolean,
    "insufficient_data": pl.Boolean, "suppressed": pl.Boolean, "status": pl.String,
}
SUMMARY_COLUMNS: dict[str, Any] = {
    "measure_id": pl.String, "measure_version": pl.String, "submeasure": pl.String, "period": pl.String,
    "unit_level": pl.String, "unit_id": pl.String, "stratifier": pl.String, "summary_measure": pl.String,
    "value": pl.Float64, "se": pl.Float64, "ci_lower": pl.Float64, "ci_upper": pl.Float64, "method": pl.String,
    "groups_used": pl.Int64, "strata_used": pl.List(pl.String), "reference_stratum": pl.String,
    "ordered": pl.Boolean, "favourable": pl.Boolean, "rate_per": pl.Float64,
}
#: values of ``status``
STATUSES = ("compared", "reference", "suppressed", "unknown_group", "no_reference", "no_comparison", "unsupported")
#: the statistics module's names for the multiplicity methods
ADJUSTMENTS = {"holm": "holm", "bh": "fdr_bh"}
#: rate kind -> how strata are compared
#: readmission: the observed share of index stays readmitted, compared as a proportion of stays
#: (stays of one member are not independent; the CI is therefore somewhat narrow, see docs/stratification.md)
OUTCOMES = {"proportion": "proportion", "readmission": "proportion", "event_rate": "rate", "cost": "mean", "cost_share": "mean"}


@dataclass(frozen=True)
class DisparityOptions:
    """How disparities are judged (from the program config; see docs/stratification.md)."""

    reference: Mapping[str, str] = field(default_factory=dict)
    """stratifier -> policy (best | largest | overall) or stratum name; others use ``default_reference``"""
    default_reference: str = "largest"
    adjust: Literal["holm", "bh"] = "holm"
    min_denominator: int = 30
    alpha: float = 0.05
    simulations: int = DEFAULT_SIMULATIONS
    seed: int = DEFAULT_SEED

    def reference_for(self, stratifier: str) -> str:
        return self.reference.get(stratifier, self.default_reference)

    @classmethod
    def from_config(cls, config) -> "DisparityOptions":
        policies = dict(config.reference_group)
        default = policies.pop("default", "largest")
        return cls(reference=policies, default_reference=default, adjust=config.multiple_comparisons,
                   min_denominator=config.disparity_min_denominator)


# ------------------------------------------------------------------------------------------------
# multiplicity


def adjust_p_values(p_values, method: Literal["holm", "bh"]) -> np.ndarray:
    """Holm (1979) step-down or Benjamini-Hochberg (1995) step-up adjusted p-values (NaN stays NaN
    and is not counted in the family). Same figures as statsmodels ``multipletests`` (which calls
    ``gc.collect()`` on every call, far too slow for thousands of small families)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    q = p[ok]
    if method == "holm":
        order = np.argsort(q, kind="mergesort")
        adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    elif method == "bh":
        order = np.argsort(q, kind="mergesort")[::-1]
        adjusted = np.minimum(1.0, np.minimum.accumulate(m / np.arange(m, 0, -1) * q[order]))
    else:
        raise ValueError(f"method must be 'holm' or 'bh' (got {method!r})")
    result = np.empty(m)
    result[order] = adjusted
    out[ok] = result
    return out


# ------------------------------------------------------------------------------------------------
# comparisons


@lru_cache(maxsize=16)
def _z(alpha: float) -> float:
    """``float(norm.ppf(1 - alpha / 2))``, cached (the same value; scipy's distribution methods check
    their arguments on every call)."""
    return float(norm.ppf(1 - alpha / 2))


def _mean_comparison(x1: float, se1: float, x0: float, se0: float, metric: str, alpha: float):
    """Wald comparison of two independent means (cost per member month, spend share), from their
    linearised standard errors: difference ``x1 - x0`` with SE ``sqrt(se1^2 + se0^2)``; ratio on the
    log scale with SE ``sqrt((se1/x1)^2 + (se0/x0)^2)``; p-value of the z-test of no difference
    (shared by both metrics, as in the statistics module)."""
    z = _z(alpha)
    se_d = math.sqrt(se1 ** 2 + se0 ** 2)
    # scipy's norm.sf(x) is special.ndtr(-x) (without the distribution object's per-call checks)
    p_value = 2 * ndtr(-(abs(x1 - x0) / se_d)) if se_d > 0 else (1.0 if x1 == x0 else 0.0)
    method = "ratio estimator (linearised SE), Wald"
    if metric == "rate_difference":
        d = x1 - x0
        return d, se_d, d - z * se_d, d + z * se_d, float(p_value), method
    if x1 <= 0 or x0 <= 0:
        return (x1 / x0 if x0 > 0 else math.nan), math.nan, math.nan, math.nan, float(p_value), method
    se_l = math.sqrt((se1 / x1) ** 2 + (se0 / x0) ** 2)
    r = x1 / x0
    return r, se_l, r * math.exp(-z * se_l), r * math.exp(z * se_l), float(p_value), method


def _compare_means(rows: list[dict], reference: dict | None, overall: dict | None, alpha: float) -> dict[str, dict]:
    """{stratum: {metric: (estimate, se, lower, upper, p, method)}} for mean-type (cost) measures."""
    out: dict[str, dict] = {}
    for r in rows:
        res = {}
        for metric in ("rate_difference", "rate_ratio"):
            if reference is not None:
                res[metric] = _mean_comparison(r["_mean"], r["_se"], reference["_mean"], reference["_se"], metric, alpha)
            else:  # against overall: group vs rest (sums are additive), mapped exactly to group vs overall
                rest = {k: overall[k] - r[k] for k in ("numerator", "denominator", "_members", "sum_num_sq", "sum_num_den", "sum_den_sq")}
                if rest["denominator"] <= 0 or rest["_members"] <= 0:
                    continue
                rest_frame = pl.DataFrame({k.lstrip("_"): [float(v)] for k, v in rest.items()})
                rest_mean = rest["numerator"] / rest["denominator"]
                rest_se = float(ratio_estimator_se(rest_frame)[0])
                values = _mean_comparison(r["_mean"], r["_se"], rest_mean, rest_se, metric, alpha)
                share = r["denominator"] / overall["denominator"]
                res[metric] = _versus_overall(share, metric, values)
        if res:
            out[r["stratum"]] = res
    return out


def _compare_counts(rows: list[dict], reference: dict | None, overall: dict | None, outcome: str, higher: bool,
                    alpha: float) -> dict[str, dict]:
    """{stratum: {metric: (...)}} via ``stats.pairwise_vs_reference`` (no adjustment here)."""
    groups = [(r["stratum"], float(r["numerator"]), float(r["denominator"])) for r in rows]
    if reference is not None:
        groups.append((reference["stratum"], float(reference["numerator"]), float(reference["denominator"])))
        ref_name = reference["stratum"]
    else:  # the whole population: the unlisted rest (suppressed strata) is one more group
        rest_num = float(overall["numerator"]) - sum(g[1] for g in groups)
        rest_den = float(overall["denominator"]) - sum(g[2] for g in groups)
        if rest_den > 0:
            groups.append(("\x00rest", max(rest_num, 0.0), rest_den))
        ref_name = OVERALL
    if len(groups) < 2:
        return {}
    names = [g[0] for g in groups]
    num = np.array([g[1] for g in groups], dtype=np.float64)
    den = np.array([g[2] for g in groups], dtype=np.float64)
    out: dict[str, dict] = {}
    if len(set(names)) != len(names) or not (np.all(num >= 0) and np.all(den > 0)):
        # what pairwise_vs_reference refuses (its error message): let it say so
        frame = pl.DataFrame(groups, schema={"group": pl.String, "numerator": pl.Float64, "denominator": pl.Float64}, orient="row")
        pairwise_vs_reference(frame, metric="rate_difference", reference=ref_name, higher_is_better=higher, outcome=outcome,
                              alpha=alpha, adjust="none")
    for metric in ("rate_difference", "rate_ratio"):
        # pairwise_vs_reference's comparisons (adjust = none), without building and checking a frame per table
        for group, _, _, estimate, se, lower, upper, p_value, ci_method in compare_groups(names, num, den, ref_name, metric, outcome, alpha):
            out.setdefault(group, {})[metric] = (float(estimate), float(se), float(lower), float(upper), float(p_value),
                                                 f"{outcome}: {ci_method} interval")
    out.pop("\x00rest", None)
    return out


def _published(r: dict) -> bool:
    return not r["suppressed"] and r["denominator"] is not None and r["denominator"] > 0 and r["rate"] is not None


def _choose_reference(policy: str, informative: list[dict], overall: dict | None, higher: bool,
                      min_denominator: int) -> tuple[dict | None, str | None]:
    """(reference row or None for overall, reference name) or (None, None) when there is none."""
    if policy == OVERALL:
        return (None, OVERALL) if overall is not None and _published(overall) else (None, None)
    if policy in ("best", "largest"):
        candidates = [r for r in informative if r["_members"] >= min_denominator] or informative
        if not candidates:
            return None, None
        if len(candidates) == 1:
            return candidates[0], candidates[0]["stratum"]
        top = _unique_top(policy, candidates, higher)
        if top is not None:
            return top, top["stratum"]
        frame = pl.DataFrame({"group": [r["stratum"] for r in candidates],
                              "numerator": [float(r["numerator"]) for r in candidates],
                              "denominator": [float(r["denominator"]) for r in candidates]})
        name = reference_group(frame, policy, higher_is_better=higher)
        return next(r for r in candidates if r["stratum"] == name), name
    named = [r for r in informative if r["stratum"] == policy]
    return (named[0], policy) if named else (None, None)


def _unique_top(policy: str, candidates: list[dict], higher: bool) -> dict | None:
    """The candidate ``stats.reference_group`` picks (``best`` or ``largest``) when no other candidate
    ties with it on the sort key, else None (then its own sort decides the tie, as always): the same
    choice without a frame and a sort per table."""
    num = [float(r["numerator"]) for r in candidates]
    den = [float(r["denominator"]) for r in candidates]
    if len({r["stratum"] for r in candidates}) != len(candidates) or not all(n >= 0 and d > 0 for n, d in zip(num, den)):
        return None   # reference_group refuses these: let it say so
    if policy == "largest":
        keys = den
    else:   # best: highest (or lowest) rate, then the larger denominator
        keys = [((n / d) if higher else -(n / d), d) for n, d in zip(num, den)]
    best = max(keys)
    return candidates[keys.index(best)] if keys.count(best) == 1 else None


def _empty_row(r: dict, policy: str, adjustment: str) -> dict:
    row = {c: None for c in DISPARITY_COLUMNS}
    row.update({k: r[k] for k in (*GROUP_KEY, "stratum", "direction", "rate_type", "rate_per")})
    row.update(reference_policy=policy, adjustment=adjustment, suppressed=bool(r["suppressed"]), is_reference=False)
    return row


def disparity_table(rates: pl.DataFrame, options: DisparityOptions = DisparityOptions(),
                    counts: pl.DataFrame | None = None, kinds: Mapping[str, str] | None = None) -> pl.DataFrame:
    """One row per non-overall row of ``rates`` (public/rates): the stratum vs its reference.

    ``counts`` (restricted stratified counts) supply the member-level sums behind the standard error
    of cost measures; ``kinds`` maps measure_id -> spec kind (proportion, event_rate, cost,
    cost_share; others get ``status = unsupported``). Estimates are on the rate's published scale
    (``rate_per``): ``difference = rate - reference_rate``, ``ratio = rate / reference_rate``.
    """
    kinds = dict(kinds or {})
    frame = _with_inputs(rates, counts)
    overall = {tuple(r[k] for k in UNIT_KEY): r for r in frame.filter(pl.col("stratifier") == "overall").iter_rows(named=True)}
    out: list[dict] = []
    adjustment = options.adjust
    for _, rows in _groups(frame):
        first = rows[0]
        stratifier, per = first["stratifier"], first["rate_per"] or 1.0
        higher = first["direction"] == "higher_is_better"
        policy = options.reference_for(stratifier)
        total = overall.get(tuple(first[k] for k in UNIT_KEY))
        outcome = OUTCOMES.get(kinds.get(first["measure_id"], "proportion"))
        published = [r for r in rows if _published(r)]
        informative = [r for r in published if not is_unknown_stratum(r["stratum"])]
        ref, ref_name = _choose_reference(policy, informative, total, higher, options.min_denominator)
        ref_row = total if ref_name == OVERALL else ref
        compared = [r for r in published if ref is None or r["stratum"] != ref["stratum"]]
        results: dict[str, dict] = {}
        if ref_name is not None and outcome is not None and compared:
            if outcome == "mean":
                if counts is not None and all(r["_se"] is not None for r in (*compared, ref_row)):
                    results = _compare_means(compared, ref, total, options.alpha)
            else:
                results = _compare_counts(compared, ref, total, outcome, higher, options.alpha)
        family = [r["stratum"] for r in compared if not is_unknown_stratum(r["stratum"]) and r["stratum"] in results]
        p_adj = dict(zip(family, adjust_p_values([results[s]["rate_difference"][4] for s in family], adjustment)))
        for r in rows:
            row = _empty_row(r, policy, adjustment)
            row["reference_stratum"] = ref_name
            if not _published(r):
                row["status"] = "suppressed" if r["suppressed"] else "no_comparison"
                row["suppressed"] = bool(r["suppressed"])
                out.append(row)
                continue
            row.update(rate=r["rate"], reference_rate=ref_row["rate"] if ref_row is not None else None)
            if ref is not None and r["stratum"] == ref["stratum"]:
                row.update(is_reference=True, status="reference", insufficient_data=r["_members"] < options.min_denominator)
                out.append(row)
                continue
            if ref_name is None:
                row["status"] = "no_reference"
                out.append(row)
                continue
            if outcome is None:
                row["status"] = "unsupported"
                out.append(row)
                continue
            res = results.get(r["stratum"])
            if res is None:
                row["status"] = "no_comparison"
                out.append(row)
                continue
            d, r_ = res["rate_difference"], res["rate_ratio"]
            scale = per  # the statistics are per unit (proportion, per member-month, per dollar): back to the published scale
            insufficient = r["_members"] < options.min_denominator or ref_row["_members"] < options.min_denominator
            in_family = r["stratum"] in p_adj
            significant = bool(p_adj[r["stratum"]] < options.alpha) if in_family and math.isfinite(p_adj[r["stratum"]]) else None
            worse = None
            if significant is not None:
                worse = significant and not insufficient and (d[0] < 0 if higher else d[0] > 0)
            row.update(
                difference=d[0] * scale, difference_ci_lower=d[2] * scale, difference_ci_upper=d[3] * scale,
                ratio=r_[0], ratio_ci_lower=r_[2], ratio_ci_upper=r_[3], p_value=d[4],
                p_adjusted=p_adj.get(r["stratum"]) if in_family else None,
                method=f"difference: {d[5]}; ratio: {r_[5]}", significant=significant, worse_than_reference=worse,
                insufficient_data=insufficient, status="compared" if in_family else "unknown_group",
            )
            out.append(row)
    table = pl.DataFrame([_clean(r) for r in out], schema=DISPARITY_COLUMNS, orient="row") if out else pl.DataFrame(schema=DISPARITY_COLUMNS)
    return table.sort(KEY)


def _groups(frame: pl.DataFrame):
    """(group key, rows as dicts sorted by stratum) per measure x unit x stratifier other than overall."""
    rows = frame.filter(pl.col("stratifier") != "overall").sort(*GROUP_KEY, "stratum").to_dicts()
    return ((key, list(group)) for key, group in groupby(rows, key=lambda r: tuple(r[k] for k in GROUP_KEY)))


def _with_inputs(rates: pl.DataFrame, counts: pl.DataFrame | None) -> pl.DataFrame:
    """Rates plus ``_members``, and for cost measures ``_mean`` and ``_se`` (published rows only)."""
    frame = rates.with_columns(_members=pl.col("members").cast(pl.Float64).fill_null(0.0))
    sums = ("sum_num_sq", "sum_num_den", "sum_den_sq")
    if counts is not None:
        frame = frame.join(counts.select(*KEY, *sums), on=KEY, how="left")
        # hidden sums of suppressed rows are never used: null them here already
        frame = frame.with_columns(pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in sums)
        se_input = frame.select(pl.col("numerator").cast(pl.Float64), pl.col("denominator").cast(pl.Float64),
                                members=pl.col("_members"), *[pl.col(c) for c in sums])
        frame = frame.with_columns(
            _mean=(pl.col("numerator") / pl.col("denominator")).cast(pl.Float64),
            _se=ratio_estimator_se(se_input).fill_nan(None),
        )
    else:
        frame = frame.with_columns(*[pl.lit(None, dtype=pl.Float64).alias(c) for c in sums],
                                   _mean=pl.lit(None, dtype=pl.Float64), _se=pl.lit(None, dtype=pl.Float64))
    return frame


def _clean(row: dict) -> dict:
    """NaN -> null; infinity kept only where it is a real value (a ratio over a reference rate of 0)."""
    out = {k: row.get(k) for k in DISPARITY_COLUMNS}
    for k, v in out.items():
        # v != v: NaN; the cheap tests first (this runs for every cell of the table)
        if (v != v or v in _INFINITIES) and isinstance(v, float) and (math.isnan(v) or k not in ("ratio", "ratio_ci_upper")):
            out[k] = None
    return out


_INFINITIES = (math.inf, -math.inf)


# ------------------------------------------------------------------------------------------------
# summary measures


def _stratum_se(r: dict, outcome: str, per: float) -> float:
    if outcome == "proportion":
        p = r["numerator"] / r["denominator"]
        return math.sqrt(max(p * (1 - p), 0.0) / r["denominator"])
    if outcome == "rate":
        return math.sqrt(r["numerator"]) / r["denominator"] * per
    return (r["_se"] if r["_se"] is not None else math.nan) * per


def summary_table(rates: pl.DataFrame, disparities: pl.DataFrame | None = None,
                  options: DisparityOptions = DisparityOptions(), counts: pl.DataFrame | None = None,
                  kinds: Mapping[str, str] | None = None) -> pl.DataFrame:
    """Summary measures per measure x sub-measure x unit x stratifier over the published strata
    other than Unknown/Declined/Not screened (at least two needed).

    Inputs per stratum: the published rate (``estimate``, on the rate's scale), members
    (``population``), SE (binomial for proportions, Poisson for event rates, linearised for costs),
    the ``order`` of ordered stratifiers (SVI quintile: Q5 = 1, most disadvantaged) and the
    reference stratum of ``disparities`` when it is a stratum. ``favourable`` = higher is better.
    Degenerate inputs (e.g. every rate 0) give no rows for that stratifier.
    """
    kinds = dict(kinds or {})
    frame = _with_inputs(rates, counts)
    refs: dict[tuple, str] = {}
    if disparities is not None and disparities.height:
        for r in disparities.filter(pl.col("is_reference")).select(*GROUP_KEY, "stratum").iter_rows():
            refs[tuple(r[:-1])] = r[-1]
    out: list[dict] = []
    for key, rows in _groups(frame):
        rows = [r for r in rows if _published(r) and not is_unknown_stratum(r["stratum"]) and r["_members"] > 0]
        if len(rows) < 2:
            continue
        first = rows[0]
        outcome = OUTCOMES.get(kinds.get(first["measure_id"], "proportion"))
        if outcome is None:
            continue
        per = first["rate_per"] or 1.0
        stratifier = first["stratifier"]
        order = ORDERED_STRATIFIERS.get(stratifier)
        ordered = order is not None and all(r["stratum"] in order for r in rows)
        ref = refs.get(tuple(key))
        groups = pl.DataFrame({
            "group": [r["stratum"] for r in rows],
            "estimate": [float(r["rate"]) for r in rows],
            "population": [float(r["_members"]) for r in rows],
            "se": [_stratum_se(r, outcome, per) for r in rows],
            **({"order": [float(order.index(r["stratum"]) + 1) for r in rows]} if ordered else {}),
        })
        if groups["se"].is_nan().any() or groups["se"].is_null().any():
            groups = groups.drop("se")
        favourable = first["direction"] == "higher_is_better"
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                results = all_summaries(groups, favourable=favourable, ordered=ordered,
                                        reference=ref if ref in groups["group"].to_list() else None, scale=per,
                                        alpha=options.alpha, simulations=options.simulations, seed=options.seed,
                                        sii_model="logistic" if outcome == "proportion" and per == 1 else "linear")
        except (ValueError, ZeroDivisionError, np.linalg.LinAlgError):
            continue
        strata = [r["stratum"] for r in rows]
        for name, res in results.items():
            out.append({**{k: first[k] for k in GROUP_KEY}, "summary_measure": name, "value": res.estimate,
                        "se": res.se, "ci_lower": res.ci_lower, "ci_upper": res.ci_upper, "method": res.method,
                        "groups_used": len(rows), "strata_used": strata, "reference_stratum": ref if ref in strata else None,
                        "ordered": ordered, "favourable": favourable, "rate_per": per})
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in out]
    table = pl.DataFrame(clean, schema=SUMMARY_COLUMNS, orient="row") if clean else pl.DataFrame(schema=SUMMARY_COLUMNS)
    return table.sort(*GROUP_KEY, "summary_measure")


# ------------------------------------------------------------------------------------------------
# the no-leak invariant (asset check)

VALUE_COLUMNS = ("rate", "reference_rate", "difference", "difference_ci_lower", "difference_ci_upper", "ratio",
                 "ratio_ci_lower", "ratio_ci_upper", "p_value", "p_adjusted")


def leaked_cells(disparities: pl.DataFrame, summary: pl.DataFrame, rates: pl.DataFrame) -> int:
    """Rows that would reveal a suppressed cell (must be 0): a suppressed disparity row with a value,
    a row whose stratum or reference is suppressed in ``rates`` but has values, or a summary row
    using a stratum that is suppressed in ``rates``."""
    hidden = rates.filter(pl.col("suppressed")).select(*GROUP_KEY, "stratum")
    bad = disparities.filter(pl.col("suppressed") & pl.any_horizontal(pl.col(c).is_not_null() for c in VALUE_COLUMNS)).height
    valued = disparities.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in VALUE_COLUMNS))
    bad += valued.join(hidden, on=[*GROUP_KEY, "stratum"], how="semi").height
    bad += valued.filter(pl.col("reference_stratum") != OVERALL).join(
        hidden.rename({"stratum": "reference_stratum"}), on=[*GROUP_KEY, "reference_stratum"], how="semi").height
    hidden_overall = rates.filter(pl.col("suppressed") & (pl.col("stratifier") == "overall")).select(UNIT_KEY)
    bad += valued.filter(pl.col("reference_stratum") == OVERALL).join(hidden_overall, on=UNIT_KEY, how="semi").height
    used = summary.select(*GROUP_KEY, "strata_used").explode("strata_used").rename({"strata_used": "stratum"})
    bad += used.join(hidden, on=[*GROUP_KEY, "stratum"], how="semi").height
    return bad
