"""The measures stage's shared work (docs/performance.md, "Measures stage: shared frames"):

- ``utilization.shared_frames`` (inpatient stays, every ED visit, member months, payer in the period,
  paid amounts)
  and ``engine.enrollment_frames`` (members continuously enrolled under a fixed-date rule, payer on a
  fixed date), written once by ``pipeline.build_events`` to ``restricted/measure_base/`` and read by
  the measures: reasoned on hand-built members, and on a small generated dataset the measures give
  the same results with the files as without (each measure computing them itself, as before);
- ``engine.matching``'s source flags, ``matching_members`` and the one-part ``any`` shortcut of
  ``engine.satisfied``: the same frames as the list aggregations they replace;
- composites evaluated one at a time: the same events as all in one lazy plan.
"""
from __future__ import annotations

import random
import shutil
from datetime import date

import polars as pl
import pytest

from equity_pipeline.events import EVENT_SCHEMA
from equity_pipeline.measures import engine
from equity_pipeline.measures.spec import AnyOf, EventCriterion, load_specs
from equity_pipeline.measures.utilization import SHARED_KEYS, shared_frames
from equity_pipeline.periods import MeasurementPeriod

MY = MeasurementPeriod.calendar_year(2025)

ENROLLMENT_SCHEMA = {"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                     "enrollment_start": pl.Date, "enrollment_end": pl.Date}
CLAIM_SCHEMA = {"member_id": pl.String, "claim_id": pl.String, "claim_line": pl.Int64, "claim_type": pl.String, "bill_type": pl.String,
                "claim_from_date": pl.Date, "claim_thru_date": pl.Date, "admit_date": pl.Date, "discharge_date": pl.Date,
                "diagnosis_code_1": pl.String, "discharge_status": pl.String, "facility_ccn": pl.String, "payer": pl.String,
                "billing_npi": pl.String, "paid_amount": pl.Float64, "claim_status": pl.String,
                "revenue_code": pl.String, "place_of_service": pl.String, "hcpcs_code": pl.String}


def _claim(mid, cid, d, paid, *, npi="N2", status="paid", inst=None, ed=None):
    """``ed``: (how the line is an ED line: revenue | pos | cpt, facility)."""
    row = {"member_id": mid, "claim_id": cid, "claim_line": 1, "claim_type": "professional", "bill_type": None, "claim_from_date": d,
           "claim_thru_date": d, "admit_date": None, "discharge_date": None, "diagnosis_code_1": "I10", "discharge_status": None,
           "facility_ccn": None, "payer": "commercial", "billing_npi": npi, "paid_amount": paid, "claim_status": status,
           "revenue_code": None, "place_of_service": "11", "hcpcs_code": "99213"}
    if ed:
        how, ccn = ed
        row.update(facility_ccn=ccn, **{"revenue": {"revenue_code": "0450"}, "pos": {"place_of_service": "23"},
                                        "cpt": {"hcpcs_code": "99284"}}[how])
    if inst:
        admit, discharge = inst
        row.update(claim_type="institutional", bill_type="111", admit_date=admit, discharge_date=discharge, claim_thru_date=discharge,
                   discharge_status="01", facility_ccn="220071")
    return row


def test_shared_frames_hand_built():
    spans = pl.DataFrame([
        # m1: all year, commercial
        ("m1", "commercial", "x", "none", date(2020, 1, 1), None),
        # m2: 10 March - 14 June: covered on the 15th of March, April and May only
        ("m2", "medicaid", "x", "none", date(2025, 3, 10), date(2025, 6, 14)),
        # m3: commercial all year and a full-dual Medicaid span to June: 12 months counted once; the
        # latest-ending span is the commercial one (open end), dual status full from the Medicaid span
        ("m3", "commercial", "x", "none", date(2024, 1, 1), None),
        ("m3", "medicaid", "x", "full", date(2025, 1, 1), date(2025, 6, 30)),
    ], schema=ENROLLMENT_SCHEMA, orient="row")
    claims = pl.DataFrame([
        _claim("m1", "c1", date(2025, 2, 1), 100.0, npi="P1"),     # primary-care provider
        _claim("m1", "c2", date(2025, 3, 1), 50.5),
        _claim("m1", "c3", date(2025, 4, 1), 70.0, status="denied"),  # denied: 0 paid
        _claim("m1", "c4", date(2024, 12, 31), 999.0),             # before the period
        # two inpatient claims of m2, the second admitted the day after the first discharge: one stay
        _claim("m2", "s1", date(2025, 4, 1), 1000.0, inst=(date(2025, 4, 1), date(2025, 4, 3))),
        _claim("m2", "s2", date(2025, 4, 4), 500.0, inst=(date(2025, 4, 4), date(2025, 4, 6))),
        # ED lines: m1 on 1 June at two facilities (one visit, the lower CCN's) and on 2 June (no facility);
        # m2 the day before the stay's admission (a visit; it resulted in the admission)
        _claim("m1", "e1", date(2025, 6, 1), 10.0, ed=("revenue", "220200")),
        _claim("m1", "e2", date(2025, 6, 1), 10.0, ed=("pos", "220100")),
        _claim("m1", "e3", date(2025, 6, 2), 10.0, ed=("cpt", None)),
        _claim("m2", "e4", date(2025, 3, 31), 10.0, ed=("revenue", "220071")),
    ], schema=CLAIM_SCHEMA, orient="row")
    fills = pl.DataFrame({"member_id": ["m1", "m3"], "fill_date": [date(2025, 5, 1), date(2026, 1, 2)], "paid_amount": [20.25, 5.0],
                          "claim_status": ["paid", "paid"]})
    providers = pl.DataFrame({"provider_id": ["P1", "N2"], "is_primary_care": [True, False]})
    got = {k: v.collect().sort(SHARED_KEYS[k]) for k, v in shared_frames(MY, spans.lazy(), claims.lazy(), fills.lazy(), providers.lazy()).items()}

    assert got["member_months"].rows() == [("m1", 12), ("m2", 3), ("m3", 12)]
    assert got["payers"].select("member_id", "payer", "dual_status").rows() == [("m1", "commercial", "none"), ("m2", "medicaid", "none"),
                                                                                   ("m3", "commercial", "full")]
    # m1: 100 + 50.5 + 0 (denied) + 30 (ED lines) + 20.25 (fill) = 200.75, of which 100 primary care; m2: the two
    # stays and the ED line; m3's fill is in 2026
    assert got["paid"].rows() == [("m1", 200.75, 100.0), ("m2", 1510.0, 0.0)]
    stays = got["inpatient_stays"]
    assert stays.select("member_id", "admit_date", "discharge_date").rows() == [("m2", date(2025, 4, 1), date(2025, 4, 6))]
    # every ED visit, admitted or not: one per member and day, at the day's lowest CCN
    assert got["ed_visits"].rows() == [("m1", date(2025, 6, 1), "220100"), ("m1", date(2025, 6, 2), None),
                                       ("m2", date(2025, 3, 31), "220071")]


# ---------------------------------------------------------------- a small generated run
MEASURES = ["ED_VISITS", "PQI90", "PCR", "TCOC_PMPM", "PRIMARY_CARE_SHARE", "IET", "CBP", "WCV", "W30"]


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory):
    from equity_pipeline import pipeline
    from equity_pipeline.config import config_from_dict
    from equity_pipeline.generate import generate
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.suites import TABLES

    root = tmp_path_factory.mktemp("measure_base")
    generate(2_000, 11, root / "input")
    config = config_from_dict({"measures": MEASURES}, run_date=date(2026, 11, 22))
    layout = OutputLayout(root / "out").prepare()
    for table in TABLES:
        pipeline.ingest(table, root / "input", layout, config)
    pipeline.build_events(layout, config)
    return layout, config


