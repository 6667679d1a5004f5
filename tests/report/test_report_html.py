"""render_report: self-contained page, embedded PNG charts, suppression respected, every rate type
in its unit, worst/best by direction, sub-measure tables, members column, charts only where useful."""
from __future__ import annotations

import base64
import io
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.charts import RateScale, group_rates
from equity_pipeline.report import build_context, render_report
from equity_pipeline.report.render import (
    REQUIRED_COLUMNS,
    extremes,
    summary_sentence,
    suppression_label,
)
from tests.report.frames import frame, row

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sample_rates() -> pl.DataFrame:
    rows = [
        # BCS-E: proportion, higher is better, hybrid; population + MA
        row("BCS-E", "overall", "all", 4000, 2800, (0.686, 0.714)),
        # rates: White 74.0%, Hispanic 64.1%, Unknown 55.0% (lower, but non-response), Declined 80.0%
        row("BCS-E", "race_ethnicity", "White", 2000, 1480, (0.731, 0.749)),
        row("BCS-E", "race_ethnicity", "Hispanic or Latino", 1000, 641, (0.620, 0.661)),
        row("BCS-E", "race_ethnicity", "Black or African American", 600, 420, (0.663, 0.736)),
        row("BCS-E", "race_ethnicity", "Asian", reason="small cell (1-10)"),
        row("BCS-E", "race_ethnicity", "Multiracial", reason="complementary"),
        row("BCS-E", "race_ethnicity", "Unknown", 200, 110, (0.481, 0.617)),
        row("BCS-E", "race_ethnicity", "Declined", 100, 80, (0.711, 0.867)),
        row("BCS-E", "language", "English", 3000, 2100, (0.684, 0.716)),
        row("BCS-E", "language", "Spanish", 900, 600, (0.636, 0.697)),
        row("BCS-E", "language", "Unknown", reason="small cell (1-10)"),
        row("BCS-E", "overall", "all", 1500, 1000, (0.643, 0.690), unit="MA"),
        row("BCS-E", "race_ethnicity", "White", 900, 630, (0.670, 0.729), unit="MA"),
        row("BCS-E", "race_ethnicity", "Declined", reason="small cell (1-10)", unit="MA"),
        row("BCS-E", "language", "English", 1400, 930, (0.640, 0.688), unit="MA"),
        # PCR: proportion, lower is better, claims; in MA every group is suppressed
        row("PCR", "overall", "all", 3000, 300, (0.089, 0.111)),
        row("PCR", "race_ethnicity", "Asian", 500, 30, (0.039, 0.081)),
        row("PCR", "race_ethnicity", "White", 2000, 240, (0.106, 0.134)),
        row("PCR", "overall", "all", 800, 90, (0.092, 0.137), unit="MA"),
        row("PCR", "race_ethnicity", "Asian", unit="MA"),
        row("PCR", "race_ethnicity", "White", unit="MA", reason="complementary"),
        # ED: events per 1,000 member-months, lower is better; population + NY; counties by FIPS
        row("ED", "overall", "all", 55_181, 1_694, (29.3, 32.2), members=4_755),
        row("ED", "race_ethnicity", "White", 21_003, 650, (28.6, 33.4), members=1_808),
        row("ED", "race_ethnicity", "Asian", 4_624, 160, (29.4, 40.3), members=402),
        row("ED", "race_ethnicity", "Black or African American", 8_508, 200, (20.4, 27.0), members=740),
        row("ED", "county", "36047", 30_000, 900, (28.1, 32.0), members=2_600),
        row("ED", "county", "Unknown", 25_181, 794, (29.4, 33.8), members=2_155),
        row("ED", "overall", "all", 16_998, 484, (26.0, 31.1), unit="NY", members=1_461),
        row("ED", "race_ethnicity", "White", 9_000, 270, (26.6, 33.8), unit="NY", members=780),
        row("ED", "race_ethnicity", "Asian", unit="NY"),
        row("ED", "county", "36047", 16_998, 484, (26.0, 31.1), unit="NY", members=1_461),
        # TCOC: dollars PMPM, lower is better
        row("TCOC", "overall", "all", 55_181, 17_087_833, (296.1, 323.2), members=4_755),
        row("TCOC", "race_ethnicity", "White", 21_003, 6_696_100, (295.6, 342.0), members=1_808),
        row("TCOC", "race_ethnicity", "Asian", 4_624, 1_482_800, (275.7, 365.6), members=402),
        # PCS: share of spend, higher is better
        row("PCS", "overall", "all", 17_087_833, 1_316_000, (0.068, 0.086), members=4_755),
        row("PCS", "race_ethnicity", "White", 6_696_100, 508_900, (0.066, 0.086), members=1_808),
        row("PCS", "race_ethnicity", "Asian", 1_482_800, 103_800, (0.055, 0.085), members=402),
        # CHL: proportion with age rows (sub-measures) besides the whole measure
        row("CHL", "overall", "all", 400, 200, (0.451, 0.549)),
        row("CHL", "overall", "all", submeasure="16-20", reason="small cell (1-10)"),
        row("CHL", "overall", "all", submeasure="21-24", reason="complementary"),
        row("CHL", "race_ethnicity", "White", 300, 150, (0.444, 0.556)),
        row("CHL", "race_ethnicity", "Asian", reason="small cell (1-10)"),
        row("CHL", "race_ethnicity", "White", 150, 70, (0.388, 0.546), submeasure="21-24"),
    ]
    return frame(rows)


