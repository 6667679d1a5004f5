"""measures.extract (adjudication and coded events at scale) against the reference implementations
claims.final_claims / claims.adjudication_counts and events.claim_events, on hand-built claim lines
whose answers are reasoned out below."""
from datetime import date, timedelta

import polars as pl
import pytest

from equity_pipeline.claims import adjudication_counts, final_claims
from equity_pipeline.events import claim_events
from equity_pipeline.measures import extract


def _lines() -> pl.DataFrame:
    # claim A: one version, two lines -> both final
    # claim B: versions 1 (2 lines) and 2 (1 line) -> 2 superseded, 1 final
    # claim C: version 1 and a void version 2 -> all 2 lines voided
    # claim D: versions 0 and 1 (not "version 1 only") -> the version 0 line is superseded
    # claim E: null version and null status (read as 1 and paid) -> final
    # claim F: a single version 3 line -> final
    # a line without claim id: in neither the final lines nor the counts (as the reference's joins)
    rows = [
        ("A", 1, 1, "paid"), ("A", 2, 1, "paid"),
        ("B", 1, 1, "paid"), ("B", 2, 1, "paid"), ("B", 1, 2, "paid"),
        ("C", 1, 1, "paid"), ("C", 1, 2, "void"),
        ("D", 1, 0, "paid"), ("D", 1, 1, "denied"),
        ("E", 1, None, None),
        ("F", 1, 3, "paid"),
        (None, 1, 1, "paid"),
    ]
    return pl.DataFrame(
        {"claim_id": [r[0] for r in rows], "claim_line": [r[1] for r in rows], "claim_version": [r[2] for r in rows],
         "claim_status": [r[3] for r in rows], "member_id": [f"m{i}" for i in range(len(rows))],
         "paid_amount": [float(i) for i in range(len(rows))]},
        schema={"claim_id": pl.String, "claim_line": pl.Int64, "claim_version": pl.Int64, "claim_status": pl.String,
                "member_id": pl.String, "paid_amount": pl.Float64},
    )


def test_final_claims_and_counts_match_the_reference(tmp_path):
    lines = _lines().with_row_index("_row", offset=1)   # the used tables number their input rows from 1
    out = tmp_path / "adjudication.parquet"
    counts = extract.write_adjudication(lines.lazy(), out)
    # reasoned: final = A(2) + B(1) + D(1) + E(1) + F(1) = 6; superseded = B(2) + D(1) = 3; voided = C(2)
    assert counts == {"voided": 2, "superseded": 3, "final": 6}
    assert counts == adjudication_counts(lines.lazy())
    dropped = pl.read_parquet(out)
    # the dropped lines: B's two version-1 lines (rows 3, 4), C's two lines (6, 7), D's version 0 line (8)
    assert dropped.schema == pl.Schema(extract.ADJUDICATION_SCHEMA)
    assert dropped["_row"].to_list() == [3, 4, 6, 7, 8]
    assert dropped["voided"].to_list() == [False, False, True, True, False]
    got = extract.final_from(lines.lazy(), pl.scan_parquet(out)).collect()
    want = final_claims(lines.lazy()).collect()
    assert got.schema == want.schema
    assert got["_row"].is_sorted()   # input order
    assert got.equals(want.sort("_row"))
    assert got["member_id"].to_list() == ["m0", "m1", "m4", "m8", "m9", "m10"]


def test_final_from_reads_only_the_selected_columns(tmp_path):
    lines = _lines().with_row_index("_row", offset=1)
    table, out = tmp_path / "lines.parquet", tmp_path / "adjudication.parquet"
    lines.write_parquet(table)
    extract.write_adjudication(pl.scan_parquet(table), out)
    plan = extract.final_from(pl.scan_parquet(table), pl.scan_parquet(out)).select("member_id", "paid_amount").explain()
    # the scan of the lines reads 3 of its 7 columns: the 2 selected and _row (the filter's; the line
    # without a claim id was found by its own narrow pass and is filtered out by its row number)
    assert "PROJECT 3/7 COLUMNS" in plan
    got = extract.final_from(pl.scan_parquet(table), pl.scan_parquet(out)).select("member_id", "paid_amount").collect()
    assert got.equals(final_claims(lines.lazy()).collect().sort("_row").select("member_id", "paid_amount"))


