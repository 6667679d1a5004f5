"""Age/sex-standardised rates and observed/expected ratios, always beside the crude rate and gap.

Crude rates of groups that differ in age and sex mix part of a disparity with demography; the two
classical adjustments are published side by side with the crude figures (never instead of them:
adjusting can hide a gap the program is meant to see):

**Direct standardisation** (``standardized_rate``): the rate the group would have with the age/sex
structure of a *standard population*, ``sum_k w_k O_k / n_k`` over age-band (x sex) cells ``k``,
with Dobson (default, as PHE) or Fay-Feuer gamma limits: :func:`equity_pipeline.stats.standardization.direct_standardised_rate`
(tested against the PHE workbook). Standards (config ``standardization.standard``):

* ``run`` (default): the run's own population-level denominator of the same measure and sub-measure,
  by age band x sex (Female, Male). The overall row's standardised rate then equals its crude rate
  (over Female and Male members); members with sex X or U are left out of the standardised rate
  (never out of the crude one): too few to fill a cell in every group.
* ``us2000``: the US 2000 standard population (NCHS, "2000 U.S. standard million", 19 age groups;
  Klein RJ, Schoenborn CA, Healthy People 2010 Statistical Notes 20, 2001), by age only.
* ``esp2013``: the 2013 European Standard Population (Eurostat), by age only.

For ``us2000``/``esp2013`` the configured bands are cut to the ages the measure actually has (BCS
50-74: the band 45-54 counts as 50-54) and a standard age group split by a band edge is divided in
proportion to its single years (uniform within the group; an approximation, documented).

A group without members in a cell that carries standard weight has no standardised rate
(``standardized_note = empty_cell``: no rate can be borrowed for it); Dobson limits are not reported
below 10 events (``fewer_than_10_events``, the PHE rule).

**Indirect standardisation / risk adjustment** (``oe_ratio``): observed / expected, ``E = sum_i p_i``
with ``p_i`` from a model fitted on the whole run (population unit) of the same measure and
sub-measure, on age band, male sex and clinical risk: the member's comorbidity count (distinct
comorbidity groups of the PCR risk model diagnosed in the year before the period end, capped,
linear; 0 without diagnoses; :func:`equity_pipeline.measures.readmission.member_comorbidities`):

* proportions: logistic regression fitted by :func:`equity_pipeline.measures.readmission.fit_expected_cells`
  (the PCR risk model's design and fallbacks, fitted on the distinct covariate patterns with frequency
  weights: the per-member-row fit to the last bits; intercept-only fallback with fewer than 10 events
  or non-events);
* readmissions (PCR): the measure's own risk model (age band, sex, comorbidities) already in the results;
* event rates: Poisson regression with log member-months as offset.

Covariates that do not vary are dropped; when the model with comorbidity cannot be fitted, the
age/sex model is used. ``risk_model`` names the covariates actually used (and a fallback).

In-sample, the overall O/E of the population is 1, so a group's O/E compares it with the run's
age/sex-adjusted average. Interval: exact (O < 10) or Byar Poisson limits of O over E
(:func:`equity_pipeline.stats.rates.standardised_ratio`). Cost measures have neither.

**Gaps**: for each stratum the crude and standardised difference and ratio against the reference
stratum of ``public/disparities`` (the same reference the crude disparity uses).

**Suppression**: a row is suppressed exactly when the same row of ``public/rates`` is; then every
value is null, and ``suppression_reason`` is the one public reason (``suppression.PUBLIC_REASON``),
never whether the cell is small or complementary. The table publishes no counts.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import polars as pl

from equity_pipeline.attributes import age_band_labels
from equity_pipeline.stats._common import block_bins, block_sums, key_codes
from equity_pipeline.stats.rates import standardised_ratio
from equity_pipeline.stats.standardization import ESP2013, direct_standardised_rate
from equity_pipeline.stratify import own_strings
from equity_pipeline.suppression import publishable_reasons

#: US 2000 standard population per million, (lower age, upper age inclusive or None for open, weight)
#: NCHS Healthy People 2010 Statistical Notes 20 (2001), Table 2; SEER "2000 U.S. Std Million (19 age groups)"
US2000: tuple[tuple[int, int | None, int], ...] = (
    (0, 0, 13_818), (1, 4, 55_317), (5, 9, 72_533), (10, 14, 73_032), (15, 19, 72_169), (20, 24, 66_478),
    (25, 29, 64_529), (30, 34, 71_044), (35, 39, 80_762), (40, 44, 81_851), (45, 49, 72_118), (50, 54, 62_716),
    (55, 59, 48_454), (60, 64, 38_793), (65, 69, 34_264), (70, 74, 31_773), (75, 79, 26_999), (80, 84, 17_842),
    (85, None, 15_508),
)
#: ESP 2013 as (lower, upper, weight): 0-4 ... 85-89, 90+
ESP2013_GROUPS: tuple[tuple[int, int | None, int], ...] = tuple(
    (5 * i, 5 * i + 4 if i < 18 else None, w) for i, w in enumerate(ESP2013))
STANDARDS: dict[str, tuple[tuple[int, int | None, int], ...] | None] = {"run": None, "us2000": US2000, "esp2013": ESP2013_GROUPS}
DEFAULT_STANDARD = "run"
DEFAULT_AGE_BANDS: tuple[int, ...] = (0, 18, 25, 35, 45, 55, 65, 75, 85)
DEFAULT_STRATIFIERS: tuple[str, ...] = ("race_ethnicity",)
SEXES = ("Female", "Male")
DEFAULT_COMORBIDITY_CAP = 4
#: ``risk_model`` labels (the covariates of the O/E model actually used)
AGE_SEX_COMORBIDITY, AGE_SEX, INTERCEPT_ONLY = "age band, sex, comorbidity count", "age band, sex", "intercept only"
KINDS = ("proportion", "readmission", "event_rate")
_KEY = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum"]
STANDARDIZED_COLUMNS = [
    "measure_id", "measure_title", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum",
    "rate_type", "rate_per", "direction", "crude_rate", "standardized_rate", "standardized_ci_lower", "standardized_ci_upper",
    "standard_population", "standardization_method", "standardized_note", "oe_ratio", "oe_ci_lower", "oe_ci_upper", "oe_model",
    "risk_model", "reference_stratum", "crude_difference", "standardized_difference", "crude_ratio", "standardized_ratio", "suppressed",
    "suppression_reason",
]


def band_of(age: pl.Expr, bands: tuple[int, ...]) -> pl.Expr:
    """Label of the age band (lower bounds ``bands``) containing ``age``; null when age is null or below."""
    expr = pl.lit(None, dtype=pl.String)
    for lo, label in zip(bands, age_band_labels(bands)):
        expr = pl.when(age >= lo).then(pl.lit(label)).otherwise(expr)
    return expr


def standard_weights(standard: str, bands: tuple[int, ...], min_age: int, max_age: int) -> dict[str, float]:
    """Standard population per band (label -> weight, not normalised) over ages ``min_age..max_age``.

    Standard groups cut by a band edge or by the age range are split in proportion to their single
    years; an open last group (85+, 90+) cannot be split: a band edge inside it (within the ages
    present) is an error."""
    groups = STANDARDS[standard]
    if groups is None:
        raise ValueError("the 'run' standard has no fixed weights")
    labels = age_band_labels(bands)
    uppers = [b - 1 for b in bands[1:]] + [None]
    out: dict[str, float] = {}
    for g_lo, g_hi, w in groups:
        if g_hi is None:  # open group: all of it to the one band holding its (present) ages
            start = max(g_lo, min_age)
            if start > max_age:
                continue
            if any(start < b <= max_age for b in bands):
                raise ValueError(f"an age band edge cuts the standard's open group {g_lo}+; use no band edge above {g_lo}")
            label = labels[max(i for i, b in enumerate(bands) if b <= start)]
            out[label] = out.get(label, 0.0) + w
            continue
        for label, lo, hi in zip(labels, bands, uppers):
            a, b = max(lo, g_lo, min_age), min(g_hi, max_age, g_hi if hi is None else hi)
            if b >= a:
                out[label] = out.get(label, 0.0) + w * (b - a + 1) / (g_hi - g_lo + 1)
    return {label: out[label] for label in labels if out.get(label, 0.0) > 0}


#: the member-level result columns the standardised rates read
_RESULT_COLUMNS = ("member_id", "member_key", "measure_id", "measure_version", "submeasure", "period", "age", "numerator_value",
                   "denominator_value", "expected_value")


def attribute_columns(stratifiers: tuple[str, ...]) -> list[str]:
    """The member-attribute columns the standardised rates read: member_id, state, sex and the stratifiers'."""
    from equity_pipeline.stratify import INTERSECTION_SEPARATOR, STRATIFIERS

    used = sorted({STRATIFIERS[part] for s in (*stratifiers, "sex") for part in s.split(INTERSECTION_SEPARATOR)})
    return ["member_id", "state", *used]


