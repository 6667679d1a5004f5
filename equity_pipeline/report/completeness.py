"""REL data completeness: how race/ethnicity and language were collected, as a suppressed aggregate.

Equity officers need to know how far a stratified rate can be trusted before reading it: a group
whose race/ethnicity is mostly imputed, or a plan where a third of members declined to answer, reads
differently. This module turns the (restricted) validated members table into counts by reporting
unit, attribute and category, then suppresses them like the public rates.

Categories (each member falls in exactly one per attribute; zero counts are published):

=================  ===============  ==========================================================
attribute          category         members whose ...
=================  ===============  ==========================================================
race_ethnicity     self_reported    race/ethnicity maps to a category and the source is direct
race_ethnicity     imputed          ... and the source is indirect (e.g. BISG)
race_ethnicity     source_unknown   ... and the source is not stated (``unknown``)
race_ethnicity     declined         answer is ``ASKU`` (asked, declined)
race_ethnicity     unknown          answer is ``UNK``, empty or unrecognised (not collected)
language           reported         preferred language maps to a language
language           declined         answer is ``ASKU``
language           unknown          answer is ``UNK``, empty or unrecognised
=================  ===============  ==========================================================

The declined / unknown split follows the race/ethnicity rollup and language strata used for the
rates (``Declined`` and ``Unknown`` strata), so the panel and the rates agree on who is which.
Reporting units are the same as the rates': the population (``all``) and each state of residence
(``Unknown`` for members without a valid county).

Suppression reuses :func:`equity_pipeline.suppression.suppress` as a proportion table: a category
cell is suppressed when its count, the unit's total or the rest of the unit (total - count) is 1-10,
plus complementary suppression along both margins (categories add up to the unit's total; states add
up to the population), so no suppressed count can be recovered by subtraction. A unit's total is
one value, printed with every shown row of the unit (of either attribute: each member is in one
category of each), so it is suppressed as one: when the total is hidden (1-10, or as the complement
of another hidden total along the states -> population margin) every row of the unit, race/ethnicity
and language, is hidden (:func:`_unit_total_links`); otherwise a state total hidden only in the
margin would still be printed by its shown rows, and a small state's total would be the population
minus the other states. Every suppressed
cell says ``suppression_reason = suppression.PUBLIC_REASON``, small and complementary alike
(:func:`completeness_with_reasons` keeps the kinds for the restricted suppression log).
"""
from __future__ import annotations

import polars as pl

from equity_pipeline.periods import as_period
from equity_pipeline.standards.race_ethnicity import DECLINED, UNKNOWN
from equity_pipeline.stats.proportions import wilson_interval

ATTRIBUTES: tuple[str, ...] = ("race_ethnicity", "language")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "race_ethnicity": ("self_reported", "imputed", "source_unknown", "declined", "unknown"),
    "language": ("reported", "declined", "unknown"),
}
CATEGORY_LABELS: dict[str, str] = {
    "self_reported": "Self-reported (direct)",
    "imputed": "Imputed (indirect)",
    "source_unknown": "Reported, source not stated",
    "reported": "Reported",
    "declined": "Declined (asked, no answer)",
    "unknown": "Unknown (not collected)",
}
ATTRIBUTE_LABELS: dict[str, str] = {"race_ethnicity": "Race and ethnicity", "language": "Preferred language"}

#: Columns of ``public/completeness.parquet``.
COMPLETENESS_COLUMNS: tuple[str, ...] = (
    "period", "unit_level", "unit_id", "attribute", "category", "members", "total", "share", "ci_lower",
    "ci_upper", "suppressed", "suppression_reason",
)
_COUNT_COLUMNS = ("unit_level", "unit_id", "attribute", "category", "members", "total")

#: completeness metrics for program thresholds (config ``completeness_thresholds``): metric ->
#: (attribute, the categories counted as complete). The share is their members over the unit's total.
COMPLETENESS_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "race_ethnicity": ("race_ethnicity", ("self_reported", "imputed", "source_unknown")),
    "race_ethnicity_reported": ("race_ethnicity", ("self_reported", "source_unknown")),
    "self_reported_race_ethnicity": ("race_ethnicity", ("self_reported",)),
    "language": ("language", ("reported",)),
}
THRESHOLD_STATUSES: tuple[str, ...] = ("pass", "warn", "fail", "not_evaluable")


