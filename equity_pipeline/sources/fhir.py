"""FHIR R4 -> canonical tables.

Input: a folder of ``.json`` files (a Bundle of any type, e.g. Synthea's transaction bundles, or a
single resource) and/or Bulk Data ``.ndjson`` files (one resource per line, usually one resource
type per file). Plain JSON parsing with explicit field paths; no FHIR model library.

Every resource read is mapped or quarantined with a reason; the reconciliation is keyed by resource
type (for Bulk Data, one type is one file), and each input file is listed with its SHA-256.

* Patient -> members: US Core race and ethnicity extensions (``ombCategory`` and ``detailed``
  codings; ``text`` only when there is no coding), ``gender``, ``birthDate``, ``deceasedDateTime``,
  the home address (ZIP; county from ``address.district`` + state, else the ZIP's primary county),
  preferred ``communication.language`` (BCP 47).
* Coverage -> enrollment (period, payer category from the Source of Payment Typology code or the
  payer name). Without Coverage resources (Synthea bundles have none), spans are derived from
  ExplanationOfBenefit ``billablePeriod`` + payer, with a warning.
* Encounter (+ Procedure, Condition) -> medical_claims: one claim per encounter, SNOMED codes in
  ``snomed_code``; Claim gives the claim type and payer, ExplanationOfBenefit the payment.
* Observation -> clinical_observations (LOINC + valueQuantity, and quantity components such as
  blood pressure) and sdoh_screenings (PRAPARE / AHC HRSN items, standalone or as panel components).

Dates are the date as written in the resource (its local calendar date, no time-zone shift).

Bulk Data files are read in batches of :data:`BATCH_LINES` lines; every resource is spooled by type to
a temporary file and each type mapped in batches (see :func:`convert`). A bundle is one JSON document
and is parsed whole, one file at a time.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

import polars as pl

from equity_pipeline.sources.common import (
    Reconciliation,
    SpilledTable,
    county_fips_from_name,
    county_from_zip,
    encounter_classes,
    fhir_encounter_classes,
    instrument_for,
    language_tag,
    normalise_zip,
    payer_category,
    prapare_items,
    race_ethnicity_codes,
    scored_questions,
    sdoh_answer_code,
    short_id,
    strip_name_digits,
)

CDC_REC = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
BCP47 = "urn:ietf:bcp:47"
SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
PRAPARE_PANEL = "93025-5"
AHC_PANELS = {"96777-8", "97023-6"}
LANGUAGE_ITEM = "54899-0"
DECLINE_ANSWER = "LA30122-8"
GENDER = {"male": "M", "female": "F", "other": "X", "unknown": "U"}
MAPPED_TYPES = {"Patient", "Coverage", "Encounter", "Procedure", "Condition", "Observation", "Claim", "ExplanationOfBenefit", "Immunization"}
#: lines (resources) per batch: a Bulk Data .ndjson file is read, and every resource type mapped, in
#: batches of at most this many resources; tests set it small
BATCH_LINES = 10_000


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _resources(input_dir: Path, recon: Reconciliation) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file name, position, resource) for every resource in the folder's .json / .ndjson files."""
    files = sorted(p for p in input_dir.iterdir() if p.is_file() and (p.suffix in (".json", ".ndjson")))
    if not files:
        recon.warn("no_fhir_files", "no .json or .ndjson files in the input folder")
    for number, path in enumerate(files, start=1):
        # Bulk Data files are named by resource type; other names (Synthea: <given>_<family>_<id>.json)
        # may carry PHI, so the manifest lists them by position and hash only
        label = path.name if path.suffix == ".ndjson" else f"json file {number} of {len(files)}"
        n = 0
        if path.suffix == ".ndjson":
            with path.open(encoding="utf-8-sig") as fh:
                i = 0
                for batch in _batches(fh):
                    for line in batch:
                        i += 1
                        if not line.strip():
                            continue
                        try:
                            res = json.loads(line)
                        except json.JSONDecodeError:
                            recon.record("unparseable", "invalid_json_line")
                            continue
                        n += 1
                        yield path.name, i, res
        else:
            try:
                doc = json.loads(path.read_text(encoding="utf-8-sig"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                recon.record("unparseable", "invalid_json_file")
                recon.add_input(path, label=label, resources=0)
                continue
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                for i, entry in enumerate(doc.get("entry") or [], start=1):
                    res = entry.get("resource") if isinstance(entry, dict) else None
                    if isinstance(res, dict):
                        n += 1
                        yield path.name, i, res
                    else:
                        recon.record("Bundle.entry", "entry_without_resource")
            elif isinstance(doc, dict) and doc.get("resourceType"):
                n += 1
                yield path.name, 1, doc
            else:
                recon.record("unparseable", "not_a_fhir_resource")
        recon.add_input(path, label=label, resources=n)


def _batches(lines: Iterable[str]) -> Iterator[list[str]]:
    """Lines in batches of at most :data:`BATCH_LINES` (a Bulk Data file holds one resource a line)."""
    it = iter(lines)
    while batch := list(islice(it, BATCH_LINES)):
        yield batch


class _Spool:
    """The resources read, by type, in reading order, in owner-only temporary NDJSON files (one line
    per resource: file name, position, resource), so that each type is mapped in batches of
    :data:`BATCH_LINES` after the types it depends on (claims after encounters, ...) without holding
    every resource in memory. Removed by :meth:`discard`."""

    def __init__(self) -> None:
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix=".fhir."))  # mode 0700
        self.paths: dict[str, Path] = {}
        self.counts: dict[str, int] = {}
        self._open: dict[str, IO[str]] = {}

    def add(self, fname: str, pos: int, res: dict[str, Any]) -> None:
        rtype = str(res.get("resourceType"))
        fh = self._open.get(rtype)
        if fh is None:
            self.paths[rtype] = self.folder / f"type-{len(self.paths):04d}.ndjson"
            fh = self._open[rtype] = self.paths[rtype].open("w", encoding="utf-8")
            self.counts[rtype] = 0
        fh.write(json.dumps([fname, pos, res], ensure_ascii=False) + "\n")
        self.counts[rtype] += 1

    def close(self) -> None:
        for fh in self._open.values():
            fh.close()
        self._open.clear()

    def types(self) -> list[str]:
        return list(self.paths)

    def batches(self, rtype: str) -> Iterator[list[tuple[str, int, dict[str, Any]]]]:
        if rtype not in self.paths:
            return
        with self.paths[rtype].open(encoding="utf-8") as fh:
            for batch in _batches(fh):
                yield [tuple(json.loads(line)) for line in batch]

    def items(self, rtype: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
        for batch in self.batches(rtype):
            yield from batch

    def discard(self) -> None:
        import shutil

        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# field helpers (explicit paths)
# ---------------------------------------------------------------------------------------------
def ref_id(ref: dict[str, Any] | None) -> str | None:
    """Resource id from a Reference: 'Patient/abc', 'urn:uuid:abc' or a full URL ending in /abc."""
    if not isinstance(ref, dict):
        return None
    value = ref.get("reference")
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("urn:uuid:"):
        return value[len("urn:uuid:"):]
    if "?" in value or value.startswith("#"):
        return None
    return value.rstrip("/").split("/")[-1]


def codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def code_in(concept: dict[str, Any] | None, system: str) -> str | None:
    for c in codings(concept):
        if c.get("system") == system and c.get("code"):
            return str(c["code"])
    return None


def date_of(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and value else None


def _ext(resource: dict[str, Any], suffix: str) -> dict[str, Any] | None:
    for e in resource.get("extension") or []:
        if isinstance(e, dict) and str(e.get("url", "")).endswith(suffix):
            return e
    return None


def _race_part(resource: dict[str, Any], suffix: str) -> tuple[list[str], list[str], bool]:
    """(CDC REC / null-flavour codes, text, extension present) of a US Core race or ethnicity extension."""
    ext = _ext(resource, suffix)
    if ext is None:
        return [], [], False
    codes, texts = [], []
    for sub in ext.get("extension") or []:
        url = sub.get("url")
        if url in ("ombCategory", "detailed"):
            vc = sub.get("valueCoding") or {}
            if vc.get("system") == CDC_REC and vc.get("code"):
                codes.append(str(vc["code"]))
            elif vc.get("system") == NULL_FLAVOR and vc.get("code") in ("ASKU", "UNK"):
                codes.append(str(vc["code"]))
        elif url == "text" and sub.get("valueString"):
            texts.append(str(sub["valueString"]))
    return codes, texts, True


# ---------------------------------------------------------------------------------------------
# resource mappers: each returns (rows, reason)
# ---------------------------------------------------------------------------------------------
def map_patient(p: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    pid = p.get("id")
    if not pid:
        return None, "missing_id"
    race_codes, race_text, _ = _race_part(p, "us-core-race")
    eth_codes, eth_text, _ = _race_part(p, "us-core-ethnicity")
    if not race_codes and race_text:
        mapped, reason = race_ethnicity_codes(race_text, [])
        if reason:
            return None, "unmapped_race_text"
        race_codes = [c for c in mapped.split("|") if c != "UNK"]
    if not eth_codes and eth_text:
        mapped, reason = race_ethnicity_codes([], eth_text)
        if reason:
            return None, "unmapped_ethnicity_text"
        eth_codes = [c for c in mapped.split("|") if c != "UNK"]
    real = [c for c in dict.fromkeys(race_codes + eth_codes) if c not in ("ASKU", "UNK")]
    if real:
        re_codes = "|".join(real)
    elif "ASKU" in race_codes + eth_codes:
        re_codes = "ASKU"
    else:
        re_codes = "UNK"
    gender = p.get("gender")
    sex = GENDER.get(gender, None) if gender else "U"
    if sex is None:
        return None, "unmapped_sex"
    addresses = [a for a in p.get("address") or [] if isinstance(a, dict)]
    home = next((a for a in addresses if a.get("use") == "home" and not (a.get("period") or {}).get("end")), None)
    addr = home or next((a for a in addresses if not (a.get("period") or {}).get("end")), None) or (addresses[0] if addresses else {})
    zip5 = normalise_zip(addr.get("postalCode"))
    state = addr.get("state")
    county = None
    if addr.get("district"):
        county = county_fips_from_name(addr["district"], state or "")
        if county is None:
            return None, "unknown_county"
    elif zip5:
        county = county_from_zip(zip5, state)
    lang = None
    comms = [c for c in p.get("communication") or [] if isinstance(c, dict)]
    comms.sort(key=lambda c: not c.get("preferred", False))
    for c in comms:
        concept = c.get("language") or {}
        tag = code_in(concept, BCP47) or next((str(x["code"]) for x in codings(concept) if x.get("code")), None)
        lang = language_tag(tag) if tag else language_tag(concept.get("text"))
        if lang:
            break
    names = [n for n in p.get("name") or [] if isinstance(n, dict)]
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = (name.get("given") or [None])[0]
    return {
        "member_id": str(pid),
        "race_ethnicity_codes": re_codes,
        "race_ethnicity_source": "unknown" if re_codes == "UNK" else "self_reported",
        "language": lang,
        "sex": sex,
        "birth_date": p.get("birthDate"),
        "death_date": date_of(p.get("deceasedDateTime")),
        "zip": zip5,
        "county_fips": county,
        "first_name": strip_name_digits(given),
        "last_name": strip_name_digits(name.get("family")),
    }, None


def _payer_from_coverage(cov: dict[str, Any]) -> tuple[str | None, str | None]:
    sopt = code_in(cov.get("type"), SOPT)
    if sopt:
        first = sopt[0]
        return {"1": ("medicare", "none"), "2": ("medicaid", "none"), "5": ("commercial", "none"), "6": ("commercial", "none"),
                "8": ("none", None)}.get(first, (None, None))
    for name in [p.get("display") for p in cov.get("payor") or [] if isinstance(p, dict)] + [(cov.get("type") or {}).get("text")]:
        category, dual = payer_category(name)
        if category:
            return category, dual
    return None, None


def _spans(member: str, category: str, dual: str | None, start: str | None, end: str | None, plan: str | None) -> list[dict[str, Any]]:
    if category == "none":
        return []
    payers = ["medicare", "medicaid"] if category == "dual" else [category]
    return [{"member_id": member, "payer": p, "plan_id": plan, "dual_status": dual, "enrollment_start": start, "enrollment_end": end} for p in payers]


def map_coverage(cov: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    member = ref_id(cov.get("beneficiary")) or ref_id(cov.get("subscriber"))
    if not member:
        return [], "missing_beneficiary"
    category, dual = _payer_from_coverage(cov)
    if category is None:
        return [], "unmapped_payer"
    period = cov.get("period") or {}
    if not period.get("start"):
        return [], "missing_period_start"
    return _spans(member, category, dual, date_of(period.get("start")), date_of(period.get("end")), cov.get("id")), None


def _answer(holder: dict[str, Any], instrument: str, question: str) -> tuple[str | None, str | None, str | None]:
    """(answer_code, answer_value, reason) of an observation or component holding an SDOH answer."""
    vcc = holder.get("valueCodeableConcept")
    if isinstance(vcc, dict):
        code = code_in(vcc, LOINC)
        if code:
            return ("ASKU" if code == DECLINE_ANSWER else code), None, None
        text = vcc.get("text") or next((c.get("display") for c in codings(vcc) if c.get("display")), None)
        mapped = sdoh_answer_code(instrument, question, text)
        if mapped:
            return mapped, None, None
        return None, None, "unmapped_sdoh_answer"
    if isinstance(holder.get("valueQuantity"), dict) and holder["valueQuantity"].get("value") is not None:
        return None, str(holder["valueQuantity"]["value"]), None
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if key in holder:
            text = str(holder[key])
            mapped = sdoh_answer_code(instrument, question, text)
            if mapped:
                return mapped, None, None
            if question in scored_questions(instrument):
                return None, None, "unmapped_sdoh_answer"
            return None, text, None
    return None, None, "no_answer_value"


def _language_from_answer(holder: dict[str, Any]) -> str | None:
    code = code_in(holder.get("valueCodeableConcept"), LOINC)
    if code == "LA43-5":
        return "en"
    if code == DECLINE_ANSWER:
        return "ASKU"
    text = (holder.get("valueCodeableConcept") or {}).get("text") or holder.get("valueString")
    tag = language_tag(text) if text and "other than" not in str(text).lower() else None
    return tag


def _keep_latest(answers: dict[str, tuple[str, str | None]], member: str, when: str, value: str | None) -> None:
    if member not in answers or when >= answers[member][0]:
        answers[member] = (when, value)


# ---------------------------------------------------------------------------------------------
def convert(input_dir: Path, recon: Reconciliation) -> dict[str, pl.DataFrame | SpilledTable]:
    """Read a folder of FHIR bundles / Bulk Data files and return the canonical tables.

    The resources are first spooled by type (:class:`_Spool`), then each type is mapped in batches
    of :data:`BATCH_LINES`; claim lines, clinical observations and screenings are spilled batch by
    batch (``common.SpilledTable``) and streamed into the canonical files. Held in memory: one
    member row per Patient, the enrollment spans, and one small record per encounter and claim
    (claim headers, payer, payment), which later types look up."""
    spool = _Spool()
    try:
        for fname, pos, res in _resources(input_dir, recon):
            spool.add(fname, pos, res)
        spool.close()
        return _convert(spool, recon)
    finally:
        spool.discard()


def _flush(rows: list[dict[str, Any]], spill: SpilledTable) -> None:
    if rows:
        spill.append(pl.DataFrame(rows, infer_schema_length=None))
        rows.clear()


def _convert(spool: _Spool, recon: Reconciliation) -> dict[str, pl.DataFrame | SpilledTable]:
    quarantine: dict[str, list[tuple[str, int, str]]] = defaultdict(list)

    def count(rtype: str, fname: str, pos: int, reason: str | None) -> None:
        recon.record(rtype, reason)
        if reason:
            quarantine[rtype].append((fname, pos, reason))

    for rtype in spool.types():
        if rtype not in MAPPED_TYPES:
            for fname, pos, _ in spool.items(rtype):
                count(rtype, fname, pos, "resource_type_not_mapped")

    # Patient -> members
    members, seen = [], set()
    for fname, pos, res in spool.items("Patient"):
        row, reason = map_patient(res)
        if row and row["member_id"] in seen:
            reason, row = "duplicate_patient_resource", None
        count("Patient", fname, pos, reason)
        if row:
            seen.add(row["member_id"])
            members.append(row)

    # Encounter -> claim headers
    classes, fhir_classes = encounter_classes(), fhir_encounter_classes()
    encounters: dict[str, dict[str, Any]] = {}
    bad_encounters: set[str] = set()
    for fname, pos, res in spool.items("Encounter"):
        eid, member = res.get("id"), ref_id(res.get("subject"))
        cls_code = (res.get("class") or {}).get("code")
        cls = fhir_classes.get(cls_code) if cls_code else None
        reason = None
        if not eid:
            reason = "missing_id"
        elif not member:
            reason = "missing_subject"
        elif cls is None:
            reason = "unmapped_encounter_class"
        elif not (res.get("period") or {}).get("start"):
            reason = "missing_period_start"
        count("Encounter", fname, pos, reason)
        if reason:
            if eid:
                bad_encounters.add(str(eid))
            continue
        period = res["period"]
        snomed = next((code_in(t, SNOMED) for t in res.get("type") or [] if code_in(t, SNOMED)), None)
        encounters[str(eid)] = {"member_id": member, "encounter_class": cls, "start": date_of(period.get("start")),
                                "end": date_of(period.get("end")) or date_of(period.get("start")), "snomed": snomed,
                                "claim_type": None, "payer": None, "paid": None}

    # Claim -> claim type and payer of its encounter
    claim_encounter: dict[str, str] = {}
    for fname, pos, res in spool.items("Claim"):
        ctype = code_in(res.get("type"), "http://terminology.hl7.org/CodeSystem/claim-type")
        enc_ids = [ref_id(r) for item in res.get("item") or [] for r in item.get("encounter") or []]
        enc_ids = [e for e in enc_ids if e]
        reason = None
        if ctype == "pharmacy":
            reason = "pharmacy_claim_no_ndc"
        elif ctype not in ("professional", "institutional"):
            reason = "claim_type_not_medical"
        elif not enc_ids:
            reason = "no_encounter_reference"
        elif enc_ids[0] in bad_encounters:
            reason = "encounter_quarantined"
        elif enc_ids[0] not in encounters:
            reason = "encounter_not_found"
        count("Claim", fname, pos, reason)
        if reason:
            continue
        enc = encounters[enc_ids[0]]
        enc["claim_type"] = enc["claim_type"] or ctype
        names = [(i.get("coverage") or {}).get("display") for i in res.get("insurance") or [] if isinstance(i, dict)]
        for name in names:
            category, _ = payer_category(name)
            if category in ("medicare", "medicaid", "commercial", "dual"):
                enc["payer"] = enc["payer"] or ("medicare" if category == "dual" else category)
                break
        if res.get("id"):
            claim_encounter[str(res["id"])] = enc_ids[0]

    # ExplanationOfBenefit -> payment; payer spans when there is no Coverage
    eob_spans: list[dict[str, Any]] = []
    coverages = spool.counts.get("Coverage", 0)
    for fname, pos, res in spool.items("ExplanationOfBenefit"):
        claim_id = ref_id(res.get("claim"))
        reason = None if claim_id in claim_encounter else "claim_not_mapped"
        count("ExplanationOfBenefit", fname, pos, reason)
        member = ref_id(res.get("patient"))
        if not coverages and member:
            contained = {c.get("id"): c for c in res.get("contained") or [] if isinstance(c, dict) and c.get("resourceType") == "Coverage"}
            for ins in res.get("insurance") or []:
                cov_ref = (ins.get("coverage") or {})
                cov = contained.get(str(cov_ref.get("reference", "")).lstrip("#"))
                category, dual = _payer_from_coverage(cov) if cov else payer_category(cov_ref.get("display"))
                period = res.get("billablePeriod") or {}
                if category and period.get("start"):
                    eob_spans.extend(_spans(member, category, dual, date_of(period.get("start")), date_of(period.get("end")), None))
                break
        if reason:
            continue
        payment = ((res.get("payment") or {}).get("amount") or {}).get("value")
        enc = encounters[claim_encounter[claim_id]]
        if payment is not None:
            enc["paid"] = round(float(enc["paid"] or 0) + float(payment), 2)

    # Coverage -> enrollment
    enrollment: list[dict[str, Any]] = []
    for fname, pos, res in spool.items("Coverage"):
        spans, reason = map_coverage(res)
        count("Coverage", fname, pos, reason)
        enrollment.extend(spans)
    if not coverages:
        enrollment = list({tuple(sorted(d.items())): d for d in eob_spans}.values())  # one span per member x payer x period
        recon.warn("enrollment_from_eob", "no Coverage resources: enrollment spans derived from ExplanationOfBenefit billablePeriod and payer "
                   f"({len(enrollment)} spans); this approximates coverage, it is not an eligibility file")

    # claim lines: encounter line, then procedures and conditions of the encounter
    # (spilled in batches; numbered within a claim in one lazy pass when written, see _claim_lines)
    headers = pl.DataFrame(
        [{"claim_id": k, "encounter_class": v["encounter_class"], "payer": v["payer"], "hdr_type": v["claim_type"]} for k, v in encounters.items()],
        schema={"claim_id": pl.String, "encounter_class": pl.String, "payer": pl.String, "hdr_type": pl.String},
    )
    claim_lines = recon.spill(lambda lf: _claim_lines(lf, headers))
    lines: list[dict[str, Any]] = []
    for eid, enc in encounters.items():
        lines.append({"claim_id": eid, "_kind": 0, "member_id": enc["member_id"], "claim_from_date": enc["start"],
                      "claim_thru_date": enc["end"], "snomed_code": enc["snomed"], "paid_amount": enc["paid"]})
        if len(lines) >= BATCH_LINES:
            _flush(lines, claim_lines)
    _flush(lines, claim_lines)
    for rtype, kind in (("Procedure", 1), ("Condition", 2)):
        for batch in spool.batches(rtype):
            for fname, pos, res in batch:
                member = ref_id(res.get("subject"))
                eid = ref_id(res.get("encounter"))
                code = code_in(res.get("code"), SNOMED)
                icd = code_in(res.get("code"), ICD10CM)
                if rtype == "Procedure":
                    when = date_of(res.get("performedDateTime")) or date_of((res.get("performedPeriod") or {}).get("start"))
                else:
                    when = date_of(res.get("onsetDateTime")) or date_of(res.get("recordedDate"))
                reason = None
                if not member:
                    reason = "missing_subject"
                elif eid and eid in bad_encounters:
                    reason = "encounter_quarantined"
                elif not code and not icd:
                    reason = "code_system_not_snomed"
                elif not when:
                    reason = "missing_date"
                if rtype == "Procedure" and not reason and res.get("status") in ("not-done", "entered-in-error"):
                    reason = f"status_{res['status'].replace('-', '_')}"
                count(rtype, fname, pos, reason)
                if reason:
                    continue
                if eid not in encounters:
                    recon.note(rtype, "no_encounter_own_claim")
                lines.append({"claim_id": eid if eid in encounters else (eid or "fhir-" + short_id(member, when, code or icd)), "_kind": kind,
                              "member_id": member, "claim_from_date": when, "claim_thru_date": when, "snomed_code": code,
                              "diagnosis_code_1": icd.replace(".", "") if icd and not code else None})
            _flush(lines, claim_lines)
    for fname, pos, _ in spool.items("Immunization"):
        count("Immunization", fname, pos, "cvx_not_in_contract")

    # Observation -> clinical_observations, sdoh_screenings, language fallback
    clinical, screenings = [], []
    clinical_spill, screening_spill = recon.spill(), recon.spill()
    lang_answers: dict[str, tuple[str, str | None]] = {}
    roles = prapare_items()
    for batch in spool.batches("Observation"):
        for fname, pos, res in batch:
            member = ref_id(res.get("subject"))
            when = date_of(res.get("effectiveDateTime")) or date_of((res.get("effectivePeriod") or {}).get("start")) or date_of(res.get("issued"))
            code = code_in(res.get("code"), LOINC)
            eid = ref_id(res.get("encounter"))
            if not member or not when or not code:
                count("Observation", fname, pos, "missing_subject" if not member else ("missing_date" if not when else "not_loinc"))
                continue
            setting = None
            if eid in encounters:
                setting = (classes.get(encounters[eid]["encounter_class"]) or {}).get("setting")
            panel_instrument = "prapare" if code == PRAPARE_PANEL else ("ahc_hrsn" if code in AHC_PANELS else None)
            produced, reason = 0, None
            if panel_instrument:
                sid = short_id(member, eid or when, panel_instrument)
                for comp in res.get("component") or []:
                    q = code_in(comp.get("code"), LOINC)
                    if not q:
                        continue
                    if q == LANGUAGE_ITEM:
                        _keep_latest(lang_answers, member, when, _language_from_answer(comp))
                        produced += 1
                        continue
                    if roles.get(q) in ("demographic", "address"):
                        recon.note("Observation", f"component_not_carried_{roles[q]}")
                        continue
                    a_code, a_value, a_reason = _answer(comp, panel_instrument, q)
                    if a_reason:
                        recon.note("Observation", f"component_{a_reason}")
                        continue
                    screenings.append({"member_id": member, "screening_id": sid, "screening_date": when, "instrument": panel_instrument,
                                       "question_code": q, "answer_code": a_code, "answer_value": a_value, "setting": setting})
                    produced += 1
                reason = None if produced else "no_component_mapped"
            elif code == LANGUAGE_ITEM:
                _keep_latest(lang_answers, member, when, _language_from_answer(res))
            elif (inst := instrument_for(code, answer_code=code_in(res.get("valueCodeableConcept"), LOINC),
                                         answer_text=(res.get("valueCodeableConcept") or {}).get("text"))):
                a_code, a_value, reason = _answer(res, inst, code)
                if not reason:
                    screenings.append({"member_id": member, "screening_id": short_id(member, eid or when, inst), "screening_date": when,
                                       "instrument": inst, "question_code": code, "answer_code": a_code, "answer_value": a_value, "setting": setting})
            elif roles.get(code) in ("demographic", "address"):
                reason = "demographic_item_patient_is_source" if roles[code] == "demographic" else "address_not_carried"
            elif isinstance(res.get("valueQuantity"), dict) and res["valueQuantity"].get("value") is not None:
                vq = res["valueQuantity"]
                clinical.append({"member_id": member, "observation_date": when, "loinc_code": code, "value_numeric": str(vq["value"]),
                                 "unit": vq.get("code") or vq.get("unit"), "source_system": "ehr"})
            elif res.get("component"):
                for comp in res["component"]:
                    q = code_in(comp.get("code"), LOINC)
                    vq = comp.get("valueQuantity")
                    if q and isinstance(vq, dict) and vq.get("value") is not None:
                        clinical.append({"member_id": member, "observation_date": when, "loinc_code": q, "value_numeric": str(vq["value"]),
                                         "unit": vq.get("code") or vq.get("unit"), "source_system": "ehr"})
                        produced += 1
                reason = None if produced else "no_quantity_component"
            elif "valueCodeableConcept" in res or "valueString" in res:
                reason = "coded_or_text_result_not_in_contract"
            else:
                reason = "no_value"
            count("Observation", fname, pos, reason)
        _flush(clinical, clinical_spill)
        _flush(screenings, screening_spill)

    # language: Patient.communication first; the PRAPARE answer when there is none
    for m in members:
        if not m["language"]:
            answer = lang_answers.get(m["member_id"])
            m["language"] = (answer[1] if answer and answer[1] else "UNK")
            if answer:
                recon.note("Patient", "language_from_prapare" if answer[1] else "language_prapare_not_named")

    for rtype, rows in quarantine.items():
        recon.quarantine_rows[rtype] = pl.DataFrame(rows, schema={"file": pl.String, "position": pl.Int64, "reason": pl.String}, orient="row")

    tables: dict[str, pl.DataFrame | SpilledTable] = {
        "members": pl.DataFrame(members, infer_schema_length=None) if members else pl.DataFrame(),
        "enrollment": pl.DataFrame(enrollment, infer_schema_length=None) if enrollment else pl.DataFrame(),
        "medical_claims": claim_lines if claim_lines.height else pl.DataFrame(),
    }
    if clinical_spill.height:
        tables["clinical_observations"] = clinical_spill
    if screening_spill.height:
        tables["sdoh_screenings"] = screening_spill
    return tables


def _claim_lines(lines: pl.LazyFrame, headers: pl.DataFrame) -> pl.LazyFrame:
    """All spilled claim lines with their encounter's header, numbered within each claim."""
    classes = encounter_classes()
    names = lines.collect_schema().names()
    lookup = lambda field: pl.col("encounter_class").replace_strict({k: v[field] for k, v in classes.items()}, default=None, return_dtype=pl.String)  # noqa: E731
    if "diagnosis_code_1" not in names:
        lines = lines.with_columns(diagnosis_code_1=pl.lit(None, dtype=pl.String))
    inpatient = pl.col("encounter_class") == "inpatient"
    return (
        lines.join(headers.lazy(), on="claim_id", how="left")
        .sort("claim_id", "_kind", "claim_from_date", "snomed_code", nulls_last=True, maintain_order=True)
        .with_columns(
            claim_line=(pl.int_range(pl.len()).over("claim_id") + 1).cast(pl.String),
            claim_version=pl.lit("1"),
            claim_status=pl.lit("paid"),
            claim_type=pl.coalesce(pl.col("hdr_type"), lookup("claim_type"), pl.lit("professional")),
            place_of_service=lookup("place_of_service"),
            bill_type=lookup("bill_type"),
            admit_date=pl.when(inpatient & (pl.col("_kind") == 0)).then(pl.col("claim_from_date")),
            discharge_date=pl.when(inpatient & (pl.col("_kind") == 0)).then(pl.col("claim_thru_date")),
            paid_amount=pl.col("paid_amount").cast(pl.String) if "paid_amount" in names else pl.lit(None, dtype=pl.String),
        )
    )
