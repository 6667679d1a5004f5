"""Member-level measure results -> counts by reporting unit x stratifier x stratum -> public rates.

Reporting units: ``population`` (everyone, unit_id ``all``) and ``state`` (state of residence from
the county FIPS; members without a valid county are the state unit ``Unknown``, so the state units
always add up to the population). Every stratifier partitions the members completely: Unknown and
Declined are strata of their own and never dropped. Each unit also has its whole-population row,
``stratifier = overall``, ``stratum = all``.
"""
from __future__ import annotations

import polars as pl

from equity_pipeline.measures.spec import MeasureSpec
from equity_pipeline.standards.geography import county_names, state_postal_by_fips
from equity_pipeline.standards.language import language_strata
from equity_pipeline.standards.race_ethnicity import UNKNOWN, race_ethnicity_stratum
from equity_pipeline.stats.proportions import wilson_interval
from equity_pipeline.stats.rates import event_rate
from equity_pipeline.suppression import suppress

#: stratifier name -> member attribute column it reads
STRATIFIERS: dict[str, str] = {
    "race_ethnicity": "race_ethnicity",
    "language": "language",
    "county": "county",
}
DEFAULT_STRATIFIERS = tuple(STRATIFIERS)
KEY = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum"]
RATES_COLUMNS = [
    "measure_id", "measure_title", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum",
    "members", "denominator", "numerator", "rate", "ci_lower", "ci_upper", "rate_type", "rate_per", "suppressed",
    "suppression_reason", "data_source", "direction",
]
#: additive sums kept in the (restricted) counts so partitions combine exactly and CIs of ratio
#: measures can be recomputed after combining
SUMS = ("members", "denominator", "numerator", "sum_num_sq", "sum_num_den", "sum_den_sq")


def member_attributes(members: pl.LazyFrame, year: int) -> pl.DataFrame:
    """member_id and one stratum label per stratifier (plus ``state`` for the state unit)."""
    m = members.select("member_id", "race_ethnicity_codes", "language", "county_fips").collect()
    names = county_names(year)
    states = state_postal_by_fips()
    county_ok = m["county_fips"].is_in(list(names)).fill_null(False)
    return m.select(
        "member_id",
        race_ethnicity=m.select(race_ethnicity_stratum(pl.col("race_ethnicity_codes"))).to_series(),
        language=language_strata(m["language"]),
        county=pl.when(county_ok).then(m["county_fips"]).otherwise(pl.lit(UNKNOWN)),
        state=pl.when(county_ok).then(m["county_fips"].str.slice(0, 2).replace_strict(states, default=UNKNOWN)).otherwise(pl.lit(UNKNOWN)),
    )


def stratified_counts(results: pl.DataFrame, attributes: pl.DataFrame, stratifiers=DEFAULT_STRATIFIERS) -> pl.DataFrame:
    """Unsuppressed denominator and numerator per measure x unit x stratifier x stratum."""
    base = (
        results.filter(pl.col("in_denominator"))
        .join(attributes, on="member_id", how="left")
        .with_columns(pl.col(c).fill_null(UNKNOWN) for c in ("state", *[STRATIFIERS[s] for s in stratifiers]))
    )
    # age rows (e.g. CHL 16-20 and 21-24) also roll up into the measure's "all" row; measures whose
    # rows are outcomes (SDOH positive by domain) carry their own "all" row already
    has_all = base.filter(pl.col("submeasure") == "all")["measure_id"].unique().to_list()
    base = pl.concat([base, base.filter((pl.col("submeasure") != "all") & ~pl.col("measure_id").is_in(has_all)).with_columns(submeasure=pl.lit("all"))])
    parts = []
    units = [(pl.lit("population"), pl.lit("all")), (pl.lit("state"), pl.col("state"))]
    for unit_level, unit_id in units:
        for stratifier in ("overall", *stratifiers):
            stratum = pl.lit("all") if stratifier == "overall" else pl.col(STRATIFIERS[stratifier])
            parts.append(
                base.group_by("measure_id", "measure_version", "submeasure", "period", unit_level.alias("unit_level"), unit_id.alias("unit_id"), stratum.alias("stratum"))
                .agg(
                    members=pl.len().cast(pl.Float64),
                    denominator=pl.col("denominator_value").sum(),
                    numerator=pl.col("numerator_value").sum(),
                    sum_num_sq=(pl.col("numerator_value") ** 2).sum(),
                    sum_num_den=(pl.col("numerator_value") * pl.col("denominator_value")).sum(),
                    sum_den_sq=(pl.col("denominator_value") ** 2).sum(),
                )
                .with_columns(stratifier=pl.lit(stratifier))
            )
    return pl.concat(parts, how="diagonal").select(*KEY, *SUMS).sort(KEY)


