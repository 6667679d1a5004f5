"""Bad-input corpus, file level: every input table x every way a file can be malformed.

Each case ends in a one-line structural error (naming file and column, no data values, nothing
written for the table) or in rows used / quarantined with exact reconciliation (corpus.ingest checks
``read == used + quarantined`` row by row on every call).
"""
from __future__ import annotations

import csv
import gzip
import io

import polars as pl
import pytest

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import ROW
from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation.auditor import build_report
from equity_pipeline.validation.ingest import REQUIRED_TABLES, ingest_table
from tests.robustness.corpus import (
    LATIN1_TEXT, PARAMETERS, TEXT_COLUMN, VALID, csv_bytes, ingest, ingest_bytes, known_members, row, structural_error,
)

tables = pytest.mark.parametrize("table", TABLES)


def _two_rows(table: str) -> list[dict]:
    return [row(table, 1), row(table, 2)]


def _first_required_with_rule(table: str) -> str:
    """A required column whose empty or cut value fails a rule: the first date, else id_type."""
    suite = load_suite(table)
    dates = [c.name for c in suite.columns if c.type == "date" and c.required]
    return dates[0] if dates else "id_type"


# --- empty, header only, truncated --------------------------------------------------------------


@tables
def test_empty_file_is_a_structural_error(tmp_path, table):
    exc = structural_error(tmp_path, table, b"")
    assert "empty" in str(exc)


@tables
def test_blank_header_line_is_a_structural_error(tmp_path, table):
    structural_error(tmp_path, table, b"\n\n")


@tables
def test_header_only_reads_zero_rows(tmp_path, table):
    out = ingest_bytes(tmp_path, table, csv_bytes([], list(VALID[table])))
    assert (out.result.read, out.result.used, out.result.quarantined) == (0, 0, 0)
    assert out.used.columns[0] == ROW and set(load_suite(table).column_names) <= set(out.used.columns)


@tables
@pytest.mark.parametrize("final_newline", [True, False])
def test_last_line_cut_inside_a_value_is_quarantined(tmp_path, table, final_newline):
    """A transfer cut the file inside the last row: the cut value fails its rule, the rest is used."""
    cols = list(VALID[table])
    data = csv_bytes(_two_rows(table) + [row(table, 3)], cols).decode()
    lines = data.splitlines()
    cut_col = _first_required_with_rule(table)
    fields = lines[-1].split(",")
    keep = cols.index(cut_col)
    lines[-1] = ",".join(fields[:keep] + [fields[keep][:2]])  # '20' of a date, 'np' of npi
    out = ingest_bytes(tmp_path, table, ("\n".join(lines) + ("\n" if final_newline else "")).encode())
    assert out.result.read == 3 and out.used_row(1) and out.used_row(2)
    assert out.reasons(3), "the cut row must be quarantined"


def _drop_last_fields(line: str, n: int) -> str:
    return ",".join(line.split(",")[:-n])


@tables
@pytest.mark.parametrize("where", ["last line", "middle row"])
def test_row_with_fewer_fields_than_the_header_is_quarantined(tmp_path, table, where):
    """A row with fewer fields than the header (a file cut at a field boundary, a row split by a line
    break in an unquoted value) cannot be placed in its columns: it is quarantined as
    wrong_field_count, even when the lost field is optional and every rule would pass on the rest."""
    cols = list(VALID[table])
    assert not load_suite(table).columns[-1].required
    lines = csv_bytes(_two_rows(table) + [row(table, 3)], cols).decode().splitlines()
    short = 3 if where == "last line" else 2
    lines[short] = _drop_last_fields(lines[short], 1)  # data row `short`: the last (optional) field and its comma lost
    out = ingest_bytes(tmp_path, table, ("\n".join(lines) + "\n").encode())
    assert out.result.read == 3 and out.used_row(short) is None
    assert out.reasons(short) == ["wrong_field_count"], "no other rule fails on the short row"
    assert out.result.rule_counts == {"wrong_field_count": 1}
    assert all(out.used_row(r) for r in (1, 2, 3) if r != short)
    # the auditor view counts and explains it like any rule
    (entry,) = build_report({table: out.result.to_dict()}, None)["tables"]
    assert entry["quarantine_reasons"] == {"wrong_field_count": 1} and "fewer fields" in entry["quarantine_reasons_why"]["wrong_field_count"]


