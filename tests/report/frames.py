"""Hand-built public rates frames for the report tests (the columns of ``stratify.RATES_COLUMNS``)."""
from __future__ import annotations

import polars as pl

from equity_pipeline.disparity_tables import DISPARITY_COLUMNS

SCHEMA = {
    "measure_id": pl.String, "measure_title": pl.String, "measure_version": pl.String, "submeasure": pl.String,
    "period": pl.String, "unit_level": pl.String, "unit_id": pl.String, "stratifier": pl.String,
    "stratum": pl.String, "members": pl.Int64, "denominator": pl.Float64, "numerator": pl.Float64,
    "rate": pl.Float64, "ci_lower": pl.Float64, "ci_upper": pl.Float64, "rate_type": pl.String,
    "rate_per": pl.Float64, "suppressed": pl.Boolean, "suppression_reason": pl.String, "data_source": pl.String,
    "direction": pl.String,
}

#: measure_id -> (title, rate_type, rate_per, direction, data_source)
MEASURES: dict[str, tuple[str, str, float, str, str]] = {
    "BCS-E": ("Breast Cancer Screening", "proportion", 1.0, "higher_is_better", "hybrid"),
    "PCR": ("Plan All-Cause Readmissions", "proportion", 1.0, "lower_is_better", "claims"),
    "CHL": ("Chlamydia Screening in Women", "proportion", 1.0, "higher_is_better", "claims"),
    "ED": ("Emergency Department Visits", "per_member_months", 1000.0, "lower_is_better", "claims"),
    "PQI": ("Preventable Admissions", "per_member_years", 100000.0, "lower_is_better", "claims"),
    "TCOC": ("Total Cost of Care PMPM", "usd_pmpm", 1.0, "lower_is_better", "claims"),
    "PCS": ("Primary Care Share of Spend", "share_of_spend", 1.0, "higher_is_better", "claims"),
}


def row(measure: str, stratifier: str, stratum: str, n: float | None = None, x: float | None = None,
        ci: tuple[float, float] | None = None, *, unit: str = "all", submeasure: str = "all",
        members: int | None = None, reason: str | None = None, rate: float | None = None,
        direction: str | None = None, title: str | None = None) -> dict:
    """One rates row. ``n`` denominator, ``x`` numerator (None: suppressed); the rate is x / n times
    the measure's ``rate_per`` unless given. ``members`` defaults to ``n`` (right for proportions)."""
    m_title, rate_type, per, m_direction, source = MEASURES[measure]
    suppressed = n is None
    return {
        "measure_id": measure, "measure_title": title or m_title, "measure_version": "2025.1",
        "submeasure": submeasure, "period": "2024",
        "unit_level": "population" if unit == "all" else "state", "unit_id": unit,
        "stratifier": stratifier, "stratum": stratum,
        "members": None if suppressed else (members if members is not None else int(n)),
        "denominator": n, "numerator": x,
        "rate": None if suppressed else (rate if rate is not None else (x / n * per if n else None)),
        "ci_lower": None if suppressed or ci is None else ci[0],
        "ci_upper": None if suppressed or ci is None else ci[1],
        "rate_type": rate_type, "rate_per": per,
        "suppressed": suppressed, "suppression_reason": (reason or "cell-size policy") if suppressed else None,
        "data_source": source, "direction": direction or m_direction,
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


# ---------------------------------------------------------------------------------------------------
# public/disparities.parquet: frames built with the library's own column schema

DISPARITY_SCHEMA = DISPARITY_COLUMNS


def disparity(measure: str, stratifier: str, stratum: str, reference: str, rate: float | None = None,
              reference_rate: float | None = None, ratio_ci: tuple[float, float] | None = None, p: float | None = None,
              *, unit: str = "all", status: str = "compared", insufficient: bool = False) -> dict:
    """One disparities row. ``rate`` None: the stratum is suppressed. ``stratum == reference``: the
    reference row. ``p`` is the adjusted p-value; significant when < 0.05."""
    _, rate_type, per, direction, _ = MEASURES[measure]
    base = {c: None for c in DISPARITY_SCHEMA}
    base.update(measure_id=measure, measure_version="2025.1", submeasure="all", period="2024",
                unit_level="population" if unit == "all" else "state", unit_id=unit, stratifier=stratifier,
                stratum=stratum, reference_stratum=reference, reference_policy="best", direction=direction,
                rate_type=rate_type, rate_per=per, adjustment="holm", is_reference=False, suppressed=False,
                insufficient_data=insufficient)
    if rate is None:
        return {**base, "suppressed": True, "status": "suppressed"}
    base.update(rate=rate, reference_rate=reference_rate)
    if stratum == reference:
        return {**base, "is_reference": True, "status": "reference"}
    higher = direction == "higher_is_better"
    significant = p is not None and p < 0.05 if status == "compared" else None
    worse = None if significant is None else bool(significant and not insufficient and (rate < reference_rate if higher else rate > reference_rate))
    ratio = rate / reference_rate if reference_rate else float("inf")
    return {**base, "difference": rate - reference_rate, "ratio": ratio,
            "ratio_ci_lower": ratio_ci[0] if ratio_ci else None, "ratio_ci_upper": ratio_ci[1] if ratio_ci else None,
            "p_value": p, "p_adjusted": p if status == "compared" else None, "significant": significant,
            "worse_than_reference": worse, "status": status, "method": "score"}


def disparity_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=DISPARITY_SCHEMA)


# ---------------------------------------------------------------------------------------------------
# members table for the completeness panel (synthetic; no real people)

def members(spec: list[tuple[str, str, str | None, str | None, int]]) -> pl.DataFrame:
    """Validated members rows from (race_ethnicity_codes, race_ethnicity_source, language, county_fips, n)."""
    rows = []
    for codes, source, language, county, n in spec:
        rows += [(f"T{len(rows) + i:06d}", codes, source, language, county) for i in range(n)]
    return pl.DataFrame(rows, schema={"member_id": pl.String, "race_ethnicity_codes": pl.String,
                                      "race_ethnicity_source": pl.String, "language": pl.String,
                                      "county_fips": pl.String}, orient="row")