def _denominators(results: pl.DataFrame, attributes: pl.DataFrame, stratifiers: tuple[str, ...], bands: tuple[int, ...],
                  index=None) -> pl.DataFrame:
    """Denominator rows with the attributes read (state, sex, the stratifiers'; the attributes win over
    result columns of the same name, missing ones are Unknown), sub-measure rows also rolled up into
    ``all`` (as the stratified counts), in a fixed order (member within measure and sub-measure: float
    sums are then the same every run), with the age band, sex and strata columns. Only the columns
    read travel (memory: one row per member x measure). ``index``: ``stratify.MemberIndex`` of
    ``attributes`` (members found by position instead of a join per measure), or None."""
    from equity_pipeline.standards.race_ethnicity import UNKNOWN
    from equity_pipeline.stratify import MEMBER_KEY, MemberIndex, rolled_up_in_order, stratum_expr

    wanted = attribute_columns(stratifiers)
    used = wanted[2:]
    attributes = attributes.select(c for c in attributes.columns if c in wanted or c == "_comorbidities")
    rows = (results.filter(pl.col("in_denominator"))
            .select(c for c in _RESULT_COLUMNS if c in results.columns and (c == "member_id" or c not in attributes.columns)))
    if index is None:
        base = rows.drop(MEMBER_KEY, strict=False).join(attributes, on="member_id", how="left")
    else:
        index = index if index.frame.columns == attributes.columns else MemberIndex(index.frame.select(attributes.columns))
        base = index.left_join(rows, position="_position")
    base = base.with_columns(pl.col(c).fill_null(UNKNOWN) for c in ("state", *used))
    base = rolled_up_in_order(base, "_position" if index is not None else None)
    if index is not None:
        base = base.drop("_position")
    return base.with_columns(_band=band_of(pl.col("age"), bands), _sex=pl.col("sex"),
                             **{f"_s_{s}": stratum_expr(s) for s in stratifiers})


