"""Wiring: the Dagster group ``equity_plans`` and the pipeline steps that write the plan tables."""
from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl

from equity_pipeline import pipeline
from equity_pipeline.config import config_from_dict
from equity_pipeline.equity_plans.table import COLUMNS, KEY
from equity_pipeline.layout import OutputLayout
from equity_pipeline.suppression import COMPLEMENTARY_REASON, PRIMARY_REASON, PUBLIC_REASON, told_reasons
from tests.equity_plans.world import build


def test_assets_are_in_their_group_after_their_inputs():
    from assets.constants import EQUITY_PLANS_GROUP
    from assets.definitions import ALL_ASSETS, defs

    graph = defs.resolve_asset_graph()
    for name, parents in (("state_metrics", {"public_rates", "disparities", "member_attributes", "PQI90_member_results",
                                              "SDOH_SCREEN_member_results", "rel_completeness", "members"}),
                          ("hospital_metrics", {"member_attributes", "measure_events", "members", "sdoh_screenings"})):
        key = dg.AssetKey(name)
        assert any(key in a.keys for a in ALL_ASSETS)
        node = graph.get(key)
        assert node.group_name == EQUITY_PLANS_GROUP == "equity_plans"
        assert {dg.AssetKey(p) for p in parents} <= node.parent_keys
        asset = next(a for a in ALL_ASSETS if key in a.keys)
        checks = {spec.name: spec.blocking for spec in asset.check_specs}
        assert checks == {"no_small_cells": True, "no_suppressed_cell_revealed": True}
    assert defs.resolve_job_def("equity_pipeline_job") is not None


def test_state_metrics_step_writes_the_documented_table(tmp_path):
    world = build()
    layout = OutputLayout(tmp_path).prepare()
    world["rates"].write_parquet(layout.rates)
    world["completeness"].write_parquet(layout.completeness)
    world["attributes"].write_parquet(layout.member_attributes)
    layout.table("members").parent.mkdir(parents=True, exist_ok=True)
    world["members"].write_parquet(layout.table("members"))
    layout.member_results("PQI90").parent.mkdir(parents=True, exist_ok=True)
    world["results"]["PQI90"].write_parquet(layout.member_results("PQI90"))
    config = config_from_dict({"measurement_year": 2025, "measures": ["PQI90"], "equity_plans": {"overrides": {"states": ["MD"]}}},
                              run_date=date(2026, 6, 1))
    meta = pipeline.build_state_metrics(layout, config)
    table = pl.read_parquet(layout.state_metrics)
    assert layout.state_metrics == tmp_path / "public" / "equity_plan" / "state_metrics.parquet"
    assert dict(table.schema) == COLUMNS
    assert meta["rows"] == table.height > 0 and meta["small_cells"] == 0 and meta["unprotected_margins"] == 0
    # metadata: counts and flags only
    assert all(isinstance(v, (int, bool)) for v in meta.values())
    assert set(table["plan"]) == {"state"} and set(table["period"]) == {"2025"} and set(table["program"]) == {"AHEAD"}
    # one public reason; why each cell is hidden is in the restricted log, one row per suppressed cell
    assert told_reasons(table) == [PUBLIC_REASON]
    detail_path = layout.suppression_detail("state_metrics")
    assert detail_path.is_relative_to(layout.restricted)
    detail = pl.read_parquet(detail_path)
    hidden = table.filter(pl.col("suppressed")).select(KEY)
    assert detail.height == hidden.height and detail.join(hidden, on=KEY, how="anti").height == 0
    assert {PRIMARY_REASON, COMPLEMENTARY_REASON} <= set(detail["suppression_reason"])
    assert PUBLIC_REASON not in set(detail["suppression_reason"])


def test_a_year_without_rules_writes_empty_tables(tmp_path):
    layout = OutputLayout(tmp_path).prepare()
    config = config_from_dict({"measurement_year": 2023}, run_date=date(2026, 6, 1))
    assert pipeline.build_state_metrics(layout, config)["rules_in_effect"] is False
    assert pipeline.build_hospital_metrics(layout, config)["rows"] == 0
    assert pl.read_parquet(layout.hospital_metrics).height == 0
    assert pl.read_parquet(layout.suppression_detail("hospital_metrics")).height == 0
    assert dict(pl.read_parquet(layout.state_metrics).schema) == COLUMNS
