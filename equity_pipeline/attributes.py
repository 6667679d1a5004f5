"""Member attributes: one stratum label per member for every stratifier (see docs/stratification.md).

Each ``*_stratum`` function states one stratifier's rule over its source columns. Every stratifier
partitions the members completely: a member gets exactly one label, and members whose source data
is missing, unrecognised or declined get ``Unknown`` / ``Declined`` (or the stratifier's own
named flavour of unknown, e.g. SDOH ``Not screened``), never dropped. Labels are not PHI.

Reference data: county rurality (USDA ERS RUCC 2013) and county social vulnerability (CDC/ATSDR
SVI 2018, US-wide percentile rank ``RPL_THEMES``) from ``reference/data/county_context.csv``,
derived from the public files by ``reference/data/derive_county_context.py``.
"""
from __future__ import annotations

import csv
from datetime import date
from functools import lru_cache
from importlib import resources

import polars as pl

from equity_pipeline.periods import MeasurementPeriod, age_at
from equity_pipeline.standards.race_ethnicity import (
    CATEGORY_LABELS,
    DECLINED,
    DECLINED_CODE,
    UNKNOWN,
    UNKNOWN_CODE,
    categories_expr,
)

# ---------------------------------------------------------------------------------------------
# labels

HISPANIC = "Hispanic or Latino"
NOT_HISPANIC = "Not Hispanic or Latino"
LEP = "Limited English proficiency"
ENGLISH_PROFICIENT = "English proficient"
SEX_LABELS = {"F": "Female", "M": "Male", "X": "Non-binary or other (X)"}
DISABILITY, NO_DISABILITY = "Disability", "No disability"
METRO, NONMETRO_URBAN, NONMETRO_RURAL = "Metro", "Nonmetro urban", "Nonmetro rural"
#: RUCC 2013 code -> rurality stratum (urban / in-between / rural, the three levels programs ask for)
RUCC_RURALITY: dict[int, str] = {1: METRO, 2: METRO, 3: METRO, 4: NONMETRO_URBAN, 5: NONMETRO_URBAN,
                                 6: NONMETRO_URBAN, 7: NONMETRO_URBAN, 8: NONMETRO_RURAL, 9: NONMETRO_RURAL}
SVI_QUINTILES: tuple[str, ...] = ("Q1 (least vulnerable)", "Q2", "Q3", "Q4", "Q5 (most vulnerable)")
SVI_MISSING = -999.0
NO_REGION = "No region"
DUAL = "medicare_medicaid_dual"
PAYERS = ("medicare", "medicaid", "commercial")  # tie-break priority for the stratification payer
DUAL_LEVEL_NOT_REPORTED = "level_not_reported"
NOT_DUAL = "none"
NEED, NO_NEED, NOT_SCREENED = "Need identified", "No need identified", "Not screened"
POSITIVE, NEGATIVE = "Positive", "Negative"
DEFAULT_AGE_BANDS: tuple[int, ...] = (0, 18, 45, 65, 75)
#: race categories published alone-or-in-combination (one stratifier each, ``race_aic_<key>``);
#: Hispanic or Latino is the ``ethnicity`` stratifier
AIC_CATEGORIES: dict[str, str] = {k.lower(): k for k in CATEGORY_LABELS if k != "HISPANIC"}

#: strata that stand for missing information in some stratifier: never a reference group and
#: never in summary measures (they are shown and compared, outside the multiplicity family)
UNKNOWN_STRATA = frozenset({UNKNOWN, DECLINED, NOT_SCREENED})


def _text(col: pl.Expr) -> pl.Expr:
    return col.cast(pl.String).str.strip_chars()


# ---------------------------------------------------------------------------------------------
# race and ethnicity (CDC REC codes, '|'-separated; ASKU declined, UNK/empty unknown)


