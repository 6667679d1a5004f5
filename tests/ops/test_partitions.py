"""Issue 7: period x state partitions backfilled with the multiprocess executor, rolled up per period from
the partitions' aggregates, give the public outputs of one unpartitioned in-process run of each period.

Data: a small generated dataset whose members live in two states (New Mexico and Vermont counties are
moved to New York, Hawaii's to Maryland), plus the generator's messy rows: members without a valid
county and orphan rows land in the ``unknown`` partition. Two periods (2024, 2025) x three state keys
are backfilled one run per partition; each roll-up is compared with ``equity_pipeline_job`` run in
process with ``measurement_year`` = that period on the whole input (the job's assets up to the compared
tables: ingest, measures, attributes, counts, rates, disparities, REL completeness, imputed-race rates and
concordance, standardised rates with O/E). The readmission risk model's refit from partition stay cells
is checked on its own, on stays with enough readmissions for the logistic model (the small backfill's
PCR has too few and takes the model's intercept-only fallback: still a whole-input fit, not per slice).
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.partitions import register_states, run_partition_job, run_rollup_job
from equity_pipeline import partitioning
from equity_pipeline.stratify import KEY, SUMS
from equity_pipeline.suites import TABLES

pytestmark = pytest.mark.slow

PERIODS = ("2024", "2025")
#: a proportion, the readmission measure (its risk model is refitted in the roll-up on every partition's
#: stays: O/E as one fit on the whole input), a money measure (float sums: equal up to rounding), and the
#: equity plan's own inputs: the PQI measure (admissions per member-year: member-years are float sums)
#: and SDOH screening (the state plan's screening by domain)
MEASURES = ("BCS", "PCR", "TCOC_PMPM", "PQI90", "SDOH_SCREEN")
MONEY = {"TCOC_PMPM", "PQI90"}
COMPARED = ("rates.parquet", "disparities.parquet", "disparity_summary.parquet", "completeness.parquet",
            "standardized_rates.parquet", "rates_imputed_race.parquet", "race_concordance.parquet")
#: tables of float sums added in another order (probability weights; expected readmissions refitted on
#: stays in another row order): every float equal up to rounding, the rest (suppression) exactly
FLOAT_SUMMED = {"standardized_rates.parquet", "rates_imputed_race.parquet"}
#: state FIPS prefix moves that leave two states (county codes exist in the target state)
MOVES = {"35": "36", "50": "36", "15": "24"}


def _config(path: Path, period: str | None = None) -> Path:
    year = f"measurement_year: {period}\n" if period else ""
    # a region across the two states (the state plan's region units: sums of per-state parts)
    path.write_text(f"run_date: 2026-11-22\n{year}measures: [{', '.join(MEASURES)}]\nimputed_race: true\n"
                    "regions: {Corridor: ['24003', '36005', '24031']}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_state_input(tmp_path_factory) -> Path:
    from equity_pipeline.generate import generate

    out = tmp_path_factory.mktemp("partition_input")
    generate(members=240, seed=31, out=out, messy_share=0.03, measurement_year=2025)
    members = pl.read_parquet(out / "members.parquet")
    prefix = pl.col("county_fips").str.slice(0, 2)
    members = members.with_columns(county_fips=pl.when(prefix.is_in(list(MOVES)))
                                   .then(prefix.replace_strict(MOVES, default=None) + pl.col("county_fips").str.slice(2))
                                   .otherwise(pl.col("county_fips")))
    members.write_parquet(out / "members.parquet")
    # one facility (CCN) that patients of both states use: a member whose id ends in 0, 3, 6 or 9 has their
    # facility claims there (the plan's per-facility patient counts then add up across partitions)
    claims = pl.read_parquet(out / "medical_claims.parquet")
    hub = claims["facility_ccn"].drop_nulls().value_counts().sort("count", "facility_ccn", descending=[True, False])["facility_ccn"][0]
    moved = pl.col("facility_ccn").is_not_null() & pl.col("member_id").str.slice(-1).is_in(["0", "3", "6", "9"]).fill_null(False)
    claims.with_columns(facility_ccn=pl.when(moved).then(pl.lit(hub)).otherwise(pl.col("facility_ccn"))).write_parquet(
        out / "medical_claims.parquet")
    return out


@pytest.fixture(scope="module")
def backfill(two_state_input, tmp_path_factory):
    """Register the state keys, backfill periods x states (multiprocess), roll up each period."""
    root = tmp_path_factory.mktemp("partitioned")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    out, config = root / "out", _config(root / "program.yaml")
    runs = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        states = register_states(instance, two_state_input)
        for period in PERIODS:
            for state in states:
                result = run_partition_job(instance, period, state, input_dir=two_state_input, out_dir=out, config_file=config)
                assert result.success, (period, state)
                runs[(period, state)] = result
            rolled = run_rollup_job(instance, period, input_dir=two_state_input, out_dir=out, config_file=config, executor="in_process")
            assert rolled.success, period
            runs[period] = rolled
        yield {"out": out, "states": states, "runs": runs, "config": config, "instance_states": sorted(instance.get_dynamic_partitions("state"))}


def _whole_run(input_dir: Path, out: Path, config: Path, home: Path) -> None:
    """``equity_pipeline_job`` in process, its assets up to the compared tables with their checks (the
    GX checks left out for time: they report on the validated tables, they do not change them)."""
    from assets.definitions import defs
    from assets.jobs import equity_pipeline_job, run_config_for

    assets = {dg.AssetKey(k) for k in ("canonical_input", *TABLES, "measure_events", *[f"{m}_member_results" for m in MEASURES],
                                       "member_attributes", "stratified_counts", "public_rates", "disparities", "rel_completeness",
                                       "imputed_race_rates", "standardized_rates", "state_metrics", "hospital_metrics")}
    checks = {k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key in assets and not k.name.startswith("gx_")}
    job = dg.reconstructable(equity_pipeline_job).get_subset(asset_selection=assets, asset_check_selection=checks)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.execute_job(job, instance=instance, run_config=run_config_for(str(input_dir), str(out), str(config)))
        assert result.success
        ran = {e.asset_check_evaluation_data.check_name for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
        assert "rows_reconcile" in ran and "no_small_cells" in ran


@pytest.fixture(scope="module")
def whole_runs(two_state_input, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("whole")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    outs = {}
    for period in PERIODS:
        outs[period] = root / period
        _whole_run(two_state_input, outs[period], _config(root / f"{period}.yaml", period), home)
    return outs


def test_state_keys_cover_every_member(two_state_input):
    raw = pl.read_parquet(two_state_input / "members.parquet")
    assert partitioning.state_keys(two_state_input) == ["MD", "NY", partitioning.UNKNOWN_STATE]
    keys = partitioning.member_state_keys(two_state_input)
    ids = raw["member_id"].str.strip_chars()
    assert keys.height == ids.filter(ids.is_not_null() & (ids != "")).n_unique()  # one key per distinct member id
    # a member whose county is not five digits of a known state is in 'unknown', never dropped
    fips = raw["county_fips"].str.strip_chars()
    stateless = raw.filter(~fips.str.contains(r"^(24|36)\d{3}$").fill_null(False) & ids.is_not_null())
    assert stateless.height > 0
    got = keys.join(stateless.select(member_id=pl.col("member_id").str.strip_chars()), on="member_id")
    assert got.height > 0 and set(got["state"]) == {partitioning.UNKNOWN_STATE}


def test_sensor_registers_the_state_keys_of_new_input(two_state_input, monkeypatch):
    from assets.resources import PipelineResource
    from assets.sensors import SETTLE_SECONDS_ENV, new_input_files

    monkeypatch.setenv(SETTLE_SECONDS_ENV, "0")
    context = dg.build_sensor_context(resources={"pipeline_config": PipelineResource(input_dir=str(two_state_input), out_dir=str(two_state_input / "out"))})
    result = new_input_files(context)
    assert len(result.run_requests) == 1
    [request] = result.dynamic_partitions_requests
    assert request.partitions_def_name == "state" and list(request.partition_keys) == ["MD", "NY", "unknown"]


def test_backfill_ran_one_multiprocess_run_per_partition(backfill):
    assert backfill["states"] == backfill["instance_states"] == ["MD", "NY", "unknown"]
    for period in PERIODS:
        for state in backfill["states"]:
            run = backfill["runs"][(period, state)].dagster_run
            assert run.tags["dagster/partition"] == f"{period}|{state}"
            assert "multiprocess" in run.run_config["execution"]["config"]
            layout = partitioning.partition_layout(backfill["out"], period, state)
            assert partitioning.read_summary(layout)["measurement_year"] == int(period)
        checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
                  for e in backfill["runs"][period].all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
        assert checks == {"partitions_reconcile": True, "no_small_cells": True, "no_suppressed_cell_revealed": True}


def test_slices_add_up_to_the_input(backfill, two_state_input):
    for period in PERIODS:
        combined = json.loads((partitioning.period_layout(backfill["out"], period).validation / "partitions.json").read_text())
        for table, info in combined["inputs"].items():
            raw_rows = pl.read_parquet(two_state_input / info["file"]).height
            assert info["rows"] == raw_rows
            if table != "providers":
                assert sum(info["rows_per_partition"].values()) == raw_rows
        # orphan rows (member ids not in the members file) are in 'unknown' and quarantined there
        assert combined["inputs"]["medical_claims"]["rows_per_partition"]["unknown"] > 0


def assert_close(a: pl.DataFrame, b: pl.DataFrame, rel: float = 1e-9) -> None:
    """Equal frames except float columns, which may differ by float rounding (relative ``rel``); nulls
    in the same places."""
    assert a.columns == b.columns and a.height == b.height
    floats = [c for c, t in a.schema.items() if t in (pl.Float32, pl.Float64)]
    assert_frame_equal(a.drop(floats), b.drop(floats), check_exact=True)
    for c in floats:
        x, y = a[c], b[c]
        assert (x.is_null() == y.is_null()).all(), c
        both = pl.DataFrame({"x": x, "y": y}).drop_nulls()
        assert both.filter((pl.col("x") - pl.col("y")).abs() > rel * pl.max_horizontal(pl.col("x").abs(), pl.col("y").abs(), 1.0)).height == 0, c


def _comparable(frame: pl.DataFrame, name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows compared exactly, rows of money measures compared up to float rounding)."""
    if "measure_id" not in frame.columns or name == "completeness.parquet":
        return frame, frame.clear()
    money = pl.col("measure_id").is_in(list(MONEY))
    return frame.filter(~money), frame.filter(money)


