"""Proportions, rates, DSR, ISR and SII/RII against the UKHSA PHEindicatormethods test workbooks.

Source: ../shared/reference/phe_indicator_methods/xlsx_as_csv/<workbook>__<sheet>.csv. The workbooks
hold independently calculated expected values (UKHSA's Excel tools / APHO spreadsheets) that the R
package is tested against. Figures are compared at 1e-9 relative (they are printed to full double
precision); the SII/RII Monte Carlo limits within 5% of the interval half-width (the R package's own
test tolerance for them is 5%).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from equity_pipeline.stats.proportions import wilson_interval
from equity_pipeline.stats.rates import (
    byars_lower,
    byars_upper,
    event_rate,
    indirectly_standardised_rate,
    indirectly_standardised_ratio,
)
from equity_pipeline.stats.standardization import ESP2013, direct_standardised_rate
from equity_pipeline.stats.summary import slope_index_simulated

RTOL = 1e-9
ALPHA = {"95%": 0.05, "99.8%": 0.002}


def _read(phe_dir: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(phe_dir / f"{name}.csv", infer_schema_length=10_000)


def _close(ours: float, expected: float | None) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return math.isnan(ours)
    return math.isclose(ours, expected, rel_tol=RTOL, abs_tol=1e-12)


def _assert_rows(mismatches: list[str]) -> None:
    assert not mismatches, "\n".join(mismatches)


# --- Wilson ---------------------------------------------------------------------------------------


def test_wilson_matches_proportion_workbook(phe_dir: Path) -> None:
    """testdata_Proportion/testdata_Prop: proportion of 1 and percentage, 95% and 99.8%, missing inputs."""
    rows = _read(phe_dir, "testdata_Proportion__testdata_Prop")
    bad = []
    for r in rows.iter_rows(named=True):
        num = np.nan if r["Numerator"] is None else r["Numerator"]
        den = np.nan if r["Denominator"] is None else r["Denominator"]
        for alpha, lo, hi in ((0.05, "lower95_0cl", "upper95_0cl"), (0.002, "lower99_8cl", "upper99_8cl")):
            ci = wilson_interval(num, den, alpha=alpha)
            m = r["multiplier"]
            for name, ours, want in (("value", ci.rate * m, r["value"]), (lo, ci.ci_lower * m, r[lo]),
                                     (hi, ci.ci_upper * m, r[hi])):
                if not _close(ours, want):
                    bad.append(f"{r['Area']} x{m} {name}: ours {ours}, expected {want}")
    _assert_rows(bad)


def test_wilson_matches_grouped_proportion_workbook(phe_dir: Path) -> None:
    """testdata_Prop_g: the same areas with doubled counts (grouped sums)."""
    rows = _read(phe_dir, "testdata_Proportion__testdata_Prop_g")
    bad = []
    for r in rows.iter_rows(named=True):
        num = np.nan if r["Numerator"] is None else r["Numerator"]
        den = np.nan if r["Denominator"] is None else r["Denominator"]
        ci = wilson_interval(num, den, alpha=ALPHA[r["confidence"]])
        for name, ours in (("value", ci.rate), ("lowercl", ci.ci_lower), ("uppercl", ci.ci_upper)):
            if not _close(ours, r[name]):
                bad.append(f"{r['Area']} {name}: ours {ours}, expected {r[name]}")
    _assert_rows(bad)


def test_wilson_and_byars_standalone_sheet(phe_dir: Path) -> None:
    """testdata_Byars_Wilson: wilson_lower/upper (incl. a non-integer count) and byars_lower/upper."""
    rows = _read(phe_dir, "testdata_Byars_Wilson__testdata_B_W")
    bad = []
    for r in rows.iter_rows(named=True):
        alpha = ALPHA[r["confidence"]]
        if r["method"] == "Wilson":
            ci = wilson_interval(r["x"], r["n"], alpha=alpha)
            ours = (ci.ci_lower, ci.ci_upper)
        else:
            ours = (byars_lower(r["x"], alpha), byars_upper(r["x"], alpha))
        # one Byar's row (x = 1 at 99.8%) leaves the lower limit blank: the formula is negative there
        for label, value, want in (("lower", ours[0], r["lowercl"]), ("upper", ours[1], r["uppercl"])):
            if want is not None and not _close(value, want):
                bad.append(f"{r['method']} x={r['x']} {r['confidence']} {label}: ours {value}, expected {want}")
    _assert_rows(bad)


# --- crude rates ----------------------------------------------------------------------------------


def test_rates_match_rate_workbook(phe_dir: Path) -> None:
    """testdata_Rate: exact limits below 10 events, Byar's from 10; per 100 and per 100,000."""
    rows = _read(phe_dir, "testdata_Rate__testdata_Rate")
    bad = []
    for r in rows.iter_rows(named=True):
        x = np.nan if r["Numerator"] is None else r["Numerator"]
        n = np.nan if r["Denominator"] is None else r["Denominator"]
        for alpha, lo, hi in ((0.05, "lower95_0cl", "upper95_0cl"), (0.002, "lower99_8cl", "upper99_8cl")):
            res = event_rate(x, n, per=r["multiplier"], alpha=alpha)
            for name, ours in (("value", res.rate), (lo, res.ci_lower), (hi, res.ci_upper)):
                if not _close(ours, r[name]):
                    bad.append(f"{r['Area']} per {r['multiplier']} {name}: ours {ours}, expected {r[name]}")
            if r["method"] and not math.isnan(res.rate):
                assert res.method == {"Exact": "exact", "Byars": "byar"}[r["method"]], r["Area"]
    _assert_rows(bad)