def test_no_irregular_claims(tmp_path):
    lines = _lines().with_row_index("_row", offset=1).filter(pl.col("claim_id") == "A")
    counts = extract.write_adjudication(lines.lazy(), tmp_path / "f.parquet")
    assert counts == {"voided": 0, "superseded": 0, "final": 2}
    dropped = pl.read_parquet(tmp_path / "f.parquet")
    assert dropped.height == 0 and dropped.schema == pl.Schema(extract.ADJUDICATION_SCHEMA)
    assert extract.final_from(lines.lazy(), dropped).collect().height == 2


def _codes() -> pl.DataFrame:
    rows = [
        ("DIAB", "ICD10CM", "E11*"), ("DIAB", "ICD10CM", "E10.9"), ("CANCER", "ICD10CM", "C18*"), ("CANCER", "ICD10CM", "C184*"),
        ("CANCER", "ICD10CM", "Z85.038"), ("DIAB_EXACT", "ICD10CM", "E11.9"),
        ("VISIT", "CPT", "99213"), ("G_SCREEN", "HCPCS", "G0444"), ("ED", "REV", "0450"), ("ED", "POS", "23"),
        ("SURG", "ICD10PCS", "0DT*"),
    ]
    return pl.DataFrame(rows, schema={"value_set": pl.String, "code_system": pl.String, "code": pl.String}, orient="row")


def _claims() -> pl.DataFrame:
    d1, d2 = date(2025, 3, 1), date(2025, 4, 2)
    rows = [
        # E11.9 under DIAB's E11* and DIAB_EXACT; repeated in two columns and on two lines of one day
        ("m1", d1, "E11.9", "E11.9", None, "99213", "0450", "23"),
        ("m1", d1, "E11.9", None, None, "99213", None, None),
        # C18.4 hits C18* only (C184* needs the undotted form); C184 hits both prefixes of CANCER
        ("m2", d2, "C18.4", "C184", "0DTJ0ZZ", "G0444", None, None),
        ("m3", d2, "E10.9", "I10", None, None, None, None),   # exact E10.9; I10 in no value set
        ("m4", d1, None, None, None, None, None, None),         # no codes at all
        ("m5", d1, "E1", None, None, "9921", None, None),       # shorter than every prefix / code
    ]
    cols = ["member_id", "claim_from_date", "diagnosis_code_1", "diagnosis_code_2", "procedure_code_1", "hcpcs_code", "revenue_code",
            "place_of_service"]
    return pl.DataFrame(rows, schema={c: (pl.Date if c == "claim_from_date" else pl.String) for c in cols}, orient="row")


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns)


def test_claim_events_match_the_reference():
    claims, codes = _claims().lazy(), _codes()
    got = extract.claim_events(claims, codes).collect()
    want = claim_events(claims, codes).collect()
    assert got.schema == want.schema
    assert _sorted(got).equals(_sorted(want))
    tags = set(got.select("member_id", "value_set", "code").iter_rows())
    # reasoned from the codes above
    assert {("m1", "DIAB", "E11.9"), ("m1", "DIAB_EXACT", "E11.9"), ("m1", "VISIT", "99213"), ("m1", "ED", "0450"), ("m1", "ED", "23")} <= tags
    assert {("m2", "CANCER", "C18.4"), ("m2", "CANCER", "C184"), ("m2", "SURG", "0DTJ0ZZ"), ("m2", "G_SCREEN", "G0444"), ("m3", "DIAB", "E10.9")} <= tags
    assert not any(m in ("m4", "m5") for m, _, _ in tags)
    assert got.height == got.unique().height == 10   # C184 matches CANCER twice (C18*, C184*): one row


def test_code_map_tags_each_code_once_per_value_set():
    vocabulary = pl.Series(["E11.9", "C184", "C18.4", "E10.9", "I10", "E1", "C184"])
    got = extract._code_map(vocabulary, "ICD10CM", _codes())
    # reasoned from _codes(): E11.9 is in DIAB (E11*) and DIAB_EXACT (exact); C184 is under CANCER's C18*
    # and C184* (one row); C18.4 under C18* only; E10.9 exact DIAB; I10 and E1 in no set; the repeated
    # C184 of the vocabulary changes nothing
    assert got.rows() == [("C18.4", "CANCER"), ("C184", "CANCER"), ("E10.9", "DIAB"), ("E11.9", "DIAB"), ("E11.9", "DIAB_EXACT")]
    assert extract._code_map(vocabulary, "CPT", _codes()).height == 0