@pytest.mark.parametrize("period", PERIODS)
def test_rollup_public_outputs_equal_an_unpartitioned_run(backfill, whole_runs, period):
    rolled = partitioning.period_layout(backfill["out"], period)
    whole = whole_runs[period]
    for name in COMPARED:
        a, b = pl.read_parquet(whole / "public" / name), pl.read_parquet(rolled.public / name)
        assert a.height > 0 and a.columns == b.columns
        if name in FLOAT_SUMMED:
            assert_close(a, b)  # small data: mostly suppressed; the values are compared unsuppressed below
            continue
        exact_a, money_a = _comparable(a, name)
        exact_b, money_b = _comparable(b, name)
        assert_frame_equal(exact_a, exact_b, check_exact=True)
        assert_close(money_a, money_b)
        if name not in ("completeness.parquet", "race_concordance.parquet"):
            assert money_a.height > 0
    assert (whole / "public" / "rates.csv").is_file() and (rolled.public / "rates.csv").is_file()
    rates = pl.read_parquet(rolled.rates)
    # not a table of suppressed cells only: each state has published rows, and both states are units
    shown = rates.filter(~pl.col("suppressed") & (pl.col("unit_level") == "state"))
    assert {"MD", "NY"} <= set(shown["unit_id"])
    assert set(rates["period"]) == {period}


