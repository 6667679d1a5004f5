"""Independent hand count of BCS and COL on a raw Synthea export (plain polars + date arithmetic).

Written from the measure definitions (docs/measures.md), not from the engine: it reads the Synthea
CSV files directly (patients, payer_transitions + payers, procedures, conditions, observations,
encounters) and uses only Synthea's own SNOMED / LOINC codes:

BCS (measurement year Y): women 50-74 on Dec 31 of Y, alive on Dec 31 of Y, covered by any insurer
(not NO_INSURANCE) from Oct 1 of Y-2 to Dec 31 of Y with at most one gap of at most 45 days and
covered on Dec 31 of Y; no hospice encounter in Y and no bilateral mastectomy (17086001) by Dec 31
of Y. Numerator: a mammography procedure (71651007, 24623002) from Oct 1 of Y-2 to Dec 31 of Y.

COL (measurement year Y): adults 45-75 on Dec 31 of Y, alive, covered from Jan 1 of Y-1 to Dec 31 of
Y with at most two gaps of at most 45 days each and covered on Dec 31 of Y; excluded: hospice in
Y, colorectal cancer (363406005, 93761005, 109838007, 94260004) or total colectomy (26390003) by Dec
31 of Y. Numerator: FOBT (procedure 104435004 / 1015401000000102 or LOINC 57905-2) in Y, or
colonoscopy (73761001) from Jan 1 of Y-9, or flexible sigmoidoscopy (44441009) from Jan 1 of Y-4.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

MAMMOGRAPHY = {"71651007", "24623002"}
BILATERAL_MASTECTOMY = {"17086001"}
COLONOSCOPY = {"73761001"}
FOBT_PROCEDURE = {"104435004", "1015401000000102"}
FOBT_LOINC = {"57905-2"}
FLEX_SIG = {"44441009"}
COLORECTAL_CANCER = {"363406005", "93761005", "109838007", "94260004"}
TOTAL_COLECTOMY = {"26390003"}


def _csv(folder: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(folder / f"{name}.csv", infer_schema=False)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _covered_days(folder: Path) -> dict[str, set[date]]:
    payers = dict(_csv(folder, "payers").select("Id", "NAME").iter_rows())
    spans = _csv(folder, "payer_transitions")
    start_col = "START_DATE" if "START_DATE" in spans.columns else "START_YEAR"
    end_col = "END_DATE" if "END_DATE" in spans.columns else "END_YEAR"
    covered: dict[str, set[date]] = {}
    for pid, start, end, payer in spans.select("PATIENT", start_col, end_col, "PAYER").iter_rows():
        if payers.get(payer) == "NO_INSURANCE":
            continue
        s, e = _day(start), _day(end) or date(9999, 12, 30)
        days = covered.setdefault(pid, set())
        d = s
        while d <= min(e, date(2100, 1, 1)):
            days.add(d)
            d += timedelta(days=1)
    return covered


def _enrolled(days: set[date], start: date, end: date, max_gaps: int, max_gap_days: int) -> bool:
    """Gaps = runs of uncovered days inside [start, end]."""
    if end not in days:
        return False
    gaps, run, d = [], 0, start
    while d <= end:
        if d in days:
            if run:
                gaps.append(run)
            run = 0
        else:
            run += 1
        d += timedelta(days=1)
    if run:
        gaps.append(run)
    return len(gaps) <= max_gaps and all(g <= max_gap_days for g in gaps)


def _events(folder: Path) -> list[tuple[str, date, str]]:
    """(patient, date, code) from procedures, conditions and observations."""
    out = []
    for name, date_col in (("procedures", "START"), ("conditions", "START"), ("observations", "DATE")):
        for pid, when, code in _csv(folder, name).select("PATIENT", date_col, "CODE").iter_rows():
            out.append((pid, _day(when), code))
    return out


def _hospice(folder: Path, year: int) -> set[str]:
    enc = _csv(folder, "encounters")
    return {pid for pid, cls, start in enc.select("PATIENT", "ENCOUNTERCLASS", "START").iter_rows()
            if cls == "hospice" and _day(start).year == year}


def hand_count(folder: Path, year: int) -> dict[str, dict[str, object]]:
    """{'BCS': {...}, 'COL': {...}} with denominator / numerator member-id sets and counts."""
    end = date(year, 12, 31)
    patients = _csv(folder, "patients")
    covered = _covered_days(folder)
    events = _events(folder)
    hospice = _hospice(folder, year)
    people = [(pid, _day(b), _day(dd), sex) for pid, b, dd, sex in patients.select("Id", "BIRTHDATE", "DEATHDATE", "GENDER").iter_rows()]

    def had(pid: str, codes: set[str], start: date | None, stop: date) -> bool:
        return any(p == pid and c in codes and (start is None or d >= start) and d <= stop for p, d, c in events)

    bcs_den, bcs_num = set(), set()
    for pid, born, died, sex in people:
        if sex != "F" or not 50 <= _age(born, end) <= 74 or (died and died <= end):
            continue
        if not _enrolled(covered.get(pid, set()), date(year - 2, 10, 1), end, 1, 45):
            continue
        if pid in hospice or had(pid, BILATERAL_MASTECTOMY, None, end):
            continue
        bcs_den.add(pid)
        if had(pid, MAMMOGRAPHY, date(year - 2, 10, 1), end):
            bcs_num.add(pid)

    col_den, col_num = set(), set()
    for pid, born, died, _sex in people:
        if not 45 <= _age(born, end) <= 75 or (died and died <= end):
            continue
        if not _enrolled(covered.get(pid, set()), date(year - 1, 1, 1), end, 2, 45):
            continue
        if pid in hospice or had(pid, COLORECTAL_CANCER | TOTAL_COLECTOMY, None, end):
            continue
        col_den.add(pid)
        if (had(pid, FOBT_PROCEDURE | FOBT_LOINC, date(year, 1, 1), end) or had(pid, COLONOSCOPY, date(year - 9, 1, 1), end)
                or had(pid, FLEX_SIG, date(year - 4, 1, 1), end)):
            col_num.add(pid)
    return {
        "BCS": {"denominator": len(bcs_den), "numerator": len(bcs_num), "den_ids": bcs_den, "num_ids": bcs_num},
        "COL": {"denominator": len(col_den), "numerator": len(col_num), "den_ids": col_den, "num_ids": col_num},
    }


# ---------------------------------------------------------------------------------------------
# SDOH_SCREEN and CDF denominators: an outpatient visit written with Synthea's SNOMED encounter codes
# ---------------------------------------------------------------------------------------------
# The encounter types Synthea writes (encounters.csv CODE) that are office / preventive visits,
# listed here from docs/sources.md ("Synthea encounter codes in the visit value sets"), not read
# from the value-set files: 185349003 check-up and 439740005 post-operative follow-up (VSAC Office
# Visit), 86013001 periodic reevaluation of a healthy individual (VSAC Annual Wellness Visit),
# 162673000 general examination (adult wellness) and 410620009 well child visit (child wellness),
# 185347001 / 185345009 encounter for problem / symptom, 185389009 / 390906007 follow-up.
OUTPATIENT_VISIT = {"185349003", "439740005", "86013001", "162673000", "410620009",
                    "185347001", "185345009", "185389009", "390906007"}


def visit_denominators(folder: Path, year: int) -> dict[str, set[str]]:
    """Denominator member-id sets of SDOH_SCREEN and CDF (12-17, 18+) for measurement year ``year``,
    and the members who would be in them but died by Dec 31 (``<measure> deceased``).

    SDOH_SCREEN: 18 or older on Dec 31 of Y, alive on Dec 31 of Y, at least one encounter in Y with
    a code in :data:`OUTPATIENT_VISIT` (no enrollment requirement). CDF: 12 or older on Jan 1 of Y
    (rows 12-17 and 18+ by that age), alive on Dec 31 of Y, an outpatient visit in Y; its
    depression/bipolar exclusion is an ICD-10-CM value set, which Synthea's SNOMED conditions
    cannot meet, so it removes no one here."""
    begin, end = date(year, 1, 1), date(year, 12, 31)
    enc = _csv(folder, "encounters")
    visited = {pid for pid, code, start in enc.select("PATIENT", "CODE", "START").iter_rows()
               if code in OUTPATIENT_VISIT and begin <= _day(start) <= end}
    sdoh, cdf_teen, cdf_adult, sdoh_dead, cdf_dead = set(), set(), set(), set(), set()
    for pid, born, died in _csv(folder, "patients").select("Id", "BIRTHDATE", "DEATHDATE").iter_rows():
        born, died = _day(born), _day(died)
        if pid not in visited:
            continue
        dead = died is not None and died <= end
        age_begin = _age(born, begin)
        if _age(born, end) >= 18:
            (sdoh_dead if dead else sdoh).add(pid)
        if age_begin >= 12:
            (cdf_dead if dead else cdf_teen if age_begin <= 17 else cdf_adult).add(pid)
    return {"SDOH_SCREEN": sdoh, "CDF 12-17": cdf_teen, "CDF 18+": cdf_adult,
            "SDOH_SCREEN deceased": sdoh_dead, "CDF deceased": cdf_dead}
