"""Readmission measures (``kind: readmission``, e.g. PCR): index stays -> exclusions -> 30-day
unplanned readmission, with an observed/expected ratio from a risk model fitted on the run's data.

Steps (HEDIS PCR shape; each is spec data except the risk model, which is code the spec configures):

1. Stays: acute inpatient stays from final claims (:func:`equity_pipeline.encounters.inpatient_stays`:
   type of bill 11x; stays that overlap or touch, i.e. readmitted on or the day after discharge,
   are one stay, as HEDIS treats direct transfers).
2. Index stays: discharge date inside ``index_stays`` (PCR: January 1 - December 1).
3. Per index stay: age at discharge in the spec's band; continuous enrollment around the discharge
   (per-stay window, e.g. 365 days before through 30 days after); exclusions in spec order (first
   reason wins): discharge status (died, transfer out), member death, same-day stay, principal
   diagnosis (pregnancy, perinatal), member-level events (hospice).
4. Numerator per index stay: another acute stay admitted 1 to ``within_days`` days after the index
   discharge that is not planned (principal diagnosis in the planned value sets, e.g. chemotherapy,
   or a planned procedure such as an organ transplant during the stay).
5. Expected: probability of readmission from a logistic regression of the outcome on age band, sex
   and comorbidity count (distinct comorbidity value sets diagnosed from ``lookback`` days before
   admission through discharge), fitted with statsmodels on this run's index stays. With too few
   readmissions (or non-readmissions) or a failed fit, every stay gets the overall observed rate
   (intercept-only model); the method used is recorded.

Member-level output (one row per member, like every other measure): ``denominator_value`` = the
member's index stays, ``numerator_value`` = those readmitted, ``expected_value`` = the sum of their
predicted probabilities. A member is in the denominator with at least one index stay left after the
exclusions; a member whose every index stay is excluded is excluded with the reason of their first
one; members without an index stay, or whose stays all fail age or enrollment, are not eligible.
The public rate is the observed proportion of index stays readmitted. Summing ``expected_value``
over a stratum gives E; O/E = numerator / E (see :func:`observed_expected`). In-sample the model
reproduces the total (overall O/E = 1), so O/E compares each group with the run's own
case-mix-adjusted average (indirect standardisation).
"""
from __future__ import annotations

import warnings
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from equity_pipeline.encounters import inpatient_stays
from equity_pipeline.enrollment import enrolled_in_windows, payer_on_dates
from equity_pipeline.events import _tag, value_set_frame
from equity_pipeline.measures.engine import ALL_ROWS, MeasureCounts, _age_on_event, _in_band, bound, matching_members
from equity_pipeline.measures.spec import MeasureSpec
from equity_pipeline.periods import MeasurementPeriod

RESULT_COLUMNS = [
    "member_id", "measure_id", "measure_version", "submeasure", "period", "age", "payer", "line_of_business", "dual_status",
    "is_excluded", "exclusion_reason", "in_denominator", "in_numerator", "evidence_date", "evidence_source",
    "numerator_value", "denominator_value", "expected_value",
]
STAY_KEY = ["member_id", "stay_id"]
DISCHARGE, ADMIT = "_at_index_discharge", "_at_index_admit"


def _principal_in(stays: pl.LazyFrame, value_sets: tuple[str, ...] | list[str]) -> pl.LazyFrame:
    """member_id, stay_id of stays whose principal diagnosis is in any of ``value_sets``."""
    tagged = _tag(stays.select(*STAY_KEY, "principal_dx").filter(pl.col("principal_dx").is_not_null()), "principal_dx", "ICD10CM",
                  value_set_frame(value_sets))
    if tagged is None:
        return stays.select(STAY_KEY).head(0)
    return tagged.select(STAY_KEY).unique()