@pytest.mark.parametrize("period", PERIODS)
def test_rollup_counts_and_reconciliation_equal_an_unpartitioned_run(backfill, whole_runs, period):
    rolled = partitioning.period_layout(backfill["out"], period)
    whole = whole_runs[period]
    # unsuppressed sums per stratum: people, stays and events exactly; dollars and member-years up to rounding
    a = pl.read_parquet(whole / "restricted" / "stratified_counts.parquet").select(*KEY, *SUMS).sort(KEY)
    b = pl.read_parquet(rolled.stratified_counts).sort(KEY)
    exact = ~pl.col("measure_id").is_in(list(MONEY))
    assert_frame_equal(a.filter(exact), b.select(*KEY, *SUMS).filter(exact), check_exact=True)
    assert_close(a, b.select(*KEY, *SUMS))
    # expected readmissions per stratum (PCR's O/E): the risk model refitted on every partition's stays
    ea = pl.read_parquet(whole / "restricted" / "stratified_counts.parquet").select(*KEY, "expected").sort(KEY)
    eb = b.select(*KEY, "expected")
    assert_close(ea, eb)
    assert ea.filter(pl.col("measure_id") == "PCR")["expected"].null_count() == 0
    w, r = (json.loads(p.read_text())["details"]["risk_model"] for p in (whole / "counts" / "PCR.json", rolled.measure_counts("PCR")))
    assert {k: r[k] for k in ("method", "stays", "readmissions")} == {k: w[k] for k in ("method", "stays", "readmissions")}
    assert_frame_equal(pl.read_parquet(whole / "restricted" / "strata_identities.parquet"), pl.read_parquet(rolled.strata_identities))
    for m in MEASURES:
        w = json.loads((whole / "counts" / f"{m}.json").read_text())
        r = json.loads(rolled.measure_counts(m).read_text())
        for k in ("members_in", "not_eligible", "excluded", "denominator", "numerator", "period", "reconciles"):
            assert r[k] == w[k], (m, k)
    combined = json.loads((rolled.validation / "partitions.json").read_text())
    for table in TABLES:
        w = json.loads((whole / "validation" / f"{table}.json").read_text())
        got = combined["tables"][table]
        assert (got["read"], got["used"], got["quarantined"], got["rules"]) == (w["read"], w["used"], w["quarantined"], w["rule_counts"]), table


