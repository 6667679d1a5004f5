"""Helpers for the bad-input corpus: one valid text row per input table, writers that control the
bytes of a CSV file (delimiter, line ending, encoding, BOM), and the checks every outcome must pass.

An input fault has exactly two acceptable outcomes (docs/failure-modes.md):

* **structural**: :class:`StructuralError`, one line, naming the file (and the column, and the row
  where one is known), carrying no data value, and nothing written for that table;
* **row**: the run goes on; the row is quarantined with a reason, and the table reconciles exactly:
  every ``_row`` 1..read is in exactly one of the used and quarantined files.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from equity_pipeline.errors import StructuralError
from equity_pipeline.io import ROW
from equity_pipeline.suites import TABLES, load_suite
from equity_pipeline.validation.ingest import REASONS, TableResult, ingest_table

RUN_DATE = "2026-11-22"
PARAMETERS = {"run_date": RUN_DATE, "valid_county_fips": ["25017", "25025", "06037", "36061"]}
MEMBER = "MBR-QX-0001"

#: distinctive values (PHI-like): no error message may quote them
PHI_VALUES = ("MBR-QX-0001", "Quinzella", "Vantongeren", "1957-03-19", "CLM-QX-000001", "RX-QX-000001")

#: one valid row per table, as text (a file holds text); every contract column, optional ones filled
VALID: dict[str, dict[str, str]] = {
    "members": {
        "member_id": MEMBER, "race_ethnicity_codes": "2106-3|2135-2", "race_ethnicity_source": "self_reported",
        "language": "es-MX", "interpreter_needed": "N", "disability": "N", "sex": "F", "birth_date": "1957-03-19", "death_date": "",
        "zip": "02139", "county_fips": "25017", "first_name": "Quinzella", "last_name": "Vantongeren",
    },
    "enrollment": {
        "member_id": MEMBER, "payer": "medicaid", "line_of_business": "medicaid_managed_care", "plan_id": "PLAN-7",
        "dual_status": "none", "enrollment_start": "2022-01-01", "enrollment_end": "2026-06-30",
    },
    "medical_claims": {
        "claim_id": "CLM-QX-000001", "claim_line": "1", "claim_version": "1", "claim_status": "paid", "member_id": MEMBER,
        "payer": "medicaid", "claim_type": "professional", "claim_from_date": "2025-03-01", "claim_thru_date": "2025-03-01",
        "admit_date": "", "discharge_date": "", "discharge_status": "", "bill_type": "", "place_of_service": "11",
        "revenue_code": "", "hcpcs_code": "77067", "hcpcs_modifier": "", "snomed_code": "", "diagnosis_code_1": "Z1231",
        **{f"diagnosis_code_{i}": "" for i in range(2, 13)}, **{f"procedure_code_{i}": "" for i in range(1, 7)},
        "drg_code": "", "billing_npi": "1234567893", "facility_ccn": "", "paid_amount": "120.00", "allowed_amount": "150.00",
    },
    "pharmacy_claims": {
        "claim_id": "RX-QX-000001", "claim_version": "1", "claim_status": "paid", "member_id": MEMBER, "payer": "medicaid",
        "ndc": "00093505601", "fill_date": "2025-05-02", "days_supply": "30", "quantity": "30", "prescriber_npi": "1234567893",
        "paid_amount": "12.50",
    },
    "sdoh_screenings": {
        "member_id": MEMBER, "screening_id": "SCR-1", "screening_date": "2025-04-10", "instrument": "ahc_hrsn",
        "question_code": "71802-3", "answer_code": "LA31993-1", "answer_value": "steady place", "setting": "outpatient",
        "facility_ccn": "220071",
    },
    "clinical_observations": {
        "member_id": MEMBER, "observation_date": "2025-06-01", "loinc_code": "4548-4", "value_numeric": "7.2",
        "unit": "%", "source_system": "ehr",
    },
    "providers": {
        "provider_id": "1234567893", "id_type": "npi", "provider_type": "primary_care", "is_primary_care": "true",
        "name": "Example Family Practice", "county_fips": "25017", "state": "MA",
    },
}

#: a free-text column per table whose value is kept as written (for the encoding cases)
TEXT_COLUMN = {
    "members": "first_name", "enrollment": "plan_id", "medical_claims": "claim_id", "pharmacy_claims": "claim_id",
    "sdoh_screenings": "answer_value", "clinical_observations": "unit", "providers": "name",
}
#: Latin-1 text none of whose bytes can continue a UTF-8 sequence, so the file cannot pass as UTF-8
LATIN1_TEXT = "Clínica São José"

assert set(VALID) == set(TABLES), "a new input table needs a valid row here"
for _t, _row in VALID.items():
    assert list(_row) == list(load_suite(_t).column_names), f"VALID[{_t!r}] must list the contract columns in order"


#: how row n of a table differs from row 1 (its key)
_DISTINCT = {
    "members": lambda n: {"member_id": f"MBR-QX-{n:04d}"},
    "enrollment": lambda n: {"enrollment_start": f"2022-01-{n:02d}"},
    "medical_claims": lambda n: {"claim_id": f"CLM-QX-{n:06d}"},
    "pharmacy_claims": lambda n: {"claim_id": f"RX-QX-{n:06d}"},
    "sdoh_screenings": lambda n: {"screening_id": f"SCR-{n}"},
    "clinical_observations": lambda n: {"observation_date": f"2025-06-{n:02d}"},
    "providers": lambda n: {"provider_id": npi(f"1{n:08d}")},
}


def npi(body: str) -> str:
    """The NPI with the 9-digit ``body`` and its Luhn check digit (over the 80840 prefix)."""
    total = 0
    for i, d in enumerate(int(c) for c in reversed("80840" + body)):
        d = 2 * d if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


assert npi("123456789") == VALID["providers"]["provider_id"] == "1234567893"  # the CMS example NPI


def row(table: str, n: int = 1, **changes: str | None) -> dict[str, str | None]:
    """The valid row of ``table`` made distinct by ``n`` (key columns get a suffix), with ``changes``."""
    out = dict(VALID[table])
    if n != 1:
        out.update(_DISTINCT[table](n))
    out.update(changes)
    return out


def csv_bytes(rows: list[dict], columns: list[str] | None = None, *, delimiter: str = ",", newline: str = "\n",
              encoding: str = "utf-8", bom: bool = False, header: list[str] | None = None) -> bytes:
    """A CSV file as bytes, written with Python's csv module (minimal quoting)."""
    columns = columns or list(rows[0])
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    w.writerow(header or columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    data = buf.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


@dataclass
class Outcome:
    result: TableResult
    used: pl.DataFrame
    quarantined: pl.DataFrame

    def reasons(self, file_row: int) -> list[str]:
        """Quarantine reasons of data row ``file_row`` (1-based), [] if the row was used."""
        hit = self.quarantined.filter(pl.col(ROW) == file_row)
        return hit[REASONS][0].split(";") if hit.height else []

    def used_row(self, file_row: int) -> dict | None:
        hit = self.used.filter(pl.col(ROW) == file_row)
        return hit.row(0, named=True) if hit.height else None


def known_members(ids=(MEMBER,)) -> pl.LazyFrame:
    return pl.LazyFrame({"member_id": list(ids)}, schema={"member_id": pl.String})


def ingest_bytes(tmp: Path, table: str, data: bytes, *, suffix: str = ".csv", known: pl.LazyFrame | None = None) -> Outcome:
    """Write ``data`` as ``<table><suffix>`` into a fresh input folder, ingest it, check reconciliation."""
    inp = tmp / "in"
    inp.mkdir(parents=True, exist_ok=True)
    (inp / f"{table}{suffix}").write_bytes(data)
    return ingest(tmp, table, known=known)


def ingest(tmp: Path, table: str, *, known: pl.LazyFrame | None = None, parameters: dict | None = None) -> Outcome:
    restricted = tmp / "restricted"
    if known is None and table != "members":
        known = known_members()
    result = ingest_table(table, tmp / "in", restricted, parameters=parameters or PARAMETERS, known_members=known)
    used = pl.read_parquet(restricted / "tables" / f"{table}.parquet")
    quarantined = pl.read_parquet(restricted / "quarantine" / f"{table}.parquet")
    assert_reconciles(result, used, quarantined)
    return Outcome(result, used, quarantined)


def assert_reconciles(result: TableResult, used: pl.DataFrame, quarantined: pl.DataFrame) -> None:
    """read == used + quarantined, in the counts and in the files, row by row."""
    assert result.read == result.used + result.quarantined
    assert used.height == result.used and quarantined.height == result.quarantined
    used_rows, q_rows = set(used[ROW].to_list()), set(quarantined[ROW].to_list())
    assert not used_rows & q_rows, "a row is both used and quarantined"
    assert used_rows | q_rows == set(range(1, result.read + 1)), "a row is missing or counted twice"
    reasons = quarantined[REASONS].to_list()
    assert all(r for r in reasons), "a quarantined row has no reason"
    counted = {rule for r in reasons for rule in r.split(";")}
    assert counted <= set(result.rule_counts), "a reason on a row is missing from the per-rule counts"
    for rule in counted:
        assert result.rule_counts[rule] == sum(rule in r.split(";") for r in reasons)


def structural_error(tmp: Path, table: str, data: bytes | None = None, *, suffix: str = ".csv",
                     known: pl.LazyFrame | None = None) -> StructuralError:
    """Ingest and expect a structural error; check its shape and that nothing was written for the table."""
    inp = tmp / "in"
    inp.mkdir(parents=True, exist_ok=True)
    if data is not None:
        (inp / f"{table}{suffix}").write_bytes(data)
    restricted = tmp / "restricted"
    try:
        ingest_table(table, inp, restricted, parameters=PARAMETERS,
                     known_members=known if known is not None or table == "members" else known_members())
    except StructuralError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, "the error must be one line"
        assert message.startswith(f"{table}"), message  # names the file first
        assert not any(v in message for v in PHI_VALUES), f"the error quotes a data value: {message}"
        assert not (restricted / "tables" / f"{table}.parquet").exists()
        assert not (restricted / "quarantine" / f"{table}.parquet").exists()
        return exc
    raise AssertionError(f"{table}: expected a structural error")