def data_source_of(spec: MeasureSpec, clinical_rows: int) -> str:
    """claims, clinical or hybrid: what the rate actually used (never mixed silently)."""
    sources = set(spec.data_sources)
    if "clinical" in sources and clinical_rows == 0:
        sources.discard("clinical")
    if sources == {"claims"}:
        return "claims"
    if sources == {"clinical"}:
        return "clinical"
    return "hybrid"


def _ratio_ci(c: pl.DataFrame, z: float = 1.959963984540054) -> tuple[pl.Series, pl.Series]:
    """Normal CI of a ratio estimator sum(y)/sum(m) from member-level sums (linearisation)."""
    r = c["numerator"] / c["denominator"]
    n = c["members"]
    resid = c["sum_num_sq"] - 2 * r * c["sum_num_den"] + r * r * c["sum_den_sq"]
    se = (resid.clip(lower_bound=0) * n / (n - 1).clip(lower_bound=1)).sqrt() / c["denominator"]
    return (r - z * se), (r + z * se)


def rate_and_ci(counts: pl.DataFrame) -> pl.DataFrame:
    """rate, ci_lower, ci_upper by ``kind``: Wilson (proportion), exact/Byar Poisson x per (event
    rates), ratio-estimator normal CI (cost per member month, spend share)."""
    out = []
    for kind, part in counts.group_by("kind", maintain_order=True):
        kind = kind[0]
        num, den, per = part["numerator"].to_numpy(), part["denominator"].to_numpy(), part["rate_per"].to_numpy()
        if kind == "proportion":
            ci = wilson_interval(num, den)
        elif kind == "event_rate":
            ci = event_rate(num, den, per=1.0)
            ci = type(ci)(ci.rate * per, ci.ci_lower * per, ci.ci_upper * per, ci.method)
        else:
            lo, hi = _ratio_ci(part)
            rate = part["numerator"] / part["denominator"]
            ci = (rate.to_numpy() * per, lo.to_numpy() * per, hi.to_numpy() * per)
            if kind == "cost_share":
                ci = (ci[0], ci[1].clip(0, 1), ci[2].clip(0, 1))
        rate, lower, upper = ci[0], ci[1], ci[2]
        out.append(part.with_columns(
            rate=pl.Series(rate, dtype=pl.Float64).fill_nan(None),
            ci_lower=pl.Series(lower, dtype=pl.Float64).fill_nan(None),
            ci_upper=pl.Series(upper, dtype=pl.Float64).fill_nan(None),
        ))
    return pl.concat(out)


def public_rates(counts: pl.DataFrame, specs: dict[str, MeasureSpec], data_sources: dict[str, str]) -> pl.DataFrame:
    """Suppressed public rates with CIs (computed on true counts, nulled with the cell)."""
    meta = pl.DataFrame(
        {
            "measure_id": list(specs),
            "measure_title": [s.title for s in specs.values()],
            "direction": [s.direction for s in specs.values()],
            "data_source": [data_sources.get(m, "claims") for m in specs],
            "kind": [s.kind for s in specs.values()],
            "rate_type": [s.rate.get("type", "proportion") for s in specs.values()],
            "rate_per": [float(s.rate.get("per", 1)) for s in specs.values()],
        }
    )
    rated = rate_and_ci(counts.join(meta, on="measure_id", how="left"))
    out = suppress(rated.sort(KEY)).with_columns(pl.col("members").cast(pl.Int64))
    return out.select(RATES_COLUMNS).sort(KEY)