@pytest.mark.parametrize("period", PERIODS)
def test_rollup_standardized_and_imputed_values_equal_an_unpartitioned_run(backfill, whole_runs, period):
    """The values behind the (here mostly suppressed) standardised and imputed-race tables: the whole run's
    member-level inputs and the roll-up's partition cells through the same functions, unsuppressed."""
    from equity_pipeline import imputation, pipeline
    from equity_pipeline.config import load_config
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.standardized import standardized_rates
    from equity_pipeline.stratify import denominator_results

    whole = OutputLayout(whole_runs[period])
    rolled = partitioning.period_layout(backfill["out"], period)
    config = partitioning.period_config(load_config(backfill["config"]), period)
    specs = {m: load_specs()[m] for m in MEASURES}
    open_rates = pl.read_parquet(whole.rates).with_columns(suppressed=pl.lit(False))
    options = dict(stratifiers=config.standardization_stratifiers, standard=config.standard_population,
                   age_bands=config.standardization_age_bands, method=config.standardization_method)
    # whole run: member-level results, attributes and comorbidities
    results = denominator_results([whole.member_results(m) for m in MEASURES])
    attrs = pl.read_parquet(whole.member_attributes)
    comorbidities, info = pipeline.standardization_comorbidities(whole, config, results.select("member_id").unique())
    want, _ = standardized_rates(results, attrs, open_rates, None, specs, comorbidities=comorbidities,
                                 comorbidity_cap=info["comorbidity_cap"], **options)
    # roll-up: the partitions' member cells as pseudo-members
    layouts = [partitioning.partition_layout(backfill["out"], period, s) for s in backfill["states"]]
    rows, _ = partitioning.pseudo_members(partitioning._summed([partitioning.member_cells_path(lay) for lay in layouts]), specs)
    p_results, p_attrs, p_comorbidities = partitioning.pseudo_inputs(rows, config)
    got, _ = standardized_rates(p_results, p_attrs, open_rates, None, specs, comorbidities=p_comorbidities,
                                comorbidity_cap=info["comorbidity_cap"], **options)
    assert_close(want, got)
    # values to compare, not nulls (PCR's O/E needs a readmission in the period; its expected counts are
    # compared in the counts test and its refit on its own above)
    bcs = want.filter(pl.col("measure_id") == "BCS")
    assert bcs["oe_ratio"].drop_nulls().len() > 0 and bcs["standardized_rate"].drop_nulls().len() > 0
    # imputed race: the probability-weighted sums of the whole run = the partitions' sums added up
    whole_sums = imputation.imputed_counts(results, attrs, pl.read_parquet(whole.bisg_probabilities))
    assert_close(whole_sums, pl.read_parquet(rolled.restricted / "imputed_counts.parquet"))
    assert whole_sums.filter(pl.col("unit_level") == "state")["unit_id"].n_unique() >= 2


def test_rollup_refuses_missing_or_mismatched_partitions(backfill):
    from equity_pipeline.config import load_config

    config = load_config(backfill["config"])
    with pytest.raises(partitioning.PartitionsIncomplete, match="VT"):
        partitioning.rollup_period(backfill["out"], "2024", [*backfill["states"], "VT"], config)
    summaries = {s: partitioning.read_summary(partitioning.partition_layout(backfill["out"], "2024", s)) for s in backfill["states"]}
    summaries["MD"]["inputs"]["members"]["rows"] -= 1  # a slice that lost a row
    with pytest.raises(partitioning.PartitionsIncomplete, match="members"):
        partitioning.combine_summaries(summaries)
    summaries = {s: partitioning.read_summary(partitioning.partition_layout(backfill["out"], "2024", s)) for s in backfill["states"]}
    summaries["NY"]["inputs"]["enrollment"]["sha256"] = "0" * 64  # cut from another input file
    with pytest.raises(partitioning.PartitionsIncomplete, match="other input files"):
        partitioning.combine_summaries(summaries)
    # a period's partitions run with another year's config are not rolled up as this one
    with pytest.raises(partitioning.PartitionsIncomplete, match="config"):
        partitioning.combine_summaries({"a": summaries["MD"], "b": {**summaries["NY"], "config": {**summaries["NY"]["config"], "measurement_year": 1}}})


