"""Cells the plan tables compute themselves, the margins they add up along, and their suppression.

A *cell* is one row of a plan table before suppression: its coordinates (:data:`COORDS`), its kind
(``proportion``, ``readmission``: stays or visits, ``event_rate``), the counts the CMS cell-size rule
checks (``members``, ``denominator``, ``numerator``; see ``suppression.CHECKED``) and three flags:

* ``publish``: written to the public table. Rows that are only margins (a unit's total of a
  partition, the complement of a share, the part of a region inside one state, states outside the
  program) are kept for suppression and dropped afterwards. An unpublished row that is not
  suppressed is treated as known to the reader, which is the safe assumption.
* ``lock``: ``published`` / ``suppressed`` when the same cell is already in another public table
  (``public/rates``, ``public/completeness``). The plan row then shows exactly what that table
  shows, and suppression works around it: a locked published cell is a known value (it is never
  chosen as a complement), a locked suppressed cell stays hidden.
* ``force``: hidden whatever its counts (e.g. its denominator is the denominator of a suppressed
  rates cell).

Suppression is :func:`equity_pipeline.suppression.suppress` itself (primary 1-10 rule by kind,
complementary suppression until no margin leaks) with every margin of the plan table passed as an
extra margin. Two devices express the flags through margins: a forced row shares a margin with a
synthetic 1-10 row (so it is the complement that must be hidden), and a one-way link "a hidden
implies b hidden" is the margin ``([b, X], a)`` with a synthetic, never-small absorber X.
:func:`unprotected_margins` re-checks the final pattern against the real margins (locked cells as
the other table shows them); the assets report it and block on it.

The ``suppression_reason`` set here says why each cell is hidden (:data:`SMALL_REASON`,
:data:`COMPLEMENTARY`, ``suppressed in public/rates``, ``denominator suppressed in public/rates
(X)``, ...). That is restricted, as in ``suppression``: a complementary cell is 0 or at least 11, so
the kinds narrow the hidden counts. The plan tables publish ``suppression.PUBLIC_REASON`` on every
suppressed row (``suppression.publishable_reasons``); the reasons go to
``restricted/suppression/state_metrics.parquet`` and ``hospital_metrics.parquet``.
"""
from __future__ import annotations

import polars as pl

from equity_pipeline.suppression import COMPLEMENTARY_REASON, MIN_CELL, PRIMARY_REASON, checked_counts, suppress

COORDS = ["family", "submeasure", "unit_level", "unit_id", "payer", "stratifier", "stratum"]
COUNT_COLUMNS = ["members", "denominator", "numerator"]
OVERALL, ALL = "overall", "all"
Margin = tuple[list[int], int | None]
#: restricted reasons (see the module docstring): never in a public table
SMALL_REASON = PRIMARY_REASON
COMPLEMENTARY = COMPLEMENTARY_REASON


def cell_frame(rows: list[dict] | pl.DataFrame) -> pl.DataFrame:
    """Rows with the cell columns and their types (missing flags default to publish, unlocked, unforced)."""
    frame = pl.DataFrame(rows) if isinstance(rows, list) else rows
    defaults = {"publish": pl.lit(True), "lock": pl.lit(None, pl.String), "lock_reason": pl.lit(None, pl.String),
                "force": pl.lit(False), "force_reason": pl.lit(None, pl.String), "members": pl.lit(None, pl.Float64)}
    frame = frame.with_columns(v.alias(k) for k, v in defaults.items() if k not in frame.columns)
    return frame.with_columns(
        *[pl.col(c).cast(pl.String) for c in COORDS], pl.col("kind").cast(pl.String),
        *[pl.col(c).cast(pl.Float64) for c in COUNT_COLUMNS],
        pl.col("publish").cast(pl.Boolean), pl.col("force").cast(pl.Boolean).fill_null(False),
        pl.col("lock").cast(pl.String), pl.col("lock_reason").cast(pl.String), pl.col("force_reason").cast(pl.String),
    )


# ------------------------------------------------------------------------------------------ margins
def _group_margins(cells: pl.DataFrame, cell_filter: pl.Expr, total_filter: pl.Expr, on: list[str],
                   by: list[str] = ()) -> list[Margin]:
    idx = cells.with_row_index("_i")
    totals = idx.filter(total_filter).select(*on, _total="_i")
    members = idx.filter(cell_filter)
    if members.height == 0:
        return []
    grouped = (members.join(totals, on=on, how="left").group_by([*on, *by])
               .agg(cells=pl.col("_i").sort(), total=pl.col("_total").first()))
    return sorted(((c, t) for c, t in zip(grouped["cells"].to_list(), grouped["total"].to_list())),
                  key=lambda m: (m[0], -1 if m[1] is None else m[1]))