def _results(layout, config) -> dict[str, tuple[pl.DataFrame, dict]]:
    from equity_pipeline import pipeline

    out = {}
    for m in MEASURES:
        counts = pipeline.evaluate_measure(m, layout, config)
        out[m] = (pl.read_parquet(layout.member_results(m)), counts)
    return out


def test_measure_base_files_change_no_result(generated_run):
    from equity_pipeline import pipeline

    layout, config = generated_run
    folder = layout.restricted / "measure_base"
    files = sorted(p.name for p in folder.glob("*.parquet"))
    # CBP and WCV share one fixed-date enrollment rule and the payer on December 31; IET's and W30's
    # enrollment windows and payer dates are per member (index episode, birthday): no frame
    fixed = ["enrolled_2025-01-01_2025-12-31_gaps1_max45_on2025-12-31", "payer_on_2025-12-31"]
    # the member keys, the enrollment spans keyed by them (proportion measures), and the per-member
    # frames of the utilisation and cost measures with member keys for member ids
    keyed = ["members_keyed", "enrollment_keyed", "member_months_keyed", "paid_keyed", "payers_keyed"]
    inputs = pipeline._measure_base_inputs(layout)
    assert len(inputs) == 12
    assert files == sorted(f"{n}_2025-01-01_2025-12-31_{inputs}.parquet"
                           for n in ("inpatient_stays", "ed_visits", *fixed, *keyed))
    with_files = _results(layout, config)
    # the files hold the frames the measures would compute
    for name, (path, frame, key) in pipeline._measure_base(layout, config).items():
        assert pl.read_parquet(path).equals(frame.collect().sort(key)), name
    shutil.rmtree(folder)
    try:
        without = _results(layout, config)   # each measure computes the frames itself (the code path before the files)
    finally:
        pipeline.build_events(layout, config)
    for m in MEASURES:
        assert with_files[m][0].equals(without[m][0]), m
        assert with_files[m][1] == without[m][1], m
    assert with_files["ED_VISITS"][1]["denominator"] > 1000 and with_files["PCR"][1]["denominator"] > 10   # not vacuous
    assert with_files["CBP"][1]["not_eligible"]["not_continuously_enrolled"] > 0


