"""Small-cell suppression (CMS cell-size policy) with complementary suppression.

Primary: a cell is suppressed when one of its *checked counts* is between 1 and 10
(``MIN_CELL = 11``); zero is publishable. What is checked depends on the rate type: for proportions
the denominator, numerator and complement (denominator - numerator); for event rates the members
and the event count; for cost measures the members (dollars are not counts of people).
Complementary: cells add up along *margins*: the strata of one stratifier sum to the ``overall``
row of the same unit, the state units sum to the population unit, and sub-measure rows (e.g. the
two chlamydia age rows) sum to the measure's ``all`` row. In every margin, a lone
suppressed entry, or suppressed cells whose combined counts are 1-10, could be recovered by
subtraction, so the smallest unsuppressed cells are suppressed too, until no margin leaks. The
procedure repeats until nothing changes, because one margin's extra suppression can open another.

Reasons: ``suppress`` tells which kind a cell is (:data:`PRIMARY_REASON`, :data:`COMPLEMENTARY_REASON`).
That is restricted: a complementary cell is 0 or at least 11, so two hidden cells of a margin whose
sum is published as 12, one primary and one complementary, are 1 and 11. Every public table gives
one reason, :data:`PUBLIC_REASON`, for every suppressed cell (:func:`publishable_reasons`); the
breakdown stays in ``restricted/suppression/`` (:func:`suppression_detail`) and reaches the audit
pack only as counts per table and measure.
"""
from __future__ import annotations

import polars as pl

MIN_CELL = 11
#: reasons ``suppress`` gives (restricted: which kind a suppressed cell is narrows its hidden counts)
PRIMARY_REASON = "small cell (1-10)"
COMPLEMENTARY_REASON = "complementary"
#: the one reason every public table gives every suppressed cell, whatever its kind
PUBLIC_REASON = "cell-size policy"
#: columns nulled on suppressed rows (when present)
HIDDEN_COLUMNS = ("members", "denominator", "numerator", "rate", "ci_lower", "ci_upper", "expected")
#: checked counts per rate type, as expressions over the unsuppressed row
CHECKED: dict[str, tuple[pl.Expr, ...]] = {
    "proportion": (pl.col("denominator"), pl.col("numerator"), pl.col("denominator") - pl.col("numerator")),
    # index stays: members (at most the stays, so a small stay count is a small member count too),
    # readmitted stays and stays not readmitted
    "readmission": (pl.col("members"), pl.col("numerator"), pl.col("denominator") - pl.col("numerator")),
    "event_rate": (pl.col("members"), pl.col("numerator")),
    "cost": (pl.col("members"),),
    "cost_share": (pl.col("members"),),
}


def _small(x: pl.Expr) -> pl.Expr:
    return ((x >= 1) & (x < MIN_CELL)).fill_null(False)


def checked_counts(counts: pl.DataFrame) -> pl.DataFrame:
    """Columns _c0, _c1, _c2: the counts checked for each row (null where not applicable)."""
    kinds = counts["kind"].unique().to_list() if "kind" in counts.columns else ["proportion"]
    kind = pl.col("kind") if "kind" in counts.columns else pl.lit("proportion")
    exprs = []
    for i in range(3):
        e = pl.lit(None, dtype=pl.Float64)
        for k, cols in CHECKED.items():
            if k not in kinds:
                continue
            if i < len(cols):
                e = pl.when(kind == k).then(cols[i].cast(pl.Float64)).otherwise(e)
        exprs.append(e.alias(f"_c{i}"))
    # with_columns, not select: literals keep the frame's height (0 rows stay 0 rows)
    return counts.with_columns(exprs).select(f"_c{i}" for i in range(3))


def primary_flags(counts: pl.DataFrame) -> pl.Series:
    c = checked_counts(counts)
    return c.select(_small(pl.col("_c0")) | _small(pl.col("_c1")) | _small(pl.col("_c2"))).to_series()


