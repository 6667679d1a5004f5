"""The analyst calculator: CSV in, JSON out, one-line errors; figures checked against healthequal."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.stats.calculator import CalculatorInputError, compute_from_csv, run_calculator


def write(tmp_path: Path, text: str, name: str = "groups.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


COUNTS = "group,numerator,denominator,reference\nWhite,700,1000,1\nBlack,300,500,0\nAsian,45,50,0\nHispanic,12,30,0\n"


def test_counts_are_read_as_proportions_and_never_rescaled(tmp_path: Path) -> None:
    result = compute_from_csv(write(tmp_path, COUNTS))
    assert result["input"]["scale"] == 1 and result["input"]["rate_units"].startswith("proportion")
    assert result["input"]["reference_group"] == "White" and result["input"]["ordered"] is False
    # reference White (0.70) vs the lowest group (Hispanic 0.40) for a favourable indicator
    assert result["range_difference"]["estimate"] == pytest.approx(0.70 - 0.40)
    assert result["range_ratio"]["estimate"] == pytest.approx(0.70 / 0.40)
    # BGV by hand: population-weighted variance of the four proportions
    p = [0.7, 0.6, 0.9, 0.4]
    n = [1000, 500, 50, 30]
    mean = sum(pi * ni for pi, ni in zip(p, n, strict=True)) / sum(n)
    bgv = sum(ni * (pi - mean) ** 2 for pi, ni in zip(p, n, strict=True)) / sum(n)
    assert result["between_group_variance"]["estimate"] == pytest.approx(bgv)
    for name in ("between_group_variance", "theil_index", "mean_log_deviation", "index_of_disparity",
                 "mean_difference_from_reference"):
        assert {"estimate", "ci_lower", "ci_upper"} <= set(result[name])
        assert result[name]["ci_lower"] <= result[name]["ci_upper"]


def _healthequal_csv(who_dir: Path, test: str, tmp_path: Path, *, with_reference: bool) -> Path:
    frame = pl.read_csv(who_dir / "test_inputs" / f"inputs_{test}.csv")
    columns = {"rate": frame["est"], "population": frame["pop"], "se": frame["se"]}
    if "subgroup_order" in frame.columns:
        columns["order"] = frame["subgroup_order"]
    if with_reference:
        columns["reference"] = frame["ref"]
    path = tmp_path / f"{test}.csv"
    pl.DataFrame(columns).write_csv(path)
    return path


def _expected(who_dir: Path, test: str, quantity: str) -> float:
    rows = pl.read_csv(who_dir / "test_expected_values.csv", infer_schema=False)
    return float(rows.filter((pl.col("test") == test) & (pl.col("quantity") == quantity))["value"].item())


def test_ordered_csv_reproduces_healthequal(who_dir: Path, tmp_path: Path) -> None:
    """The healthequal ordered test data, written as a calculator CSV (scale inferred as 100)."""
    result = run_calculator(_healthequal_csv(who_dir, "sii", tmp_path, with_reference=False))
    assert result["input"]["ordered"] is True and result["input"]["scale"] == 100
    for key, test, quantity in [("slope_index_of_inequality", "sii", "expected_sii"),
                                ("relative_index_of_inequality", "rii", "expected_rii"),
                                ("absolute_concentration_index", "aci", "expected_aci"),
                                ("relative_concentration_index", "rci", "expected_rci"),
                                ("population_attributable_fraction", "paf", "expected_paf"),
                                ("population_attributable_risk", "parisk", "expected_parisk")]:
        assert result[key]["estimate"] == pytest.approx(_expected(who_dir, test, quantity), rel=1e-6), key
    assert result["slope_index_of_inequality"]["ci_lower"] == pytest.approx(
        _expected(who_dir, "sii", "expected_lowerci"), rel=1e-6)


def test_non_ordered_csv_reproduces_healthequal(who_dir: Path, tmp_path: Path) -> None:
    result = run_calculator(_healthequal_csv(who_dir, "bgv", tmp_path, with_reference=True))
    for key, test, quantity in [("between_group_variance", "bgv", "expected_bgv"),
                                ("between_group_standard_deviation", "bgsd", "expected_bgsd"),
                                ("index_of_disparity", "idisu", "expected_idisu"),
                                ("index_of_disparity_weighted", "idisw", "expected_idisu"),
                                ("mean_difference_from_best", "mdbu", "expected_mdbu"),
                                ("mean_difference_from_mean_weighted", "mdmw", "expected_mdmw"),
                                ("mean_difference_from_reference", "mdru", "expected_mdru"),
                                ("mean_difference_from_reference_weighted", "mdrw", "expected_mdrw")]:
        assert result[key]["estimate"] == pytest.approx(_expected(who_dir, test, quantity), rel=1e-6), key
    assert result["between_group_variance"]["ci_upper"] == pytest.approx(
        _expected(who_dir, "bgv", "expected_upperci"), rel=1e-6)


def test_json_is_written_and_strict(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    returned = run_calculator(write(tmp_path, COUNTS), out)
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == returned
    assert all(key == key.lower() and " " not in key for key in returned)
    # measures without an interval carry nulls, not NaN
    assert returned["between_group_standard_deviation"]["se"] is None


def test_adverse_indicator_and_explicit_scale(tmp_path: Path) -> None:
    path = write(tmp_path, "group,rate,population\na,12.5,1000\nb,8.0,2000\nc,20.0,500\n")
    adverse = compute_from_csv(path, favourable=False, scale=1000)
    assert adverse["input"]["scale"] == 1000 and adverse["input"]["scale_source"] == "given"
    assert adverse["mean_difference_from_best"]["estimate"] == pytest.approx((4.5 + 0 + 12) / 3)
    assert adverse["between_group_variance"]["ci_lower"] is None  # no se column: no interval


@pytest.mark.parametrize(("text", "message"), [
    ("group,count,total\na,1,2\nb,1,2\n", "needs either numerator,denominator or rate,population"),
    ("group,numerator,denominator,rate,population\na,1,2,1,2\nb,1,2,1,2\n", "not both"),
    ("group,numerator,denominator\na,1,ten\nb,1,2\n", "column 'denominator' is not a number in row 1"),
    ("group,numerator,denominator\na,1,10\nb,,2\n", "column 'numerator' is empty in row 2"),
    ("group,rate,population\na,1,10\nb,2,-5\n", "column 'population' must be 0 or more (row 2)"),
    ("group,numerator,denominator\na,1,0\nb,1,2\n", "column 'denominator' must be greater than 0 (row 1)"),
    ("group,numerator,denominator\na,5,2\nb,1,2\n", "numerator is larger than denominator in row 1"),
    ("group,numerator,denominator,reference\na,1,2,1\nb,1,2,yes\n", "marks more than one group"),
    ("group,numerator,denominator,reference\na,1,2,maybe\nb,1,2,0\n", "column 'reference' must be 1/0"),
    ("group,numerator,denominator\na,1,2\na,1,2\n", "column 'group' must name every row once"),
    ("group,numerator,denominator,order\na,1,2,1\nb,1,2,1.5\n", "column 'order' must hold distinct whole numbers"),
    ("group,numerator,denominator\na,1,2\n", "needs at least two groups"),
])
def test_bad_input_gives_one_line_value_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        compute_from_csv(write(tmp_path, text))
    assert isinstance(caught.value, CalculatorInputError)
    assert "\n" not in str(caught.value) and str(caught.value).startswith("groups.csv: ")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found"):
        compute_from_csv(tmp_path / "nope.csv")


def test_headers_are_case_and_space_insensitive(tmp_path: Path) -> None:
    result = compute_from_csv(write(tmp_path, " Group , Numerator ,DENOMINATOR\nx,1,4\ny,3,4\n"))
    assert result["range_difference"]["estimate"] == pytest.approx(0.5)
    assert not any(isinstance(v, float) and math.isnan(v) for m in result.values() for v in m.values())