def _declined_or_unknown(codes: pl.Expr, cats: pl.Expr) -> pl.Expr:
    """A ``when`` chain: ASKU -> Declined; UNK, empty or no recognised race/ethnicity code -> Unknown."""
    stripped = _text(codes).fill_null("")
    return (pl.when(stripped == DECLINED_CODE).then(pl.lit(DECLINED))
            .when((stripped == "") | (stripped == UNKNOWN_CODE) | (cats.list.len() == 0)).then(pl.lit(UNKNOWN)))


def ethnicity_stratum(codes: pl.Expr) -> pl.Expr:
    """Hispanic or Latino if any code falls in the Hispanic range (2135-2 and detail), else Not
    Hispanic or Latino when the answer names any race or the legacy 2186-5 (Not Hispanic); ASKU ->
    Declined; UNK, empty or no recognised code -> Unknown. Under the SPD 15 combined question a
    member who selected only races did not select Hispanic."""
    cats = categories_expr(_text(codes).fill_null(""))
    has_not_hispanic = _text(codes).fill_null("").str.contains("2186-5", literal=True)
    return (
        pl.when(cats.list.contains("HISPANIC")).then(pl.lit(HISPANIC))
        .when(_text(codes).fill_null("") == DECLINED_CODE).then(pl.lit(DECLINED))
        .when((cats.list.len() > 0) | has_not_hispanic).then(pl.lit(NOT_HISPANIC))
        .otherwise(pl.lit(UNKNOWN))
    )


def race_aic_stratum(codes: pl.Expr, category: str) -> pl.Expr:
    """'<category> alone or in combination' when the category is among the member's answers,
    'Not <category>' when the answer names other categories only; Declined / Unknown as usual.
    One stratifier per category, so each is still a partition (a multiracial member is counted
    once in each of their categories' stratifiers, never twice in one)."""
    label = CATEGORY_LABELS[category]
    cats = categories_expr(_text(codes).fill_null(""))
    return (
        _declined_or_unknown(codes, cats)
        .when(cats.list.contains(category)).then(pl.lit(f"{label} alone or in combination"))
        .otherwise(pl.lit(f"Not {label}"))
    )


# ---------------------------------------------------------------------------------------------
# language


def lep_stratum(language: pl.Expr, interpreter_needed: pl.Expr) -> pl.Expr:
    """Limited English proficiency: interpreter_needed true -> LEP; false -> English proficient.
    interpreter_needed unknown: preferred language English ('en', any region) -> English proficient;
    another valid language -> LEP (preferred-language proxy); ASKU -> Declined; UNK, empty or
    invalid -> Unknown. ``language`` must already be the validated BCP 47 tag."""
    tag = _text(language)
    primary = tag.str.split("-").list.first().str.to_lowercase()
    return (
        pl.when(interpreter_needed.eq_missing(True)).then(pl.lit(LEP))
        .when(interpreter_needed.eq_missing(False)).then(pl.lit(ENGLISH_PROFICIENT))
        .when(tag == DECLINED_CODE).then(pl.lit(DECLINED))
        .when(tag.is_null() | (tag == "") | (tag == UNKNOWN_CODE)).then(pl.lit(UNKNOWN))
        .when(primary == "en").then(pl.lit(ENGLISH_PROFICIENT))
        .when(primary.str.contains(r"^[a-z]{2,3}$")).then(pl.lit(LEP))
        .otherwise(pl.lit(UNKNOWN))
    )


# ---------------------------------------------------------------------------------------------
# sex and age


def disability_stratum(disability: pl.Expr) -> pl.Expr:
    """The optional members ``disability`` flag: Disability / No disability; empty -> Unknown (also
    when the input has no such column: the stratifier is opt-in and used "where present")."""
    return (pl.when(disability == pl.lit(True)).then(pl.lit(DISABILITY))
            .when(disability == pl.lit(False)).then(pl.lit(NO_DISABILITY))
            .otherwise(pl.lit(UNKNOWN)))


def sex_stratum(sex: pl.Expr) -> pl.Expr:
    """Administrative sex F/M/X as Female/Male/Non-binary or other (X); U or empty -> Unknown."""
    return _text(sex).str.to_uppercase().replace_strict(SEX_LABELS, default=UNKNOWN, return_dtype=pl.String).fill_null(UNKNOWN)


