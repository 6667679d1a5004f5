"""Issue 7: rolling 12-month measurement periods (``measurement_period: {end: ...}``) and the quarter /
month partition keys that use them.

Every expected value below is reasoned from the dates by hand (comments), not read back from the code:
calendar year 2024 is 2024-01-01..2024-12-31; the 12 months ending 2025-03-31 are 2024-04-01..2025-03-31.
That a calendar-year config still gives byte-identical outputs is guarded by the existing suites
(tests/measures, tests/test_smoke_pipeline.py, tests/ops/test_partitions.py), which run unchanged.
"""
from __future__ import annotations

import json
import textwrap
from datetime import date

import polars as pl
import pytest

from equity_pipeline.config import config_from_dict, load_config
from equity_pipeline.errors import ConfigError
from equity_pipeline.events import value_set_frame
from equity_pipeline.measures.extract import claim_events
from equity_pipeline.measures.engine import evaluate
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.periods import MeasurementPeriod, as_period, period_from_key, period_key, quarter_keys
from tests.measures.helpers import CLAIM_SCHEMA, covered, line, person

RUN = date(2026, 11, 22)
CY2024 = MeasurementPeriod(date(2024, 1, 1), date(2024, 12, 31))
R2503 = MeasurementPeriod(date(2024, 4, 1), date(2025, 3, 31))  # rolling 12 months ending 2025-03-31


def _config(**raw):
    return config_from_dict({"run_date": RUN, "measures": ["BCS"], **raw})


# ------------------------------------------------------------------------------------ periods
def test_rolling_period_is_the_twelve_whole_months_ending_on_the_month_end():
    assert MeasurementPeriod.rolling(date(2025, 3, 31)) == R2503
    assert MeasurementPeriod.rolling(date(2024, 12, 31)) == CY2024               # a December end is the calendar year
    assert MeasurementPeriod.rolling(date(2024, 2, 29)) == MeasurementPeriod(date(2023, 3, 1), date(2024, 2, 29))
    assert MeasurementPeriod.rolling(date(2025, 1, 31)) == MeasurementPeriod(date(2024, 2, 1), date(2025, 1, 31))
    with pytest.raises(ValueError, match="month end"):
        MeasurementPeriod.rolling(date(2025, 3, 30))
    assert R2503.label == "2024-04-01/2025-03-31" and CY2024.label == "2024"
    assert R2503.year == 2025 and not R2503.is_calendar_year and CY2024.is_calendar_year
    # spec anchors resolve against the rolling period: 15 months before 2024-04-01 is 2023-01-01
    assert R2503.resolve({"months_before_begin": 15}) == date(2023, 1, 1)
    assert R2503.resolve("before_period_begin") == date(2024, 3, 31)
    assert as_period(2024) == CY2024 and as_period(R2503) is R2503
    with pytest.raises(TypeError):
        as_period("2024")


# ------------------------------------------------------------------------------------ config
def test_config_measurement_period():
    c = _config(measurement_period={"end": date(2025, 3, 31)})
    assert c.period == R2503 and c.measurement_year == 2025 and c.period_end == date(2025, 3, 31)
    assert c.to_dict()["measurement_period"] == {"begin": "2024-04-01", "end": "2025-03-31", "label": "2024-04-01/2025-03-31"}
    assert _config(measurement_period={"end": "2024-02-29"}).period.begin == date(2023, 3, 1)  # text dates too
    # a calendar-year config: the period is the year and the manifest's config has no new key
    y = _config(measurement_year=2024)
    assert y.period == CY2024 and y.period_end is None and "measurement_period" not in y.to_dict()
    assert _config().period == MeasurementPeriod.calendar_year(RUN.year - 1)  # default unchanged


