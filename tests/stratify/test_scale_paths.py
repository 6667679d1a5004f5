"""The memory-saving read paths of the stratification step give the same tables as the plain ones:
counts and identities from one set of denominator rows read with projection and predicate pushdown
(``stratify.denominator_results`` + ``counts_and_identities``) equal ``stratified_counts`` and
``strata_identities`` over every column of every member result row."""
import polars as pl

from equity_pipeline import stratify
from equity_pipeline.config import config_from_dict

from .conftest import SETTINGS


def test_counts_and_identities_from_denominator_rows_equal_the_plain_path(generated_bcs):
    _, layout, _ = generated_bcs
    config = config_from_dict(SETTINGS)
    paths = [layout.member_results(m) for m in config.measures]
    full = pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")
    attrs = pl.read_parquet(layout.member_attributes)
    slim = stratify.denominator_results(paths)
    assert slim.height == int(full["in_denominator"].sum()) > 0
    assert set(slim.columns) <= set(stratify.DENOMINATOR_COLUMNS)
    counts, identities = stratify.counts_and_identities(slim, attrs, config.stratifiers, config.intersections)
    want_counts = stratify.stratified_counts(full, attrs, config.stratifiers, config.intersections)
    want_identities = stratify.strata_identities(full, attrs, config.stratifiers, config.intersections)
    assert counts.equals(want_counts, null_equal=True)
    assert identities.equals(want_identities, null_equal=True)
    assert identities.height > 0   # counties add up to rurality classes: there is something to compare