def age_band_labels(bands: tuple[int, ...]) -> list[str]:
    """Labels of the bands given by their lower bounds: (0, 18, 65) -> 0-17, 18-64, 65+."""
    return [f"{lo}-{hi - 1}" for lo, hi in zip(bands, bands[1:])] + [f"{bands[-1]}+"]


def age_band_stratum(birth_date: pl.Expr, on: date, bands: tuple[int, ...] = DEFAULT_AGE_BANDS) -> pl.Expr:
    """Age in completed years on ``on`` (the measurement period's end) in the band whose lower bound
    is the largest one not above it; no birth date or born after ``on`` -> Unknown."""
    age = age_at(birth_date, on)
    labels = age_band_labels(bands)
    expr = pl.lit(UNKNOWN)
    for lo, label in zip(bands, labels):
        expr = pl.when(age >= lo).then(pl.lit(label)).otherwise(expr)
    return pl.when(age.is_null() | (age < bands[0])).then(pl.lit(UNKNOWN)).otherwise(expr)


# ---------------------------------------------------------------------------------------------
# geography: rurality, social vulnerability, configured regions


@lru_cache(maxsize=1)
def county_context() -> pl.DataFrame:
    """county_fips, rucc_2013 (Int8, null when absent), svi_2018_rpl_themes (Float64; -999 = missing)."""
    path = resources.files("equity_pipeline.reference") / "data" / "county_context.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return pl.DataFrame(
        {
            "county_fips": [r["county_fips"] for r in rows],
            "rucc_2013": [int(r["rucc_2013"]) if r["rucc_2013"] else None for r in rows],
            "svi_2018_rpl_themes": [float(r["svi_2018_rpl_themes"]) if r["svi_2018_rpl_themes"] else None for r in rows],
        },
        schema={"county_fips": pl.String, "rucc_2013": pl.Int8, "svi_2018_rpl_themes": pl.Float64},
    )


def rurality_stratum(rucc: pl.Expr) -> pl.Expr:
    """RUCC 2013 1-3 -> Metro; 4-7 (nonmetro, urban population 2,500 or more) -> Nonmetro urban;
    8-9 (completely rural or under 2,500 urban) -> Nonmetro rural; no code -> Unknown."""
    return rucc.cast(pl.Int64).replace_strict(RUCC_RURALITY, default=UNKNOWN, return_dtype=pl.String).fill_null(UNKNOWN)


def svi_quintile_stratum(rpl_themes: pl.Expr) -> pl.Expr:
    """County SVI 2018 overall percentile rank in fifths: Q1 <= 0.2 < Q2 <= 0.4 < ... < Q5 <= 1
    (upper bounds inclusive, as CDC's quartile convention); -999, null or outside 0-1 -> Unknown."""
    expr = pl.lit(UNKNOWN)
    for upper, label in reversed(list(zip((0.2, 0.4, 0.6, 0.8, 1.0), SVI_QUINTILES))):
        expr = pl.when(rpl_themes <= upper).then(pl.lit(label)).otherwise(expr)
    valid = rpl_themes.is_not_null() & (rpl_themes >= 0) & (rpl_themes <= 1)
    return pl.when(valid).then(expr).otherwise(pl.lit(UNKNOWN))


def region_stratum(county: pl.Expr, regions: dict[str, tuple[str, ...]] | None) -> pl.Expr:
    """The configured region containing the member's county (regions may cross state lines; a
    county belongs to at most one region); a valid county in no region -> No region; no valid
    county -> Unknown. ``county`` is the valid county FIPS or null."""
    mapping = {fips: name for name, counties in (regions or {}).items() for fips in counties}
    return pl.when(county.is_null()).then(pl.lit(UNKNOWN)).otherwise(
        county.replace_strict(mapping, default=NO_REGION, return_dtype=pl.String)
    )


# ---------------------------------------------------------------------------------------------
# coverage: payer, line of business, dual status (enrollment in the measurement period)


