"""The pipeline's steps as plain functions over an :class:`OutputLayout`.

Each Dagster asset in ``assets/`` calls exactly one of these. They read their inputs from the
layout's files and write their outputs there atomically, so any step can be re-run alone.
Return values are small dicts of counts (safe for logs and Dagster metadata: no values, no ids).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from equity_pipeline import __version__
from equity_pipeline.config import ProgramConfig
from equity_pipeline.events import observation_events, pharmacy_events, value_set_frame
from equity_pipeline.io import ROW, sink_parquet_atomic, write_json_atomic, write_parquet_atomic
from equity_pipeline.layout import OutputLayout
from equity_pipeline.measures.engine import evaluate
from equity_pipeline.measures.spec import load_specs
from equity_pipeline.measures.utilization import evaluate_utilization
from equity_pipeline.publish import publish_checked, remove_withheld, withheld_metadata, withheld_outputs
from equity_pipeline.standards.geography import valid_county_fips
from equity_pipeline.standards.sdoh import screening_events
from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation.ingest import TableResult, ingest_table
from equity_pipeline.validation.sampling import Sampling


def suite_parameters(config: ProgramConfig) -> dict[str, Any]:
    return {"run_date": config.run_date.isoformat(), "valid_county_fips": valid_county_fips(config.period.year)}


def convert_input(source: str, input_dir: Path, layout: OutputLayout) -> dict[str, Any]:
    """Map ``input_dir`` from its source format to canonical tables (no-op for canonical input);
    the per-source-file reconciliation goes to validation/source_reconciliation.json."""
    from equity_pipeline.sources import convert

    layout.prepare()
    return convert(source, input_dir, layout.root)


def ingest(table: str, input_dir: Path, layout: OutputLayout, config: ProgramConfig) -> dict[str, Any]:
    """Validate one input table; members must be ingested before the others (orphan check)."""
    layout.prepare()
    known = pl.scan_parquet(layout.table("members")) if table != "members" else None
    # the GX check's random sample rows are written in the same pass (docs/validation.md "GX at scale")
    result = ingest_table(table, input_dir, layout.restricted, parameters=suite_parameters(config), known_members=known,
                          gx_sampling=Sampling.from_env())
    write_json_atomic(result.to_dict(), layout.table_result(table))
    return result.to_dict()


def build_events(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """Adjudicate medical claims, extract the coded events every configured measure needs and write the
    frames several measures share (:func:`_measure_base`)."""
    from equity_pipeline.measures.extract import write_adjudication

    specs = load_specs()
    # memory bounded (docs/performance.md): the counts of claims.adjudication_counts, and the dropped
    # lines from which final_medical_claims / final_pharmacy_claims give the lines of claims.final_claims
    counts = write_adjudication(pl.scan_parquet(layout.table("medical_claims")), layout.claim_adjudication)
    write_adjudication(pl.scan_parquet(layout.table("pharmacy_claims")), layout.pharmacy_adjudication)
    (layout.restricted / "claims" / "medical_claims_final.parquet").unlink(missing_ok=True)  # written by older versions
    # the value sets whose events a measure reads (not those only tested against a stay's principal diagnosis)
    names = set().union(*(specs[m].event_value_set_names for m in config.measures))
    # the events name their member by an integer key (the measures join and group integers, not member
    # id strings), the position of its id among the members' sorted ids, written beside them
    # (layout.event_members); the two files' footers carry a digest of those ids, so that a reader knows
    # the keys are positions among them
    keyed = keyed_members(pl.scan_parquet(layout.table("members"))).collect()
    token = _ids_digest(keyed["member_id"])
    events = _coded_events(layout, names, keyed["member_id"]).drop("member_id")
    sink_parquet_atomic({layout.events: events, layout.event_members: keyed.lazy().select("member_id")}, compression_level=1,
                        metadata={layout.events: {EVENTS_VALUE_SETS: json.dumps(sorted(names)), EVENTS_MEMBER_KEYS: token},
                                  layout.event_members: {EVENTS_MEMBER_KEYS: token}})
    write_json_atomic(counts, layout.adjudication)
    _write_measure_base(layout, config, keyed)
    return {**counts, "events": pl.scan_parquet(layout.events).select(pl.len()).collect().item()}


def _ids_digest(ids: pl.Series) -> str:
    """SHA-256 of member ids in their order (the token of the events' member keys)."""
    import hashlib

    return hashlib.sha256("\n".join(ids.cast(pl.String).fill_null("\x00").to_list()).encode()).hexdigest()


def keyed_members(members: pl.LazyFrame) -> pl.LazyFrame:
    """member_key, member_id, sex, birth_date, death_date of ``members`` in member id order, the member
    key (UInt32) being the row number: what the proportion measures read (:func:`evaluate_measure`)."""
    return members.select("member_id", "sex", "birth_date", "death_date").sort("member_id").with_row_index("member_key")


def keyed_by_member(frame: pl.LazyFrame, member_ids: pl.Series) -> pl.LazyFrame:
    """``frame`` (enrollment spans, events) with ``member_id`` replaced by its member key (the position
    among ``member_ids``, distinct and sorted, as :func:`keyed_members`; null for an id not among them)."""
    from equity_pipeline.measures.extract import with_member_key

    return with_member_key(frame, member_ids).with_columns(member_id=pl.col("member_key")).drop("member_key")


def _measure_base(layout: OutputLayout, config: ProgramConfig, measures: list[str] | None = None, *,
                  frames: bool = True, members: pl.DataFrame | None = None) -> dict[str, tuple[Path, pl.LazyFrame | None, list[str]]]:
    """The frames several measures share, that build_events writes: per frame name, its path
    ``restricted/measure_base/<name>_<period begin>_<period end>_<inputs>.parquet`` (the period and a
    key of the input files in the name, so that a frame is never read for another period or after its
    inputs changed: :func:`_measure_base_inputs`), the lazy frame and its sort key. The frames of
    ``utilization.shared_frames`` (inpatient stays, every ED visit, member months, payer in the period,
    paid amounts) that the configured utilisation, cost and readmission measures use, the per-member
    ones (``utilization.KEYED_SHARED``) as ``<name>_keyed`` with member keys for member ids, and the proportion measures'
    ``engine.enrollment_frames`` (enrolled members per fixed-date rule, payer on a fixed date) with
    the member keys of :func:`keyed_members` for member ids, and those keys (``members_keyed``) and
    the enrollment spans keyed by them (``enrollment_keyed``); ``measures``: only those of these
    measures (default: the configured ones); ``frames=False``: the paths and keys only (the frames
    are None; nothing is read); ``members``: :func:`keyed_members` of the members table, when already
    collected."""
    from equity_pipeline.measures.engine import enrollment_frames
    from equity_pipeline.measures.utilization import KEYED_SHARED, SHARED, SHARED_KEYS, shared_frames

    specs = load_specs()
    wanted = [specs[m] for m in (config.measures if measures is None else measures)]
    kinds = {s.kind for s in wanted}
    enrollment = pl.scan_parquet(layout.table("enrollment"))
    out: dict[str, tuple[pl.LazyFrame | None, list[str]]] = {}
    names = [name for name, users in SHARED.items() if kinds & set(users)]
    # the member keys: the proportion measures' and those of the keyed utilisation and cost frames
    with_keys = "proportion" in kinds or bool(set(names) & set(KEYED_SHARED))
    keyed = None
    if frames and with_keys:
        keyed = members if members is not None else keyed_members(pl.scan_parquet(layout.table("members"))).collect()
    if names:
        made = shared_frames(config.period, enrollment, final_medical_claims(layout), final_pharmacy_claims(layout),
                             pl.scan_parquet(layout.table("providers"))) if frames else {}
        for name in names:
            if name in KEYED_SHARED:   # member keys for member ids (the utilisation and cost measures' joins)
                out[f"{name}_keyed"] = (keyed_by_member(made[name], keyed["member_id"]) if frames else None, SHARED_KEYS[name])
            else:
                out[name] = (made.get(name), SHARED_KEYS[name])
    if with_keys:
        out["members_keyed"] = (None if keyed is None else keyed.lazy(), ["member_key"])
    if "proportion" in kinds:
        if frames:
            # collected once: the spans of every enrollment frame below
            enrollment = keyed_by_member(enrollment, keyed["member_id"]).collect().lazy()
        out["enrollment_keyed"] = (enrollment if frames else None, [ROW])
    for spec in wanted:
        if spec.kind == "proportion":
            out |= {name: (frame if frames else None, ["member_id"])
                    for name, frame in enrollment_frames(spec, config.period, enrollment).items()}
    folder = layout.restricted / "measure_base"
    inputs = _measure_base_inputs(layout)
    if inputs is None:
        return {}
    tag = f"{config.period.begin.isoformat()}_{config.period.end.isoformat()}_{inputs}"
    return {name: (folder / f"{name}_{tag}.parquet", frame, key) for name, (frame, key) in out.items()}


def _measure_base_inputs(layout: OutputLayout) -> str | None:
    """A short key of the files the shared frames are computed from (used tables and adjudication
    files: name, size, modification time), part of their file names: a frame is read only while the
    files it came from are unchanged (a measure step re-run after a new ingest without the events
    step computes its frames itself). None when one of them is missing."""
    import hashlib

    paths = [layout.table(t) for t in ("medical_claims", "pharmacy_claims", "enrollment", "providers", "members")]
    paths += [layout.claim_adjudication, layout.pharmacy_adjudication]
    try:
        facts = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    except FileNotFoundError:
        return None
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:12]


