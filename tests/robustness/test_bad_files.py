"""Bad-input corpus, file level: every input table x every way a file can be malformed.

Each case ends in a one-line structural error (naming file and column, no data values, nothing
written for the table) or in rows used / quarantined with exact reconciliation (corpus.ingest checks
``read == used + quarantined`` row by row on every call).
"""
from __future__ import annotations

import polars as pl
import pytest

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import ROW
from equity_pipeline.suites import TABLES, load_suite
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


@tables
@pytest.mark.xfail(strict=True, reason="BUG: short rows are filled with empty fields and used")
def test_row_with_fewer_fields_than_the_header_is_not_used(tmp_path, table):
    """A row with fewer fields than the header (a file cut at a field boundary, or rows split with
    another delimiter) is read by polars with the missing fields empty, and used when no rule catches
    an empty field. Expected: quarantined (e.g. a 'wrong_field_count' rule) or a structural error."""
    cols = list(VALID[table])
    lines = csv_bytes(_two_rows(table) + [row(table, 3)], cols).decode().splitlines()
    assert not load_suite(table).columns[-1].required
    lines[-1] = ",".join(lines[-1].split(",")[:-1])  # the last (optional) field and its comma lost
    out = ingest_bytes(tmp_path, table, ("\n".join(lines) + "\n").encode())
    assert out.used_row(3) is None


@tables
def test_row_with_more_fields_than_the_header_is_a_structural_error(tmp_path, table):
    cols = list(VALID[table])
    data = csv_bytes(_two_rows(table), cols) + (",".join(VALID[table].values()) + ",Quinzella,1957-03-19\n").encode()
    exc = structural_error(tmp_path, table, data)
    assert "more fields than the header" in str(exc)


@pytest.mark.xfail(strict=True, reason="BUG: the 'more fields than the header' error does not name the row "
                   "(polars does not report it); expected '..., row 3: ...'")
def test_row_with_more_fields_names_the_row(tmp_path):
    cols = list(VALID["members"])
    data = csv_bytes([row("members", 1), row("members", 2)], cols) + (",".join(VALID["members"].values()) + ",x\n").encode()
    exc = structural_error(tmp_path, "members", data)
    assert exc.row == 3


@tables
def test_unclosed_quote_is_a_structural_error_without_values(tmp_path, table):
    cols = list(VALID[table])
    bad = dict(row(table, 2))
    data = csv_bytes([row(table, 1)], cols) + (",".join(f'"{v}' if i == 1 else v for i, v in enumerate(bad.values())) + "\n").encode()
    data += b"Quinzella,Vantongeren,1957-03-19\n"
    structural_error(tmp_path, table, data)  # checks that no PHI value is quoted


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


_SHORT_ROW_BUG = ("BUG (short rows, see test_row_with_fewer_fields_than_the_header_is_not_used): providers has no row "
                  "rule on an empty id_type, so the one-field row is used")


@pytest.mark.parametrize("table", [pytest.param(t, marks=pytest.mark.xfail(strict=True, reason=_SHORT_ROW_BUG))
                                   if t == "providers" else t for t in TABLES])
def test_rows_with_another_delimiter_than_the_header_are_not_used(tmp_path, table):
    """Header with commas, rows with tabs: each row is one field, so nothing can be used."""
    cols = list(VALID[table])
    data = (",".join(cols) + "\n").encode() + b"".join(("\t".join(r.values()) + "\n").encode() for r in _two_rows(table))
    out = ingest_bytes(tmp_path, table, data)
    assert out.result.used == 0 and out.result.quarantined == 2


@tables
def test_latin1_file_is_transcoded(tmp_path, table):
    col = TEXT_COLUMN[table]
    data = csv_bytes([row(table, 1, **{col: LATIN1_TEXT})], encoding="latin-1")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    out = ingest_bytes(tmp_path, table, data)
    assert out.used_row(1)[col] == LATIN1_TEXT


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
