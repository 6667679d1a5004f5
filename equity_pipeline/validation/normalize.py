"""Normalisation applied before the rules, as declared by each column's ``normalize`` entry."""
from __future__ import annotations

import string

import polars as pl

from equity_pipeline.suites import Suite

_TRUE = ["y", "yes", "true", "t", "1"]
_FALSE = ["n", "no", "false", "f", "0"]


def _cased(col: pl.Expr, lower: bool) -> pl.Expr:
    """``col.str.to_lowercase()`` (``lower``) or ``to_uppercase()``, converting only the values it can
    change: those with an ASCII letter of the other case, or any non-ASCII character (converted as
    the plain function converts them). An ASCII value without such a letter is its own conversion,
    so the result is the same value for value; most code values are already in case, and the test
    is about half the CPU of converting every value (docs/performance.md)."""
    letters = list(string.ascii_uppercase if lower else string.ascii_lowercase)
    converted = col.str.to_lowercase() if lower else col.str.to_uppercase()
    return pl.when(col.str.contains_any(letters) | (col.str.len_chars() != col.str.len_bytes())).then(converted).otherwise(col)


def _normalise(col: pl.Expr, how: str | None) -> pl.Expr:
    """The column's normalisation of an already trimmed, non-empty-or-null text column, in one
    expression (:func:`normalize` runs the same steps in stages, which is cheaper)."""
    if how == "upper":
        return col.str.to_uppercase()
    if how == "lower":
        return col.str.to_lowercase()
    if how == "icd":
        return _undot(col.str.to_uppercase())
    if how == "boolean":
        low = col.str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(pl.lit("true")).when(low.is_in(_FALSE)).then(pl.lit("false")).otherwise(col)
    if how == "bcp47":
        upper = col.str.to_uppercase()
        primary = col.str.extract(r"^([A-Za-z]+)", 1).str.to_lowercase()
        rest = col.str.extract(r"^[A-Za-z]+(-.*)$", 1).fill_null("")
        # no leading letters: keep the text as it is, so the language rule quarantines it (never null it)
        return pl.when(upper.is_in(["ASKU", "UNK"])).then(upper).when(primary.is_null()).then(col).otherwise(primary + rest)
    return col


def _undot(upper: pl.Expr) -> pl.Expr:
    """ICD codes: dots removed (E11.9 -> E119); a value of dots only stays as written, so the code rule
    quarantines it instead of it turning into an empty value no rule sees. Most codes carry no dot and
    stay as they are (normalising the 18 code columns of a million claim lines: 0.54 CPU-s instead
    of 0.70, streaming)."""
    undotted = upper.str.replace_all(".", "", literal=True)
    undot = pl.when(undotted == "").then(upper).otherwise(undotted)
    return pl.when(upper.str.contains(".", literal=True)).then(undot).otherwise(upper)


def normalize(lf: pl.LazyFrame, suite: Suite) -> pl.LazyFrame:
    """Trim every contract column, turn '' into null, then apply the column's normalisation.

    In stages, each reading the columns the previous one wrote: polars does not share a
    subexpression between the branches of a ``when/then``, so the one-expression form
    (:func:`_normalise` of the trimmed text) trimmed every value twice and upper-cased ICD codes
    three times. Staged, the 41 columns of a million claim lines normalise in about 0.8 CPU-s
    instead of 1.3 (the same values; docs/performance.md)."""
    names = [spec.name for spec in suite.columns]
    lf = lf.with_columns(pl.col(n).str.strip_chars() for n in names)
    lf = lf.with_columns(pl.when(pl.col(n).str.len_bytes() > 0).then(pl.col(n)).alias(n) for n in names)  # '' -> null
    cased = [(_cased(pl.col(spec.name), spec.normalize == "lower") if spec.normalize in ("upper", "lower", "icd")
              else _normalise(pl.col(spec.name), spec.normalize)).alias(spec.name)
             for spec in suite.columns if spec.normalize is not None]
    if cased:
        lf = lf.with_columns(cased)
    icd = [_undot(pl.col(spec.name)).alias(spec.name) for spec in suite.columns if spec.normalize == "icd"]
    return lf.with_columns(icd) if icd else lf
