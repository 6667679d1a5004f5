"""``report/state_plan.html``: the equity-plan tables as a print-ready filing document.

Rendered from ``public/equity_plan/state_metrics.parquet`` and ``hospital_metrics.parquet`` only
(already suppressed; docs/equity_plans.md). One self-contained page: inline CSS with print rules
(each state, region and facility starts a new printed page), every chart a PNG ``data:`` URI, no
scripts, no external fonts, styles or links.

Per state and region: PQI90 per 100,000 member-years by race/ethnicity with its 95% CI, the ratio
to the reference group with its CI and the target status (one chart with CI whiskers per state);
REL completeness by payer; SDOH screening and positive rates by domain; TCOC PMPM and primary-care
share by group; change against the baseline where the table has one. Per facility: readmission and
ED revisit by race/ethnicity and dual status with the within-hospital gap and its CI, safety-net
shares, SDOH screening and positive rates, REL completeness.

A suppressed row never passes on a number, even if the frame (wrongly) still holds one: every number
cell reads ``suppressed (cell-size policy)``. ``insufficient_data`` reads "insufficient data", never
as met. Every table says what its denominator is and where its data come from.
"""
from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import polars as pl

from equity_pipeline.charts import ChartCanvas, RateChart, RateScale, groups_from_rows, stratifier_label, submeasure_label
from equity_pipeline.report.completeness import CATEGORY_LABELS
from equity_pipeline.report.render import DATA_SOURCE_LABELS, DIRECTION_LABELS, SUPPRESSION_RULE, _environment, format_count, suppression_label

TEMPLATE_NAME = "state_plan.html.j2"
PQI_METRIC = "PQI90"
REL_METRICS = ("REL_RACE_ETHNICITY", "REL_LANGUAGE")
STATE_SDOH_METRICS = ("SDOH_SCREEN", "SDOH_SCREEN_DOMAIN", "SDOH_POSITIVE")
COST_METRICS = ("TCOC_PMPM", "PRIMARY_CARE_SHARE")
HOSPITAL_OUTCOMES = ("HOSP_READMISSION", "HOSP_ED_REVISIT")
SAFETY_NET = ("DUAL_SHARE", "HIGH_SVI_SHARE")
FACILITY_SDOH = ("SDOH_SCREEN_FACILITY", "SDOH_POSITIVE_FACILITY")
PAYER_ORDER = ("all", "medicare", "medicaid", "commercial", "medicare_medicaid_dual")
UNIT_ORDER = {"population": 0, "state": 1, "region": 2, "facility": 3}
TARGET_STATUS_LABELS = {"met": "met", "not_met": "not met", "insufficient_data": "insufficient data"}
PLAN_DATA_SOURCE_LABELS = {**DATA_SOURCE_LABELS, "members": "members table (demographics, county of residence)",
                           "enrollment": "enrollment (dual status)"}

#: What the denominator (and numerator) of each metric is, stated under its table.
DENOMINATORS: dict[str, str] = {
    "PQI90": "Denominator: member-years of enrolled adults; numerator: potentially preventable admissions (rate per 100,000 member-years).",
    "REL_RACE_ETHNICITY": "Denominator: members of the unit and payer (patients for a facility); numerator: members in the collection category.",
    "REL_LANGUAGE": "Denominator: members of the unit and payer (patients for a facility); numerator: members in the language status.",
    "SDOH_SCREEN": "Denominator: adults with an outpatient encounter (SDOH_SCREEN population); numerator: screened in all five core domains.",
    "SDOH_SCREEN_DOMAIN": "Denominator: the SDOH_SCREEN population; numerator: screened (answered, not declined) in the domain.",
    "SDOH_POSITIVE": "Denominator: members screened in all five core domains; numerator: positive in the domain.",
    "TCOC_PMPM": "Denominator: member-months; numerator: total paid dollars (cost per member per month).",
    "PRIMARY_CARE_SHARE": "Denominator: total paid dollars; numerator: primary-care paid dollars.",
    "HOSP_READMISSION": "Denominator: index stays at the facility; numerator: stays followed by an unplanned acute readmission anywhere.",
    "HOSP_ED_REVISIT": "Denominator: ED visits at the facility not ending in an admission; numerator: visits followed by another ED visit anywhere.",
    "DUAL_SHARE": "Denominator: the facility's patients; numerator: dual-eligible patients.",
    "HIGH_SVI_SHARE": "Denominator: the facility's patients; numerator: patients living in a high-SVI county.",
    "SDOH_SCREEN_FACILITY": "Denominator: adult patients of the facility; numerator: screened at the facility (all five domains or the domain).",
    "SDOH_POSITIVE_FACILITY": "Denominator: patients screened in the domain at the facility; numerator: positive in the domain.",
}


