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


CASE_VALUES = ["E119", "e119", "E11.9", "99213", "", None, "institutional", "Medicare", "MEDICARE", "medicare",
               "é1", "É1", "straße", "STRASSE", "ǅemal", "ΣΑΣ", "σας", "ﬁ", "İ", "ı", "Ⅻ", "ⓐ", "ß", "a\u0307",
               "ABC-def", "123-456", "\u00a0x", "x\u3000", "\t", "~!@#$%^&*()_+{}|:<>?`-=[]\\;',./"]


@pytest.mark.parametrize("lower", [False, True])
def test_case_conversion_only_where_it_changes_equals_the_plain_one(lower: bool) -> None:
    """normalize converts the case of only the values that can change (ASCII letters of the other
    case, or any non-ASCII character): the same values as converting every value, here on ASCII,
    non-ASCII and special-casing letters (ß, final sigma, dotted İ, ligatures), digits and symbols."""
    from equity_pipeline.validation.normalize import _cased

    values = pl.Series("v", CASE_VALUES + [chr(c) for c in range(1, 0x250)] + ["a" + chr(c) + "Z" for c in range(0x80, 0x250)], dtype=pl.String)
    plain = values.str.to_lowercase() if lower else values.str.to_uppercase()
    for engine in ("in-memory", "streaming"):
        got = values.to_frame().lazy().select(_cased(pl.col("v"), lower)).collect(engine=engine).get_column("v")
        assert got.equals(plain), engine
    assert (plain != values).sum() > 100   # many values change: the guard is tested both ways
