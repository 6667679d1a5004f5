"""What a chunk's data say so far, for planted measures whose truth depends on other producers.

Some planted measures cannot own every code they read: the CBP denominator comes from hypertension
diagnoses that background visits carry, CDF and SDOH_SCREEN count members with any outpatient visit,
ED visits that end in an admission do not count, and so on. Planting modules therefore run in a fixed
order (``planted.planted_measures()``) and see everything produced before them through
:class:`Evidence`: the chunk's medical claim lines (background and earlier planted modules, after
claim versions and voids), clinical observations and SDOH screenings.

The rules applied here are the generator's own reading of the measure definitions, written
independently of the pipeline (code families in ``vocab.DX_FAMILIES`` / ``vocab.LINE_CODE_SETS``;
stays, ED visits and member months as documented in ``docs/generator.md``), so that a correct pipeline
must reproduce the truth exactly. A module may only add evidence that does not change what earlier
modules read (for example CDF adds G-codes that are not visits; no module after ED_VISITS adds stays
or ED lines).
"""
from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from . import vocab
from .context import NO_DATE, Period, day
from .population import Population
from .schema import DX_COLUMNS

ED_REVENUE = frozenset([f"045{i}" for i in range(10)] + ["0981"])
ED_CPT = frozenset(["99281", "99282", "99283", "99284", "99285"])
ED_LINES = {"revenue": tuple(sorted(ED_REVENUE)), "pos": ("23",), "hcpcs": tuple(sorted(ED_CPT))}


def _matcher(patterns: tuple[str, ...]):
    exact = {p for p in patterns if not p.endswith("*")}
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
    return lambda code: code in exact or code.startswith(prefixes) if prefixes else code in exact


def family_codes(codes, patterns: tuple[str, ...]) -> list[str]:
    """The codes among ``codes`` that a family (exact codes, ``X*`` prefixes) matches."""
    match = _matcher(patterns)
    return [c for c in codes if c is not None and match(c)]


