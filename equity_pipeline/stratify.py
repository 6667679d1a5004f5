"""Member-level measure results -> counts by reporting unit x stratifier x stratum -> public rates.

Reporting units: ``population`` (everyone, unit_id ``all``) and ``state`` (state of residence from
the county FIPS; members without a valid county are the state unit ``Unknown``, so the state units
always add up to the population). Every stratifier partitions the members completely: Unknown and
Declined are strata of their own and never dropped. Each unit also has its whole-population row,
``stratifier = overall``, ``stratum = all``. Two-way intersections ``"a x b"`` (stratum ``"A | B"``)
are stratifiers too. The stratifiers and their rules: :mod:`equity_pipeline.attributes` and
docs/stratification.md.
"""
from __future__ import annotations

import polars as pl

from equity_pipeline import attributes as attr
from equity_pipeline.measures.spec import MeasureSpec
from equity_pipeline.parallel import ordered_map
from equity_pipeline.periods import as_period
from equity_pipeline.standards.geography import county_names, state_postal_by_fips
from equity_pipeline.standards.language import language_strata
from equity_pipeline.standards.race_ethnicity import UNKNOWN, race_ethnicity_stratum
from equity_pipeline.standards.sdoh import CORE_DOMAINS
from equity_pipeline.stats.proportions import wilson_interval
from equity_pipeline.stats.rates import event_rate
from equity_pipeline.suppression import publishable_reasons, suppress

#: stratifier name -> member attribute column it reads (the column has the stratifier's name)
STRATIFIERS: dict[str, str] = {
    name: name
    for name in (
        "race_ethnicity", "ethnicity", *[f"race_aic_{k}" for k in attr.AIC_CATEGORIES], "language", "lep",
        "county", "rurality", "svi_quintile", "region", "payer", "line_of_business", "dual_status", "sex",
        "age_band", "disability", "sdoh_need", *[f"sdoh_need_{d}" for d in CORE_DOMAINS],
    )
}
#: used when the program config names none: the REL, geography, coverage, demographic and social-need
#: stratifiers most equity plans ask for. Opt-in (each adds counting, suppression, disparity and report
#: time): the alone-or-in-combination race stratifiers, line of business, dual status (``payer``
#: already has the dual stratum), disability (where the members table carries it), per-domain SDOH
#: needs and regions.
DEFAULT_STRATIFIERS: tuple[str, ...] = (
    "race_ethnicity", "ethnicity", "language", "lep", "county", "rurality", "svi_quintile", "payer", "sex",
    "age_band", "sdoh_need",
)
#: ordered stratifiers: strata from most disadvantaged (order 1) to most advantaged, for the ordered
#: summary measures (SII, RII, concentration indices)
ORDERED_STRATIFIERS: dict[str, tuple[str, ...]] = {"svi_quintile": tuple(reversed(attr.SVI_QUINTILES))}
INTERSECTION_SEPARATOR = " x "
STRATUM_SEPARATOR = " | "
KEY = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum"]
RATES_COLUMNS = [
    "measure_id", "measure_title", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum",
    "members", "denominator", "numerator", "rate", "ci_lower", "ci_upper", "rate_type", "rate_per", "suppressed",
    "suppression_reason", "data_source", "direction",
]
#: additive sums kept in the (restricted) counts so partitions combine exactly and CIs of ratio
#: measures can be recomputed after combining
SUMS = ("members", "denominator", "numerator", "sum_num_sq", "sum_num_den", "sum_den_sq")


def intersection_name(a: str, b: str) -> str:
    """Stratifier name of a two-way intersection: ``race_ethnicity x rurality``."""
    return f"{a}{INTERSECTION_SEPARATOR}{b}"


def known_strata(stratifier: str, *, age_bands: tuple[int, ...] = attr.DEFAULT_AGE_BANDS,
                 regions: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...] | None:
    """Every possible stratum of a fixed-vocabulary stratifier (None for open ones: language, county,
    line of business, intersections). Used to check a named reference group in the config."""
    from equity_pipeline.standards.race_ethnicity import DECLINED, RACE_ETHNICITY_STRATA

    missing = (DECLINED, UNKNOWN)
    if stratifier.startswith("race_aic_") and stratifier[9:] in attr.AIC_CATEGORIES:
        label = attr.CATEGORY_LABELS[attr.AIC_CATEGORIES[stratifier[9:]]]
        return (f"{label} alone or in combination", f"Not {label}", *missing)
    if stratifier.startswith("sdoh_need_"):
        return (attr.POSITIVE, attr.NEGATIVE, DECLINED, attr.NOT_SCREENED)
    fixed = {
        "race_ethnicity": RACE_ETHNICITY_STRATA,
        "ethnicity": (attr.HISPANIC, attr.NOT_HISPANIC, *missing),
        "lep": (attr.LEP, attr.ENGLISH_PROFICIENT, *missing),
        "rurality": (attr.METRO, attr.NONMETRO_URBAN, attr.NONMETRO_RURAL, UNKNOWN),
        "svi_quintile": (*attr.SVI_QUINTILES, UNKNOWN),
        "region": (*(regions or {}), attr.NO_REGION, UNKNOWN),
        "payer": (*attr.PAYERS, attr.DUAL, UNKNOWN),
        "dual_status": ("full", "partial", attr.DUAL_LEVEL_NOT_REPORTED, attr.NOT_DUAL, UNKNOWN),
        "sex": (*attr.SEX_LABELS.values(), UNKNOWN),
        "age_band": (*attr.age_band_labels(tuple(age_bands)), UNKNOWN),
        "sdoh_need": (attr.NEED, attr.NO_NEED, DECLINED, attr.NOT_SCREENED),
    }
    return fixed.get(stratifier)


def is_unknown_stratum(stratum: str) -> bool:
    """Unknown, Declined, Not screened, or an intersection stratum with such a part."""
    return any(part in attr.UNKNOWN_STRATA for part in stratum.split(STRATUM_SEPARATOR))


def _column(m: pl.DataFrame, name: str, dtype=pl.String) -> pl.Expr:
    """A members column, or nulls when the (optional) column is absent from this frame."""
    return pl.col(name) if name in m.columns else pl.lit(None, dtype=dtype)


