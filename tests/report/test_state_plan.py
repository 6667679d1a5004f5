"""report/state_plan.html and the workbook's plan sheets, from small hand-built plan tables:
suppressed cells show the label and none of their numbers, shown numbers equal the table's, target
status 'insufficient data' is not a pass, the page is offline (no http(s) src/href), the chart is
embedded, and the workbook sheets hold exactly the parquet values."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.charts import RateScale
from equity_pipeline.equity_plans.table import COLUMNS
from equity_pipeline.layout import OutputLayout
from equity_pipeline.report.render import format_count
from equity_pipeline.report.state_plan import difference_text, ratio_text, render_state_plan
from equity_pipeline.suppression import PUBLIC_REASON

LABEL = "suppressed (cell-size policy)"
PER = 100000.0
#: numbers a wrongly-filled suppressed row still carries: none of them may appear on the page
HIDDEN_NUMBERS = {"members": 7, "numerator": 3.0, "denominator": 7.0, "rate": 42857.1428, "ci_lower": 8838.2, "ci_upper": 125247.7}


def _row(**kw) -> dict:
    base = {c: None for c in COLUMNS}
    base.update(plan="state", program="AHEAD", rules_version="2026.1", period="2025", submeasure="all", payer="all",
                stratifier="overall", stratum="all", suppressed=False, direction="lower_is_better", data_source="claims",
                derived_from="computed")
    base.update(kw)
    return base


def _pqi(unit, stratum, members, events, *, stratifier="race_ethnicity", payer="all", suppressed=False, **kw) -> dict:
    rate = events / members * PER
    row = _row(metric_id="PQI90", metric_title="PQI 90 prevention quality overall composite", measure_id="PQI90",
               unit_level="state", unit_id=unit, payer=payer, stratifier=stratifier, stratum=stratum, members=members,
               numerator=float(events), denominator=float(members), rate=rate, ci_lower=rate * 0.8, ci_upper=rate * 1.25,
               rate_type="per_member_years", rate_per=PER, **kw)
    if suppressed:
        row.update(suppressed=True, suppression_reason=PUBLIC_REASON, members=None, numerator=None, denominator=None,
                   rate=None, ci_lower=None, ci_upper=None, target_basis="ratio <= 1.2", target=1.2,
                   target_status="insufficient_data", reference_stratum="White")
    return row


def state_table() -> pl.DataFrame:
    rows = [
        _pqi("MD", "all", 200, 60, stratifier="overall", baseline_period="2024", baseline_value=25000.0, change=5000.0),
        _pqi("MD", "White", 100, 20, is_reference=True, reference_stratum="White"),
        _pqi("MD", "Black", 95, 38, reference_stratum="White", difference=20000.0, difference_ci_lower=5012.3,
             difference_ci_upper=34987.6, ratio=2.0, ratio_ci_lower=1.16, ratio_ci_upper=3.52,
             target=1.2, target_basis="ratio <= 1.2", target_status="not_met"),
        _pqi("MD", "Asian", 5, 1, suppressed=True),
        _row(metric_id="REL_RACE_ETHNICITY", metric_title="Race/ethnicity collection", unit_level="state", unit_id="MD",
             payer="medicaid", stratifier="collection_status", stratum="self_reported", members=95, numerator=85.0,
             denominator=95.0, rate=85 / 95, ci_lower=0.81, ci_upper=0.94, rate_type="proportion", rate_per=1.0,
             direction="higher_is_better", data_source="members"),
        _row(metric_id="REL_RACE_ETHNICITY", metric_title="Race/ethnicity collection", unit_level="state", unit_id="MD",
             payer="medicaid", stratifier="collection_status", stratum="declined", suppressed=True,
             suppression_reason=PUBLIC_REASON, rate_type="proportion", rate_per=1.0, data_source="members"),
        _row(metric_id="SDOH_SCREEN_DOMAIN", metric_title="SDOH screened in domain", unit_level="state", unit_id="MD",
             submeasure="housing", members=150, numerator=120.0, denominator=150.0, rate=0.8, ci_lower=0.729, ci_upper=0.856,
             rate_type="proportion", rate_per=1.0, direction="higher_is_better", data_source="clinical"),
        _row(metric_id="TCOC_PMPM", metric_title="Total cost of care PMPM", measure_id="TCOC_PMPM", unit_level="state",
             unit_id="MD", stratifier="race_ethnicity", stratum="Black", members=95, numerator=412345.67, denominator=1140.0,
             rate=361.71, ci_lower=320.12, ci_upper=403.3, rate_type="usd_pmpm", rate_per=1.0, derived_from="public/rates",
             difference=41.2, difference_ci_lower=-3.1, difference_ci_upper=85.5, ratio=1.128, ratio_ci_lower=0.99,
             ratio_ci_upper=1.28, reference_stratum="White", target_status="insufficient_data", target_basis="ratio <= 1.1",
             target=1.1),
        _pqi("NY", "White", 80, 16, is_reference=True, reference_stratum="White"),
        _pqi("NY", "Black", 50, 15, reference_stratum="White"),
    ]
    return pl.DataFrame(rows, schema=COLUMNS)


def hospital_table() -> pl.DataFrame:
    def h(**kw):
        return _row(plan="hospital", unit_level="facility", unit_id="210001", rate_type="proportion", rate_per=1.0,
                    **kw)
    return pl.DataFrame([
        h(metric_id="HOSP_READMISSION", metric_title="30-day readmission", measure_id="PCR", members=120, numerator=18.0,
          denominator=140.0, rate=18 / 140, ci_lower=0.083, ci_upper=0.195),
        h(metric_id="HOSP_READMISSION", metric_title="30-day readmission", measure_id="PCR", stratifier="dual_eligible",
          stratum="Dual eligible", members=40, numerator=9.0, denominator=45.0, rate=0.2, ci_lower=0.109, ci_upper=0.338,
          difference=0.1053, difference_ci_lower=-0.0112, difference_ci_upper=0.2461, ratio=2.1, ratio_ci_lower=0.95,
          ratio_ci_upper=4.6, reference_stratum="Not dual eligible"),
        h(metric_id="HOSP_READMISSION", metric_title="30-day readmission", measure_id="PCR", stratifier="race_ethnicity",
          stratum="Asian", suppressed=True, suppression_reason=PUBLIC_REASON),
        h(metric_id="DUAL_SHARE", metric_title="Dual-eligible patients", stratifier="dual_eligible", stratum="Dual eligible",
          members=300, numerator=75.0, denominator=300.0, rate=0.25, ci_lower=0.205, ci_upper=0.301, data_source="enrollment"),
        h(metric_id="SDOH_POSITIVE_FACILITY", metric_title="SDOH positive", submeasure="food", suppressed=True,
          suppression_reason=PUBLIC_REASON, data_source="clinical"),
    ], schema=COLUMNS)


def _wrongly_filled(frame: pl.DataFrame) -> pl.DataFrame:
    """Suppressed rows that (wrongly) still carry numbers: the page must not show them."""
    return frame.with_columns(pl.when(pl.col("suppressed")).then(pl.lit(v)).otherwise(pl.col(c)).cast(COLUMNS[c]).alias(c)
                              for c, v in HIDDEN_NUMBERS.items())


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("run") / "report"
    path = render_state_plan(_wrongly_filled(state_table()), _wrongly_filled(hospital_table()), {"run_id": "r1"}, out)
    assert path.name == "state_plan.html"
    return path.read_text(encoding="utf-8")


def _rows_of(html: str) -> list[list[str]]:
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        rows.append([re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, flags=re.S)])
    return rows


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_suppressed_cells_show_the_label_and_no_number(page: str) -> None:
    rows = [[_unescape(c) for c in r] for r in _rows_of(page)]
    suppressed = [r for r in rows if LABEL in r]
    # PQI Asian, REL declined, readmission Asian, SDOH positive food
    assert len(suppressed) == 4
    for r in suppressed:
        numbers = [c for c in r if re.match(r"[-+$]?\d", c) and c not in ("30-day readmission",)]
        assert numbers == [], r
        assert r.count(LABEL) >= 6
    text = _unescape(page)
    for v in ("42,857", "42857", "8,838", "125,247", "42.9"):
        assert v not in text


def test_shown_numbers_equal_the_table(page: str) -> None:
    text = _unescape(page)
    scale = RateScale.of("per_member_years", PER)
    for r in state_table().filter(~pl.col("suppressed")).iter_rows(named=True):
        s = RateScale.of(r["rate_type"], r["rate_per"])
        assert s.rate_with_ci(r["rate"], r["ci_lower"], r["ci_upper"]) in text, r
        assert format_count(r["members"]) in text
    black = state_table().filter((pl.col("unit_id") == "MD") & (pl.col("stratum") == "Black") & (pl.col("metric_id") == "PQI90")).row(0, named=True)
    assert ratio_text(2.0, 1.16, 3.52) == "2.00 (1.16\u20133.52)"
    row = next(r for r in _rows_of(text) if r[:2] == ["All payers", "Black"])
    assert ratio_text(black["ratio"], black["ratio_ci_lower"], black["ratio_ci_upper"]) in row
    assert difference_text(black["difference"], black["difference_ci_lower"], black["difference_ci_upper"], scale) in row
    assert "not met" in row
    hosp = hospital_table().filter(pl.col("stratum") == "Dual eligible").row(0, named=True)
    gap = difference_text(hosp["difference"], hosp["difference_ci_lower"], hosp["difference_ci_upper"], RateScale())
    assert gap == "+10.5 pp (-1.1 pp to +24.6 pp)"
    assert gap in text
    assert "+5,000.0 per 100,000 member-years vs 2024" in text  # change against the baseline


def test_insufficient_data_is_not_a_pass(page: str) -> None:
    rows = [[_unescape(c) for c in r] for r in _rows_of(page)]
    tcoc = next(r for r in rows if "Total cost of care PMPM" in r)
    assert tcoc[-1] == "insufficient data"
    assert "met" not in tcoc[-1].split()


def test_every_table_states_denominator_and_source(page: str) -> None:
    tables = re.findall(r"<table>(.*?)</table>", page, flags=re.S)
    assert len(tables) >= 6
    for t in tables:
        caption = re.search(r"<caption>(.*?)</caption>", t, flags=re.S).group(1)
        assert "Denominator" in caption and "Data source:" in caption


def test_offline_and_chart_embedded(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert "<script" not in page.lower()
    assert "@media print" in page and "break-before: page" in page
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2  # one chart per state (MD, NY)
    for b64 in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG")
    assert page.count("<img") == 2


def test_workbook_plan_sheets_match_parquet(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    from equity_pipeline.report.workbook import write_workbook
    from tests.report.test_report_html import MANIFEST, sample_rates
    from tests.report.test_workbook import _assert_equal_to_public

    layout = OutputLayout(tmp_path)
    path = layout.workbook
    state, hospital = state_table(), hospital_table()
    counts = write_workbook(path, sample_rates(), MANIFEST, state_metrics=state, hospital_metrics=hospital)
    assert counts["sheets"][-2:] == ["state_metrics", "hospital_metrics"]
    assert counts["state_metrics_suppressed"] == 2 and counts["hospital_metrics_suppressed"] == 2
    _assert_equal_to_public(path, "state_metrics", state)
    _assert_equal_to_public(path, "hospital_metrics", hospital)
    ws = openpyxl.load_workbook(path)["state_metrics"]
    header = [c.value for c in ws[1]]
    rate_col = header.index("rate") + 1
    formats = {ws.cell(row=i, column=header.index("metric_id") + 1).value: ws.cell(row=i, column=rate_col).number_format
               for i in range(2, ws.max_row + 1) if isinstance(ws.cell(row=i, column=rate_col).value, int | float)}
    assert "per 100,000 member-years" in formats["PQI90"]
    assert formats["REL_RACE_ETHNICITY"] == "0.0%"
    assert "PMPM" in formats["TCOC_PMPM"]


def test_pipeline_builds_the_page_and_workbook_sheets(tmp_path: Path) -> None:
    from equity_pipeline import pipeline

    layout = OutputLayout(tmp_path).prepare()
    layout.equity_plan.mkdir(parents=True, exist_ok=True)
    state_table().write_parquet(layout.state_metrics)
    hospital_table().write_parquet(layout.hospital_metrics)
    meta = pipeline.build_state_plan(layout, None, "run-1")
    assert meta["path"] == "report/state_plan.html" and layout.state_plan_report.is_file()
    assert meta["state_sections"] == 2 and meta["facility_sections"] == 1


def test_state_plan_asset_in_the_graph() -> None:
    from assets.definitions import defs

    graph = defs.resolve_asset_graph()
    by_name = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
    node = graph.get(by_name["state_plan_report"])
    assert node.group_name == "reports"
    assert {"state_metrics", "hospital_metrics"} <= {k.to_user_string() for k in node.parent_keys}
    workbook = {k.to_user_string() for k in graph.get(by_name["equity_workbook"]).parent_keys}
    assert {"state_metrics", "hospital_metrics"} <= workbook