def _write_measure_base(layout: OutputLayout, config: ProgramConfig, members: pl.DataFrame | None = None) -> None:
    """The frames several measures share (:func:`_measure_base`), computed once per run instead of
    once per measure (docs/performance.md); frames of other periods or configurations are removed.
    ``members``: :func:`keyed_members`, when already collected."""
    base = _measure_base(layout, config, members=members)
    folder = layout.restricted / "measure_base"
    keep = {path for path, _, _ in base.values()}
    for old in folder.glob("*.parquet") if folder.is_dir() else []:
        if old not in keep:
            old.unlink(missing_ok=True)
    names = list(base)
    for name, frame in zip(names, pl.collect_all([base[n][1] for n in names])):
        write_parquet_atomic(frame.sort(base[name][2]), base[name][0])


def final_medical_claims(layout: OutputLayout) -> pl.LazyFrame:
    """Final, non-voided medical claim lines (``claims.final_claims``) in input order: the used lines
    without those in layout.claim_adjudication (written by build_events); select the columns you need."""
    from equity_pipeline.measures.extract import final_from

    return final_from(pl.scan_parquet(layout.table("medical_claims")), pl.scan_parquet(layout.claim_adjudication))


def final_pharmacy_claims(layout: OutputLayout) -> pl.LazyFrame:
    """Final, non-voided pharmacy claims, as :func:`final_medical_claims` (layout.pharmacy_adjudication)."""
    from equity_pipeline.measures.extract import final_from

    return final_from(pl.scan_parquet(layout.table("pharmacy_claims")), pl.scan_parquet(layout.pharmacy_adjudication))


def _coded_events(layout: OutputLayout, names: set[str], member_keys: pl.Series, *, screenings: bool = True) -> pl.LazyFrame:
    """Events of value sets ``names`` from final medical claims, observations and final pharmacy claims
    (plus SDOH screenings), grouped by value set (``extract.events_by_value_set``: a measure reading
    its value sets from the written file skips the other row groups); needs layout.claim_adjudication
    and layout.pharmacy_adjudication. The events are computed here (streaming, collected); the frame
    is lazy over them. ``member_keys``: member ids (distinct, sorted); the events also have
    ``member_key``, the position of their member id among them (``extract.with_member_key``)."""
    from equity_pipeline.measures.extract import (  # same rows as events.claim_events
        claim_event_parts, events_by_value_set, with_member_key,
    )

    codes = value_set_frame(names)
    claims = claim_event_parts(final_medical_claims(layout), codes, vocabulary_from=pl.scan_parquet(layout.table("medical_claims")),
                               member_keys=member_keys)
    others = [observation_events(pl.scan_parquet(layout.table("clinical_observations")), codes),
              pharmacy_events(final_pharmacy_claims(layout), codes)]
    if screenings:
        others.append(screening_events(pl.scan_parquet(layout.table("sdoh_screenings"))))
    others = [with_member_key(frame, member_keys) for frame in others]
    return events_by_value_set(claims, *pl.collect_all(others, engine="streaming"), member_key=True)


#: Parquet footer key of restricted/events.parquet: the value sets whose events the file holds (JSON list)
EVENTS_VALUE_SETS = "equity_pipeline.value_sets"
#: Parquet footer key of restricted/events.parquet and restricted/event_members.parquet: the digest of the
#: member ids whose positions the events' member keys are (the ids event_members holds)
EVENTS_MEMBER_KEYS = "equity_pipeline.member_keys"


def event_member_ids(layout: OutputLayout) -> pl.Series | None:
    """The member ids of restricted/events.parquet's member keys (key = position), None when the file
    names members by ``member_id`` (written by an older version, or by hand). Raises when the ids
    file is missing or from another build_events than the events."""
    from equity_pipeline.io import parquet_metadata

    if "member_key" not in pl.scan_parquet(layout.events).collect_schema().names():
        return None
    token = parquet_metadata(layout.events).get(EVENTS_MEMBER_KEYS)
    if not token or parquet_metadata(layout.event_members).get(EVENTS_MEMBER_KEYS) != token:
        raise RuntimeError(f"{layout.event_members.name} is missing or was not written with {layout.events.name}: "
                           "materialize measure_events again")
    return pl.read_parquet(layout.event_members)["member_id"]


