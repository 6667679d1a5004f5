"""SDOH screening: AHC HRSN and PRAPARE answers (LOINC question/answer codes) -> domain results.

The item table ``reference/data/sdoh_screening_items.csv`` (instrument, question, domain, answer,
positive flag or safety score) is the standard; this module only applies it:

* a question maps to one or more domains (PRAPARE's material-security item covers food and utilities);
* a domain is **screened** in a screening when at least one of its questions was answered, and
  **declined** when its questions were only answered ``ASKU`` (asked, declined);
* a domain is **positive** when an answer is flagged positive; AHC HRSN interpersonal safety is
  positive when the scores of items 7-10 (Never=1 ... Frequently=5) sum to more than 10.

Screened, positive and declined stay separate facts. Results become coded events
(``sdoh_screened_<domain>``, ``sdoh_positive_<domain>``, ``sdoh_declined_<domain>``) that measure specs
refer to like value sets.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import polars as pl

CORE_DOMAINS = ("housing", "food", "transportation", "utilities", "interpersonal_safety")
SAFETY_THRESHOLD = 10
FACTS = ("screened", "positive", "declined")
DERIVED_VALUE_SETS = frozenset(f"sdoh_{fact}_{d}" for fact in FACTS for d in CORE_DOMAINS)


@lru_cache(maxsize=1)
def items() -> pl.DataFrame:
    path = resources.files("equity_pipeline.reference") / "data" / "sdoh_screening_items.csv"
    with path.open("rb") as fh:
        return pl.read_csv(fh, schema_overrides={"item": pl.String, "positive": pl.String, "score": pl.Int32}).with_columns(
            positive=pl.col("positive") == "true"
        )


def domain_results(screenings: pl.LazyFrame) -> pl.LazyFrame:
    """member_id, screening_id, screening_date, domain, screened, positive, declined."""
    table = items().lazy()
    question_domains = table.select("instrument", "question_code", "domain").unique()
    answers = screenings.select("member_id", "screening_id", "screening_date", "instrument", "question_code", "answer_code")
    per_answer = answers.join(question_domains, on=["instrument", "question_code"], how="inner").join(
        table.select("instrument", "question_code", "domain", "answer_code", "positive", "score"),
        on=["instrument", "question_code", "domain", "answer_code"], how="left",
    )
    answered = pl.col("answer_code").is_not_null() & (pl.col("answer_code") != "ASKU")
    safety_sum = pl.when(pl.col("score").is_not_null()).then(pl.col("score")).otherwise(0).sum()
    return per_answer.group_by("member_id", "screening_id", "screening_date", "domain").agg(
        screened=answered.any(),
        positive=pl.col("positive").fill_null(False).any() | (safety_sum > SAFETY_THRESHOLD),
        declined=(pl.col("answer_code") == "ASKU").any() & ~answered.any(),
    )


def screening_events(screenings: pl.LazyFrame) -> pl.LazyFrame:
    """Domain results as coded events (code system SDOH), in the measure-events schema: one event per
    member, date, fact and domain (two screenings of a member on one day give one event). Made
    distinct on those four before the constant and derived columns are added (fewer columns to hash)."""
    results = domain_results(screenings)
    parts = [results.filter(pl.col(fact)).select("member_id", pl.col("screening_date").alias("event_date"), "domain",
                                                 pl.lit(fact).alias("_fact"))
             for fact in FACTS]
    return pl.concat(parts).unique().select(
        "member_id", "event_date", (pl.lit("sdoh_") + pl.col("_fact") + pl.lit("_") + pl.col("domain")).alias("value_set"),
        pl.lit("SDOH").alias("code_system"), pl.col("domain").alias("code"), pl.lit("clinical").alias("source"),
        pl.lit(None, dtype=pl.Float64).alias("value_numeric"),
    )
