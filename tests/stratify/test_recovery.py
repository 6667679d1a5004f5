"""Suppression must survive an attacker who reads everything published.

The attacker takes the public tables of a run (``public/rates``, ``disparities``,
``disparity_summary``, ``rates_imputed_race``, ``race_concordance``, ``standardized_rates``) plus,
as a worst case, the exact cross-stratifier sums that exist in the data (``strata_identities``,
restricted: a reader who knows which counties make a rurality class knows most of them) and the
expected-count models (``counts/standardization.json``). For every suppressed cell it bounds the
hidden denominator, numerator and complement with a mixed-integer program (scipy ``milp``/HiGHS):

* integer counts, ``0 <= numerator <= denominator``;
* every additive margin: strata -> overall of each stratifier, states -> population, sub-measure
  rows -> ``all``, and the cross-stratifier identities;
* what ``suppression_reason`` tells, if it tells the kind: a primary cell has a checked count of
  1-10 (disjunction with binaries); a complementary cell has none (each is 0 or at least 11). The
  public tables give one reason for every suppressed cell (``suppression.PUBLIC_REASON``), which
  tells nothing; the hand-built tables below show what the kinds would leak;
* the imputed-race table: its categories' effective counts (published rounded) add up to the
  unit's overall row; suppressed categories are free non-negative reals;
* the standardised table: E of a published row is O / (O/E); E of the overall row minus the
  published strata is the E of the suppressed strata, each between ``p_min`` and ``p_max`` times
  its denominator (the model's fitted probabilities).

A count is *recovered* when its minimum equals its maximum. None may be. (Rates and intervals of
published cells are functions of their published counts; the disparity tables only use published
strata, which the first test checks, so they add no constraint.)
"""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from equity_pipeline import pipeline
from equity_pipeline.imputation import SUPPRESSED_REASON
from equity_pipeline.stratify import KEY
from equity_pipeline.suppression import COMPLEMENTARY_REASON, PRIMARY_REASON, PUBLIC_REASON, told_reasons

SMALL = 10          # a primary cell has a checked count in 1..SMALL
PRIMARY, COMPLEMENTARY = "small cell (1-10)", "complementary"   # the restricted reasons of suppression.suppress
assert (PRIMARY, COMPLEMENTARY) == (PRIMARY_REASON, COMPLEMENTARY_REASON)
BIG = 10 ** 6       # big-M


@pytest.fixture(scope="module")
def published(generated_bcs):
    """The stratification fixture's run plus the imputed-race and standardised tables."""
    from equity_pipeline.config import config_from_dict
    from tests.stratify.conftest import SETTINGS

    _, layout, _ = generated_bcs
    from datetime import date
    config = config_from_dict({**SETTINGS, "imputed_race": True}, run_date=date(2026, 11, 22))
    pipeline.build_imputed_race(layout, config)
    pipeline.build_standardized_rates(layout, config)
    pipeline.build_completeness(layout, config)
    tables = {name: pl.read_parquet(getattr(layout, name)) for name in
              ("rates", "disparities", "disparity_summary", "rates_imputed_race", "race_concordance", "standardized_rates")}
    tables["identities"] = pl.read_parquet(layout.strata_identities)
    tables["counts"] = pl.read_parquet(layout.stratified_counts)   # the truth, only to check the attacker's model
    tables["models"] = json.loads(layout.standardization_models.read_text())
    return tables


@pytest.fixture(scope="module")
def public_files(published, generated_bcs) -> dict[str, pl.DataFrame]:
    """Every table file under public/ after the ``published`` run (relative path -> frame)."""
    _, layout, _ = generated_bcs
    files = sorted([*layout.public.rglob("*.parquet"), *layout.public.rglob("*.csv")])
    return {str(p.relative_to(layout.public)): pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p, infer_schema_length=0)
            for p in files}