def readmissions(index: pl.LazyFrame, stays: pl.LazyFrame, events: pl.LazyFrame, rule: dict[str, Any]) -> pl.LazyFrame:
    """member_id, stay_id, readmit_date of index stays followed by an unplanned acute stay admitted
    1..``within_days`` days after the index discharge (the earliest such admission)."""
    within = int(rule.get("within_days", 30))
    planned = rule.get("planned", {})
    candidates = stays.select("member_id", "stay_id", "admit_date", "discharge_date")
    planned_parts = []
    if planned.get("principal_diagnosis"):
        planned_parts.append(_principal_in(stays, planned["principal_diagnosis"]))
    if planned.get("procedures"):
        procs = events.filter(pl.col("value_set").is_in(list(planned["procedures"]))).select("member_id", _d=pl.col("event_date")).unique()
        planned_parts.append(
            candidates.join(procs, on="member_id", how="inner")
            .filter(pl.col("_d").is_between(pl.col("admit_date"), pl.col("discharge_date"))).select(STAY_KEY).unique()
        )
    if planned_parts:
        candidates = candidates.join(pl.concat(planned_parts), on=STAY_KEY, how="anti")
    later = candidates.select("member_id", readmit_date=pl.col("admit_date"))
    return (
        index.select(*STAY_KEY, "discharge_date").join(later, on="member_id", how="inner")
        .filter(pl.col("readmit_date").is_between(pl.col("discharge_date") + pl.duration(days=1),
                                                  pl.col("discharge_date") + pl.duration(days=within)))
        .group_by(STAY_KEY).agg(pl.col("readmit_date").min())
    )


def comorbidities_in_windows(windows: pl.LazyFrame, key: list[str], events: pl.LazyFrame, value_sets: list[str]) -> pl.LazyFrame:
    """``key`` + comorbidities: distinct comorbidity ``value_sets`` with an event dated in the row's
    window ``_from`` .. ``_to`` (inclusive), 0 when none. Shared by PCR (per stay) and the
    standardised rates' risk adjustment (per member, :func:`member_comorbidities`)."""
    # not made distinct first: repeated (member, set, date) rows do not change the distinct count, and
    # the join keeps only the windows' members (a distinct pass over every diagnosis costs more)
    dx = events.filter(pl.col("value_set").is_in(list(value_sets))).select("member_id", "value_set", _d=pl.col("event_date"))
    hits = (
        windows.select(*key, "_from", "_to").join(dx, on="member_id", how="inner")
        .filter(pl.col("_d").is_between(pl.col("_from"), pl.col("_to")))
        .group_by(key).agg(comorbidities=pl.col("value_set").n_unique())
    )
    return windows.select(key).unique().join(hits, on=key, how="left").with_columns(pl.col("comorbidities").fill_null(0).cast(pl.Int64))


def comorbidity_counts(index: pl.LazyFrame, events: pl.LazyFrame, value_sets: list[str], lookback_days: int) -> pl.LazyFrame:
    """member_id, stay_id, comorbidities: distinct comorbidity value sets diagnosed from
    ``lookback_days`` before admission through discharge (0 when none)."""
    windows = index.select(*STAY_KEY, _from=pl.col("admit_date") - pl.duration(days=lookback_days), _to=pl.col("discharge_date"))
    return index.select(STAY_KEY).join(comorbidities_in_windows(windows, STAY_KEY, events, value_sets), on=STAY_KEY, how="left")


def member_comorbidities(members: pl.LazyFrame, events: pl.LazyFrame, value_sets: list[str], end: date,
                         lookback_days: int = 365) -> pl.LazyFrame:
    """member_id, comorbidities per member of ``members``: distinct comorbidity value sets diagnosed
    from ``lookback_days`` before ``end`` (the measurement period end) through ``end``; 0 when none."""
    windows = members.select("member_id").unique().with_columns(_from=pl.lit(end - timedelta(days=lookback_days)), _to=pl.lit(end))
    return comorbidities_in_windows(windows, ["member_id"], events, value_sets)