def test_period_keys_parse_to_measurement_periods():
    from datetime import date

    from equity_pipeline.config import ConfigError
    from equity_pipeline.periods import MeasurementPeriod

    for bad in ("2024-Q5", "2024-13", "24", "2024Q1"):
        with pytest.raises(ConfigError, match="YYYY-Qn or YYYY-MM"):
            partitioning.check_period(bad)
    assert partitioning.check_period("2024") == MeasurementPeriod(date(2024, 1, 1), date(2024, 12, 31))
    # rolling keys: tests/ops/test_rolling_periods.py


def _synthetic_stays(n_members: int, seed: int) -> pl.DataFrame:
    """Index stays (member_id, stay_id, age, sex, comorbidities, readmitted) with readmission odds rising
    with age band, male sex and comorbidities: enough readmissions for the logistic risk model."""
    import numpy as np

    rng = np.random.default_rng(seed)
    stays_per = rng.integers(1, 4, n_members)
    member = np.repeat(np.arange(n_members), stays_per)
    age = np.repeat(rng.integers(18, 90, n_members), stays_per)
    male = np.repeat(rng.random(n_members) < 0.45, stays_per)
    com = rng.integers(0, 7, member.size)
    logit = -2.2 + 0.3 * (age >= 45) + 0.5 * (age >= 55) + 0.4 * male + 0.35 * np.minimum(com, 4)
    readmitted = rng.random(member.size) < 1 / (1 + np.exp(-logit))
    return pl.DataFrame({"member_id": [f"m{i:05d}" for i in member], "stay_id": np.arange(member.size), "age": age.astype("int32"),
                         "sex": np.where(male, "M", "F"), "comorbidities": com, "readmitted": readmitted})


def test_risk_model_refitted_from_partition_cells_equals_one_fit_on_all_stays(tmp_path):
    """PCR's O/E in a roll-up: the risk model (age bands, sex, capped comorbidity count) refitted on the
    partitions' stay cells gives the coefficients and per-member expected readmissions of
    ``fit_expected`` on every stay (the whole run); fitting each partition on its own does not."""
    from equity_pipeline.config import load_config
    from equity_pipeline.measures.readmission import fit_expected
    from equity_pipeline.measures.spec import load_specs

    specs = load_specs()
    config = load_config(_config(tmp_path / "program.yaml"))
    stays = _synthetic_stays(900, seed=7)
    assert stays["readmitted"].sum() >= 50
    p_whole, whole = fit_expected(stays, specs["PCR"].risk_model)
    assert whole["method"] == "logistic" and {"male", "comorbidities"} <= set(whole["covariates"])
    per_member = (stays.with_columns(_p=pl.Series(p_whole)).group_by("member_id")
                  .agg(expected_value=pl.col("_p").sum(), numerator_value=pl.col("readmitted").sum().cast(pl.Float64),
                       denominator_value=pl.len().cast(pl.Float64), age=pl.col("age").first()))
    state = pl.when(pl.col("member_id").str.slice(1).cast(pl.Int64) % 3 == 0).then(pl.lit("MD")).otherwise(pl.lit("NY"))
    members = per_member.with_columns(state=state)
    paths = []
    for st in ("MD", "NY"):  # one partition per state, cells written as run_partition writes them
        mine = members.filter(pl.col("state") == st)
        results = mine.select("member_id", measure_id=pl.lit("PCR"), measure_version=pl.lit(specs["PCR"].version), submeasure=pl.lit("all"),
                              period=pl.lit("2025"), age="age", in_denominator=pl.lit(True), numerator_value="numerator_value",
                              denominator_value="denominator_value")
        attributes = mine.select("member_id", "state", *[pl.lit("Unknown").alias(c) for c in partitioning._cell_attribute_columns(config)])
        cells = partitioning.member_cells(results, attributes, mine.select("member_id", comorbidities=pl.lit(0, dtype=pl.Int64)),
                                          {"PCR": stays.join(mine.select("member_id"), on="member_id")}, config, specs, 4)
        assert cells["n"].sum() == mine.height and cells.height < mine.height  # counts, not one row per member
        paths.append(tmp_path / f"{st}.parquet")
        cells.write_parquet(paths[-1])
    rows, models = partitioning.pseudo_members(partitioning._summed(paths), specs)
    refit = models["PCR"]
    assert refit["method"] == "logistic" and refit["covariates"] == whole["covariates"]
    for name, b in whole["coefficients"].items():
        assert abs(refit["coefficients"][name] - b) <= 2e-6, name
    # per state: the expected readmissions of the whole fit; the overall total = observed (in-sample)
    got = rows.group_by("state").agg(pl.col("expected_value").sum()).sort("state")
    want = members.group_by("state").agg(pl.col("expected_value").sum()).sort("state")
    assert_close(want, got)
    assert abs(got["expected_value"].sum() - stays["readmitted"].sum()) < 1e-6
    # sorted per-member expected values agree too (the members behind each cell are interchangeable)
    for st in ("MD", "NY"):
        a = members.filter(pl.col("state") == st)["expected_value"].sort().to_numpy()
        b = rows.filter(pl.col("state") == st)["expected_value"].sort().to_numpy()
        assert a.shape == b.shape and abs(a - b).max() < 1e-9
    # a model fitted on one state's stays alone gives that state other expected counts (why O/E is refitted)
    md = stays.join(members.filter(pl.col("state") == "MD").select("member_id"), on="member_id")
    p_md, _ = fit_expected(md, specs["PCR"].risk_model)
    assert abs(float(p_md.sum()) - want.filter(pl.col("state") == "MD")["expected_value"].item()) > 1e-3