def test_rates_match_grouped_rate_workbook(phe_dir: Path) -> None:
    rows = _read(phe_dir, "testdata_Rate__testdata_Rate_g")
    bad = []
    for r in rows.iter_rows(named=True):
        x = np.nan if r["Numerator"] is None else r["Numerator"]
        n = np.nan if r["Denominator"] is None else r["Denominator"]
        res = event_rate(x, n, per=r["multiplier"], alpha=ALPHA[r["confidence"]])
        for name, ours in (("value", res.rate), ("lowercl", res.ci_lower), ("uppercl", res.ci_upper)):
            if not _close(ours, r[name]):
                bad.append(f"{r['Area']} {name}: ours {ours}, expected {r[name]}")
    _assert_rows(bad)


# --- directly standardised rates ------------------------------------------------------------------


def test_esp2013_matches_the_workbook_standard_population(phe_dir: Path) -> None:
    """The constant equals the stdpop column the DSR workbook uses (European Standard Population 2013)."""
    assert tuple(_read(phe_dir, "testdata_DSR_ISR__testdata_err1")["stdpop"].to_list()) == ESP2013


def _dsr_expected(phe_dir: Path) -> pl.DataFrame:
    return _read(phe_dir, "testdata_DSR_ISR__testresults_DSR").filter(pl.col("method") == "Dobson")


@pytest.mark.parametrize("per", [10_000, 100_000])
def test_dsr_dobson_matches_multiarea_results(phe_dir: Path, per: int) -> None:
    """testresults_DSR: ESP2013, 95% and 99.8%, the tiny area (9 events) not reported."""
    data = _read(phe_dir, "testdata_DSR_ISR__testdata_multiarea")
    statistics = [f"dsr per {per}", "dsr NA for total count < 10"]
    expected = _dsr_expected(phe_dir).filter(pl.col("statistic").is_in(statistics))
    bad = []
    for area, part in data.group_by("area", maintain_order=True):
        want = expected.filter(pl.col("area") == area[0]).row(0, named=True)
        for alpha, lo, hi in ((0.05, "lower95_0cl", "upper95_0cl"), (0.002, "lower99_8cl", "upper99_8cl")):
            res = direct_standardised_rate(part["count"], part["pop"], ESP2013, per=per, alpha=alpha)
            assert res.total_count == want["total_count"] and res.total_population == want["total_pop"]
            for name, ours in (("value", res.estimate), (lo, res.ci_lower), (hi, res.ci_upper)):
                if not _close(ours, want[name]):
                    bad.append(f"{area[0]} per {per} {name}: ours {ours}, expected {want[name]}")
    _assert_rows(bad)


def test_dsr_dobson_with_1976_standard(phe_dir: Path) -> None:
    """testdata_1976 with the European Standard Population 1976 (18 bands) from the same sheet.

    Only the 95% limits are compared: the workbook's 99.8% limits for this row are ten times the value
    (7659 against a DSR of 859 per 10,000), an error in the expected figures, not a method.
    """
    data = _read(phe_dir, "testdata_DSR_ISR__testdata_1976")
    for per in (10_000, 100_000):
        want = _dsr_expected(phe_dir).filter((pl.col("area") == "testdata_1976")
                                             & (pl.col("statistic") == f"dsr per {per}")).row(0, named=True)
        res = direct_standardised_rate(data["count"], data["pop"], data["esp1976"], per=per)
        assert _close(res.estimate, want["value"])
        assert _close(res.ci_lower, want["lower95_0cl"])
        assert _close(res.ci_upper, want["upper95_0cl"])


@pytest.mark.parametrize(("sheet", "message"), [
    ("testdata_err1", "counts must all be >= 0"),
    ("testdata_err3", "populations must all be > 0"),
    ("testdata_err4", "standard_population values must be >= 0"),
])
def test_dsr_rejects_the_workbook_error_cases(phe_dir: Path, sheet: str, message: str) -> None:
    data = _read(phe_dir, f"testdata_DSR_ISR__{sheet}")
    with pytest.raises(ValueError, match=message):
        direct_standardised_rate(data["count"], data["pop"], data["stdpop"])