# ---------------------------------------------------------------- risk model
def design_matrix(stays: pl.DataFrame, model: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Columns: const, age band indicators (first band is the reference), male, comorbidity count
    (capped). Columns without variation are dropped, so the fit stays identifiable."""
    bands = list(model.get("age_bands", []))
    cols: dict[str, np.ndarray] = {"const": np.ones(stays.height)}
    age = stays["age"].to_numpy()
    for lo, hi in zip(bands[1:], [*bands[2:], None]):
        name = f"age_{lo}_{hi - 1}" if hi is not None else f"age_{lo}_plus"
        cols[name] = ((age >= lo) & ((age < hi) if hi is not None else True)).astype(float)
    if model.get("sex", True):
        cols["male"] = (stays["sex"] == "M").to_numpy().astype(float)
    if model.get("comorbidities"):
        cap = int(model.get("comorbidity_cap", 4))
        cols["comorbidities"] = np.minimum(stays["comorbidities"].to_numpy(), cap).astype(float)
    names = [n for n, v in cols.items() if n == "const" or np.ptp(v) > 0] if stays.height else ["const"]
    return np.column_stack([cols[n] for n in names]) if stays.height else np.empty((0, len(names))), names


def c_statistic(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney form, ties counted half); None without both outcomes."""
    from scipy.stats import rankdata

    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def fit_expected(stays: pl.DataFrame, model: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """Predicted readmission probability per stay, and a summary of the model (aggregates only)."""
    y = stays["readmitted"].to_numpy().astype(float)
    n, events = len(y), float(y.sum())
    summary: dict[str, Any] = {"stays": n, "readmissions": int(events)}
    if n == 0:
        return np.empty(0), {**summary, "method": "none", "reason": "no index stays"}
    x, names = design_matrix(stays, model)
    min_events = int(model.get("min_events", 10))
    fallback = np.full(n, events / n)
    if min(events, n - events) < min_events or len(names) == 1:
        why = f"fewer than {min_events} readmissions or non-readmissions" if len(names) > 1 else "no covariate varies"
        return fallback, {**summary, "method": "intercept_only", "reason": why}
    try:
        fit, p = _binomial_fit(y, x, x)
    except Exception as exc:  # separation, singular design, non-convergence: fall back, say why
        return fallback, {**summary, "method": "intercept_only", "reason": f"logistic fit failed ({type(exc).__name__})"}
    return p, _logistic_summary(summary, names, fit, c_statistic(y, p), float(p.sum()))


def _binomial_fit(y: np.ndarray, x: np.ndarray, x_predict: np.ndarray, freq_weights: np.ndarray | None = None):
    """statsmodels' binomial GLM of ``y`` on ``x`` (rows weighted by ``freq_weights`` when given) and
    its predictions at ``x_predict``; raises when statsmodels warns of non-convergence or separation,
    or the predictions are not finite."""
    import statsmodels.api as sm

    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = sm.GLM(y, x, family=sm.families.Binomial(), freq_weights=freq_weights).fit()
    bad = [w for w in caught if issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning, RuntimeWarning))]
    if bad:
        raise bad[0].category(str(bad[0].message))
    p = np.asarray(fit.predict(x_predict), dtype=float)
    if not np.all(np.isfinite(p)) or not fit.converged:
        raise ConvergenceWarning("did not converge")
    return fit, p


def _logistic_summary(summary: dict[str, Any], names: list[str], fit: Any, c: float | None, expected: float) -> dict[str, Any]:
    """The model summary of a fitted logistic risk model (aggregates only)."""
    params, se = np.asarray(fit.params), np.asarray(fit.bse)
    return {
        **summary,
        "method": "logistic",
        "covariates": names[1:],
        "coefficients": {nm: round(float(b), 6) for nm, b in zip(names, params)},
        "std_errors": {nm: round(float(s), 6) for nm, s in zip(names, se)},
        "c_statistic": None if c is None else round(c, 4),
        "expected": round(float(expected), 6),
    }