# ---------------------------------------------------------------------------------------------------
# cells


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _ratio_num(v: float) -> str:
    if math.isinf(v):
        return "\u221e" if v > 0 else "-\u221e"
    return f"{v:.2f}"


def ratio_text(ratio: Any, lower: Any, upper: Any) -> str:
    """'2.00 (1.23–3.10)'; infinite limits as '∞'; '' without a ratio."""
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return ""
    if lower is None or upper is None:
        return _ratio_num(ratio)
    return f"{_ratio_num(ratio)} ({_ratio_num(lower)}\u2013{_ratio_num(upper)})"


def signed_text(value: Any, scale: RateScale) -> str:
    """A difference in the rate's unit, signed: '+12.3 pp', '-$4.10 PMPM', '+20,000.0 per 100,000 member-years'."""
    if not _finite(value):
        return ""
    sign = "+" if value > 0 else ("-" if value < 0 else "")
    if scale.is_share:
        return f"{sign}{abs(scale.rounded(value)):.1f} pp"
    return f"{sign}{scale.text(abs(value))}"


def difference_text(d: Any, lower: Any, upper: Any, scale: RateScale) -> str:
    text = signed_text(d, scale)
    if not text:
        return ""
    if _finite(lower) and _finite(upper):
        return f"{text} ({signed_text(lower, scale) or '0'} to {signed_text(upper, scale) or '0'})"
    return text


def _group_label(row: dict[str, Any]) -> str:
    if row["stratifier"] == "overall":
        return "All"
    if row["stratifier"] == "collection_status":
        return CATEGORY_LABELS.get(str(row["stratum"]), str(row["stratum"]))
    return f"{row['stratum']}" + (" (reference)" if row.get("is_reference") else "")


def _payer_label(payer: str) -> str:
    return "All payers" if payer == "all" else payer.replace("_", " ").capitalize()


def table_row(row: dict[str, Any], *, labels: list[str]) -> dict[str, Any]:
    """Display cells of one plan-table row. A suppressed row shows the suppression label in every
    number cell and none of its numbers."""
    scale = RateScale.of(row.get("rate_type"), row.get("rate_per"))
    status = row.get("target_status")
    target = row.get("target_basis") or ""
    status_text = TARGET_STATUS_LABELS.get(status, "") if status else ""
    if bool(row.get("suppressed")):
        label = suppression_label(row.get("suppression_reason"))
        cells = [label] * 6
        return {"labels": labels, "cells": cells, "suppressed": True, "target": target,
                "status": status_text or ("insufficient data" if target else ""), "status_class": "insufficient"}
    cells = [
        format_count(row.get("members")),
        (format_count(row.get("numerator")) if not (scale.is_money or scale.rate_type == "share_of_spend")
         else (f"${row['numerator']:,.0f}" if _finite(row.get("numerator")) else "")),
        (format_count(row.get("denominator")) if scale.rate_type != "share_of_spend"
         else (f"${row['denominator']:,.0f}" if _finite(row.get("denominator")) else "")),
        scale.rate_with_ci(row.get("rate"), row.get("ci_lower"), row.get("ci_upper")) if row.get("rate") is not None else "no rate available",
        ("reference group" if row.get("is_reference") else
         difference_text(row.get("difference"), row.get("difference_ci_lower"), row.get("difference_ci_upper"), scale)),
        ("" if row.get("is_reference") else ratio_text(row.get("ratio"), row.get("ratio_ci_lower"), row.get("ratio_ci_upper"))),
    ]
    change = signed_text(row.get("change"), scale)
    if change and row.get("baseline_period"):
        change = f"{change} vs {row['baseline_period']} (baseline {scale.text(row['baseline_value'])})"
    return {"labels": labels, "cells": cells, "change": change, "suppressed": False, "target": target,
            "status": status_text, "status_class": (status or "").replace("_", "-")}