def read_events(layout: OutputLayout, value_sets: Iterable[str] | None = None) -> pl.LazyFrame:
    """restricted/events.parquet with member ids (``events.EVENT_SCHEMA``): each event's ``member_key``
    taken back to its member id (:func:`event_member_ids`; null for a member id that is not the
    members table's, whose lines the ingest quarantines as orphans). ``value_sets``: only the events
    of these value sets (the file's other row groups are skipped)."""
    from equity_pipeline.events import EVENT_SCHEMA

    events = pl.scan_parquet(layout.events)
    if value_sets is not None:
        events = events.filter(pl.col("value_set").is_in(sorted(value_sets)))
    ids = event_member_ids(layout)
    if ids is None:
        return events
    # a join on the integer key (a gather of the ids by key took more CPU, and filters on its result
    # did not reach the file's row groups)
    from equity_pipeline.measures.extract import member_key_frame

    return events.join(member_key_frame(ids), on="member_key", how="left", maintain_order="left").select(EVENT_SCHEMA.keys())


def events_value_sets(layout: OutputLayout) -> set[str] | None:
    """The value sets whose events restricted/events.parquet holds (from its footer), None when unknown."""
    from equity_pipeline.io import parquet_metadata

    raw = parquet_metadata(layout.events).get(EVENTS_VALUE_SETS)
    return set(json.loads(raw)) if raw else None


def standardization_comorbidities(layout: OutputLayout, config: ProgramConfig, members: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Any]]:
    """member_id, comorbidities of ``members`` for the O/E risk models: the PCR risk model's
    comorbidity value sets and look-back (``measures.readmission.member_comorbidities``) counted in
    the year before the measurement period end. When restricted/events.parquet holds the comorbidity
    value sets (its footer says which it holds: those of the configured measures; PCR's include
    them), its events dated in the look-back window are used; otherwise they are extracted here with
    the same code, from the claim lines, observations and fills dated in the look-back window only
    (the window is the same for every member, and an event's date is its line's), streaming
    (memory: docs/performance.md)."""
    from datetime import timedelta

    from equity_pipeline.measures.extract import claim_events as claim_events_at_scale
    from equity_pipeline.measures.readmission import member_comorbidities

    risk = load_specs()["PCR"].risk_model
    value_sets = sorted(risk.get("comorbidities", []))
    lookback = int(risk.get("lookback_days", 365))
    end = config.period.end

    def dated(lf: pl.LazyFrame, column: str) -> pl.LazyFrame:
        return lf.filter(pl.col(column).is_between(end - timedelta(days=lookback), end))

    held = events_value_sets(layout)
    if held is not None and set(value_sets) <= held:
        # the run's coded events already hold them (PCR configured): the same events, dated as the lines they come from
        events = dated(read_events(layout, value_sets), "event_date")
    else:
        codes = value_set_frame(set(value_sets))
        events = pl.concat([
            claim_events_at_scale(dated(final_medical_claims(layout), "claim_from_date"), codes),
            observation_events(dated(pl.scan_parquet(layout.table("clinical_observations")), "observation_date"), codes),
            pharmacy_events(dated(final_pharmacy_claims(layout), "fill_date"), codes),
        ])
    counts = member_comorbidities(members.lazy().select("member_id"), events, value_sets, end, lookback).collect(engine="streaming")
    return counts, {"value_sets": value_sets, "lookback_days": lookback, "period_end": end.isoformat(),
                    "comorbidity_cap": int(risk.get("comorbidity_cap", 4))}


def evaluate_measure(measure_id: str, layout: OutputLayout, config: ProgramConfig, *, risk_stays: list | None = None) -> dict[str, Any]:
    """One measure's member-level results and counts. ``risk_stays`` (readmission measures): a list that
    receives the risk model's per-stay input (partitioned runs, ``partitioning.run_partition``)."""
    spec = load_specs()[measure_id]
    period = config.period
    members, enrollment = pl.scan_parquet(layout.table("members")), pl.scan_parquet(layout.table("enrollment"))
    # the frames build_events wrote for this period, when there (else the measure computes them)
    shared = {name: pl.scan_parquet(path) for name, (path, _, _) in _measure_base(layout, config, [measure_id], frames=False).items()
              if path.is_file()}
    keyed = shared.pop("members_keyed", None)
    if spec.kind == "proportion":
        keyed = (keyed if keyed is not None else keyed_members(members)).collect()
        results, counts = _evaluate_keyed(spec, layout, config, keyed, enrollment, shared)
    elif spec.kind == "readmission":
        from equity_pipeline.measures.readmission import evaluate_readmission

        results, counts = evaluate_readmission(spec, period, members, enrollment, final_medical_claims(layout),
                                               read_events(layout, spec.event_value_set_names), risk_stays=risk_stays,
                                               stays=shared.get("inpatient_stays"))
    else:
        results, counts = _evaluate_utilization(spec, layout, config, members, enrollment, shared, keyed)
    if spec.kind == "readmission":
        results = _with_member_keys(results, _sorted_member_ids(layout, config, members))
    write_parquet_atomic(results, layout.member_results(measure_id))
    out = {"measure_id": measure_id, "measure_version": spec.version, "period": period.label, **counts.__dict__, "reconciles": counts.reconciles()}
    write_json_atomic(out, layout.measure_counts(measure_id))
    return out


def _evaluate_keyed(spec, layout: OutputLayout, config: ProgramConfig, keyed: pl.DataFrame, enrollment: pl.LazyFrame,
                    shared: dict[str, pl.LazyFrame]) -> tuple[pl.DataFrame, Any]:
    """``engine.evaluate`` of a proportion spec with integer member keys for member ids (``keyed``:
    :func:`keyed_members`): the members, enrollment spans, events and shared frames carry the key in
    ``member_id``, so that the engine's joins and groupings hash integers, not strings (about half
    the CPU of a measure step, docs/performance.md); the results get the member ids back (the key
    order is the member id order, so the rows are in the same order) and keep the key in
    ``member_key``. The keyed spans build_events wrote are read when there (``shared``), and the
    events' ``member_key`` when its member ids are these members' (:func:`event_member_ids`);
    otherwise they are keyed here."""
    ids = keyed["member_id"]
    spans = shared.pop("enrollment_keyed", None)
    spans = spans if spans is not None else keyed_by_member(enrollment, ids)
    held = event_member_ids(layout)
    if held is not None and held.equals(ids):
        # the events' keys are these members' keys (the members table is the one build_events keyed)
        events = pl.scan_parquet(layout.events).rename({"member_key": "member_id"})
    else:
        events = keyed_by_member(read_events(layout), ids)
    people = keyed.lazy().select(pl.col("member_key").alias("member_id"), "sex", "birth_date", "death_date")
    results, counts = evaluate(spec, config.period, people, spans, events, shared=shared)
    return _ids_back(results, ids), counts