def _units(frame: pl.DataFrame) -> list[tuple[pl.Expr, pl.Expr]]:
    return [(pl.lit("population"), pl.lit("all")), (pl.lit("state"), pl.col("state"))]


def _by_stratum(frame: pl.DataFrame, stratifiers: tuple[str, ...], aggs: list[pl.Expr], extra: list[str]) -> pl.DataFrame:
    """Aggregate member rows per measure x sub-measure x unit x stratifier (and ``overall``) x stratum (+ extra keys).

    Key columns with one value over the frame (one measure: id, version, period) are put back after
    the group-bys instead of being hashed per row: the same groups in the same order, the same sums."""
    keys = ["measure_id", "measure_version", "submeasure", "period"]
    const = {c: frame[c][0] for c in keys if frame.height and frame[c].null_count() == 0 and bool((frame[c] == frame[c][0]).all())}
    grouped = [c for c in keys if c not in const]
    parts = []
    for unit_level, unit_id in _units(frame):
        for s in ("overall", *stratifiers):
            stratum = pl.lit("all") if s == "overall" else pl.col(f"_s_{s}")
            part = (frame.group_by(*grouped, unit_level.alias("unit_level"), unit_id.alias("unit_id"), stratum.alias("stratum"), *extra,
                                   maintain_order=True).agg(aggs).with_columns(stratifier=pl.lit(s)))
            part = part.with_columns(pl.lit(v, dtype=frame.schema[c]).alias(c) for c, v in const.items())
            parts.append(part.select(*keys, *[c for c in part.columns if c not in keys]))
    return pl.concat(parts)


