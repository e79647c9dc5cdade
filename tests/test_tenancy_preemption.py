"""Priority classes and preemption: the file, the victim choice against a brute-force oracle, a hand-built
eviction with checkpoints and its explanation, protection after N evictions, and the properties that every
job eventually runs with enough capacity (no starvation) and that preempted work is counted exactly once."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tenancy_helpers import atlas, context_of, shanghai_job

from suanwang.errors import PolicyError
from suanwang.policy.priorities import Priorities, parse_priorities
from suanwang.policy.quotas import Tenancy, parse_tenancy
from suanwang.scheduler import SchedulerContext
from suanwang.scheduler.preemption import Running, fewest, preemption_victims
from suanwang.sim.records import DONE
from suanwang.sim.simulator import Simulation
from suanwang.workload.job import Job

CLASSES = [
    {"name": "realtime", "preemptible": False},
    {"name": "interactive", "preemptible": True},
    {"name": "batch", "preemptible": True},
]


def one_site() -> SchedulerContext:
    """Shanghai's data centre alone (49,600 cores, 248 cards), within 5 ms of Shanghai's users."""
    return context_of("shanghai-dc")


def job(i, cls: str, cores: int, runtime_h: float = 1.0, submit_h: float = 0.0, cards: int = 0, tenant="t") -> Job:
    return shanghai_job(f"{cls}-{i}", tenant, cores, runtime_h, submit_h, gpu_cards=cards, latency_class=cls)


def prio(checkpoint_h=None, protect_after=3, protect_h=6.0) -> Priorities:
    classes = [dict(c) for c in CLASSES]
    if checkpoint_h:
        classes[2]["checkpoint_h"] = checkpoint_h
    return parse_priorities(classes, {"protect_after": protect_after, "protect_h": protect_h}, "t.yaml")


# --- the file ----------------------------------------------------------------------------------------------
def test_classes_rank_highest_first_and_map_jobs():
    p = parse_priorities(
        [*CLASSES, {"name": "vip", "tenants": ["hospital"], "latency_classes": []}][:3]
        + [{"name": "gold", "tenants": ["hospital"]}],
        None,
    )
    ranks = {c.name: c.rank for c in p.classes}
    assert ranks == {"realtime": 4, "interactive": 3, "batch": 2, "gold": 1}
    assert p.of(job(0, "batch", 1)).name == "batch" and p.of(job(0, "batch", 1, tenant="hospital")).name == "gold"
    assert p.protect_after == 3 and p.protect_h == 6.0
    t = parse_tenancy({"priority_classes": CLASSES, "preemption": {"protect_after": 2}}, atlas(), "t.yaml")
    assert t.priorities.protect_after == 2 and t.priorities.rank(job(0, "realtime", 1)) == 3


@pytest.mark.parametrize(
    "classes, pre, where",
    [
        ([{"preemptible": True}], None, "row 1, field 'name'"),
        ([{"name": "a"}, {"name": "a"}], None, "row 2, field 'name'"),
        ([{"name": "a", "preemptible": "yes"}], None, "row 1, field 'preemptible'"),
        ([{"name": "a", "latency_classes": ["urgent"]}], None, "row 1, field 'latency_classes'"),
        ([{"name": "a", "checkpoint_h": 0}], None, "row 1, field 'checkpoint_h'"),
        ([{"name": "a", "rank": 3}], None, "row 1, field 'rank'"),
        ([], {"protect_after": 0}, "field 'preemption.protect_after'"),
        ([], {"protect_h": -1}, "field 'preemption.protect_h'"),
        ([], {"cooldown": 1}, "field 'preemption.cooldown'"),
    ],
)
def test_bad_classes_name_row_and_field(classes, pre, where):
    with pytest.raises(PolicyError) as e:
        parse_priorities(classes, pre, "t.yaml")
    assert str(e.value).startswith("t.yaml") and where in str(e.value) and "\n" not in str(e.value)


# --- the victim choice -----------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(1, 50), st.integers(0, 4)), min_size=1, max_size=7),
    need=st.tuples(st.integers(-5, 120), st.integers(-2, 8)),
)
def test_fewest_victims_against_brute_force(sizes, need):
    p = prio()
    pool = [Running(k, 0, job(k, "batch", c, cards=g), float(k)) for k, (c, g) in enumerate(sizes)]
    need_c, need_g = need
    if need_c <= 0 and need_g <= 0:
        return
    got = fewest(pool, need_c, need_g, p)

    def enough(sub):
        return sum(r.job.cpu_cores for r in sub) >= need_c and sum(r.job.gpu_cards for r in sub) >= need_g

    best = next((n for n in range(len(pool) + 1) for sub in itertools.combinations(pool, n) if enough(sub)), None)
    if best is None:
        assert got is None
        return
    assert got is not None and enough(got)
    assert all(not enough([x for x in got if x is not r]) for r in got)  # never more than it needs
    if need_g <= 0 or need_c <= 0:
        assert len(got) == best  # one resource short: the fewest possible


def test_victims_are_lower_preemptible_classes_at_one_site_and_protected_ones_are_spared():
    p = prio(protect_after=2, protect_h=5.0)
    run = [
        Running(1, 0, job(1, "batch", 60), 0.0),
        Running(2, 0, job(2, "interactive", 60), 1.0),
        Running(3, 0, job(3, "realtime", 60), 2.0),  # not preemptible
        Running(4, 1, job(4, "batch", 30), 0.0),
        Running(5, 1, job(5, "batch", 30), 0.5, evictions=2, last_evicted_h=8.0),  # protected until 13 h
    ]
    rt = job(9, "realtime", 50)
    site, victims = preemption_victims(rt, [0, 1], [0, 0], [0, 0], run, p, 10.0)
    assert site == 0 and [v.key for v in victims] == [1]  # one victim suffices at 0; the batch one (lowest class)
    assert victims[0].why == "preempted by job realtime-9, class realtime, rule P1" and victims[0].rule == "P1"
    site, victims = preemption_victims(rt, [1], [0, 20], [0, 0], run, p, 10.0)
    assert site == 1 and [v.key for v in victims] == [4]  # 20 free + 30 = 50: one victim, 5 is protected
    assert preemption_victims(rt, [1], [0, 0], [0, 0], run, p, 10.0) is None  # 4 alone frees 30 < 50
    assert preemption_victims(rt, [1], [0, 0], [0, 0], run, p, 13.0) is not None  # protection over
    assert preemption_victims(job(8, "batch", 50), [0], [0], [0], run, p, 10.0) is None  # nothing lower


# --- in the simulator -----------------------------------------------------------------------------------------
def test_a_realtime_job_evicts_the_fewest_batch_jobs_and_they_resume_from_their_checkpoint():
    c = one_site()
    cap = c.sites[0].cpu_cores
    t = Tenancy("t", priorities=prio(checkpoint_h=1.0))
    jobs = [job(k, "batch", cap // 4, 6.0, 0.0) for k in range(4)] + [job(9, "realtime", cap // 4, 1.0, 2.5)]
    run = Simulation(c, jobs, "online", horizon_h=20, tenancy=t).run()
    assert all(s == DONE for s in run.status)
    (e,) = run.evictions  # one batch job makes room; the most recent start among equals (the last index)
    assert e.job == 3 and e.rule == "P1" and e.at_h == pytest.approx(2.5)
    assert e.why == "preempted by job realtime-9, class realtime, rule P1"
    assert e.saved_h == pytest.approx(2.0) and e.lost_h == pytest.approx(0.5)  # checkpoints at 1 h and 2 h
    start = {j: s for j, s in zip(run.segments.job.tolist(), run.segments.start_h.tolist(), strict=True)}
    assert start[4] == pytest.approx(2.5)  # the realtime job started at once
    # the evicted job restarts when the realtime one ends (3.5 h) and runs its remaining 4 h
    assert run.end_h[3] == pytest.approx(3.5 + 4.0)
    assert run.restarts[3] == 1


def test_protection_stops_repeated_eviction():
    c = one_site()
    cap = c.sites[0].cpu_cores
    t = Tenancy("t", priorities=prio(protect_after=1, protect_h=100.0))
    jobs = [job(0, "batch", cap, 10.0, 0.0), job(1, "realtime", cap, 1.0, 1.0), job(2, "realtime", cap, 1.0, 2.5)]
    run = Simulation(c, jobs, "online", horizon_h=30, tenancy=t).run()
    assert all(s == DONE for s in run.status)
    assert [e.job for e in run.evictions] == [0]  # evicted once by realtime-1; then protected
    start = sorted(zip(run.segments.start_h.tolist(), run.segments.job.tolist(), strict=True))
    assert [j for _, j in start] == [0, 1, 0, 2]  # realtime-2 waits for the protected batch job to end


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shapes=st.lists(
        st.tuples(
            st.sampled_from(["realtime", "interactive", "batch"]),
            st.integers(1, 49_600),
            st.floats(0.2, 4.0),
            st.floats(0.0, 8.0),
        ),
        min_size=1,
        max_size=25,
    ),
    checkpoint=st.sampled_from([None, 0.5, 1.0]),
    protect_after=st.integers(1, 3),
)
def test_no_starvation_and_preempted_work_counted_exactly_once(shapes, checkpoint, protect_after):
    c = one_site()
    t = Tenancy("t", priorities=prio(checkpoint_h=checkpoint, protect_after=protect_after, protect_h=2.0))
    jobs = sorted(
        (job(k, cls, cores, rt, sub) for k, (cls, cores, rt, sub) in enumerate(shapes)), key=lambda j: j.submit_h
    )
    run = Simulation(c, jobs, "online", horizon_h=12, tenancy=t).run()
    assert all(s == DONE for s in run.status), [r for r, s in zip(run.reason, run.status, strict=True) if s != DONE]
    # work: every run's core-hours = each job's once, plus what the evictions lost (each counted once)
    done = sum(
        j.cpu_cores * j.runtime_h * f
        for j, f in zip((jobs[k] for k in run.segments.job.tolist()), run.segments.frac.tolist(), strict=True)
    )
    lost = sum(jobs[e.job].cpu_cores * e.lost_h for e in run.evictions)
    assert done == pytest.approx(sum(j.cpu_cores * j.runtime_h for j in jobs) + lost, rel=1e-9, abs=1e-6)
    ranks = {"realtime": 3, "interactive": 2, "batch": 1}
    counts: dict[int, list[float]] = {}
    for e in run.evictions:
        victim = jobs[e.job]
        by = next(j for j in jobs if e.why.startswith(f"preempted by job {j.id},"))
        assert ranks[str(victim.latency_class)] < ranks[str(by.latency_class)]  # only lower classes
        assert e.lost_h >= 0
        if checkpoint is not None and victim.latency_class == "batch":  # only batch checkpoints (prio())
            assert e.lost_h < checkpoint + 1e-9 and e.saved_h % checkpoint == pytest.approx(0.0, abs=1e-9)
        counts.setdefault(e.job, []).append(e.at_h)
    for times in counts.values():  # protection: after protect_after evictions, none within protect_h
        for k in range(protect_after, len(times)):
            assert times[k] >= times[k - 1] + 2.0 - 1e-9, times
    assert all(math.isfinite(x) for x in run.end_h)
