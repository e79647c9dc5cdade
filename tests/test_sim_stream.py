"""Streamed runs: demand day by day into the simulator gives the same jobs, decisions and metrics as one list."""

from __future__ import annotations

import json
from functools import cache

import pytest

from suanwang.atlas import load_atlas
from suanwang.scheduler import SchedulerContext
from suanwang.sim.faults import Outage
from suanwang.sim.metrics import summarise
from suanwang.sim.records import DONE, FAILED, REJECTED
from suanwang.sim.simulator import Simulation
from suanwang.workload.demand import DemandError, national_demand_days


@cache
def ctx() -> SchedulerContext:
    return SchedulerContext.build(load_atlas())


@cache
def days(n_days: int, jobs: int, seed: int) -> tuple[tuple, ...]:
    return tuple(tuple(d.jobs) for d in national_demand_days(ctx().atlas, jobs, n_days, seed=seed))


def test_days_split_the_jobs_number_on_and_do_not_depend_on_each_other():
    three = days(3, 1001, 4)
    assert [len(d) for d in three] == [334, 334, 333]
    flat = [j for d in three for j in d]
    assert [j.id for j in flat] == [f"j{i:08d}" for i in range(1001)]
    assert [j.submit_h for j in flat] == sorted(j.submit_h for j in flat)
    for d, jobs in enumerate(three):
        assert all(24.0 * d <= j.submit_h < 24.0 * (d + 1) for j in jobs)
    # day 1 of a longer run is the same draw (the same jobs, ids apart) as day 1 of a shorter one
    five = days(5, 5 * 334, 4)
    assert [(j.origin, j.runtime_h, j.submit_h) for j in five[1]] == [
        (j.origin, j.runtime_h, j.submit_h) for j in three[1]
    ]
    assert [j.origin for j in days(3, 1001, 5)[0]] != [j.origin for j in three[0]]


def test_days_must_be_whole():
    with pytest.raises(DemandError, match="whole number"):
        next(national_demand_days(ctx().atlas, 100, 1.5))


@pytest.mark.parametrize("policy", ["nearest", "online", "batch-lp"])
def test_a_streamed_run_equals_the_run_of_all_jobs_at_once(policy):
    chunks = days(3, 1500, 2)
    jobs = [j for d in chunks for j in d]
    kw = {"horizon_h": 72.0, "outages": [Outage(ctx().sites[5].id, 20.0, 40.0)]}
    whole = Simulation(ctx(), jobs, policy, **kw).run()
    sim = Simulation(ctx(), [], policy, more=(list(d) for d in chunks), **kw)
    streamed = sim.run()
    assert streamed.status == whole.status and streamed.reason == whole.reason
    assert list(streamed.end_h) == list(whole.end_h) and streamed.restarts == whole.restarts
    assert streamed.segments == whole.segments and streamed.events == whole.events
    a, b = summarise(whole, ctx(), 2022), summarise(streamed, ctx(), 2022)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["totals"]["jobs"] == len(jobs) and a["totals"]["done"] > 0.8 * len(jobs)
    # every job ended, and the streamed run let go of each Job object when it did
    assert all(s in (DONE, FAILED, REJECTED) for s in streamed.status)
    assert streamed.jobs == [] and all(j is None for j in sim.jobs) and len(sim.jobs) == len(jobs)


def test_streamed_jobs_out_of_submit_order_are_refused():
    first, second = days(2, 200, 1)
    sim = Simulation(ctx(), [], "nearest", horizon_h=48.0, more=[list(second), list(first)])
    with pytest.raises(ValueError, match="submit order"):
        sim.run()


def test_a_run_pauses_the_garbage_collector_and_restores_it(monkeypatch):
    import gc

    import suanwang.sim.simulator as simulator

    chunks = days(2, 300, 3)
    seen, collected = [], []
    monkeypatch.setattr(simulator, "GC_EVERY_JOBS", 100)  # a full collection every 100 jobs read
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(a) or 0)

    class Watch(Simulation):
        def _sample(self, hour: int) -> None:
            seen.append(gc.isenabled())
            super()._sample(hour)

    assert gc.isenabled()
    Watch(ctx(), [], "nearest", horizon_h=48.0, more=(list(d) for d in chunks)).run()
    assert seen and not any(seen) and gc.isenabled()
    assert len(collected) == 1  # after the second day (300 jobs read; the first day is read before the pause)
    gc.disable()
    try:
        Simulation(ctx(), [], "nearest", horizon_h=48.0, more=(list(d) for d in chunks)).run()
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
