"""`plan capacity`: the sized network checked by the hub LP (separate code), monotone in growth, and one-line
errors for targets no capacity can meet."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from suanwang.cli.main import app
from suanwang.planner.capacity import plan_capacity
from suanwang.planner.instance import TIER_CLASSES, Weights, build_instance, class_loads, default_carbon_year
from suanwang.planner.mip import evaluate
from suanwang.workload.job import LatencyClass

runner = CliRunner()


@pytest.fixture(scope="module")
def world():
    from suanwang.atlas import load_atlas
    from suanwang.network import Network

    atlas = load_atlas()
    return atlas, Network(atlas), default_carbon_year(atlas)


def test_sized_network_serves_the_target_by_the_hub_lp(world):
    atlas, net, year = world
    growth, miss = 1.6, 0.02
    plan = plan_capacity(atlas, net, growth=growth, max_miss=miss, carbon_year=year)
    assert (plan.add_cores >= -1e-6).all() and (plan.add_cards >= -1e-6).all()
    sized = plan.sized_sites()
    loads = {c: tuple(v * growth for v in x) for c, x in class_loads(atlas, list(atlas.sites)).items()}
    # the hub LP serves all batch: give it the share the plan serves
    loads[LatencyClass.BATCH] = tuple(v * plan.served["batch"] for v in loads[LatencyClass.BATCH])
    # the hub planner's LP on the sized sites, maximising each class's served share in turn (no cost weight)
    for c, cls in enumerate(TIER_CLASSES):
        w = Weights(float(c == 0), float(c == 1), 0.0, 0.0)
        inst, _ = build_instance(atlas, net, sized, [], carbon_year=year, loads=loads, weights=w)
        got = evaluate(inst, ())
        assert got.served[c] >= (1 - miss) * plan.served[f"{cls.value}_in_reach"] - 1e-6, cls


def test_capex_is_monotone_in_growth(world):
    atlas, net, year = world
    capex = [
        plan_capacity(atlas, net, growth=g, max_miss=0.02, carbon_year=year).capex_cny_per_year for g in (1.2, 1.6, 2.0)
    ]
    assert capex == sorted(capex)
    assert np.isfinite(capex).all()


def test_new_city_and_json():
    res = runner.invoke(app, ["plan", "capacity", "--growth", "1.3", "--at", "许昌", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["totals"]) >= {"add_cores", "add_cards", "capex_cny_per_year", "opex_cny_per_year", "served"}
    assert out["meta"]["capex_per_core"] and out["meta"]["capex_per_card"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--growth", "10", "--grow", "beijing-dc", "--max-miss", "0"], "--max-miss: 0 cannot be met"),
        (["--growth", "-1"], "--growth"),
        (["--at", "许倡"], "Did you mean: 许昌 Xuchang"),
        (["--grow", "nowhere-dc"], "--grow"),
        (["--max-miss", "1.5"], "--max-miss"),
    ],
)
def test_bad_capacity_input_is_one_line(args, needle):
    res = runner.invoke(app, ["plan", "capacity", *args])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert res.output.count("error:") == 1 and res.output.startswith("error:")  # one message (rich wraps at 160)
