"""Provider directory: NPIs (valid Luhn check digit) and facility CCNs per county, and the providers table."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .geography import CCN_STATE_CODE, Geography

# CCN facility-number ranges (last four characters) by facility type.
CCN_RANGES = {
    "hospital": (1, 879),
    "critical_access_hospital": (1300, 1399),
    "hospice": (1500, 1799),
    "fqhc": (1800, 1989),
    "snf": (5000, 6499),
}


def npi_check_digit(first9: np.ndarray) -> np.ndarray:
    """NPI check digit: Luhn over '80840' + the first nine digits (vectorised over int64 values)."""
    digits = np.stack([(first9 // 10 ** (8 - i)) % 10 for i in range(9)], axis=1)  # left to right
    payload = np.concatenate([np.tile(np.array([8, 0, 8, 4, 0]), (len(first9), 1)), digits], axis=1)
    # double every other digit starting from the rightmost payload digit
    doubled = payload[:, ::-1].copy()
    doubled[:, 0::2] *= 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = doubled.sum(axis=1)
    return (10 - total % 10) % 10


def make_npis(rng: np.random.Generator, n: int, taken: set[int]) -> np.ndarray:
    """``n`` distinct 10-digit NPIs (as strings) with valid check digits, avoiding ``taken`` bases."""
    out: list[int] = []
    while len(out) < n:
        first = np.where(rng.random(n) < 0.8, 1, 2).astype(np.int64)
        base = first * 10**8 + rng.integers(0, 10**8, size=n, dtype=np.int64)
        for b in base.tolist():
            if b not in taken:
                taken.add(b)
                out.append(b)
                if len(out) == n:
                    break
    first9 = np.array(out, dtype=np.int64)
    full = first9 * 10 + npi_check_digit(first9)
    return full.astype(str)


def npi_is_valid(npi: str) -> bool:
    """Scalar NPI check (10 digits, first 1/2, Luhn with prefix 80840)."""
    if len(npi) != 10 or not npi.isdigit() or npi[0] not in "12":
        return False
    return int(npi_check_digit(np.array([int(npi[:9])], dtype=np.int64))[0]) == int(npi[9])


@dataclass
class RolePool:
    """Providers of one role, grouped by county: county c uses ids[offsets[c]:offsets[c+1]]."""

    ids: np.ndarray
    offsets: np.ndarray
    ccns: np.ndarray | None = None  # facilities: aligned CCN per NPI

    def positions(self, county: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lo = self.offsets[county]
        cnt = self.offsets[county + 1] - lo
        return lo + np.floor(rng.random(len(county)) * cnt).astype(np.int64)

    def pick(self, county: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.ids[self.positions(county, rng)]


@dataclass
class Providers:
    table: pl.DataFrame           # the providers output table (all strings)
    roles: dict[str, RolePool]


ROLE_SPECS = {
    # role: (provider_type, is_primary_care, id kind, members per provider, minimum per county, name suffix)
    "pcp": ("primary_care", True, "npi", 1500, 3, "Family Medicine"),
    "pediatrics": ("primary_care", True, "npi", 6000, 1, "Pediatrics"),
    "specialist": ("specialist", False, "npi", 3000, 3, "Specialty Associates"),
    "radiology": ("specialist", False, "npi", 40000, 1, "Imaging Associates"),
    "ed_group": ("specialist", False, "npi", 60000, 1, "Emergency Physicians"),
    "hospitalist": ("specialist", False, "npi", 20000, 1, "Hospitalist Group"),
}


def build_providers(geo: Geography, members: int, rng: np.random.Generator) -> Providers:
    """Directory sized for ``members`` members spread over ``geo`` (deterministic for a given rng)."""
    taken: set[int] = set()
    rows: list[dict[str, object]] = []
    roles: dict[str, RolePool] = {}
    expected = np.maximum(geo.weight * members, 1.0)

    for role, (ptype, is_pc, _kind, per, minimum, suffix) in ROLE_SPECS.items():
        counts = np.maximum(minimum, np.ceil(expected / per)).astype(int)
        ids = make_npis(rng, int(counts.sum()), taken)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        roles[role] = RolePool(ids, offsets)
        for c in range(geo.n_counties):
            for j, npi in enumerate(ids[offsets[c]:offsets[c + 1]]):
                rows.append(dict(provider_id=npi, id_type="npi", provider_type=ptype, is_primary_care=is_pc,
                                 name=f"{geo.short_name(c)} {suffix} {j + 1}", county_fips=geo.county_fips[c],
                                 state=geo.county_state[c]))

    # Facilities: an organisational NPI and a CCN each.
    ccn_used: dict[tuple[str, str], set[int]] = {}

    def new_ccn(state: str, ftype: str) -> str:
        lo, hi = CCN_RANGES[ftype]
        used = ccn_used.setdefault((state, ftype), set())
        while True:
            n = int(rng.integers(lo, hi + 1))
            if n not in used:
                used.add(n)
                return f"{CCN_STATE_CODE[state]}{n:04d}"

    facility_names = {
        "hospital": ("General Hospital", "Medical Center", "Regional Hospital", "Memorial Hospital"),
        "critical_access_hospital": ("Community Hospital",),
        "fqhc": ("Community Health Center",),
        "snf": ("Nursing and Rehabilitation Center",),
        "hospice": ("Hospice",),
    }
    for role in ("hospital", "fqhc", "snf", "hospice"):
        ids: list[str] = []
        ccns: list[str] = []
        offsets = [0]
        for c in range(geo.n_counties):
            pop = int(geo.population[c])
            st = str(geo.county_state[c])
            if role == "hospital":
                types = ["critical_access_hospital"] if pop < 80_000 else ["hospital"] * (1 + (pop > 300_000) + (pop > 800_000))
            elif role == "fqhc":
                types = ["fqhc"] * (1 + (pop > 500_000))
            elif role == "snf":
                types = ["snf"] * (1 + (pop > 400_000))
            else:
                types = ["hospice"]
            for j, ftype in enumerate(types):
                npi = make_npis(rng, 1, taken)[0]
                ccn = new_ccn(st, ftype)
                names = facility_names[ftype]
                name = f"{geo.short_name(c)} {names[j % len(names)]}" + (f" {j + 1}" if j >= len(names) else "")
                ptype = ftype if ftype in ("hospital", "critical_access_hospital", "fqhc", "snf") else "other"
                for pid, kind in ((npi, "npi"), (ccn, "ccn")):
                    rows.append(dict(provider_id=pid, id_type=kind, provider_type=ptype,
                                     is_primary_care=(ftype == "fqhc"), name=name,
                                     county_fips=geo.county_fips[c], state=st))
                ids.append(npi)
                ccns.append(ccn)
            offsets.append(len(ids))
        roles[role] = RolePool(np.array(ids), np.array(offsets), np.array(ccns))

    # Reference laboratories: two per state, shared by all the state's counties.
    lab_ids: list[str] = []
    lab_offsets = [0]
    state_labs: dict[str, list[str]] = {}
    for c in range(geo.n_counties):
        st = str(geo.county_state[c])
        if st not in state_labs:
            state_labs[st] = list(make_npis(rng, 2, taken))
            for j, npi in enumerate(state_labs[st]):
                rows.append(dict(provider_id=npi, id_type="npi", provider_type="other", is_primary_care=False,
                                 name=f"{st} Reference Laboratory {j + 1}", county_fips=geo.county_fips[c], state=st))
        lab_ids.extend(state_labs[st])
        lab_offsets.append(len(lab_ids))
    roles["lab"] = RolePool(np.array(lab_ids), np.array(lab_offsets))

    table = pl.DataFrame(rows, schema={"provider_id": pl.String, "id_type": pl.String, "provider_type": pl.String,
                                       "is_primary_care": pl.Boolean, "name": pl.String, "county_fips": pl.String,
                                       "state": pl.String})
    table = table.with_columns(
        pl.when(pl.col("is_primary_care")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("is_primary_care")
    ).sort("id_type", "provider_id")
    return Providers(table=table, roles=roles)