def test_enrollment_frames_hand_built():
    spans = pl.DataFrame([
        ("m1", "commercial", "x", "none", date(2020, 1, 1), None),                  # enrolled all year
        ("m2", "medicaid", "x", "none", date(2025, 1, 1), date(2025, 5, 31)),       # a 214-day gap to the year end
        ("m2", "medicaid", "x", "none", date(2026, 1, 1), None),
        ("m3", "medicare", "x", "none", date(2025, 1, 1), date(2025, 3, 1)),        # one 31-day gap, then covered
        ("m3", "medicaid", "x", "full", date(2025, 4, 2), None),
    ], schema=ENROLLMENT_SCHEMA, orient="row").lazy()
    frames = engine.enrollment_frames(load_specs()["CBP"], MY, spans)
    assert sorted(frames) == ["enrolled_2025-01-01_2025-12-31_gaps1_max45_on2025-12-31", "payer_on_2025-12-31"]
    assert sorted(frames["enrolled_2025-01-01_2025-12-31_gaps1_max45_on2025-12-31"].collect()["member_id"]) == ["m1", "m3"]
    payers = frames["payer_on_2025-12-31"].collect().sort("member_id")
    # on December 31: m1 commercial, m3 medicaid (full dual); m2 is not covered that day
    assert payers.select("member_id", "payer", "dual_status").rows() == [("m1", "commercial", "none"), ("m3", "medicaid", "full")]
    assert engine.enrollment_frames(load_specs()["IET"], MY, spans) == {}   # per-member windows and payer date


def _engine_on_member_ids(layout, config, measure_id: str) -> tuple[pl.DataFrame, dict]:
    """engine.evaluate of a proportion measure on the tables' member id strings (no member keys, no
    shared frames): the reference for pipeline.evaluate_measure, which passes integer member keys."""
    from equity_pipeline import pipeline

    results, counts = engine.evaluate(load_specs()[measure_id], config.period, pl.scan_parquet(layout.table("members")),
                                      pl.scan_parquet(layout.table("enrollment")), pipeline.read_events(layout))
    return results, counts.__dict__


def _keyed_measure(layout, config, measure_id: str) -> tuple[pl.DataFrame, dict]:
    from equity_pipeline import pipeline

    out = pipeline.evaluate_measure(measure_id, layout, config)
    results = pl.read_parquet(layout.member_results(measure_id))
    # each row's member_key is its member id's position among this layout's members (sorted ids)
    ids = pl.read_parquet(layout.table("members"))["member_id"].sort()
    assert ids.gather(results["member_key"]).equals(results["member_id"], check_names=False), measure_id
    return results.drop("member_key"), {k: out[k] for k in engine.MeasureCounts.__dataclass_fields__}


def test_member_keys_give_the_results_of_the_member_ids(generated_run):
    # the proportion measures run on integer member keys (pipeline._evaluate_keyed): the same rows, in
    # the same order, and the same counts as the engine on the member id strings
    layout, config = generated_run
    proportion = [m for m in MEASURES if load_specs()[m].kind == "proportion"]
    assert len(proportion) >= 3
    for m in proportion:
        got, want = _keyed_measure(layout, config, m), _engine_on_member_ids(layout, config, m)
        assert got[0].equals(want[0]), m
        assert got[1] == want[1], m
        assert got[1]["denominator"] > 20, m   # not vacuous