def partition_margins(cells: pl.DataFrame) -> list[Margin]:
    """The strata of each stratifier add up to the ``overall`` row of the same family x unit x payer."""
    return _group_margins(cells, pl.col("stratifier") != OVERALL, pl.col("stratifier") == OVERALL,
                          ["family", "submeasure", "unit_level", "unit_id", "payer"], ["stratifier"])


def unit_margins(cells: pl.DataFrame, part: str = "state", whole: str = "population") -> list[Margin]:
    """``part`` units (every state, Unknown included) add up to the ``whole`` unit."""
    return _group_margins(cells, pl.col("unit_level") == part, pl.col("unit_level") == whole,
                          ["family", "submeasure", "payer", "stratifier", "stratum"])


def payer_margins(cells: pl.DataFrame) -> list[Margin]:
    """Payer groups (each member in one: the stratification payer rule) add up to the all-payer row."""
    return _group_margins(cells, pl.col("payer") != ALL, pl.col("payer") == ALL,
                          ["family", "submeasure", "unit_level", "unit_id", "stratifier", "stratum"])


REGION, REGION_PART, STATE_REST = "region", "region_part", "state_rest"


def region_margins(cells: pl.DataFrame) -> list[Margin]:
    """Regions may cross state lines, so each region is the sum of its parts in each state
    (``region_part`` units ``"<region> | <state>"``), and each state the sum of the region parts inside
    it and its rest (``state_rest``): region and state cells are linked through these hidden rows."""
    if not cells.filter(pl.col("unit_level") == REGION_PART).height:
        return []
    parts = cells.with_columns(
        _region=pl.when(pl.col("unit_level") == REGION_PART).then(pl.col("unit_id").str.split(" | ").list.first())
        .when(pl.col("unit_level") == REGION).then(pl.col("unit_id")),
        _state=pl.when(pl.col("unit_level") == REGION_PART).then(pl.col("unit_id").str.split(" | ").list.last())
        .when(pl.col("unit_level").is_in(["state", STATE_REST])).then(pl.col("unit_id")),
    )
    key = ["family", "submeasure", "payer", "stratifier", "stratum"]
    return (_group_margins(parts, pl.col("unit_level") == REGION_PART, pl.col("unit_level") == REGION, [*key, "_region"])
            + _group_margins(parts, pl.col("unit_level").is_in([REGION_PART, STATE_REST]), pl.col("unit_level") == "state",
                             [*key, "_state"]))


def identity_margins(cells: pl.DataFrame, labels: pl.DataFrame, key: list[str],
                     columns: dict[str, tuple[str, str]]) -> list[Margin]:
    """Additive identities between strata of *different* stratifiers found in the data.

    ``labels`` has one row per counted member and ``key`` (coordinates shared by the cells, e.g.
    submeasure, unit_level, unit_id, payer), with one column per labelled stratifier; ``columns`` maps
    each label column to the (family, stratifier) of the cells it labels. A stratum ``t`` of T equals
    the sum of the strata ``s`` of S when every member of ``t`` is in an ``s`` lying wholly inside
    ``t`` (the rule of ``stratify.strata_identities``: coincidences in small populations count, as
    absent strata are known zeros); such identities are margins like strata -> overall."""
    names = list(columns)
    if len(names) < 2 or labels.height == 0:
        return []
    # ``labels`` may also be label cells: one row per label combination with its member count ``n``
    # (:func:`label_cells`); only counts and distinct labels are read, so both give the same margins
    weight = pl.col("n").sum() if "n" in labels.columns else pl.len()
    rows = cells.with_row_index("_i").select("_i", *COORDS)
    out: list[Margin] = []
    for inner in names:
        others = [c for c in names if c != inner]
        per_s = labels.group_by(*key, inner).agg(
            n=weight, *[pl.col(o).n_unique().alias(f"_u_{o}") for o in others], *[pl.col(o).first().alias(f"_f_{o}") for o in others])
        for outer in others:
            totals = labels.group_by(*key, outer).agg(total=weight)
            exact = (per_s.filter(pl.col(f"_u_{outer}") == 1)
                     .group_by(*key, pl.col(f"_f_{outer}").alias(outer)).agg(covered=pl.col("n").sum(), strata=pl.col(inner).sort())
                     .join(totals, on=[*key, outer]).filter(pl.col("covered") == pl.col("total")))
            if not exact.height:
                continue
            (f_out, s_out), (f_in, s_in) = columns[outer], columns[inner]
            exact = exact.with_row_index("_id")
            total_rows = exact.join(rows.filter((pl.col("family") == f_out) & (pl.col("stratifier") == s_out)),
                                    left_on=[*key, outer], right_on=[*key, "stratum"], how="inner").select("_id", _total="_i")
            cell_rows = (exact.explode("strata").join(rows.filter((pl.col("family") == f_in) & (pl.col("stratifier") == s_in)),
                                                      left_on=[*key, "strata"], right_on=[*key, "stratum"], how="inner")
                         .group_by("_id").agg(cells=pl.col("_i").sort(), n=pl.len()))
            joined = cell_rows.join(total_rows, on="_id").join(exact.select("_id", k=pl.col("strata").list.len()), on="_id")
            out += [(c, t) for c, t, n, k in zip(joined["cells"].to_list(), joined["_total"].to_list(),
                                                  joined["n"].to_list(), joined["k"].to_list()) if n == k]
    return sorted(out, key=lambda m: (m[0], m[1]))