def test_claim_events_read_the_lines_through_final_from(tmp_path):
    # the production path: final lines of a Parquet table, codes looked up in the whole used table
    lines = _claims().with_columns(claim_id=pl.Series([f"c{i}" for i in range(6)]), claim_version=pl.lit(1, dtype=pl.Int64),
                                   claim_status=pl.lit("paid"))
    m9 = lines.head(1).with_columns(member_id=pl.lit("m9"), claim_id=pl.lit("c9"))
    lines = pl.concat([
        lines,
        # m9's version 1 line has E11.5 (DIAB by E11*), a code no other line has; version 2 replaces it
        m9.with_columns(diagnosis_code_1=pl.lit("E11.5")),
        m9.with_columns(claim_version=pl.lit(2, dtype=pl.Int64), diagnosis_code_1=pl.lit("I10"), diagnosis_code_2=pl.lit(None, dtype=pl.String)),
    ])
    table, out = tmp_path / "lines.parquet", tmp_path / "adjudication.parquet"
    lines.with_row_index("_row", offset=1).write_parquet(table)
    extract.write_adjudication(pl.scan_parquet(table), out)
    final = extract.final_from(pl.scan_parquet(table), pl.scan_parquet(out))
    want = claim_events(final_claims(pl.scan_parquet(table)), _codes()).collect()
    got = extract.claim_events(final, _codes(), vocabulary_from=pl.scan_parquet(table)).collect()
    assert _sorted(got).equals(_sorted(want))
    assert _sorted(extract.claim_events(final, _codes()).collect()).equals(_sorted(want))
    # the superseded E11.5 gives no event; the version 2 line keeps only 99213, 0450 and 23 (I10 is in no set)
    assert sorted(got.filter(pl.col("member_id") == "m9")["code"].to_list()) == ["0450", "23", "99213"]


@pytest.mark.parametrize("system", ["CPT", "HCPCS", "ICD10CM"])
def test_each_system_alone_matches_the_reference(system):
    codes = _codes().filter(pl.col("code_system") == system)
    got = extract.claim_events(_claims().lazy(), codes).collect()
    want = claim_events(_claims().lazy(), codes).collect()
    assert _sorted(got).equals(_sorted(want)) and got.height > 0


def _random_claims(n: int, seed: int) -> pl.DataFrame:
    """Claim lines drawn at random from few members, days and codes (many repeats across lines and
    columns), with null member ids, null dates and null codes among them."""
    import random

    rng = random.Random(seed)
    members = [f"m{i:03d}" for i in range(40)] + [None]
    days = [date(2025, 1, 1) + timedelta(days=d) for d in (0, 1, 2, 200, 364)] + [None]
    dx = ["E11.9", "E10.9", "C18.4", "C184", "Z85.038", "I10", None]
    cpt = ["99213", "G0444", "9921", None]
    rows = [(rng.choice(members), rng.choice(days), rng.choice(dx), rng.choice(dx), rng.choice(["0DTJ0ZZ", None]), rng.choice(cpt),
             rng.choice(["0450", "0100", None]), rng.choice(["23", "11", None])) for _ in range(n)]
    cols = ["member_id", "claim_from_date", "diagnosis_code_1", "diagnosis_code_2", "procedure_code_1", "hcpcs_code", "revenue_code",
            "place_of_service"]
    return pl.DataFrame(rows, schema={c: (pl.Date if c == "claim_from_date" else pl.String) for c in cols}, orient="row")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_packed_hits_match_the_reference_with_null_members_and_dates(seed):
    # the distinct hits are found among packed integer keys (member position, day, code position);
    # null member ids and null dates are values of their own, as in the reference's distinct rows
    claims = _random_claims(2_000, seed)
    assert claims["member_id"].null_count() and claims["claim_from_date"].null_count()
    got = extract.claim_events(claims.lazy(), _codes()).collect()
    want = claim_events(claims.lazy(), _codes()).collect()
    assert got.schema == want.schema
    assert _sorted(got).equals(_sorted(want))
    assert got.filter(pl.col("member_id").is_null()).height and got.filter(pl.col("event_date").is_null()).height
    # the same lines numbered as a used table (from 1, with gaps), looked up through vocabulary_from
    numbered = claims.with_row_index("_row", offset=5).filter(pl.col("_row") % 7 != 0)
    final = numbered.filter(pl.col("_row") % 3 != 0).lazy()
    got = extract.claim_events(final, _codes(), vocabulary_from=numbered.lazy()).collect()
    assert _sorted(got).equals(_sorted(claim_events(final.drop("_row"), _codes()).collect()))


