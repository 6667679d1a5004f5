"""Property tests (hypothesis) not covered by tests/stats/test_stats_properties.py or
tests/test_suppression.py: readers, code normalisers, suppression over several stratifiers and
units, and combinability of stratified counts."""
from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equity_pipeline.csv_fields import count_fields, count_fields_by_lines
from equity_pipeline.io import ROW, SHORT_ROW, scan_text, write_csv_atomic, write_parquet_atomic
from equity_pipeline.standards.geography import state_postal_by_fips, valid_county_fips
from equity_pipeline.standards.language import language_strata
from equity_pipeline.standards.race_ethnicity import (
    CATEGORY_LABELS, DECLINED, RACE_ETHNICITY_STRATA, UNKNOWN, category_of_code, race_ethnicity_stratum,
)
from equity_pipeline.suites import load_suite
from equity_pipeline.suppression import MIN_CELL, suppress
from equity_pipeline.validation.normalize import normalize
from tests.robustness.corpus import PARAMETERS, csv_bytes, ingest, row

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
SLOW = settings(PROPS, max_examples=12)

#: any text a cell can hold (no NUL: not representable in CSV; no lone surrogates: not encodable)
any_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
cell = st.one_of(st.none(), any_text)
YEAR = 2025
VALID_FIPS = valid_county_fips(YEAR)
LEADING_ZERO_FIPS = [f for f in VALID_FIPS if f.startswith("0")]


def _empty_is_null(values):
    return [None if v in (None, "") else v for v in values]


def _fresh(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prop")


# --- readers ---------------------------------------------------------------------------------------


@st.composite
def text_tables(draw, min_cols=2, max_cols=4, max_rows=6, cells=cell):
    ncols = draw(st.integers(min_cols, max_cols))
    nrows = draw(st.integers(1, max_rows))
    return {f"col_{i}": draw(st.lists(cells, min_size=nrows, max_size=nrows)) for i in range(ncols)}


@PROPS
@given(table=text_tables())
def test_any_csv_we_write_reads_back_as_the_same_text(tmp_path_factory, table):
    """Quotes, delimiters, CR/LF inside values, leading and trailing spaces, any Unicode: the reader
    returns exactly the text written (empty and missing both mean empty)."""
    path = _fresh(tmp_path_factory) / "t.csv"
    write_csv_atomic(pl.DataFrame(table, schema={c: pl.String for c in table}), path)
    back = scan_text(path, field_counts=True).collect()
    assert back[ROW].to_list() == list(range(1, len(next(iter(table.values()))) + 1))
    assert not back[SHORT_ROW].any(), "a well-formed row was counted short"
    for col, values in table.items():
        assert _empty_is_null(back[col].to_list()) == _empty_is_null(values), col


no_cr_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=12)


