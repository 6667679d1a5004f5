"""Every defect class is injected (and counted right) when messy_share > 0, and none when it is 0."""
from __future__ import annotations

import json

import polars as pl

from equity_pipeline.generate import DEFECT_CLASSES
from equity_pipeline.generate.geography import valid_county_fips

from .bcs_reference import read


def defects(out) -> dict[str, int]:
    return json.loads((out / "truth.json").read_text())["defects"]


def test_every_class_present_when_messy(messy_run):
    d = defects(messy_run)
    assert set(d) == set(DEFECT_CLASSES)
    assert {k: v for k, v in d.items() if v <= 0} == {}


def test_no_defects_when_clean(clean_run):
    assert set(defects(clean_run).values()) == {0}
    members = read(clean_run, "members")
    assert members["race_ethnicity_codes"].null_count() == 0
    claims = read(clean_run, "medical_claims")
    assert claims.filter(pl.col("claim_status") == "void").height == 0
    assert claims["claim_version"].unique().to_list() == ["1"]
    assert claims.is_duplicated().sum() == 0


def test_member_defect_counts_are_visible_in_the_file(messy_run):
    d = defects(messy_run)
    m = read(messy_run, "members")
    assert m.filter(pl.col("county_fips") == "99999").height == d["unknown_county_fips"]
    assert m.filter(pl.col("county_fips").str.len_chars() == 4).height == d["invalid_county_fips_format"]
    bad_birth = m.filter(pl.col("birth_date").str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_null())
    assert bad_birth.height == d["invalid_date_birth_date"]
    assert m.group_by("member_id").len().filter(pl.col("len") > 1).height == d["duplicate_member_id"]
    assert m.filter(pl.col("race_ethnicity_codes").is_null())["member_id"].n_unique() == d["missing_rel"]
    assert not m.filter(pl.col("county_fips") != "99999", pl.col("county_fips").str.len_chars() == 5)[
        "county_fips"].is_in(sorted(valid_county_fips())).not_().any()


def test_claim_defect_counts_are_visible_in_the_file(messy_run):
    d = json.loads((messy_run / "truth.json").read_text())["defect_details"]
    c = read(messy_run, "medical_claims")
    members = read(messy_run, "members")["member_id"]
    dx1 = pl.col("diagnosis_code_1")
    assert c.filter((dx1 != dx1.str.strip_chars().str.to_uppercase()) | (pl.col("hcpcs_code") != pl.col("hcpcs_code").str.strip_chars())).height \
        == d["normalisable_code"]["tables"]["medical_claims"]
    assert c.filter(~dx1.str.strip_chars().str.to_uppercase().str.contains(r"^[A-TV-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")).height \
        == d["invalid_icd10cm"]["tables"]["medical_claims"]
    assert c.filter(~pl.col("member_id").is_in(members.implode())).height == d["orphan_member"]["tables"]["medical_claims"]
    assert c.filter(pl.col("claim_status") == "void")["claim_id"].n_unique() == d["voided_claim"]["tables"]["medical_claims"]
    assert c.filter(pl.col("claim_version") == "2")["claim_id"].n_unique() == \
        d["adjusted_claim"]["tables"]["medical_claims"] + d["voided_claim"]["tables"]["medical_claims"]
    assert c.is_duplicated().sum() == 2 * d["duplicate_line"]["tables"]["medical_claims"]
    impossible = c.filter(pl.col("claim_from_date").str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_null())
    assert impossible.height == d["invalid_date_claim_from_date"]["tables"]["medical_claims"]
    rx = read(messy_run, "pharmacy_claims")
    assert rx.filter(~pl.col("ndc").str.contains(r"^[0-9]{11}$")).height == d["invalid_ndc"]["tables"]["pharmacy_claims"]
    e = read(messy_run, "enrollment")
    assert e.filter(pl.col("enrollment_end") < pl.col("enrollment_start")).height == \
        d["enrollment_start_after_enrollment_end"]["tables"]["enrollment"]
