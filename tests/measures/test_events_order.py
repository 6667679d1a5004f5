"""Coded events grouped by value set (docs/performance.md, "Measures stage: events by value set"):
``extract.claim_event_parts`` / ``events_by_value_set`` give the rows of the reference
``events.claim_events`` (plus the other sources' events) with each value set's rows together and the
value sets in name order, so that a reader filtering on ``value_set`` skips the other row groups of a
file written in that order; on a small generated run, restricted/events.parquet holds exactly the
reference rows in that order."""
from __future__ import annotations

from datetime import date

import polars as pl
import pyarrow.parquet as pq

from equity_pipeline.events import EVENT_SCHEMA, claim_events
from equity_pipeline.measures import extract
from tests.measures.test_extract import _claims, _codes


def _observations() -> pl.DataFrame:
    # an observation-like event of a value set the claims also have (DIAB) and of one they have not (BMI)
    return pl.DataFrame(
        [("m7", date(2025, 5, 1), "DIAB", "LOINC", "1-1", "clinical", 7.5), ("m7", date(2025, 5, 2), "BMI", "LOINC", "2-2", "clinical", 31.0)],
        schema=EVENT_SCHEMA, orient="row",
    )


def _blocks(values: list[str]) -> list[str]:
    """The value sets in the order their runs appear (a value set twice = its rows are not together)."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def test_parts_hold_the_reference_rows_grouped_by_value_set():
    claims, codes = _claims().lazy(), _codes()
    parts = extract.claim_event_parts(claims, codes)
    want = claim_events(claims, codes).collect()
    # one key per value set the reference tags, each of its frames of that value set only
    assert sorted(parts) == sorted(want["value_set"].unique().to_list())
    for vs, frames in parts.items():
        for frame in frames:
            assert frame.collect()["value_set"].unique().to_list() == [vs]
    got = extract.events_by_value_set(parts, _observations()).collect()
    assert got.schema == pl.Schema(EVENT_SCHEMA)
    expected = pl.concat([want, _observations()])
    assert got.sort(got.columns).equals(expected.sort(expected.columns))
    blocks = _blocks(got["value_set"].to_list())
    assert blocks == sorted(set(blocks))   # each value set once, in name order: the column is sorted
    assert got["value_set"].is_sorted()
    # DIAB's block holds the claims' DIAB rows and the observation's
    diab = got.filter(pl.col("value_set") == "DIAB")
    assert set(diab["code_system"]) == {"ICD10CM", "LOINC"}


def test_no_events_give_the_empty_frame():
    got = extract.events_by_value_set({}).collect()
    assert got.height == 0 and got.schema == pl.Schema(EVENT_SCHEMA)
    none_hit = _codes().filter(pl.col("code_system") == "NDC")   # no claim column holds NDC codes
    assert extract.claim_events(_claims().lazy(), none_hit).collect().height == 0


def test_a_value_set_filter_skips_row_groups_of_the_ordered_file(tmp_path):
    # many rows of three value sets, written in value-set order with small row groups: a scan for one
    # value set reads only its row groups (their statistics exclude the others), and gives its rows
    n = 3000
    frames = {vs: pl.DataFrame({"member_id": [f"m{i}" for i in range(n)], "event_date": [date(2025, 1, 1)] * n,
                                "value_set": [vs] * n, "code_system": ["CPT"] * n, "code": [str(i % 7) for i in range(n)],
                                "source": ["claims"] * n, "value_numeric": [None] * n}, schema=EVENT_SCHEMA)
              for vs in ("C_SET", "A_SET", "B_SET")}
    path = tmp_path / "events.parquet"
    extract.events_by_value_set({vs: [f.lazy()] for vs, f in frames.items()}).sink_parquet(path, row_group_size=1000)
    meta = pq.ParquetFile(path).metadata
    col = meta.schema.to_arrow_schema().get_field_index("value_set")
    spans = [(meta.row_group(i).column(col).statistics.min, meta.row_group(i).column(col).statistics.max) for i in range(meta.num_row_groups)]
    assert meta.num_row_groups >= 9
    assert all(lo == hi for lo, hi in spans)   # one value set per row group
    assert [lo for lo, _ in spans] == sorted(lo for lo, _ in spans)
    got = pl.scan_parquet(path).filter(pl.col("value_set").is_in(["B_SET"])).collect()
    assert got.sort("member_id").equals(frames["B_SET"].sort("member_id"))


def test_other_events_are_split_by_value_set_keeping_their_order():
    """Events of other sources (observations, fills, screenings) come in one frame of mixed value sets:
    each value set's rows come out together, in their own order, value sets in name order and a null
    value set (never expected) last, every row once."""
    rows = [("m3", date(2025, 1, 3), "B_SET", "LOINC", "3", "clinical", 3.0),
            ("m1", date(2025, 1, 1), "A_SET", "LOINC", "1", "clinical", 1.0),
            ("m9", date(2025, 1, 9), None, "LOINC", "9", "clinical", 9.0),
            ("m2", date(2025, 1, 2), "B_SET", "LOINC", "2", "clinical", 2.0),
            ("m0", date(2025, 1, 8), "A_SET", "LOINC", "0", "clinical", 0.5),
            ("m8", date(2025, 1, 7), None, "LOINC", "8", "clinical", 8.0)]
    mixed = pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")
    got = extract.events_by_value_set({}, mixed).collect()
    assert got["value_set"].to_list() == ["A_SET", "A_SET", "B_SET", "B_SET", None, None]
    assert got["code"].to_list() == ["1", "0", "3", "2", "9", "8"]
    assert got.sort(got.columns, nulls_last=True).equals(mixed.sort(mixed.columns, nulls_last=True))