# ---------------------------------------------------------------- the attacker
class Program:
    """Integer/continuous variables, linear constraints, and the min/max of linear forms over them."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def var(self, lb: float = 0.0, ub: float = BIG, integer: bool = True) -> int:
        self.lb.append(lb), self.ub.append(ub), self.integer.append(1 if integer else 0)
        return len(self.lb) - 1

    def add(self, coeffs: dict[int, float], lo: float, hi: float) -> None:
        coeffs = {k: v for k, v in coeffs.items() if v != 0}
        if not coeffs:
            assert lo - 1e-6 <= 0 <= hi + 1e-6, f"published tables contradict each other: 0 not in [{lo}, {hi}]"
            return
        self.rows.append((coeffs, lo, hi))

    def _solve(self, objective: dict[int, float]) -> np.ndarray | None:
        n = len(self.lb)
        c = np.zeros(n)
        for k, v in objective.items():
            c[k] = v
        a = np.zeros((len(self.rows), n))
        lo, hi = np.empty(len(self.rows)), np.empty(len(self.rows))
        for i, (coeffs, l, h) in enumerate(self.rows):
            for k, v in coeffs.items():
                a[i, k] = v
            lo[i], hi[i] = l, h
        res = milp(c, constraints=[LinearConstraint(a, lo, hi)], integrality=np.array(self.integer), bounds=Bounds(self.lb, self.ub),
                   options={"time_limit": 60})
        assert res.status in (0, 2), res.message   # optimal, or infeasible (never expected)
        return None if res.x is None else res.x

    def feasible_with(self, fixed: dict[int, float]) -> bool:
        """Whether the constraints admit a solution with the given variables fixed (the truth must)."""
        saved = list(self.lb), list(self.ub)
        for k, v in fixed.items():
            self.lb[k] = self.ub[k] = v
        try:
            return self._solve({}) is not None
        finally:
            self.lb, self.ub = saved

    def ranges(self, forms: dict[str, dict[int, float]]) -> dict[str, tuple[float, float]]:
        """min and max of every form; forms that move in some solution are settled without their own solve."""
        first = self._solve({})
        assert first is not None, "the published tables admit no solution: the model of them is wrong"
        seen = [first]
        value = lambda f, x: sum(v * x[k] for k, v in f.items())  # noqa: E731
        out: dict[str, tuple[float, float]] = {}
        for name, form in forms.items():
            vals = [value(form, x) for x in seen]
            lo, hi = min(vals), max(vals)
            if hi - lo > 0.5:
                out[name] = (lo, hi)  # already two different values: not recovered (bounds not tight)
                continue
            for sign in (1, -1):
                x = self._solve({k: sign * v for k, v in form.items()})
                seen.append(x)
                v = value(form, x)
                lo, hi = min(lo, v), max(hi, v)
                if hi - lo > 0.5:
                    break
            out[name] = (lo, hi)
        return out


def _margins(rates: pl.DataFrame, identities: pl.DataFrame) -> list[tuple[list[int], int]]:
    """Every exact sum among the rows of ``rates`` (row indices): strata -> overall, states ->
    population, sub-measures -> all, and the cross-stratifier identities."""
    idx = rates.with_row_index("_i")
    out = []
    specs = [
        (pl.col("stratifier") != "overall", pl.col("stratifier") == "overall",
         ["measure_id", "submeasure", "period", "unit_level", "unit_id"], ["stratifier"]),
        (pl.col("unit_level") == "state", pl.col("unit_level") == "population", ["measure_id", "submeasure", "period", "stratifier", "stratum"], []),
        (pl.col("submeasure") != "all", pl.col("submeasure") == "all", ["measure_id", "period", "unit_level", "unit_id", "stratifier", "stratum"], []),
    ]
    for cells_filter, total_filter, on, extra in specs:
        totals = idx.filter(total_filter).select(*on, _t="_i")
        for _, g in idx.filter(cells_filter).join(totals, on=on, how="inner").group_by([*on, *extra]):
            out.append((g["_i"].to_list(), g["_t"][0]))
    key = ["measure_id", "submeasure", "period", "unit_level", "unit_id", "stratifier", "stratum"]
    if identities.height == 0:
        return out
    matched = identities.join(idx.select(*key, "_i"), on=key, how="inner")
    for _, g in matched.group_by("identity"):
        total = g.filter(pl.col("role") == "total")["_i"]
        if total.len():
            out.append((g.filter(pl.col("role") == "cell")["_i"].to_list(), total[0]))
    return out


def _counts_of(rates: pl.DataFrame, prog: Program) -> tuple[list[dict[int, float]], list[dict[int, float]]]:
    """Denominator and numerator of every row as linear forms (constants under key -1)."""
    dens, nums = [], []
    for r in rates.iter_rows(named=True):
        if not r["suppressed"]:
            dens.append({-1: float(r["denominator"])}), nums.append({-1: float(r["numerator"])})
            continue
        d, n = prog.var(), prog.var()
        prog.add({d: 1, n: -1}, 0, math.inf)
        checked = [{d: 1}, {n: 1}, {d: 1, n: -1}]
        if r["suppression_reason"] not in (PRIMARY, COMPLEMENTARY):
            pass                                          # the reason is not told: any counts
        elif r["suppression_reason"] == COMPLEMENTARY:    # no checked count in 1..10
            for form in checked:
                z = prog.var(0, 1)
                prog.add({**form, z: -(SMALL + 1)}, 0, math.inf)   # z = 1 -> >= 11
                prog.add({**form, z: -BIG}, -math.inf, 0)          # z = 0 -> == 0
        else:                                             # primary: some checked count in 1..10
            flags = []
            for form in checked:
                b = prog.var(0, 1)
                flags.append(b)
                prog.add({**form, b: -1}, 0, math.inf)                          # b = 1 -> >= 1
                prog.add({**form, b: BIG}, -math.inf, SMALL + BIG)              # b = 1 -> <= 10
            prog.add({b: 1 for b in flags}, 1, math.inf)
        dens.append({d: 1.0}), nums.append({n: 1.0})
    return dens, nums


def _sum_equals(prog: Program, parts: list[dict[int, float]], total: dict[int, float], tol: float = 0.0) -> None:
    coeffs: dict[int, float] = {}
    const = 0.0
    for form, sign in [(p, 1.0) for p in parts] + [(total, -1.0)]:
        for k, v in form.items():
            if k == -1:
                const += sign * v
            else:
                coeffs[k] = coeffs.get(k, 0.0) + sign * v
    prog.add(coeffs, -const - tol, -const + tol)


def _effective_interval(value: int | None) -> tuple[float, float]:
    """The true effective count behind a published rounded one (a positive value below 0.5 shows as 1)."""
    if value == 0:
        return 0.0, 0.0
    if value == 1:
        return 0.0, 1.5
    return value - 0.5, value + 0.5


def _imputed_constraints(prog: Program, rates: pl.DataFrame, imputed: pl.DataFrame, dens, nums) -> None:
    """The imputed categories of a unit add up to its overall row (effective counts, rounded when published)."""
    where = {tuple(r[k] for k in KEY): i for i, r in enumerate(rates.select(KEY).iter_rows(named=True))}
    group = ["measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id"]
    for key, part in imputed.group_by(group):
        total = where.get((*key, "overall", "all"))
        if total is None:
            continue
        for col, forms in (("denominator", dens), ("numerator", nums)):
            parts, lo_sum, hi_sum = [], 0.0, 0.0
            for r in part.iter_rows(named=True):
                if r["suppressed"]:
                    parts.append({prog.var(0, BIG, integer=False): 1.0})
                else:
                    lo, hi = _effective_interval(r[col])
                    lo_sum, hi_sum = lo_sum + lo, hi_sum + hi
            coeffs = {k: v for p in parts for k, v in p.items()}
            total_form = forms[total]
            const = total_form.get(-1, 0.0)
            for k, v in total_form.items():
                if k != -1:
                    coeffs[k] = coeffs.get(k, 0.0) - v
            # sum(hidden) + [lo_sum, hi_sum] = total  <=>  lo_sum - total_const <= total_vars - hidden ... rearranged:
            prog.add({k: -v for k, v in coeffs.items()}, lo_sum - const, hi_sum - const)


def _oe_constraints(prog: Program, rates: pl.DataFrame, standardized: pl.DataFrame, models: dict, dens, nums) -> None:
    """E of the suppressed strata = E(overall) - E(published strata), each within [p_min, p_max] x its denominator."""
    where = {tuple(r[k] for k in KEY): i for i, r in enumerate(rates.select(KEY).iter_rows(named=True))}
    for key, part in standardized.group_by("measure_id", "measure_version", "submeasure", "period", "unit_level", "unit_id", "stratifier"):
        if key[-1] == "overall":
            continue
        overall = standardized.filter((pl.col("measure_id") == key[0]) & (pl.col("submeasure") == key[2]) & (pl.col("unit_level") == key[4])
                                      & (pl.col("unit_id") == key[5]) & (pl.col("stratifier") == "overall"))
        model = models["models"].get(f"{key[0]}/{key[2]}", {})
        if overall.height != 1 or overall["oe_ratio"][0] is None or model.get("method") != "logistic":
            continue
        o_overall = nums[where[(*key[:6], "overall", "all")]][-1]
        e_rest = o_overall / overall["oe_ratio"][0]
        hidden = []
        for r in part.iter_rows(named=True):
            i = where[(*key, r["stratum"])]
            if r["suppressed"]:
                hidden.append(i)
            elif r["oe_ratio"] is not None and r["oe_ratio"] > 0:
                e_rest -= nums[i][-1] / r["oe_ratio"]
            else:
                hidden = None  # a published stratum without O/E: its E is unknown, no constraint
                break
        if not hidden:
            continue
        coef = model["coefficients"]
        const = coef.get("const", 0.0)
        others = [v for k, v in coef.items() if k.startswith("age_")]
        male = coef.get("male", 0.0)
        # the comorbidity count (0..cap) enters linearly: its extremes bound the fitted probabilities
        com = [coef.get("comorbidities", 0.0) * k for k in (0, int(model.get("comorbidity_cap", 0)))]
        logits = [const + a + m + c for a in [0.0, *others] for m in (0.0, male) for c in com]
        p_min, p_max = (1 / (1 + math.exp(-min(logits))), 1 / (1 + math.exp(-max(logits))))
        e_vars = []
        for i in hidden:
            e = prog.var(0, BIG, integer=False)
            e_vars.append(e)
            d = next(k for k in dens[i] if k != -1) if -1 not in dens[i] else None
            if d is not None:
                prog.add({e: 1, d: -p_min * (1 - 1e-9)}, 0, math.inf)
                prog.add({e: 1, d: -p_max * (1 + 1e-9)}, -math.inf, 0)
        tol = 1e-6 * max(1.0, abs(e_rest))
        prog.add({e: 1.0 for e in e_vars}, e_rest - tol, e_rest + tol)


def attack(tables: dict, measure: str, truth: pl.DataFrame | None = None) -> dict[str, tuple[float, float]]:
    """min/max of every hidden count of ``measure`` in public/rates given everything published.

    With ``truth`` (the restricted stratified counts) it first checks that the true counts satisfy
    every constraint of the attack, i.e. that the attacker's model of the tables is right."""
    rates = tables["rates"].filter(pl.col("measure_id") == measure).sort(KEY)
    prog = Program()
    dens, nums = _counts_of(rates, prog)
    for cells, total in _margins(rates, tables["identities"].filter(pl.col("measure_id") == measure)):
        _sum_equals(prog, [dens[i] for i in cells], dens[total])
        _sum_equals(prog, [nums[i] for i in cells], nums[total])
    imputed = tables.get("rates_imputed_race")
    if imputed is not None:
        _imputed_constraints(prog, rates, imputed.filter(pl.col("measure_id") == measure), dens, nums)
    standardized = tables.get("standardized_rates")
    if standardized is not None:
        _oe_constraints(prog, rates, standardized.filter(pl.col("measure_id") == measure), tables["models"], dens, nums)
    if truth is not None:
        true = rates.select(KEY).join(truth.select(*KEY, "denominator", "numerator"), on=KEY, how="left")
        fixed = {}
        for i, (d, n) in enumerate(zip(true["denominator"], true["numerator"])):
            for form, v in ((dens[i], d), (nums[i], n)):
                if -1 not in form:
                    fixed[next(iter(form))] = float(v)
        assert prog.feasible_with(fixed), "the true counts violate the attack's constraints: the attacker's model is wrong"
    forms = {}
    for i, r in enumerate(rates.iter_rows(named=True)):
        if r["suppressed"]:
            label = f"{r['submeasure']}/{r['unit_level']}:{r['unit_id']}/{r['stratifier']}={r['stratum']}"
            d, n = dens[i], nums[i]
            forms[f"{label} denominator"] = d
            forms[f"{label} numerator"] = n
            forms[f"{label} complement"] = {**d, **{k: -v for k, v in n.items()}}
    return prog.ranges(forms)


