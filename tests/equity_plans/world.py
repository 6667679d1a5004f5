"""A hand-built state-plan world whose every published number can be worked out by hand.

Members (measurement year 2025), each enrolled all year (one member-year of PQI90 denominator):

=====  ======  ======================  =======  ================  ===============================
state  race    payer                   members  PQI90 admissions  notes
=====  ======  ======================  =======  ================  ===============================
MD     White   commercial              100      20                20 with race imputed
MD     Black   medicaid                95       38                10 declined language (ASKU)
MD     Black   medicare_medicaid_dual  5        2                 a small cell (full duals)
NM     White   commercial              50       15                NM is not a program state
NM     Black   commercial              30       12
=====  ======  ======================  =======  ================  ===============================

So MD all-payer: White 20,000 and Black 40,000 admissions per 100,000 member-years (ratio 2,
difference 20,000); MD overall 60 / 200 = 30,000. Population: 280 members, 87 admissions. The public tables (rates,
completeness) are built by the real library functions from the same members, as a run would.

Duals have a Medicare and a Medicaid span; the member results carry the measure engine's own
``payer`` (the payer on the anchor date, duals under Medicare), ``line_of_business`` and
``dual_status`` columns, as real results do: the ``payer`` stratifier must not read them.
"""
from __future__ import annotations

from datetime import date

import polars as pl

from equity_pipeline.measures.spec import load_specs
from equity_pipeline.report.completeness import rel_completeness
from equity_pipeline.stratify import member_attributes, public_rates, strata_identities, stratified_counts

RACE = {"White": "2106-3", "Black": "2054-5", "Asian": "2028-9"}
COUNTY = {"MD": "24031", "NM": "35001"}
GROUPS = [("MD", "White", "commercial", 100, 20), ("MD", "Black", "medicaid", 95, 38), ("MD", "Black", "dual", 5, 2),
          ("NM", "White", "commercial", 50, 15), ("NM", "Black", "commercial", 30, 12)]
STRATIFIERS = ("race_ethnicity", "payer")


def build(year: int = 2025, groups: list[tuple[str, str, str, int, int]] = GROUPS) -> dict:
    """The world of the module docstring, or of ``groups`` (state, race, payer or ``dual``, members, admissions)."""
    members, spans, results = [], [], []
    n = 0
    for state, race, payer, count, events in groups:
        for i in range(count):
            n += 1
            mid = f"M{n:04d}"
            imputed = state == "MD" and race == "White" and i < 20
            declined_language = state == "MD" and payer == "medicaid" and i < 10
            members.append({"member_id": mid, "race_ethnicity_codes": RACE[race],
                            "race_ethnicity_source": "imputed" if imputed else "self_reported",
                            "language": "ASKU" if declined_language else "en", "interpreter_needed": None, "sex": "F",
                            "birth_date": date(1970, 1, 1), "county_fips": COUNTY[state]})
            dual = payer == "dual"
            spans += [{"member_id": mid, "payer": p, "line_of_business": "x", "dual_status": "full" if dual else "none",
                       "enrollment_start": date(year - 1, 1, 1), "enrollment_end": None}
                      for p in (("medicare", "medicaid") if dual else (payer,))]
            results.append({"member_id": mid, "measure_id": "PQI90", "measure_version": load_specs()["PQI90"].version, "submeasure": "all",
                            "period": str(year), "payer": "medicare" if dual else payer, "line_of_business": "x",
                            "dual_status": "full" if dual else "none", "in_denominator": True,
                            "numerator_value": 1.0 if i < events else 0.0, "denominator_value": 1.0})
    m = pl.DataFrame(members, schema={"member_id": pl.String, "race_ethnicity_codes": pl.String, "race_ethnicity_source": pl.String,
                                      "language": pl.String, "interpreter_needed": pl.Boolean, "sex": pl.String, "birth_date": pl.Date,
                                      "county_fips": pl.String})
    e = pl.DataFrame(spans, schema={"member_id": pl.String, "payer": pl.String, "line_of_business": pl.String, "dual_status": pl.String,
                                     "enrollment_start": pl.Date, "enrollment_end": pl.Date})
    r = pl.DataFrame(results)
    attrs = member_attributes(m.lazy(), year, enrollment=e.lazy())
    spec = load_specs()["PQI90"]
    counts = stratified_counts(r, attrs, STRATIFIERS)
    rates = public_rates(counts, {"PQI90": spec}, {"PQI90": "claims"}, strata_identities(r, attrs, STRATIFIERS))
    return {"members": m, "attributes": attrs, "results": {"PQI90": r}, "rates": rates,
            "completeness": rel_completeness(m, year), "specs": load_specs()}