def member_attributes(members: pl.LazyFrame, year: int, *, enrollment: pl.LazyFrame | None = None,
                      screenings: pl.LazyFrame | None = None, age_bands: tuple[int, ...] = attr.DEFAULT_AGE_BANDS,
                      regions: dict[str, tuple[str, ...]] | None = None) -> pl.DataFrame:
    """member_id, ``state`` (the state unit) and one stratum label per stratifier in :data:`STRATIFIERS`.

    ``year`` is the measurement year (calendar-year period) or a ``periods.MeasurementPeriod`` (a
    rolling period): ages at its end, enrollment and screenings within it, counties valid in the
    year of its end. Without ``enrollment`` the coverage stratifiers are Unknown; without
    ``screenings`` the SDOH ones are Not screened. Optional members columns may be absent.
    """
    wanted = ("member_id", "race_ethnicity_codes", "language", "interpreter_needed", "county_fips", "sex", "birth_date", "disability")
    m = members.select(c for c in wanted if c in members.collect_schema().names()).collect()
    period = as_period(year)  # a measurement year or a (rolling) MeasurementPeriod
    names = county_names(period.year)
    states = state_postal_by_fips()
    fips = _column(m, "county_fips")
    county_ok = fips.is_in(list(names)).fill_null(False)
    context = attr.county_context()
    codes = _column(m, "race_ethnicity_codes")
    race = {"race_ethnicity": race_ethnicity_stratum(codes), "ethnicity": attr.ethnicity_stratum(codes),
            **{f"race_aic_{k}": attr.race_aic_stratum(codes, cat) for k, cat in attr.AIC_CATEGORIES.items()}}
    if "race_ethnicity_codes" in m.columns:
        # row-wise functions of one code list, of which members share a few hundred: computed once per
        # distinct list and joined back (a join, not the list parsing, per member)
        lookup = m.select("race_ethnicity_codes").unique().with_columns(**race)
        m = m.join(lookup, on="race_ethnicity_codes", how="left", nulls_equal=True, maintain_order="left")
        race = {name: pl.col(name) for name in race}
    out = m.select(
        "member_id",
        **race,
        language=language_strata(m["language"] if "language" in m.columns else pl.Series("language", [None] * m.height, pl.String)),
        lep=attr.lep_stratum(_column(m, "language"), _column(m, "interpreter_needed", pl.Boolean)),
        county=pl.when(county_ok).then(fips).otherwise(pl.lit(UNKNOWN)),
        state=pl.when(county_ok).then(fips.str.slice(0, 2).replace_strict(states, default=UNKNOWN)).otherwise(pl.lit(UNKNOWN)),
        sex=attr.sex_stratum(_column(m, "sex")),
        disability=attr.disability_stratum(_column(m, "disability", pl.Boolean)),
        age_band=attr.age_band_stratum(_column(m, "birth_date", pl.Date), period.end, tuple(age_bands)),
        _valid_county=pl.when(county_ok).then(fips),
    ).join(context, left_on="_valid_county", right_on="county_fips", how="left")
    out = out.with_columns(
        rurality=attr.rurality_stratum(pl.col("rucc_2013")),
        svi_quintile=attr.svi_quintile_stratum(pl.col("svi_2018_rpl_themes")),
        region=attr.region_stratum(pl.col("_valid_county"), regions),
    ).drop("_valid_county", "rucc_2013", "svi_2018_rpl_themes")
    coverage = attr.coverage_attributes(enrollment, period) if enrollment is not None else None
    sdoh = attr.sdoh_attributes(screenings, period) if screenings is not None else None
    for extra, columns, missing in ((coverage, ("payer", "line_of_business", "dual_status"), UNKNOWN),
                                    (sdoh, ("sdoh_need", *[f"sdoh_need_{d}" for d in CORE_DOMAINS]), attr.NOT_SCREENED)):
        if extra is not None:
            out = out.join(extra, on="member_id", how="left")
        else:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in columns)
        out = out.with_columns(pl.col(c).fill_null(missing) for c in columns)
    return out.select("member_id", "state", *STRATIFIERS.values()).sort("member_id")  # joins do not keep row order


def stratum_expr(stratifier: str) -> pl.Expr:
    """The stratum label of a stratifier over a member-attributes frame (intersections joined by `` | ``)."""
    if INTERSECTION_SEPARATOR in stratifier:
        a, b = stratifier.split(INTERSECTION_SEPARATOR)
        return pl.concat_str([pl.col(STRATIFIERS[a]), pl.col(STRATIFIERS[b])], separator=STRATUM_SEPARATOR)
    return pl.col(STRATIFIERS[stratifier])


def all_stratifiers(stratifiers=DEFAULT_STRATIFIERS, intersections=()) -> tuple[str, ...]:
    """The configured stratifiers followed by the intersection stratifiers ``"a x b"``."""
    return (*stratifiers, *(intersection_name(a, b) for a, b in intersections))


#: the member-level result columns the counts read (stratified, imputed and standardised)
DENOMINATOR_COLUMNS = ("member_id", "member_key", "measure_id", "measure_version", "submeasure", "period", "age", "in_denominator",
                       "numerator_value", "denominator_value", "expected_value")

#: the column of a member-level results file holding each member's key: the position of its member id
#: among the members table's sorted ids (``pipeline.evaluate_measure``); read as a hint of the
#: member's row in the attributes (:meth:`MemberIndex.position`), which check it
MEMBER_KEY = "member_key"


def denominator_scan(path) -> pl.LazyFrame:
    """The denominator rows of one member-level result file, only the columns the counts read
    (:data:`DENOMINATOR_COLUMNS` present in it), not read yet (projection and predicate pushdown)."""
    lf = pl.scan_parquet(path)
    names = lf.collect_schema().names()
    return lf.select(c for c in DENOMINATOR_COLUMNS if c in names).filter(pl.col("in_denominator"))


def denominator_results(paths) -> pl.DataFrame:
    """:func:`denominator_scan` of each file, read and concatenated diagonally in the order given: all
    the counts need of the results (memory)."""
    return pl.concat([denominator_scan(path).collect() for path in paths], how="diagonal_relaxed")