def concordance_attack(table: pl.DataFrame) -> dict[str, tuple[float, float]]:
    """The same for the concordance table: rows, columns and ``All`` totals; members 1-10 for primary cells."""
    prog = Program()
    forms, value = {}, {}
    for r in table.iter_rows(named=True):
        k = (r["unit_level"], r["unit_id"], r["self_reported"], r["imputed"])
        if not r["suppressed"]:
            value[k] = {-1: float(r["members"])}
            continue
        x = prog.var()
        if r["suppression_reason"] == COMPLEMENTARY:
            z = prog.var(0, 1)
            prog.add({x: 1, z: -(SMALL + 1)}, 0, math.inf)
            prog.add({x: 1, z: -BIG}, -math.inf, 0)
        elif r["suppression_reason"] == PRIMARY:
            prog.add({x: 1}, 1, SMALL)
        value[k] = {x: 1.0}
        forms[" / ".join(k)] = {x: 1.0}
    units = {(u, i) for u, i, *_ in value}
    rows = {s for _, _, s, _ in value} - {"All"}
    cols = {c for *_, c in value} - {"All"}
    for u, i in units:
        for s in rows | {"All"}:
            _sum_equals(prog, [value[(u, i, s, c)] for c in cols if (u, i, s, c) in value], value[(u, i, s, "All")])
        for c in cols | {"All"}:
            _sum_equals(prog, [value[(u, i, s, c)] for s in rows if (u, i, s, c) in value], value[(u, i, "All", c)])
    if not forms:
        return {}
    return prog.ranges(forms)