def _ids_back(results: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """Results of a measure run on member keys (in ``member_id``): the member ids back (``ids``, the
    keyed members' sorted ids, by key), the key kept as ``member_key``."""
    key = results["member_id"]
    return results.with_columns(member_id=ids.gather(key), member_key=key.cast(pl.UInt32))


def _evaluate_utilization(spec, layout: OutputLayout, config: ProgramConfig, members: pl.LazyFrame, enrollment: pl.LazyFrame,
                          shared: dict[str, pl.LazyFrame], keyed: pl.LazyFrame | None) -> tuple[pl.DataFrame, Any]:
    """``utilization.evaluate_utilization`` of an event rate, cost or cost share spec, with ``member_key``
    (as :func:`_with_member_keys`). When build_events wrote every shared frame the spec uses, the
    per-member ones with member keys for member ids (``utilization.KEYED_SHARED``), and the keyed
    members (``keyed``), the measure runs on the keys: its joins and sort are on integers (about half
    the CPU of the step at 1M members); the stays and ED visits are keyed here. The results then get
    the member ids back (the key order is the member id order: the same rows in the same order).
    Otherwise on the member id strings, computing the missing frames."""
    from equity_pipeline.measures.utilization import KEYED_SHARED, SHARED

    uses = [name for name, users in SHARED.items() if spec.kind in users]
    args = (spec, config.period)
    sources = (final_medical_claims(layout), final_pharmacy_claims(layout), pl.scan_parquet(layout.table("providers")))
    if keyed is not None and all((f"{n}_keyed" if n in KEYED_SHARED else n) in shared for n in uses):
        keyed = keyed.collect()
        ids = keyed["member_id"]
        frames = {n: shared[f"{n}_keyed"] if n in KEYED_SHARED else keyed_by_member(shared[n], ids) for n in uses}
        people = keyed.lazy().select(pl.col("member_key").alias("member_id"), "birth_date")
        results, counts = evaluate_utilization(*args, people, enrollment, *sources, shared=frames)
        return _ids_back(results, ids), counts
    plain = {n: f for n, f in shared.items() if n in SHARED}
    results, counts = evaluate_utilization(*args, members, enrollment, *sources, shared=plain)
    return _with_member_keys(results, _sorted_member_ids(layout, config, members)), counts


def _sorted_member_ids(layout: OutputLayout, config: ProgramConfig, members: pl.LazyFrame) -> pl.Series:
    """The members table's member ids, sorted (the order of :func:`keyed_members`): read from the keyed
    members build_events wrote when they are there (their file name names the inputs they came from),
    else sorted here."""
    path = _measure_base(layout, config, frames=False).get("members_keyed", (None,))[0]
    if path is not None and path.is_file():
        return pl.read_parquet(path, columns=["member_id"]).get_column("member_id")
    return keyed_members(members).select("member_id").collect().get_column("member_id")


def _with_member_keys(results: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """``results`` with ``member_key`` (UInt32): the position of each row's member id among ``ids``
    (the members table's sorted ids, :func:`keyed_members`), null for an id not among them. The
    stratification steps read it as the member's row in the attributes (``stratify.MemberIndex``)
    instead of searching for every row's id in each of them."""
    from equity_pipeline.stratify import MemberIndex

    if results.height == 0 or ids.len() == 0:
        return results.with_columns(member_key=pl.lit(None, dtype=pl.UInt32))
    return results.with_columns(member_key=MemberIndex(ids.to_frame("member_id")).position(results["member_id"].cast(pl.String)))


def build_member_attributes(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    from equity_pipeline.stratify import member_attributes

    attrs = member_attributes(pl.scan_parquet(layout.table("members")), config.period,
                              enrollment=pl.scan_parquet(layout.table("enrollment")),
                              screenings=pl.scan_parquet(layout.table("sdoh_screenings")),
                              age_bands=config.age_bands, regions=config.region_map)
    write_parquet_atomic(attrs, layout.member_attributes)
    return {"members": attrs.height}


def build_stratified_counts(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    from equity_pipeline.stratify import counts_and_identities

    results = _all_member_results(layout, config)
    attrs = pl.read_parquet(layout.member_attributes)
    counts, identities = counts_and_identities(results, attrs, config.stratifiers, config.intersections)
    write_parquet_atomic(counts, layout.stratified_counts)
    write_parquet_atomic(identities, layout.strata_identities)
    return {"cells": counts.height, "identities": int(identities["identity"].n_unique())}


def build_public_rates(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """public/rates.parquet and .csv (one public reason for every suppressed cell) and the restricted
    suppression log restricted/suppression/rates.parquet (primary or complementary, per cell)."""
    from equity_pipeline.stratify import KEY, data_source_of, rates_with_reasons
    from equity_pipeline.suppression import publishable_reasons, suppression_detail

    specs = {m: load_specs()[m] for m in config.measures}
    clinical_rows = pl.scan_parquet(layout.table("clinical_observations")).select(pl.len()).collect().item()
    sources = {m: data_source_of(s, clinical_rows) for m, s in specs.items()}
    identities = pl.read_parquet(layout.strata_identities) if layout.strata_identities.is_file() else None
    detailed = rates_with_reasons(pl.read_parquet(layout.stratified_counts), specs, sources, identities)
    write_parquet_atomic(suppression_detail(detailed, KEY), layout.suppression_detail("rates"))
    rates = publishable_reasons(detailed)
    # published only when the no_small_cells check passes on the frame (else restricted/withheld/)
    published = publish_checked(layout, {layout.rates: rates, layout.rates_csv: rates},
                                {"no_small_cells": lambda: rates_small_cells(rates)})
    return {"rows": rates.height, "suppressed": int(rates["suppressed"].sum()),
            "small_cells": published.checks["no_small_cells"], **withheld_metadata(published)}


def build_disparities(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """public/disparities.parquet and public/disparity_summary.parquet from the public rates (the
    restricted counts only give the standard errors of cost measures' published cells)."""
    from equity_pipeline.disparity_tables import DisparityOptions, disparity_table, summary_table

    specs = load_specs()
    kinds = {m: specs[m].kind for m in config.measures}
    options = DisparityOptions.from_config(config)
    rates, counts = pl.read_parquet(layout.rates), pl.read_parquet(layout.stratified_counts)
    table = disparity_table(rates, options, counts, kinds)
    summary = summary_table(rates, table, options, counts, kinds)
    from equity_pipeline.disparity_tables import leaked_cells

    # published only when the no_suppressed_cell_revealed check passes on the frames (else restricted/withheld/)
    published = publish_checked(layout, {layout.disparities: table, layout.disparity_summary: summary},
                                {"no_suppressed_cell_revealed": lambda: leaked_cells(table, summary, rates)})
    return {
        "rows": table.height, "compared": int((table["status"] == "compared").sum()),
        "significant": int(table["significant"].fill_null(False).sum()),
        "worse_than_reference": int(table["worse_than_reference"].fill_null(False).sum()),
        "insufficient_data": int(table["insufficient_data"].fill_null(False).sum()),
        "suppressed": int(table["suppressed"].sum()), "summary_rows": summary.height,
        "leaks": published.checks["no_suppressed_cell_revealed"], **withheld_metadata(published),
    }


def disparity_leaks(layout: OutputLayout) -> int:
    """Disparity or summary rows that would reveal a suppressed rates cell (must be 0)."""
    from equity_pipeline.disparity_tables import leaked_cells

    return leaked_cells(pl.read_parquet(layout.disparities), pl.read_parquet(layout.disparity_summary), pl.read_parquet(layout.rates))


def published_small_cells(layout: OutputLayout) -> int:
    """Rows of public/rates.parquet still showing a checked count of 1-10 (must be 0): :func:`rates_small_cells`
    on the written file."""
    return rates_small_cells(pl.read_parquet(layout.rates))


def rates_small_cells(rates: pl.DataFrame) -> int:
    """Rows of a public rates frame still showing a checked count of 1-10 (must be 0; the
    ``no_small_cells`` check, run before the frame is published).

    The counts checked depend on the measure kind (see ``suppression.CHECKED``): dollars and
    member-months are not counts of people."""
    from equity_pipeline.suppression import primary_flags

    rates = rates.filter(~pl.col("suppressed"))
    specs = load_specs()
    kinds = pl.DataFrame({"measure_id": list(specs), "kind": [s.kind for s in specs.values()]})
    return int(primary_flags(rates.join(kinds, on="measure_id", how="left")).sum())


def build_report(layout: OutputLayout, config: ProgramConfig, run_id: str) -> dict[str, Any]:
    from equity_pipeline.report import render_report

    specs = {m: load_specs()[m] for m in config.measures}
    manifest = build_manifest_dict(layout, config, run_id, input_dir=None)
    measures = {m: {"title": s.title, "description": s.description, "ids": s.ids, "version": s.version, "notes": s.notes} for m, s in specs.items()}
    rates = pl.read_parquet(layout.rates)
    trends = build_trends(rates, config)
    path = render_report(rates, manifest, layout.report, measures=measures, disparities=_optional_public(layout.disparities),
                         completeness=_optional_public(layout.completeness), trends=trends)
    return {"path": str(path.relative_to(layout.root)), "trend_periods": trends.table.get_column("period").n_unique(),
            "trend_rows_left_out": int(trends.left_out.get_column("rows").sum())}


def build_trends(rates: pl.DataFrame, config: ProgramConfig):
    """This run's public rates with the configured earlier runs' (config ``trend.history``) as the
    trend table of the report and the workbook (``report.trends.trend_rates``)."""
    from equity_pipeline.report.trends import trend_rates

    return trend_rates(rates, list(config.trend_history))


def build_fhir_measure_reports(layout: OutputLayout, config: ProgramConfig, run_id: str) -> dict[str, Any]:
    """public/fhir/measure_reports.ndjson: the public rates as FHIR R4 MeasureReport resources (one per
    measure x period x unit, stratifiers with strata; suppressed cells carry no count or score)."""
    from equity_pipeline.report.fhir_measure_report import write_measure_reports

    path = layout.public / "fhir" / "measure_reports.ndjson"
    counts = write_measure_reports(path, pl.read_parquet(layout.rates),
                                   created_at=config.run_date.isoformat())  # the as-of date: re-runs stay byte-identical
    return {"path": str(path.relative_to(layout.root)), **counts}


def _optional_public(path: Path) -> pl.DataFrame | None:
    """A public table that a run may or may not have (disparities, completeness), or None."""
    return pl.read_parquet(path) if path.is_file() else None


def _all_member_results(layout: OutputLayout, config: ProgramConfig) -> pl.DataFrame:
    """The denominator rows of every measure's member results, the columns the counts read
    (diagonal: readmission measures add ``expected_value``, null for the other measures)."""
    from equity_pipeline.stratify import denominator_results

    return denominator_results([layout.member_results(m) for m in config.measures])


def _member_results_lazy(layout: OutputLayout, config: ProgramConfig) -> pl.LazyFrame:
    """:func:`_all_member_results`, not read yet: the imputed and standardised steps collect one
    measure at a time (memory: never every measure's member rows at once)."""
    from equity_pipeline.stratify import denominator_scan

    return pl.concat([denominator_scan(layout.member_results(m)) for m in config.measures], how="diagonal_relaxed")


def build_imputed_race(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """The BISG track (docs/stratification.md, "Imputed race/ethnicity"): restricted/bisg_probabilities.parquet,
    public/rates_imputed_race.parquet (probability-weighted rates, suppressed on effective counts) and
    public/race_concordance.parquet. Off when config ``imputed_race`` is false, or unset and no member
    has a surname: then nothing is written and earlier outputs are removed."""
    from equity_pipeline import imputation
    from equity_pipeline.stratify import data_source_of

    members = pl.scan_parquet(layout.table("members"))
    enabled = config.imputed_race if config.imputed_race is not None else imputation.has_surnames(members)
    if not enabled:
        for path in (layout.rates_imputed_race, layout.race_concordance, layout.bisg_probabilities):
            path.unlink(missing_ok=True)
        remove_withheld(layout, layout.rates_imputed_race)
        return {"enabled": 0, "rows": 0, "suppressed": 0, "small_cells": 0, "concordance_rows": 0}
    probs = imputation.bisg_probabilities(members)
    write_parquet_atomic(probs, layout.bisg_probabilities)
    specs = {m: load_specs()[m] for m in config.measures}
    clinical_rows = pl.scan_parquet(layout.table("clinical_observations")).select(pl.len()).collect().item()
    sources = {m: data_source_of(s, clinical_rows) for m, s in specs.items()}
    attrs = pl.read_parquet(layout.member_attributes)
    counts = imputation.imputed_counts(_member_results_lazy(layout, config), attrs, probs)
    table = imputation.imputed_rates(counts, pl.read_parquet(layout.stratified_counts), pl.read_parquet(layout.rates), specs, sources)
    # published only when the no_small_effective_cells check passes on the frame (else restricted/withheld/)
    published = publish_checked(layout, {layout.rates_imputed_race: table}, {
        "no_small_effective_cells": lambda: imputation.imputed_small_cells(table, {m: s.kind for m, s in specs.items()})})
    period = config.period.label
    concordance = imputation.concordance(members, attrs, probs, period)
    write_parquet_atomic(concordance, layout.race_concordance)
    by_source = dict(probs.group_by("bisg_source").len().iter_rows())
    return {
        "enabled": 1, "rows": table.height, "suppressed": int(table["suppressed"].sum()),
        "small_cells": published.checks["no_small_effective_cells"], **withheld_metadata(published),
        "concordance_rows": concordance.height, "concordance_suppressed": int(concordance["suppressed"].sum()),
        **{f"members_{s}": int(by_source.get(s, 0)) for s in imputation.SOURCES},
    }


def build_standardized_rates(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """public/standardized_rates.parquet: crude, directly age/sex-standardised rate with CI and O/E with
    CI per measure x unit x stratum of the configured stratifiers, crude and adjusted gaps side by
    side, suppressed exactly as public/rates; the models used go to counts/standardization.json."""
    from equity_pipeline.standardized import attribute_columns, standardized_rates

    specs = {m: load_specs()[m] for m in config.measures}
    results = _member_results_lazy(layout, config)
    comorbidities, comorbidity_info = standardization_comorbidities(layout, config, results.select("member_id").unique().collect())
    attributes = pl.scan_parquet(layout.member_attributes)   # only the columns read (memory)
    wanted = attribute_columns(config.standardization_stratifiers)
    attributes = attributes.select(c for c in attributes.collect_schema().names() if c in wanted).collect()
    table, info = standardized_rates(
        results, attributes, pl.read_parquet(layout.rates),
        _optional_public(layout.disparities), specs, stratifiers=config.standardization_stratifiers,
        standard=config.standard_population, age_bands=config.standardization_age_bands, method=config.standardization_method,
        comorbidities=comorbidities, comorbidity_cap=comorbidity_info["comorbidity_cap"],
    )
    info["comorbidity"] = comorbidity_info
    # published only when the no_suppressed_cell_revealed check passes on the frame (else restricted/withheld/)
    published = publish_checked(layout, {layout.standardized_rates: table}, {
        "no_suppressed_cell_revealed": lambda: standardized_revealed(table, pl.read_parquet(layout.rates))})
    write_json_atomic(info, layout.standardization_models)
    return {"rows": table.height, "suppressed": int(table["suppressed"].sum()),
            "standardized": int(table["standardized_rate"].is_not_null().sum()), "oe": int(table["oe_ratio"].is_not_null().sum()),
            "revealed": published.checks["no_suppressed_cell_revealed"], **withheld_metadata(published)}


def standardized_leaks(layout: OutputLayout) -> int:
    """Rows of public/standardized_rates.parquet with a value for a cell suppressed in public/rates
    (must be 0): :func:`standardized_revealed` on the written files."""
    return standardized_revealed(pl.read_parquet(layout.standardized_rates), pl.read_parquet(layout.rates))


def standardized_revealed(table: pl.DataFrame, rates: pl.DataFrame) -> int:
    """Rows of a standardised-rates frame with a value for a cell suppressed in the public ``rates``, or
    suppressed otherwise than there (must be 0; the ``no_suppressed_cell_revealed`` check, run before
    the frame is published)."""
    rates = rates.select(*_RATES_KEY, _rates_suppressed="suppressed")
    joined = table.join(rates, on=_RATES_KEY, how="left")
    values = ["crude_rate", "standardized_rate", "standardized_ci_lower", "standardized_ci_upper", "oe_ratio", "oe_ci_lower", "oe_ci_upper",
              "crude_difference", "standardized_difference", "crude_ratio", "standardized_ratio"]
    bad = joined.filter((pl.col("_rates_suppressed").fill_null(True) | pl.col("suppressed")) & pl.any_horizontal(pl.col(values).is_not_null()))
    return bad.height + int((joined["_rates_suppressed"].fill_null(True) != joined["suppressed"]).sum())


_RATES_KEY = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum"]


def build_completeness(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """public/completeness.parquet and .csv: REL data completeness by reporting unit, suppressed (one
    public reason); the kind of each suppressed cell goes to restricted/suppression/completeness.parquet."""
    from equity_pipeline.report.completeness import COMPLETENESS_KEY, completeness_small_cells, rel_completeness
    from equity_pipeline.suppression import publishable_reasons, suppression_detail

    detailed = rel_completeness(pl.scan_parquet(layout.table("members")), config.period, with_reasons=True)
    write_parquet_atomic(suppression_detail(detailed, COMPLETENESS_KEY), layout.suppression_detail("completeness"))
    table = publishable_reasons(detailed)
    # published only when the no_small_cells check passes on the frame (else restricted/withheld/)
    published = publish_checked(layout, {layout.completeness: table, layout.completeness_csv: table},
                                {"no_small_cells": lambda: completeness_small_cells(table)})
    return {"rows": table.height, "suppressed": int(table["suppressed"].sum()), "small_cells": published.checks["no_small_cells"],
            **withheld_metadata(published)}


def build_completeness_thresholds(layout: OutputLayout, config: ProgramConfig) -> dict[str, Any]:
    """validation/completeness_thresholds.json: the configured REL completeness levels
    (``completeness_thresholds``) evaluated on public/completeness per reporting unit; returns the
    written document (counts and shares only)."""
    from equity_pipeline.report.completeness import evaluate_thresholds

    result = evaluate_thresholds(pl.read_parquet(layout.completeness), config.completeness_thresholds)
    write_json_atomic(result, layout.completeness_thresholds)
    return result


def _plan_rules(config: ProgramConfig):
    """The equity-plan rules in effect for the measurement year, or None when no version covers it
    and the config asked for nothing (then the plan tables are written empty)."""
    from equity_pipeline.equity_plans.rules import NoRulesInEffect, resolve_rules

    try:
        return resolve_rules(config.equity_plans, config.period, measures=config.measures)
    except NoRulesInEffect:
        if config.equity_plans:
            raise
        return None


def plan_checks(stats: dict[str, Any]) -> dict[str, int]:
    """The equity-plan tables' asset checks from the counts the plan step computed on its cells:
    ``no_small_cells`` (published counts of 1-10) and ``no_suppressed_cell_revealed`` (unprotected
    margins, lock conflicts, lock mismatches with public/rates); all must be 0."""
    return {"no_small_cells": int(stats.get("small_cells", 0)),
            "no_suppressed_cell_revealed": sum(int(stats.get(k, 0)) for k in ("unprotected_margins", "lock_conflicts", "lock_mismatches"))}


def _write_plan_table(detailed: pl.DataFrame, layout: OutputLayout, name: str, path: Path, stats: dict[str, Any] | None = None):
    """A plan table: the restricted suppression log (why each cell is hidden) to
    restricted/suppression/<name>.parquet, the table with one public reason to ``path`` when
    :func:`plan_checks` of ``stats`` pass (else to restricted/withheld/); the ``PublishResult``."""
    from equity_pipeline.equity_plans.table import KEY
    from equity_pipeline.suppression import publishable_reasons, suppression_detail

    write_parquet_atomic(suppression_detail(detailed, KEY), layout.suppression_detail(name))
    return publish_checked(layout, {path: publishable_reasons(detailed)}, plan_checks(stats or {}))


def build_state_metrics(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """public/equity_plan/state_metrics.parquet: the statewide equity plan (docs/equity_plans.md), one
    public reason for every suppressed cell; why each is hidden: restricted/suppression/state_metrics.parquet.
    Counts only: rows, suppressed rows, and the suppression checks (small cells, unprotected margins)."""
    from equity_pipeline.equity_plans.inputs import read_denominator_results, read_members
    from equity_pipeline.equity_plans.state import state_metrics
    from equity_pipeline.equity_plans.table import empty

    rules = _plan_rules(config)
    if rules is None:
        _write_plan_table(empty(), layout, "state_metrics", layout.state_metrics)
        return {"rows": 0, "rules_in_effect": False, "small_cells": 0, "unprotected_margins": 0, "lock_conflicts": 0}
    # projected reads: the denominator rows and columns the plan counts (equity_plans/inputs.py)
    results = {m: read_denominator_results(layout.member_results(m)) for m in sorted({rules.pqi_measure, "SDOH_SCREEN"})
               if m in config.measures}
    table, stats = state_metrics(
        rates=pl.read_parquet(layout.rates), attributes=pl.read_parquet(layout.member_attributes),
        members=read_members(layout.table("members")), results=results, specs=load_specs(), rules=rules,
        year=config.period, regions=config.region_map, completeness=_optional_public(layout.completeness),
        disparities=_optional_public(layout.disparities), with_reasons=True)
    published = _write_plan_table(table, layout, "state_metrics", layout.state_metrics, stats)
    return {**stats, "rules_in_effect": True, **withheld_metadata(published)}


def build_hospital_metrics(layout: OutputLayout, config: ProgramConfig) -> dict[str, int]:
    """public/equity_plan/hospital_metrics.parquet: the hospital equity plan per facility (CCN), one
    public reason for every suppressed cell; why each is hidden: restricted/suppression/hospital_metrics.parquet."""
    from equity_pipeline.equity_plans.hospital import hospital_metrics
    from equity_pipeline.equity_plans.inputs import read_members
    from equity_pipeline.equity_plans.table import empty

    rules = _plan_rules(config)
    if rules is None:
        _write_plan_table(empty(), layout, "hospital_metrics", layout.hospital_metrics)
        return {"rows": 0, "rules_in_effect": False, "small_cells": 0, "unprotected_margins": 0}
    # the inpatient stays and every ED visit of the final claims that build_events wrote for this period and
    # these inputs, when there
    written = {name: path for name, (path, _, _) in _measure_base(layout, config, frames=False).items() if path.is_file()}
    stays, visits = (pl.read_parquet(written[name]) if name in written else None for name in ("inpatient_stays", "ed_visits"))
    table, stats = hospital_metrics(
        claims=final_medical_claims(layout), members=read_members(layout.table("members")),
        attributes=pl.read_parquet(layout.member_attributes), screenings=pl.scan_parquet(layout.table("sdoh_screenings")),
        events=read_events(layout), specs=load_specs(), rules=rules, year=config.period, with_reasons=True,
        stays=stays, every_ed=visits)
    published = _write_plan_table(table, layout, "hospital_metrics", layout.hospital_metrics, stats)
    return {**stats, "rules_in_effect": True, **withheld_metadata(published)}


def build_workbook(layout: OutputLayout, config: ProgramConfig, run_id: str) -> dict[str, Any]:
    """report/equity_report.xlsx: every public table of the run as a sheet, plus a README sheet."""
    from equity_pipeline.report.workbook import write_workbook

    manifest = build_manifest_dict(layout, config, run_id, input_dir=None)
    rates = pl.read_parquet(layout.rates)
    counts = write_workbook(layout.workbook, rates, manifest,
                            disparities=_optional_public(layout.disparities),
                            disparity_summary=_optional_public(layout.disparity_summary),
                            completeness=_optional_public(layout.completeness),
                            state_metrics=_optional_public(layout.state_metrics),
                            hospital_metrics=_optional_public(layout.hospital_metrics),
                            trends=build_trends(rates, config).table)
    return {"path": str(layout.workbook.relative_to(layout.root)), **counts}


def build_state_plan(layout: OutputLayout, config: ProgramConfig | None, run_id: str) -> dict[str, Any]:
    """report/state_plan.html: the equity-plan tables (public/equity_plan/) as a print-ready filing
    document (docs/reports.md). Reads the public plan tables only; absent tables give empty sections."""
    from equity_pipeline.report.state_plan import render_state_plan

    state, hospital = _optional_public(layout.state_metrics), _optional_public(layout.hospital_metrics)
    manifest = {"run_id": run_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = render_state_plan(state, hospital, manifest, layout.report)

    def units(frame: pl.DataFrame | None) -> int:
        return 0 if frame is None or frame.height == 0 else frame.select("unit_level", "unit_id").unique().height

    return {"path": str(path.relative_to(layout.root)), "state_rows": 0 if state is None else state.height,
            "hospital_rows": 0 if hospital is None else hospital.height,
            "state_sections": units(state), "facility_sections": units(hospital)}


#: Input tables behind the coded events (build_events) and behind the member attributes (stratifiers).
EVENT_TABLES = ("medical_claims", "clinical_observations", "pharmacy_claims", "sdoh_screenings")
ATTRIBUTE_TABLES = ("members", "enrollment", "sdoh_screenings")


def measure_input_tables(kind: str) -> list[str]:
    """The input tables a measure's published cells are computed from: those its evaluation reads
    (see evaluate_measure) plus those the member attributes read, in TABLES order."""
    if kind == "proportion":
        own = {"members", "enrollment", *EVENT_TABLES}
    elif kind == "readmission":
        own = {"members", "enrollment", "medical_claims", *EVENT_TABLES}
    else:
        own = {"members", "enrollment", "medical_claims", "pharmacy_claims", "providers"}
    return [t for t in TABLES if t in own | set(ATTRIBUTE_TABLES)]


def plan_metric_input_tables(plan: str, metric_id: str, measure_id: str | None, specs: dict) -> list[str]:
    """The input tables an equity-plan metric's cells are computed from (docs/equity_plans.md), in
    TABLES order: hospital metrics read the facility patients from medical claims plus the member
    attributes (readmission also the coded events, for the planned-readmission rules); a state metric
    from a measure, that measure's tables; the others (REL completeness by payer) the members table
    and the member attributes."""
    if plan == "hospital":
        own = {"members", "medical_claims", *ATTRIBUTE_TABLES}
        if metric_id == "HOSP_READMISSION":
            own |= set(measure_input_tables("readmission"))
        return [t for t in TABLES if t in own]
    if measure_id and measure_id in specs:
        return measure_input_tables(specs[measure_id].kind)
    return [t for t in TABLES if t in ATTRIBUTE_TABLES]


def build_audit_pack(layout: OutputLayout, config: ProgramConfig, run_id: str) -> dict[str, Any]:
    """audit/: validation summary, row and member reconciliation, suppression log, manifest copy,
    lineage from every published cell to spec version, suite versions and input hashes; counts only."""
    from equity_pipeline.report.audit import write_audit_pack

    if layout.manifest.is_file():
        manifest, manifest_path = json.loads(layout.manifest.read_text(encoding="utf-8")), layout.manifest
    else:
        manifest, manifest_path = build_manifest_dict(layout, config, run_id, input_dir=None), None
    specs = load_specs()
    tables = {name: frame for name, frame in (
        ("rates", pl.read_parquet(layout.rates)),
        ("disparities", _optional_public(layout.disparities)),
        ("disparity_summary", _optional_public(layout.disparity_summary)),
        ("completeness", _optional_public(layout.completeness)),
        ("state_metrics", _optional_public(layout.state_metrics)),
        ("hospital_metrics", _optional_public(layout.hospital_metrics)),
    ) if frame is not None}
    inputs = {m: measure_input_tables(specs[m].kind) for m in config.measures if m in specs}
    inputs.update({a: ["members"] for a in ("race_ethnicity", "language")})  # completeness rows
    spec_of: dict[str, str] = {}  # equity-plan metrics: their sources, and the measure spec behind them
    for name in ("state_metrics", "hospital_metrics"):
        if name in tables:
            for plan, metric, measure in tables[name].select("plan", "metric_id", "measure_id").unique().rows():
                inputs[f"{plan}:{metric}"] = plan_metric_input_tables(plan, metric, measure, specs)
                if measure:
                    spec_of[f"{plan}:{metric}"] = measure
    # the kind of each suppressed cell (primary / complementary) is restricted; the pack counts it
    details = {name: pl.read_parquet(layout.suppression_detail(name)) for name in tables
               if layout.suppression_detail(name).is_file()}
    return write_audit_pack(layout.audit, manifest=manifest, manifest_path=manifest_path, validation_dir=layout.validation,
                            tables=tables, measure_inputs=inputs, input_tables=TABLES, suppression_details=details,
                            spec_of=spec_of)


def _package_versions() -> dict[str, str]:
    out = {"equity-pipeline": __version__}
    for pkg in ("polars", "pyarrow", "dagster", "great-expectations", "statsmodels", "matplotlib", "numpy", "pandas"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def build_manifest_dict(layout: OutputLayout, config: ProgramConfig, run_id: str, input_dir: Path | None) -> dict[str, Any]:
    tables, inputs = {}, []
    for t in TABLES:
        p = layout.table_result(t)
        if not p.is_file():
            continue
        r = TableResult(**json.loads(p.read_text()))
        tables[t] = {"read": r.read, "used": r.used, "quarantined": r.quarantined, "rules": r.rule_counts, "suite_version": r.suite_version}
        if r.file:
            inputs.append({"table": t, "file": r.file, "sha256": r.sha256, "rows": r.read})
    measures = {}
    for m in config.measures:
        p = layout.measure_counts(m)
        if p.is_file():
            measures[m] = json.loads(p.read_text())
    if layout.adjudication.is_file() and "medical_claims" in tables:
        tables["medical_claims"]["adjudication"] = json.loads(layout.adjudication.read_text())
    from equity_pipeline.sources import manifest_section

    source = manifest_section(layout.root)  # source format, per-source-file {read, mapped, quarantined}, warnings
    return {
        **({"source": source} if source else {}),
        "run_id": run_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
        "package_versions": _package_versions(),
        "input_dir": str(input_dir) if input_dir else None,
        "inputs": inputs,
        "config": config.to_dict(),
        "suites": {t: load_suite(t).version for t in TABLES},
        "measure_specs": {m: load_specs()[m].version for m in config.measures},
        "standards": _standards_versions(),
        "tables": tables,
        "measures": measures,
        # tables a privacy check held back from public/ (restricted/withheld/; counts and file names only)
        "withheld": withheld_outputs(layout),
    }


def _standards_versions() -> dict[str, Any]:
    """Versions of the collection standards' named rollups (the stratifier names they produce)."""
    from equity_pipeline.standards.race_ethnicity import ROLLUP_VERSIONS

    return {"race_ethnicity_rollups": dict(ROLLUP_VERSIONS)}


def build_manifest(layout: OutputLayout, config: ProgramConfig, run_id: str, input_dir: Path) -> dict[str, Any]:
    manifest = build_manifest_dict(layout, config, run_id, input_dir)
    write_json_atomic(manifest, layout.manifest)
    reconciled = all(v["read"] == v["used"] + v["quarantined"] for v in manifest["tables"].values())
    return {"tables": len(manifest["tables"]), "reconciled": reconciled}


def manifest_reconciliation(layout: OutputLayout, config: ProgramConfig) -> dict[str, Any]:
    """Invariants of the written ``manifest.json`` (counts only; table names and measure ids, no values).

    Every input table is in it with rows read = used + quarantined; medical claim lines used =
    final + superseded + voided; every configured measure is in it with members in = the members
    table's used rows = not eligible + excluded + denominator, and numerator <= denominator."""
    manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
    tables, measures = manifest.get("tables", {}), manifest.get("measures", {})
    bad_tables = sorted(t for t in TABLES if t not in tables or tables[t]["read"] != tables[t]["used"] + tables[t]["quarantined"])
    adjudication = tables.get("medical_claims", {}).get("adjudication")
    if adjudication is not None and adjudication["final"] + adjudication["superseded"] + adjudication["voided"] != tables["medical_claims"]["used"]:
        bad_tables = sorted({*bad_tables, "medical_claims"})
    members_used = tables.get("members", {}).get("used")
    bad_measures = []
    for m in config.measures:
        c = measures.get(m)
        if c is None or not (
            c["members_in"] == members_used
            == sum(c["not_eligible"].values()) + sum(c["excluded"].values()) + c["denominator"]
            and c["numerator"] <= c["denominator"]
        ):
            bad_measures.append(m)
    return {
        "tables_checked": len(TABLES),
        "tables_not_reconciling": len(bad_tables),
        "measures_checked": len(config.measures),
        "measures_not_reconciling": len(bad_measures),
        "failing_tables": bad_tables,
        "failing_measures": bad_measures,
        "passed": not bad_tables and not bad_measures,
    }
