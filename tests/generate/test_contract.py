"""Generated files match the input contract: columns, formats, real-code shapes, NPIs, providers."""
from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from equity_pipeline.generate import TABLE_COLUMNS, TABLES, generate
from equity_pipeline.generate.geography import valid_county_fips

from .bcs_reference import read

EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"


def suite(table: str) -> dict:
    return json.loads((EXPECTATIONS / f"{table}.json").read_text())


def npi_ok(npi: str) -> bool:
    """NPI check digit, written independently of the generator: Luhn over '80840' + 9 digits."""
    if not re.fullmatch(r"[12][0-9]{9}", npi):
        return False
    digits = [int(c) for c in "80840" + npi[:9]]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def test_npi_check_matches_the_published_example():
    assert npi_ok("1234567893")          # CMS example NPI
    assert not npi_ok("1234567890")


@pytest.mark.parametrize("table", TABLES)
def test_schema_columns_match_the_contract(table):
    assert TABLE_COLUMNS[table] == tuple(suite(table)["meta"]["columns"])


@pytest.mark.parametrize("run", ["messy_run", "clean_run"])
@pytest.mark.parametrize("table", TABLES)
def test_every_table_has_exactly_the_contract_columns_as_strings(run, table, request):
    df = read(request.getfixturevalue(run), table)
    assert tuple(df.columns) == tuple(suite(table)["meta"]["columns"])
    assert all(dtype == pl.String for dtype in df.dtypes)
    assert df.height > 0


def _violations(df: pl.DataFrame, exp: dict, params: dict) -> int:
    """Rows failing one expectation (the subset of GX semantics the suites use; nulls pass)."""
    kind, kw = exp["type"], exp["kwargs"]
    col = kw.get("column")
    if col is not None and col not in df.columns:
        return 0
    value = lambda v: params[v["$PARAMETER"]] if isinstance(v, dict) else v  # noqa: E731
    if kind == "expect_column_values_to_not_be_null":
        return df[col].null_count()
    if kind == "expect_column_values_to_be_unique":
        return df.filter(pl.col(col).is_duplicated()).height
    if kind == "expect_column_values_to_match_regex":
        return df.filter(~pl.col(col).str.contains(kw["regex"])).height
    if kind == "expect_column_values_to_be_in_set":
        return df.filter(~pl.col(col).is_in(sorted(value(kw["value_set"])))).height
    if kind == "expect_column_values_to_match_strftime_format":
        return df.filter(pl.col(col).is_not_null() & pl.col(col).str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_null()).height
    if kind == "expect_column_values_to_be_between":
        d = pl.col(col).str.strptime(pl.Date, "%Y-%m-%d", strict=False) if df[col].dtype == pl.String else pl.col(col)
        bad = pl.lit(False)
        if "min_value" in kw:
            lo = value(kw["min_value"])
            bad = bad | (d < (datetime.strptime(lo, "%Y-%m-%d").date() if isinstance(lo, str) else lo))
        if "max_value" in kw:
            hi = value(kw["max_value"])
            bad = bad | (d > (datetime.strptime(hi, "%Y-%m-%d").date() if isinstance(hi, str) else hi))
        return df.filter(bad.fill_null(False)).height
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a = pl.col(kw["column_A"]).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        b = pl.col(kw["column_B"]).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        return df.filter((a < b).fill_null(False)).height
    return 0


def _with_derived(df: pl.DataFrame, table: str, member_ids: pl.Series) -> pl.DataFrame:
    if "member_id" in df.columns and table != "members":
        df = df.with_columns(_member_known=pl.when(pl.col("member_id").is_in(member_ids.implode())).then(pl.lit("true")).otherwise(pl.lit("false")))
    luhn = lambda c: c.map_elements(lambda x: "true" if npi_ok(x) else "false", return_dtype=pl.String)  # noqa: E731
    if table == "medical_claims":
        df = df.with_columns(
            _npi_check_digit_ok=luhn(pl.col("billing_npi")),
            _paid_amount_num=pl.col("paid_amount").cast(pl.Float64),
            _allowed_amount_num=pl.col("allowed_amount").cast(pl.Float64),
        )
    if table == "pharmacy_claims":
        df = df.with_columns(_prescriber_npi_check_digit_ok=luhn(pl.col("prescriber_npi")),
                             _paid_amount_num=pl.col("paid_amount").cast(pl.Float64))
    if table == "providers":
        npi = pl.when(pl.col("id_type") == "npi").then(pl.col("provider_id"))
        df = df.with_columns(_provider_npi=npi, _provider_npi_check_digit_ok=luhn(npi))
    missing = {e["kwargs"]["column"] for e in suite(table)["expectations"] if e["kwargs"].get("column", "").startswith("_")} - set(df.columns)
    assert not missing, f"derived columns not rebuilt here, so their rules would pass unchecked: {missing}"
    return df


@pytest.mark.parametrize("table", TABLES)
def test_clean_data_passes_every_contract_expectation(clean_run, table):
    truth = json.loads((clean_run / "truth.json").read_text())
    params = {"run_date": date(truth["measurement_year"] + 1, 7, 1), "valid_county_fips": valid_county_fips()}
    df = _with_derived(read(clean_run, table), table, read(clean_run, "members")["member_id"])
    failures = {
        exp["meta"]["rule"]: n
        for exp in suite(table)["expectations"]
        if exp["type"] != "expect_column_to_exist" and (n := _violations(df, exp, params))
    }
    assert failures == {}