class Evidence:
    """Final claim lines, observations and screenings of one chunk, with the queries planting needs."""

    def __init__(self, pop: Population, period: Period, primary_care: pl.Series | None = None) -> None:
        self.pop = pop
        self.period = period
        self.primary_care = primary_care if primary_care is not None else pl.Series("provider_id", [], dtype=pl.String)
        # paid amounts (cents) with a service date in MY, per member: medical + pharmacy, and primary care
        self.paid_my = np.zeros(pop.n, dtype=np.int64)
        self.primary_care_paid_my = np.zeros(pop.n, dtype=np.int64)
        self.first = int(pop.member_id[0][1:]) - 1 if pop.n else 0
        # per registered producer: (pos, day) per line code set, claim-level rows of stays, tracked diagnoses
        self._sets: dict[str, list[pl.DataFrame]] = {name: [] for name in (*vocab.LINE_CODE_SETS, "ed")}
        self._inst: list[pl.DataFrame] = []
        self._dx: list[pl.DataFrame] = []
        self._stays: pl.DataFrame | None = None
        self.no_admission: list[np.ndarray] = []          # (pos << 20 | day) keys where no stay may be admitted
        self.observations: pl.DataFrame | None = None  # internal observation frame (see background)
        self.screenings: list[pl.DataFrame] = []         # contract-layout screening rows (strings)

    # ------------------------------------------------------------------ adding
    def add_claims(self, frames: list[pl.DataFrame]) -> None:
        """Register internal line frames (one producer's output: versions and voids resolved together)."""
        frames = [f for f in frames if f is not None and f.height]
        if not frames:
            return
        df = pl.concat(frames, how="vertical", rechunk=False)
        if (df["claim_version"] != 1).any() or (df["claim_status"] == "void").any():
            per = df.group_by("claim_key").agg(_v=pl.col("claim_version").max(), _void=(pl.col("claim_status") == "void").any())
            df = df.join(per, on="claim_key").filter((pl.col("claim_version") == pl.col("_v")) & ~pl.col("_void"))
        df = df.with_columns(pl.col("_pos").cast(pl.Int64).alias("pos"), pl.col("claim_from_date").alias("day"))
        spend = df.filter(pl.col("day").is_between(self.period.my_start, self.period.my_end)).group_by("pos").agg(
            pl.col("paid_amount").sum().alias("paid"),
            pl.col("paid_amount").filter(pl.col("billing_npi").is_in(self.primary_care.implode())).sum().alias("pc"),
        )
        np.add.at(self.paid_my, spend["pos"].to_numpy(), spend["paid"].to_numpy())
        np.add.at(self.primary_care_paid_my, spend["pos"].to_numpy(), spend["pc"].fill_null(0).to_numpy())
        specs = (*vocab.LINE_CODE_SETS.items(), ("ed", ED_LINES))
        union = {key: sorted(set().union(*(spec.get(key, ()) for _, spec in specs))) for key in ("hcpcs", "revenue", "pos")}
        cols = (("hcpcs_code", "hcpcs"), ("revenue_code", "revenue"), ("place_of_service", "pos"))
        cand = df.filter(pl.any_horizontal([pl.col(c).is_in(union[k]).fill_null(False) for c, k in cols])).select(
            "pos", "day", "hcpcs_code", "revenue_code", "place_of_service")
        for name, spec in specs:
            cond = pl.any_horizontal([pl.col(c).is_in(sorted(spec[k])).fill_null(False) for c, k in cols if spec.get(k)])
            hit = cand.filter(cond).select("pos", "day").unique()
            if hit.height:
                self._sets[name].append(hit)
        nd = lambda c: pl.when(pl.col(c) == NO_DATE).then(None).otherwise(pl.col(c))  # noqa: E731
        inst = df.filter((pl.col("claim_type") == "institutional") & pl.col("bill_type").str.starts_with("11")).select(
            "pos", "claim_key", "claim_line", "day", pl.col("claim_thru_date").alias("thru"), nd("admit_date").alias("admit"),
            nd("discharge_date").alias("discharge"), "diagnosis_code_1", "discharge_status",
        )
        if inst.height:
            self._inst.append(inst)
        tracked = set()
        for c in DX_COLUMNS:
            tracked.update(df[c].drop_nulls().unique().to_list())
        keep = sorted(c for c in tracked if _tracked_dx(c))
        if keep:
            dx_cols = [c for c in DX_COLUMNS if df[c].is_in(keep).any()]
            long = pl.concat([df.select("pos", "day", pl.col(c).alias("code")).filter(pl.col("code").is_in(keep)) for c in dx_cols])
            self._dx.append(long.unique())
        self._stays = None

    def add_pharmacy(self, fills: pl.DataFrame) -> None:
        """Register pharmacy fills (contract strings; one version each): paid amounts filled in MY."""
        f = fills.with_columns(
            pos=pl.col("member_id").str.slice(1).cast(pl.Int64) - 1 - self.first,
            day=pl.col("fill_date").str.to_date("%Y-%m-%d").cast(pl.Int32),
            cents=pl.col("paid_amount").str.replace(".", "", literal=True).cast(pl.Int64),
        ).filter(pl.col("day").is_between(self.period.my_start, self.period.my_end)).group_by("pos").agg(pl.col("cents").sum())
        np.add.at(self.paid_my, f["pos"].to_numpy(), f["cents"].to_numpy())

    def preview(self, frames: list[pl.DataFrame]) -> "Evidence":
        """A copy that also holds ``frames`` (a module reading back its own records; self is unchanged)."""
        other = Evidence.__new__(Evidence)
        other.__dict__.update(self.__dict__)
        other._sets = {k: list(v) for k, v in self._sets.items()}
        other._inst, other._dx, other.screenings = list(self._inst), list(self._dx), list(self.screenings)
        other.no_admission = list(self.no_admission)
        other.paid_my, other.primary_care_paid_my = self.paid_my.copy(), self.primary_care_paid_my.copy()
        other.add_claims(frames)
        return other

    # ------------------------------------------------------------------ diagnoses and codes
    def _per_member(self, frame: pl.DataFrame, agg: pl.Expr, dtype) -> np.ndarray:
        out = np.zeros(self.pop.n, dtype=dtype)
        if frame.height:
            g = frame.group_by("pos").agg(agg.alias("v"))
            out[g["pos"].to_numpy()] = g["v"].to_numpy()
        return out

    @staticmethod
    def _window(parts: list[pl.DataFrame], lo: int | None, hi: int | None, extra: pl.Expr | None = None) -> pl.DataFrame:
        cond = pl.lit(True)
        if lo is not None:
            cond = cond & (pl.col("day") >= lo)
        if hi is not None:
            cond = cond & (pl.col("day") <= hi)
        if extra is not None:
            cond = cond & extra
        sel = [part.filter(cond).select("pos", "day") for part in parts]
        if not sel:
            return pl.DataFrame(schema={"pos": pl.Int64, "day": pl.Int32})
        return pl.concat(sel).unique().sort("pos", "day")

    def dx_days(self, family: str, lo: int | None = None, hi: int | None = None) -> pl.DataFrame:
        """(pos, day) of distinct dates with a diagnosis of ``family`` (``vocab.DX_FAMILIES``) in [lo, hi]."""
        codes = family_codes(set().union(*(set(d["code"].unique().to_list()) for d in self._dx)) if self._dx else [],
                             vocab.DX_FAMILIES[family])
        return self._window(self._dx, lo, hi, pl.col("code").is_in(codes))

    def dx_date_count(self, family: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        return self._per_member(self.dx_days(family, lo, hi), pl.len(), np.int64)

    def has_dx(self, family: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        return self.dx_date_count(family, lo, hi) > 0

    def line_days(self, name: str, lo: int | None = None, hi: int | None = None) -> pl.DataFrame:
        """(pos, day) with a line of code set ``name`` (``vocab.LINE_CODE_SETS``: hcpcs / revenue / pos;
        ``ed``: revenue 045x/0981, POS 23 or CPT 99281-99285) in [lo, hi]."""
        return self._window(self._sets[name], lo, hi)

    def has_line(self, name: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        return self._per_member(self.line_days(name, lo, hi), pl.len(), np.int64) > 0

    # ------------------------------------------------------------------ stays and ED visits
    def stays(self) -> pl.DataFrame:
        """Inpatient stays as a correct pipeline builds them: institutional claims with type of bill 11x,
        per claim (admission = admit date or first from date, discharge = discharge date or last thru
        date, principal = first line's diagnosis 1), merged per member when they overlap or touch
        (admission on or the day after an earlier discharge), keeping the first principal diagnosis.
        Columns pos, admit, discharge, principal_dx, discharge_status (of the last claim), n_claims
        (merged stays with ties on the admission date have no defined principal: planting never creates
        them)."""
        if self._stays is None:
            inst = pl.concat(self._inst) if self._inst else pl.DataFrame(
                schema={"pos": pl.Int64, "claim_key": pl.Int64, "claim_line": pl.Int32, "day": pl.Int32, "thru": pl.Int32,
                        "admit": pl.Int32, "discharge": pl.Int32, "diagnosis_code_1": pl.String, "discharge_status": pl.String})
            per_claim = inst.sort("claim_key", "claim_line").group_by("claim_key").agg(
                pl.col("pos").first(),
                admit=pl.coalesce(pl.col("admit").min(), pl.col("day").min()),
                discharge=pl.coalesce(pl.col("discharge").max(), pl.col("thru").max(), pl.col("day").max()),
                principal_dx=pl.col("diagnosis_code_1").drop_nulls().first(),
                discharge_status=pl.col("discharge_status").drop_nulls().last(),
            )
            ordered = per_claim.sort("pos", "admit", "claim_key").with_columns(
                prev_end=pl.col("discharge").cum_max().shift(1).over("pos")
            ).with_columns(
                new=pl.col("prev_end").is_null() | (pl.col("admit") > pl.col("prev_end") + 1)
            ).with_columns(stay_no=pl.col("new").cast(pl.Int32).cum_sum().over("pos"))
            self._stays = ordered.group_by("pos", "stay_no").agg(
                admit=pl.col("admit").min(), discharge=pl.col("discharge").max(),
                principal_dx=pl.col("principal_dx").first(), discharge_status=pl.col("discharge_status").last(),
                n_claims=pl.len(),
            ).drop("stay_no").sort("pos", "admit")
        return self._stays

    def admission_blocked(self, pos: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Whether a stay admitted on ``day`` would change an earlier module's truth (IET: an admission on
        a day with an SUD diagnosis is inpatient SUD treatment)."""
        if not self.no_admission:
            return np.zeros(len(pos), dtype=bool)
        keys = np.unique(np.concatenate(self.no_admission))
        k = np.asarray(pos, dtype=np.int64) * (1 << 20) + np.asarray(day, dtype=np.int64)
        i = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
        return keys[i] == k

    def busy_days(self, margin: int = 1) -> pl.DataFrame:
        """(pos, lo, hi): days a new stay may not touch (existing stays widened by ``margin`` days)."""
        s = self.stays()
        return s.select("pos", (pl.col("admit") - margin).alias("lo"), (pl.col("discharge") + margin).alias("hi"))

    def ed_visits(self, lo: int, hi: int) -> pl.DataFrame:
        """(pos, day) of ED visits in [lo, hi] that did not result in an admission: a line with revenue
        045x/0981, place of service 23 or CPT 99281-99285, one visit per member per day, dropped when a
        stay is admitted the same or the next day."""
        visits = self.line_days("ed", lo, hi)
        admits = self.stays().select("pos", "admit")
        resulted = visits.join(admits, on="pos").filter(
            (pl.col("admit") >= pl.col("day")) & (pl.col("admit") <= pl.col("day") + 1)
        ).select("pos", "day").unique()
        return visits.join(resulted, on=["pos", "day"], how="anti").sort("pos", "day")

    # ------------------------------------------------------------------ observations and screenings
    def screened_domains(self, lo: int, hi: int) -> np.ndarray:
        """(n, 5) bool: domain answered (not declined) in any screening in [lo, hi], in
        ``vocab.SDOH_DOMAINS`` order, from the generator's question -> domain table."""
        out = np.zeros((self.pop.n, len(vocab.SDOH_DOMAINS)), dtype=bool)
        if not self.screenings:
            return out
        qd = pl.DataFrame(
            [(inst, q, d) for (inst, q), doms in vocab.SDOH_QUESTION_DOMAINS.items() for d in doms],
            schema={"instrument": pl.String, "question_code": pl.String, "domain": pl.String}, orient="row",
        )
        s = pl.concat([f.select("member_id", "screening_date", "instrument", "question_code", "answer_code") for f in self.screenings])
        s = s.with_columns(day=pl.col("screening_date").str.to_date("%Y-%m-%d").cast(pl.Int32)).filter(
            pl.col("day").is_between(lo, hi), pl.col("answer_code").is_not_null() & (pl.col("answer_code") != "ASKU"),
        ).join(qd, on=["instrument", "question_code"])
        s = s.with_columns(pos=pl.col("member_id").str.slice(1).cast(pl.Int64) - 1 - self.first).filter(
            pl.col("pos").is_between(0, self.pop.n - 1)
        ).select("pos", "domain").unique()
        for j, d in enumerate(vocab.SDOH_DOMAINS):
            out[s.filter(pl.col("domain") == d)["pos"].to_numpy(), j] = True
        return out


def _tracked_dx(code: str) -> bool:
    return any(_matcher(p)(code) for p in vocab.DX_FAMILIES.values())


def member_months(pop: Population, period: Period) -> np.ndarray:
    """(n, 12) bool: enrolled (any span) on the 15th of each month of the measurement year; deaths do not
    end a month that the enrollment still covers (the enrollment file is what counts)."""
    fifteenth = np.array([day(date(period.measurement_year, m, 15)) for m in range(1, 13)])
    s, e = pop.seg_start[:, :, None], pop.seg_end[:, :, None]
    return ((s <= fifteenth[None, None, :]) & (fifteenth[None, None, :] <= e)).any(axis=1)

