"""engine.latest_result with source flags and without a sort, the exclusion reason without a sort,
and the member frame of a spec without anchors: the same frames as the code they replace (copied
below as references), on random events and members (docs/performance.md, "Measures stage: events
by value set")."""
from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl
import pytest

from equity_pipeline.events import EVENT_SCHEMA
from equity_pipeline.measures import engine
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.periods import MeasurementPeriod

MY = MeasurementPeriod.calendar_year(2025)


def _reference_latest_result(events: pl.LazyFrame, rule: dict, period: MeasurementPeriod) -> pl.DataFrame:
    """engine.latest_result before this change: per member and date a list of sources, then a sort."""
    start, end = period.resolve(rule.get("from", "period_begin")), period.resolve(rule.get("to", "period_end"))
    window = events.filter(pl.col("event_date").is_between(start, end))
    per_component = []
    for comp in rule["components"]:
        obs, good, bad = comp.get("observation"), comp.get("controlled_codes"), comp.get("uncontrolled_codes")
        value = pl.col("value_numeric")
        ok_value = value < comp["controlled_below"] if "controlled_below" in comp else value <= comp["controlled_at_most"]
        ok = (pl.when(pl.col("value_set") == good).then(True).when(pl.col("value_set") == bad).then(False)
              .when((pl.col("value_set") == obs) & value.is_not_null()).then(ok_value).otherwise(None))
        readings = window.filter(pl.col("value_set").is_in([v for v in (obs, good, bad) if v])).with_columns(_ok=ok).filter(pl.col("_ok").is_not_null())
        per_component.append(readings.group_by("member_id", "event_date").agg(
            pl.col("_ok").any().alias(f"ok_{comp['name']}"), pl.col("source").unique().alias(f"src_{comp['name']}")))
    joined = per_component[0]
    for other in per_component[1:]:
        joined = joined.join(other, on=["member_id", "event_date"], how="inner")
    names = [c["name"] for c in rule["components"]]
    latest = joined.sort("member_id", "event_date").group_by("member_id", maintain_order=True).last()
    return latest.select(
        "member_id", pl.col("event_date").alias("evidence_date"),
        pl.concat_list([f"src_{n}" for n in names]).list.unique().list.sort().list.join("+").alias("source"),
        pl.all_horizontal([f"ok_{n}" for n in names]).alias("controlled"),
    ).collect()


def _random_readings(rule: dict, seed: int) -> pl.DataFrame:
    """Readings of every value set of ``rule`` (and an unrelated one) for 300 members on 16 dates
    around the period (so that components often share a date), from three sources, values around the thresholds, some null values."""
    rng = random.Random(seed)
    sets = [v for c in rule["components"] for v in (c.get("observation"), c.get("controlled_codes"), c.get("uncontrolled_codes")) if v]
    rows = []
    for _ in range(6000):
        vs = rng.choice([*sets, "unrelated"])
        rows.append((f"m{rng.randrange(300):03d}", date(2024, 11, 15) + timedelta(days=30 * rng.randrange(16)), vs, None, None,
                     rng.choice(["claims", "clinical", "composite"]), rng.choice([None, *[rng.uniform(60, 170) for _ in range(4)], rng.uniform(5, 12)])))
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")


@pytest.mark.parametrize("measure", ["CBP", "HBD"])
@pytest.mark.parametrize("seed", [1, 2])
def test_latest_result_equals_the_list_and_sort_version(measure, seed):
    rule = load_specs()[measure].latest_result
    assert rule, measure
    events = _random_readings(rule, seed)
    want = _reference_latest_result(events.lazy(), rule, MY).sort("member_id")
    got = engine.latest_result(events.lazy(), rule, MY).collect().sort("member_id")
    assert got.schema == want.schema
    assert got.equals(want)
    # not vacuous: members with readings, controlled and not, with one and with several sources
    assert want.height > 100 and 0 < want["controlled"].sum() < want.height
    assert want["source"].str.contains("+", literal=True).any() and (~want["source"].str.contains("+", literal=True)).any()


def test_latest_result_without_readings_is_empty():
    rule = load_specs()["CBP"].latest_result
    got = engine.latest_result(pl.LazyFrame(schema=EVENT_SCHEMA), rule, MY).collect()
    assert got.height == 0 and got.columns == ["member_id", "evidence_date", "source", "controlled"]


