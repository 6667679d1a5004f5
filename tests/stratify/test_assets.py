"""The Dagster asset for the disparity tables: in the stratification group, after public_rates."""
from __future__ import annotations

import dagster as dg


def test_disparities_asset_is_registered_after_public_rates():
    from assets.constants import STRATIFICATION_GROUP
    from assets.definitions import ALL_ASSETS, defs

    assert any(dg.AssetKey("disparities") in a.keys for a in ALL_ASSETS)
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("disparities"))
    assert node.group_name == STRATIFICATION_GROUP
    assert dg.AssetKey("public_rates") in node.parent_keys
    asset = next(a for a in ALL_ASSETS if dg.AssetKey("disparities") in a.keys)
    assert "no_suppressed_cell_revealed" in {spec.name for spec in asset.check_specs}
    # member attributes now read coverage and screenings too
    assert {dg.AssetKey("enrollment"), dg.AssetKey("sdoh_screenings")} <= graph.get(dg.AssetKey("member_attributes")).parent_keys