#: plan rows whose values are float sums added in another order (dollars; PQI member-years): equal up to rounding
PLAN_FLOAT_METRICS = ("TCOC_PMPM", "PRIMARY_CARE_SHARE", "PQI90")


@pytest.mark.parametrize("period", PERIODS)
def test_rollup_equity_plan_tables_equal_an_unpartitioned_run(backfill, whole_runs, period):
    """public/equity_plan/state_metrics and hospital_metrics of the roll-up (the partitions' plan cell counts
    added up, then shares, locks, suppression, comparisons, baseline and targets once) equal the whole run's:
    every key, count, suppression flag and restricted reason exactly; rates and CIs exactly except float sums."""
    rolled = partitioning.period_layout(backfill["out"], period)
    whole = whole_runs[period]
    partitions = [partitioning.partition_layout(backfill["out"], period, s) for s in backfill["states"]]
    for name in partitioning.PLAN_TABLES:
        a = pl.read_parquet(whole / "public" / "equity_plan" / f"{name}.parquet")
        b = pl.read_parquet(getattr(rolled, name))
        assert a.height > 0 and a.columns == b.columns
        floats = pl.col("metric_id").is_in(PLAN_FLOAT_METRICS)
        assert_frame_equal(a.filter(~floats), b.filter(~floats), check_exact=True)
        assert_close(a.filter(floats), b.filter(floats))
        # why each cell is hidden (restricted log): the same cells, the same kinds
        assert_frame_equal(pl.read_parquet(whole / "restricted" / "suppression" / f"{name}.parquet"),
                           pl.read_parquet(rolled.suppression_detail(name)), check_exact=True)
        # the partitions' counts carry no member ids, and a unit counted in several partitions exists (so the
        # sum is exercised): the population (state plan) and facilities with patients from both states
        counts = [pl.read_parquet(partitioning.plan_counts_path(lay, name)) for lay in partitions]
        assert all("member_id" not in c.columns for c in counts)
        assert all("member_id" not in pl.read_parquet(partitioning.plan_labels_path(lay, name)).columns for lay in partitions)
        seen = pl.concat([c.filter((pl.col("stratifier") == "overall") & (pl.col("members") > 0)).select("family", "unit_id")
                          .unique().with_columns(part=pl.lit(i)) for i, c in enumerate(counts)])
        shared = seen.group_by("family", "unit_id").agg(pl.col("part").n_unique().alias("parts")).filter(pl.col("parts") > 1)
        assert shared.height > 0, name
    state = pl.read_parquet(rolled.state_metrics)
    assert {"PQI90", "SDOH_SCREEN_DOMAIN", "REL_RACE_ETHNICITY"} <= set(state["metric_id"])
    assert {"population", "state", "region"} <= set(state["unit_level"])
    # not a table of suppressed cells only: published own-computed state cells (PQI90, REL shares)
    assert state.filter(~pl.col("suppressed") & (pl.col("derived_from") == "computed")).height > 0
    hospital = pl.read_parquet(rolled.hospital_metrics)
    assert {"HOSP_READMISSION", "HOSP_ED_REVISIT", "DUAL_SHARE"} <= set(hospital["metric_id"])
    # the facility both states' patients use has published cells (most facilities are small: all hidden)
    assert hospital.filter(~pl.col("suppressed")).height > 0


