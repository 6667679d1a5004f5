"""``generate()``: synthetic multi-payer data with planted, known truth, written chunk by chunk."""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import polars as pl

from . import defects as defect_mod
from .background import (
    background_medical,
    background_observations,
    background_pharmacy,
    background_sdoh,
    stringify_observations,
)
from .claims import assign_claim_ids, stringify_medical
from .context import ChunkContext, Period, isin, to_date
from .evidence import Evidence
from .geography import STATE_SHARE, load_geography
from .planted import planted_measures
from .population import MEMBER_DEFECT_CLASSES, make_population
from .providers import build_providers
from .schema import TABLE_COLUMNS, TABLES
from .writer import TableWriter, write_table

GENERATOR_VERSION = "2.0.0"  # 2: every measure planted, fixed margins, evidence-aware planting
CHUNK_MEMBERS = 50_000  # fixed: the output depends only on (members, seed, options), never on memory


def generate(
    members: int,
    seed: int,
    out: Path,
    *,
    fmt: Literal["parquet", "csv"] = "parquet",
    messy_share: float = 0.02,
    measurement_year: int = 2025,
    progress: Callable[[str, float], None] | None = None,
) -> dict:
    """Write ``out/<table>.<fmt>`` for every input table plus ``out/truth.json``.

    Deterministic: the same (members, seed, fmt, messy_share, measurement_year) gives the same bytes.
    Returns ``{"members", "rows": {table: n}, "truth": path}``.
    """
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    if not 0.0 <= messy_share <= 0.5:
        raise ValueError(f"messy_share must be between 0 and 0.5, got {messy_share}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    period = Period(measurement_year)
    geo = load_geography()
    providers = build_providers(
        geo, members, np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(b"providers")]))
    )
    measures = planted_measures()
    primary_care = providers.table.filter(pl.col("is_primary_care") == "true")["provider_id"]
    writers = {t: TableWriter(out / f"{t}.{fmt}", TABLE_COLUMNS[t], fmt) for t in TABLES if t != "providers"}
    defects: dict[str, int] = {name: 0 for name in defect_mod.DEFECT_CLASSES}
    by_table: dict[str, dict[str, int]] = {}
    truth_rows: dict[str, list[pl.DataFrame]] = {m.MEASURE_ID: [] for m in measures}
    quarantined_total = 0
    n_chunks = math.ceil(members / CHUNK_MEMBERS)
    try:
        for ci in range(n_chunks):
            first = ci * CHUNK_MEMBERS
            n = min(CHUNK_MEMBERS, members - first)
            ctx = ChunkContext(seed=seed, chunk_index=ci, period=period, messy_share=messy_share)
            pop = make_population(ctx, geo, providers, first, n)

            evidence = ctx.evidence = Evidence(pop, period, primary_care)
            lines = background_medical(ctx, pop, providers)
            evidence.add_claims(lines)
            pharmacy = background_pharmacy(ctx, pop, providers)
            evidence.add_pharmacy(pharmacy)
            evidence.observations = background_observations(ctx, pop)
            evidence.screenings = [background_sdoh(ctx, pop, providers)]
            planted = []
            for m in measures:  # in order: each module reads what background and earlier modules produced
                result = m.plant(ctx, pop, providers)
                lines += result.medical_lines
                evidence.add_claims(result.medical_lines)
                evidence.screenings += result.screenings
                if result.observations:
                    evidence.observations = pl.concat([evidence.observations, *result.observations])
                for name, cnt in result.defects.items():
                    if cnt:
                        ctx.add_defect(name, cnt, "medical_claims")
                planted.append((m, result))
            # interleave producers (planted claims must not sit in one recognisable block)
            order = ctx.rng("frame_order").permutation(len(lines))
            medical = stringify_medical(pl.concat([lines[i] for i in order], how="vertical", rechunk=False))
            del lines
            medical = defect_mod.medical_defects(ctx, medical)
            medical = assign_claim_ids(medical.drop("_bg"), ctx.rng("claim_ids"), "C", ci)

            pharmacy = defect_mod.pharmacy_defects(ctx, pharmacy)
            pharmacy = assign_claim_ids(pharmacy.drop("_bg"), ctx.rng("rx_ids"), "R", ci, key="rx_key")

            members_df, quarantined = defect_mod.member_defects(ctx, pop.members_df, len(MEMBER_DEFECT_CLASSES))
            members_df = members_df.sort("member_id", maintain_order=True)
            enrollment = defect_mod.enrollment_defects(ctx, pop.enrollment_df)
            sdoh = pl.concat(evidence.screenings).sort("member_id", "screening_date", "screening_id", "question_code")
            sdoh = defect_mod.orphan_rows(ctx, sdoh, "sdoh_screenings", "screening_id")
            observations = stringify_observations(evidence.observations.sort("pos", "day", "loinc"), pop)
            observations = defect_mod.orphan_rows(ctx, observations, "clinical_observations")
            ctx.evidence = evidence = None

            writers["members"].write(members_df)
            writers["enrollment"].write(enrollment)
            writers["medical_claims"].write(medical)
            writers["pharmacy_claims"].write(pharmacy)
            writers["sdoh_screenings"].write(sdoh)
            writers["clinical_observations"].write(observations)
            del medical, pharmacy

            q = pl.Series(quarantined, dtype=pl.String)
            quarantined_total += len(quarantined)
            for m, result in planted:
                truth_rows[m.MEASURE_ID].append(result.members.with_columns(quarantined=isin(pl.col("member_id"), q)))
            for name, cnt in ctx.defects.items():
                defects[name] = defects.get(name, 0) + cnt
            for name, per in ctx.defects_by_table.items():
                for table, cnt in per.items():
                    by_table.setdefault(name, {})
                    by_table[name][table] = by_table[name].get(table, 0) + cnt
            if progress is not None:
                progress(f"chunk {ci + 1}/{n_chunks}", (ci + 1) / n_chunks)
    finally:
        for w in writers.values():
            w.close()

    rows = {t: writers[t].rows for t in writers}
    rows["providers"] = write_table(out / f"providers.{fmt}", providers.table.select(TABLE_COLUMNS["providers"]), fmt)
    rows = {t: rows[t] for t in TABLES}

    measures_truth = {}
    for m in measures:
        frame = pl.concat(truth_rows[m.MEASURE_ID])
        entry = m.summarize(frame, period)
        member_file = out / "truth" / f"{m.MEASURE_ID}_members.{fmt}"
        member_file.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":  # typed columns (booleans, ints): this file is for tests, not a pipeline input
            frame.write_parquet(member_file)
        else:
            frame.write_csv(member_file)
        entry["member_file"] = f"truth/{m.MEASURE_ID}_members.{fmt}"
        measures_truth[m.MEASURE_ID] = entry

    truth = {
        "generator": "equity_pipeline.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "members": members,
        "measurement_year": measurement_year,
        "format": fmt,
        "messy_share": messy_share,
        "chunk_members": CHUNK_MEMBERS,
        "period": {
            "claims_from": str(to_date(period.window_start)),
            "claims_to": str(to_date(period.my_end)),
            "lookback_start": str(to_date(period.lookback_start)),
            "measurement_year_start": str(to_date(period.my_start)),
            "measurement_year_end": str(to_date(period.my_end)),
        },
        "tables": {t: {"file": f"{t}.{fmt}", "rows": rows[t]} for t in TABLES},
        "row_counts": rows,
        "geography": {
            "states": {st: share for st, share in STATE_SHARE.items()},
            "county_fips": sorted(geo.county_fips.tolist()),
        },
        "measures": measures_truth,
        "defects": defects,
        "defect_details": {
            name: {**meta, "tables": by_table.get(name, {})} for name, meta in defect_mod.DEFECT_CLASSES.items()
        },
        "quarantined_members": quarantined_total,
    }
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return {"members": members, "rows": rows, "truth": str(truth_path)}