def _sort_rows(frame: pl.DataFrame) -> pl.DataFrame:
    payer_rank = {p: i for i, p in enumerate(PAYER_ORDER)}
    return (frame.with_columns(_p=pl.col("payer").replace_strict(payer_rank, default=len(PAYER_ORDER), return_dtype=pl.Int32),
                               _o=(pl.col("stratifier") != "overall"),
                               _r=~pl.col("is_reference").fill_null(False))
            .sort("_p", "payer", "metric_id", "submeasure", "_o", "stratifier", "_r", "stratum").drop("_p", "_o", "_r"))


def _sources(frame: pl.DataFrame) -> str:
    values = sorted({str(v) for v in frame.get_column("data_source").drop_nulls().to_list()})
    return ", ".join(PLAN_DATA_SOURCE_LABELS.get(v, v) for v in values) or "not stated"


def plan_table(frame: pl.DataFrame, *, title: str, label_columns: list[tuple[str, str]], note: str = "",
               table_name: str) -> dict[str, Any] | None:
    """One table block: rows (display cells), header labels, denominators, data source and scale."""
    if frame.height == 0:
        return None
    frame = _sort_rows(frame)
    rows = []
    for r in frame.iter_rows(named=True):
        labels = []
        for col, _ in label_columns:
            if col == "payer":
                labels.append(_payer_label(r["payer"]))
            elif col == "submeasure":
                labels.append("All" if r["submeasure"] in ("all", None) else submeasure_label(r["submeasure"]))
            elif col == "stratifier":
                labels.append(stratifier_label(r["stratifier"]))
            elif col == "group":
                labels.append(_group_label(r))
            elif col == "metric":
                labels.append(r.get("metric_title") or r["metric_id"])
            else:
                labels.append(str(r.get(col) or ""))
        rows.append(table_row(r, labels=labels))
    metrics = frame.get_column("metric_id").unique(maintain_order=True).to_list()
    denominators = [DENOMINATORS.get(m) or f"{m}: denominator and numerator as in public/rates." for m in metrics]
    scales = frame.select("rate_type", "rate_per").unique(maintain_order=True).rows()
    units = sorted({RateScale.of(t, p).description for t, p in scales})
    directions = sorted({DIRECTION_LABELS[d] for d in frame.get_column("direction").drop_nulls().to_list() if d in DIRECTION_LABELS})
    references = sorted({str(v) for v in frame.get_column("reference_stratum").drop_nulls().to_list()})
    return {
        "title": title, "label_headers": [h for _, h in label_columns], "rows": rows, "note": note,
        "denominators": denominators, "source": _sources(frame), "units": "; ".join(units),
        "direction": "; ".join(directions), "references": ", ".join(references),
        "has_change": any(r.get("change") for r in rows), "has_target": any(r.get("target") for r in rows),
        "table": table_name,
    }


# ---------------------------------------------------------------------------------------------------
# chart


def pqi_chart(rows: pl.DataFrame, unit_label: str, canvas: ChartCanvas | None = None) -> dict[str, Any] | None:
    """PNG data of the all-payer PQI90 rates by race/ethnicity of one unit, 95% CI whiskers; drawn on
    ``canvas`` when given (one canvas for all units: creating one costs more than drawing a chart)."""
    race = rows.filter((pl.col("metric_id") == PQI_METRIC) & (pl.col("payer") == "all") & (pl.col("stratifier") == "race_ethnicity")
                       & (pl.col("submeasure") == "all"))
    if race.height == 0:
        return None
    overall = rows.filter((pl.col("metric_id") == PQI_METRIC) & (pl.col("payer") == "all") & (pl.col("stratifier") == "overall")
                          & (pl.col("submeasure") == "all"))
    first = race.row(0, named=True)
    scale = RateScale.of(first["rate_type"], first["rate_per"])
    groups = groups_from_rows(race.to_dicts())
    ov = groups_from_rows(overall.to_dicts())[0] if overall.height else None
    title = first.get("metric_title") or PQI_METRIC
    chart = RateChart(groups=groups, overall=ov, title=title, subtitle=f"by race and ethnicity, {unit_label}, all payers",
                      direction=first.get("direction"), scale=scale)
    png = (canvas or ChartCanvas()).png(chart)
    shown = [g for g in groups if not g.suppressed]
    alt = (f"{title} by race and ethnicity, {unit_label}: "
           + "; ".join(f"{g.stratum} {scale.rate_with_ci(g.rate, g.ci_lower, g.ci_upper)}" for g in shown)
           + ("; " if shown and len(shown) < len(groups) else "")
           + "; ".join(f"{g.stratum} {suppression_label(g.suppression_reason)}" for g in groups if g.suppressed))
    return {"img": base64.b64encode(png).decode("ascii"), "alt": alt}


