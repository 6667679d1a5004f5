"""ICD normalisation (``normalize: icd``): trim, '' -> null, upper-case, dots removed, a value of
dots only kept as written. Expected values are worked out by hand from that rule."""
from __future__ import annotations

import polars as pl
import pytest

from equity_pipeline.suites import load_suite
from equity_pipeline.validation.normalize import normalize

CASES = [
    (" e11.9 ", "E119"),   # trimmed, upper-cased, undotted
    ("E119", "E119"),      # no dot: as it is
    ("z79.01", "Z7901"),
    ("a.b.", "AB"),        # every dot removed
    ("...", "..."),        # dots only: kept, so the code rule quarantines it
    (" . ", "."),          # trimmed first, then dots only
    ("é.1", "É1"),         # non-ASCII letters upper-cased too
    ("i10", "I10"),
    ("", None),            # empty -> null
    ("   ", None),
    (None, None),
]


@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
def test_icd_columns_are_normalised_as_the_rule_says(engine: str) -> None:
    suite = load_suite("medical_claims")
    icd = [c.name for c in suite.columns if c.normalize == "icd"]
    assert "diagnosis_code_1" in icd and "procedure_code_1" in icd
    raw = [r for r, _ in CASES]
    frame = pl.DataFrame({c.name: pl.Series(raw if c.name in icd else [None] * len(raw), dtype=pl.String) for c in suite.columns})
    out = normalize(frame.lazy(), suite).collect(engine=engine)
    expected = [e for _, e in CASES]
    for name in icd:
        assert out.get_column(name).to_list() == expected, name


MESSY = [" e11.9 ", "E119", "...", " . ", "", "   ", None, " Paid ", "TRUE", " y", "no", "0", "en-us", " ES ", "asku", "123",
         "zh-Hant-TW", "é.1", "\tx\t", "a.b."]


def _one_expression(lf: pl.LazyFrame, suite) -> pl.LazyFrame:
    """The rule as one expression per column (trim, '' -> null, the column's normalisation): what the
    staged :func:`normalize` must give, value for value."""
    from equity_pipeline.validation.normalize import _normalise

    exprs = []
    for spec in suite.columns:
        col = pl.col(spec.name).str.strip_chars()
        exprs.append(_normalise(pl.when(col.str.len_bytes() > 0).then(col), spec.normalize).alias(spec.name))
    return lf.with_columns(exprs)


@pytest.mark.parametrize("table", ["members", "enrollment", "medical_claims", "pharmacy_claims", "sdoh_screenings",
                                   "clinical_observations", "providers"])
def test_staged_normalisation_equals_the_one_expression_rule(table: str) -> None:
    suite = load_suite(table)
    assert {c.normalize for c in suite.columns} <= {None, "upper", "lower", "icd", "boolean", "bcp47"}
    frame = pl.DataFrame({c.name: pl.Series(MESSY[i % len(MESSY):] + MESSY[: i % len(MESSY)], dtype=pl.String)
                          for i, c in enumerate(suite.columns)})
    want = _one_expression(frame.lazy(), suite).collect()
    for engine in ("in-memory", "streaming"):
        assert normalize(frame.lazy(), suite).collect(engine=engine).equals(want), engine