@pytest.mark.parametrize("raw, message", [
    ({"measurement_period": {"end": date(2025, 3, 30)}}, "last day of a month"),
    ({"measurement_period": {"end": "2025-02-29"}}, "not a YYYY-MM-DD date"),      # no such day
    ({"measurement_period": {"end": 20250331}}, "not a YYYY-MM-DD date"),
    ({"measurement_period": {"end": date(2025, 3, 31)}, "measurement_year": 2025}, "mutually exclusive"),
    ({"measurement_period": {}}, "key end"),
    ({"measurement_period": {"end": date(2025, 3, 31), "months": 6}}, "key end"),
    ({"measurement_period": "2025-03"}, "key end"),
    ({"measurement_period": {"end": date(2027, 1, 31)}}, "run date's year"),          # RUN is in 2026
    ({"measurement_period": {"end": date(1999, 12, 31)}}, "run date's year"),
])
def test_config_measurement_period_errors(raw, message):
    with pytest.raises(ConfigError, match=message):
        _config(**raw)


def test_config_file_yaml_date(tmp_path):
    path = tmp_path / "program.yaml"
    path.write_text("run_date: 2026-11-22\nmeasures: [BCS]\nmeasurement_period: {end: 2025-03-31}\n", encoding="utf-8")
    assert load_config(path).period == R2503


