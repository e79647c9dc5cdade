"""The tenants section's new figures (borrowed, reclaimed, preemptions, lost work) against hand-computed runs,
tenants in scenario files (a file or inline, with row/field errors), the scenario's simulation defaults, the
shipped multi-tenant example through `simulate --scenario`, and the report's tenants section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tenancy_helpers import context_of, shanghai_job
from typer.testing import CliRunner

from suanwang.atlas.scenario import load_scenario
from suanwang.cli.main import app
from suanwang.errors import PolicyError
from suanwang.policy.priorities import parse_priorities
from suanwang.policy.quotas import QuotaRule, Tenancy
from suanwang.report import render_report
from suanwang.report.tenants import tenants_section
from suanwang.scheduler import SchedulerContext
from suanwang.sim.simulator import Simulation
from suanwang.sim.tenants import tenant_summary
from suanwang.workload.job import Job

EXAMPLE = Path(__file__).parent.parent / "examples" / "scenario-tenants.yaml"


def one_site() -> SchedulerContext:
    return context_of("shanghai-dc")


def job(i: int, tenant: str, cores: int, runtime_h: float, submit_h: float, cls: str = "batch") -> Job:
    return shanghai_job(f"{tenant}-{i}", tenant, cores, runtime_h, submit_h, latency_class=cls)


def rows(sec: dict) -> dict[str, dict]:
    return {r["tenant"]: r for r in sec["tenants"]}


def test_borrowed_and_reclaimed_core_hours_by_hand():
    """As in test_tenancy_cohorts: a borrows 100 cores over [0.01, 1) and [3, 10); its borrowed run is reclaimed
    at 1 h after 0.99 h: reclaimed 99 core-h, all of it lost (no checkpoints)."""
    rules = (QuotaRule("QA", "a", cores=100, borrow_cores=100), QuotaRule("QB", "b", cores=100))
    t = Tenancy("t", {}, rules, cohorts={"fin": ("a", "b")})
    jobs = [job(0, "a", 100, 10.0, 0.0), job(1, "a", 100, 10.0, 0.01), job(2, "b", 60, 2.0, 1.0)]
    run = Simulation(one_site(), jobs, "online", horizon_h=30, tenancy=t).run()
    sec = tenant_summary(run, one_site(), t, 30)
    a, b = rows(sec)["a"], rows(sec)["b"]
    assert a["borrowed_core_hours"] == pytest.approx(799.0) and b["borrowed_core_hours"] == 0
    assert a["reclaims"] == 1 and a["reclaimed_core_hours"] == pytest.approx(99.0)
    assert a["lost_core_hours"] == pytest.approx(99.0) and a["preemptions"] == 0
    # work done counts the lost hour once: 100 * (10 + 10) + 100 * 0.99
    assert a["core_hours"] == pytest.approx(2099.0, abs=0.1)
    assert sec["evictions"]["by_rule"] == {"R1": 1} and sec["evictions"]["first"][0]["job"] == "a-1"
    q = {x["id"]: x for x in sec["quotas"]}
    assert q["QA"]["peak_cores"] == 200 and q["QA"]["borrow_cores"] == 100  # the audit sees the borrowed run


def test_preemptions_and_lost_core_hours_by_hand():
    """A batch job (checkpoint every 1 h) holding the site is evicted at 2.5 h by a realtime job: 2 h kept, 0.5 h
    lost, the job resumes when the realtime one ends."""
    cap = one_site().sites[0].cpu_cores
    prio = parse_priorities(
        [{"name": "realtime"}, {"name": "batch", "preemptible": True, "checkpoint_h": 1}], None, "t.yaml"
    )
    t = Tenancy("t", priorities=prio)
    jobs = [job(0, "bulk", cap, 5.0, 0.0), job(1, "live", cap, 1.0, 2.5, "realtime")]
    run = Simulation(one_site(), jobs, "online", horizon_h=20, tenancy=t).run()
    sec = tenant_summary(run, one_site(), t, 20)
    bulk = rows(sec)["bulk"]
    assert bulk["preemptions"] == 1 and bulk["lost_core_hours"] == pytest.approx(0.5 * cap, rel=1e-6)
    assert bulk["core_hours"] == pytest.approx(5.5 * cap, rel=1e-3)  # 5 h of work plus the lost half hour
    assert run.end_h[0] == pytest.approx(3.5 + 3.0)
    assert sec["evictions"]["first"][0]["why"] == "preempted by job live-1, class realtime, rule P1"
    html = tenants_section({"policies": {"online": {"tenants": sec}}}, "online", "en")
    assert "preempted by job live-1, class realtime, rule P1" in html and "Jain" in html


def test_scenario_tenants_inline_and_from_a_file(tmp_path):
    sc = load_scenario(EXAMPLE)
    t = sc.tenancy
    assert t.cohorts == {"finance": ("bank-a", "bank-b")} and t.priorities.classes[0].name == "realtime"
    assert [r.text for r in t.spill_over["bank-a"]] == ["shanghai", "yangtze-delta", "west"]
    assert sc.simulation.days == 0.5 and sc.simulation.policies == ["local-only", "online"]
    (tmp_path / "t.yaml").write_text("tenants: {a: 2}\nquotas: [{id: Q1, tenant: a, cores: 5}]\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text("name: s\ntenants: t.yaml\n", encoding="utf-8")
    assert load_scenario(tmp_path / "s.yaml").tenancy.weight("a") == 2.0
    (tmp_path / "bad.yaml").write_text("name: s\ntenants:\n  quotas: [{id: Q1, tenant: a, cores: lots}]\n", "utf-8")
    with pytest.raises(PolicyError) as e:
        load_scenario(tmp_path / "bad.yaml")
    assert str(e.value).startswith("bad.yaml tenants, row 1, field 'cores'")
    (tmp_path / "gone.yaml").write_text("name: s\ntenants: nowhere.yaml\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["simulate", "--scenario", str(tmp_path / "gone.yaml")])
    assert res.exit_code == 2 and "tenants" in res.output and "Traceback" not in res.output


def test_scenario_simulation_defaults_and_the_options_that_override_them(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text(
        "name: s\nsimulation: {days: 0.1, jobs: 40, policies: [online]}\ntenants: {tenants: {a: 1}}\n", "utf-8"
    )
    out = tmp_path / "r"
    res = CliRunner().invoke(app, ["simulate", "--scenario", str(s), "--out", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["meta"]["jobs"] == 40 and data["meta"]["days"] == 0.1 and list(data["policies"]) == ["online"]
    args = ["simulate", "--scenario", str(s), "--out", str(out), "--workers", "1", "--jobs", "30"]
    res = CliRunner().invoke(app, [*args, "--policies", "local-only,online"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["meta"]["jobs"] == 30 and list(data["policies"]) == ["local-only", "online"]


def test_the_multi_tenant_example_simulates_with_a_tenants_section(tmp_path):
    out = tmp_path / "r"
    args = ["simulate", "--scenario", str(EXAMPLE), "--out", str(out), "--workers", "1", "--jobs", "600"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "tenants; Jain's index" in res.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for r in data["policies"].values():
        sec = r["tenants"]
        assert {t["tenant"] for t in sec["tenants"]} >= {"bank-a", "bank-b", "ai-lab", "render-farm", "public"}
        assert sum(t["jobs"] for t in sec["tenants"]) == 600 and 0 < sec["jain_index"] <= 1
        for q in sec["quotas"]:  # within the cap plus what the rule may borrow
            assert q["cores"] is None or q["peak_cores"] <= q["cores"] + q["borrow_cores"]
            assert q["cards"] is None or q["peak_cards"] <= q["cards"] + q["borrow_cards"]
        assert all(t["lost_core_hours"] >= 0 and t["borrowed_core_hours"] >= 0 for t in sec["tenants"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'class="card tenants"' in html and "Jain" in html
    assert 'class="card tenants"' not in render_report(
        {**data, "policies": {n: {k: v for k, v in r.items() if k != "tenants"} for n, r in data["policies"].items()}}
    )