def evaluate_thresholds(public: pl.DataFrame,
                        thresholds: tuple[tuple[str, float | None, float | None], ...]) -> dict:
    """Configured completeness levels against ``public/completeness`` (the suppressed table), per
    reporting unit (population and each state). Per metric and unit: ``members`` (complete),
    ``total``, ``share`` and ``status``: ``fail`` below the fail level, ``warn`` below the warn level,
    else ``pass``; ``not_evaluable`` when the unit has no members or the complete count cannot be read
    from the shown cells: it is the sum of the metric's categories when all are shown, else the total
    minus the other categories when those are all shown (a sum the public table already gives away;
    a single hidden cell is never recovered, since complementary suppression hides two per margin).
    Counts, shares and unit ids only; no member data."""
    results = []
    for metric, warn, fail in thresholds:
        attribute, categories = COMPLETENESS_METRICS[metric]
        rows = public.filter(pl.col("attribute") == attribute)
        for (level, uid), unit in rows.group_by("unit_level", "unit_id", maintain_order=True):
            shown_total = unit["total"].drop_nulls()
            total = int(shown_total.max()) if shown_total.len() else None  # one total per unit, printed on shown rows
            members = None
            for part, sign in ((pl.col("category").is_in(list(categories)), 1), (~pl.col("category").is_in(list(categories)), -1)):
                cells = unit.filter(part)
                if total is not None and not cells["suppressed"].any() and not cells["members"].null_count():
                    members = int(cells["members"].sum()) if sign == 1 else total - int(cells["members"].sum())
                    break
            hidden = members is None
            share = members / total if members is not None and total else None
            if share is None:
                status = "not_evaluable"
            elif fail is not None and share < fail:
                status = "fail"
            elif warn is not None and share < warn:
                status = "warn"
            else:
                status = "pass"
            results.append({"metric": metric, "unit_level": level, "unit_id": uid, "members": members,
                            "total": None if hidden else total, "share": share, "warn": warn, "fail": fail,
                            "status": status})
    results.sort(key=lambda r: (r["metric"], r["unit_level"] != "population", r["unit_id"]))
    summary = {s: sum(r["status"] == s for r in results) for s in THRESHOLD_STATUSES}
    return {"thresholds": {m: {"warn": w, "fail": f} for m, w, f in thresholds}, "summary": summary, "results": results}


def member_categories(members: pl.DataFrame | pl.LazyFrame, year: int) -> pl.DataFrame:
    """One row per member: ``state``, ``race_ethnicity`` and ``language`` completeness categories.

    ``members`` is the validated members table (member_id, race_ethnicity_codes,
    race_ethnicity_source, language, county_fips). Member-level: keep it in restricted memory only.
    """
    from equity_pipeline.standards.geography import county_names, state_postal_by_fips
    from equity_pipeline.standards.language import language_strata
    from equity_pipeline.standards.race_ethnicity import race_ethnicity_stratum

    m = members.lazy().select("race_ethnicity_codes", "race_ethnicity_source", "language", "county_fips").collect()
    # the rates' state unit: state of a county valid in the measurement year, else Unknown
    county_ok = m["county_fips"].is_in(list(county_names(as_period(year).year))).fill_null(False)
    # row-wise functions of one code list (or one language answer), of which members share a few
    # hundred: computed once per distinct value and joined back in member order (as stratify does)
    races = m.select("race_ethnicity_codes").unique().with_columns(_race=race_ethnicity_stratum(pl.col("race_ethnicity_codes")))
    languages = m.select("language").unique()
    languages = languages.with_columns(_language=language_strata(languages["language"]))
    m = (m.join(races, on="race_ethnicity_codes", how="left", nulls_equal=True, maintain_order="left")
         .join(languages, on="language", how="left", nulls_equal=True, maintain_order="left"))
    frame = m.select(
        race_ethnicity="_race",
        race_ethnicity_source="race_ethnicity_source",
        language="_language",
        state=pl.when(county_ok).then(pl.col("county_fips").str.slice(0, 2).replace_strict(state_postal_by_fips(), default=UNKNOWN))
        .otherwise(pl.lit(UNKNOWN)),
    )
    src = pl.col("race_ethnicity_source").cast(pl.String).str.to_lowercase()
    return frame.select(
        "state",
        race_ethnicity=pl.when(pl.col("race_ethnicity") == DECLINED).then(pl.lit("declined"))
        .when(pl.col("race_ethnicity") == UNKNOWN).then(pl.lit("unknown"))
        .when(src == "self_reported").then(pl.lit("self_reported"))
        .when(src == "imputed").then(pl.lit("imputed"))
        .otherwise(pl.lit("source_unknown")),
        language=pl.when(pl.col("language") == DECLINED).then(pl.lit("declined"))
        .when(pl.col("language") == UNKNOWN).then(pl.lit("unknown"))
        .otherwise(pl.lit("reported")),
    )