def test_member_keys_of_other_members_are_not_read(generated_run, tmp_path):
    # a new ingest of the members (here: the first member by id removed, so every other key moves)
    # without the events step: the events' member keys are of the old members and are not read (the
    # footer names the input files they were made from); the measures key the events themselves
    from equity_pipeline import pipeline
    from equity_pipeline.layout import OutputLayout

    layout, config = generated_run
    other = OutputLayout(tmp_path / "out")
    shutil.copytree(layout.root, other.root)
    members = pl.read_parquet(other.table("members"))
    members.filter(pl.col("member_id") != members["member_id"].min()).write_parquet(other.table("members"))
    assert pipeline._measure_base_inputs(other) != pipeline._measure_base_inputs(layout)
    for m in ("CBP", "IET"):
        got, want = _keyed_measure(other, config, m), _engine_on_member_ids(other, config, m)
        assert got[0].equals(want[0]), m
        assert got[1] == want[1], m
    # a utilisation and a readmission measure key their results by the new members too (the keyed
    # members build_events wrote are of the old ones, and are not read)
    for m in ("ED_VISITS", "PCR"):
        _keyed_measure(other, config, m)
    # and events written with member ids (an older events file) are keyed by the measures too
    pipeline.read_events(layout).collect().write_parquet(other.events)
    got, want = _keyed_measure(other, config, "CBP"), _engine_on_member_ids(other, config, "CBP")
    assert got[0].equals(want[0]) and got[1] == want[1]


def test_events_are_not_read_with_the_member_ids_of_another_run(generated_run, tmp_path):
    # the events' member keys are positions in restricted/event_members.parquet; a file of other ids
    # (here: written by hand without the digest, or missing) is refused, never used to name members
    from equity_pipeline import pipeline
    from equity_pipeline.layout import OutputLayout

    layout, _ = generated_run
    other = OutputLayout(tmp_path / "out")
    shutil.copytree(layout.root, other.root)
    assert pipeline.read_events(other).collect().equals(pipeline.read_events(layout).collect())
    pl.read_parquet(layout.event_members).reverse().write_parquet(other.event_members)
    with pytest.raises(RuntimeError, match="event_members"):
        pipeline.read_events(other)
    other.event_members.unlink()
    with pytest.raises(RuntimeError, match="event_members"):
        pipeline.read_events(other)


def test_measure_base_of_another_period_is_removed_and_not_read(generated_run, tmp_path):
    from equity_pipeline import pipeline
    from equity_pipeline.config import config_from_dict
    from equity_pipeline.layout import OutputLayout

    layout, config = generated_run
    other = OutputLayout(tmp_path / "out")
    shutil.copytree(layout.root, other.root)
    earlier = config_from_dict({"measures": ["ED_VISITS", "CBP"], "measurement_year": 2024}, run_date=date(2026, 11, 22))
    pipeline.build_events(other, earlier)
    # the 2025 frames are gone; ED_VISITS (event rate) needs stays, ED visits, member months and payers, not paid amounts
    inputs = pipeline._measure_base_inputs(other)
    assert sorted(p.name for p in (other.restricted / "measure_base").glob("*.parquet")) == sorted(
        f"{n}_2024-01-01_2024-12-31_{inputs}.parquet" for n in ("inpatient_stays", "ed_visits", "member_months_keyed", "payers_keyed",
                                                                "enrolled_2024-01-01_2024-12-31_gaps1_max45_on2024-12-31",
                                                                "payer_on_2024-12-31", "members_keyed", "enrollment_keyed"))
    got = {m: pipeline.evaluate_measure(m, other, earlier) for m in ("ED_VISITS", "CBP")}
    shutil.rmtree(other.restricted / "measure_base")
    assert {m: pipeline.evaluate_measure(m, other, earlier) for m in ("ED_VISITS", "CBP")} == got


def test_measure_base_is_not_read_after_its_inputs_changed(generated_run, tmp_path):
    from equity_pipeline import pipeline
    from equity_pipeline.layout import OutputLayout

    layout, config = generated_run
    other = OutputLayout(tmp_path / "out")
    shutil.copytree(layout.root, other.root)   # copies keep sizes and modification times: the frames are read
    assert pipeline._measure_base_inputs(other) == pipeline._measure_base_inputs(layout)
    before = {m: pipeline.evaluate_measure(m, other, config) for m in ("CBP", "ED_VISITS")}
    # a new ingest of the enrollment (here: every span ends on June 30, 2025) without the events step
    spans = pl.read_parquet(other.table("enrollment")).with_columns(enrollment_end=pl.lit(date(2025, 6, 30)))
    spans.write_parquet(other.table("enrollment"))
    assert pipeline._measure_base_inputs(other) != pipeline._measure_base_inputs(layout)
    after = {m: pipeline.evaluate_measure(m, other, config) for m in ("CBP", "ED_VISITS")}
    # nobody is enrolled on December 31 now, and member months stop in June: the old frames were not read
    assert after["CBP"]["denominator"] == 0 < before["CBP"]["denominator"]
    assert after["CBP"]["not_eligible"]["not_continuously_enrolled"] > before["CBP"]["not_eligible"]["not_continuously_enrolled"]
    shutil.rmtree(other.restricted / "measure_base")
    assert {m: pipeline.evaluate_measure(m, other, config) for m in ("CBP", "ED_VISITS")} == after


