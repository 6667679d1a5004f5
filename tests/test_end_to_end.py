"""End to end on generated data with planted truth (issue: walking skeleton 'done when')."""
from __future__ import annotations

import json

import polars as pl
import pytest

from equity_pipeline.cli import run_pipeline
from equity_pipeline.suppression import MIN_CELL

MEMBERS = 50_000


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory):
    from equity_pipeline.generate import generate

    root = tmp_path_factory.mktemp("e2e")
    generate(MEMBERS, 7, root / "input")
    run_pipeline(root / "input", root / "out", run_date="2026-11-22", quiet=True)
    return root


def test_planted_bcs_rates_recovered(generated_run):
    truth = json.loads((generated_run / "input" / "truth.json").read_text())
    planted = truth["measures"]["BCS"]["rates"]
    rates = pl.read_parquet(generated_run / "out" / "public" / "rates.parquet").filter(
        (pl.col("measure_id") == "BCS") & (pl.col("unit_level") == "population") & (pl.col("stratifier") == "race_ethnicity")
        & ~pl.col("suppressed")
    )
    assert rates.height >= 8, "most race/ethnicity groups should be large enough to publish at 50k members"
    inside = [row["ci_lower"] <= planted[row["stratum"]] <= row["ci_upper"] for row in rates.iter_rows(named=True)]
    assert sum(inside) / len(inside) >= 0.9, list(zip(rates["stratum"], rates["rate"], inside))


def test_no_public_cell_between_1_and_10(generated_run):
    rates = pl.read_parquet(generated_run / "out" / "public" / "rates.parquet")
    small = lambda e: e.is_between(1, MIN_CELL - 1)  # noqa: E731
    props = rates.filter(pl.col("rate_type") == "proportion")
    assert props.height > 0
    for col in ("denominator", "numerator"):
        assert props.filter(small(pl.col(col))).height == 0
    assert props.filter(small(pl.col("denominator") - pl.col("numerator"))).height == 0
    # people are counted in every kind of rate; events (not dollars) in event rates
    assert rates.filter(small(pl.col("members"))).height == 0
    events = rates.filter(pl.col("rate_type").is_in(["per_member_months", "per_member_years"]))
    assert events.height > 0 and events.filter(small(pl.col("numerator"))).height == 0
    assert rates.filter(pl.col("suppressed"))["rate"].null_count() == rates["suppressed"].sum()


def test_every_member_and_row_is_accounted_for(generated_run):
    manifest = json.loads((generated_run / "out" / "manifest.json").read_text())
    for name, t in manifest["tables"].items():
        assert t["read"] == t["used"] + t["quarantined"], name
    members = manifest["tables"]["members"]
    bcs = manifest["measures"]["BCS"]
    assert members["read"] == members["quarantined"] + bcs["members_in"]
    assert bcs["members_in"] == sum(bcs["not_eligible"].values()) + sum(bcs["excluded"].values()) + bcs["denominator"]
    # the restricted member-level table holds exactly the eligible population
    results = pl.read_parquet(generated_run / "out" / "restricted" / "measures" / "BCS.parquet")
    assert results.height == sum(bcs["excluded"].values()) + bcs["denominator"]


def test_member_results_carry_each_members_key(generated_run):
    """Every measure's member-level results (proportion, utilisation, cost, readmission) carry
    ``member_key``: the position of the member id among the members table's sorted ids."""
    out = generated_run / "out" / "restricted"
    ids = pl.read_parquet(out / "tables" / "members.parquet").get_column("member_id").sort()
    files = sorted((out / "measures").glob("*.parquet"))
    assert len(files) >= 18
    for path in files:
        results = pl.read_parquet(path)
        assert results["member_key"].dtype == pl.UInt32 and results["member_key"].null_count() == 0, path.name
        assert ids.gather(results["member_key"]).equals(results["member_id"], check_names=False), path.name


def test_injected_defects_are_quarantined(generated_run):
    truth = json.loads((generated_run / "input" / "truth.json").read_text())
    manifest = json.loads((generated_run / "out" / "manifest.json").read_text())
    assert sum(truth["defects"].values()) > 0
    assert sum(t["quarantined"] for t in manifest["tables"].values()) > 0


def test_public_and_report_carry_no_member_ids(generated_run):
    ids = pl.read_parquet(generated_run / "out" / "restricted" / "tables" / "members.parquet")["member_id"].head(200).to_list()
    for path in [generated_run / "out" / "public" / "rates.csv", generated_run / "out" / "report" / "index.html",
                 generated_run / "out" / "manifest.json", *(generated_run / "out" / "validation").glob("*.json")]:
        text = path.read_text()
        assert not any(i in text for i in ids), path.name
