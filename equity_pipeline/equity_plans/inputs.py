"""What the plan tables read of the member-level tables: only the columns and rows they use.

The plan steps are aggregates; reading a whole member table (names, addresses, every measure
column) costs memory and time that grow with the members and buys nothing (docs/performance.md).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

#: columns of ``members`` the plans read: the REL categories (``report.completeness.member_categories``),
#: and age and death for the hospital plan's index stays and adult patients
MEMBER_COLUMNS = ("member_id", "race_ethnicity_codes", "race_ethnicity_source", "language", "county_fips", "birth_date",
                  "death_date")
#: columns of a measure's member results the state plan reads (PQI counts, SDOH screening population)
RESULT_COLUMNS = ("member_id", "submeasure", "in_denominator", "numerator_value", "denominator_value")


def read_members(path: Path) -> pl.DataFrame:
    """The validated members table, :data:`MEMBER_COLUMNS` only (those it has)."""
    lf = pl.scan_parquet(path)
    names = set(lf.collect_schema().names())
    return lf.select(c for c in MEMBER_COLUMNS if c in names).collect()


def read_denominator_results(path: Path) -> pl.DataFrame:
    """A measure's member results as the state plan reads them: the rows of the ``all`` sub-measure's
    denominator (the only rows it counts), :data:`RESULT_COLUMNS`."""
    return (pl.scan_parquet(path).select(RESULT_COLUMNS)
            .filter(pl.col("in_denominator") & (pl.col("submeasure") == "all")).collect())