def coverage_attributes(enrollment: pl.LazyFrame, period: MeasurementPeriod) -> pl.DataFrame:
    """member_id, payer, line_of_business, dual_status from the spans overlapping the period.

    * dual eligible: any span in the period with dual_status full or partial, or a Medicare span
      and a Medicaid span overlapping by at least one day in the period;
    * payer: ``medicare_medicaid_dual`` for duals, else the payer with the most enrolled days in
      the period (days summed over its spans, clipped to the period; ties: medicare > medicaid >
      commercial), so each member is counted once;
    * line_of_business: among the spans of that payer (duals: their Medicare spans, or Medicaid
      spans when no Medicare span is in the period), the line of business with the most days
      (ties: alphabetical); empty -> Unknown;
    * dual_status: full if any span in the period says full, else partial if any says partial,
      else ``level_not_reported`` for a dual found from overlapping spans, else ``none``.

    Members with no span in the period are absent here and become Unknown in every coverage
    stratifier.
    """
    begin, end = pl.lit(period.begin), pl.lit(period.end)
    spans = (
        enrollment.select(
            "member_id",
            payer=_text(pl.col("payer")).str.to_lowercase(),
            line_of_business=_text(pl.col("line_of_business")).str.to_lowercase(),
            dual_status=_text(pl.col("dual_status")).str.to_lowercase(),
            start=pl.max_horizontal(pl.col("enrollment_start"), begin),
            end=pl.min_horizontal(pl.col("enrollment_end").fill_null(end), end),
        )
        .filter(pl.col("start") <= pl.col("end"))
        .with_columns(days=(pl.col("end") - pl.col("start")).dt.total_days() + 1)
        .collect()
    )
    if spans.height == 0:
        return pl.DataFrame(schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String})
    # most members have one span in the period: their rules need no grouping (the same answers as the
    # group-bys below give for one row, found per row); members with several spans are grouped
    several = spans.get_column("member_id").is_duplicated()
    one = spans.filter(~several)
    one = one.select(
        "member_id", full=pl.col("dual_status") == "full", partial=pl.col("dual_status") == "partial", overlap=pl.lit(False),
        main_payer="payer", lob=pl.when(pl.col("payer") == _lob_payer(pl.col("dual_status").is_in(["full", "partial"]).fill_null(False),
                                                                       (pl.col("payer") == "medicare").fill_null(False), pl.col("payer")))
        .then(pl.col("line_of_business")),
    ).with_columns(pl.col("full", "partial").fill_null(False))
    return pl.concat([one, _coverage_of_spans(spans.filter(several))], how="vertical_relaxed").select(
        "member_id",
        payer=pl.when(pl.col("full") | pl.col("partial") | pl.col("overlap")).then(pl.lit(DUAL)).otherwise(pl.col("main_payer")).fill_null(UNKNOWN),
        line_of_business=pl.col("lob").fill_null(UNKNOWN),
        dual_status=pl.when(pl.col("full")).then(pl.lit("full")).when(pl.col("partial")).then(pl.lit("partial"))
        .when(pl.col("overlap")).then(pl.lit(DUAL_LEVEL_NOT_REPORTED)).otherwise(pl.lit(NOT_DUAL)),
    )


def _lob_payer(dual: pl.Expr, has_medicare: pl.Expr, main_payer: pl.Expr) -> pl.Expr:
    """The payer whose spans give the line of business: duals' Medicare (or Medicaid without a
    Medicare span in the period), else the main payer."""
    return pl.when(dual).then(pl.when(has_medicare).then(pl.lit("medicare")).otherwise(pl.lit("medicaid"))).otherwise(main_payer)