@PROPS
@given(table=text_tables(cells=st.one_of(st.none(), no_cr_text)), delimiter=st.sampled_from([",", ";", "|", "\t"]),
       newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_csv_from_other_writers_reads_back(tmp_path_factory, table, delimiter, newline, bom):
    """Python's csv module, any of the four delimiters, CRLF or LF, with or without a UTF-8 BOM.
    (No bare CR in values: with an LF line terminator Python's csv module leaves a CR unquoted, which
    no reader can tell from a line break.)"""
    path = _fresh(tmp_path_factory) / "t.csv"
    rows = [dict(zip(table, r)) for r in zip(*table.values())]
    path.write_bytes(csv_bytes(rows, list(table), delimiter=delimiter, newline=newline, bom=bom))
    back = scan_text(path, field_counts=True).collect()
    assert [c for c in back.columns if c not in (ROW, SHORT_ROW)] == list(table)
    assert not back[SHORT_ROW].any(), "a well-formed row was counted short"
    for col, values in table.items():
        assert _empty_is_null(back[col].to_list()) == _empty_is_null(values), col


def test_delimiter_is_sniffed_outside_quoted_column_names(tmp_path):
    """A comma inside a quoted column name does not make a pipe-delimited file comma-delimited (as
    many commas as pipes in the header line, all of them quoted)."""
    path = tmp_path / "t.csv"
    path.write_text('"code, system"|"value, unit"|member_id\nA|b|M1\n', encoding="utf-8")
    back = scan_text(path, field_counts=True).collect()
    assert [c for c in back.columns if c not in (ROW, SHORT_ROW)] == ["code, system", "value, unit", "member_id"]
    assert back.row(0)[1:4] == ("A", "b", "M1")


latin1_text = st.text(st.sampled_from("abc XYZ019,;|'-éñüçøÉ"), max_size=10)


@PROPS
@given(values=st.lists(latin1_text, min_size=1, max_size=6), crlf=st.booleans())
def test_latin1_csv_reads_back(tmp_path_factory, values, crlf):
    """Latin-1 files whose bytes are not valid UTF-8 are transcoded, not mangled. (A Latin-1 file
    whose bytes happen to be valid UTF-8, e.g. 'Ã©', cannot be told apart and is read as UTF-8.)"""
    rows = [{"a": v, "b": "é"} for v in values]
    path = _fresh(tmp_path_factory) / "t.csv"
    path.write_bytes(csv_bytes(rows, ["a", "b"], encoding="latin-1", newline="\r\n" if crlf else "\n"))
    back = scan_text(path, field_counts=True).collect()
    assert not back[SHORT_ROW].any()
    assert _empty_is_null(back["a"].to_list()) == _empty_is_null(values)


@PROPS
@given(records=st.lists(st.lists(st.one_of(no_cr_text, st.sampled_from(['"', '""', ",", "\n", ";", '"a,"'])), max_size=5),
                        min_size=1, max_size=12),
       ncols=st.integers(2, 4), delimiter=st.sampled_from([",", ";", "\t"]), newline=st.sampled_from(["\n", "\r\n"]),
       final_newline=st.booleans(), block=st.sampled_from([1, 2, 3, 7, 64, None]))
def test_field_counts_agree_with_a_csv_parser(tmp_path_factory, records, ncols, delimiter, newline, final_newline, block):
    """Ragged records (quotes, delimiters and line breaks in values, blank lines, CRLF, a last line
    with or without a line break), read in blocks of any size: the counted short rows are exactly the
    records Python's csv module reads with fewer fields than the header; the first longer one is
    reported with its row, field count and first line; and polars reads one row per record."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    header = [f"c{i}" for i in range(ncols)]
    writer.writerow(header)
    for rec in records:
        if rec:
            writer.writerow(rec)
        else:
            buf.write(newline)  # a blank line
    text = buf.getvalue()
    if not final_newline and records[-1]:  # (a blank last line without its line break is no line)
        text = text[: -len(newline)]
    path = _fresh(tmp_path_factory) / "t.csv"
    path.write_bytes(text.encode())
    # the reference: Python's csv module, record by record, with the physical line each starts on
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    parsed, starts, line = [], [], 1
    for rec in reader:
        starts.append(line)
        parsed.append(max(len(rec), 1))  # csv reads a blank line as [], polars as one empty field
        line = reader.line_num + 1
    assert parsed[0] == ncols and len(parsed) == len(records) + 1
    long_rows = [i for i in range(1, len(parsed)) if parsed[i] > ncols]
    if long_rows:
        i = long_rows[0]
        expected_long, expected_short = (i, parsed[i], starts[i]), [j for j in range(1, i) if parsed[j] < ncols]
    else:
        expected_long, expected_short = None, [j for j in range(1, len(parsed)) if parsed[j] < ncols]
        # polars splits the file into the same records (one row each)
        assert scan_text(path).select(pl.len()).collect().item() == len(records)
    for counts in (count_fields(path, delimiter, ncols, block=block), count_fields_by_lines(path, delimiter, ncols)):
        assert counts.long_row == expected_long
        assert counts.short_rows.tolist() == expected_short and counts.unclosed_quote is None


@PROPS
@given(lines=st.lists(st.text(st.sampled_from('ab,"\r'), max_size=8), min_size=1, max_size=10),
       final_newline=st.booleans(), block=st.sampled_from([1, 3, 64]))
def test_field_count_implementations_agree_on_garbage(tmp_path_factory, lines, final_newline, block):
    """Stray and unbalanced quotes, CRs, ragged lines: the two implementations find the same short
    rows, long row and unclosed quote (whatever polars then makes of the file)."""
    path = _fresh(tmp_path_factory) / "t.csv"
    path.write_bytes(("a,b,c\n" + "\n".join(lines) + ("\n" if final_newline else "")).encode())
    by_bytes, by_lines = count_fields(path, ",", 3, block=block), count_fields_by_lines(path, ",", 3)
    assert by_bytes.short_rows.tolist() == by_lines.short_rows.tolist()
    assert (by_bytes.long_row, by_bytes.unclosed_quote) == (by_lines.long_row, by_lines.unclosed_quote)


@PROPS
@given(table=text_tables())
def test_parquet_we_write_reads_back_exactly(tmp_path_factory, table):
    path = _fresh(tmp_path_factory) / "t.parquet"
    write_parquet_atomic(pl.DataFrame(table, schema={c: pl.String for c in table}), path)
    back = scan_text(path).collect()
    for col, values in table.items():
        assert back[col].to_list() == values


digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=11)


@SLOW
@given(zips=st.lists(st.from_regex(r"0[0-9]{4}", fullmatch=True), min_size=1, max_size=8),
       fips=st.lists(st.sampled_from(LEADING_ZERO_FIPS), min_size=1, max_size=8),
       junk=st.lists(digits, min_size=1, max_size=8), parquet=st.booleans())
def test_leading_zeros_survive_ingest(tmp_path_factory, zips, fips, junk, parquet):
    """ZIP, FIPS and NPI stay text: valid ones are used as written, invalid digit strings are
    quarantined as written (never re-padded, never stripped of zeros)."""
    n = max(len(zips), len(fips), len(junk))
    members = [row("members", i + 1, zip=zips[i % len(zips)], county_fips=fips[i % len(fips)]) for i in range(n)]
    claims = [row("medical_claims", i + 1, billing_npi=junk[i % len(junk)]) for i in range(n)]
    tmp = _fresh(tmp_path_factory)
    (tmp / "in").mkdir()
    for table, rows in (("members", members), ("medical_claims", claims)):
        if parquet:
            pl.DataFrame(rows, schema={c: pl.String for c in rows[0]}).write_parquet(tmp / "in" / f"{table}.parquet")
        else:
            (tmp / "in" / f"{table}.csv").write_bytes(csv_bytes(rows))
    m = ingest(tmp, "members", parameters={**PARAMETERS, "valid_county_fips": VALID_FIPS})
    assert m.result.quarantined == 0, m.quarantined
    assert m.used.sort(ROW)["zip"].to_list() == [r["zip"] for r in members]
    assert m.used.sort(ROW)["county_fips"].to_list() == [r["county_fips"] for r in members]
    c = ingest(tmp, "medical_claims", known=pl.LazyFrame({"member_id": m.used["member_id"]}))
    both = pl.concat([c.used.select(ROW, "billing_npi"), c.quarantined.select(ROW, "billing_npi")]).sort(ROW)
    assert both["billing_npi"].to_list() == [r["billing_npi"] for r in claims]


# --- code normalisers ------------------------------------------------------------------------------


@PROPS
@given(data=st.data(), table=st.sampled_from(["members", "medical_claims", "sdoh_screenings", "providers"]))
def test_normalisation_is_idempotent_and_total(data, table):
    """Every column's normalisation (trim, upper, lower, icd, boolean, bcp47) applied twice equals
    applied once, and never raises, on arbitrary text."""
    suite = load_suite(table)
    n = data.draw(st.integers(1, 6))
    frame = pl.DataFrame({c: data.draw(st.lists(cell, min_size=n, max_size=n)) for c in suite.column_names},
                         schema={c: pl.String for c in suite.column_names}).with_row_index(ROW)
    once = normalize(frame.lazy(), suite).collect()
    twice = normalize(once.lazy(), suite).collect()
    assert once.equals(twice)
    for c in suite.column_names:  # normalisation never turns a value into empty (the rules must see it)
        for raw, norm in zip(frame[c], once[c]):
            if raw is not None and raw.strip():
                assert norm is not None, (c, raw)


cdc_code = st.from_regex(r"[0-9]{4}-[0-9]", fullmatch=True)
known_codes = st.sampled_from(["2106-3", "2054-5", "2135-2", "2028-9", "1002-5", "2076-8", "2118-8", "2131-1",
                               "2148-5", "2039-6", "2186-5"])


def _stratum(values: list[str | None]) -> list[str]:
    return pl.DataFrame({"c": values}, schema={"c": pl.String}).select(race_ethnicity_stratum(pl.col("c")).alias("s"))["s"].to_list()


@PROPS
@given(values=st.lists(cell, min_size=1, max_size=10))
def test_race_ethnicity_rollup_is_total_on_arbitrary_text(values):
    assert set(_stratum(values)) <= set(RACE_ETHNICITY_STRATA)


@PROPS
@given(values=st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="0123456789"), max_size=15),
                       min_size=1, max_size=10))
def test_text_without_codes_stays_unknown(values):
    """Nothing that is not a CDC REC code becomes a race: no digits, no category."""
    expected = [DECLINED if (v or "").strip() == "ASKU" else UNKNOWN for v in values]
    assert _stratum(values) == expected


@PROPS
@given(codes=st.lists(st.one_of(known_codes, cdc_code), min_size=1, max_size=4), rnd=st.randoms(use_true_random=False))
def test_race_ethnicity_rollup_of_valid_answers(codes, rnd):
    """Agrees with the code table one code at a time; order and repeats of the answers do not matter."""
    cats = {category_of_code(c) for c in codes} - {None, "NOT_HISPANIC"}
    expected = UNKNOWN if not cats else ("Multiracial" if len(cats) > 1 else CATEGORY_LABELS[cats.pop()])
    shuffled = codes[:] + codes[:1]
    rnd.shuffle(shuffled)
    assert _stratum(["|".join(codes), "|".join(shuffled)]) == [expected, expected]


language_tag = st.from_regex(r"[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}", fullmatch=True)


@PROPS
@given(values=st.lists(st.one_of(cell, language_tag, st.sampled_from(["und", "qaa", "qtz", "mis", "ASKU", "UNK", "en", "es-MX"])),
                       min_size=1, max_size=10))
def test_language_strata_are_total_and_unknown_stays_unknown(values):
    out = language_strata(pl.Series(values, dtype=pl.String)).to_list()
    assert len(out) == len(values) and all(isinstance(s, str) and s for s in out)
    for v, s in zip(values, out):
        assert not s.startswith("Unknown language"), (v, s)  # 'und', private use: the Unknown stratum
        if v in (None, "", "UNK", "und", "qaa", "qtz"):
            assert s == UNKNOWN, (v, s)
        if v == "ASKU":
            assert s == DECLINED


@PROPS
@given(tags=st.lists(language_tag, min_size=1, max_size=8))
def test_language_stratum_ignores_the_case_of_the_primary_subtag(tags):
    """What the bcp47 normalisation changes (the primary subtag's case) never changes the stratum."""
    suite = load_suite("members")
    frame = pl.DataFrame({c: [None] * len(tags) for c in suite.column_names}, schema={c: pl.String for c in suite.column_names})
    normalised = normalize(frame.with_columns(language=pl.Series(tags)).lazy(), suite).collect()["language"]
    assert language_strata(pl.Series(tags)).to_list() == language_strata(normalised).to_list()


def _county(values: list[str | None]) -> pl.DataFrame:
    from equity_pipeline.stratify import member_attributes

    members = pl.LazyFrame({"member_id": [f"m{i}" for i in range(len(values))], "county_fips": values},
                           schema={"member_id": pl.String, "county_fips": pl.String})
    return member_attributes(members, YEAR).sort("member_id", descending=False)


@SLOW
@given(values=st.lists(st.one_of(cell, digits, st.sampled_from(VALID_FIPS[:50] + LEADING_ZERO_FIPS[:20])), min_size=1, max_size=10))
def test_county_stratum_is_total_and_idempotent(values):
    """Any text: a valid county stays itself (leading zeros kept), anything else is Unknown; the
    state follows the county; mapping the county stratum again changes nothing."""
    values = values[:10]
    attrs = _county(values)
    by_id = dict(zip(attrs["member_id"], zip(attrs["county"], attrs["state"])))
    states = state_postal_by_fips()
    valid = set(VALID_FIPS)
    for i, v in enumerate(values):
        county, state = by_id[f"m{i}"]
        if v in valid:
            assert county == v and state == states[v[:2]]
        else:
            assert county == UNKNOWN and state == UNKNOWN, v
    again = _county([by_id[f"m{i}"][0] for i in range(len(values))])
    assert again["county"].to_list() == attrs["county"].to_list()


# --- suppression over several stratifiers and units --------------------------------------------------


@st.composite
def joint_tables(draw):
    """Counts per state x stratum of A x stratum of B (den, num), so every margin adds up."""
    states = draw(st.integers(1, 3))
    a_levels, b_levels = draw(st.integers(2, 3)), draw(st.integers(2, 3))
    cells = {}
    for s, a, b in itertools.product(range(states), range(a_levels), range(b_levels)):
        den = draw(st.one_of(st.integers(0, 14), st.integers(15, 60)))
        cells[(s, a, b)] = (den, draw(st.integers(0, den)))
    return states, a_levels, b_levels, cells


def _rates_table(states, a_levels, b_levels, cells) -> pl.DataFrame:
    rows = []
    units = [("population", "all", range(states))] + [("state", f"S{s}", [s]) for s in range(states)]
    for level, unit, members in units:
        def total(pred):
            picked = [v for (s, a, b), v in cells.items() if s in members and pred(a, b)]
            return sum(d for d, _ in picked), sum(n for _, n in picked)
        entries = [("overall", "all", lambda a, b: True)]
        entries += [("A", f"a{i}", lambda a, b, i=i: a == i) for i in range(a_levels)]
        entries += [("B", f"b{j}", lambda a, b, j=j: b == j) for j in range(b_levels)]
        for stratifier, stratum, pred in entries:
            d, n = total(pred)
            rows.append({"measure_id": "BCS", "submeasure": "all", "period": "2025", "unit_level": level, "unit_id": unit,
                         "stratifier": stratifier, "stratum": stratum, "denominator": float(d), "numerator": float(n),
                         "kind": "proportion"})
    return pl.DataFrame(rows)


def _margins(table: pl.DataFrame):
    """(cells, total) of every margin: strata -> overall per unit and stratifier; states -> population."""
    idx = {(r["unit_id"], r["stratifier"], r["stratum"]): i for i, r in enumerate(table.iter_rows(named=True))}
    units = sorted({r[0] for r in idx})
    for unit in units:
        for stratifier in ("A", "B"):
            yield [i for (u, s, _), i in idx.items() if u == unit and s == stratifier], idx[(unit, "overall", "all")]
    states = [u for u in units if u != "all"]
    for (u, s, g), i in idx.items():
        if u == "all":
            yield [idx[(st_, s, g)] for st_ in states], i


@settings(PROPS, max_examples=120)
@given(joint_tables())
def test_no_small_cell_published_or_recoverable_along_any_margin(case):
    table = _rates_table(*case)
    out = suppress(table)
    hidden = out["suppressed"].to_list()
    den, num = table["denominator"].to_list(), table["numerator"].to_list()
    for i, h in enumerate(hidden):
        if not h:
            for x in (den[i], num[i], den[i] - num[i]):
                assert not 1 <= x < MIN_CELL, (i, den[i], num[i])
        else:
            assert out["denominator"][i] is None and out["numerator"][i] is None  # nulled, not just flagged
    for cells, total in _margins(table):
        entries = [*cells, total]
        n_hidden = sum(hidden[i] for i in entries)
        assert n_hidden != 1, "a lone suppressed entry in a margin is recovered by subtraction"
        if n_hidden and not hidden[total]:
            sums = [sum(v[i] for i in cells if hidden[i]) for v in (den, num, [d - n for d, n in zip(den, num)])]
            assert not any(1 <= s < MIN_CELL for s in sums), "suppressed cells add up to a small cell"


# --- combinability -----------------------------------------------------------------------------------


@st.composite
def member_results(draw):
    n = draw(st.integers(1, 40))
    members = [f"m{i}" for i in range(n)]
    race = st.sampled_from(["White", "Asian", "Unknown", "Declined", None])
    lang = st.sampled_from(["English", "Spanish", "Unknown", None])
    state = st.sampled_from(["MA", "NY", "Unknown", None])
    attrs = pl.DataFrame({
        "member_id": members,
        "state": [draw(state) for _ in members],
        "race_ethnicity": [draw(race) for _ in members],
        "language": [draw(lang) for _ in members],
    }, schema={"member_id": pl.String, "state": pl.String, "race_ethnicity": pl.String, "language": pl.String})
    rows = []
    for measure in ("BCS", "COL"):
        for m in members:
            in_den = draw(st.booleans())
            rows.append({"member_id": m, "measure_id": measure, "measure_version": "1", "submeasure": "all", "period": "2025",
                         "in_denominator": in_den, "numerator_value": float(in_den and draw(st.booleans())),
                         "denominator_value": float(in_den)})
    drop = draw(st.integers(0, n // 4))  # some members without attributes at all
    return pl.DataFrame(rows), attrs.slice(drop)


@PROPS
@given(member_results())
def test_strata_and_states_add_up_to_the_whole(case):
    """Disjoint partitions (each stratifier, each intersection, the states) add up to the whole,
    numerators and denominators alike, and every denominator member is counted once per stratifier."""
    from equity_pipeline.stratify import stratified_counts

    results, attrs = case
    counts = stratified_counts(results, attrs, ("race_ethnicity", "language"), (("race_ethnicity", "language"),))
    key = ["measure_id", "unit_level", "unit_id"]
    overall = counts.filter(pl.col("stratifier") == "overall").select(*key, D="denominator", N="numerator", M="members")
    sums = counts.filter(pl.col("stratifier") != "overall").group_by(*key, "stratifier").agg(
        d=pl.col("denominator").sum(), n=pl.col("numerator").sum(), m=pl.col("members").sum())
    joined = sums.join(overall, on=key, how="left")
    assert joined.filter((pl.col("d") != pl.col("D")) | (pl.col("n") != pl.col("N")) | (pl.col("m") != pl.col("M"))).height == 0
    if results["in_denominator"].any():
        assert set(sums["stratifier"].unique()) == {"race_ethnicity", "language", "race_ethnicity x language"}
    strata_key = ["measure_id", "stratifier", "stratum"]
    states = counts.filter(pl.col("unit_level") == "state").group_by(strata_key).agg(
        d=pl.col("denominator").sum(), n=pl.col("numerator").sum())
    population = counts.filter(pl.col("unit_level") == "population").select(*strata_key, D="denominator", N="numerator")
    both = population.join(states, on=strata_key, how="left")
    assert both.filter((pl.col("d") != pl.col("D")) | (pl.col("n") != pl.col("N"))).height == 0
    for measure in ("BCS", "COL"):
        truth = results.filter((pl.col("measure_id") == measure) & pl.col("in_denominator"))
        row_ = overall.filter((pl.col("measure_id") == measure) & (pl.col("unit_id") == "all"))
        if truth.height:
            assert row_["D"].item() == truth["denominator_value"].sum() and row_["N"].item() == truth["numerator_value"].sum()


def test_icd_code_of_dots_only_is_kept_for_the_rules():
    """Regression (found by the property above): '.' used to become '' and then null on a second pass."""
    suite = load_suite("medical_claims")
    col = next(c.name for c in suite.columns if c.normalize == "icd")
    frame = pl.DataFrame({c: ["." if c == col else None] for c in suite.column_names},
                         schema={c: pl.String for c in suite.column_names}).with_row_index(ROW)
    once = normalize(frame.lazy(), suite).collect()
    assert once[col].to_list() == ["."]
    assert normalize(once.lazy(), suite).collect().equals(once)