def label_cells(labels: pl.DataFrame) -> pl.DataFrame:
    """Member-level labels -> members counted per label combination (column ``n``, no ids): what
    :func:`identity_margins` reads, and additive over disjoint sets of members."""
    keys = [c for c in labels.columns if c != "member_id"]
    return labels.group_by(keys).agg(n=pl.len()).sort(keys, nulls_last=True)


def sum_label_cells(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """:func:`label_cells` of disjoint sets of members added up per label combination."""
    stacked = pl.concat(frames, how="diagonal_relaxed")
    keys = [c for c in stacked.columns if c != "n"]
    return stacked.group_by(keys).agg(pl.col("n").sum()).sort(keys, nulls_last=True)


def sum_counts(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Cell counts (``members``, ``numerator``, ``denominator``) of disjoint sets of members added up
    per every other column (coordinates and cell attributes)."""
    stacked = pl.concat(frames, how="diagonal_relaxed")
    keys = [c for c in stacked.columns if c not in COUNT_COLUMNS]
    return stacked.group_by(keys, maintain_order=True).agg(pl.col(c).sum() for c in COUNT_COLUMNS).select(stacked.columns)


# ------------------------------------------------------------------------------------------ suppression
def _checked(cells: pl.DataFrame) -> list[list[float]]:
    c = checked_counts(cells.select("kind", *COUNT_COLUMNS))
    return [[0.0 if v is None else v for v in c[f"_c{i}"].to_list()] for i in range(3)]


def _propagate_locks(lock: list[str | None], margins: list[Margin]) -> list[str | None]:
    """A margin with a single cell says the cell *is* its total (e.g. a state wholly inside one
    region, two strata with the same members): a lock on one side holds for the other."""
    lock = list(lock)
    changed = True
    while changed:
        changed = False
        for members, total in margins:
            if total is None or len(members) != 1:
                continue
            a = members[0]
            if lock[a] and not lock[total]:
                lock[total], changed = lock[a], True
            elif lock[total] and not lock[a]:
                lock[a], changed = lock[total], True
    return lock


def suppress_cells(cells: pl.DataFrame, margins: list[Margin], links: list[tuple[int, int]] = ()) -> tuple[pl.DataFrame, int]:
    """``cells`` plus ``suppressed`` and the restricted ``suppression_reason`` (counts are not nulled here), and the
    number of locked published cells the algorithm wanted hidden (0 expected: they stay shown, and
    :func:`unprotected_margins` says whether that left anything recoverable).

    ``margins`` are ``(cell row indices, total row index or None)`` over ``cells``; ``links`` are
    one-way ``(a, b)``: when a is hidden, b is hidden too."""
    n = cells.height
    if n == 0:
        return cells.with_columns(suppressed=pl.lit(False), suppression_reason=pl.lit(None, pl.String)), 0
    lock = _propagate_locks(cells["lock"].to_list(), margins)
    known = {i for i, v in enumerate(lock) if v == "published"}
    forced = [i for i, (v, f) in enumerate(zip(lock, cells["force"].to_list())) if v == "suppressed" or f]
    extra: list[Margin] = [([i for i in c if i not in known], t) for c, t in margins]
    extra = [(c, t) for c, t in extra if c]
    synthetic = []
    if forced:
        dummy = n + len(synthetic)
        synthetic.append({"kind": "proportion", "members": 1.0, "denominator": 1.0, "numerator": 0.0})
        extra += [([i, dummy], None) for i in forced]
    for a, b in links:
        absorber = n + len(synthetic)
        synthetic.append({"kind": "proportion", "members": 1e15, "denominator": 2e15, "numerator": 1e15})
        extra.append(([b, absorber], a))
    frame = pl.concat([
        cells.select("kind", *COUNT_COLUMNS),
        pl.DataFrame(synthetic, schema={"kind": pl.String, "members": pl.Float64, "denominator": pl.Float64, "numerator": pl.Float64}),
    ]).with_columns(measure_id=pl.lit("plan"), submeasure=pl.lit(ALL), period=pl.lit(""), unit_level=pl.lit("cell"),
                    unit_id=pl.lit(""), stratifier=pl.lit(OVERALL), stratum=pl.lit(""))
    # the built-in margins of ``suppress`` are empty for this neutral frame: every margin is ``extra``
    result = suppress(frame, extra).head(n)
    suppressed, reason = result["suppressed"].to_list(), result["suppression_reason"].to_list()
    conflicts = 0
    lock_reasons, force_reasons = cells["lock_reason"].to_list(), cells["force_reason"].to_list()
    for i in range(n):
        if lock[i] == "published":
            conflicts += int(suppressed[i])
            suppressed[i], reason[i] = False, None
        elif lock[i] == "suppressed":
            suppressed[i], reason[i] = True, lock_reasons[i] or reason[i] or "identical to a suppressed cell"
        elif i in forced and reason[i] == COMPLEMENTARY and force_reasons[i]:
            reason[i] = force_reasons[i]
    return cells.with_columns(suppressed=pl.Series(suppressed, dtype=pl.Boolean),
                              suppression_reason=pl.Series(reason, dtype=pl.String)), conflicts


def _leaking(cells: pl.DataFrame, margins: list[Margin]) -> list[int]:
    """Indices of the margins in which a hidden cell can be recovered by subtraction."""
    values = _checked(cells)
    hidden_flag = cells["suppressed"].to_list()
    bad = []
    for k, (members, total) in enumerate(margins):
        entries = members + ([total] if total is not None else [])
        hidden = [i for i in entries if hidden_flag[i]]
        if not hidden:
            continue
        hidden_cells = [i for i in members if hidden_flag[i]]
        sums = [sum(v[i] for i in hidden_cells) for v in values]
        if len(hidden) == 1 or (total is not None and not hidden_flag[total] and any(1 <= s < MIN_CELL for s in sums)):
            bad.append(k)
    return bad


def unprotected_margins(cells: pl.DataFrame, margins: list[Margin]) -> int:
    """Margins in which a hidden cell can be recovered by subtraction (must be 0): exactly one hidden
    entry, or a shown total whose hidden cells add up to 1-10 in some checked count. ``cells`` carries
    the final ``suppressed`` flags and the true counts; cells locked to another table count as that
    table shows them."""
    return len(_leaking(cells, margins))


def protect(cells: pl.DataFrame, margins: list[Margin], links: list[tuple[int, int]] = (), rounds: int = 10) -> tuple[pl.DataFrame, int]:
    """:func:`suppress_cells`, then repair: where a margin still leaks (a locked cell the algorithm
    would have hidden stays shown), hide the smallest shown unlocked cell of that margin and run
    again, up to ``rounds`` times. Returns the cells and the lock conflicts of the last run."""
    work = cells
    for _ in range(rounds):
        out, conflicts = suppress_cells(work, margins, links)
        bad = _leaking(out, margins)
        if not bad:
            return out, conflicts
        values, flags, lock = _checked(out)[0], out["suppressed"].to_list(), out["lock"].to_list()
        picks = set()
        for k in bad:
            members, total = margins[k]
            shown = [i for i in [*members, *([total] if total is not None else [])] if not flags[i] and lock[i] is None]
            if shown:
                picks.add(min(shown, key=lambda i: (values[i], i)))
        if not picks:
            return out, conflicts
        force = work["force"].to_list()
        for i in picks:
            force[i] = True
        work = work.with_columns(force=pl.Series(force, dtype=pl.Boolean))
    return out, conflicts


def small_published(cells: pl.DataFrame) -> int:
    """Published, unsuppressed rows with a checked count of 1-10 (must be 0)."""
    shown = cells.filter(pl.col("publish") & ~pl.col("suppressed"))
    if not shown.height:
        return 0
    c = checked_counts(shown.select("kind", *COUNT_COLUMNS))
    return int(c.select(pl.any_horizontal([((pl.col(f"_c{i}") >= 1) & (pl.col(f"_c{i}") < MIN_CELL)).fill_null(False)
                                            for i in range(3)]).sum()).item())
