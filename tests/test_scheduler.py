"""Unit tests of the scheduler API: policies by name, weights, retryable vs rejected, round-robin, explain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from suanwang.errors import PolicyError
from suanwang.policy import parse_rules
from suanwang.scheduler import POLICIES, ClusterState, SchedulerContext, make_policy, parse_weights
from suanwang.workload.job import Job


@pytest.fixture(scope="module")
def ctx():
    from suanwang.atlas import load_atlas

    return SchedulerContext.build(load_atlas())


def job_from(ctx, city: str, **kw) -> Job:
    p = ctx.atlas.place(city)
    return Job(kw.pop("id", "j"), p.adcode, p.province_id, **kw)


def test_every_policy_is_made_and_named(ctx):
    for name in POLICIES:
        assert make_policy(name, ctx).name == name


def test_unknown_policy_and_bad_weights_are_clear(ctx):
    with pytest.raises(PolicyError, match="did you mean greenest"):
        make_policy("grenest", ctx)
    with pytest.raises(PolicyError, match="'speed'"):
        make_policy("online", ctx, {"speed": 1})
    with pytest.raises(PolicyError, match="not a finite weight"):
        parse_weights("cost=-1")
    with pytest.raises(PolicyError, match="name=value"):
        parse_weights("cost")
    assert parse_weights("cost=2, carbon=0.5") == {"cost": 2.0, "carbon": 0.5}


def test_full_cluster_is_retryable_and_release_makes_room(ctx):
    sites = [s for s in ctx.sites if s.id == "henan-dc"]
    small = SchedulerContext.build(ctx.atlas, sites=[replace(sites[0], cpu_cores=8, gpu_cards=0)])
    state = ClusterState.from_sites(small.sites)
    sched = make_policy("online", small)
    a = job_from(small, "郑州", id="a", cpu_cores=8)
    b = job_from(small, "郑州", id="b", cpu_cores=8)
    assert sched.place(a, state, 0.0).placed
    d = sched.place(b, state, 0.0)
    assert not d.placed and d.retryable and "retry" in d.reason
    state.release(0, a)
    assert sched.place(b, state, 1.0).placed
    huge = job_from(small, "郑州", id="c", cpu_cores=9)
    d = sched.place(huge, state, 1.0)
    assert not d.placed and not d.retryable and "capacity" in d.reason


def test_down_site_is_retryable_not_rejected(ctx):
    state = ClusterState.from_sites(ctx.sites)
    job = job_from(ctx, "郑州", data_class="core")
    state.up[ctx.site_ids.index("henan-dc")] = False
    d = make_policy("nearest", ctx).place(job, state, 0.0, explain=True)
    assert d.retryable and not d.placed
    henan = d.verdicts[ctx.site_ids.index("henan-dc")]
    assert henan.reason == "capacity-free: site is down now"


def test_infeasible_reason_names_rules(ctx):
    job = job_from(ctx, "郑州", data_class="core", labels=("ai",))
    d = make_policy("online", ctx).place(job, ClusterState.from_sites(ctx.sites), 0.0)
    assert not d.placed and not d.retryable
    assert "residency R2" in d.reason and "labels" in d.reason


def test_round_robin_rotates_over_feasible_sites(ctx):
    state = ClusterState.from_sites(ctx.sites)
    sched = make_policy("round-robin", ctx)
    chosen = [sched.place(job_from(ctx, "北京", id=f"j{k}"), state, 0.0).placement.site_index for k in range(50)]
    n = len(ctx.sites)
    assert chosen[:n] == list(range(n)) and chosen[n] == 0


def test_tenant_rules_from_a_policy_changes_placement(ctx):
    rules = parse_rules({"rules": [{"id": "T9", "tenants": ["acme"], "sites": ["qingyang"]}]}, ctx.atlas)
    tctx = SchedulerContext.build(ctx.atlas, rules=rules)
    state = ClusterState.from_sites(tctx.sites)
    d = make_policy("nearest", tctx).place(job_from(tctx, "北京", tenant="acme"), state, 0.0, explain=True)
    assert d.placement.site_id == "qingyang"
    assert all(v.reason.startswith("residency T9") for v in d.verdicts if not v.passed)


def test_deadline_excludes_slow_transfers(ctx):
    state = ClusterState.from_sites(ctx.sites)
    job = job_from(ctx, "上海", input_gb=50_000.0, runtime_h=1.0, deadline_h=1.5)
    d = make_policy("greenest", ctx).place(job, state, 0.0)
    assert d.placed and d.placement.transfer_h == 0.0
    assert ctx.sites[d.placement.site_index].province_id == "shanghai"


def test_placement_predictions_match_the_estimate(ctx):
    from suanwang.scheduler import estimate

    state = ClusterState.from_sites(ctx.sites)
    job = job_from(ctx, "广州", cpu_cores=16, gpu_cards=2, runtime_h=3.0, input_gb=100.0)
    p = make_policy("cheapest", ctx).place(job, state, 5.0).placement
    e = estimate(ctx, job, 5.0)
    assert p.cost_cny == pytest.approx(float(e.cost_cny.min()))
    assert p.carbon_kg == pytest.approx(float(e.carbon_kg[p.site_index]))
    assert p.start_h == 5.0