def recovered(ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Counts pinned to one value. A numerator or complement pinned at 0 does not count: zero is
    publishable under the CMS policy (knowing nobody in a hidden cell was screened, without its size,
    discloses no small count); a pinned denominator always counts."""
    return {k: v for k, v in ranges.items() if v[1] - v[0] < 0.5 and (k.endswith("denominator") or v[0] > 0.5)}


# ---------------------------------------------------------------- tests
def test_the_disparity_tables_only_use_published_strata(published):
    """So they add nothing about a suppressed cell beyond public/rates (the attack can skip them)."""
    rates, table, summary = published["rates"], published["disparities"], published["disparity_summary"]
    hidden = rates.filter(pl.col("suppressed")).select(KEY)
    on_hidden = table.join(hidden, on=KEY, how="semi")
    values = ["rate", "reference_rate", "difference", "ratio", "p_value", "difference_ci_lower", "ratio_ci_upper"]
    assert on_hidden.height > 0 and on_hidden.select(pl.any_horizontal(pl.col(values).is_not_null()).sum()).item() == 0
    used = summary.select("measure_id", "submeasure", "unit_level", "unit_id", "stratifier", stratum=pl.col("strata_used")).explode("stratum")
    assert used.join(hidden.drop("measure_version", "period"), on=["measure_id", "submeasure", "unit_level", "unit_id", "stratifier", "stratum"],
                     how="semi").height == 0
    # the published rate of every compared stratum is the rates table's
    shown = table.filter(pl.col("rate").is_not_null()).join(rates.select(*KEY, _r="rate"), on=KEY)
    assert (shown["rate"] - shown["_r"]).abs().max() < 1e-12


def test_the_standardized_table_hides_what_public_rates_hides(published):
    std, rates = published["standardized_rates"], published["rates"]
    joined = std.join(rates.select(*KEY, _s="suppressed"), on=KEY, how="left")
    assert joined["_s"].null_count() == 0 and (joined["_s"] == joined["suppressed"]).all()
    values = [c for c in std.columns if c.endswith(("rate", "lower", "upper", "ratio", "difference"))]
    assert joined.filter(pl.col("suppressed")).select(pl.any_horizontal(pl.col(values).is_not_null()).sum()).item() == 0


@pytest.mark.parametrize("measure", ["BCS", "SDOH_SCREEN"])
def test_no_suppressed_cell_is_recovered_from_everything_published(published, measure):
    ranges = attack(published, measure, truth=published["counts"])
    assert len(ranges) >= 3 * 20, "too few suppressed cells for the attack to mean anything"
    found = recovered(ranges)
    assert not found, f"{len(found)} suppressed counts recovered exactly, e.g. {list(found.items())[:5]}"


def test_no_public_table_tells_primary_from_complementary(public_files, generated_bcs):
    """Every table under public/ (parquet and csv) gives at most one non-null suppression_reason,
    the public one, on suppressed rows only; the kinds are in the restricted suppression logs, which
    cover exactly the suppressed cells of public/rates and public/completeness."""
    assert {"rates.parquet", "rates.csv", "completeness.parquet", "completeness.csv", "rates_imputed_race.parquet",
            "race_concordance.parquet", "standardized_rates.parquet", "disparities.parquet"} <= set(public_files)
    with_reasons = 0
    for name, table in public_files.items():
        told = told_reasons(table)
        assert len(told) <= 1, (name, told)
        if "suppression_reason" not in table.columns:
            continue
        with_reasons += 1
        hidden = table["suppressed"].cast(pl.String).str.to_lowercase() == "true"
        assert told == ([PUBLIC_REASON] if hidden.any() else []), (name, told)
        assert table.filter(~hidden)["suppression_reason"].null_count() == int((~hidden).sum()), name
        assert table.filter(hidden)["suppression_reason"].null_count() == 0, name
    assert with_reasons >= 7
    _, layout, _ = generated_bcs
    for name, key in (("rates", KEY), ("completeness", ["period", "unit_level", "unit_id", "attribute", "category"])):
        detail = pl.read_parquet(layout.suppression_detail(name))
        assert layout.suppression_detail(name).is_relative_to(layout.restricted)
        assert set(detail["suppression_reason"]) <= {PRIMARY, COMPLEMENTARY}
        hidden = public_files[f"{name}.parquet"].filter(pl.col("suppressed")).select(key)
        assert detail.height == hidden.height and detail.join(hidden, on=key, how="anti").height == 0, name
    kinds = set(pl.read_parquet(layout.suppression_detail("rates"))["suppression_reason"])
    assert kinds == {PRIMARY, COMPLEMENTARY}   # the run has both kinds: the public tables hide a real difference


def test_no_suppressed_concordance_cell_is_recovered(published):
    table = published["race_concordance"]
    assert table["suppressed"].sum() > 0
    # the table does not say which suppressed cells are small and which complementary
    assert set(table.filter(pl.col("suppressed"))["suppression_reason"]) == {SUPPRESSED_REASON}
    found = {k: v for k, v in concordance_attack(table).items() if v[1] - v[0] < 0.5}   # member counts: any pinned value
    assert not found, found


# ---------------------------------------------------------------- the attacker can win (it is not toothless)
def test_the_attacker_recovers_a_cell_protected_by_primary_suppression_only():
    """Three strata and a published overall, only the small one hidden: subtraction finds it."""
    rates = pl.DataFrame({
        "measure_id": ["M"] * 4, "measure_version": ["1"] * 4, "submeasure": ["all"] * 4, "period": ["2025"] * 4,
        "unit_level": ["population"] * 4, "unit_id": ["all"] * 4, "stratifier": ["overall", "s", "s", "s"],
        "stratum": ["all", "A", "B", "C"], "denominator": [100.0, 50.0, None, 45.0], "numerator": [60.0, 30.0, None, 27.0],
        "suppressed": [False, False, True, False], "suppression_reason": [None, None, "small cell (1-10)", None],
    })
    ranges = attack({"rates": rates, "identities": pl.DataFrame(schema={"measure_id": pl.String})}, "M")
    assert ranges["all/population:all/s=B denominator"] == (5.0, 5.0)
    assert ranges["all/population:all/s=B numerator"] == (3.0, 3.0)


def test_the_attacker_uses_the_suppression_reason():
    """Two hidden strata summing to 12 published by subtraction: complementary = 0 or >= 11, so the
    primary one is 1 and the complementary one 11 (ranges would be wide without the reasons)."""
    rates = pl.DataFrame({
        "measure_id": ["M"] * 4, "measure_version": ["1"] * 4, "submeasure": ["all"] * 4, "period": ["2025"] * 4,
        "unit_level": ["population"] * 4, "unit_id": ["all"] * 4, "stratifier": ["overall", "s", "s", "s"],
        "stratum": ["all", "A", "B", "C"], "denominator": [112.0, 100.0, None, None], "numerator": [12.0, 0.0, None, None],
        "suppressed": [False, False, True, True], "suppression_reason": [None, None, "small cell (1-10)", "complementary"],
    })
    ranges = attack({"rates": rates, "identities": pl.DataFrame(schema={"measure_id": pl.String})}, "M")
    assert ranges["all/population:all/s=B denominator"] == (1.0, 1.0)
    assert ranges["all/population:all/s=C denominator"] == (11.0, 11.0)


def _one_stratifier_counts(rows: list[tuple[str, float, float]]) -> pl.DataFrame:
    """Hand-built restricted counts of one proportion measure: (stratum, denominator, numerator)."""
    n = len(rows)
    frame = pl.DataFrame({
        "measure_id": ["BCS"] * n, "measure_version": ["1"] * n, "submeasure": ["all"] * n, "period": ["2025"] * n,
        "unit_level": ["population"] * n, "unit_id": ["all"] * n,
        "stratifier": ["overall" if s == "all" else "race_ethnicity" for s, _, _ in rows], "stratum": [s for s, _, _ in rows],
        "members": [d for _, d, _ in rows], "denominator": [d for _, d, _ in rows], "numerator": [x for _, _, x in rows],
    })
    return frame.with_columns(sum_num_sq=pl.col("numerator"), sum_num_den=pl.col("numerator"), sum_den_sq=pl.col("denominator"))


def test_public_rates_reasons_do_not_pin_a_hidden_pair_summing_to_12():
    """Real library, hand-built counts: White 100/50, Asian 1/0 (primary), Black 11/0 (the smallest
    cell, complementary), overall 112/50. The hidden pair sums to 12 denominators and 0 numerators;
    had the reasons told the kinds, Black would be 0 or >= 11 and Asian in 1..10, so Asian = 1 and
    Black = 11 (next test). public/rates gives both the one public reason, and nothing is recovered."""
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.stratify import public_rates

    counts = _one_stratifier_counts([("all", 112, 50), ("White", 100, 50), ("Asian", 1, 0), ("Black or African American", 11, 0)])
    rates = public_rates(counts, {"BCS": load_specs()["BCS"]}, {"BCS": "claims"})
    hidden = rates.filter(pl.col("suppressed"))
    assert sorted(hidden["stratum"]) == ["Asian", "Black or African American"]
    assert hidden["suppression_reason"].to_list() == [PUBLIC_REASON, PUBLIC_REASON]
    assert told_reasons(rates) == [PUBLIC_REASON]
    ranges = attack({"rates": rates, "identities": pl.DataFrame(schema={"measure_id": pl.String})}, "BCS", truth=counts)
    found = recovered(ranges)
    assert ranges and not found, found


def test_the_restricted_reasons_would_pin_the_same_pair():
    """The same counts with the kinds ``suppress`` records (restricted, ``rates_with_reasons``): the
    attack recovers Asian = 1 and Black = 11, so the kinds must stay out of every public table."""
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.stratify import rates_with_reasons

    counts = _one_stratifier_counts([("all", 112, 50), ("White", 100, 50), ("Asian", 1, 0), ("Black or African American", 11, 0)])
    rates = rates_with_reasons(counts, {"BCS": load_specs()["BCS"]}, {"BCS": "claims"})
    assert rates.filter(pl.col("stratum") == "Asian")["suppression_reason"][0] == PRIMARY
    assert rates.filter(pl.col("stratum") == "Black or African American")["suppression_reason"][0] == COMPLEMENTARY
    ranges = attack({"rates": rates, "identities": pl.DataFrame(schema={"measure_id": pl.String})}, "BCS", truth=counts)
    found = recovered(ranges)
    assert found["all/population:all/race_ethnicity=Asian denominator"] == (1.0, 1.0)
    assert found["all/population:all/race_ethnicity=Black or African American denominator"] == (11.0, 11.0)


def test_without_the_reasons_the_same_pair_is_not_recovered():
    """The same table with the reason column blanked: the pair is protected (so the reason is the leak)."""
    from equity_pipeline.measures.spec import load_specs
    from equity_pipeline.stratify import public_rates

    counts = _one_stratifier_counts([("all", 112, 50), ("White", 100, 50), ("Asian", 1, 0), ("Black or African American", 11, 0)])
    rates = public_rates(counts, {"BCS": load_specs()["BCS"]}, {"BCS": "claims"})
    rates = rates.with_columns(suppression_reason=pl.when(pl.col("suppressed")).then(pl.lit("suppressed")))
    ranges = attack({"rates": rates, "identities": pl.DataFrame(schema={"measure_id": pl.String})}, "BCS", truth=counts)
    assert ranges and not recovered(ranges)