def test_dsr_rejects_a_zero_population(phe_dir: Path) -> None:
    data = _read(phe_dir, "testdata_DSR_ISR__testdata_err2").filter(pl.col("area") == "Area1")
    with pytest.raises(ValueError, match="populations must all be > 0"):
        direct_standardised_rate(data["count"], data["pop"], ESP2013)


# --- indirectly standardised ratios and rates -----------------------------------------------------

ISR_STATISTICS = {
    "indirectly standardised rate per 100000": ("rate", 100_000),
    "indirectly standardised rate per 1000": ("rate", 1_000),
    "indirectly standardised ratio x 1": ("ratio", 1),
    "indirectly standardised ratio x 100": ("ratio", 100),
}


def test_isr_matches_multiarea_results(phe_dir: Path) -> None:
    """testresults_ISR for the three test areas (reference counts/populations as columns).

    The two final rows (Area1/Area2, expected 808.32) come from an input that is not in the workbook
    export and are not compared.
    """
    data = _read(phe_dir, "testdata_DSR_ISR__testdata_multiarea_isr")
    expected = _read(phe_dir, "testdata_DSR_ISR__testresults_ISR").filter(pl.col("area").str.starts_with("testdata"))
    assert expected.height == 12
    bad = []
    for r in expected.iter_rows(named=True):
        kind, per = ISR_STATISTICS[r["statistic"]]
        part = data.filter(pl.col("area") == r["area"])
        function = indirectly_standardised_rate if kind == "rate" else indirectly_standardised_ratio
        for alpha, lo, hi in ((0.05, "lower95_0cl", "upper95_0cl"), (0.002, "lower99_8cl", "upper99_8cl")):
            res = function(part["count"], part["pop"], part["refcount"], part["refpop"], per=per, alpha=alpha)
            checks = [("value", res.estimate), (lo, res.ci_lower), (hi, res.ci_upper), ("observed", res.observed),
                      ("expected", res.expected)]
            if kind == "rate":
                checks.append(("ref_rate", res.reference_rate))
            for name, ours in checks:
                if not _close(ours, r[name]):
                    bad.append(f"{r['area']} {r['statistic']} {name}: ours {ours}, expected {r[name]}")
        assert res.method == {"Exact": "exact", "Byars": "byar"}[r["method"]]
    _assert_rows(bad)


# --- SII / RII (population-weighted linear regression, simulated limits) --------------------------

# test descriptions whose figures use the plain Low & Low regression (the "transform" rows use a
# newer log/logit-transformed regression that is not implemented here)
SII_CASES = {
    "default (e.g. life expectancy) - default parameters": ("normal", 1),
    "default - testing 99% confidence": ("normal", 1),
    "default - testing 10,000 repetitions": ("normal", 1),
    "default - testing quintiles": ("normal", 1),
    "rate (e.g. infant mortality) - default parameters": ("rate", 1),
    "proportion (e.g. child obesity) - default parameters": ("proportion", 1),
    "proportion - testing multiplier (x 100)": ("proportion", 100),
    "proportion - testing multiplier (x -100)": ("proportion", -100),
}


def test_sii_rii_match_sii_workbook(phe_dir: Path) -> None:
    data = _read(phe_dir, "testdata_SII__testdata_SII")
    bad, checked = [], 0
    for (description, area), group in data.group_by(["TestDescription", "Area"], maintain_order=True):
        if description not in SII_CASES:
            continue
        value_type, multiplier = SII_CASES[description]
        first = group.row(0, named=True)
        alpha = 1 - float(first["Confidence"]) / 100
        sii, rii = slope_index_simulated(group["Value"], group["Population"], group["Quantile"],
                                         se=group["StandardError"], value_type=value_type,
                                         multiplier=multiplier, repetitions=int(first["Repetitions"]), alpha=alpha)
        checked += 1
        if not math.isclose(sii.estimate, first["sii"], rel_tol=RTOL):
            bad.append(f"{description} {area} sii: ours {sii.estimate}, expected {first['sii']}")
        if first["rii"] is not None and not math.isclose(rii.estimate, first["rii"], rel_tol=RTOL):
            bad.append(f"{description} {area} rii: ours {rii.estimate}, expected {first['rii']}")
        for result, stem in ((sii, "sii"), (rii, "rii")):
            want_lo, want_hi = first[f"{stem}_lowercl_1"], first[f"{stem}_uppercl_1"]
            if want_lo is None:
                continue
            half_width = (want_hi - want_lo) / 2
            for label, ours, want in (("lower", result.ci_lower, want_lo), ("upper", result.ci_upper, want_hi)):
                if abs(ours - want) > 0.05 * half_width:
                    bad.append(f"{description} {area} {stem} {label}: ours {ours}, expected {want}")
    assert checked == 16
    _assert_rows(bad)