def _principal_only(specs, config) -> set[str]:
    """The configured measures' value sets only ever tested against a stay's principal diagnosis
    (used by a measure, read as events by none)."""
    return (set().union(*(specs[m].value_set_names for m in config.measures))
            - set().union(*(specs[m].event_value_set_names for m in config.measures)))


def test_events_file_holds_the_reference_rows_in_value_set_order(generated_run):
    # restricted/events.parquet: the rows of the reference extraction (events.claim_events on the final
    # lines, observations, fills, screenings), each value set's rows together, value sets in name order
    from equity_pipeline import pipeline
    from equity_pipeline.events import claim_events, observation_events, pharmacy_events, value_set_frame
    from equity_pipeline.standards.sdoh import screening_events

    layout, config = generated_run
    specs = load_specs()
    codes = value_set_frame(set().union(*(specs[m].event_value_set_names for m in config.measures)))
    want = pl.concat([
        claim_events(pipeline.final_medical_claims(layout), codes),
        observation_events(pl.scan_parquet(layout.table("clinical_observations")), codes),
        pharmacy_events(pipeline.final_pharmacy_claims(layout), codes),
        screening_events(pl.scan_parquet(layout.table("sdoh_screenings"))),
    ]).collect()
    # the file names each event's member by its key, the position of its member id among the members'
    # sorted ids (restricted/event_members.parquet); read_events takes the ids back
    stored = pl.read_parquet(layout.events)
    assert "member_id" not in stored.columns and stored["member_key"].dtype == pl.UInt32
    assert pl.read_parquet(layout.event_members)["member_id"].equals(pl.read_parquet(layout.table("members"))["member_id"].sort())
    got = pipeline.read_events(layout).collect()
    assert got.drop("member_id").equals(stored.drop("member_key"))
    assert got.schema == want.schema and got.height == want.height > 10_000
    assert got.sort(got.columns).equals(want.sort(want.columns))
    assert got["value_set"].is_sorted()
    assert got["value_set"].n_unique() > 10
    # value sets only tested against a stay's principal diagnosis (PQI admissions, PCR's planned
    # readmissions and exclusions) are not extracted as events
    principal_only = _principal_only(specs, config)
    assert {"pqi07_hypertension", "planned_readmission_dx"} <= principal_only
    assert not principal_only & set(got["value_set"].unique())


def test_principal_diagnosis_value_sets_read_from_the_stays_not_the_events(generated_run, tmp_path):
    # the value sets only tested against a stay's principal diagnosis are not in the events table. The
    # same run with events of those sets added on every day of every inpatient stay and on every day
    # of the measurement year of every member with a stay (as if every stay had them in every claim
    # code): every measure's member results and counts are the same, so no measure reads those value
    # sets from the events table (if one did, every stay would be a PQI admission or a planned one)
    from equity_pipeline import pipeline
    from equity_pipeline.encounters import inpatient_stays
    from equity_pipeline.events import EVENT_SCHEMA
    from equity_pipeline.layout import OutputLayout

    layout, config = generated_run
    specs = load_specs()
    principal_only = sorted(_principal_only(specs, config))
    assert {"pqi07_hypertension", "planned_readmission_dx"} <= set(principal_only)
    stays = inpatient_stays(pipeline.final_medical_claims(layout)).collect()
    assert stays.height > 50
    year = pl.date_range(config.period.begin, config.period.end, "1d", eager=True)
    days = pl.concat([
        stays.select("member_id", event_date=pl.date_ranges("admit_date", "discharge_date")).explode("event_date"),
        stays.select("member_id").unique().join(year.alias("event_date").to_frame(), how="cross"),
    ]).unique()
    extra = days.join(pl.DataFrame({"value_set": principal_only}), how="cross").select(
        "member_id", "event_date", "value_set", code_system=pl.lit("ICD10CM"), code=pl.lit("X"), source=pl.lit("claims"),
        value_numeric=pl.lit(None, dtype=pl.Float64)).cast(EVENT_SCHEMA)
    root = tmp_path / "out"
    shutil.copytree(layout.root, root)   # copy2: modification times kept (the shared frames stay valid)
    other = OutputLayout(root)
    # (written without the member keys: the measures key the events themselves)
    pl.concat([pipeline.read_events(layout).collect(), extra]).write_parquet(other.events)
    before, after = _results(layout, config), _results(other, config)
    for m in MEASURES:
        assert after[m][0].equals(before[m][0]), m
        assert after[m][1] == before[m][1], m