def test_packed_and_string_hits_agree_and_too_wide_keys_take_the_string_path(monkeypatch):
    claims = _random_claims(1_000, 4)
    want = _sorted(claim_events(claims.lazy(), _codes()).collect())
    calls = []
    string_hits = extract._string_hits
    monkeypatch.setattr(extract, "_string_hits", lambda *a: calls.append(1) or string_hits(*a))
    assert _sorted(extract.claim_events(claims.lazy(), _codes()).collect()).equals(want)
    assert not calls   # packed
    # keys wider than 64 bits (here: every field said to need 30 bits) are made distinct on the strings
    monkeypatch.setattr(extract, "_bits", lambda n: 30)
    assert _sorted(extract.claim_events(claims.lazy(), _codes()).collect()).equals(want)
    assert calls


@pytest.mark.parametrize("wide", [False, True])
def test_member_keys_are_positions_among_the_given_ids(monkeypatch, wide):
    # claim_event_parts(member_keys=ids): each event's member_key is the position of its member id among
    # the given sorted ids, null for an id not among them (a null id, or one left out here), on the
    # packed path and on the string path (keys too wide to pack)
    claims = _random_claims(1_000, 5)
    if wide:
        monkeypatch.setattr(extract, "_bits", lambda n: 30)
    ids = claims["member_id"].drop_nulls().unique().sort()
    ids = ids.filter(ids != ids[3])   # one member id not among the keys
    got = extract.events_by_value_set(extract.claim_event_parts(claims.lazy(), _codes(), member_keys=ids), member_key=True).collect()
    assert _sorted(got.drop("member_key")).equals(_sorted(claim_events(claims.lazy(), _codes()).collect()))
    known = got.filter(pl.col("member_id").is_in(ids.implode()))
    assert known.height and known["member_key"].null_count() == 0
    assert known.select((pl.lit(ids).gather(pl.col("member_key")) == pl.col("member_id")).all()).item()
    unknown = got.filter(~pl.col("member_id").is_in(ids.implode()) | pl.col("member_id").is_null())
    assert unknown.height and unknown["member_key"].null_count() == unknown.height


def test_member_keys_through_vocabulary_from_with_ids_not_among_them():
    # the lines of a used table (numbered from 5, with gaps) and its final lines: with member_keys the
    # packed member positions are the keys, the ids not among them (one left out, and the null id)
    # numbered after them; every event keeps its own member id and gets its key (null for those)
    claims = _random_claims(2_000, 6)
    numbered = claims.with_row_index("_row", offset=5).filter(pl.col("_row") % 7 != 0)
    final = numbered.filter(pl.col("_row") % 3 != 0).lazy()
    ids = claims["member_id"].drop_nulls().unique().sort()
    ids = ids.filter(ids != ids[7])
    parts = extract.claim_event_parts(final, _codes(), vocabulary_from=numbered.lazy(), member_keys=ids)
    got = extract.events_by_value_set(parts, member_key=True).collect()
    assert _sorted(got.drop("member_key")).equals(_sorted(claim_events(final.drop("_row"), _codes()).collect()))
    known = got.filter(pl.col("member_id").is_in(ids.implode()))
    assert known.height and known["member_key"].null_count() == 0
    assert known.select((pl.lit(ids).gather(pl.col("member_key")) == pl.col("member_id")).all()).item()
    unknown = got.filter(~pl.col("member_id").is_in(ids.implode()) | pl.col("member_id").is_null())
    assert unknown.filter(pl.col("member_id").is_null()).height and unknown.filter(pl.col("member_id").is_not_null()).height
    assert unknown["member_key"].null_count() == unknown.height