# ---------------------------------------------------------------------------------------------------
# sections


def _unit_label(level: str, unit_id: str) -> str:
    if level == "population":
        return "All members (every state in the run)"
    return f"{level.capitalize()} {unit_id}"


def _units(frame: pl.DataFrame) -> list[tuple[str, str]]:
    units = frame.select("unit_level", "unit_id").unique().rows()
    return sorted(units, key=lambda u: (UNIT_ORDER.get(u[0], 9), u[1]))


def _metric(frame: pl.DataFrame, metrics: tuple[str, ...] | str) -> pl.DataFrame:
    metrics = (metrics,) if isinstance(metrics, str) else metrics
    return frame.filter(pl.col("metric_id").is_in(list(metrics)))


def state_sections(state: pl.DataFrame) -> list[dict[str, Any]]:
    sections = []
    canvas: list[ChartCanvas] = []  # created at the first chart

    def chart(rows: pl.DataFrame, label: str) -> dict[str, Any] | None:
        if not canvas:
            canvas.append(ChartCanvas())
        return pqi_chart(rows, label, canvas[0])

    for level, unit_id in _units(state):
        rows = state.filter((pl.col("unit_level") == level) & (pl.col("unit_id") == unit_id))
        label = _unit_label(level, unit_id)
        pqi = _metric(rows, PQI_METRIC).filter(pl.col("stratifier").is_in(["overall", "race_ethnicity"]))
        tables = [
            plan_table(pqi, title="Potentially preventable admissions (PQI90) per 100,000 member-years by race and ethnicity",
                       label_columns=[("payer", "Payer"), ("group", "Race and ethnicity")], table_name="state_metrics",
                       note="Ratio and difference are against the reference group of the row's stratifier."),
            plan_table(_metric(rows, REL_METRICS), title="REL data completeness by payer",
                       label_columns=[("payer", "Payer"), ("metric", "Attribute"), ("group", "Collection status")],
                       table_name="state_metrics"),
            plan_table(_metric(rows, STATE_SDOH_METRICS), title="SDOH screening and positive rates by domain",
                       label_columns=[("payer", "Payer"), ("metric", "Metric"), ("submeasure", "Domain"), ("group", "Group")],
                       table_name="state_metrics"),
            plan_table(_metric(rows, COST_METRICS), title="Total cost of care PMPM and primary-care share of spend by group",
                       label_columns=[("payer", "Payer"), ("metric", "Metric"), ("stratifier", "Stratifier"), ("group", "Group")],
                       table_name="state_metrics"),
        ]
        other = rows.filter(~pl.col("metric_id").is_in([PQI_METRIC, *REL_METRICS, *STATE_SDOH_METRICS, *COST_METRICS])
                            | ((pl.col("metric_id") == PQI_METRIC) & ~pl.col("stratifier").is_in(["overall", "race_ethnicity"])))
        tables.append(plan_table(other, title="Other plan measures by group",
                                 label_columns=[("payer", "Payer"), ("metric", "Measure"), ("submeasure", "Sub-measure"),
                                                ("stratifier", "Stratifier"), ("group", "Group")], table_name="state_metrics"))
        sections.append({"id": f"{level}-{unit_id}".lower().replace(" ", "-"), "title": label, "level": level,
                         "chart": chart(rows, label) if level in ("state", "region", "population") else None,
                         "tables": [t for t in tables if t]})
    return sections