# ------------------------------------------------------------------------------------ measures
def _bcs(period: MeasurementPeriod, members: list[dict], spans: list[dict], claims: list[dict]) -> pl.DataFrame:
    spec = load_specs()["BCS"]
    m = pl.DataFrame(members, schema={"member_id": pl.String, "sex": pl.String, "birth_date": pl.Date, "death_date": pl.Date})
    e = pl.DataFrame(spans, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                                     "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    events = claim_events(pl.DataFrame(claims, schema=CLAIM_SCHEMA).lazy(), value_set_frame(spec.value_set_names))
    results, counts = evaluate(spec, period, m.lazy(), e.lazy(), events)
    assert counts.reconciles()
    return results


def test_bcs_differs_between_the_calendar_year_and_the_rolling_period():
    members = [
        person("FEB25"),                      # mammogram 2025-02-10: after CY2024, inside the rolling period
        person("NOV22"),                      # mammogram 2022-11-15: in CY2024's look-back (from 2022-10-01), not the rolling one (from 2023-01-01)
        person("JUN24"),                      # mammogram 2024-06-01: in both
        person("TURNS50", date(1975, 2, 15)),  # 49 on 2024-12-31 (not eligible), 50 on 2025-03-31
        person("TURNS75", date(1950, 3, 1)),  # 74 on 2024-12-31, 75 on 2025-03-31 (not eligible)
        person("LEFT", date(1965, 5, 1)),     # enrolled to 2025-01-31: on the CY2024 anchor, not on 2025-03-31
        person("HOSPICE"),                    # hospice 2025-03-01: after CY2024, excluded in the rolling period
    ]
    spans = [covered(m["member_id"]) for m in members if m["member_id"] != "LEFT"] + [covered("LEFT", end=date(2025, 1, 31))]
    claims = [line("FEB25", date(2025, 2, 10), hcpcs="77067"), line("NOV22", date(2022, 11, 15), hcpcs="77067"),
              line("JUN24", date(2024, 6, 1), hcpcs="77067"), line("HOSPICE", date(2025, 3, 1), rev="0651")]

    def outcome(results: pl.DataFrame) -> dict[str, str]:
        return {r["member_id"]: ("excluded" if r["exclusion_reason"] else "numerator" if r["in_numerator"] else "denominator")
                for r in results.iter_rows(named=True)}

    cy, rolling = _bcs(CY2024, members, spans, claims), _bcs(R2503, members, spans, claims)
    assert outcome(cy) == {"FEB25": "denominator", "NOV22": "numerator", "JUN24": "numerator", "TURNS75": "denominator",
                           "LEFT": "denominator", "HOSPICE": "denominator"}
    assert outcome(rolling) == {"FEB25": "numerator", "NOV22": "denominator", "JUN24": "numerator", "TURNS50": "denominator",
                                "HOSPICE": "excluded"}
    assert set(cy["period"]) == {"2024"} and set(rolling["period"]) == {"2024-04-01/2025-03-31"}


def test_member_attributes_age_at_the_rolling_period_end():
    from equity_pipeline.stratify import member_attributes

    members = pl.DataFrame({"member_id": ["A"], "sex": ["F"], "birth_date": [date(2007, 2, 15)], "county_fips": ["24031"]})
    # 17 on 2024-12-31 (band 0-17), 18 on 2025-03-31 (band 18-44)
    cy = member_attributes(members.lazy(), 2024)["age_band"].to_list()
    rolling = member_attributes(members.lazy(), R2503)["age_band"].to_list()
    assert cy != rolling
    assert cy == member_attributes(members.lazy(), CY2024)["age_band"].to_list()  # year and calendar period agree
    assert cy[0].startswith("0") and rolling[0].startswith("18")


RULES = textwrap.dedent("""
    TEST:
      versions:
        - version: "A"
          effective_from: 2024-01-01
          effective_to: 2024-12-31
          cohorts: [{name: one, states: [MD], first_year: 2024}, {name: two, states: [NY], first_year: 2025}]
          state_plan: {measures: [BCS]}
        - version: "B"
          effective_from: 2025-01-01
          cohorts: [{name: one, states: [MD], first_year: 2024}, {name: two, states: [NY], first_year: 2025}]
          state_plan: {measures: [BCS]}
""")


def test_equity_plan_rules_in_effect_on_the_period_end(tmp_path):
    from equity_pipeline.equity_plans.rules import resolve_rules

    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    settings = {"program": "TEST", "rules_file": str(path)}
    # CY2024 ends 2024-12-31 (version A, cohort two not yet in); the rolling period ends 2025-03-31 (B, NY in)
    a, b = resolve_rules(settings, CY2024), resolve_rules(settings, R2503)
    assert (a.version, a.states) == ("A", ("MD",))
    assert (b.version, b.states) == ("B", ("MD", "NY"))
    assert resolve_rules(settings, 2024).version == "A"


# ------------------------------------------------------------------------------------ partition keys
@pytest.mark.parametrize("key, begin, end", [
    ("2024", date(2024, 1, 1), date(2024, 12, 31)),
    ("2025-Q1", date(2024, 4, 1), date(2025, 3, 31)),
    ("2025-03", date(2024, 4, 1), date(2025, 3, 31)),
    ("2025-Q2", date(2024, 7, 1), date(2025, 6, 30)),
    ("2024-Q4", date(2024, 1, 1), date(2024, 12, 31)),
    ("2025-02", date(2024, 3, 1), date(2025, 2, 28)),
    ("2024-02", date(2023, 3, 1), date(2024, 2, 29)),
])
def test_partition_key_to_period(key, begin, end):
    from equity_pipeline import partitioning

    assert period_from_key(key) == MeasurementPeriod(begin, end)
    assert partitioning.check_period(key) == MeasurementPeriod(begin, end)
    granularity = "year" if len(key) == 4 else "quarter" if "Q" in key else "month"
    assert period_key(MeasurementPeriod(begin, end), granularity) == key


@pytest.mark.parametrize("key", ["2025-Q0", "2025-Q5", "2025-00", "2025-13", "2025-3", "25", "2025Q1", "2025-03-31"])
def test_bad_partition_keys(key):
    from equity_pipeline import partitioning

    with pytest.raises(ValueError):
        period_from_key(key)
    with pytest.raises(ConfigError, match="YYYY-Qn or YYYY-MM"):
        partitioning.check_period(key)


def test_partition_config_uses_the_key_period():
    from equity_pipeline import partitioning

    base = _config(measurement_year=2023)
    q = partitioning.period_config(base, "2025-Q1")
    assert q.period == R2503 and q.measurement_year == 2025
    assert partitioning.period_config(base, "2025-03").to_dict() == q.to_dict()
    # the quarter ending in December is the calendar year: the same config as the year key
    assert partitioning.period_config(base, "2024-Q4") == partitioning.period_config(base, "2024") == _config(measurement_year=2024)
    with pytest.raises(ConfigError, match="run date's year"):
        partitioning.period_config(base, "2027-Q1")


def test_period_partition_definitions():
    from assets.partitions import period_partitions

    assert quarter_keys(2024, date(2025, 4, 1)) == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1"]
    assert quarter_keys(2024, date(2025, 3, 31))[-1] == "2024-Q4"  # Q1 2025 has not ended on its last day
    quarters = period_partitions("quarter", 2024, date(2025, 4, 1)).get_partition_keys()
    assert quarters == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1"]
    months = period_partitions("month", 2020).get_partition_keys()
    assert months[:2] == ["2020-01", "2020-02"] and all(period_from_key(k).year >= 2020 for k in months)
    assert period_partitions("year", 2020).get_partition_keys()[0] == "2020"
    with pytest.raises(ValueError, match="EQUITY_PERIOD_GRANULARITY"):
        period_partitions("week", 2020)


# ------------------------------------------------------------------------------------ a rolling partition
@pytest.fixture(scope="module")
def small_input(tmp_path_factory):
    from equity_pipeline.generate import generate

    out = tmp_path_factory.mktemp("rolling_input")
    generate(members=120, seed=31, out=out, messy_share=0.03, measurement_year=2025)
    return out


def _whole(input_dir, out, config):
    """The unpartitioned steps (pipeline functions, no Dagster) up to public rates and completeness."""
    from equity_pipeline import pipeline
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.suites import TABLES

    layout = OutputLayout(out).prepare()
    for table in TABLES:  # members first
        pipeline.ingest(table, input_dir, layout, config)
    pipeline.build_events(layout, config)
    counts = pipeline.evaluate_measure("BCS", layout, config)
    for step in (pipeline.build_member_attributes, pipeline.build_stratified_counts, pipeline.build_public_rates,
                 pipeline.build_completeness):
        step(layout, config)
    return layout, counts


def test_month_key_partitions_roll_up_to_the_rolling_period_run(small_input, tmp_path):
    """Partitions of key "2025-03" (base config: calendar year 2023, which the key replaces) roll up to
    the public rates and completeness of one unpartitioned run with measurement_period end 2025-03-31;
    and that run is not the calendar year 2025 (so a key whose period were ignored would fail)."""
    from equity_pipeline import partitioning

    base = config_from_dict({"run_date": RUN, "measures": ["BCS"], "imputed_race": False, "measurement_year": 2023})
    states = partitioning.state_keys(small_input)
    for state in states:
        partitioning.run_partition(small_input, tmp_path / "parts", "2025-03", state, base)
    meta = partitioning.rollup_period(tmp_path / "parts", "2025-03", states, base)
    assert meta["tables_reconciled"] and meta["measures_reconciled"]
    rolled = partitioning.period_layout(tmp_path / "parts", "2025-03")

    rolling_cfg = config_from_dict({"run_date": RUN, "measures": ["BCS"], "imputed_race": False,
                                    "measurement_period": {"end": date(2025, 3, 31)}})
    whole, counts = _whole(small_input, tmp_path / "whole", rolling_cfg)
    rolled_counts = json.loads((rolled.root / "counts" / "BCS.json").read_text(encoding="utf-8"))
    for k in ("members_in", "not_eligible", "excluded", "denominator", "numerator", "period"):
        assert rolled_counts[k] == counts[k], k
    assert counts["period"] == "2024-04-01/2025-03-31"
    for name in ("rates", "completeness"):
        a, b = pl.read_parquet(rolled.public / f"{name}.parquet"), pl.read_parquet(whole.public / f"{name}.parquet")
        assert a.sort(a.columns, nulls_last=True).equals(b.sort(b.columns, nulls_last=True)), name
        assert set(a["period"]) == {"2024-04-01/2025-03-31"}
    # the calendar year 2025 on the same input is another population (members aged 50-74 on 2025-12-31,
    # mammograms to 2025-12-31): at least one count differs
    _, cy = _whole(small_input, tmp_path / "cy", _config(measurement_year=2025, imputed_race=False))
    assert any(cy[k] != counts[k] for k in ("members_in", "not_eligible", "excluded", "denominator", "numerator"))