def completeness_counts(categories: pl.DataFrame) -> pl.DataFrame:
    """Unsuppressed counts per unit x attribute x category, every category present (zeros kept).

    Columns: unit_level, unit_id, attribute, category, members, total (members of the unit)."""
    units = [("population", "all")] + [("state", s) for s in sorted(categories.get_column("state").unique().to_list())]
    parts = []
    for attribute in ATTRIBUTES:
        counted = pl.concat([
            categories.group_by(attribute).agg(members=pl.len()).with_columns(unit_level=pl.lit("population"), unit_id=pl.lit("all")),
            categories.group_by("state", attribute).agg(members=pl.len())
            .with_columns(unit_level=pl.lit("state")).rename({"state": "unit_id"}),
        ], how="diagonal").rename({attribute: "category"})
        grid = pl.DataFrame(
            [(level, uid, attribute, c) for level, uid in units for c in CATEGORIES[attribute]],
            schema={"unit_level": pl.String, "unit_id": pl.String, "attribute": pl.String, "category": pl.String},
            orient="row",
        )
        parts.append(grid.join(counted, on=["unit_level", "unit_id", "category"], how="left"))
    out = pl.concat(parts).with_columns(pl.col("members").fill_null(0).cast(pl.Int64))
    return out.with_columns(total=pl.col("members").sum().over("unit_level", "unit_id", "attribute")).select(_COUNT_COLUMNS)


#: key of a completeness cell (for the restricted suppression log)
COMPLETENESS_KEY: tuple[str, ...] = ("period", "unit_level", "unit_id", "attribute", "category")


def public_completeness(counts: pl.DataFrame, period: str) -> pl.DataFrame:
    """Shares with Wilson 95% CIs, suppressed (primary and complementary, one public reason for
    both); see the module docstring."""
    from equity_pipeline.suppression import publishable_reasons

    return publishable_reasons(completeness_with_reasons(counts, period))


def completeness_with_reasons(counts: pl.DataFrame, period: str) -> pl.DataFrame:
    """:func:`public_completeness` with the restricted reasons of ``suppress`` (primary /
    complementary). Not for publication: the kind of a suppressed cell narrows its hidden count."""
    from equity_pipeline.suppression import suppress

    ci = wilson_interval(counts["members"].cast(pl.Float64), counts["total"].cast(pl.Float64))
    cells = counts.select(
        measure_id=pl.col("attribute"), submeasure=pl.lit("all"), period=pl.lit(str(period)),
        unit_level="unit_level", unit_id="unit_id", stratifier=pl.lit("category"), stratum=pl.col("category"),
        numerator=pl.col("members").cast(pl.Float64), denominator=pl.col("total").cast(pl.Float64),
        rate=pl.Series(ci.rate, dtype=pl.Float64).fill_nan(None),
        ci_lower=pl.Series(ci.ci_lower, dtype=pl.Float64).fill_nan(None),
        ci_upper=pl.Series(ci.ci_upper, dtype=pl.Float64).fill_nan(None),
        kind=pl.lit("proportion"),
    )
    # complementary suppression takes the first candidate in row order among equal denominators (all
    # categories of a unit share theirs): order by count so it hides the smallest non-zero category
    # (a hidden zero protects nothing) and the largest, usually the headline share, stays shown
    cells = cells.sort("unit_level", "unit_id", "measure_id", pl.col("numerator") == 0, "numerator")
    # the units' totals are the margin the categories add up to
    totals = (cells.group_by("measure_id", "submeasure", "period", "unit_level", "unit_id", "kind", maintain_order=True)
              .agg(numerator=pl.col("denominator").first(), denominator=pl.col("denominator").first())
              .with_columns(stratifier=pl.lit("overall"), stratum=pl.lit("all"), rate=pl.lit(1.0),
                            ci_lower=pl.lit(None, pl.Float64), ci_upper=pl.lit(None, pl.Float64)))
    frame = pl.concat([cells, totals], how="diagonal")
    linked, links = _unit_total_links(frame)
    suppressed = suppress(linked, links).head(frame.height)
    order = {f"{a}/{c}": i for i, (a, c) in enumerate((a, c) for a in ATTRIBUTES for c in CATEGORIES[a])}
    return (
        suppressed.filter(pl.col("stratifier") != "overall")
        .with_columns(
            _unit=pl.col("unit_level").replace_strict({"population": 0}, default=1, return_dtype=pl.Int8),
            _cat=(pl.col("measure_id") + "/" + pl.col("stratum")).replace_strict(order, return_dtype=pl.Int8),
        )
        .sort("_unit", "unit_id", "_cat")
        .select(
            "period", "unit_level", "unit_id", attribute="measure_id", category="stratum",
            members=pl.col("numerator").cast(pl.Int64), total=pl.col("denominator").cast(pl.Int64),
            share="rate", ci_lower="ci_lower", ci_upper="ci_upper", suppressed="suppressed",
            suppression_reason="suppression_reason",
        )
    )