def facility_sections(hospital: pl.DataFrame) -> list[dict[str, Any]]:
    sections = []
    for level, unit_id in _units(hospital):
        rows = hospital.filter((pl.col("unit_level") == level) & (pl.col("unit_id") == unit_id))
        tables = [
            plan_table(_metric(rows, HOSPITAL_OUTCOMES),
                       title="Readmission and ED revisit by race and ethnicity and dual status, with the within-hospital gap",
                       label_columns=[("metric", "Metric"), ("stratifier", "Stratifier"), ("group", "Group")],
                       note="The within-hospital gap is the difference column: the group's rate minus the reference "
                            "group's (Newcombe 95% interval); observed, unadjusted rates.", table_name="hospital_metrics"),
            plan_table(_metric(rows, SAFETY_NET), title="Safety-net shares",
                       label_columns=[("metric", "Metric"), ("group", "Group")], table_name="hospital_metrics"),
            plan_table(_metric(rows, FACILITY_SDOH), title="SDOH screening and positive rates at the facility",
                       label_columns=[("metric", "Metric"), ("submeasure", "Domain")], table_name="hospital_metrics"),
            plan_table(_metric(rows, REL_METRICS), title="REL data completeness among patients",
                       label_columns=[("metric", "Attribute"), ("group", "Collection status")], table_name="hospital_metrics"),
        ]
        other = rows.filter(~pl.col("metric_id").is_in([*HOSPITAL_OUTCOMES, *SAFETY_NET, *FACILITY_SDOH, *REL_METRICS]))
        tables.append(plan_table(other, title="Other hospital-plan metrics",
                                 label_columns=[("metric", "Metric"), ("submeasure", "Sub-measure"), ("stratifier", "Stratifier"),
                                                ("group", "Group")], table_name="hospital_metrics"))
        label = f"Facility {unit_id}" if level == "facility" else _unit_label(level, unit_id)
        sections.append({"id": f"{level}-{unit_id}".lower(), "title": label, "level": level, "chart": None,
                         "tables": [t for t in tables if t]})
    return sections


def _meta(frames: list[pl.DataFrame]) -> dict[str, str]:
    def values(col: str) -> str:
        out: set[str] = set()
        for f in frames:
            if col in f.columns:
                out |= {str(v) for v in f.get_column(col).drop_nulls().unique().to_list()}
        return ", ".join(sorted(out)) or "not stated"

    return {"program": values("program"), "rules_version": values("rules_version"), "period": values("period")}


def build_context(state: pl.DataFrame | None, hospital: pl.DataFrame | None, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    state = state if state is not None else pl.DataFrame()
    hospital = hospital if hospital is not None else pl.DataFrame()
    manifest = manifest or {}
    return {
        "run_id": str(manifest.get("run_id", "")),
        "created_at": str(manifest.get("created_at", "")),
        "meta": _meta([f for f in (state, hospital) if f.height]),
        "state_sections": state_sections(state) if state.height else [],
        "facility_sections": facility_sections(hospital) if hospital.height else [],
        "suppression_rule": SUPPRESSION_RULE,
        "n_state_rows": state.height, "n_hospital_rows": hospital.height,
    }


def render_state_plan_html(state: pl.DataFrame | None, hospital: pl.DataFrame | None, manifest: dict[str, Any] | None = None) -> str:
    return _environment().get_template(TEMPLATE_NAME).render(**build_context(state, hospital, manifest))


def render_state_plan(state: pl.DataFrame | None, hospital: pl.DataFrame | None, manifest: dict[str, Any] | None,
                      out_dir: Path) -> Path:
    """Write ``out_dir/state_plan.html`` (``out_dir`` is the run's ``report/`` folder) and return its path."""
    from equity_pipeline.io import write_text_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "state_plan.html"
    write_text_atomic(render_state_plan_html(state, hospital, manifest), path)
    return path


__all__ = ["build_context", "difference_text", "ratio_text", "render_state_plan", "render_state_plan_html", "table_row"]
