"""Small-cell suppression: primary 1-10 rule and complementary suppression along margins."""
from __future__ import annotations

import itertools

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from equity_pipeline.suppression import MIN_CELL, suppress


def table(cells: dict[tuple[str, str, str], tuple[int, int]]) -> pl.DataFrame:
    """cells keyed by (unit_id, stratifier, stratum) -> (denominator, numerator); unit 'all' is population."""
    rows = [{"measure_id": "BCS", "period": "2025", "unit_level": "population" if u == "all" else "state", "unit_id": u,
             "stratifier": s, "stratum": g, "denominator": d, "numerator": n} for (u, s, g), (d, n) in cells.items()]
    return pl.DataFrame(rows)


def test_primary_and_zero():
    t = table({("all", "overall", "all"): (100, 50), ("all", "race", "A"): (5, 2), ("all", "race", "B"): (95, 48)})
    out = suppress(t)
    s = dict(zip(out["stratum"], out["suppressed"]))
    # A is small; B must be suppressed too, otherwise A = overall - B
    assert s == {"all": False, "A": True, "B": True}
    assert out.filter(pl.col("suppressed"))["denominator"].null_count() == 2


def test_complement_of_numerator_is_a_small_cell():
    t = table({("all", "overall", "all"): (200, 100), ("all", "race", "A"): (50, 45), ("all", "race", "B"): (150, 55)})
    out = suppress(t)
    # A: 45 screened of 50 means 5 unscreened, a small cell
    assert out.filter(pl.col("stratum") == "A")["suppressed"][0]


def test_zero_numerator_is_published():
    t = table({("all", "overall", "all"): (100, 0), ("all", "race", "A"): (40, 0), ("all", "race", "B"): (60, 0)})
    assert not suppress(t)["suppressed"].any()


def _recoverable(out: pl.DataFrame, full: pl.DataFrame) -> bool:
    """True if some suppressed cell's count can be derived as total - sum(published) in one margin."""
    pub = out.join(full, on=["unit_id", "stratifier", "stratum"], suffix="_true")
    for (unit,), g in pub.group_by(["unit_id"]):
        tot = g.filter(pl.col("stratifier") == "overall")
        cells = g.filter(pl.col("stratifier") != "overall")
        if tot["suppressed"][0]:
            continue
        hidden = cells.filter(pl.col("suppressed"))
        if hidden.height == 1:
            return True
        for col in ("denominator", "numerator"):
            s = hidden[f"{col}_true"].sum()
            if 1 <= s < MIN_CELL:
                return True
    return False


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=2, max_size=6))
def test_no_small_cell_can_be_recovered_within_a_stratifier(pairs):
    cells = {("all", "race", f"G{i}"): (d + n, n) for i, (d, n) in enumerate(pairs)}
    total = (sum(v[0] for v in cells.values()), sum(v[1] for v in cells.values()))
    cells[("all", "overall", "all")] = total
    full = table(cells).select("unit_id", "stratifier", "stratum", "denominator", "numerator")
    out = suppress(table(cells))
    published = out.filter(~pl.col("suppressed"))
    d, n = published["denominator"], published["numerator"]
    for x in itertools.chain(d, n, d - n):
        assert not (1 <= x < MIN_CELL)
    assert not _recoverable(out, full)


def test_state_margin_protects_population_totals():
    cells = {
        ("all", "overall", "all"): (300, 150),
        ("MA", "overall", "all"): (295, 147), ("RI", "overall", "all"): (5, 3),
        ("all", "race", "A"): (300, 150), ("MA", "race", "A"): (295, 147), ("RI", "race", "A"): (5, 3),
    }
    out = suppress(table(cells))
    s = {(u, st_): v for u, st_, v in zip(out["unit_id"], out["stratifier"], out["suppressed"])}
    # RI is small; MA must go too (or the population row), else RI = all - MA
    assert s[("RI", "overall")] and (s[("MA", "overall")] or s[("all", "overall")])