@tables
def test_row_with_an_empty_last_value_is_used(tmp_path, table):
    """The same row with its last field present but empty (the comma kept) is a complete row."""
    cols = list(VALID[table])
    out = ingest_bytes(tmp_path, table, csv_bytes(_two_rows(table) + [row(table, 3, **{cols[-1]: ""})], cols))
    assert out.result.used == 3 and out.used_row(3)[cols[-1]] is None


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_short_rows_among_quoted_line_breaks_and_delimiters(tmp_path, newline):
    """Delimiters, quotes and line breaks inside quotes are part of a value: only the really short rows
    (data rows 2 and 6: one and two fields lost; row 4: a blank line) are quarantined, and rows keep
    their numbers."""
    cols = list(VALID["members"])
    values = [list(row("members", n, first_name=f"Ann,{newline}Marie" if n % 2 else 'O"Neil, Jr.',
                       last_name=f"Ln {n}").values()) for n in range(1, 7)]
    values[1], values[4] = values[1][:-1], values[4][:-2]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline)
    writer.writerow(cols)
    for i, v in enumerate(values):
        if i == 3:
            buf.write(newline)  # a blank line is a row with one empty field
        writer.writerow(v)
    out = ingest_bytes(tmp_path, "members", buf.getvalue().encode())
    assert out.result.read == 7
    assert [r for r in range(1, 8) if out.used_row(r) is None] == [2, 4, 6]
    assert out.reasons(2) == out.reasons(6) == ["wrong_field_count"]
    assert "wrong_field_count" in out.reasons(4) and "missing_member_id" in out.reasons(4)
    assert out.used_row(1)["first_name"] == f"Ann,{newline}Marie" and out.used_row(5)["first_name"] == 'O"Neil, Jr.'
    assert [out.used_row(r)["last_name"] for r in (1, 3, 5, 7)] == ["Ln 1", "Ln 3", "Ln 4", "Ln 6"]


@tables
def test_row_with_more_fields_than_the_header_is_a_structural_error(tmp_path, table):
    cols = list(VALID[table])
    data = csv_bytes(_two_rows(table), cols) + (",".join(VALID[table].values()) + ",Quinzella,1957-03-19\n").encode()
    exc = structural_error(tmp_path, table, data)
    assert "more fields than the header" in str(exc)


def test_row_with_more_fields_names_the_row_and_the_counts(tmp_path):
    cols = list(VALID["members"])
    quoted = row("members", 2, first_name="Ann,\nMarie")  # a quoted line break: data row 2 is lines 3-4
    data = csv_bytes([row("members", 1), quoted], cols) + (",".join(VALID["members"].values()) + ",x\n").encode()
    exc = structural_error(tmp_path, "members", data)
    assert exc.row == 3 and str(exc).startswith("members.csv, row 3: ")
    assert f"({len(cols) + 1} fields, the header has {len(cols)}; line 5 of the file)" in str(exc)


def test_long_row_after_many_blocks_is_named(tmp_path, monkeypatch):
    """The row is found across the blocks the file is read in (a small block size forces many)."""
    from equity_pipeline import csv_fields

    monkeypatch.setattr(csv_fields, "BLOCK", 64)
    cols = list(VALID["members"])
    rows = [row("members", n, first_name="A\nB" if n % 3 == 0 else "C") for n in range(1, 41)]
    data = csv_bytes(rows, cols) + (",".join(VALID["members"].values()) + ",x,y\n").encode()
    exc = structural_error(tmp_path, "members", data)
    assert exc.row == 41 and f"({len(cols) + 2} fields, the header has {len(cols)}; line {1 + 40 + 13 + 1} of the file)" in str(exc)


@tables
def test_unclosed_quote_is_a_structural_error_without_values(tmp_path, table):
    cols = list(VALID[table])
    bad = dict(row(table, 2))
    data = csv_bytes([row(table, 1)], cols) + (",".join(f'"{v}' if i == 1 else v for i, v in enumerate(bad.values())) + "\n").encode()
    data += b"Quinzella,Vantongeren,1957-03-19\n"
    exc = structural_error(tmp_path, table, data)  # checks that no PHI value is quoted
    assert exc.row == 2 and "line 3 of the file" in str(exc) and "never closed" in str(exc)


def test_stray_quote_closed_rows_later_is_a_structural_error(tmp_path):
    """A quote inside an unquoted value, closed by a later stray quote, would swallow the rows in
    between into one value: the file is rejected (never read as a silently shorter table)."""
    cols = list(VALID["members"])
    rows = [row("members", n) for n in range(1, 6)]
    lines = csv_bytes(rows, cols).decode().splitlines()
    lines[2] = lines[2].replace("Quinzella", 'Quin"zella')
    lines[4] = lines[4].replace("Vantongeren", 'Vanton"geren')
    exc = structural_error(tmp_path, "members", ("\n".join(lines) + "\n").encode())
    assert "cannot be parsed as a members table" in str(exc)


@tables
def test_binary_garbage_is_a_structural_error(tmp_path, table):
    exc = structural_error(tmp_path, table, b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)) * 4)
    assert exc.column or "parsed" in str(exc) or "header" in str(exc)