#: member-level result columns the counts read (besides the strata): keys and the summed values
_COUNTED_RESULT_COLUMNS = ("member_id", MEMBER_KEY, "measure_id", "measure_version", "submeasure", "period",
                           "numerator_value", "denominator_value", "expected_value")


class _Coded:
    """The member attributes as small integer codes, for counting: ``frame`` holds member_id, ``_state``
    and one UInt32 column per stratifier (``_0``, ``_1``, ... in the order of ``names``; an
    intersection's code numbers its distinct ``A | B`` labels); ``labels[col]`` decodes a code
    (code i -> label i, labels sorted). ``missing[col]`` is the code of a member absent from the
    attributes (Unknown everywhere, as ``fill_null(UNKNOWN)`` on the labels gives). ``index``
    finds members' rows of ``frame`` by position (:class:`MemberIndex`), or is None.

    Grouping on these codes makes the same groups as grouping on the labels (one code per distinct
    label), with far less hashing; the row order, and so the order of every sum, is unchanged."""

    def __init__(self, attributes: pl.DataFrame, names: tuple[str, ...]):
        used = sorted({STRATIFIERS[part] for s in names for part in s.split(INTERSECTION_SEPARATOR)})
        a = attributes.select("member_id", *(c for c in ("state", *used) if c != "member_id"))
        # one extra row: the member without attributes (every label Unknown)
        a = pl.concat([a, pl.DataFrame({c: [UNKNOWN] for c in ("state", *used)}, schema={c: a.schema[c] for c in ("state", *used)})],
                      how="diagonal").with_columns(pl.col(c).fill_null(UNKNOWN) for c in ("state", *used))
        self.names = names
        self.cols = [f"_{i}" for i in range(len(names))]
        labelled = a.select("member_id", _state=pl.col("state"), **{c: stratum_expr(n) for c, n in zip(self.cols, names)})
        self.labels: dict[str, pl.Series] = {}
        coded = {}
        for c in ("_state", *self.cols):
            # codes 0..k-1 in label order (the dense rank minus one), so labels[code] decodes
            self.labels[c] = labelled.get_column(c).unique().sort()
            coded[c] = _sorted_codes(pl.col(c), self.labels[c])
        frame = labelled.select("member_id", **coded)
        self.missing = frame.row(frame.height - 1, named=True)
        self.frame = frame.slice(0, frame.height - 1)
        self.index = MemberIndex.of(self.frame)
        if self.index is not None:
            self.frame = self.index.frame


def _sorted_codes(column: pl.Expr, labels: pl.Series) -> pl.Expr:
    """UInt32 code of each value of ``column``: its position in ``labels`` (sorted, distinct, no nulls,
    holding every value): the dense rank minus one, found by lookup instead of a sort."""
    if labels.dtype == pl.String and labels.null_count() == 0:
        return column.cast(pl.Enum(labels)).to_physical().cast(pl.UInt32)
    return (column.rank("dense").cast(pl.UInt32) - 1)


