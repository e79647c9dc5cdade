"""The simulator: event order, determinism, conservation of jobs, audits, outages and link cuts, results schema."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanwang.atlas import load_atlas
from suanwang.errors import UnknownPlaceError
from suanwang.scheduler import POLICIES, SchedulerContext
from suanwang.scheduler.decision import Placement
from suanwang.sim.engine import Engine
from suanwang.sim.faults import LinkCut, Outage
from suanwang.sim.metrics import summarise
from suanwang.sim.queues import _any_fits, _smallest
from suanwang.sim.records import DONE, FAILED, REJECTED, Run, Segments
from suanwang.sim.runner import SimulationError, check_policies, simulate, write_results
from suanwang.sim.simulator import Simulation
from suanwang.workload.demand import national_demand
from suanwang.workload.job import Job


@cache
def ctx() -> SchedulerContext:
    return SchedulerContext.build(load_atlas())


@cache
def demand():
    return national_demand(ctx().atlas, 400, 0.5, seed=3, sites=ctx().sites).jobs


def beijing_jobs(n: int, runtime_h: float = 10.0, input_gb: float = 5.0) -> list[Job]:
    bj = ctx().atlas.place("北京")
    return [
        Job(
            id=f"b{i}",
            origin=bj.adcode,
            origin_province=bj.province_id,
            cpu_cores=64,
            runtime_h=runtime_h,
            input_gb=input_gb,
            submit_h=0.1 * i,
            latency_class="batch",
        )
        for i in range(n)
    ]


# --- engine ---------------------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100, allow_nan=False), st.integers(0, 5)), max_size=60))
def test_engine_pops_in_time_priority_then_insertion_order(events):
    e = Engine()
    seen = []
    for n, (t, p) in enumerate(events):
        e.schedule(t, seen.append, (t, p, n), p)
    assert e.run() == len(events)
    assert seen == sorted(seen)


def test_engine_refuses_the_past_and_stops_at_until():
    e = Engine()
    hits = []
    e.schedule(1.0, hits.append, 1)
    e.schedule(5.0, hits.append, 5)
    assert e.run(until_h=2.0) == 1 and hits == [1] and e.now_h == 1.0
    with pytest.raises(ValueError):
        e.schedule(0.5, hits.append, 0)
    e.run()
    assert hits == [1, 5]


# --- whole runs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_every_job_ends_done_failed_or_rejected_with_zero_violations(policy):
    jobs = demand()
    run = Simulation(ctx(), jobs, policy, horizon_h=12).run()
    assert all(s in (DONE, FAILED, REJECTED) for s in run.status)
    assert all(run.reason[i] for i, s in enumerate(run.status) if s != DONE)
    t = summarise(run, ctx(), 2022)["totals"]
    assert t["done"] + t["failed"] + t["rejected"] == len(jobs)
    assert t["done"] > 0.8 * len(jobs)
    assert t["residency_violations"] == 0 and t["latency_violations"] == 0


def test_same_seed_same_numbers():
    a = summarise(Simulation(ctx(), demand(), "online", horizon_h=12).run(), ctx(), 2022)
    jobs = national_demand(ctx().atlas, 400, 0.5, seed=3, sites=ctx().sites).jobs
    b = summarise(Simulation(ctx(), jobs, "online", horizon_h=12).run(), ctx(), 2022)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_outage_moves_running_jobs_elsewhere_and_they_complete():
    jobs = beijing_jobs(5)
    run = Simulation(ctx(), jobs, "nearest", horizon_h=48, outages=[Outage("beijing-dc", 2.0, 200.0)]).run()
    bj = ctx().sites.index(ctx().atlas.site("beijing-dc"))
    assert all(s == DONE for s in run.status)
    assert all(r == 1 for r in run.restarts)
    seg = run.segments
    finals = [seg.site[k] for k in range(len(seg.job)) if seg.frac[k] >= 1.0]
    partial = [seg.site[k] for k in range(len(seg.job)) if seg.frac[k] < 1.0]
    assert partial == [bj] * 5 and len(finals) == 5 and bj not in finals
    # the lost work is counted: more energy than the same jobs without the outage
    calm = Simulation(ctx(), jobs, "nearest", horizon_h=48).run()
    assert sum(seg.energy_kwh) > sum(calm.segments.energy_kwh) * 0.99


def test_a_cut_link_is_never_used_by_jobs_that_move_data_over_it():
    jobs = beijing_jobs(6, runtime_h=2.0)
    free = Simulation(ctx(), jobs, "greenest", horizon_h=24).run()
    used = {free.segments.site[k] for k in range(len(free.segments.job))}
    target = ctx().sites[next(iter(used))]
    assert target.province_id != "beijing"  # greenest sends them out of Beijing
    cut = Simulation(ctx(), jobs, "greenest", horizon_h=24, cuts=[LinkCut("beijing", target.id, 0.0, 100.0)]).run()
    idx = ctx().sites.index(target)
    assert all(s == DONE for s in cut.status)
    assert idx not in set(cut.segments.site)
    # jobs without data to move may still use the site
    light = Simulation(
        ctx(), beijing_jobs(6, 2.0, 0.0), "greenest", horizon_h=24, cuts=[LinkCut("beijing", target.id, 0, 100)]
    ).run()
    assert idx in set(light.segments.site)


def test_full_sites_queue_jobs_and_retry_them_when_capacity_frees():
    # far more Beijing jobs than Beijing holds, local-only: later ones wait, none is lost
    site = ctx().atlas.site("beijing-dc")
    n = site.cpu_cores // 64 + 50
    jobs = [Job(**{**j.__dict__, "submit_h": 0.0}) for j in beijing_jobs(n, runtime_h=1.0, input_gb=0.0)]
    run = Simulation(ctx(), jobs, "local-only", horizon_h=4).run()
    assert all(s == DONE for s in run.status)
    waits = [run.end_h[i] - jobs[i].submit_h - jobs[i].runtime_h for i in range(n)]
    assert max(waits) >= 1.0 - 1e-9 and min(waits) == pytest.approx(0.0)


def test_unknown_outage_site_is_a_clear_error():
    with pytest.raises(UnknownPlaceError, match="nowhere"):
        Simulation(ctx(), demand(), "online", horizon_h=1, outages=[Outage("nowhere", 1, 2)])


def test_results_schema_and_files(tmp_path):
    results, stats = simulate(ctx(), demand()[:150], ["local-only", "greenest"], days=0.5, meta={"seed": 3})
    assert set(results) == {"meta", "sites", "provinces", "policies", "baseline", "signals"}
    assert results["baseline"] == "local-only" and stats["greenest"]["events"] > 0
    p = results["policies"]["greenest"]
    assert set(p) == {"totals", "flows", "site_load", "utilisation", "carbon_raised_routes"}
    assert set(p["totals"]) >= {"jobs", "done", "cost_cny", "carbon_location_t", "wait_p99_h", "west_share"}
    u = p["utilisation"]
    assert len(u["values"]) == len(u["hours"]) == 12 and len(u["values"][0]) == len(u["site_ids"])
    assert all(0.0 <= v <= 1.0 for row in u["values"] for v in row)
    for f in p["carbon_raised_routes"]:
        assert f["increase_t"] > 0
    assert sum(f["jobs"] for f in p["flows"]) == p["totals"]["done"]
    assert len(results["signals"]["price_cny_per_kwh"]["guian"]) == 24
    paths = write_results(results, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text(encoding="utf-8")) == results
    assert {x.name for x in paths} >= {"totals.csv", "flows.csv", "site_load.csv", "utilisation.csv"}


def test_bad_policy_names_the_option():
    with pytest.raises(SimulationError, match="--policies: 'fastest'"):
        check_policies(["fastest"])


def test_results_do_not_depend_on_the_number_of_workers():
    jobs = demand()[:120]
    one, _ = simulate(ctx(), jobs, ["nearest", "local-only"], days=0.5, meta={}, workers=1)
    two, _ = simulate(ctx(), jobs, ["nearest", "local-only"], days=0.5, meta={}, workers=2)
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert list(two["policies"]) == ["nearest", "local-only"]


def test_batch_lp_runs_twice_a_sites_capacity_of_jobs_inside_tight_deadlines():
    # one small site, twice as many batch jobs as it holds at once, deadlines 2.5 h for 1 h jobs: the plan and
    # the online queue behind it must run them all back to back, none rejected, none late
    atlas = ctx().atlas
    small = SchedulerContext.build(atlas, sites=[atlas.site("beijing-dc")])
    n = 2 * (atlas.site("beijing-dc").cpu_cores // 64)
    jobs = [Job(**{**j.__dict__, "submit_h": 0.0, "deadline_h": 2.5}) for j in beijing_jobs(n, 1.0, 0.0)]
    run = Simulation(small, jobs, "batch-lp", horizon_h=24).run()
    assert all(s == DONE for s in run.status), Counter(run.reason)
    assert max(run.end_h) <= 2.5


# --- audits and the batch plan's capacity profile --------------------------------------------------------
def _run_with(jobs: list[Job], placements: list[tuple[int, str]]) -> Run:
    """A hand-made run: job i ran to completion at the named site (whatever any policy would do)."""
    seg = Segments()
    for i, site_id in placements:
        s = ctx().site_ids.index(site_id)
        seg.add(i, Placement(jobs[i].id, site_id, s, jobs[i].submit_h, 1.0, 1.0, 1.0, 0.0, 0.0), jobs[i].submit_h, 1.0)
    n = len(jobs)
    end = [j.submit_h + j.runtime_h for j in jobs]
    return Run("hand", jobs, [DONE] * n, ["done"] * n, end, [0] * n, seg, [], [], 0)


def test_audits_count_every_segment_that_breaks_latency_or_residency():
    bj = ctx().atlas.place("北京")
    make = lambda i, **kw: Job(id=f"a{i}", origin=bj.adcode, origin_province=bj.province_id, **kw)  # noqa: E731
    jobs = [
        make(0, latency_class="realtime"),  # guian is far more than 5 ms from Beijing
        make(1, data_class="sensitive"),  # sensitive Beijing data must stay in Beijing
        make(2, data_class="core"),  # core data: gov-cloud sites of Beijing only
        make(3),  # public batch: anywhere
        make(4, data_class="sensitive"),
    ]
    run = _run_with(jobs, [(0, "guian"), (1, "guian"), (2, "guian"), (3, "guian"), (4, "beijing-dc")])
    t = summarise(run, ctx(), 2022)["totals"]
    assert t["latency_violations"] == 1
    assert t["residency_violations"] == 2  # jobs 1 and 2; job 4 stayed home
    ok = _run_with(jobs[3:4], [(0, "guian")])
    assert summarise(ok, ctx(), 2022)["totals"]["residency_violations"] == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(-8, 80), st.integers(1, 64)), max_size=12),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(1, 60), st.integers(1, 64)), max_size=12),
)
def test_free_profile_is_the_room_free_over_each_whole_slot(running, holds):
    # times on a quarter-hour grid so the slot arithmetic is exact; now = 10 h, slots of 1 h
    sim = Simulation(ctx(), [], "batch-lp", horizon_h=24)
    now, n_slots = 10.0, 2 * sim.sched.horizon_slots
    jobs = []
    for s, end_q, cores in running:  # running at site s, ending at now + end_q / 4 hours
        i = len(jobs)
        jobs.append(Job(id=f"r{i}", origin="", origin_province="x", cpu_cores=cores, gpu_cards=1, runtime_h=1.0))
        p = Placement(f"r{i}", ctx().site_ids[s], s, 0.0, 0, 0, 0, 0, now + end_q / 4 - 1.0)
        sim.running[s][i] = (p, 0.0)
    for s, start_q, len_q, cores in holds:  # planned at s from now + start_q / 4 for len_q / 4 hours
        i = len(jobs)
        jobs.append(Job(id=f"h{i}", origin="", origin_province="x", cpu_cores=cores, runtime_h=len_q / 4))
        sim.holds.items[i] = (s, now + start_q / 4, now + (start_q + len_q) / 4, cores, 0)
    sim.jobs, sim.cores, sim.cards = jobs, [j.cpu_cores for j in jobs], [j.gpu_cards for j in jobs]
    cpu, gpu = sim._free_profile(now)
    assert cpu.shape == gpu.shape == (len(ctx().sites), n_slots)
    for s in range(4):
        for k in range(n_slots):
            t0, t1 = now + k, now + k + 1
            released = [i for i, (p, st_h) in sim.running[s].items() if st_h + p.transfer_h + jobs[i].runtime_h <= t0]
            held = [i for i, (hs, a, b, _, _) in sim.holds.items.items() if hs == s and a < t1 and b > t0]
            want_cpu = (
                sim.state.cpu_free[s] + sum(jobs[i].cpu_cores for i in released) - sum(jobs[i].cpu_cores for i in held)
            )
            assert cpu[s, k] == want_cpu
            assert gpu[s, k] == sim.state.gpu_free[s] + len(released)


# --- the queue scan's shortcut ------------------------------------------------------------------------------
shapes = st.lists(st.tuples(st.integers(0, 64), st.integers(0, 8)), min_size=1, max_size=30)


@given(shapes, st.integers(0, 70), st.integers(0, 9))
@settings(max_examples=300, deadline=None)
def test_smallest_shapes_fit_exactly_when_some_shape_fits(window, free_c, free_g):
    smallest = _smallest(window)
    assert set(smallest) <= set(window)
    assert _any_fits(smallest, free_c, free_g) == any(c <= free_c and g <= free_g for c, g in window)


def test_queue_depth_below_one_is_refused_with_the_field_named():
    jobs = national_demand(ctx().atlas, 10, 1.0, seed=0).jobs
    with pytest.raises(ValueError, match="queue_depth"):
        Simulation(ctx(), jobs, "nearest", horizon_h=24, queue_depth=0)


class _EveryJobScan(Simulation):
    """The queue scan without its shortcuts: every queue of the site, oldest head first, and every job of its
    window that fits the room left when its turn comes."""

    def _retry(self, s: int) -> None:
        from itertools import islice

        from suanwang.sim.records import PENDING, QUEUED

        st, w = self.state, self.waiting
        if not w.active[s] or not st.up[s]:
            return
        for _, key in sorted((w.queues[k][0], k) for k in w.active[s]):
            gone = []
            for idx in list(islice(w.queues[key], w.depth)):
                if self.cores[idx] <= int(st.cpu_free[s]) and self.cards[idx] <= int(st.gpu_free[s]):
                    self.status[idx] = PENDING
                    if self._try(idx, enqueue=False) != QUEUED:
                        gone.append(idx)
            if gone:
                w.remove(key, gone)


@pytest.mark.parametrize("policy", ["nearest", "online"])
def test_the_queue_scan_shortcuts_try_the_same_jobs_in_the_same_order(policy):
    jobs = national_demand(ctx().atlas, 1500, 0.5, seed=21, sites=ctx().sites).jobs  # a congested half day
    kw = {"horizon_h": 12.0, "queue_depth": 5, "outages": [Outage(ctx().sites[0].id, 2.0, 6.0)]}
    fast = Simulation(ctx(), jobs, policy, **kw)
    a = fast.run()
    plain = _EveryJobScan(ctx(), jobs, policy, **kw)
    b = plain.run()
    assert plain.sched.hits + plain.sched.misses > len(jobs) + 100  # many queued jobs were tried again
    assert a.status == b.status and a.reason == b.reason and list(a.end_h) == list(b.end_h)
    assert a.segments == b.segments and a.events == b.events
    sa, sb = summarise(a, ctx(), 2022), summarise(b, ctx(), 2022)
    assert json.dumps(sa, sort_keys=True) == json.dumps(sb, sort_keys=True)


def test_a_provincial_dc_is_found_by_kind_not_by_its_name():
    from dataclasses import replace

    from suanwang.sim.metrics import provincial_dcs

    atlas = ctx().atlas
    renamed = [replace(s, id="bj-gov-cloud") if s.id == "beijing-dc" else s for s in atlas.sites]
    dcs = provincial_dcs(renamed)
    assert renamed[dcs["beijing"]].id == "bj-gov-cloud"
    assert "gansu" in dcs and renamed[dcs["gansu"]].kind == "provincial-dc"
    assert all(renamed[i].province_id == p for p, i in dcs.items())