# --- delimiters, encodings, line endings ---------------------------------------------------------


@tables
@pytest.mark.parametrize("delimiter", [";", "|", "\t", ":"])
def test_other_delimiters_are_sniffed_and_read_like_commas(tmp_path, table, delimiter):
    out = ingest_bytes(tmp_path, table, csv_bytes(_two_rows(table), delimiter=delimiter))
    assert out.result.used == 2, out.quarantined


@tables
def test_unsupported_delimiter_is_a_structural_error_naming_the_columns(tmp_path, table):
    exc = structural_error(tmp_path, table, csv_bytes(_two_rows(table), delimiter="~"))
    first_required = next(c.name for c in load_suite(table).columns if c.required)
    assert first_required in (exc.column or "") and "required column missing" in str(exc)


@tables
def test_rows_with_another_delimiter_than_the_header_are_not_used(tmp_path, table):
    """Header with commas, rows with tabs: each row is one field, so nothing can be used."""
    cols = list(VALID[table])
    data = (",".join(cols) + "\n").encode() + b"".join(("\t".join(r.values()) + "\n").encode() for r in _two_rows(table))
    out = ingest_bytes(tmp_path, table, data)
    assert out.result.used == 0 and out.result.quarantined == 2
    assert out.result.rule_counts["wrong_field_count"] == 2


@tables
def test_latin1_file_is_transcoded(tmp_path, table):
    col = TEXT_COLUMN[table]
    data = csv_bytes([row(table, 1, **{col: LATIN1_TEXT})], encoding="latin-1")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    out = ingest_bytes(tmp_path, table, data)
    assert out.used_row(1)[col] == LATIN1_TEXT


def test_latin1_byte_after_the_first_megabyte_is_transcoded(tmp_path):
    """The encoding is decided on the whole file: a Latin-1 member name far down a file whose first
    megabyte is plain ASCII (about 11,000 rows) is read as Latin-1, not rejected as broken UTF-8."""
    col = TEXT_COLUMN["members"]
    n = 11_000
    data = csv_bytes([row("members", i) for i in range(1, n)] + [row("members", n, **{col: LATIN1_TEXT})], encoding="latin-1")
    assert data.index(LATIN1_TEXT.encode("latin-1")) > 1 << 20 and data[: 1 << 20].isascii()
    out = ingest_bytes(tmp_path, "members", data)
    assert out.result.used == n, out.quarantined
    assert out.used_row(n)[col] == LATIN1_TEXT


@tables
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_utf8_bom_and_crlf(tmp_path, table, newline, bom):
    col = TEXT_COLUMN[table]
    rows = [row(table, 1, **{col: "Zoë Ærøskøbing 東京"}), row(table, 2)]
    out = ingest_bytes(tmp_path, table, csv_bytes(rows, newline=newline, bom=bom))
    assert out.result.used == 2, out.quarantined
    assert out.used_row(1)[col] == "Zoë Ærøskøbing 東京"
    # every value (first column after the BOM, last column before the CR) as in a plain LF file
    reference = ingest_bytes(tmp_path / "ref", table, csv_bytes(rows))
    assert out.used.to_dicts() == reference.used.to_dicts()


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_gzip_csv_is_read_like_the_plain_file(tmp_path, encoding):
    """``<table>.csv.gz`` (a documented input form): decompressed, transcoded when Latin-1, then read
    and checked exactly like the plain file (a short row is quarantined there too)."""
    col = TEXT_COLUMN["members"]
    data = csv_bytes([row("members", 1, **{col: LATIN1_TEXT}), row("members", 2), row("members", 3)], encoding=encoding)
    lines = data.split(b"\n")
    lines[2] = b",".join(lines[2].split(b",")[:-1])  # data row 2 loses its last field
    data = b"\n".join(lines)
    out = ingest_bytes(tmp_path, "members", gzip.compress(data), suffix=".csv.gz")
    reference = ingest_bytes(tmp_path / "ref", "members", data)
    assert out.result.file == "members.csv.gz" and out.result.read == 3
    assert out.used.to_dicts() == reference.used.to_dicts() and out.used_row(1)[col] == LATIN1_TEXT
    assert out.reasons(2) == ["wrong_field_count"]