def _margins(df: pl.DataFrame) -> list[tuple[list[int], int | None]]:
    """(cell row indices, total row index) for every margin of the table."""
    if "submeasure" not in df.columns:
        df = df.with_columns(submeasure=pl.lit("all"))
    idx = df.with_row_index("_i")
    measure = ["measure_id", "submeasure", "period"]
    margins_spec = [
        # (cells filter, total filter, columns that must match between a cell and its total)
        (pl.col("stratifier") != "overall", pl.col("stratifier") == "overall", [*measure, "unit_level", "unit_id"], "stratifier"),
        (pl.col("unit_level") == "state", pl.col("unit_level") == "population", [*measure, "stratifier", "stratum"], None),
        (pl.col("submeasure") != "all", pl.col("submeasure") == "all", ["measure_id", "period", "unit_level", "unit_id", "stratifier", "stratum"], None),
    ]
    margins = []
    for cell_filter, total_filter, on, extra in margins_spec:
        totals = idx.filter(total_filter).select(*on, _total="_i")
        cells = idx.filter(cell_filter).join(totals, on=on, how="left")
        for _, g in cells.group_by([*on, extra] if extra else on):
            margins.append((sorted(g["_i"].to_list()), g["_total"][0]))
    # group_by/join order varies run to run; the complementary choices depend on the margin order
    return sorted(margins, key=lambda m: (m[0], -1 if m[1] is None else m[1]))


def suppress(counts: pl.DataFrame, extra_margins=()) -> pl.DataFrame:
    """Add ``suppressed`` and ``suppression_reason``; null counts, rates and CIs of suppressed rows.

    The reasons tell primary from complementary cells: keep them restricted, and pass the table
    through :func:`publishable_reasons` before publishing it.

    ``counts`` has measure_id, submeasure, period, unit_level, unit_id, stratifier, stratum, the
    unsuppressed counts and ``kind`` (rate type; proportion when absent). ``extra_margins`` are
    further additive identities of the table as ``(cell row indices, total row index)`` (e.g. the
    strata of a finer stratifier that add up to a stratum of a coarser one; see
    ``stratify.identity_margins``), protected like the built-in margins."""
    checked = checked_counts(counts)
    values = [[v if v is not None else 0.0 for v in checked[f"_c{i}"].to_list()] for i in range(3)]
    primary = primary_flags(counts).to_list()
    suppressed = list(primary)
    reason: list[str | None] = [PRIMARY_REASON if p else None for p in primary]
    margins = _margins(counts) + [(list(cells), total) for cells, total in extra_margins]
    changed = True
    while changed:
        changed = False
        for cells, total in margins:
            entries = cells + ([total] if total is not None else [])
            hidden = [i for i in entries if suppressed[i]]
            if not hidden:
                continue
            hidden_cells = [i for i in cells if suppressed[i]]
            sums = [sum(v[i] for i in hidden_cells) for v in values]
            leaks = len(hidden) == 1 or (total is not None and not suppressed[total] and any(1 <= s < MIN_CELL for s in sums))
            if not leaks:
                continue
            # smallest cells first, but an all-zero cell hides nothing (the hidden sums stay the same): last
            candidates = sorted((i for i in cells if not suppressed[i]),
                                key=lambda i: (all(v[i] == 0 for v in values), values[0][i], i))
            if not candidates and total is not None and not suppressed[total]:
                candidates = [total]
            if candidates:
                pick = candidates[0]
                suppressed[pick], reason[pick] = True, COMPLEMENTARY_REASON
                changed = True
    out = counts.with_columns(
        suppressed=pl.Series(suppressed, dtype=pl.Boolean),
        suppression_reason=pl.Series(reason, dtype=pl.String),
    )
    return out.with_columns([pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in HIDDEN_COLUMNS if c in out.columns])


def publishable_reasons(table: pl.DataFrame) -> pl.DataFrame:
    """``table`` with :data:`PUBLIC_REASON` as the ``suppression_reason`` of every suppressed row and
    null on every published row: a public table must not say which suppressed cells are small and
    which complementary (see the module docstring)."""
    return table.with_columns(suppression_reason=pl.when(pl.col("suppressed")).then(pl.lit(PUBLIC_REASON))
                              .otherwise(pl.lit(None, dtype=pl.String)))


def suppression_detail(table: pl.DataFrame, key: list[str] | tuple[str, ...]) -> pl.DataFrame:
    """The restricted suppression log of a table fresh from :func:`suppress`: ``key`` columns and the
    ``suppression_reason`` (:data:`PRIMARY_REASON` or :data:`COMPLEMENTARY_REASON`) of each
    suppressed row. Written under ``restricted/suppression/``; the audit pack counts it per measure."""
    return table.filter(pl.col("suppressed")).select(*key, pl.col("suppression_reason").cast(pl.String))


def told_reasons(table: pl.DataFrame) -> list[str]:
    """The distinct non-null ``suppression_reason`` values of a table (a public table: at most one)."""
    if "suppression_reason" not in table.columns:
        return []
    return sorted(table["suppression_reason"].drop_nulls().unique().to_list())
