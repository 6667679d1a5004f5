"""The report's disparity parts (from public/disparities.parquet) and its REL completeness panel:
largest significant gaps, rate-ratio forest plots, completeness shares; all optional, all suppressed."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.report import build_context, render_report
from equity_pipeline.report.completeness import rel_completeness
from equity_pipeline.report.gaps import comparisons, unit_comparisons
from tests.report.frames import disparity, disparity_frame, members
from tests.report.test_report_html import MANIFEST, MEASURES, PNG_SIGNATURE, _parsed, _text, sample_rates


def sample_disparities() -> pl.DataFrame:
    return disparity_frame([
        # BCS-E (higher is better), reference White 74.0%
        disparity("BCS-E", "race_ethnicity", "White", "White", 0.74, 0.74),
        disparity("BCS-E", "race_ethnicity", "Hispanic or Latino", "White", 0.641, 0.74, (0.83, 0.90), 0.0001),
        disparity("BCS-E", "race_ethnicity", "Black or African American", "White", 0.70, 0.74, (0.90, 1.01), 0.09),
        disparity("BCS-E", "race_ethnicity", "Asian", "White"),  # suppressed
        disparity("BCS-E", "race_ethnicity", "Multiracial", "White"),  # suppressed
        # non-response: compared, flagged worse by the table, never a gap
        disparity("BCS-E", "race_ethnicity", "Unknown", "White", 0.55, 0.74, (0.68, 0.81), 0.0001, status="unknown_group"),
        disparity("BCS-E", "race_ethnicity", "Declined", "White", 0.80, 0.74, (1.01, 1.16), 0.03, status="unknown_group"),
        # language against English; Spanish significantly worse but with too few members to judge
        disparity("BCS-E", "language", "English", "English", 0.70, 0.70),
        disparity("BCS-E", "language", "Spanish", "English", 0.667, 0.70, (0.91, 0.99), 0.01, insufficient=True),
        # ED (lower is better), reference Black or African American 23.5
        disparity("ED", "race_ethnicity", "Black or African American", "Black or African American", 23.5, 23.5),
        disparity("ED", "race_ethnicity", "Asian", "Black or African American", 34.6, 23.5, (1.2, 1.8), 0.001),
        disparity("ED", "race_ethnicity", "White", "Black or African American", 30.9, 23.5, (1.1, 1.6), 0.002),
        # by age band: in the plots, never in the executive summary (age differences mostly reflect need)
        disparity("ED", "age_band", "0-17", "0-17", 10.0, 10.0),
        disparity("ED", "age_band", "75+", "0-17", 90.0, 10.0, (7.0, 11.0), 0.0001),
        # a rate of zero in the reference: an infinite ratio is not ranked
        disparity("PCR", "race_ethnicity", "Asian", "Asian", 0.0, 0.0),
        disparity("PCR", "race_ethnicity", "White", "Asian", 0.12, 0.0, (5.0, float("inf")), 0.0001),
        # a state unit: never in the executive summary (all members only)
        disparity("ED", "race_ethnicity", "White", "White", 30.0, 30.0, unit="NY"),
        disparity("ED", "race_ethnicity", "Asian", "White", 60.0, 30.0, (1.5, 2.8), 0.0001, unit="NY"),
    ])


def sample_completeness() -> pl.DataFrame:
    return rel_completeness(members([
        ("2106-3", "self_reported", "en", "36047", 400),
        ("2054-5", "imputed", "es", "36047", 60),
        ("ASKU", "self_reported", "ASKU", "36047", 30),
        ("UNK", "unknown", "UNK", "36047", 7),  # 1-10: suppressed, with a complement
    ]), 2024)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("run") / "report"
    path = render_report(sample_rates(), MANIFEST, out, measures=MEASURES, disparities=sample_disparities(),
                         completeness=sample_completeness())
    return path.read_text(encoding="utf-8")


def _section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start:html.index("</section>", start)]


def test_largest_gaps_in_order_and_only_real_gaps() -> None:
    ctx = build_context(sample_rates(), MANIFEST, charts=False, disparities=sample_disparities())
    gaps = [(g["measure_id"], g["stratifier"], g["group"], g["others"]) for g in ctx["gaps"]]
    # one item per measure x stratifier, furthest from parity first: ED Asian 1.47 (White 1.31 also
    # worse), BCS-E Hispanic 0.87; not Black (not significant), Unknown/Declined (non-response),
    # Spanish (insufficient data), NY (a state unit), age band (left to the plots), PCR (infinite ratio)
    assert gaps == [("ED", "race_ethnicity", "Asian", ["White"]),
                    ("BCS-E", "race_ethnicity", "Hispanic or Latino", [])]


def test_gap_sentences(rendered: str) -> None:
    text = _text(_section(rendered, "summary"), sep="")
    assert "Largest significant gaps" in text
    assert ("Emergency Department Visits, by race and ethnicity: 34.6 per 1,000 member-months for Asian vs "
            "23.5 per 1,000 member-months for Black or African American (reference); rate ratio 1.47 (95% CI 1.20\u20131.80)") in text
    assert ("A difference of 11.1 per 1,000 member-months; adjusted p = 0.001; lower is better. "
            "Also significantly worse than Black or African American: White (1.31).") in text
    assert "differences by age band are left out here" in text
    assert ("Breast Cancer Screening, by race and ethnicity: 64.1% for Hispanic or Latino vs 74.0% for White (reference); "
            "rate ratio 0.87 (95% CI 0.83\u20130.90)") in text
    assert "A gap of 9.9 percentage points; adjusted p < 0.001; higher is better." in text
    assert text.index("Emergency Department Visits, by") < text.index("Breast Cancer Screening, by")


def test_forest_plots_are_png_data_uris(rendered: str) -> None:
    block = _section(rendered, "bcs-e-ratios-race-ethnicity")
    imgs = _parsed(block).imgs
    assert len(imgs) == 1
    src = imgs[0]["src"] or ""
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert int(imgs[0]["width"]) == 720 and int(imgs[0]["height"]) > 150
    alt = imgs[0]["alt"] or ""
    assert "rate ratios by race and ethnicity against White" in alt and "1 of 4 groups differ significantly" in alt
    # one forest per stratifier of the population unit with comparisons; none for state units
    assert 'id="bcs-e-ratios-language"' in rendered and 'id="ed-ratios-race-ethnicity"' in rendered
    assert "ed-ratios-race-ethnicity" in rendered and "NY" not in _text(_section(rendered, "ed-ratios-race-ethnicity"))


def test_forest_table_marks_reference_suppressed_and_verdicts(rendered: str) -> None:
    block = _section(rendered, "bcs-e-ratios-race-ethnicity")
    rows = {name: _text(cells) for cls, name, cells in
            re.findall(r'<tr( class="suppressed")?><th scope="row">(.*?)</th>(.*?)</tr>', block, re.S)}
    assert "1 (reference)" in rows["White (reference)"] and "74.0%" in rows["White (reference)"]
    assert "0.87 (95% CI 0.83\u20130.90)" in rows["Hispanic or Latino"] and "yes" in rows["Hispanic or Latino"]
    assert rows["Black or African American"].split()[-1] == "no"
    assert rows["Asian"].strip() == "suppressed" and rows["Multiracial"].strip() == "suppressed"
    assert "not tested" in rows["Unknown"]
    lang = _section(rendered, "bcs-e-ratios-language")
    assert "insufficient data" in _text(lang)


def test_no_disparities_no_disparity_parts(tmp_path: Path) -> None:
    html = render_report(sample_rates(), MANIFEST, tmp_path / "report").read_text(encoding="utf-8")
    assert "largest-gaps" not in html and "-ratios-" not in html and 'id="completeness"' not in html
    # an unusable table (missing columns) is ignored rather than failing the report
    assert comparisons(sample_disparities().drop("worse_than_reference")).height == 0


def test_unit_comparisons_order() -> None:
    compared, reference = unit_comparisons(comparisons(sample_disparities()), measure_id="BCS-E", stratifier="race_ethnicity")
    assert reference is not None and reference.group == "White"
    assert [c.group for c in compared] == ["Declined", "Black or African American", "Hispanic or Latino", "Unknown",
                                           "Asian", "Multiracial"]
    assert all(c.ratio is None and c.rate is None for c in compared if c.suppressed)


def test_completeness_panel(rendered: str) -> None:
    block = _section(rendered, "completeness")
    text = _text(block)
    assert "Data completeness: race, ethnicity and language" in text
    race = block.split("<caption>Race and ethnicity: how it was collected, all members (497)</caption>", 1)[1].split("</table>", 1)[0]
    rows = {name: _text(cells) for cls, name, cells in
            re.findall(r'<tr( class="suppressed")?><th scope="row">(.*?)</th>(.*?)</tr>', race, re.S)}
    assert rows["Self-reported (direct)"].split()[:2] == ["400", "80.5%"]
    assert rows["Reported, source not stated"].split()[:2] == ["0", "0.0%"]  # zero is published
    assert rows["Unknown (not collected)"].strip() == "suppressed (cell-size policy)"
    hidden = [r for r in rows.values() if r.strip().startswith("suppressed")]
    assert len(hidden) >= 2  # the small cell and its complement
    assert {r.strip() for r in hidden} == {"suppressed (cell-size policy)"}  # alike: the kind is not told
    assert " 7 " not in f" {text} "  # the suppressed count itself never appears
    # the by-state table carries shares or labels only
    assert "NY" in text


def test_still_self_contained(rendered: str) -> None:
    assert "<script" not in rendered.lower() and "<link" not in rendered.lower()
    for tag, name, value in _parsed(rendered).attrs:
        if name in ("src", "href", "srcset"):
            assert (value or "").startswith(("#", "data:image/png;base64,")), (tag, name, (value or "")[:60])