@pytest.mark.parametrize("damage", ["cut short", "not gzip"])
def test_damaged_gzip_is_a_structural_error(tmp_path, damage):
    packed = gzip.compress(csv_bytes([row("members", n) for n in range(1, 200)]))
    data = packed[: len(packed) // 2] if damage == "cut short" else b"\x1f\x8b" + b"garbage" * 20
    exc = structural_error(tmp_path, "members", data, suffix=".csv.gz")
    assert "not a readable gzip file" in str(exc)


# --- columns: extra, missing, order, case ---------------------------------------------------------


@tables
def test_extra_columns_are_ignored_and_counted(tmp_path, table):
    rows = [{**row(table, 1), "notes": "Quinzella"}]
    out = ingest_bytes(tmp_path, table, csv_bytes(rows))
    assert out.result.used == 1 and out.result.extra_columns == ["notes"]
    assert "notes" not in out.used.columns


@tables
def test_missing_required_column_is_a_structural_error(tmp_path, table):
    required = [c.name for c in load_suite(table).columns if c.required]
    for missing in (required[0], required[-1]):
        cols = [c for c in VALID[table] if c != missing]
        exc = structural_error(tmp_path / missing, table, csv_bytes([row(table, 1)], cols))
        assert exc.column == missing and f"column {missing}" in str(exc)


@tables
def test_missing_optional_columns_are_treated_as_empty(tmp_path, table):
    optional = [c.name for c in load_suite(table).columns if not c.required]
    cols = [c for c in VALID[table] if c not in optional]
    out = ingest_bytes(tmp_path, table, csv_bytes([row(table, 1)], cols))
    assert out.result.used == 1 and sorted(out.result.missing_optional_columns) == sorted(optional)
    assert all(out.used_row(1)[c] is None for c in optional)


@tables
@pytest.mark.parametrize("order", ["reversed", "upper-case names"])
def test_columns_in_another_order_or_case(tmp_path, table, order):
    cols = list(VALID[table])
    if order == "reversed":
        data = csv_bytes([row(table, 1)], cols[::-1])
    else:
        data = csv_bytes([row(table, 1)], cols, header=[c.upper() for c in cols])
    out = ingest_bytes(tmp_path, table, data)
    assert out.result.used == 1
    reference = ingest_bytes(tmp_path / "ref", table, csv_bytes([row(table, 1)], cols))
    assert out.used.drop(ROW).to_dicts() == reference.used.drop(ROW).to_dicts()


# --- files: absent, twice, Parquet --------------------------------------------------------------


@tables
def test_absent_table(tmp_path, table):
    if table in REQUIRED_TABLES:
        exc = structural_error(tmp_path, table)
        assert "not found" in str(exc)
    else:
        (tmp_path / "in").mkdir()
        out = ingest(tmp_path, table)
        assert out.result.read == 0 and out.result.file is None


def test_a_table_given_twice_is_a_structural_error(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "members.csv").write_bytes(csv_bytes([row("members", 1)]))
    pl.DataFrame([row("members", 1)]).write_parquet(inp / "members.parquet")
    exc = structural_error(tmp_path, "members")
    assert "given twice" in str(exc)


@pytest.mark.parametrize("table", ["members", "providers"])
def test_unreadable_parquet_is_a_structural_error(tmp_path, table):
    exc = structural_error(tmp_path, table, b"PAR1" + b"\x00" * 64 + b"not parquet", suffix=".parquet")
    assert "Parquet" in str(exc)


def test_parquet_with_typed_columns(tmp_path):
    """Numbers and dates typed by the writer: a ZIP stored as an integer has lost its leading zero and
    is quarantined (never re-padded); a typed date and boolean read as the contract's text."""
    from datetime import date

    frame = pl.DataFrame({
        "member_id": ["MBR-QX-0001", "MBR-QX-0002"], "race_ethnicity_codes": ["2106-3", "2054-5"],
        "race_ethnicity_source": ["self_reported", "imputed"], "sex": ["F", "M"],
        "birth_date": [date(1957, 3, 19), date(1960, 1, 2)], "zip": [2139, 10502], "interpreter_needed": [False, True],
        "race_list": [["a"], ["b"]],
    })
    inp = tmp_path / "in"
    inp.mkdir()
    frame.write_parquet(inp / "members.parquet")
    out = ingest(tmp_path, "members")
    assert out.reasons(1) == ["invalid_zip"]
    used = out.used_row(2)
    assert used["zip"] == "10502" and used["birth_date"] == date(1960, 1, 2) and used["interpreter_needed"] is True
    assert out.result.extra_columns == ["race_list"]


def test_structural_error_is_raised_before_any_row_is_judged(tmp_path):
    """A file with a missing required column and bad rows: the error names the column, no row outcome."""
    cols = [c for c in VALID["members"] if c != "birth_date"]
    data = csv_bytes([row("members", 1, sex="??"), row("members", 2)], cols)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "members.csv").write_bytes(data)
    with pytest.raises(StructuralError) as info:
        ingest_table("members", tmp_path / "in", tmp_path / "r", parameters=PARAMETERS, known_members=known_members())
    assert info.value.column == "birth_date" and info.value.file == "members.csv"
