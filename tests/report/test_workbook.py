"""report/equity_report.xlsx read back with openpyxl: every figure equals the public table's,
suppressed exactly as public, formats by rate type, frozen header, autofilter, README sheet."""
from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

openpyxl = pytest.importorskip("openpyxl", reason="openpyxl (dev extra) reads the workbook back")

from equity_pipeline.report.completeness import rel_completeness  # noqa: E402
from equity_pipeline.report.render import REQUIRED_COLUMNS  # noqa: E402
from equity_pipeline.report.workbook import write_workbook  # noqa: E402
from equity_pipeline.suppression import PUBLIC_REASON, publishable_reasons  # noqa: E402
from tests.report.frames import disparity, disparity_frame, members  # noqa: E402
from tests.report.test_report_html import MANIFEST, sample_rates  # noqa: E402

SUPPRESSED_LABELS = {PUBLIC_REASON: "suppressed (cell-size policy)"}   # the one public reason, in the report's words


def sample_disparities() -> pl.DataFrame:
    return disparity_frame([
        disparity("BCS-E", "race_ethnicity", "White", "White", 0.74, 0.74),
        disparity("BCS-E", "race_ethnicity", "Hispanic or Latino", "White", 0.641, 0.74, (0.83, 0.90), 0.0001),
        disparity("BCS-E", "race_ethnicity", "Asian", "White"),
        disparity("ED", "race_ethnicity", "Asian", "Black or African American", 34.6, 23.5, (1.2, 1.8), 0.001),
    ])


def sample_summary() -> pl.DataFrame:
    return pl.DataFrame({
        "measure_id": ["BCS-E", "BCS-E"], "stratifier": ["race_ethnicity"] * 2,
        "summary_measure": ["range_difference", "between_group_variance"], "value": [0.099, float("nan")],
        "groups_used": [3, 3], "strata_used": [["White", "Hispanic or Latino", "Black or African American"]] * 2,
    })


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("run") / "report" / "equity_report.xlsx"
    completeness = rel_completeness(members([("2106-3", "self_reported", "en", "36047", 40),
                                             ("ASKU", "self_reported", "es", "36047", 5)]), 2024)
    tables = {"rates": publishable_reasons(sample_rates()), "disparities": sample_disparities(), "disparity_summary": sample_summary(),
              "completeness": completeness}
    counts = write_workbook(path, tables["rates"], MANIFEST, disparities=tables["disparities"],
                            disparity_summary=tables["disparity_summary"], completeness=completeness)
    return path, {"counts": counts, **tables}