def _unit_total_links(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[list[int], int]]]:
    """``frame`` (category rows and the units' ``overall`` total rows) plus synthetic absorber rows,
    and the extra margins that make ``suppress`` treat a unit's total as one value.

    The total is printed with every shown row of the unit, of either attribute (each member is in one
    category of each), so hiding it (1-10, or as the complement of a hidden total along the states ->
    population margin) must hide every row of the unit. The attributes' total rows are tied both ways
    (the margin ``([t1], t0)``: one hidden alone makes the other its complement); each category row x is
    tied one way to its attribute's total t by the margin ``([x, X], t)`` with a never-small absorber X
    (the device of ``equity_plans.cells``): t hidden makes x, the smaller entry, its complement, while x
    hidden alone only hides X. Absorbers come after ``frame``'s rows and are in no built-in margin
    (their own unit, stratifier ``overall``); drop them with ``.head(frame.height)``."""
    keys = frame.select("unit_level", "unit_id", "measure_id", "stratifier").rows()
    total_of: dict[tuple[str, str, str], int] = {}
    first_total: dict[tuple[str, str], int] = {}
    links: list[tuple[list[int], int]] = []
    for i, (level, uid, measure, stratifier) in enumerate(keys):
        if stratifier == "overall":
            total_of[(level, uid, measure)] = i
            if (level, uid) in first_total:
                links.append(([i], first_total[(level, uid)]))
            else:
                first_total[(level, uid)] = i
    k = 0  # absorbers so far; absorber j is row frame.height + j
    for i, (level, uid, measure, stratifier) in enumerate(keys):
        if stratifier != "overall":
            links.append(([i, frame.height + k], total_of[(level, uid, measure)]))
            k += 1
    absorbers = pl.DataFrame({
        "measure_id": ["__unit_total__"] * k, "submeasure": ["all"] * k, "period": [""] * k, "unit_level": ["absorber"] * k,
        "unit_id": [str(j) for j in range(k)], "stratifier": ["overall"] * k, "stratum": ["all"] * k,
        "numerator": [1e15] * k, "denominator": [2e15] * k, "kind": ["proportion"] * k,
    })
    return pl.concat([frame, absorbers], how="diagonal_relaxed"), links


def rel_completeness(members: pl.DataFrame | pl.LazyFrame, year: int, *, with_reasons: bool = False) -> pl.DataFrame:
    """``public/completeness.parquet`` from the validated members table (see the module docstring);
    ``with_reasons``: the same table with the restricted primary/complementary reasons instead."""
    build = completeness_with_reasons if with_reasons else public_completeness
    return build(completeness_counts(member_categories(members, year)), as_period(year).label)


def completeness_small_cells(table: pl.DataFrame) -> int:
    """Published (unsuppressed) rows whose count, total or rest of the total is 1-10 (must be 0)."""
    from equity_pipeline.suppression import MIN_CELL

    shown = table.filter(~pl.col("suppressed"))
    small = [((c >= 1) & (c < MIN_CELL)).fill_null(False)
             for c in (pl.col("members"), pl.col("total"), pl.col("total") - pl.col("members"))]
    return int(shown.select(pl.any_horizontal(small).sum()).item())