def test_first_exclusion_reason_without_a_sort():
    # the reason of each member's first exclusion in spec order (order numbers 0..3; an order number
    # can come twice with one reason: a spec's deceased and event parts of one exclusion)
    rng = random.Random(5)
    reasons = ["hospice", "deceased", "frailty", "palliative"]
    rows = [(f"m{rng.randrange(400)}", o, reasons[o]) for o in (rng.randrange(4) for _ in range(3000))]
    parts = pl.DataFrame(rows, schema={"member_id": pl.String, "_o": pl.Int32, "reason": pl.String}, orient="row")
    want = parts.sort("member_id", "_o").group_by("member_id", maintain_order=True).agg(exclusion_reason=pl.col("reason").first())
    got = parts.group_by("member_id").agg(exclusion_reason=pl.col("reason").get(pl.col("_o").arg_min())).sort("member_id")
    assert got.equals(want)
    by_hand = {m: reasons[min(o for mm, o, _ in rows if mm == m)] for m, _, _ in rows}
    assert dict(got.iter_rows()) == by_hand


def test_members_of_a_spec_without_anchors_equal_the_self_join():
    # evaluate's member frame for a spec without per-member anchors is the members' own columns; the
    # code before joined the members to their own (member_id, birth_date): same rows, ids being unique
    members = pl.DataFrame({"member_id": [f"m{i}" for i in range(50)], "sex": ["F", "M"] * 25,
                            "death_date": [None] * 49 + [date(2025, 3, 1)],
                            "birth_date": [date(1950 + i, 1 + i % 12, 1 + i % 28) for i in range(50)]}).lazy()
    spec = load_specs()["BCS"]
    assert not spec.anchors
    old = members.select("member_id", "sex", "death_date").join(members.select("member_id", "birth_date"), on="member_id", how="left")
    new = members.select("member_id", "sex", "death_date", "birth_date")
    assert old.collect().sort("member_id").equals(new.collect().sort("member_id"))
    results, counts = engine.evaluate(spec, MY, members, pl.LazyFrame(schema={"member_id": pl.String, "payer": pl.String,
                                      "line_of_business": pl.String, "dual_status": pl.String, "enrollment_start": pl.Date,
                                      "enrollment_end": pl.Date}), pl.LazyFrame(schema=EVENT_SCHEMA))
    # 25 women; BCS's age band (52-74 at the period end) and no enrollment: every eligible woman fails enrollment
    assert counts.members_in == 50 and counts.not_eligible["not_sex"] == 25 and counts.reconciles()


def _reference_normalised_source() -> pl.Expr:
    """The normalisation satisfied() applied to one member's matched sources before this change: the
    ``+``-separated parts distinct and sorted (``""`` for a null source)."""
    return pl.when(pl.col("source").is_null()).then(pl.lit("")).otherwise(
        pl.col("source").str.split("+").list.unique().list.sort().list.join("+"))


@pytest.mark.parametrize("seed", range(6))
def test_matching_normalised_sources_equal_the_split_and_sort_version(seed):
    """matching(..., normalised=True) builds the normalised source from the per-source flags; the same
    strings as normalising its joined sources by splitting, deduplicating and sorting, with sources
    that are joined already, repeat a part, are empty or null."""
    rng = random.Random(seed)
    pool = ["claims", "clinical", "claims+clinical", "pharmacy+claims", "", None, "sdoh", "clinical+sdoh+claims"]
    rows = [(f"m{rng.randrange(200):03d}", date(2025, 1, 1) + timedelta(days=rng.randrange(365)), "mammography", None, None,
             rng.choice(pool), None) for _ in range(3000)]
    events = pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row").lazy()
    criterion = engine.EventCriterion(any_of=("mammography",), start="period_begin", end="period_end")
    dates = events.select("member_id").unique().with_columns(birth_date=pl.lit(date(1960, 1, 1)))
    plain = engine.matching(events, criterion, MY, dates).with_columns(source=_reference_normalised_source()).collect().sort("member_id")
    flagged = engine.matching(events, criterion, MY, dates, normalised=True).collect().sort("member_id")
    assert flagged.equals(plain)
    assert flagged["source"].str.contains("+", literal=True).any()   # parts were merged
    via = engine.satisfied(events, engine.AnyOf((criterion,)), MY, dates).collect().sort("member_id")
    assert via.equals(plain)