class MemberIndex:
    """The rows of a frame sorted by distinct ``member_id`` (attributes, probabilities), found by
    position: a left join on member_id as a binary search and a gather, without the hash table a
    join builds of the whole frame every time. ``position`` is also an integer stand-in for
    member_id that sorts the same way (used for the fixed row order of the counts)."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame
        self.ids = frame.get_column("member_id")

    @classmethod
    def of(cls, frame: pl.DataFrame) -> "MemberIndex | None":
        """The index of ``frame`` (sorted by member_id first if it is not), or None when member_id
        has nulls or repeats (then a join is the right tool) or is not a string column."""
        if frame.schema.get("member_id") != pl.String or frame.get_column("member_id").null_count():
            return None
        if not _strictly_increasing(frame.get_column("member_id")):
            frame = frame.sort("member_id")
            if not _strictly_increasing(frame.get_column("member_id")):
                return None
        return cls(frame)

    def position(self, ids: pl.Series, hint: pl.Series | None = None) -> pl.Series:
        """UInt32 row of each id in the frame, null where absent. ``hint``: a row per id that may be
        its position (the ``member_key`` of a results file: the position among the members table's
        sorted ids, the frame's when it holds the same members); taken when every hinted row holds
        its id (one gather and comparison), else the ids are searched for."""
        n = self.ids.len()
        if n == 0:
            return pl.Series(ids.name, [None] * ids.len(), dtype=pl.UInt32)
        if hint is not None and hint.len() == ids.len() and not hint.null_count() and not ids.null_count():
            hint = hint.cast(pl.UInt32)
            if ids.len() == 0 or (hint.max() < n and bool((self.ids.gather(hint) == ids).all())):
                return hint.alias(ids.name)
        at = self.ids.search_sorted(ids, side="left").cast(pl.UInt32)
        hit = self.ids.gather(at.clip(upper_bound=n - 1)) == ids
        return pl.select(pl.when(hit).then(at)).to_series().alias(ids.name)

    def left_join(self, left: pl.DataFrame, columns: list[str] | None = None, *, position: str | None = None) -> pl.DataFrame:
        """``left.join(frame.select(member_id, columns), on="member_id", how="left")`` in left's row
        order (frame's member ids are distinct, so one row per left row); ``position``: also keep
        the positions in a column of that name. A ``member_key`` column of ``left`` is the hint of
        :meth:`position` (and is not kept)."""
        hint = left.get_column(MEMBER_KEY) if MEMBER_KEY in left.columns else None
        left = left.drop(MEMBER_KEY, strict=False)
        at = self.position(left.get_column("member_id"), hint)
        columns = [c for c in (columns if columns is not None else self.frame.columns) if c != "member_id"]
        out = left.with_columns(self.frame.get_column(c).gather(at) for c in columns)
        return out.with_columns(at.alias(position)) if position else out


def _strictly_increasing(s: pl.Series) -> bool:
    return s.len() < 2 or bool((s.slice(1) > s.slice(0, s.len() - 1)).all())


#: member-level result columns no count reads (dropped before the attributes are joined)
_UNUSED_RESULT_COLUMNS = ("is_excluded", "exclusion_reason", "in_numerator", "evidence_date", "evidence_source")


def own_strings(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with string columns copied into buffers of their own. Polars' string columns are views:
    the keys of a small aggregate can point into the buffers of the member-level frame it was grouped
    from and keep all of it alive while the aggregate is kept."""
    return frame.with_columns(pl.col(c).cast(pl.Categorical).cast(pl.String) for c, t in frame.schema.items() if t == pl.String)


def rolled_up_in_order(base: pl.DataFrame, position: str | None = None) -> pl.DataFrame:
    """Denominator rows ``base`` with their sub-measure rows also rolled up into ``all``, in the fixed
    row order every count sums in (stratified, imputed and standardised counts alike): by measure,
    sub-measure, member, numerator and denominator value. ``position``: a column of ``base`` that
    sorts as member_id does (:meth:`MemberIndex.position`, null for a member not found); when every
    row has one and no two rows share a measure, sub-measure and member, the rows are put in that
    order by one integer sort (the same order: the later keys never decide), else by the sort on
    the columns themselves. The column stays in the result."""
    # age rows (e.g. CHL 16-20 and 21-24) also roll up into the measure's "all" row; measures whose
    # rows are outcomes (SDOH positive by domain) carry their own "all" row already
    has_all = base.filter(pl.col("submeasure") == "all")["measure_id"].unique().to_list()
    base = pl.concat([base, base.filter((pl.col("submeasure") != "all") & ~pl.col("measure_id").is_in(has_all)).with_columns(submeasure=pl.lit("all"))])
    # float addition is not associative and join output order varies run to run: fix the row order and
    # keep it in the group_by so every run sums in the same order (byte-identical public outputs)
    order = _member_order(base, position) if position is not None else None
    if order is IN_ORDER:
        return base
    if order is not None:
        return base.gather(order)
    return base.sort("measure_id", "submeasure", "member_id", "numerator_value", "denominator_value")


#: :func:`_member_order` of rows already in that order (one measure's rows with one sub-measure, as
#: its results file holds them: by member id), that need no sort nor gather
IN_ORDER = pl.Series("in_order", [], dtype=pl.UInt32)


def _member_order(base: pl.DataFrame, position: str) -> pl.Series | None:
    """The row order of ``base`` by (measure_id, submeasure, ``position``) as one packed integer key
    (:data:`IN_ORDER` when the rows are in that order already), or None when it cannot stand for the
    sort on the columns (a null, a repeated key, too many bits)."""
    if base.height == 0 or any(base.schema[c] != pl.String for c in ("measure_id", "submeasure")):
        return None
    if any(base.get_column(c).null_count() for c in ("measure_id", "submeasure", position)):
        return None
    codes, bits = [], 0
    for c in ("measure_id", "submeasure"):
        labels = base.get_column(c).unique().sort()
        width = max(int(labels.len() - 1).bit_length(), 1)
        codes.append((base.select(_sorted_codes(pl.col(c), labels)).to_series().cast(pl.UInt64), width))
        bits += width
    if bits + 32 > 64:
        return None
    (m, mw), (s, sw) = codes
    key = (m * (1 << (sw + 32))) + (s * (1 << 32)) + base.get_column(position).cast(pl.UInt64)
    if _strictly_increasing(key):
        return IN_ORDER   # sorted, no key twice: the order is the rows' own
    order = key.arg_sort()
    ranked = key.gather(order)
    if bool((ranked.slice(1) == ranked.slice(0, ranked.len() - 1)).any()):
        return None   # two rows of one member in one sub-measure: the later sort keys decide, sort on them
    return order


def _denominators(results: pl.DataFrame, attributes: pl.DataFrame, stratifiers: tuple[str, ...],
                  index: "MemberIndex | None" = None, carry: tuple[str, ...] = ()) -> pl.DataFrame:
    """Denominator members with their attribute labels; sub-measure rows also rolled up into ``all``
    (the imputed counts' rows; the stratified counts use :func:`_coded_denominators`, the same rows).
    ``index``: :class:`MemberIndex` of ``attributes`` (found by position instead of a join; made
    here when not given); ``carry``: more columns of ``attributes`` to bring along as they are
    (null for a member not in ``attributes``).

    The member attributes win over result columns of the same name: a measure result's own ``payer``,
    ``line_of_business`` and ``dual_status`` (the payer on the measure's anchor date, duals under
    Medicare) are not the stratifiers of those names (the payer and dual rule of
    docs/stratification.md, duals in their own stratum), and the equity plans lock their payer cells
    to these strata."""
    used = sorted({STRATIFIERS[part] for s in stratifiers for part in s.split(INTERSECTION_SEPARATOR)})
    # only the attributes counted and the result columns summed travel (memory: one row per member x measure)
    attributes = attributes.select(c for c in attributes.columns if c in {"member_id", "state", *used, *carry})
    if index is not None and index.frame.columns != attributes.columns:
        index = MemberIndex(index.frame.select(attributes.columns))
    shadowed = [c for c in attributes.columns if c != "member_id" and c in results.columns]
    unused = [c for c in _UNUSED_RESULT_COLUMNS if c in results.columns]
    rows = results.filter(pl.col("in_denominator")).drop(*shadowed, *unused)
    index = index if index is not None else MemberIndex.of(attributes)
    if index is None:
        base = rows.drop(MEMBER_KEY, strict=False).join(attributes, on="member_id", how="left")
    else:
        base = index.left_join(rows, [c for c in attributes.columns if c != "member_id"], position="_position")
    base = base.with_columns(pl.col(c).fill_null(UNKNOWN) for c in ("state", *used))
    out = rolled_up_in_order(base, "_position" if index is not None else None)
    return out.drop("_position") if index is not None else out


def _coded_denominators(results: pl.DataFrame, coded: _Coded) -> pl.DataFrame:
    """Denominator rows with their strata codes (:class:`_Coded`); sub-measure rows also rolled up into ``all``.

    The member attributes win over result columns of the same name: a measure result's own ``payer``,
    ``line_of_business`` and ``dual_status`` (the payer on the measure's anchor date, duals under
    Medicare) are not the stratifiers of those names (the payer and dual rule of
    docs/stratification.md, duals in their own stratum), and the equity plans lock their payer cells
    to these strata: only the result columns that are counted travel."""
    rows = results.select(c for c in (*_COUNTED_RESULT_COLUMNS, "in_denominator") if c in results.columns)
    # denominator_results reads denominator rows only: nothing to filter then (a copy of every row saved)
    rows = (rows if rows.get_column("in_denominator").all() and not rows.get_column("in_denominator").null_count()
            else rows.filter(pl.col("in_denominator"))).drop("in_denominator")
    if coded.index is None:
        base = rows.drop(MEMBER_KEY, strict=False).join(coded.frame, on="member_id", how="left")
    else:
        base = coded.index.left_join(rows, position="_position")
    base = base.with_columns(pl.col(c).fill_null(coded.missing[c]) for c in ("_state", *coded.cols))
    out = rolled_up_in_order(base, "_position" if coded.index is not None else None)
    return out.drop("_position") if coded.index is not None else out


def _key_codes(base: pl.DataFrame, keys: list[str], name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``base`` with a UInt32 column ``name`` numbering the distinct values of ``keys``, and the table
    of those values (``name`` -> keys)."""
    table = base.select(keys).unique(maintain_order=True).with_row_index(name)
    # keys with one value in ``base`` (one measure's id and period) do not tell the rows apart
    varying = [k for k in keys if table.get_column(k).n_unique() > 1 or table.get_column(k).null_count()]
    if not varying:
        return base.with_columns(pl.lit(0, dtype=pl.UInt32).alias(name)), table
    if len(varying) == 1 and base.schema[varying[0]] == pl.String and table.get_column(varying[0]).null_count() == 0:
        # one text key varies (one measure's sub-measures): its value's position among the distinct
        # values in order of appearance, found by lookup instead of a join (the same numbers)
        key = varying[0]
        return base.with_columns(pl.col(key).cast(pl.Enum(table.get_column(key))).to_physical().cast(pl.UInt32).alias(name)), table
    return base.join(table, on=keys, how="left", nulls_equal=True, maintain_order="left"), table


#: 2^53: integers up to this size, and their sums while below it, are exact in a float64
_EXACT = float(2 ** 53)


def _exact_sums(base: pl.DataFrame) -> bool:
    """Whether every sum :func:`_counts` takes of ``base`` is exact in any order: numerator and
    denominator values integers (no NaN or infinity) small enough that their sums, squares and
    products summed over all rows stay below 2^53, and no expected values. Then the sums of
    collapsed cells equal the sums of the rows bit for bit (the float sums of other measures
    depend on the order polars adds them in, so those are summed from the rows)."""
    if base.height == 0:
        return False
    if "expected_value" in base.columns and base.get_column("expected_value").null_count() < base.height:
        return False
    biggest = []
    for c in ("numerator_value", "denominator_value"):
        values = base.get_column(c)
        if values.dtype.is_integer():
            return False   # integer sums wrap or not as polars decides: keep the row sums
        if not values.dtype.is_float():
            return False
        finite = values.drop_nulls()
        if finite.len() and not bool((finite.is_finite() & (finite == finite.floor())).all()):
            return False
        biggest.append(float(finite.abs().max() or 0.0) if finite.len() else 0.0)
    n = float(base.height)
    return n * max(biggest[0] ** 2, biggest[0] * biggest[1], biggest[1] ** 2, *biggest) < _EXACT


def _collapse(base: pl.DataFrame, group: str, coded: _Coded, aggs: list[pl.Expr]) -> pl.DataFrame:
    """``base`` grouped by ``group`` (a UInt32 code), ``_state`` and every stratum code, with ``aggs``:
    members with the same strata in one row. The codes are packed into one 64-bit key when they fit
    (one hash of an integer per row instead of a row encoding of 13 columns); group order is not kept."""
    cols = ["_state", *coded.cols]
    widths = [max(int(base.get_column(group).max() or 0).bit_length(), 1)]
    widths += [max(int(coded.labels[c].len() - 1).bit_length(), 1) for c in cols]
    if sum(widths) > 64:
        return base.group_by(group, *cols).agg(aggs)
    shifts, at = [], 0
    for w in reversed(widths):
        shifts.append(at)
        at += w
    shifts.reverse()
    key = sum((pl.col(c).cast(pl.UInt64) * pl.lit(1 << sh, dtype=pl.UInt64) for c, sh in zip((group, *cols), shifts)),
              pl.lit(0, dtype=pl.UInt64))
    cells = base.group_by(key.alias("_cell")).agg(aggs)
    packed = cells.get_column("_cell")
    return cells.select(
        *[((packed // (1 << sh)) % (1 << w)).cast(pl.UInt32).alias(c) for c, sh, w in zip((group, *cols), shifts, widths)],
        pl.exclude("_cell"),
    )


def stratified_counts(results: pl.DataFrame, attributes: pl.DataFrame, stratifiers=DEFAULT_STRATIFIERS,
                      intersections=()) -> pl.DataFrame:
    """Unsuppressed denominator and numerator per measure x unit x stratifier x stratum.

    ``intersections`` are pairs of stratifier names; each adds the stratifier ``"a x b"``."""
    coded = _Coded(attributes, all_stratifiers(stratifiers, intersections))
    return _counts(_coded_denominators(results, coded), coded)


def _measure_slices(results: pl.DataFrame) -> list[pl.DataFrame]:
    """The rows of each measure, in measure-id order: zero-copy slices when each measure's rows are
    contiguous (as ``denominator_results`` reads them), otherwise filters."""
    ids = results.get_column("measure_id")
    runs = ids.rle().struct.unnest()   # columns len, value
    measures = sorted(ids.unique().to_list())
    if runs.height == len(measures):
        starts = runs.get_column("len").cum_sum() - runs.get_column("len")
        where = {v: (int(s), int(n)) for v, s, n in zip(runs.get_column("value"), starts, runs.get_column("len"))}
        return [results.slice(*where[m]) for m in measures]
    return [results.filter(pl.col("measure_id") == m) for m in measures]


def counts_and_identities(results: pl.DataFrame, attributes: pl.DataFrame, stratifiers=DEFAULT_STRATIFIERS,
                          intersections=()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`stratified_counts` and :func:`strata_identities`, measure by measure, two at a time at
    most (:func:`~equity_pipeline.parallel.ordered_map`; memory: the denominator rows of those measures
    with their strata, not of all at once).

    Every cell and every identity lies within one measure (``measure_id`` leads both keys), so the
    tables are the concatenations, in measure order, of the per-measure ones, with the identity
    numbers of each measure following those of the measures before it; the rows of a cell are summed
    in the same order as from all measures at once."""
    coded = _Coded(attributes, all_stratifiers(stratifiers, intersections))
    if results.height == 0 or results.get_column("measure_id").null_count():
        base = _coded_denominators(results, coded)
        return _counts(base, coded), _identities(base, coded)

    def one_measure(part: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        base = _coded_denominators(part, coded)
        cells: list[tuple[pl.DataFrame, pl.DataFrame]] = []
        measure_counts = _counts(base, coded, cells_out=cells)
        # the members per cell the counts collapsed to, when they did: the identities group those
        return measure_counts, _identities(base, coded, cells=cells[0] if cells else None)

    counts, identities, offset = [], [], 0
    # measures side by side (parallel.ordered_map: the same tables as one after another)
    for measure_counts, found in ordered_map(one_measure, _measure_slices(results)):
        counts.append(measure_counts)
        identities.append(found.with_columns(pl.col("identity") + pl.lit(offset, dtype=pl.UInt32)))
        offset += found.get_column("identity").n_unique()
    return pl.concat(counts, how="diagonal").sort(KEY), pl.concat(identities).sort("identity", "role", "stratum")


def _counts(base: pl.DataFrame, coded: _Coded, *, cells_out: list | None = None) -> pl.DataFrame:
    """The rows of :func:`stratified_counts` for ``base`` (:func:`_coded_denominators`). ``cells_out``:
    a list that receives, when the sums are exact and the members were collapsed by strata
    (:func:`_collapse`), those cells (``_ik``, ``_state``, the stratum codes, ``n`` members) and the
    table of their keys (``_ik`` -> measure_id, submeasure, period) in the form :func:`_identities`
    takes them (only when ``measure_version`` is constant: the identities' key has no version)."""
    # readmission measures (PCR) carry expected readmissions: O/E of a stratum = numerator / expected
    # (measures.readmission.observed_expected); null for measures without a risk model
    expected = ({"expected": pl.when(pl.col("expected_value").is_not_null().any()).then(pl.col("expected_value").sum())}
                if "expected_value" in base.columns else {})
    # key columns with one value in these rows (one measure at a time: its id, version and period)
    # are not hashed per row: the same groups, in the same order, with the value put back
    constant = {c: base.get_column(c)[0] for c in ("measure_id", "measure_version", "period")
                if base.height and base.get_column(c).n_unique() == 1 and base.get_column(c).null_count() == 0}
    keys = [c for c in ("measure_id", "measure_version", "submeasure", "period") if c not in constant]
    schema = base.schema
    base, key_table = _key_codes(base, keys, "_mk")
    states = coded.labels["_state"]
    n_units = states.len() + 1   # the state codes, then the population unit
    sums = dict(
        members=pl.len().cast(pl.Float64),
        denominator=pl.col("denominator_value").sum(),
        numerator=pl.col("numerator_value").sum(),
        sum_num_sq=(pl.col("numerator_value") ** 2).sum(),
        sum_num_den=(pl.col("numerator_value") * pl.col("denominator_value")).sum(),
        sum_den_sq=(pl.col("denominator_value") ** 2).sum(),
        **expected,
    )
    no_expected = {}
    if _exact_sums(base):
        # integer values (counts of people, events, stays, months): sum members with the same strata
        # once, then the 24 groupings sum those cells (about a tenth of the rows), exactly
        no_expected = {"expected": pl.lit(None, dtype=base.head(0).select(**expected).to_series().dtype)} if expected else {}
        base = _collapse(base, "_mk", coded, [e.alias(name) for name, e in sums.items() if name != "expected"])
        if cells_out is not None and "measure_version" in constant:
            ik = key_table.with_columns(**{c: pl.lit(v, dtype=schema[c]) for c, v in constant.items()})
            cells_out.append((base.select(pl.col("_mk").alias("_ik"), "_state", *coded.cols, n=pl.col("members").cast(pl.UInt32)),
                              ik.select(pl.col("_mk").alias("_ik"), "measure_id", "submeasure", "period")))
        base = base.join(key_table, on="_mk", how="left")
        sums = {name: pl.col(name).sum() for name in SUMS}
    parts = []
    for unit_level in ("population", "state"):
        unit = pl.lit(n_units - 1, dtype=pl.UInt64) if unit_level == "population" else pl.col("_state").cast(pl.UInt64)
        for stratifier, col in zip(("overall", *coded.names), (None, *coded.cols)):
            labels = pl.Series(["all"]) if col is None else coded.labels[col]
            n = labels.len()
            if col is None and unit_level == "population":
                # the measure key's whole-population row: grouped on the key columns as they are, as
                # before (polars sums a group of every row differently by key type: the same bits as before)
                parts.append(
                    base.group_by(*keys, pl.lit(unit_level).alias("unit_level"), pl.lit("all").alias("unit_id"), pl.lit("all").alias("stratum"),
                                  maintain_order=True).agg(**sums)
                    .with_columns(stratifier=pl.lit(stratifier), **{c: pl.lit(v, dtype=schema[c]) for c, v in constant.items()})
                )
                continue
            stratum = pl.lit(0, dtype=pl.UInt64) if col is None else pl.col(col).cast(pl.UInt64)
            # one integer key per measure key x unit x stratum: the groups of the labels, hashed cheaply
            g = base.group_by(((pl.col("_mk").cast(pl.UInt64) * n_units + unit) * n + stratum).alias("_key"), maintain_order=True).agg(**sums)
            key = g.get_column("_key")
            unit_codes = (key // n) % n_units
            g = g.with_columns(
                _mk=(key // (n * n_units)).cast(pl.UInt32),
                unit_level=pl.lit(unit_level),
                unit_id=pl.lit("all") if unit_level == "population" else states.gather(unit_codes),
                stratum=labels.gather(key % n),
                stratifier=pl.lit(stratifier),
                **{c: pl.lit(v, dtype=schema[c]) for c, v in constant.items()},
            ).join(key_table, on="_mk", how="left", maintain_order="left")
            parts.append(g)
    return pl.concat(parts, how="diagonal").with_columns(**no_expected).select(*KEY, *SUMS, *expected).sort(KEY)


IDENTITY_KEY = ["measure_id", "submeasure", "period", "unit_level", "unit_id"]


def strata_identities(results: pl.DataFrame, attributes: pl.DataFrame, stratifiers=DEFAULT_STRATIFIERS,
                      intersections=()) -> pl.DataFrame:
    """Additive identities between the strata of *different* stratifiers, for suppression.

    Within one measure x sub-measure x unit, a stratum ``t`` of stratifier T equals the sum of the
    strata ``s`` of another stratifier S when every denominator member of ``t`` belongs to an ``s``
    all of whose members are in ``t`` (counties add up to a rurality class, SVI quintile or region;
    the ``A | *`` cells of an intersection add up to ``A``; two strata with the same members are
    equal). Published next to each other, such sums would let a suppressed cell be recovered by
    subtraction, so they are margins for suppression like strata -> overall. They are found in the
    data of each measure and unit, not assumed: a coincidence in a small denominator (all of a
    rurality class in one county) is a real identity for whoever reads the table, since absent
    strata are known zeros.

    Columns: IDENTITY_KEY, ``identity`` (id within the key), ``role`` (cell | total), stratifier, stratum.
    """
    coded = _Coded(attributes, all_stratifiers(stratifiers, intersections))
    return _identities(_coded_denominators(results, coded), coded)


def _identities(base: pl.DataFrame, coded: _Coded, *, cells: tuple[pl.DataFrame, pl.DataFrame] | None = None) -> pl.DataFrame:
    """The rows of :func:`strata_identities` for ``base`` (:func:`_coded_denominators`). ``cells``: the
    members of ``base`` already collapsed by strata, and their keys (from :func:`_counts`), used
    instead of collapsing ``base`` again."""
    schema = {**{k: pl.String for k in IDENTITY_KEY}, "identity": pl.UInt32, "role": pl.String, "stratifier": pl.String, "stratum": pl.String}
    codes = coded.cols
    n_units = coded.labels["_state"].len() + 1   # the state codes, then the population unit
    # members with identical strata collapsed, per measure key x unit (_k): the group_bys below are cheap
    if cells is None:
        base, keys = _key_codes(base, ["measure_id", "submeasure", "period"], "_ik")
        by_state = _collapse(base, "_ik", coded, [pl.len().alias("n")])
    else:
        by_state, keys = cells
    framed = pl.concat([
        by_state.group_by("_ik", *codes).agg(pl.col("n").sum()).select((pl.col("_ik").cast(pl.UInt64) * n_units + (n_units - 1)).alias("_k"), *codes, "n"),
        by_state.select((pl.col("_ik").cast(pl.UInt64) * n_units + pl.col("_state")).alias("_k"), *codes, "n"),
    ])
    totals = pl.concat([framed.group_by("_k", c).agg(total=pl.col("n").sum()).select("_k", _outer=pl.lit(j, dtype=pl.UInt32), _t=c, total="total")
                        for j, c in enumerate(codes)])
    candidates = []
    for i, inner in enumerate(codes):
        others = [(j, c) for j, c in enumerate(codes) if j != i]
        # per stratum s of the inner stratifier: its members, and whether they all share one outer
        # stratum (min == max: the codes have no nulls)
        per_s = framed.group_by("_k", inner).agg(
            pl.col("n").sum(), *[pl.col(c).min().alias(f"lo{c}") for _, c in others], *[pl.col(c).max().alias(f"hi{c}") for _, c in others]
        )
        candidates.extend(
            per_s.filter(pl.col(f"lo{c}") == pl.col(f"hi{c}"))
            .select("_k", "n", _inner=pl.lit(i, dtype=pl.UInt32), _outer=pl.lit(j, dtype=pl.UInt32), _t=f"lo{c}", _s=inner)
            for j, c in others
        )
    if not candidates:
        return pl.DataFrame(schema=schema)
    # t is the sum of the strata s when the s lying wholly in t cover all of t's members
    exact = (
        pl.concat(candidates).group_by("_k", "_outer", "_t", "_inner").agg(covered=pl.col("n").sum(), cells=pl.col("_s"))
        .join(totals, on=["_k", "_outer", "_t"]).filter(pl.col("covered") == pl.col("total"))
    )
    if exact.height == 0:
        return pl.DataFrame(schema=schema)
    names = pl.Series(coded.names)
    label_table = pl.concat([pl.DataFrame({"_col": pl.Series([j] * coded.labels[c].len(), dtype=pl.UInt32),
                                           "_code": pl.arange(0, coded.labels[c].len(), dtype=pl.UInt32, eager=True),
                                           "label": coded.labels[c]}) for j, c in enumerate(codes)])
    unit = exact.get_column("_k") % n_units
    found = (
        exact.with_columns(
            _ik=(pl.col("_k") // n_units).cast(pl.UInt32),
            unit_level=pl.when(unit == n_units - 1).then(pl.lit("population")).otherwise(pl.lit("state")),
            unit_id=pl.when(unit == n_units - 1).then(pl.lit("all")).otherwise(coded.labels["_state"].gather(unit.clip(upper_bound=n_units - 2))),
            outer=names.gather(exact.get_column("_outer")), inner=names.gather(exact.get_column("_inner")),
        )
        .join(keys, on="_ik", how="left")
        .join(label_table.rename({"_col": "_outer", "_code": "_t", "label": "t"}), on=["_outer", "_t"], how="left")
        .sort(*IDENTITY_KEY, "outer", "t", "inner").with_row_index("identity")
    )
    totals = found.select(*IDENTITY_KEY, "identity", role=pl.lit("total"), stratifier="outer", stratum="t")
    cells = (found.select(*IDENTITY_KEY, "identity", "_inner", "inner", "cells").explode("cells")
             .join(label_table.rename({"_col": "_inner", "_code": "cells"}), on=["_inner", "cells"], how="left")
             .select(*IDENTITY_KEY, "identity", role=pl.lit("cell"), stratifier="inner", stratum="label"))
    return pl.concat([totals, cells]).select(schema.keys()).cast(schema).sort("identity", "role", "stratum")


def identity_margins(table: pl.DataFrame, identities: pl.DataFrame | None) -> list[tuple[list[int], int]]:
    """``strata_identities`` as ``(cell row indices, total row index)`` of ``table`` (for ``suppress``)."""
    if identities is None or identities.height == 0:
        return []
    rows = table.select(*IDENTITY_KEY, "stratifier", "stratum").with_row_index("_i")
    matched = identities.join(rows, on=[*IDENTITY_KEY, "stratifier", "stratum"], how="inner")
    grouped = matched.group_by("identity").agg(
        cells=pl.col("_i").filter(pl.col("role") == "cell"), total=pl.col("_i").filter(pl.col("role") == "total").first()
    ).filter(pl.col("total").is_not_null()).sort("identity")  # a fixed margin order: the same suppression every run
    return [(cells, total) for cells, total in zip(grouped["cells"].to_list(), grouped["total"].to_list())]


def data_source_of(spec: MeasureSpec, clinical_rows: int) -> str:
    """claims, clinical or hybrid: what the rate actually used (never mixed silently)."""
    sources = set(spec.data_sources)
    if "clinical" in sources and clinical_rows == 0:
        sources.discard("clinical")
    if sources == {"claims"}:
        return "claims"
    if sources == {"clinical"}:
        return "clinical"
    return "hybrid"


def ratio_estimator_se(c: pl.DataFrame) -> pl.Series:
    """Standard error of a ratio estimator sum(y)/sum(m) from member-level sums (linearisation):
    ``sqrt(n/(n-1) * sum (y - r m)^2) / sum(m)``, with the squares expanded into the kept sums."""
    r = c["numerator"] / c["denominator"]
    n = c["members"]
    resid = c["sum_num_sq"] - 2 * r * c["sum_num_den"] + r * r * c["sum_den_sq"]
    return (resid.clip(lower_bound=0) * n / (n - 1).clip(lower_bound=1)).sqrt() / c["denominator"]


def _ratio_ci(c: pl.DataFrame, z: float = 1.959963984540054) -> tuple[pl.Series, pl.Series]:
    """Normal CI of a ratio estimator sum(y)/sum(m) from member-level sums (linearisation)."""
    r = c["numerator"] / c["denominator"]
    se = ratio_estimator_se(c)
    return (r - z * se), (r + z * se)


def rate_and_ci(counts: pl.DataFrame) -> pl.DataFrame:
    """rate, ci_lower, ci_upper by ``kind``: Wilson (proportion), exact/Byar Poisson x per (event
    rates), ratio-estimator normal CI (cost per member month, spend share)."""
    out = []
    for kind, part in counts.group_by("kind", maintain_order=True):
        kind = kind[0]
        num, den, per = part["numerator"].to_numpy(), part["denominator"].to_numpy(), part["rate_per"].to_numpy()
        if kind in ("proportion", "readmission"):   # readmission: share of index stays readmitted
            ci = wilson_interval(num, den)
        elif kind == "event_rate":
            ci = event_rate(num, den, per=1.0)
            ci = type(ci)(ci.rate * per, ci.ci_lower * per, ci.ci_upper * per, ci.method)
        else:
            lo, hi = _ratio_ci(part)
            rate = part["numerator"] / part["denominator"]
            ci = (rate.to_numpy() * per, lo.to_numpy() * per, hi.to_numpy() * per)
            if kind == "cost_share":
                ci = (ci[0], ci[1].clip(0, 1), ci[2].clip(0, 1))
        rate, lower, upper = ci[0], ci[1], ci[2]
        out.append(part.with_columns(
            rate=pl.Series(rate, dtype=pl.Float64).fill_nan(None),
            ci_lower=pl.Series(lower, dtype=pl.Float64).fill_nan(None),
            ci_upper=pl.Series(upper, dtype=pl.Float64).fill_nan(None),
        ))
    if not out:  # no cell at all (nobody in any measure): the empty table, with the rate columns
        return counts.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in ("rate", "ci_lower", "ci_upper"))
    return pl.concat(out)


def public_rates(counts: pl.DataFrame, specs: dict[str, MeasureSpec], data_sources: dict[str, str],
                 identities: pl.DataFrame | None = None) -> pl.DataFrame:
    """Suppressed public rates with CIs (computed on true counts, nulled with the cell).

    ``identities`` (from :func:`strata_identities`) adds the cross-stratifier margins to suppression.
    Every suppressed row says ``suppression_reason = suppression.PUBLIC_REASON``, primary or
    complementary alike (:func:`rates_with_reasons` has the kinds, for the restricted log)."""
    return publishable_reasons(rates_with_reasons(counts, specs, data_sources, identities))


def rates_with_reasons(counts: pl.DataFrame, specs: dict[str, MeasureSpec], data_sources: dict[str, str],
                       identities: pl.DataFrame | None = None) -> pl.DataFrame:
    """:func:`public_rates` with the restricted reasons of ``suppress`` (primary / complementary).
    Not for publication: the kind of a suppressed cell narrows its hidden counts."""
    meta = pl.DataFrame(
        {
            "measure_id": list(specs),
            "measure_title": [s.title for s in specs.values()],
            "direction": [s.direction for s in specs.values()],
            "data_source": [data_sources.get(m, "claims") for m in specs],
            "kind": [s.kind for s in specs.values()],
            "rate_type": [s.rate.get("type", "proportion") for s in specs.values()],
            "rate_per": [float(s.rate.get("per", 1)) for s in specs.values()],
        }
    )
    rated = rate_and_ci(counts.join(meta, on="measure_id", how="left"))
    rated = rated.sort(KEY)
    out = suppress(rated, identity_margins(rated, identities)).with_columns(pl.col("members").cast(pl.Int64))
    return out.select(RATES_COLUMNS).sort(KEY)