def _sheet_rows(path: Path, name: str) -> tuple[list[str], list[list]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = [list(r) for r in wb[name].iter_rows(values_only=True)]
    return rows[0], rows[1:]


def _as_written(value: float) -> float:
    """What an .xlsx holds for a float: 16 significant digits (Excel keeps 15)."""
    return float(f"{value:.16G}")


def _assert_equal_to_public(path: Path, name: str, frame: pl.DataFrame) -> None:
    header, rows = _sheet_rows(path, name)
    assert header == frame.columns
    assert len(rows) == frame.height
    numeric = {c for c, dtype in frame.schema.items() if dtype.is_numeric()}
    for got, want in zip(rows, frame.iter_rows(named=True)):
        hidden = bool(want.get("suppressed"))
        for column, cell in zip(header, got):
            value = want[column]
            if value is None:
                if hidden and column in numeric:  # the public table's reason, in the report's words
                    assert cell == SUPPRESSED_LABELS.get(want.get("suppression_reason"), "suppressed"), (column, want)
                else:
                    assert cell is None, (column, cell)
            elif isinstance(value, bool):
                assert cell is value
            elif isinstance(value, float):
                if math.isfinite(value):
                    assert isinstance(cell, int | float) and cell == _as_written(value), (column, cell, value)
                else:
                    assert cell == "not defined"
            elif isinstance(value, int):
                assert cell == value
            elif isinstance(value, list):
                assert cell == "; ".join(value)
            else:
                assert cell == str(value)


def test_sheets_in_order(book: tuple[Path, dict]) -> None:
    path, t = book
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["README", "rates", "disparities", "disparity_summary", "completeness"]
    assert t["counts"]["rates_rows"] == t["rates"].height
    assert t["counts"]["rates_suppressed"] == int(t["rates"]["suppressed"].sum())


def test_rates_sheet_equals_public_rates(book: tuple[Path, dict]) -> None:
    path, t = book
    _assert_equal_to_public(path, "rates", t["rates"].select(REQUIRED_COLUMNS))


def test_other_sheets_equal_their_tables(book: tuple[Path, dict]) -> None:
    path, t = book
    for name in ("disparities", "disparity_summary", "completeness"):
        _assert_equal_to_public(path, name, t[name])


def test_the_kind_of_suppression_is_never_written(tmp_path: Path) -> None:
    """A rates frame that (wrongly) carries the restricted kinds: the sheet's reason column and the
    labels in its number cells still say only the public reason."""
    rates = sample_rates()
    assert {"small cell (1-10)", "complementary"} <= set(rates["suppression_reason"].drop_nulls())
    path = tmp_path / "equity_report.xlsx"
    write_workbook(path, rates, MANIFEST)
    header, rows = _sheet_rows(path, "rates")
    reason, flag = header.index("suppression_reason"), header.index("suppressed")
    assert {r[reason] for r in rows if r[flag]} == {PUBLIC_REASON} and {r[reason] for r in rows if not r[flag]} == {None}
    labels = {v for r in rows if r[flag] for v in r if isinstance(v, str) and v.startswith("suppressed")}
    assert labels == {"suppressed (cell-size policy)"}


def test_suppressed_exactly_as_public(book: tuple[Path, dict]) -> None:
    path, t = book
    header, rows = _sheet_rows(path, "rates")
    flag = header.index("suppressed")
    assert [r[flag] for r in rows] == t["rates"]["suppressed"].to_list()
    numbers = [header.index(c) for c in ("members", "denominator", "numerator", "rate", "ci_lower", "ci_upper")]
    for r in rows:
        if r[flag]:
            assert all(isinstance(r[i], str) and r[i].startswith("suppressed") for i in numbers), r
        else:
            assert not any(isinstance(r[i], str) for i in numbers), r


def test_frozen_header_autofilter_and_formats(book: tuple[Path, dict]) -> None:
    path, t = book
    wb = openpyxl.load_workbook(path)
    ws = wb["rates"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:U{t['rates'].height + 1}"
    header = [c.value for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    formats: dict[str, set[str]] = {}
    grey = set()
    for row in ws.iter_rows(min_row=2):
        rate_type = row[col["rate_type"]].value
        if row[col["suppressed"]].value:
            grey.add(row[col["rate"]].font.color.rgb)
            continue
        formats.setdefault(rate_type, set()).add(row[col["rate"]].number_format)
        assert row[col["ci_lower"]].number_format == row[col["rate"]].number_format
    assert formats["proportion"] == {"0.0%"} and formats["share_of_spend"] == {"0.0%"}
    assert formats["per_member_months"] == {'#,##0.0" per 1,000 member-months"'}
    assert formats["usd_pmpm"] == {'"$"#,##0.00" PMPM"'}
    assert grey == {"FF595959"}
    for name in ("disparities", "disparity_summary", "completeness"):
        assert wb[name].freeze_panes == "A2" and wb[name].auto_filter.ref


def test_readme_sheet(book: tuple[Path, dict]) -> None:
    path, _ = book
    wb = openpyxl.load_workbook(path, read_only=True)
    text = "\n".join(" ".join(str(v) for v in r if v is not None) for r in wb["README"].iter_rows(values_only=True))
    assert "run-20250114-abc123" in text
    assert "numerator, denominator or complement is 1\u201310" in text and "Complementary suppression" in text
    assert "members.csv" in text and "ab" * 32 in text and "/data/in" not in text
    assert "Breast Cancer Screening" in text and "hybrid" in text
    for sheet in ("rates", "disparities", "disparity_summary", "completeness"):
        assert f"  {sheet}" in text


def test_only_public_rate_columns_and_no_member_data(tmp_path: Path) -> None:
    rates = sample_rates().with_columns(pl.lit("M-0001234").alias("member_id"))
    path = tmp_path / "book.xlsx"
    write_workbook(path, rates, MANIFEST)
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["README", "rates"]
    text = "\n".join(str(v) for ws in wb for r in ws.iter_rows(values_only=True) for v in r if v is not None)
    assert "M-0001234" not in text and "member_id" not in text


def test_disparity_formats(book: tuple[Path, dict]) -> None:
    path, _ = book
    ws = openpyxl.load_workbook(path)["disparities"]
    header = [c.value for c in ws[1]]
    hispanic = next(r for r in ws.iter_rows(min_row=2) if r[header.index("stratum")].value == "Hispanic or Latino")
    fmt = {c: hispanic[header.index(c)].number_format for c in ("rate", "reference_rate", "difference", "ratio", "ratio_ci_lower", "p_adjusted")}
    assert fmt == {"rate": "0.0%", "reference_rate": "0.0%", "difference": "+0.0%;-0.0%;0.0%", "ratio": "0.000",
                   "ratio_ci_lower": "0.000", "p_adjusted": "0.0000"}
    ed = next(r for r in ws.iter_rows(min_row=2) if r[header.index("measure_id")].value == "ED")
    assert ed[header.index("rate")].number_format == '#,##0.0" per 1,000 member-months"'
    assert ed[header.index("difference")].number_format.startswith('+#,##0.0" per 1,000 member-months"')