def _codes(column: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Int64 code of each value of a string ``column`` (its position among the sorted distinct values,
    null last) and those values."""
    labels = column.unique().sort(nulls_last=True)
    known = labels.drop_nulls()
    code = column.cast(pl.Enum(known)).to_physical().cast(pl.Int64)
    return code.fill_null(known.len()).to_numpy(), labels


def _stratum_sums(frame: pl.DataFrame, stratifiers: tuple[str, ...], extra: list[str]) -> pl.DataFrame | None:
    """:func:`_by_stratum` of ``count`` (numerator_value), ``population`` (denominator_value), ``_e``
    (expected values) and ``_has_e``, summed by integer cell codes instead of a hash group-by on the
    label columns per unit and stratifier: each row's cell (key, state or population, stratum,
    ``extra``) packed in one integer, its sums by ``np.bincount`` in row order within blocks. The
    rows and their order are the group-bys' (order of first appearance); whole-number
    counts and populations are the same bits (exact sums), expected values (and fractional counts)
    agree to the last bits (the group-by added in an order of its own). None when a column does not
    suit the codes (then :func:`_by_stratum`)."""
    keys = ["measure_id", "measure_version", "submeasure", "period"]
    if frame.height == 0 or any(frame.schema[c] != pl.Float64 for c in ("numerator_value", "denominator_value", "_expected")):
        return None
    if any(frame.schema[c] != pl.String for c in (*keys, "state", *extra, *[f"_s_{s}" for s in stratifiers])):
        return None
    if any(frame.get_column(k).null_count() for k in keys):
        return None
    key, table = key_codes(frame, keys)
    state, states = _codes(frame.get_column("state"))
    parts = [_codes(frame.get_column(c)) for c in extra]
    values = [frame.get_column(c).fill_null(0.0).to_numpy() for c in ("numerator_value", "denominator_value", "_expected")]
    has_e = frame.get_column("_expected").is_not_null().to_numpy().astype(np.float64)
    n_keys, n_states = table.height, states.len()
    extra_dims = [labels.len() for _, labels in parts]
    groupings = {}   # stratifier -> (strata labels, fine cells in order of first appearance, their codes' parts, sums)
    # one pass over the member rows per stratifier (overall: the first stratifier's cells added up):
    # each row's fine cell (key, state, stratum, extra), its sums, and the cells in order of first appearance
    for s in (stratifiers or ("overall",)):
        stratum, strata = (np.zeros(frame.height, dtype=np.int64), pl.Series(["all"])) if s == "overall" else _codes(frame.get_column(f"_s_{s}"))
        dims = [n_keys, n_states, strata.len(), *extra_dims]
        size = int(np.prod(dims))
        if size > 20_000_000:
            return None
        code = key
        for c, width in zip([state, stratum, *[p for p, _ in parts]], dims[1:]):
            code = code * width + c
        order = pl.Series(code).unique(maintain_order=True).to_numpy()
        bins = block_bins(code, size)
        sums = np.column_stack([block_sums(bins, v, size)[order] for v in (*values, has_e)])
        groupings[s] = (strata, np.array(np.unravel_index(order, dims)), sums)
    out = []
    for unit_level in ("population", "state"):
        for s in ("overall", *stratifiers):
            strata, index, sums = groupings[s if s in groupings else stratifiers[0]]
            # the grouping's cell of each fine cell: without the state (population), without the stratum (overall)
            kept = index.copy()
            if unit_level == "population":
                kept[1] = 0
            if s == "overall":
                kept[2] = 0
            dims = [n_keys, n_states, strata.len(), *extra_dims]
            cell = np.ravel_multi_index(tuple(kept), dims)
            # fine cells are in order of first appearance: so are the grouping's cells at their first occurrence
            first = pl.Series(cell).unique(maintain_order=True).to_numpy()
            by_value = np.argsort(first)
            target = by_value[np.searchsorted(first[by_value], cell)]   # each fine cell's grouping cell (its place in ``first``)
            grouped = np.column_stack([np.bincount(target, weights=sums[:, j], minlength=first.size) for j in range(sums.shape[1])])
            index_g = np.array(np.unravel_index(first, dims))
            cells = table[index_g[0]].with_columns(
                unit_level=pl.lit(unit_level),
                unit_id=states.gather(index_g[1]) if unit_level == "state" else pl.lit("all"),
                stratum=strata.gather(index_g[2]) if s != "overall" else pl.lit("all"),
                **{c: labels.gather(index_g[3 + i]) for i, (c, (_, labels)) in enumerate(zip(extra, parts))},
                count=pl.Series(grouped[:, 0]), population=pl.Series(grouped[:, 1]), _e=pl.Series(grouped[:, 2]),
                _has_e=pl.Series(grouped[:, 3] > 0), stratifier=pl.lit(s))
            out.append(cells)
    return pl.concat(out)


# ---------------------------------------------------------------- expected counts (indirect)
def _poisson_expected(cells: pl.DataFrame, bands: tuple[int, ...], comorbidity: bool = False) -> tuple[dict[tuple, float], dict[str, Any]]:
    """Fitted event rate per (band, male, comorbidity count) cell from a Poisson GLM with log(exposure)
    offset; the count (column ``_com``, already capped) enters linearly when ``comorbidity``."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    labels = sorted(cells["_band"].unique().to_list(), key=lambda b: age_band_labels(bands).index(b))
    x_cols = {f"age_{b}": (cells["_band"] == b).to_numpy().astype(float) for b in labels[1:]}
    x_cols["male"] = cells["_male"].to_numpy().astype(float)
    if comorbidity:
        x_cols["comorbidities"] = cells["_com"].to_numpy().astype(float)
    names = [n for n, v in x_cols.items() if np.ptp(v) > 0]
    x = np.column_stack([np.ones(cells.height), *[x_cols[n] for n in names]])
    y, exposure = cells["events"].to_numpy(), cells["exposure"].to_numpy()
    keys = list(zip(cells["_band"], cells["_male"], cells["_com"]))
    fallback = {k: e / n if n > 0 else 0.0 for k, e, n in zip(keys, y, exposure)}
    if y.sum() < 10 or len(names) == 0:
        total = float(y.sum() / exposure.sum()) if exposure.sum() > 0 else 0.0
        return {k: total for k in fallback}, {"method": "intercept_only", "reason": "fewer than 10 events or no covariate varies"}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = sm.GLM(y, x, family=sm.families.Poisson(), offset=np.log(exposure)).fit()
        bad = [w for w in caught if issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning, RuntimeWarning))]
        if bad or not fit.converged:
            raise RuntimeError("fit did not converge")
        rate = np.exp(x @ np.asarray(fit.params))
    except Exception as exc:  # fall back to the run's own cell rates (classical indirect standardisation)
        return fallback, {"method": "cell_rates", "reason": f"poisson fit failed ({type(exc).__name__})"}
    return ({k: float(r) for k, r in zip(keys, rate)},
            {"method": "poisson", "covariates": names, "coefficients": {n: round(float(c), 6) for n, c in zip(["const", *names], fit.params)}})


def _risk_label(summary: dict[str, Any]) -> str:
    """``risk_model`` of a fitted model: the covariates it actually used."""
    if summary.get("method") not in ("logistic", "poisson"):
        return INTERCEPT_ONLY if summary.get("method") == "intercept_only" else str(summary.get("method"))
    covariates = summary.get("covariates", [])
    parts = [p for p, there in (("age band", any(c.startswith("age_") for c in covariates)), ("sex", "male" in covariates),
                                ("comorbidity count", "comorbidities" in covariates)) if there]
    return ", ".join(parts) if parts else INTERCEPT_ONLY