def _coverage_of_spans(spans: pl.DataFrame) -> pl.DataFrame:
    """:func:`coverage_attributes`' flags (full, partial, overlap), main payer and line of business
    (``lob``) per member from the member's spans in the period (grouped)."""
    care = spans.filter(pl.col("payer") == "medicare").select("member_id", s1="start", e1="end")
    caid = spans.filter(pl.col("payer") == "medicaid").select("member_id", s2="start", e2="end")
    overlap = (
        care.join(caid, on="member_id")
        .filter(pl.max_horizontal("s1", "s2") <= pl.min_horizontal("e1", "e2"))
        .select("member_id").unique().with_columns(overlap=pl.lit(True))
    )
    flags = spans.group_by("member_id").agg(
        full=(pl.col("dual_status") == "full").any(),
        partial=(pl.col("dual_status") == "partial").any(),
        has_medicare=(pl.col("payer") == "medicare").any(),
    ).join(overlap, on="member_id", how="left").with_columns(pl.col("overlap").fill_null(False))
    flags = flags.with_columns(dual=pl.col("full") | pl.col("partial") | pl.col("overlap"))
    priority = {p: i for i, p in enumerate(PAYERS)}
    by_payer = (
        spans.group_by("member_id", "payer").agg(days=pl.col("days").sum())
        .with_columns(rank=pl.col("payer").replace_strict(priority, default=len(PAYERS), return_dtype=pl.Int32))
        .sort("member_id", "days", "rank", descending=[False, True, False])
        .group_by("member_id", maintain_order=True).agg(main_payer=pl.col("payer").first())
    )
    out = flags.join(by_payer, on="member_id", how="left").with_columns(
        lob_payer=_lob_payer(pl.col("dual"), pl.col("has_medicare"), pl.col("main_payer"))
    )
    lob = (
        spans.join(out.select("member_id", "lob_payer"), on="member_id")
        .filter(pl.col("payer") == pl.col("lob_payer"))
        .group_by("member_id", "line_of_business").agg(days=pl.col("days").sum())
        .sort("member_id", "days", "line_of_business", descending=[False, True, False], nulls_last=True)
        .group_by("member_id", maintain_order=True).agg(lob=pl.col("line_of_business").first())
    )
    return out.join(lob, on="member_id", how="left").select("member_id", "full", "partial", "overlap", "main_payer", "lob")


# ---------------------------------------------------------------------------------------------
# social needs (SDOH screening results in the measurement period)


def sdoh_attributes(screenings: pl.LazyFrame, period: MeasurementPeriod) -> pl.DataFrame:
    """member_id, sdoh_need and sdoh_need_<domain> from screenings dated in the period.

    ``sdoh_need``: Need identified (positive in any domain), else No need identified (some domain
    screened, none positive), else Declined (only declined answers); members without a screening
    in the period are absent here and become Not screened. ``sdoh_need_<domain>``: Positive /
    Negative (screened, not positive) / Declined / Not screened, per core domain.
    Domain results come from :func:`equity_pipeline.standards.sdoh.domain_results` (the same
    rules as the SDOH measures)."""
    from equity_pipeline.standards.sdoh import CORE_DOMAINS, domain_results

    in_period = screenings.filter(pl.col("screening_date").is_between(period.begin, period.end))
    results = domain_results(in_period).collect()
    if results.height == 0:
        return pl.DataFrame(schema={"member_id": pl.String, "sdoh_need": pl.String,
                                    **{f"sdoh_need_{d}": pl.String for d in CORE_DOMAINS}})
    def label(positive: pl.Expr, screened: pl.Expr, declined: pl.Expr, yes: str, no: str) -> pl.Expr:
        return (pl.when(positive).then(pl.lit(yes)).when(screened).then(pl.lit(no))
                .when(declined).then(pl.lit(DECLINED)).otherwise(pl.lit(NOT_SCREENED)))

    aggs = [label(pl.col("positive").any(), pl.col("screened").any(), pl.col("declined").any(), NEED, NO_NEED).alias("sdoh_need")]
    for d in CORE_DOMAINS:
        mine = pl.col("domain") == d
        aggs.append(label((pl.col("positive") & mine).any(), (pl.col("screened") & mine).any(),
                          (pl.col("declined") & mine).any(), POSITIVE, NEGATIVE).alias(f"sdoh_need_{d}"))
    return results.group_by("member_id").agg(aggs)
