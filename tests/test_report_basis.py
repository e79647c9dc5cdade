"""What the report's ratios and its "best" label are per: core-equivalent hours (GPU card-hours counted), core-hours
only for results without card-hours, totals without either; the page says so in both languages."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from suanwang.report import render_report
from suanwang.report.view import build_view
from suanwang.scheduler import SchedulerContext
from suanwang.sim.metrics import summarise
from suanwang.sim.records import DONE
from suanwang.sim.simulator import Simulation
from suanwang.workload.demand import national_demand

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_sample.json"
# The documented core-equivalent, read from the assumptions file itself (not from the code under test):
# W per busy GPU card / W per busy CPU core.
_ASSUMPTIONS = yaml.safe_load((ROOT / "src/suanwang/atlas/data/assumptions.yaml").read_text(encoding="utf-8"))
K = _ASSUMPTIONS["watts_per_gpu"]["value"] / _ASSUMPTIONS["watts_per_core"]["value"]


def _totals(cost: float, carbon: float, core_h: float, card_h: float | None, done: int = 100) -> dict:
    t = {
        "jobs": 100,
        "done": done,
        "cost_cny": cost,
        "carbon_t": carbon,
        "carbon_location_t": carbon * 1.5,
        "residency_violations": 0,
        "core_hours": core_h,
    }
    if card_h is not None:
        t["card_hours"] = card_h
    return t


def _gpu_heavy(with_cards: bool = True) -> dict:
    """A run where card-hours dominate: `gpu` did ten times the baseline's GPU work for the same money and carbon;
    `cpu` saved 10 % on the baseline's work. Per core-hour only, `cpu` looks best; with card-hours counted, `gpu`."""

    def card(x: float) -> float | None:
        return x if with_cards else None

    return {
        "meta": {"scenario": "national default"},
        "baseline": "local-only",
        "policies": {
            "local-only": {"totals": _totals(1000.0, 10.0, 1000.0, card(10.0))},
            "cpu": {"totals": _totals(900.0, 9.0, 1000.0, card(10.0))},
            "gpu": {"totals": _totals(1000.0, 10.0, 1000.0, card(100.0))},
        },
    }


def _payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_the_documented_core_equivalent_is_fifty():
    assert K == 50.0  # 400 W per card / 8 W per core; docs/simulation.md quotes this number


def test_card_hours_count_in_the_ratios_and_change_the_best():
    view = build_view(_gpu_heavy())
    assert view.ratio_basis == "core_equiv" and view.card_core_equivalent == K
    base_work = 1000.0 + K * 10.0
    gpu, cpu = view.policy("gpu"), view.policy("cpu")
    assert gpu.cost_ratio == pytest.approx((1000.0 / (1000.0 + K * 100.0)) / (1000.0 / base_work))
    assert gpu.carbon_ratio == pytest.approx((10.0 / (1000.0 + K * 100.0)) / (10.0 / base_work))
    assert gpu.carbon_location_ratio == pytest.approx(gpu.carbon_ratio)
    assert cpu.cost_ratio == pytest.approx(0.9) and cpu.carbon_ratio == pytest.approx(0.9)
    assert view.default_policy == "gpu"
    old = build_view(_gpu_heavy(with_cards=False))  # the same run without card-hours: CPU work only
    assert old.ratio_basis == "core"
    assert old.policy("gpu").cost_ratio == pytest.approx(1.0)
    assert old.default_policy == "cpu"


def test_the_run_may_state_its_own_core_equivalent():
    r = _gpu_heavy()
    r["meta"]["card_core_equivalent"] = 0.0  # cards count for nothing: as core-hours only
    view = build_view(r)
    assert view.card_core_equivalent == 0.0 and view.default_policy == "cpu"


def test_card_hours_from_site_load_when_totals_lack_them():
    r = _gpu_heavy()
    for p in r["policies"].values():
        t = p["totals"]
        p["site_load"] = [{"site_id": "a", "card_hours": t["card_hours"] / 2}] * 2
        del t["card_hours"]
    view = build_view(r)
    assert view.ratio_basis == "core_equiv" and view.default_policy == "gpu"


def test_without_core_hours_the_ratios_are_of_totals():
    r = _gpu_heavy()
    for p in r["policies"].values():
        del p["totals"]["core_hours"]
    view = build_view(r)
    assert view.ratio_basis == "total"
    assert view.policy("cpu").cost_ratio == pytest.approx(0.9)


@pytest.mark.parametrize(
    "lang, per, carbon, card",
    [
        ("en", "per core-equivalent hour", "Market-based", "GPU card-hours"),
        ("zh", "单位核时当量", "市场法", "GPU 卡时"),
    ],
)
def test_every_ratio_and_the_best_label_state_their_basis(lang, per, carbon, card):
    html = render_report(_gpu_heavy(), lang)
    t = _payload(html)["t"]
    assert f"{K:g}" in t["compare_note"] and card in t["compare_note"]
    for key in ("best", "best_note", "kpi_cost", "kpi_carbon", "ratio_chart"):
        assert per in t[key], key
    for key in ("kpi_carbon", "compare_note", "best_note"):
        assert carbon.lower() in t[key].lower(), key
    option = re.search(r'<option value="gpu" selected>([^<]*)</option>', html)
    assert option and per in option.group(1), "the best policy's label says what it is best per"
    assert t["best_note"] in html and t["carbon_location_ratio"] in html
    assert t["card_hours"] in html and "{" not in t["kpi_cost"] + t["best_note"]


@pytest.mark.parametrize("lang, says", [("en", "no GPU card-hours"), ("zh", "不含 GPU 卡时")])
def test_results_without_card_hours_say_gpu_work_is_not_counted(lang, says):
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    t = _payload(render_report(copy.deepcopy(results), lang))["t"]
    assert says in t["compare_note"]
    assert ("per CPU core-hour" if lang == "en" else "单位 CPU 核时") in t["best"]


def test_simulated_card_hours_are_cards_times_runtime_of_the_done_jobs():
    """Oracle: without outages every done job ran once, in full; nothing else ran."""
    from suanwang.atlas import load_atlas

    atlas = load_atlas()
    ctx = SchedulerContext.build(atlas)
    jobs = national_demand(atlas, jobs=200, days=0.25, seed=3).jobs
    run = Simulation(ctx, jobs, "nearest", horizon_h=6.0).run()
    done = [j for j, s in zip(jobs, run.status, strict=True) if s == DONE]
    res = summarise(run, ctx, 2023)
    assert res["totals"]["card_hours"] == pytest.approx(sum(j.gpu_cards * j.runtime_h for j in done), abs=0.01)
    assert res["totals"]["core_hours"] == pytest.approx(sum(j.cpu_cores * j.runtime_h for j in done), abs=0.01)
    assert res["totals"]["card_hours"] > 0
    assert sum(r["card_hours"] for r in res["site_load"]) == pytest.approx(res["totals"]["card_hours"], abs=0.1)