def _logistic(part: pl.DataFrame, bands: tuple[int, ...], comorbidity: bool, cap: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Fitted probability per member row of ``part`` (NaN without age) and the model summary: the
    logistic model of :func:`equity_pipeline.measures.readmission.fit_expected_cells` fitted on the
    distinct covariate patterns (age, sex, capped comorbidity count) with their counts, the same MLE
    as a fit on every member row; each row gets its pattern's probability by a join."""
    from equity_pipeline.measures.readmission import fit_expected_cells

    frame = part.select(age=pl.col("age"), _male=(pl.col("_sex") == "Male").fill_null(False),
                        _y=pl.col("numerator_value") > 0, comorbidities=pl.min_horizontal(pl.col("_comorbidities"), pl.lit(cap)))
    pattern = ["age", "_male", "comorbidities"]
    coded = _pattern_cells(frame, cap)
    if coded is not None:   # the same cells, counted by an integer code per pattern (no hash group-by and join)
        cells, code, at = coded
    else:
        cells = (frame.filter(pl.col("age").is_not_null()).group_by(pattern).agg(n=pl.len(), events=pl.col("_y").sum())
                 .sort(pattern))
    cells = cells.with_columns(sex=pl.when(pl.col("_male")).then(pl.lit("M")).otherwise(pl.lit("F")))
    # bands present only: the first present band is the model's reference (an absent first band
    # would leave the band indicators collinear with the constant)
    ages = cells["age"]
    present = [b for b, nxt in zip(bands, [*bands[1:], None]) if ((ages >= b) & ((ages < nxt) if nxt is not None else True)).any()]
    fitted, summary = fit_expected_cells(cells, {"age_bands": present, "sex": True, "comorbidities": comorbidity,
                                                 "comorbidity_cap": cap, "min_events": 10})
    if coded is not None:   # each row its pattern's probability (NaN without age)
        fitted = np.asarray(fitted, dtype=np.float64)
        return np.where(code >= 0, fitted[at[np.maximum(code, 0)]] if fitted.size else np.nan, np.nan), summary
    lookup = cells.select(*pattern, _p=pl.Series(fitted, dtype=pl.Float64))
    p = frame.select(pattern).join(lookup, on=pattern, how="left", maintain_order="left", nulls_equal=False)["_p"]
    return p.fill_null(np.nan).to_numpy(), summary


def _pattern_cells(frame: pl.DataFrame, cap: int) -> tuple[pl.DataFrame, np.ndarray, np.ndarray] | None:
    """The covariate patterns of ``frame`` (age, _male, comorbidities, _y) as :func:`_logistic`'s
    group-by makes them (rows with an age; n, events; sorted by pattern), counted by one integer code
    per pattern that sorts as the pattern does: ``((age - youngest) * 2 + male) * (cap + 1) +
    comorbidities``. Also the code of each row (-1 without age) and, per code, its cell's row. None
    when the code does not apply (comorbidities outside 0..cap, or ages too spread out)."""
    age = frame.get_column("age")
    youngest, oldest = age.min(), age.max()
    com = frame.get_column("comorbidities")
    if youngest is None or com.null_count() or com.min() < 0 or com.max() > cap or not isinstance(youngest, int):
        return None
    width = (int(oldest) - int(youngest) + 1) * 2 * (cap + 1)
    if width > 10_000_000:
        return None
    code = (((age.cast(pl.Int64) - youngest) * 2 + frame.get_column("_male").cast(pl.Int64)) * (cap + 1)
            + com.cast(pl.Int64)).fill_null(-1).to_numpy()
    has_age = code >= 0
    n = np.bincount(code[has_age], minlength=width)
    events = np.bincount(code[has_age], weights=frame.get_column("_y").fill_null(False).to_numpy()[has_age], minlength=width)
    present = np.flatnonzero(n)
    at = np.full(width, -1, dtype=np.int64)
    at[present] = np.arange(present.size)
    cells = pl.DataFrame({
        "age": pl.Series(present // (2 * (cap + 1)) + youngest).cast(age.dtype),
        "_male": pl.Series((present // (cap + 1)) % 2 == 1),
        "comorbidities": pl.Series(present % (cap + 1)).cast(com.dtype),
        "n": pl.Series(n[present]).cast(pl.UInt32), "events": pl.Series(events[present]).cast(pl.UInt32),
    })
    return cells, code, at


def expected_values(base: pl.DataFrame, kinds: dict[str, str], bands: tuple[int, ...],
                    comorbidity_cap: int | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``base`` with ``_expected`` per member row (null for cost measures) and the models used
    (per measure and sub-measure: method, coefficients, ``risk_model``; aggregates only).

    With ``comorbidity_cap`` (and a ``_comorbidities`` column, 0 for members without diagnoses) the
    logistic and Poisson models add the comorbidity count, capped, as a linear covariate; when that
    model cannot be fitted the age/sex model is used instead and ``risk_model`` says so."""
    use_com = comorbidity_cap is not None and "_comorbidities" in base.columns
    cap = int(comorbidity_cap) if comorbidity_cap is not None else DEFAULT_COMORBIDITY_CAP
    if "_comorbidities" not in base.columns:
        base = base.with_columns(_comorbidities=pl.lit(0, dtype=pl.Int64))
    base = base.with_columns(pl.col("_comorbidities").fill_null(0))
    out, models = [], {}
    for (measure, submeasure), part in base.group_by("measure_id", "submeasure", maintain_order=True):
        kind = kinds.get(measure)
        if kind == "proportion":
            p, fit = _logistic(part, bands, use_com, cap)
            fallback = None
            if use_com and fit.get("method") != "logistic":   # the comorbidity model cannot be fitted: age/sex
                p2, fit2 = _logistic(part, bands, False, cap)
                if fit2.get("method") == "logistic":
                    fallback, p, fit = fit.get("reason", "fit failed"), p2, fit2
            summary = {"method": fit.get("method"), **({"reason": fit["reason"]} if "reason" in fit else {}),
                       **({"coefficients": fit["coefficients"]} if "coefficients" in fit else {})}
            summary["risk_model"] = _risk_label(fit) + (f" (comorbidity model failed: {fallback})" if fallback else "")
            if use_com:
                summary["comorbidity_cap"] = cap
            part = part.with_columns(_expected=pl.Series(p).fill_nan(None))
        elif kind == "readmission" and "expected_value" in part.columns:
            part, summary = part.with_columns(_expected=pl.col("expected_value")), {"method": "measure_risk_model",
                                                                                     "risk_model": "measure risk model"}
        elif kind == "event_rate":
            part = part.with_columns(_male=pl.col("_sex") == "Male",
                                     _com=pl.min_horizontal(pl.col("_comorbidities"), pl.lit(cap)) if use_com else pl.lit(0, dtype=pl.Int64))
            usable = part.filter(pl.col("_band").is_not_null() & (pl.col("denominator_value") > 0))

            def cells_of(frame: pl.DataFrame) -> pl.DataFrame:
                return (frame.group_by("_band", "_male", "_com").agg(events=pl.col("numerator_value").sum(),
                                                                      exposure=pl.col("denominator_value").sum())
                        .sort("_band", "_male", "_com"))

            cells = cells_of(usable)
            if cells.height:
                rates, summary = _poisson_expected(cells, bands, use_com)
                fallback = None
                if use_com and summary["method"] != "poisson":
                    part, usable = part.with_columns(_com=pl.lit(0, dtype=pl.Int64)), usable.with_columns(_com=pl.lit(0, dtype=pl.Int64))
                    rates2, summary2 = _poisson_expected(cells_of(usable), bands, False)
                    if summary2["method"] == "poisson":
                        fallback, rates, summary = summary.get("reason", "fit failed"), rates2, summary2
                    else:
                        part = part.with_columns(_com=pl.min_horizontal(pl.col("_comorbidities"), pl.lit(cap)))
                summary["risk_model"] = (_risk_label(summary) if summary["method"] != "cell_rates" else "cell rates") + (
                    f" (comorbidity model failed: {fallback})" if fallback else "")
                if use_com:
                    summary["comorbidity_cap"] = cap
                lookup = pl.DataFrame({"_band": [k[0] for k in rates], "_male": [k[1] for k in rates], "_com": [k[2] for k in rates],
                                       "_r": list(rates.values())},
                                      schema={"_band": pl.String, "_male": pl.Boolean, "_com": pl.Int64, "_r": pl.Float64})
                part = (part.with_columns(pl.col("_com").cast(pl.Int64)).join(lookup, on=["_band", "_male", "_com"], how="left")
                        .with_columns(_expected=pl.col("_r") * pl.col("denominator_value")).drop("_r"))
            else:
                part, summary = part.with_columns(_expected=pl.lit(None, dtype=pl.Float64)), {"method": "none"}
            part = part.drop("_male", "_com")
        else:
            part, summary = part.with_columns(_expected=pl.lit(None, dtype=pl.Float64)), {"method": "none"}
        models[f"{measure}/{submeasure}"] = summary
        out.append(part.with_columns(pl.col("_expected").cast(pl.Float64)))
    if not out:  # nobody in any measure
        return base.with_columns(_expected=pl.lit(None, dtype=pl.Float64)), models
    return pl.concat(out, how="diagonal_relaxed"), models


# ---------------------------------------------------------------- the table
def standardized_rates(results: pl.DataFrame | pl.LazyFrame, attributes: pl.DataFrame, rates: pl.DataFrame, disparities: pl.DataFrame | None,
                       specs: dict, *, stratifiers: tuple[str, ...] = DEFAULT_STRATIFIERS, standard: str = DEFAULT_STANDARD,
                       age_bands: tuple[int, ...] = DEFAULT_AGE_BANDS, method: str = "dobson",
                       alpha: float = 0.05, comorbidities: pl.DataFrame | None = None,
                       comorbidity_cap: int = DEFAULT_COMORBIDITY_CAP) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``public/standardized_rates.parquet`` and the models used (for counts/standardization.json).

    ``results``: member-level measure results (restricted; a LazyFrame is read one measure at a
    time); ``attributes``: member attributes;
    ``rates``: the public rates (crude rates and suppression); ``disparities``: the public disparity
    table (reference strata), or None; ``comorbidities``: member_id, comorbidities (count of
    distinct comorbidity groups diagnosed in the year before the period end,
    :func:`equity_pipeline.measures.readmission.member_comorbidities`; members absent count 0), or
    None for the age/sex-only O/E models."""
    if standard not in STANDARDS:
        raise ValueError(f"standard {standard!r} must be one of {', '.join(STANDARDS)}")
    kinds = {m: s.kind for m, s in specs.items() if s.kind in KINDS}
    # one measure at a time (memory: the member rows of one measure with their strata; with a lazy
    # ``results`` only those rows are ever read): models, cells and weights are per measure and
    # sub-measure, and each cell sums the same rows in the same order
    lazy = results.lazy().filter(pl.col("measure_id").is_in(list(kinds)))
    ids = lazy.select(pl.col("measure_id").unique()).collect().get_column("measure_id")
    measures = sorted(ids.drop_nulls().to_list())
    if ids.null_count():
        measures = []   # rows without a measure id: all at once, as they are
    if comorbidities is not None:   # joined to the member rows with the attributes (one join per measure)
        attributes = attributes.select(c for c in attributes.columns if c in attribute_columns(stratifiers)).join(
            comorbidities.select("member_id", _comorbidities=pl.col("comorbidities").cast(pl.Int64)), on="member_id", how="full",
            coalesce=True)
    from equity_pipeline.stratify import MemberIndex

    # the attributes by member, found by position (sorted once here: the comorbidity join does not keep the order)
    index = MemberIndex.of(attributes.select(c for c in attributes.columns if c in attribute_columns(stratifiers) or c == "_comorbidities"))
    oe_parts, cell_parts, weights, models = [], [], {}, {}
    for measure in measures or [None]:
        rows = (lazy if measure is None else lazy.filter(pl.col("measure_id") == measure)).collect()
        base = _denominators(rows, attributes if index is None else index.frame, stratifiers, age_bands, index=index)
        del rows
        if comorbidities is not None:
            base = base.with_columns(pl.col("_comorbidities").fill_null(0))
        base, fitted = expected_values(base, kinds, age_bands, comorbidity_cap if comorbidities is not None else None)
        models.update(fitted)
        # one pass over the member rows per unit x stratifier: sums per stratum x age band (x sex for
        # the run's own standard), then O/E per stratum from those sums (all rows: bands and sexes
        # outside the DSR cells included) and the DSR cells (bands, and with the run standard Female
        # and Male; labelled after the group-by: no per-row label strings)
        parts = ["_band", "_sex"] if standard == "run" else ["_band"]
        sums = _stratum_sums(base, stratifiers, parts)
        if sums is None:
            sums = _by_stratum(base, stratifiers, [pl.col("numerator_value").sum().alias("count"), pl.col("denominator_value").sum().alias("population"),
                                                   pl.col("_expected").sum().alias("_e"), pl.col("_expected").is_not_null().any().alias("_has_e")], parts)
        oe_parts.append(own_strings(sums.group_by(_KEY, maintain_order=True).agg(
            _o=pl.col("count").sum(), _e=pl.col("_e").sum(), _has_e=pl.col("_has_e").any())))
        in_cells = pl.col("_band").is_not_null() & (pl.col("_sex").is_in(SEXES) if standard == "run" else pl.lit(True))
        cell = pl.concat_str(["_band", "_sex"], separator=" | ") if standard == "run" else pl.col("_band")
        cells = sums.filter(in_cells).with_columns(_cell=cell).drop(*parts, "_e", "_has_e")
        ages = None if standard == "run" else base.filter(in_cells).group_by("measure_id", "submeasure").agg(
            lo=pl.col("age").min(), hi=pl.col("age").max())
        weights.update(_weights(ages, cells, standard, age_bands))
        cell_parts.append(own_strings(cells))
        del base, sums
    oe, cells = pl.concat(oe_parts, how="diagonal_relaxed"), pl.concat(cell_parts, how="diagonal_relaxed")
    dsr = _dsr_rows(cells, weights, specs, method, alpha)
    table = _assemble(rates, dsr, oe, disparities, specs, stratifiers, standard, method, alpha, models)
    return table, {"standard": standard, "age_bands": list(age_bands), "method": method, "stratifiers": list(stratifiers), "models": models}


def _weights(ages: pl.DataFrame | None, cells: pl.DataFrame, standard: str, bands: tuple[int, ...]) -> dict[tuple[str, str], dict[str, float]]:
    """(measure, submeasure) -> {cell: standard weight}; ``ages``: measure_id, submeasure, lo, hi (the
    ages of the member rows in the cells; not read for the ``run`` standard)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    if standard == "run":
        pop = cells.filter((pl.col("unit_level") == "population") & (pl.col("stratifier") == "overall"))
        for (m, s), part in pop.group_by("measure_id", "submeasure"):
            out[(m, s)] = {c: float(p) for c, p in zip(part["_cell"], part["population"]) if p > 0}
        return out
    for m, s, lo, hi in ages.iter_rows():
        out[(m, s)] = standard_weights(standard, bands, int(lo), int(hi))
    return out


def _dsr_rows(cells: pl.DataFrame, weights: dict, specs: dict, method: str, alpha: float) -> pl.DataFrame:
    rows = []
    group_key = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum"]
    for key, part in cells.group_by(group_key, maintain_order=True):
        k = dict(zip(group_key, key))
        w = weights.get((k["measure_id"], k["submeasure"]), {})
        per = float(specs[k["measure_id"]].rate.get("per", 1))
        have = {c: (x, n) for c, x, n in zip(part["_cell"], part["count"], part["population"])}
        note, est, lo, hi = None, None, None, None
        if not w:
            note = "no_standard_weight"
        elif any(have.get(c, (0, 0))[1] <= 0 for c in w):
            note = "empty_cell"
        else:
            order = list(w)
            r = direct_standardised_rate([have[c][0] for c in order], [have[c][1] for c in order], [w[c] for c in order],
                                         per=per, alpha=alpha, method=method)
            if math.isnan(r.estimate):
                note = "fewer_than_10_events"
            else:
                est, lo, hi = r.estimate, r.ci_lower, r.ci_upper
        rows.append({**k, "standardized_rate": est, "standardized_ci_lower": lo, "standardized_ci_upper": hi, "standardized_note": note})
    schema = {**{c: pl.String for c in group_key}, "standardized_rate": pl.Float64, "standardized_ci_lower": pl.Float64,
              "standardized_ci_upper": pl.Float64, "standardized_note": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _assemble(rates: pl.DataFrame, dsr: pl.DataFrame, oe: pl.DataFrame, disparities: pl.DataFrame | None, specs: dict,
              stratifiers: tuple[str, ...], standard: str, method: str, alpha: float, fitted: dict[str, Any] | None = None) -> pl.DataFrame:
    kinds = {m: s.kind for m, s in specs.items()}
    keep = rates.filter(pl.col("stratifier").is_in(["overall", *stratifiers])
                        & pl.col("measure_id").replace_strict(kinds, default="").is_in(list(KINDS)))
    t = keep.join(dsr, on=_KEY, how="left").join(oe, on=_KEY, how="left")
    ratio, lower, upper = [], [], []
    for o, e, has in zip(t["_o"].to_list(), t["_e"].to_list(), t["_has_e"].to_list()):
        if not has or e is None or not e > 0 or o is None:
            ratio.append(None), lower.append(None), upper.append(None)
            continue
        r, lo, hi, _ = standardised_ratio(float(o), float(e), alpha=alpha)
        ratio.append(r), lower.append(lo), upper.append(hi)
    models = {"proportion": "logistic", "readmission": "measure risk model", "event_rate": "poisson (log member-months offset)"}
    labels = {k: v.get("risk_model") for k, v in (fitted or {}).items()}
    t = t.with_columns(
        oe_ratio=pl.Series(ratio, dtype=pl.Float64), oe_ci_lower=pl.Series(lower, dtype=pl.Float64), oe_ci_upper=pl.Series(upper, dtype=pl.Float64),
        oe_model=pl.col("measure_id").replace_strict({m: models.get(k) for m, k in kinds.items()}, default=None, return_dtype=pl.String),
        risk_model=pl.concat_str([pl.col("measure_id"), pl.col("submeasure")], separator="/").replace_strict(
            labels, default=None, return_dtype=pl.String),
        crude_rate=pl.col("rate"), standard_population=pl.lit(standard), standardization_method=pl.lit(method),
    )
    group = ["measure_id", "submeasure", "unit_level", "unit_id", "stratifier"]
    if disparities is not None and disparities.height:
        refs = disparities.filter(pl.col("reference_stratum").is_not_null()).group_by(group).agg(reference_stratum=pl.col("reference_stratum").first())
        t = t.join(refs, on=group, how="left")
    else:
        t = t.with_columns(reference_stratum=pl.lit(None, dtype=pl.String))
    ref_vals = t.select(*group, _ref_stratum="stratum", _ref_crude="crude_rate", _ref_std="standardized_rate", _ref_suppressed="suppressed")
    overall = t.filter(pl.col("stratifier") == "overall").select("measure_id", "submeasure", "unit_level", "unit_id",
                                                                 _ov_crude="crude_rate", _ov_std="standardized_rate")
    t = t.join(ref_vals, left_on=[*group, "reference_stratum"], right_on=[*group, "_ref_stratum"], how="left")
    t = t.join(overall, on=["measure_id", "submeasure", "unit_level", "unit_id"], how="left")
    is_overall_ref = pl.col("reference_stratum") == "overall"
    ref_crude = pl.when(is_overall_ref).then(pl.col("_ov_crude")).otherwise(pl.col("_ref_crude"))
    ref_std = pl.when(is_overall_ref).then(pl.col("_ov_std")).otherwise(pl.col("_ref_std"))
    t = t.with_columns(
        crude_difference=pl.col("crude_rate") - ref_crude, standardized_difference=pl.col("standardized_rate") - ref_std,
        crude_ratio=pl.when(ref_crude != 0).then(pl.col("crude_rate") / ref_crude),
        standardized_ratio=pl.when(ref_std != 0).then(pl.col("standardized_rate") / ref_std),
    ).with_columns(pl.when(pl.col("stratifier") == "overall").then(None).otherwise(pl.col("reference_stratum")).alias("reference_stratum"))
    hidden = ["crude_rate", "standardized_rate", "standardized_ci_lower", "standardized_ci_upper", "standardized_note", "oe_ratio",
              "oe_ci_lower", "oe_ci_upper", "crude_difference", "standardized_difference", "crude_ratio", "standardized_ratio"]
    t = t.with_columns([pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in hidden])
    return publishable_reasons(t.select(STANDARDIZED_COLUMNS)).sort(_KEY)