def test_real_code_shapes(clean_run):
    claims = read(clean_run, "medical_claims")
    dx = pl.concat([claims[c] for c in claims.columns if c.startswith("diagnosis_code_")]).drop_nulls()
    assert dx.str.contains(r"^[A-TV-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$").all() and not dx.str.contains(r"\.").any()
    assert claims["hcpcs_code"].drop_nulls().str.contains(r"^([0-9]{4}[0-9AFMTU]|[A-V][0-9]{4})$").all()
    assert claims["bill_type"].drop_nulls().is_in(["111", "131", "812"]).all()
    assert claims["revenue_code"].drop_nulls().str.contains(r"^0[0-9]{3}$").all()
    assert claims["facility_ccn"].drop_nulls().str.contains(r"^(12|21|32|33)[0-9]{4}$").all()
    institutional = claims.filter(pl.col("claim_type") == "institutional")
    assert institutional["bill_type"].null_count() == 0 and institutional["facility_ccn"].null_count() == 0
    professional = claims.filter(pl.col("claim_type") == "professional")
    assert professional["place_of_service"].null_count() == 0
    # the planted measure's codes are really there
    assert claims["hcpcs_code"].is_in(["77067", "77066", "77065", "G0202", "G0204", "G0206"]).any()
    assert (claims["revenue_code"] == "0403").any()
    pharmacy = read(clean_run, "pharmacy_claims")
    assert pharmacy["ndc"].str.contains(r"^[0-9]{11}$").all()
    sdoh = read(clean_run, "sdoh_screenings")
    assert set(sdoh["question_code"].unique()) >= {"71802-3", "88122-7", "88123-5", "93030-5", "96779-4"}
    assert sdoh["answer_code"].str.contains(r"^(LA[0-9]{1,6}-[0-9]|ASKU)$").all()
    obs = read(clean_run, "clinical_observations")
    assert set(obs["loinc_code"].unique()) == {"4548-4", "8480-6", "8462-4"}


def test_npis_pass_luhn_and_providers_cover_every_id(clean_run):
    claims = read(clean_run, "medical_claims")
    pharmacy = read(clean_run, "pharmacy_claims")
    providers = read(clean_run, "providers")
    npis = set(claims["billing_npi"].drop_nulls()) | set(pharmacy["prescriber_npi"].drop_nulls())
    assert all(npi_ok(n) for n in npis)
    assert all(npi_ok(n) for n in providers.filter(pl.col("id_type") == "npi")["provider_id"])
    ccns = set(claims["facility_ccn"].drop_nulls()) | set(read(clean_run, "sdoh_screenings")["facility_ccn"].drop_nulls())
    assert npis <= set(providers.filter(pl.col("id_type") == "npi")["provider_id"])
    assert ccns <= set(providers.filter(pl.col("id_type") == "ccn")["provider_id"])
    assert providers["provider_id"].is_unique().all()


def test_population_mix(messy_run):
    members = read(messy_run, "members")
    enrollment = read(messy_run, "enrollment")
    assert set(enrollment["payer"].unique()) == {"medicare", "medicaid", "commercial"}
    assert {"full", "partial"} <= set(enrollment["dual_status"].unique())
    duals = enrollment.filter(pl.col("dual_status") != "none").group_by("member_id").agg(pl.col("payer").n_unique())
    assert (duals["payer"] == 2).sum() > 0  # Medicare + Medicaid spans for the same person
    codes = members["race_ethnicity_codes"].drop_nulls()
    for needle in ("2054-5|2106-3", "2135-2|2106-3", "2118-8", "2129-1", "2029-7", "2058-6", "ASKU", "UNK"):
        assert codes.str.contains(needle, literal=True).any(), needle
    assert members["race_ethnicity_codes"].null_count() > 0
    assert set(members["race_ethnicity_source"].unique()) == {"self_reported", "imputed", "unknown"}
    assert {"en", "es", "zh", "vi", "ko", "ar", "ru", "ASKU", "UNK"} <= set(members["language"].drop_nulls().unique())
    lang = members.filter(pl.col("interpreter_needed").is_not_null())
    share = lang.group_by(pl.col("language") == "en").agg((pl.col("interpreter_needed") == "true").mean())
    assert share.filter(pl.col("language"))["interpreter_needed"][0] < 0.05
    assert share.filter(~pl.col("language"))["interpreter_needed"][0] > 0.3
    age = 2025 - members["birth_date"].str.slice(0, 4).cast(pl.Int32, strict=False)
    assert (age < 18).mean() > 0.1 and (age >= 65).mean() > 0.1
    states = read(messy_run, "providers")["state"].unique()
    assert set(states) == {"MD", "NY", "NM", "HI"}


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate(0, 1, tmp_path)
    with pytest.raises(ValueError):
        generate(10, 1, tmp_path, fmt="json")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        generate(10, 1, tmp_path, messy_share=0.9)