def test_composites_one_at_a_time_equal_one_plan(generated_run):
    from equity_pipeline import pipeline

    layout, _ = generated_run
    spec = load_specs()["IET"]
    events = pipeline.read_events(layout).filter(pl.col("value_set").is_in(sorted(spec.value_set_names))).collect().lazy()
    at_once = engine.with_composites(events, spec.composites).collect()
    stepwise = events
    for comp in spec.composites:
        stepwise = engine.with_composites(stepwise, (comp,)).collect().lazy()
    stepwise = stepwise.collect()
    assert stepwise.sort(stepwise.columns).equals(at_once.sort(at_once.columns))
    assert stepwise.filter(pl.col("value_set") == "sud_treatment").height > 0


# ---------------------------------------------------------------- matching: source flags and shortcuts
def _reference_matching(events: pl.LazyFrame, criterion: EventCriterion, dates: pl.LazyFrame) -> pl.DataFrame:
    """engine.matching as it was: lists of sources per member."""
    per_member = engine._window(events, criterion, MY, dates).group_by("member_id").agg(
        evidence_date=pl.col("event_date").max(), source=pl.col("source").unique().sort().str.join("+"),
        n_dates=pl.col("event_date").n_unique(), n_sets=pl.col("value_set").n_unique(),
    )
    keep = pl.col("n_dates") >= criterion.min_count
    if criterion.all_of:
        keep = keep & (pl.col("n_sets") >= len(set(criterion.all_of)))
    return per_member.filter(keep).select("member_id", "evidence_date", "source").collect()


def _random_events(seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    sources = ["claims", "clinical", "pharmacy", "claims+clinical", "sdoh", None]
    rows = [(f"m{rng.randrange(60)}", date(2025, 1, 1).fromordinal(date(2025, 1, 1).toordinal() + rng.randrange(-40, 400)),
             rng.choice(["a", "b", "c"]), None, None, rng.choice(sources), None) for _ in range(1500)]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("criterion", [
    EventCriterion(any_of=("a",), start="period_begin", end="period_end"),
    EventCriterion(any_of=("a", "b"), start="period_begin", end="period_end", min_count=3),
    EventCriterion(all_of=("a", "c"), start="period_begin", end="period_end"),
])
def test_matching_equals_the_list_aggregation(seed, criterion):
    events = _random_events(seed).lazy()
    dates = events.select("member_id").unique().with_columns(birth_date=pl.lit(date(1980, 1, 1)))
    want = _reference_matching(events, criterion, dates).sort("member_id")
    got = engine.matching(events, criterion, MY, dates).collect().sort("member_id")
    assert got.equals(want)
    assert want.height > 5 and want["source"].str.contains(r"\+").any()   # several members, joined sources
    members = engine.matching_members(events, criterion, MY, dates).collect().sort("member_id")
    assert members.equals(want.select("member_id"))
    # a one-part "any": the shortcut gives what the general aggregation of its one part gives
    one = engine.satisfied(events, AnyOf((criterion,)), MY, dates).collect().sort("member_id")
    general = engine._any_of([engine.matching(events, criterion, MY, dates)]).collect().sort("member_id")
    assert one.equals(general.select(one.columns))


def test_sources_joined_without_sources_and_with_only_null_sources():
    events = pl.DataFrame([("m1", date(2025, 3, 1), "a", None, None, None, None)], schema=EVENT_SCHEMA, orient="row").lazy()
    dates = pl.LazyFrame({"member_id": ["m1"], "birth_date": [date(1980, 1, 1)]})
    criterion = EventCriterion(any_of=("a",), start="period_begin", end="period_end")
    got = engine.matching(events, criterion, MY, dates).collect()
    assert got.equals(_reference_matching(events, criterion, dates))
    assert got["source"].to_list() == [""]