def c_statistic_weighted(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> float | None:
    """:func:`c_statistic` of rows given with a count: ``w[i]`` rows of prediction ``p[i]`` and outcome
    ``y[i]`` (0/1). The same Mann-Whitney figure, ties (equal predictions) counted half."""
    pos_w, neg_w = np.where(y == 1, w, 0.0), np.where(y == 1, 0.0, w)
    pos, neg = float(pos_w.sum()), float(neg_w.sum())
    if pos == 0 or neg == 0:
        return None
    values, group = np.unique(p, return_inverse=True)
    pos_g, neg_g = np.bincount(group, pos_w, len(values)), np.bincount(group, neg_w, len(values))
    below = np.concatenate([[0.0], np.cumsum(neg_g)[:-1]])   # non-events with a lower prediction
    return float((pos_g * (below + neg_g / 2)).sum() / (pos * neg))


def fit_expected_cells(cells: pl.DataFrame, model: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`fit_expected` on rows given as covariate patterns: ``cells`` has ``age, sex,
    comorbidities`` (what :func:`design_matrix` reads), ``n`` (rows with that pattern) and ``events``
    (those with the outcome). Returns the predicted probability per cell and the same summary.

    The logistic model is fitted on the distinct (pattern, outcome) rows with frequency weights: the
    likelihood, the IRLS steps, the deviance that decides convergence and the perfect-prediction
    check are those of the per-row fit, so the coefficients, standard errors and predictions equal
    :func:`fit_expected`'s up to floating-point summation order (last bits), at the cost of a few
    dozen rows instead of one per member or stay. The fallbacks (intercept only, with the reason)
    are :func:`fit_expected`'s."""
    n_cell = cells["n"].to_numpy().astype(float)
    e_cell = cells["events"].to_numpy().astype(float)
    n, events = float(n_cell.sum()), float(e_cell.sum())
    summary: dict[str, Any] = {"stays": int(n), "readmissions": int(events)}
    if n == 0:
        return np.empty(cells.height), {**summary, "method": "none", "reason": "no index stays"}
    x_cell, names = design_matrix(cells, model)
    min_events = int(model.get("min_events", 10))
    fallback = np.full(cells.height, events / n)
    if min(events, n - events) < min_events or len(names) == 1:
        why = f"fewer than {min_events} readmissions or non-readmissions" if len(names) > 1 else "no covariate varies"
        return fallback, {**summary, "method": "intercept_only", "reason": why}
    # one row per pattern and outcome present, weighted by how many rows it stands for
    x = np.concatenate([x_cell, x_cell])
    y = np.concatenate([np.ones(cells.height), np.zeros(cells.height)])
    w = np.concatenate([e_cell, n_cell - e_cell])
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    try:
        fit, p = _binomial_fit(y, x, x_cell, freq_weights=w)
    except Exception as exc:  # separation, singular design, non-convergence: fall back, say why
        return fallback, {**summary, "method": "intercept_only", "reason": f"logistic fit failed ({type(exc).__name__})"}
    return p, _logistic_summary(summary, names, fit, c_statistic_weighted(np.concatenate([p, p])[keep], y, w), float((p * n_cell).sum()))


def observed_expected(counts: pl.DataFrame, *, alpha: float = 0.05) -> pl.DataFrame:
    """O/E per row of (stratified) counts that carry ``expected``: ``oe_ratio, oe_ci_lower,
    oe_ci_upper`` = numerator / expected with the exact (O < 10) or Byar Poisson limits of the
    observed count divided by E (``stats.rates.standardised_ratio``, the SMR interval). Null where
    expected is missing or zero (or the row is suppressed)."""
    from equity_pipeline.stats.rates import standardised_ratio

    ratio, lower, upper = [], [], []
    for o, e in zip(counts["numerator"].to_list(), counts["expected"].to_list()):
        if o is None or e is None or not e > 0:
            ratio.append(None), lower.append(None), upper.append(None)
            continue
        r, lo, hi, _ = standardised_ratio(float(o), float(e), alpha=alpha)
        ratio.append(r), lower.append(lo), upper.append(hi)
    return counts.with_columns(
        oe_ratio=pl.Series(ratio, dtype=pl.Float64), oe_ci_lower=pl.Series(lower, dtype=pl.Float64),
        oe_ci_upper=pl.Series(upper, dtype=pl.Float64),
    )


# ---------------------------------------------------------------- evaluation
def evaluate_readmission(
    spec: MeasureSpec,
    period: MeasurementPeriod,
    members: pl.LazyFrame,
    enrollment: pl.LazyFrame,
    claims: pl.LazyFrame,
    events: pl.LazyFrame,
    risk_stays: list | None = None,
    stays: pl.LazyFrame | None = None,
) -> tuple[pl.DataFrame, MeasureCounts]:
    """Member-level results of a readmission spec and the reconciliation counts. ``risk_stays``, when
    a list, receives the risk model's input per denominator stay (member_id, age, sex, comorbidities,
    readmitted): what a partitioned run's roll-up refits the model from (``equity_pipeline.partitioning``).
    ``stays``: ``inpatient_stays(claims)`` when already computed (``utilization.shared_frames``)."""
    people = members.select("member_id", "sex", "birth_date", "death_date")
    members_in = people.select(pl.len()).collect().item()
    stays = (inpatient_stays(claims) if stays is None else stays).collect().lazy()
    cfg = spec.index_stays
    lo, hi = bound(cfg.get("discharged_from", "period_begin"), period), bound(cfg.get("discharged_to", "period_end"), period)
    index = (
        stays.filter(pl.col("discharge_date").is_between(lo, hi))
        .join(people, on="member_id", how="inner")
        .with_columns(pl.col("discharge_date").alias(DISCHARGE), pl.col("admit_date").alias(ADMIT))
    )
    at = bound(spec.age_at, period)
    index = index.with_columns(age=_age_on_event(pl.col("birth_date"), at).cast(pl.Int32)).collect()

    not_eligible: dict[str, int] = {"no_index_stay": members_in - index["member_id"].n_unique()}
    stay_counts: dict[str, Any] = {"index_stays": index.height}

    def narrow(frame: pl.DataFrame, reason: str, keep: pl.DataFrame | pl.Expr) -> pl.DataFrame:
        kept = frame.join(keep, on=STAY_KEY, how="semi") if isinstance(keep, pl.DataFrame) else frame.filter(keep)
        not_eligible[reason] = not_eligible.get(reason, 0) + frame["member_id"].n_unique() - kept["member_id"].n_unique()
        stay_counts[f"stays_{reason}"] = frame.height - kept.height
        return kept

    if spec.age_min is not None or spec.age_max is not None:
        index = narrow(index, "not_age", _in_band(spec.age_min, spec.age_max, "years").fill_null(False))
    for ce in spec.enrollment_rules:
        windows = index.lazy().select(*STAY_KEY, start=bound(ce["from"], period), end=bound(ce["to"], period),
                                      anchor=bound(ce.get("anchor", ce["to"]), period))
        ok = enrolled_in_windows(enrollment, windows, key=STAY_KEY, allowed_gaps=int(ce.get("allowed_gaps", 0)),
                                 max_gap_days=int(ce.get("max_gap_days", 0))).collect()
        index = narrow(index, "not_continuously_enrolled", ok)

    # exclusions per index stay: first matching reason in spec order
    dates = people.select("member_id", "birth_date")
    reasons = pl.lit(None, dtype=pl.String)
    flagged = index.lazy()
    for order, excl in reversed(list(enumerate(spec.exclusions))):
        cond = pl.lit(False)
        if excl.discharge_status:
            cond = cond | pl.col("discharge_status").is_in(list(excl.discharge_status)).fill_null(False)
        if excl.deceased_by is not None:
            cond = cond | (pl.col("death_date") <= bound(excl.deceased_by, period)).fill_null(False)
        if excl.same_day_stay:
            cond = cond | (pl.col("admit_date") == pl.col("discharge_date"))
        if excl.principal_diagnosis:
            hit = _principal_in(index.lazy(), excl.principal_diagnosis).with_columns(**{f"_x{order}": pl.lit(True)})
            flagged = flagged.join(hit, on=STAY_KEY, how="left")
            cond = cond | pl.col(f"_x{order}").fill_null(False)
        if excl.events is not None:
            hit = matching_members(events, excl.events, period, dates).with_columns(**{f"_e{order}": pl.lit(True)})
            flagged = flagged.join(hit, on="member_id", how="left")
            cond = cond | pl.col(f"_e{order}").fill_null(False)
        reasons = pl.when(cond).then(pl.lit(excl.reason)).otherwise(reasons)
    index = flagged.with_columns(exclusion_reason=reasons).select(*index.columns, "exclusion_reason").collect()
    stay_counts["stays_excluded"] = {r: int(n) for r, n in index.filter(pl.col("exclusion_reason").is_not_null())
                                     .group_by("exclusion_reason").len().sort("exclusion_reason").iter_rows()}

    # numerator and expected on the denominator stays
    den = index.filter(pl.col("exclusion_reason").is_null())
    readmit = readmissions(den.lazy(), stays, events, spec.counting.get("readmission", {})).collect()
    model = spec.risk_model
    comorb = comorbidity_counts(den.lazy(), events, list(model.get("comorbidities", [])), int(model.get("lookback_days", 365))).collect()
    den = den.join(readmit, on=STAY_KEY, how="left").join(comorb, on=STAY_KEY, how="left").with_columns(
        readmitted=pl.col("readmit_date").is_not_null()
    ).sort(STAY_KEY)
    if risk_stays is not None:
        risk_stays.append(den.select("member_id", "age", "sex", "comorbidities", "readmitted"))
    expected, model_summary = fit_expected(den, model)
    den = den.with_columns(expected=pl.Series(expected, dtype=pl.Float64))
    stay_counts.update(denominator_stays=den.height, readmitted_stays=int(den["readmitted"].sum()))

    # one row per member
    in_den = den.sort("member_id", DISCHARGE).group_by("member_id", maintain_order=True).agg(
        on=pl.col(DISCHARGE).first(), age=pl.col("age").first(),
        denominator_value=pl.len().cast(pl.Float64),
        numerator_value=pl.col("readmitted").sum().cast(pl.Float64),
        expected_value=pl.col("expected").sum(),
        evidence_date=pl.col("readmit_date").max(),
    ).with_columns(exclusion_reason=pl.lit(None, dtype=pl.String))
    out = index.filter(~pl.col("member_id").is_in(in_den["member_id"].implode())).sort("member_id", DISCHARGE).group_by(
        "member_id", maintain_order=True
    ).agg(on=pl.col(DISCHARGE).first(), age=pl.col("age").first(), exclusion_reason=pl.col("exclusion_reason").first()).with_columns(
        denominator_value=pl.lit(0.0), numerator_value=pl.lit(0.0), expected_value=pl.lit(None, dtype=pl.Float64),
        evidence_date=pl.lit(None, dtype=pl.Date),
    )
    rows = pl.concat([in_den, out.select(in_den.columns)])
    payers = payer_on_dates(enrollment, rows.lazy().select("member_id", "on")).collect()
    result = (
        rows.join(payers, on="member_id", how="left")
        .with_columns(is_excluded=pl.col("exclusion_reason").is_not_null())
        .with_columns(in_denominator=~pl.col("is_excluded"),
                      in_numerator=pl.when(pl.col("is_excluded")).then(None).otherwise(pl.col("numerator_value") > 0))
        .select(
            "member_id", pl.lit(spec.measure_id).alias("measure_id"), pl.lit(spec.version).alias("measure_version"),
            pl.lit(ALL_ROWS).alias("submeasure"), pl.lit(period.label).alias("period"),
            "age", "payer", "line_of_business", "dual_status", "is_excluded", "exclusion_reason", "in_denominator", "in_numerator",
            pl.when(pl.col("in_numerator")).then(pl.col("evidence_date")).alias("evidence_date"),
            pl.when(pl.col("in_numerator")).then(pl.lit("claims")).alias("evidence_source"),
            "numerator_value", "denominator_value", "expected_value",
        )
        .sort("member_id")
    )
    excluded = result.filter(pl.col("is_excluded")).group_by("exclusion_reason").len().sort("exclusion_reason")
    counts = MeasureCounts(
        members_in=members_in,
        not_eligible=not_eligible,
        excluded={r: int(n) for r, n in excluded.iter_rows()},
        denominator=int(result["in_denominator"].sum()),
        numerator=int(result["in_numerator"].fill_null(False).sum()),
        details={**stay_counts, "risk_model": model_summary},
    )
    return result, counts
