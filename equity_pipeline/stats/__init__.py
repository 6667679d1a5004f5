"""Statistics library: one function per statistical question, checked against published figures.

- :mod:`.proportions` Wilson intervals for proportions.
- :mod:`.rates` crude rates (exact / Byar's Poisson limits) and indirectly standardised ratios/rates.
- :mod:`.standardization` directly standardised rates (Dobson, Fay-Feuer).
- :mod:`.disparities` each group vs a reference group: differences, ratios, tests, multiplicity.
- :mod:`.summary` healthequal / HD*Calc summary measures of inequality.
- :mod:`.calculator` the analyst CSV -> JSON calculator behind ``equity-pipeline disparity``.

No Dagster imports here; see docs/statistics.md for formulas and the reference figures each is tested on.
"""
from equity_pipeline.stats.disparities import (
    pairwise_disparities,
    pairwise_vs_reference,
    rate_difference,
    rate_ratio,
    reference_group,
)
from equity_pipeline.stats.proportions import ProportionCI, wilson_interval, with_wilson
from equity_pipeline.stats.rates import (
    RateCI,
    byars_lower,
    byars_upper,
    event_rate,
    exact_poisson_interval,
    indirectly_standardised_rate,
    indirectly_standardised_ratio,
    poisson_count_interval,
    standardised_ratio,
)
from equity_pipeline.stats.standardization import ESP2013, direct_standardised_rate, dsr_by_group
from equity_pipeline.stats.summary import SummaryResult, all_summaries, summaries_frame

__all__ = [
    "ESP2013", "ProportionCI", "RateCI", "SummaryResult", "all_summaries", "byars_lower", "byars_upper",
    "direct_standardised_rate", "dsr_by_group", "event_rate", "exact_poisson_interval",
    "indirectly_standardised_rate", "indirectly_standardised_ratio", "pairwise_disparities",
    "pairwise_vs_reference", "poisson_count_interval", "rate_difference", "rate_ratio", "reference_group",
    "standardised_ratio", "summaries_frame", "wilson_interval", "with_wilson",
]