@pytest.mark.parametrize("period", PERIODS)
def test_plan_counts_of_the_partitions_add_up_to_the_whole_runs(backfill, whole_runs, period):
    """The unsuppressed plan cell counts behind the tables (the small backfill hides most of them):
    the partitions' counts and label cells added up equal step (a) run once on the whole run's member-level
    data; per-facility distinct patients add up because each member is in one partition."""
    from equity_pipeline import pipeline
    from equity_pipeline.config import load_config
    from equity_pipeline.equity_plans import cells as C
    from equity_pipeline.equity_plans.state import complete_grid
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.measures.spec import load_specs

    config = partitioning.period_config(load_config(backfill["config"]), period)
    whole = OutputLayout(whole_runs[period])
    assert partitioning.plan_counts(whole, config, load_specs())  # rules in effect: both tables' counts written
    partitions = [partitioning.partition_layout(backfill["out"], period, s) for s in backfill["states"]]
    for name in partitioning.PLAN_TABLES:
        want = pl.read_parquet(partitioning.plan_counts_path(whole, name))
        got = C.sum_counts([pl.read_parquet(partitioning.plan_counts_path(lay, name)) for lay in partitions])
        if name == "state_metrics":
            got = complete_grid(got)  # strata observed in one partition only: zeros elsewhere, as one run's grid
        keys = [c for c in want.columns if c not in C.COUNT_COLUMNS]
        want, got = want.sort(keys, nulls_last=True), got.select(want.columns).sort(keys, nulls_last=True)
        assert want.height > 0
        if name == "hospital_metrics":  # patients, stays, visits: integers
            assert_frame_equal(want, got, check_exact=True)
        else:  # PQI member-years are float sums
            assert_close(want, got)
        labels = pl.read_parquet(partitioning.plan_labels_path(whole, name))
        summed = C.sum_label_cells([pl.read_parquet(partitioning.plan_labels_path(lay, name)) for lay in partitions])
        order = [c for c in labels.columns if c != "n"]
        assert_frame_equal(labels.sort(order, nulls_last=True), summed.select(labels.columns).sort(order, nulls_last=True), check_exact=True)
    # an independent figure: the whole input's patients of each facility, from the whole run's final claims
    # (distinct members with an inpatient stay or ED visit there in the period), equal the summed counts
    from equity_pipeline.encounters import ed_visits, inpatient_stays
    from equity_pipeline.equity_plans.hospital import facility_patients
    from equity_pipeline.periods import as_period

    claims = pipeline.final_medical_claims(whole)
    stays = inpatient_stays(claims).collect()
    patients = facility_patients(stays, ed_visits(claims, stays.lazy().head(0)).collect(), as_period(config.period))
    per_facility = patients.group_by("facility").agg(want=pl.col("member_id").n_unique())
    got = (C.sum_counts([pl.read_parquet(partitioning.plan_counts_path(lay, "hospital_metrics")) for lay in partitions])
           .filter((pl.col("family") == "REL_RACE_ETHNICITY") & (pl.col("stratifier") == "overall"))
           .select(facility="unit_id", got="members"))
    joined = per_facility.join(got, on="facility", how="full", coalesce=True)
    assert joined.height > 0 and (joined["want"] == joined["got"]).all()


def test_rollup_report_workbook_fhir_and_audit_cover_the_period_with_trends(backfill):
    """The period's report and workbook are rendered from the roll-up's public tables; the later period's
    trend section carries the earlier rolled-up period; FHIR MeasureReports, a manifest with counts and
    the audit pack (validation, reconciliation, lineage) of the combined partitions."""
    from equity_pipeline.report.trends import trend_rates

    later = partitioning.period_layout(backfill["out"], PERIODS[-1])
    earlier = partitioning.period_layout(backfill["out"], PERIODS[0])
    for lay in (earlier, later):
        assert lay.report.joinpath("index.html").is_file() and lay.workbook.is_file()
        manifest = json.loads(lay.manifest.read_text())
        assert manifest["partitions"]["states"] == backfill["states"]
        rows = {i["table"]: i["rows"] for i in manifest["inputs"]}  # every input row read once across the partitions
        assert rows and {t: manifest["tables"][t]["read"] for t in rows} == rows
        lines = (lay.public / "fhir" / "measure_reports.ndjson").read_text().splitlines()
        assert lines and all(json.loads(x)["resourceType"] == "MeasureReport" for x in lines)
        # audit pack: validation counts per table = the input rows; every published and suppressed rates cell has lineage
        audit = json.loads((lay.audit / "reconciliation.json").read_text())
        assert audit["all_tables_reconcile"] and audit["all_measures_reconcile"]
        summary = pl.read_csv(lay.audit / "validation_summary.csv")
        assert dict(zip(summary["table"], summary["read"])) == rows
        lineage = pl.read_csv(lay.audit / "lineage.csv", infer_schema_length=0)
        rates = pl.read_parquet(lay.rates)
        assert lineage.filter(pl.col("table") == "rates").height == rates.height > 0
        # the rolled-up equity-plan tables: lineage of their cells, workbook sheets, the filing document
        for name in partitioning.PLAN_TABLES:
            assert lineage.filter(pl.col("table") == name).height > 0, name
        with zipfile.ZipFile(lay.workbook) as book:
            sheets = book.read("xl/workbook.xml").decode()
        assert 'name="state_metrics"' in sheets and 'name="hospital_metrics"' in sheets
        assert lay.report.joinpath("state_plan.html").is_file()
    html = later.report.joinpath("index.html").read_text(encoding="utf-8")
    assert f"{PERIODS[0]}" in html
    # the trend rows of the earlier period are that period's published roll-up rows
    trends = trend_rates(pl.read_parquet(later.rates), [earlier.rates]).table
    assert set(trends["period"]) == set(PERIODS)
    early_rows = trends.filter(pl.col("period") == PERIODS[0])
    published = pl.read_parquet(earlier.rates).filter(pl.col("stratifier") == "overall", pl.col("unit_level") == "population",
                                                      pl.col("submeasure") == "all")
    assert set(early_rows.filter(pl.col("stratifier") == "overall")["measure_id"]) == set(published["measure_id"])


