"""Sensitivity and simulation validation of the planner: intervals against textbook values, determinism of
paired runs, and the latency floor never covering less than the fitted model."""

import math

import pytest

from suanwang.planner.candidates import build_candidates, select_places
from suanwang.planner.instance import carbon_years, default_carbon_year
from suanwang.planner.sensitivity import sensitivity
from suanwang.planner.validate import interval, validate


def test_interval_matches_the_t_table():
    mean, half = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # s = sqrt(2.5); t(0.975, 4) = 2.7764 (standard table)
    assert mean == 3.0
    assert half == pytest.approx(2.7764 * math.sqrt(2.5) / math.sqrt(5), rel=1e-4)
    assert math.isnan(interval([4.0])[1])


def test_validation_is_paired_and_deterministic(atlas, network):
    _, cands = build_candidates(atlas, select_places(atlas, ["许昌"]))
    year = default_carbon_year(atlas)
    rows = validate(
        atlas,
        network,
        {"status quo": [], "again": [], "xuchang": [cands[0].site]},
        seeds=2,
        jobs=150,
        days=0.5,
        carbon_year=year,
    )
    sq, again, xc = rows
    assert [r["scenario"] for r in rows] == ["status quo", "again", "xuchang"]
    for m in ("cost_cny", "carbon_t", "deadline_misses"):
        assert again[m] == sq[m]  # same jobs, same world: identical
        assert again[f"{m}_vs_first"] == 0.0
        assert sq[f"{m}_ci95"] >= 0.0
    assert xc["seeds"] == 2


def test_sensitivity_variants_and_conclusions(atlas, network):
    places = select_places(atlas, ["许昌", "武汉", "成都"])
    out = sensitivity(atlas, network, places, carbon_year=default_carbon_year(atlas))
    names = [r["variant"] for r in out["variants"]]
    assert names[0] == "base"
    assert any("fibre floor" in n for n in names) and any("measured" in n for n in names)
    assert sum("carbon year" in n for n in names) == len(carbon_years(atlas)) - 1
    assert sum("candidate prices" in n for n in names) == 2
    base = out["variants"][0]
    floor = next(r for r in out["variants"] if "fibre floor" in r["variant"])
    assert floor["base_best_capitals_5ms"] >= base["base_best_capitals_5ms"]  # less latency never covers less
    assert len(out["conclusions"]) == 5