MANIFEST = {
    "run_id": "run-20250114-abc123",
    "created_at": "2025-01-14T10:15:00Z",
    "package_version": "0.1.0",
    "inputs": [{"table": "members", "file": "/data/in/members.csv", "sha256": "ab" * 32, "rows": 5123}],
    "tables": {"members": {"read": 5123, "used": 5100, "quarantined": 23},
               "medical_claims": {"read": 98765, "used": 98000, "quarantined": 765}},
    "config": {"period": "2024"},
}
MEASURES = {"BCS-E": {"title": "Breast Cancer Screening", "description": "Women 50\u201374 with a mammogram.",
                      "steward_ids": {"NCQA": "BCS-E"}}}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.imgs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "img":
            self.imgs.append(dict(attrs))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out_dir = tmp_path_factory.mktemp("run") / "report"
    path = render_report(sample_rates(), MANIFEST, out_dir, measures=MEASURES)
    return path, path.read_text(encoding="utf-8")


def _parsed(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    return parser


def _text(markup: str, sep: str = " ") -> str:
    """Visible text: tags replaced by ``sep``, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", sep, markup)))


def _block(html: str, element_id: str) -> str:
    """The markup from the element with ``id`` to the start of the next section/details."""
    start = html.index(f'id="{element_id}"')
    ends = [i for i in (html.find("<section", start + 1), html.find('<details class="table-only"', start + 1),
                        html.find("</section>", start + 1)) if i != -1]
    return html[start:min(ends)]


def _table(html: str, caption: str) -> str:
    return html.split(f"<caption>{caption}</caption>", 1)[1].split("</table>", 1)[0]


def test_writes_index_html(rendered: tuple[Path, str]) -> None:
    path, html = rendered
    assert path.name == "index.html" and path.parent.name == "report" and path.is_file()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert not list(path.parent.glob("*.tmp"))


def test_self_contained(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    for tag, name, value in _parsed(html).attrs:
        if name in ("src", "href", "srcset", "action", "data", "poster"):
            assert value is not None
            assert not re.match(r"\s*(https?:)?//", value, re.I), (tag, name, value)
            assert value.startswith(("#", "data:image/png;base64,")), (tag, name, value[:60])


def test_images_are_png_data_uris_with_alt(rendered: tuple[Path, str]) -> None:
    import matplotlib.image as mpimg  # after rendering: the charts module configures matplotlib first

    _, html = rendered
    imgs = _parsed(html).imgs
    # population: every stratifier (BCS-E race+language, PCR race, ED race+county, TCOC, PCS, CHL race);
    # states: race only, and only when a group can be shown (BCS-E MA, ED NY; not PCR MA)
    assert len(imgs) == 10
    for img in imgs:
        src = img["src"] or ""
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert int(img["width"] or 0) == 720 and int(img["height"] or 0) > 150
        alt = img.get("alt") or ""
        assert len(alt) > 40 and "rate" in alt.lower()


def test_state_units_chart_race_only(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    assert "<img" in _block(html, "ed-ny-race-ethnicity")
    county = html.split('<details class="table-only" id="ed-ny-county">', 1)[1].split("</details>", 1)[0]
    assert "<img" not in county and "<table>" in county
    assert "County &mdash; State: NY: table of 1 group" in county
    lang = html.split('<details class="table-only" id="bcs-e-ma-language">', 1)[1].split("</details>", 1)[0]
    assert "English" in lang and "66.4%" in lang
    # the population unit charts every stratifier
    assert "<img" in _block(html, "ed-all-county") and "<img" in _block(html, "bcs-e-all-language")


def test_all_suppressed_gets_no_chart(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    block = _block(html, "pcr-ma-race-ethnicity")
    assert "<img" not in block
    assert "No chart: all 2 groups are suppressed." in _text(block)


def _suppressed_cells(html: str) -> list[str]:
    return [
        "".join(re.findall(r"<td[^>]*>(.*?)</td>", r, re.S))
        for r in re.findall(r'<tr class="suppressed">(.*?)</tr>', html, re.S)
    ]


def test_suppressed_rows_show_no_numbers(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    cells = _suppressed_cells(html)
    # BCS-E: Asian, Multiracial, language Unknown, MA Declined; PCR MA: 2; ED NY Asian; CHL: Asian, 2 age rows
    assert len(cells) == 10
    for c in cells:
        text = _text(c)
        assert "suppressed" in text
        assert not re.search(r"\d", text), text
    # every suppressed cell reads alike, even where the frame (wrongly) carries the restricted kinds:
    # which kind a cell is would narrow its hidden value
    assert {_text(c).strip() for c in cells} == {"suppressed (cell-size policy)"}
    joined = " ".join(cells)
    assert "complementary" not in joined and "1\u201310" not in joined


def test_suppressed_values_never_shown_even_if_present() -> None:
    # a suppressed row that still carries numbers (it should not) must not leak them
    leaky = sample_rates().with_columns(
        pl.when(pl.col("stratum") == "Asian").then(pl.lit(9.0)).otherwise(pl.col("numerator")).alias("numerator"),
        pl.when(pl.col("stratum") == "Asian").then(pl.lit(0.4321)).otherwise(pl.col("rate")).alias("rate"),
        pl.when(pl.col("stratum") == "Asian").then(pl.lit(97_531)).otherwise(pl.col("members")).alias("members"),
    ).filter(pl.col("measure_id") == "BCS-E")
    ctx = build_context(leaky, MANIFEST, charts=False)
    rows = [r for m in ctx["measures"] for u in m["units"] for s in u["sections"] for r in s["rows"]]
    asian = next(r for r in rows if r["stratum"] == "Asian")
    assert asian["suppressed"] and set(asian) == {"stratum", "suppressed", "label"}
    assert "43.2" not in str(ctx) and "97,531" not in str(ctx) and "97531" not in str(ctx)


def test_unknown_and_declined_appear(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    race_table = _table(html, "Breast Cancer Screening by race and ethnicity, all members")
    for stratum in ("Unknown", "Declined", "White", "Asian"):
        assert f'<th scope="row">{stratum}</th>' in race_table
    lang_table = _table(html, "Breast Cancer Screening by preferred language, all members")
    assert '<th scope="row">Unknown</th>' in lang_table
    # a shown Unknown row carries its numbers like any group
    assert "55.0%" in race_table and "80.0%" in race_table


def _summary(html: str) -> str:
    return _text(html.split('id="summary"', 1)[1].split("</section>", 1)[0], sep="")


def test_summary_worst_and_best_by_direction(rendered: tuple[Path, str]) -> None:
    text = _summary(rendered[1])
    # higher is better: the lowest rate is the worst
    assert ("Breast Cancer Screening: 64.1% (62.0\u201366.1) for Hispanic or Latino (worst) "
            "vs 74.0% (73.1\u201374.9) for White (best)") in text
    assert "A gap of 9.9 percentage points; the 95% confidence intervals do not overlap; higher is better." in text
    # lower is better: the highest rate is the worst
    assert ("Plan All-Cause Readmissions: 12.0% (10.6\u201313.4) for White (worst) "
            "vs 6.0% (3.9\u20138.1) for Asian (best)") in text
    assert "run-20250114-abc123" in text and "2024" in text
    for count in ("5,123", "5,100", "23", "98,765", "98,000", "765"):
        assert count in text
    assert "hybrid" in text and "claims" in text


def test_summary_event_rate_cost_and_share(rendered: tuple[Path, str]) -> None:
    text = _summary(rendered[1])
    assert ("Emergency Department Visits: 34.6 per 1,000 member-months (29.4\u201340.3) for Asian (worst) "
            "vs 23.5 per 1,000 member-months (20.4\u201327.0) for Black or African American (best)") in text
    assert ("A difference of 11.1 per 1,000 member-months; the highest is 1.47 times the lowest; "
            "the 95% confidence intervals do not overlap; lower is better.") in text
    assert ("Total Cost of Care PMPM: $320.67 PMPM ($275.70\u2013$365.60) for Asian (worst) "
            "vs $318.82 PMPM ($295.60\u2013$342.00) for White (best)") in text
    assert "A difference of $1.85 PMPM; the highest is 1.01 times the lowest" in text
    assert ("Primary Care Share of Spend: 7.0% (5.5\u20138.5) for Asian (worst) "
            "vs 7.6% (6.6\u20138.6) for White (best)") in text
    assert "A gap of 0.6 percentage points" in text
    assert "percentage points" not in text.split("Emergency Department Visits:", 1)[1].split("Plan All-Cause")[0]


def test_members_and_count_columns_by_rate_type(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    ed = _table(html, "Emergency Department Visits by race and ethnicity, all members")
    headers = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', ed)
    assert headers == ["Race and ethnicity", "Members", "Member-months", "Events", "Rate per 1,000 member-months", "95% CI"]
    white = re.search(r'<th scope="row">White</th>(.*?)</tr>', ed, re.S).group(1)
    assert re.findall(r'<td class="num">(.*?)</td>', white) == ["1,808", "21,003", "650", "30.9", "28.6\u201333.4"]

    tcoc = _table(html, "Total Cost of Care PMPM by race and ethnicity, all members")
    assert re.findall(r'<th scope="col"[^>]*>(.*?)</th>', tcoc)[1:] == ["Members", "Member-months", "Total paid", "Cost PMPM", "95% CI"]
    white = re.search(r'<th scope="row">White</th>(.*?)</tr>', tcoc, re.S).group(1)
    assert re.findall(r'<td class="num">(.*?)</td>', white) == ["1,808", "21,003", "$6,696,100", "$318.82", "$295.60\u2013$342.00"]

    pcs = _table(html, "Primary Care Share of Spend by race and ethnicity, all members")
    assert re.findall(r'<th scope="col"[^>]*>(.*?)</th>', pcs)[1:] == ["Members", "Total spend", "Numerator spend", "Share of spend", "95% CI"]
    assert "7.6%" in pcs and "$508,900" in pcs

    # proportions: members are the denominator, shown once
    bcs = _table(html, "Breast Cancer Screening by race and ethnicity, all members")
    assert re.findall(r'<th scope="col"[^>]*>(.*?)</th>', bcs)[1:] == ["Members (denominator)", "Numerator", "Rate", "95% CI"]


def test_overall_lines_in_unit(rendered: tuple[Path, str]) -> None:
    text = _text(rendered[1])
    assert ("Overall: 30.7 per 1,000 member-months (29.3\u201332.2): 1,694 events over 55,181 member-months "
            "(4,755 members)") in text
    assert "Overall: $309.67 PMPM ($296.10\u2013$323.20): $17,087,833 paid over 55,181 member-months (4,755 members)" in text
    assert "Overall: 70.0% (68.6\u201371.4): 2,800 of 4,000 eligible members" in text


def test_submeasure_table(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    assert 'id="measure-chl-rows"' in html and 'id="measure-bcs-e-rows"' not in html
    table = _table(html, "Chlamydia Screening in Women by sub-measure, all members")
    names = re.findall(r'<th scope="row">(.*?)</th>', table)
    assert names == ["Ages 16\u201320", "Ages 21\u201324", "All (whole measure)"]
    rows = re.findall(r"<tr( class=\"suppressed\")?><th scope=\"row\">(.*?)</th>(.*?)</tr>", table, re.S)
    by_name = {name: (bool(cls), _text(cells)) for cls, name, cells in rows}
    # a small cell (16-20) and its complement (21-24) read alike
    assert by_name["Ages 16\u201320"][0] and by_name["Ages 16\u201320"][1].strip() == "suppressed (cell-size policy)"
    assert by_name["Ages 21\u201324"][0] and by_name["Ages 21\u201324"][1].strip() == "suppressed (cell-size policy)"
    assert not by_name["All (whole measure)"][0] and "50.0%" in by_name["All (whole measure)"][1]
    # the sub-measure's stratified row never reaches the whole measure's chart or table
    chl_race = _table(html, "Chlamydia Screening in Women by race and ethnicity, all members")
    assert "46.7%" not in chl_race and "50.0%" in chl_race


def test_county_codes_shown_with_names(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    table = _table(html, "Emergency Department Visits by county, all members")
    names = re.findall(r'<th scope="row">(.*?)</th>', table)
    assert "Unknown" in names
    assert any(n.endswith(", NY (36047)") for n in names), names


def test_measure_spec_manifest_and_rate_notes(rendered: tuple[Path, str]) -> None:
    _, html = rendered
    assert "Women 50\u201374 with a mammogram." in html
    assert "NCQA" in html
    assert "members.csv" in html and "/data/in" not in html  # file name only, no local paths
    assert "Data source: hybrid: claims plus clinical records" in html
    text = _text(html)
    assert "numerator, denominator or complement is 1\u201310" in text and "Complementary suppression" in text
    about = text.split("About this run", 1)[1]
    for words in ("Proportions:", "Shares of spend:", "Event rates per member-months:",
                  "Cost per member per month (PMPM):"):
        assert words in about
    assert "member-years" not in about  # only the rate types of this run are explained
    assert "rate per 1,000 member-months \u00b7 lower is better" in text


def test_escapes_and_only_public_columns(tmp_path: Path) -> None:
    data = sample_rates().filter(pl.col("measure_id") == "PCR").with_columns(
        pl.when(pl.col("stratum") == "Asian").then(pl.lit("<b>Asian & Pacific</b>"))
        .otherwise(pl.col("stratum")).alias("stratum"),
        pl.lit("M-0001234").alias("member_id"),
    )
    html = render_report(data, MANIFEST, tmp_path / "report").read_text(encoding="utf-8")
    assert "<b>Asian" not in html and "&lt;b&gt;Asian &amp; Pacific&lt;/b&gt;" in html
    assert "M-0001234" not in html


def test_missing_columns_rejected() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        build_context(sample_rates().drop("ci_upper"), MANIFEST, charts=False)
    with pytest.raises(ValueError, match="rate_type"):
        build_context(sample_rates().drop("rate_type"), MANIFEST, charts=False)


def test_required_columns_are_the_public_rates_columns() -> None:
    from equity_pipeline.stratify import RATES_COLUMNS

    assert set(REQUIRED_COLUMNS) == set(RATES_COLUMNS)


def test_extremes_rules() -> None:
    data = sample_rates()
    groups = group_rates(data, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    ext = extremes(groups, "higher_is_better")
    assert ext is not None and ext.non_response_excluded
    assert (ext.lowest.stratum, ext.highest.stratum) == ("Hispanic or Latino", "White")
    assert (ext.worst.stratum, ext.best.stratum) == ("Hispanic or Latino", "White")
    flipped = extremes(groups, "lower_is_better")
    assert (flipped.worst.stratum, flipped.best.stratum) == ("White", "Hispanic or Latino")
    assert extremes(groups).worst is None  # no direction: no worst/best, only lowest/highest
    # with fewer than two known groups, Unknown/Declined are compared rather than saying nothing
    only = data.filter(pl.col("stratum").is_in(["White", "Unknown", "Asian"]) & (pl.col("unit_id") == "all")
                       & (pl.col("measure_id") == "BCS-E"))
    g2 = group_rates(only, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    ext2 = extremes(g2)
    assert ext2 is not None and (ext2.lowest.stratum, ext2.highest.stratum) == ("Unknown", "White")
    # all suppressed / nothing
    sup = data.filter((pl.col("stratum") == "Asian") & (pl.col("measure_id") == "BCS-E"))
    g3 = group_rates(sup, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    assert extremes(g3) is None
    assert summary_sentence("X", g3) == "X: all race and ethnicity groups are suppressed"


def test_tied_rates_are_not_called_worst_and_best() -> None:
    data = frame([
        row("BCS-E", "race_ethnicity", "Asian", 300, 0, (0.0, 0.013)),
        row("BCS-E", "race_ethnicity", "White", 900, 0, (0.0, 0.004)),
    ])
    groups = group_rates(data, measure_id="BCS-E", stratifier="race_ethnicity", unit_id="all")
    assert summary_sentence("X", groups, "higher_is_better") == (
        "X: no difference between the 2 groups that can be shown: all 0.0%")


def test_summary_sentence_per_type_without_rendering() -> None:
    data = sample_rates()
    groups = group_rates(data, measure_id="ED", stratifier="race_ethnicity", unit_id="all")
    scale = RateScale.of("per_member_months", 1000)
    assert summary_sentence("ED", groups, "lower_is_better", scale).startswith(
        "ED: 34.6 per 1,000 member-months (29.4\u201340.3) for Asian (worst)")
    assert summary_sentence("ED", groups, None, scale).startswith(
        "ED: 23.5 per 1,000 member-months (20.4\u201327.0) for Black or African American vs")


def test_chart_plan_for_many_units() -> None:
    """10 measures x (population + 5 states): charts for every population stratifier, race only for
    states (the rest are tables), which is what keeps a real run's page fast to build."""
    rows = []
    for i in range(10):
        mid = ["BCS-E", "PCR", "CHL", "ED", "PQI", "TCOC", "PCS"][i % 7]
        title = f"Measure {i}"
        for unit in ["all", "AA", "BB", "CC", "DD", "EE"]:
            rows.append(row(mid, "overall", "all", 5000, 2500, (0.4, 0.6), unit=unit, title=title))
            for strat, strata in (("race_ethnicity", ["White", "Asian", "Unknown"]),
                                  ("language", ["English", "Spanish"]), ("county", ["A", "B"])):
                rows += [row(mid, strat, s, 1000 + k, 500, (0.4, 0.6), unit=unit, title=title)
                         for k, s in enumerate(strata)]
    data = frame(rows).with_columns(pl.col("measure_id") + "-" + pl.col("measure_title").str.slice(8))
    ctx = build_context(data, MANIFEST, charts=False)
    sections = [(u["unit_id"], s["stratifier"], s["chart"]) for m in ctx["measures"] for u in m["units"]
                for s in u["sections"]]
    assert len(ctx["measures"]) == 10 and len(sections) == 10 * 6 * 3
    charted = [s for s in sections if s[2]]
    assert len(charted) == 10 * (3 + 5)
    assert all(unit == "all" or strat == "race_ethnicity" for unit, strat, _ in charted)
    assert ctx["charts_drawn"] == 0


def test_suppression_labels() -> None:
    # the public reason and the restricted kinds all read alike: the report never tells which kind
    for reason in ("cell-size policy", "small cell (1-10)", "complementary", "small cell or complementary", "small_cell",
                   "small_numerator"):
        assert suppression_label(reason) == "suppressed (cell-size policy)", reason
    assert suppression_label(None) == suppression_label("  ") == "suppressed"
    assert suppression_label("zero_denominator") == "suppressed (zero denominator)"