def test_schedule_and_rollup_sensor_target_the_partitioned_jobs(backfill, tmp_path):
    from datetime import datetime

    from assets import partitions as ap

    defs = dg.Definitions(assets=ap.partition_assets, jobs=ap.partition_jobs, schedules=ap.partition_schedules,
                          sensors=ap.partition_sensors, resources={"pipeline_config": ap.PipelineResource()})
    repo = defs.get_repository_def()
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 3, 2, 6), repository_def=repo)
        assert ap.partitioned_monthly_refresh.evaluate_tick(context).skip_message  # no state registered yet
        instance.add_dynamic_partitions("state", backfill["states"])
        requests = ap.partitioned_monthly_refresh.evaluate_tick(context).run_requests
        if ap.PERIOD_GRANULARITY == "year":  # the latest ended measurement year on 2026-03-02
            assert [r.partition_key for r in requests] == [f"2025|{s}" for s in backfill["states"]]
        assert len({r.run_key for r in requests}) == len(backfill["states"])
        # the roll-up sensor, after the backfill's last state run of a period: every state is there
        run = backfill["runs"][(PERIODS[-1], backfill["states"][-1])]
        success = next(e for e in run.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)

        def evaluate():
            ctx = dg.build_run_status_sensor_context(sensor_name=ap.ROLLUP_SENSOR, dagster_event=success, dagster_instance=instance,
                                                     dagster_run=run.dagster_run, repository_def=repo)
            return ap.period_rollup_when_states_done(ctx)

        request = evaluate()
        assert isinstance(request, dg.RunRequest) and request.partition_key == PERIODS[-1]
        assert request.run_config["resources"]["pipeline_config"]["config"]["out_dir"] == str(backfill["out"])
        assert evaluate().run_key == request.run_key  # same partitions: same key (Dagster runs it once)
        instance.add_dynamic_partitions("state", ["VT"])  # a registered state not materialized yet: wait
        assert isinstance(evaluate(), dg.SkipReason)


def test_partitioned_outputs_outside_restricted_hold_no_member_or_claim_id(backfill, two_state_input):
    """PHI: every file the backfill and the roll-ups wrote outside a ``restricted/`` folder (public tables,
    reports, workbooks, FHIR, manifests, audit packs, partition summaries) holds no member id or claim id of
    the input; Parquet files are read as values. The identifiers are at least 8 characters here, so a
    match is never a chance substring of a number or a word."""
    ids = set(pl.read_parquet(two_state_input / "members.parquet")["member_id"].drop_nulls().str.strip_chars())
    ids |= set(pl.read_parquet(two_state_input / "medical_claims.parquet")["claim_id"].drop_nulls().str.strip_chars())
    ids = {i for i in ids if len(i) >= 8}
    assert len(ids) > 240  # members and claims of the generated input
    token = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
    scanned, found = 0, {}
    for path in sorted(Path(backfill["out"]).rglob("*")):
        if not path.is_file() or "restricted" in path.relative_to(backfill["out"]).parts or ".dagster" in path.parts:
            continue
        if path.suffix == ".parquet":
            text = " ".join(str(v) for row in pl.read_parquet(path).iter_rows() for v in row)
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                text = " ".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
        else:
            text = path.read_bytes().decode("utf-8", "replace")
        scanned += 1
        hits = set(token.findall(text)) & ids
        if hits:
            found[str(path.relative_to(backfill["out"]))] = len(hits)
    assert scanned > 20
    assert not found, found
