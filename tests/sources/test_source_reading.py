"""sources.common.read_table: one way every source reader reads a file (issue 8 "robust reading").

Small hand-made files, each with one difficulty: Latin-1 accents, a UTF-8 BOM, CRLF line ends, pipe /
tab / semicolon vs comma, quoted fields holding the delimiter or a line break, leading zeros on
ZIP / FIPS / NPI, Parquet with numbers and lists. The expected values are written out by hand.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.errors import StructuralError
from equity_pipeline.sources.common import SOURCE_ROW, detect_encoding, find_source_files, read_table, sniff_delimiter

HEADER = ["zip", "county_fips", "npi", "name"]
ROWS = [["02134", "01001", "0123456789", "José Núñez"], ["00501", "36047", "1234567893", "Zoë"]]


def _text(delimiter: str, eol: str = "\n") -> str:
    return eol.join(delimiter.join(r) for r in [HEADER, *ROWS]) + eol


def _values(frame: pl.DataFrame) -> list[list[str]]:
    return [list(r) for r in frame.select(HEADER).iter_rows()]


@pytest.mark.parametrize("delimiter", [",", "|", "\t", ";"])
def test_delimiter_is_sniffed_and_leading_zeros_are_kept(tmp_path, delimiter):
    path = tmp_path / "t.csv"
    path.write_text(_text(delimiter), encoding="utf-8")
    frame = read_table(path)
    assert frame.columns == [SOURCE_ROW, *HEADER]
    assert all(frame.schema[c] == pl.String for c in HEADER)  # text, never numbers
    assert _values(frame) == ROWS
    assert frame[SOURCE_ROW].to_list() == [1, 2]


def test_latin1_file_is_detected_and_transcoded(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(_text("|").encode("latin-1"))
    assert b"Jos\xe9" in path.read_bytes()  # really Latin-1 bytes, not UTF-8
    assert detect_encoding(path) == "latin-1"
    assert _values(read_table(path)) == ROWS
    assert not list(tmp_path.glob(".source.*"))  # no transcoded copy left behind


def test_latin1_byte_after_the_first_megabyte_is_still_found(tmp_path):
    """The whole file is checked, not a sample: one é far down a large file means Latin-1."""
    path = tmp_path / "big.csv"
    filler = "".join(f"{i:05d},01001,1234567893,Ann\n" for i in range(40_000))  # ~1.1 MB of ASCII
    path.write_bytes(("zip,county_fips,npi,name\n" + filler).encode("ascii") + "99999,01001,1234567893,Ren\xe9\n".encode("latin-1"))
    assert path.stat().st_size > 1 << 20
    assert detect_encoding(path) == "latin-1"
    frame = read_table(path)
    assert frame.height == 40_001 and frame["name"][-1] == "René"


def test_utf8_bom_and_crlf(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _text(",", "\r\n").encode("utf-8"))
    assert detect_encoding(path) == "utf-8"
    frame = read_table(path, required=("zip", "name"))
    assert frame.columns == [SOURCE_ROW, *HEADER]  # no BOM on the first name, no \r on the last
    assert _values(frame) == ROWS
    assert not any("\r" in v for row in _values(frame) for v in row)


def test_declared_encoding_and_delimiter_win_over_detection(tmp_path):
    # cp1252 curly quotes (0x93/0x94) are control characters in Latin-1: only the declared codec reads them
    path = tmp_path / "cp1252.txt"
    path.write_bytes("a;b\n\u201cx\u201d;1,5\n".encode("cp1252"))
    frame = read_table(path, encoding="cp1252", delimiter=";")
    assert frame.select("a", "b").row(0) == ("\u201cx\u201d", "1,5")
    # the header has more commas than semicolons inside one quoted name: declared ';' is used as is
    path2 = tmp_path / "declared.csv"
    path2.write_text('"x,y,z";b\n1;2\n', encoding="utf-8")
    assert read_table(path2, delimiter=";").columns == [SOURCE_ROW, "x,y,z", "b"]


def test_quoted_fields_keep_delimiters_and_line_breaks(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('id,note,zip\r\n1,"Apt 2, rear","02134"\r\n2,"two\nlines",""\r\n3,"say ""hi""",  \r\n', encoding="utf-8")
    frame = read_table(path)
    assert frame["note"].to_list() == ["Apt 2, rear", "two\nlines", 'say "hi"']
    assert frame["zip"].to_list() == ["02134", None, None]  # quoted empty and blank-only become null
    assert frame[SOURCE_ROW].to_list() == [1, 2, 3]  # data rows, not physical lines


def test_sniffer_ignores_delimiters_inside_quoted_header_names():
    assert sniff_delimiter('"a,b,c"|d|e\n') == "|"
    assert sniff_delimiter("single_column\n") == ","
    # none of , | tab ; : csv.Sniffer's guess when it is punctuation, never a letter of a lone name
    assert sniff_delimiter("member_id:payer:start\n") == ":"
    for lone in ("member\n", "x\r\n", "member id\n", "member-id\n"):
        assert sniff_delimiter(lone) == ",", lone


def test_parquet_is_read_as_text(tmp_path):
    path = tmp_path / "t.parquet"
    pl.DataFrame({"zip": ["02134"], "n": [7], "x": [1.5], "codes": [["2106-3", "2135-2"]]}).write_parquet(path)
    frame = read_table(path)
    assert frame.row(0, named=True) == {SOURCE_ROW: 1, "zip": "02134", "n": "7", "x": "1.5", "codes": "2106-3|2135-2"}


def test_values_trimmed_empty_is_null_names_matched_case_insensitively(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(" Member_ID , ZIP \n  a1 ,   \n", encoding="utf-8")
    frame = read_table(path, required=("member_id",), optional=("zip", "absent_col"))
    assert frame.row(0, named=True) == {SOURCE_ROW: 1, "member_id": "a1", "zip": None, "absent_col": None}


def test_structural_faults_name_file_and_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(StructuralError, match=r"t\.csv, column member_id: required column is missing"):
        read_table(path, required=("member_id",))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(StructuralError, match="empty.csv: file is empty"):
        read_table(empty)
    with pytest.raises(StructuralError, match="label_only: file not found"):
        read_table(tmp_path / "Jane_Doe_bundle.csv", label="label_only")


def test_find_source_files_by_stem_or_prefix(tmp_path: Path):
    for name in ("eligibility.csv", "eligibility_seed.CSV", "SDOH_PtInfo_Org_1_20250101.csv", "SDOH_PtInfo_Org_2_20250102.txt",
                 "SDOH_PtInfo_notes.docx", "other.csv"):
        (tmp_path / name).write_text("a\n1\n")
    assert [p.name for p in find_source_files(tmp_path, "eligibility")] == ["eligibility.csv"]
    assert [p.name for p in find_source_files(tmp_path, "eligibility_seed")] == ["eligibility_seed.CSV"]
    assert [p.name for p in find_source_files(tmp_path, "SDOH_PtInfo", prefix=True)] == [
        "SDOH_PtInfo_Org_1_20250101.csv", "SDOH_PtInfo_Org_2_20250102.txt"]


def test_gzipped_csv_latin1_and_utf8(tmp_path):
    import gzip

    for name, enc in (("a.csv.gz", "latin-1"), ("b.csv.gz", "utf-8")):
        with gzip.open(tmp_path / name, "wb") as fh:
            fh.write(_text("|", "\r\n").encode(enc))
        assert detect_encoding(tmp_path / name) == enc
        assert _values(read_table(tmp_path / name)) == ROWS
