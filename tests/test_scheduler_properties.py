"""Property tests of the online pipeline and baselines over random scenarios (random site subsets with random
capacities, random jobs): hard rules are never broken, no job is dropped, baselines pick the argmin of their
criterion, and opportunistic batching never changes a decision. The oracle below re-derives every rule from the
atlas and the network model, not from the scheduler's arrays."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanwang.atlas import load_atlas
from suanwang.policy import ResidencyRules, Rule, national_rules
from suanwang.scheduler import POLICIES, ClusterState, SchedulerContext, make_policy
from suanwang.scheduler.costs import estimate
from suanwang.workload.job import MAX_ONE_WAY_MS, DataClass, Job, LatencyClass

ATLAS = load_atlas()
SITES = ATLAS.sites
ORIGINS = [p for p in ATLAS.capitals] + [ATLAS.place(n) for n in ("许昌", "苏州", "深圳", "庆阳", "中卫")]
PROVINCES = sorted(ATLAS.provinces)
TENANTS = ("public", "bank-a", "hospital")
LABELS = ((), ("gov-cloud",), ("ai",), ("national",))

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scenarios(draw):
    idx = draw(st.lists(st.integers(0, len(SITES) - 1), min_size=1, max_size=14, unique=True))
    sites = [
        replace(SITES[i], cpu_cores=draw(st.integers(0, 96)), gpu_cards=draw(st.integers(0, 8))) for i in sorted(idx)
    ]
    jobs = []
    for k in range(draw(st.integers(1, 25))):
        origin = draw(st.sampled_from(ORIGINS))
        cpu = draw(st.integers(0, 48))
        gpu = draw(st.integers(0 if cpu else 1, 4))
        runtime = draw(st.floats(0.1, 30.0))
        submit = draw(st.floats(0.0, 48.0))
        slack = draw(st.none() | st.floats(0.0, 6.0))
        jobs.append(
            Job(
                id=f"j{k}",
                origin=origin.adcode,
                origin_province=origin.province_id,
                cpu_cores=cpu,
                gpu_cards=gpu,
                runtime_h=runtime,
                input_gb=draw(st.sampled_from([0.0, 10.0, 500.0, 5000.0]) | st.floats(0.001, 5000.0)),
                output_gb=draw(st.sampled_from([0.0, 1.0])),
                data_province=draw(st.sampled_from([origin.province_id, *PROVINCES])),
                latency_class=draw(st.sampled_from(list(LatencyClass))),
                max_latency_ms=draw(st.none() | st.floats(2.0, 30.0)),
                submit_h=submit,
                deadline_h=None if slack is None else submit + runtime + slack,
                data_class=draw(st.sampled_from(list(DataClass))),
                tenant=draw(st.sampled_from(TENANTS)),
                labels=draw(st.sampled_from(LABELS)),
            )
        )
    jobs.sort(key=lambda j: j.submit_h)
    bank_provinces = draw(st.none() | st.sets(st.sampled_from(PROVINCES), min_size=1, max_size=6))
    return sites, jobs, draw(st.sampled_from(POLICIES)), bank_provinces


def build(sites, bank_provinces) -> SchedulerContext:
    """The context with the national rules, plus tenant rule T1 (bank-a stays in given provinces) if drawn."""
    rules = national_rules()
    if bank_provinces:
        t1 = Rule("T1", "bank-a provinces", tenants=frozenset({"bank-a"}), within=frozenset(bank_provinces))
        rules = ResidencyRules((*rules.rules, t1))
    return SchedulerContext.build(ATLAS, sites=sites, rules=rules)


def static_rule(ctx: SchedulerContext, job: Job, i: int) -> str | None:
    """The first hard rule (independent oracle) site i breaks for `job`, ignoring capacity; None if none."""
    site = ctx.sites[i]
    origin = ATLAS.place(job.origin)
    bound = job.max_latency_ms if job.max_latency_ms is not None else MAX_ONE_WAY_MS[job.latency_class]
    if ctx.network.one_way_ms(origin, site) > bound:
        return "latency"
    strict = job.data_class in (DataClass.SENSITIVE, DataClass.CORE)
    if strict and site.province_id != job.data_province:
        return "residency R2"
    if job.data_class == DataClass.CORE and "gov-cloud" not in site.labels:
        return "residency R3"
    t1 = next((r for r in ctx.rules.rules if r.id == "T1"), None)
    if t1 is not None and job.tenant == "bank-a" and site.province_id not in t1.within:
        return "residency T1"
    if not set(job.labels) <= set(site.labels):
        return "labels"
    return None


def job_rule(ctx: SchedulerContext, state: ClusterState, job: Job, now_h: float, i: int) -> str | None:
    """Total capacity and deadline (oracle); None if site i passes both."""
    if state.cpu_total[i] < job.cpu_cores or state.gpu_total[i] < job.gpu_cards:
        return "capacity"
    moved = ctx.sites[i].province_id != job.data_province
    transfer_h = float(ctx.network.transfer_h(job.input_gb)) if moved else 0.0
    if job.deadline_h is not None and now_h + transfer_h + job.runtime_h > job.deadline_h:
        return "deadline"
    return None


def has_room(state: ClusterState, job: Job, i: int) -> bool:
    return bool(state.up[i] and state.cpu_free[i] >= job.cpu_cores and state.gpu_free[i] >= job.gpu_cards)


def criterion(policy: str, ctx: SchedulerContext, job: Job, now_h: float) -> np.ndarray | None:
    """The raw criterion a single-criterion baseline minimises, or None."""
    e = estimate(ctx, job, now_h)
    return {"nearest": e.latency_ms, "local-only": e.latency_ms, "cheapest": e.cost_cny, "greenest": e.carbon_kg}.get(
        policy
    )


@PROPS
@given(scenarios(), st.data())
def test_hard_rules_hold_and_no_job_is_dropped(scenario, data):
    sites, jobs, policy, bank = scenario
    ctx = build(sites, bank)
    state = ClusterState.from_sites(sites)
    sched = make_policy(policy, ctx)
    placed = []
    for job in jobs:
        if placed and data.draw(st.booleans()):  # some jobs finish
            i, done = placed.pop(data.draw(st.integers(0, len(placed) - 1)))
            state.release(i, done)
        now = job.submit_h
        before = copy.deepcopy(state)
        statics = [static_rule(ctx, job, i) for i in range(len(sites))]
        local = [policy != "local-only" or s.province_id == job.origin_province for s in sites]
        ok = [statics[i] is None and local[i] and job_rule(ctx, before, job, now, i) is None for i in range(len(sites))]
        room = [ok[i] and has_room(before, job, i) for i in range(len(sites))]
        d = sched.place(job, state, now)
        assert d.policy == policy and d.job_id == job.id
        if d.placement is None:
            assert not any(room), f"{job.id} dropped although a feasible site had room: {d.reason}"
            assert d.retryable == any(ok)
            assert d.reason
            continue
        p = d.placement
        i = p.site_index
        assert sites[i].id == p.site_id
        assert ok[i] and room[i], (statics[i], d)
        assert p.start_h == now
        assert now + p.transfer_h + job.runtime_h <= job.deadline_h + 1e-9 if job.deadline_h is not None else True
        assert p.latency_ms <= job.latency_bound_ms
        assert state.cpu_free[i] == before.cpu_free[i] - job.cpu_cores
        assert state.gpu_free[i] == before.gpu_free[i] - job.gpu_cards
        crit = criterion(policy, ctx, job, now)
        if crit is not None:
            best = min(crit[k] for k in range(len(sites)) if room[k])
            assert crit[i] == best
        if policy == "local-only":
            assert sites[i].province_id == job.origin_province
        placed.append((i, job))
        assert (state.cpu_free >= 0).all() and (state.cpu_free <= state.cpu_total).all()
        assert (state.gpu_free >= 0).all() and (state.gpu_free <= state.gpu_total).all()


@PROPS
@given(
    scenarios(),
    st.sampled_from([None, {"balance": 1.0}, {"cost": 0.0, "carbon": 2.0, "latency": 1.0}]),
    st.lists(st.floats(0.5, 47.5), min_size=1, max_size=3),
)
def test_cached_pipeline_decides_like_uncached(scenario, weights, shifts_h):
    sites, jobs, policy, bank = scenario
    ctx = build(sites, bank)
    later = [
        replace(j, id=f"{j.id}-{d}", submit_h=j.submit_h + d, deadline_h=j.deadline_h and j.deadline_h + d)
        for d in [7.0, *shifts_h]
        for j in jobs
    ]
    # The first and second sighting of a score key in one hour are computed alone (scores that ignore the data
    # size shared between sizes), the third or one at another hour computes its whole day of start hours, then
    # repeated signatures hit the cache at the same and at other hours of the day.
    jobs = jobs + [replace(j, id=f"{j.id}-again{k}") for k in (1, 2) for j in jobs] + later
    w = weights if policy == "online" else None
    runs = []
    for cache in (True, False):
        state = ClusterState.from_sites(sites)
        sched = make_policy(policy, ctx, w, cache=cache)
        runs.append([(d.placement, d.reason, d.retryable) for d in (sched.place(j, state, j.submit_h) for j in jobs)])
    assert runs[0] == runs[1]  # the same site, bit-for-bit the same predictions, reason and retryable flag


@PROPS
@given(scenarios())
def test_explanations_name_the_rule_that_rejected_each_site(scenario):
    sites, jobs, policy, bank = scenario
    ctx = build(sites, bank)
    state, fresh_state = ClusterState.from_sites(sites), ClusterState.from_sites(sites)
    sched, fresh = make_policy(policy, ctx), make_policy(policy, ctx, cache=False)
    for job in jobs + [replace(j, id=f"{j.id}-again") for j in jobs]:  # the second time from the reasons cache
        before = copy.deepcopy(state)
        d = sched.place(job, state, job.submit_h, explain=True)
        assert d.verdicts == fresh.place(job, fresh_state, job.submit_h, explain=True).verdicts
        assert [v.site_id for v in d.verdicts] == [s.id for s in sites]
        for i, v in enumerate(d.verdicts):
            rule = static_rule(ctx, job, i)
            if policy == "local-only" and sites[i].province_id != job.origin_province:
                rule = "local-only"
            rule = rule or job_rule(ctx, before, job, job.submit_h, i)
            if rule is None and not has_room(before, job, i):
                rule = "capacity-free"
            if rule is None:
                assert v.passed and not v.reason
            else:
                assert not v.passed and v.reason.split(":")[0] == rule, (rule, v)
        if d.placement:
            assert d.verdicts[d.placement.site_index].passed
        elif not d.retryable:
            assert d.reason.startswith("no site can take")
