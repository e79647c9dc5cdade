"""Batch optimiser: exact on small instances (brute force), never worse than the online baselines, hard rules and
capacity hold, the LP bound is a real lower bound, temporal shifting, coefficients equal costs.estimate."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from milp_oracle import Instance, options

from suanwang.atlas import load_atlas
from suanwang.scheduler import POLICIES, ClusterState, SchedulerContext, estimate, make_policy
from suanwang.scheduler.optimize import BatchOptimizer, OptimizerConfigError
from suanwang.scheduler.optimize.columns import window_min
from suanwang.workload.job import Job

ATLAS = load_atlas()
CTX = SchedulerContext.build(ATLAS)
BEIJING, HENAN_CITY = ATLAS.place("北京"), ATLAS.place("郑州")
ORIGINS = [BEIJING, HENAN_CITY, ATLAS.place("上海"), ATLAS.place("广州"), ATLAS.place("成都"), ATLAS.place("兰州")]
PROPS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASELINE_PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-6


def small_ctx(site_ids: list[str]) -> SchedulerContext:
    return SchedulerContext.build(ATLAS, sites=[ATLAS.site(i) for i in site_ids])


def make_job(i: int, origin=BEIJING, **kw) -> Job:
    return Job(id=f"j{i}", origin=origin.adcode, origin_province=origin.province_id, **kw)


def weighted(opt: BatchOptimizer, cost_cny: float, carbon_kg: float) -> float:
    return opt.weights["cost"] * cost_cny + opt.carbon_cny_per_kg * carbon_kg


def profile(free, state: ClusterState, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Free (cores, cards) [sites, n_slots]: `free` with its last slot held beyond its end, or the state's free room
    in every slot when None; nothing on a site that is down."""
    if free is None:
        free = (state.cpu_free[:, None], state.gpu_free[:, None])
    out = []
    for f in free:
        f = np.asarray(f, dtype=float)
        f = np.concatenate([f, np.repeat(f[:, -1:], max(0, n_slots - f.shape[1]), axis=1)], axis=1)[:, :n_slots]
        out.append(np.where(state.up[:, None], f, 0.0))
    return out[0], out[1]


def occupancy_ok(ctx, jobs, decisions, state, slot_h, now_h, free=None) -> bool:
    """Independent check: cores and cards per site never exceed the free capacity (or profile) in any slot."""
    by_id = {j.id: j for j in jobs}
    horizon = 4 * 96 + 200
    cpu = np.zeros((len(ctx.sites), horizon))
    gpu = np.zeros((len(ctx.sites), horizon))
    for d in decisions:
        if not d.placed:
            continue
        p, job = d.placement, by_id[d.job_id]
        t = round((p.start_h - now_h) / slot_h)
        dur = max(1, math.ceil((p.transfer_h + job.runtime_h) / slot_h - 1e-9))
        cpu[p.site_index, t : t + dur] += job.cpu_cores
        gpu[p.site_index, t : t + dur] += job.gpu_cards
    cpu_cap, gpu_cap = profile(free, state, horizon)
    return bool((cpu <= cpu_cap).all() and (gpu <= gpu_cap).all())


def jobs_from_spec(spec, now_h: float) -> list[Job]:
    """Jobs from hypothesis tuples (cores, cards, runtime h, data class, deadline h after now or None, input GB)."""
    return [
        make_job(i, cpu_cores=c, gpu_cards=g, runtime_h=r, data_class=dc, input_gb=gb,
                 deadline_h=None if dl is None else now_h + dl)
        for i, (c, g, r, dc, dl, gb) in enumerate(spec)
    ]  # fmt: skip


def national_jobs_from_spec(spec, now_h: float) -> list[Job]:
    """Jobs from hypothesis tuples (origin index, cores, cards, runtime h, latency class, data class,
    deadline h after now or None, input GB), all submitted at now_h."""
    return [
        make_job(i, ORIGINS[o], cpu_cores=c, gpu_cards=g, runtime_h=r, latency_class=lc, data_class=dc,
                 input_gb=gb, submit_h=now_h, deadline_h=None if dl is None else now_h + dl)
        for i, (o, c, g, r, lc, dc, dl, gb) in enumerate(spec)
    ]  # fmt: skip


def brute_force(opt: BatchOptimizer, jobs: list[Job], state: ClusterState, now_h: float, free=None) -> float:
    """Best objective over every assignment of each job to (site, slot) or unplaced, by enumeration. The options,
    their costs and each job's penalty come from tests/milp_oracle.py (the documented model, not the code under
    test); only the settings are read from `opt`."""
    ctx, n_slots = opt.ctx, opt.horizon_slots
    if free is None:
        free = (state.cpu_free[:, None], state.gpu_free[:, None])
    inst = Instance(
        atlas=ctx.atlas, site_ids=[s.id for s in ctx.sites], jobs=jobs, now_h=now_h, slot_h=opt.slot_h,
        n_slots=n_slots, cores=np.asarray(free[0], dtype=float), cards=np.asarray(free[1], dtype=float),
        up=state.up.copy(), price=ctx.signals.price_cny_per_kwh, grid=ctx.signals.grid_kg_per_kwh,
        weights=(opt.weights["cost"], opt.weights["carbon"]), carbon_price_cny_per_t=opt.carbon_price_cny_per_t,
        penalty_factor=opt.penalty_factor,
    )  # fmt: skip
    opts, penalty = options(inst)
    per_job: list[list] = [[None] for _ in jobs]
    for o in opts:
        per_job[o.job].append(o)
    cpu_cap, gpu_cap = profile(free, state, n_slots + 8)
    best = math.inf
    for combo in itertools.product(*per_job):
        cpu = np.zeros((len(ctx.sites), n_slots + 8))
        gpu = np.zeros_like(cpu)
        total = 0.0
        for j, (job, o) in enumerate(zip(jobs, combo, strict=True)):
            if o is None:
                total += penalty[j]
                continue
            cpu[o.site, o.slot : o.slot + o.hold] += job.cpu_cores
            gpu[o.site, o.slot : o.slot + o.hold] += job.gpu_cards
            total += o.w
        if (cpu <= cpu_cap).all() and (gpu <= gpu_cap).all():
            best = min(best, total)
    return best


# --- exactness and the bound ------------------------------------------------------------------------------------
small_jobs = st.lists(
    st.tuples(
        st.sampled_from([4, 8, 16]),  # cores
        st.sampled_from([0, 0, 1]),  # cards
        st.sampled_from([0.5, 1.0, 1.5]),  # runtime h
        st.sampled_from(["public", "sensitive", "core"]),
        st.sampled_from([None, 2.0, 3.0]),  # deadline h after now
        st.sampled_from([0.0, 20.0]),  # input GB
    ),
    min_size=4,
    max_size=4,
)


@PROPS
@given(small_jobs, st.lists(st.sampled_from([8, 16, 24, 40]), min_size=3, max_size=3), st.sampled_from([5.0, 7.0]))
def test_small_instances_are_solved_exactly_and_the_lp_bound_is_a_lower_bound(spec, caps, now_h):
    ctx = small_ctx(["beijing-dc", "zhangjiakou", "guian"])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = caps
    state.gpu_free[:] = [1, 1, 2]
    jobs = jobs_from_spec(spec, now_h)
    exact = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=2)
    best = brute_force(exact, jobs, state, now_h)
    plan = exact.plan(jobs, state, now_h)
    assert plan.exact
    assert plan.objective == pytest.approx(best, rel=TOL, abs=TOL)
    assert plan.lp_bound <= best + TOL
    lp_only = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=2, mip_max_cols=0)
    relaxed = lp_only.plan(jobs, state, now_h)
    assert relaxed.lp_bound <= best + TOL * max(1.0, abs(best))  # the LP bound never overstates the optimum
    assert relaxed.objective >= best - TOL * max(1.0, abs(best))  # and no rounded plan beats the optimum
    assert relaxed.gap >= -TOL


# --- hard rules, capacity, deadlines, gap ------------------------------------------------------------------------
random_jobs = st.lists(
    st.tuples(
        st.integers(0, len(ORIGINS) - 1),
        st.sampled_from([1, 8, 32, 64]),
        st.sampled_from([0, 0, 1, 4]),
        st.sampled_from([0.25, 1.0, 2.0, 3.5]),
        st.sampled_from(["batch", "batch", "interactive", "realtime"]),
        st.sampled_from(["public", "internal", "sensitive", "core"]),
        st.sampled_from([None, 1.0, 4.0, 12.0]),
        st.sampled_from([0.0, 5.0, 400.0]),
    ),
    min_size=1,
    max_size=40,
)


@PROPS
@given(
    random_jobs,
    st.lists(st.sampled_from(list(range(len(CTX.sites)))), min_size=3, max_size=10, unique=True),
    st.floats(0.0005, 0.01),
    st.sampled_from([0, 2000]),
    st.sampled_from([0.0, 9.5, 18.0]),
)
def test_plans_obey_rules_capacity_and_deadlines(spec, site_idx, share, mip_max_cols, now_h):
    ctx = small_ctx([CTX.sites[i].id for i in sorted(site_idx)])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = np.maximum((state.cpu_total * share).astype(int), 8)
    state.gpu_free[:] = np.minimum(state.gpu_total, 6)
    jobs = national_jobs_from_spec(spec, now_h)
    opt = BatchOptimizer(ctx, horizon_slots=32, mip_max_cols=mip_max_cols, mip_time_limit_s=5.0)
    plan = opt.plan(jobs, state, now_h)
    assert [d.job_id for d in plan.decisions] == [j.id for j in jobs]
    for job, d in zip(jobs, plan.decisions, strict=True):
        if not d.placed:
            assert d.reason
            continue
        p, site = d.placement, ctx.sites[d.placement.site_index]
        assert p.site_id == site.id
        assert p.latency_ms <= job.latency_bound_ms
        if job.data_class in ("sensitive", "core"):
            assert site.province_id == job.data_province
        if job.data_class == "core":
            assert "gov-cloud" in site.labels
        assert now_h - 1e-9 <= p.start_h <= now_h + 32 * opt.slot_h
        if job.deadline_h is not None:
            assert p.start_h + p.transfer_h + job.runtime_h <= job.deadline_h + 1e-9
    assert occupancy_ok(ctx, jobs, plan.decisions, state, opt.slot_h, now_h)
    assert plan.lp_bound <= plan.objective + TOL * max(1.0, abs(plan.objective))
    assert plan.gap >= -TOL
    assert plan.totals["placed"] + plan.totals["unplaced"] == len(jobs)


def test_link_capacity_spreads_transfers_over_time():
    atlas = copy.deepcopy(ATLAS)
    atlas.assumptions["link_capacity_gbps"].value = 2.0  # two full-speed transfers per link at once
    ctx = SchedulerContext.build(atlas, sites=[atlas.site("guian")])
    state = ClusterState.from_sites(ctx.sites)
    jobs = [make_job(i, HENAN_CITY, cpu_cores=4, runtime_h=1.0, input_gb=300.0, deadline_h=20.0) for i in range(7)]
    opt = BatchOptimizer(ctx, mip_max_cols=0)
    plan = opt.plan(jobs, state, 0.0)
    assert plan.placed == len(jobs)
    per_slot_gb = atlas.value("job_bandwidth_gbps") * opt.slot_h * 3600 / 8
    cap_gb = atlas.value("link_capacity_gbps") * opt.slot_h * 3600 / 8
    use = np.zeros(200)
    for d in plan.decisions:
        t = round(d.placement.start_h / opt.slot_h)
        left = 300.0
        for k in range(200):
            if left <= 0:
                break
            use[t + k] += min(per_slot_gb, left)
            left -= per_slot_gb
    assert use.max() <= cap_gb + 1e-6
    assert len({d.placement.start_h for d in plan.decisions}) >= 4  # at most two may start together


# --- a per-slot free capacity profile ----------------------------------------------------------------------------
@PROPS
@given(
    small_jobs,
    st.lists(st.lists(st.sampled_from([0, 8, 16, 24, 40]), min_size=3, max_size=3), min_size=1, max_size=3),
    st.sampled_from([5.0, 7.0]),
)
def test_a_free_profile_is_solved_exactly_and_never_overdrawn(spec, cores_by_slot, now_h):
    ctx = small_ctx(["beijing-dc", "zhangjiakou", "guian"])
    state = ClusterState.from_sites(ctx.sites)  # all free now: the profile, not the state, must bound the plan
    cores = np.array(cores_by_slot, dtype=float).T  # [site, slot]
    free = (cores, np.repeat([[1.0], [0.0], [2.0]], cores.shape[1], axis=1))
    jobs = jobs_from_spec(spec, now_h)
    exact = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=2)
    best = brute_force(exact, jobs, state, now_h, free)
    plan = exact.plan(jobs, state, now_h, free)
    assert plan.exact
    assert plan.objective == pytest.approx(best, rel=TOL, abs=TOL)
    assert occupancy_ok(ctx, jobs, plan.decisions, state, 1.0, now_h, free)
    relaxed = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=2, mip_max_cols=0).plan(jobs, state, now_h, free)
    assert relaxed.lp_bound <= best + TOL * max(1.0, abs(best))
    assert relaxed.objective >= best - TOL * max(1.0, abs(best))
    assert occupancy_ok(ctx, jobs, relaxed.decisions, state, 1.0, now_h, free)


@PROPS
@given(
    random_jobs,
    st.lists(st.sampled_from(list(range(len(CTX.sites)))), min_size=3, max_size=8, unique=True),
    st.data(),
    st.sampled_from([0, 2000]),
)
def test_plans_never_overdraw_a_free_profile_in_any_slot(spec, site_idx, data, mip_max_cols):
    now_h = 9.5
    ctx = small_ctx([CTX.sites[i].id for i in sorted(site_idx)])
    state = ClusterState.from_sites(ctx.sites)
    n_slots = data.draw(st.integers(1, 40), label="profile slots")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="profile seed"))
    cores = rng.choice([0, 16, 64, 200], size=(len(ctx.sites), n_slots)).astype(float)
    cards = rng.choice([0, 1, 4, 8], size=(len(ctx.sites), n_slots)).astype(float)
    jobs = national_jobs_from_spec(spec, now_h)
    opt = BatchOptimizer(ctx, horizon_slots=32, mip_max_cols=mip_max_cols, mip_time_limit_s=5.0)
    plan = opt.plan(jobs, state, now_h, (cores, cards))
    assert occupancy_ok(ctx, jobs, plan.decisions, state, opt.slot_h, now_h, (cores, cards))
    assert plan.lp_bound <= plan.objective + TOL * max(1.0, abs(plan.objective))
    for d in plan.decisions:
        assert d.placed or d.reason


def test_room_that_frees_up_later_starts_the_job_later():
    ctx = small_ctx(["guian"])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = 0  # full now
    jobs = [make_job(i, cpu_cores=64, runtime_h=2.0, deadline_h=30.0) for i in range(2)]
    opt = BatchOptimizer(ctx, mip_max_cols=0)
    assert not any(d.placed for d in opt.plan(jobs, state, 0.0).decisions)  # no profile: full for the whole plan
    # 64 cores free in slots 8-11 (1 h: too short for a 2 h job), none in 12-15, 64 from slot 16, 128 from 40 on
    cores = np.array([[0.0] * 8 + [64.0] * 4 + [0.0] * 4 + [64.0] * 24 + [128.0]])
    free = (cores, np.zeros_like(cores))
    plan = opt.plan(jobs, state, 0.0, free)
    assert plan.placed == 2
    starts = sorted(round(d.placement.start_h / opt.slot_h) for d in plan.decisions)
    assert starts[0] >= 16  # never in the 1 h gap, never before room frees up
    assert starts[1] >= starts[0] + 8 or starts[1] >= 40  # one at a time until slot 40
    assert occupancy_ok(ctx, jobs, plan.decisions, state, opt.slot_h, 0.0, free)
    late = make_job(9, cpu_cores=64, runtime_h=2.0, deadline_h=3.0)  # must end before room frees up
    d = opt.plan([late], state, 0.0, free).decisions[0]
    assert not d.placed and d.reason.startswith("capacity:") and d.retryable


@pytest.mark.parametrize(
    "free",
    [
        np.zeros((2, 4)),  # one array, not (cores, cards)
        (np.zeros((3, 4)), np.zeros((3, 4))),  # three sites for a two-site context
        (np.zeros(2), np.zeros(2)),  # no slot axis
        (np.zeros((2, 0)), np.zeros((2, 0))),  # no slot
        (np.full((2, 4), np.nan), np.zeros((2, 4))),
        (np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 4))),
        5,
    ],
)
def test_a_bad_free_profile_names_free(free):
    ctx = small_ctx(["guian", "beijing-dc"])
    with pytest.raises(OptimizerConfigError, match="free must be"):
        BatchOptimizer(ctx).plan([make_job(0)], ClusterState.from_sites(ctx.sites), 0.0, free)


@PROPS
@given(st.integers(1, 6), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_window_minimum_matches_a_direct_minimum(n_rows, width, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-5, 50, size=(n_rows, width)).astype(float)
    row = rng.integers(0, n_rows, size=200)
    length = rng.integers(1, width + 1, size=200)
    start = rng.integers(0, width - length + 1)
    expected = [a[r, t : t + d].min() for r, t, d in zip(row, start, length, strict=True)]
    assert window_min(a, row, start, length).tolist() == expected


# --- never worse than the online scheduler and the baselines -------------------------------------------------------
MODES = {
    "integer program": {},
    "LP + rounding (the simulator's)": {"mip_max_cols": 0},
    "time-limited": {"mip_time_limit_s": 0.001, "polish_time_limit_s": 0.001},
    "LP + rounding, no integer program or search": {"mip_max_cols": 0, "polish_time_limit_s": 0, "search_evals": 0},
}


@BASELINE_PROPS
@given(random_jobs, st.floats(0.001, 0.02), st.sampled_from([2.0, 10.0, 21.0]), st.sampled_from(sorted(MODES)))
def test_never_worse_than_any_baseline(spec, share, now_h, mode):
    ctx = small_ctx(["beijing-dc", "hebei-dc", "zhangjiakou", "henan-dc", "guian", "shanghai-dc", "qingyang"])
    base = ClusterState.from_sites(ctx.sites)
    base.cpu_free[:] = np.maximum((base.cpu_total * share).astype(int), 16)
    base.gpu_free[:] = np.minimum(base.gpu_total, 4)
    jobs = [
        make_job(i, ORIGINS[o], cpu_cores=c, gpu_cards=g, runtime_h=r, latency_class=lc, data_class=dc,
                 input_gb=min(gb, 5.0), submit_h=now_h, deadline_h=None if dl is None else now_h + dl)
        for i, (o, c, g, r, lc, dc, dl, gb) in enumerate(spec)
    ]  # fmt: skip
    opt = BatchOptimizer(ctx, horizon_slots=48, **MODES[mode])
    plan = opt.plan(jobs, base, now_h)
    for name in POLICIES:
        sched, state = make_policy(name, ctx), copy.deepcopy(base)
        decisions = [sched.place(job, state, now_h) for job in jobs]
        baseline = opt.objective_of(jobs, decisions, base, now_h)
        assert plan.objective <= baseline + TOL * max(1.0, abs(baseline)), name


# --- temporal shifting ----------------------------------------------------------------------------------------------
def test_shifts_to_cheaper_hours_when_the_deadline_allows():
    state = ClusterState.from_sites(CTX.sites)
    now_h = 9.0  # a peak-price hour
    loose = make_job(0, cpu_cores=64, gpu_cards=8, runtime_h=1.0, deadline_h=now_h + 20.0)
    tight = make_job(1, cpu_cores=64, gpu_cards=8, runtime_h=1.0, deadline_h=now_h + 1.0)
    plan = BatchOptimizer(CTX).plan([loose, tight], state, now_h)
    shifted, stayed = (d.placement for d in plan.decisions)
    assert shifted.start_h > now_h
    assert shifted.cost_cny < estimate(CTX, loose, now_h).cost_cny[shifted.site_index]
    assert stayed.start_h == now_h


def test_carbon_only_weights_shift_towards_solar_hours():
    state = ClusterState.from_sites(CTX.sites)
    job = make_job(0, cpu_cores=64, runtime_h=1.0, deadline_h=23.0)
    plan = BatchOptimizer(CTX, weights={"cost": 0.0, "carbon": 1.0}).plan([job], state, 0.0)
    p = plan.decisions[0].placement
    assert 9.0 <= p.start_h % 24 <= 15.0
    grid = CTX.signals.grid_kg_per_kwh[p.site_index]
    assert grid[int(p.start_h) % 24] == pytest.approx(grid.min())


# --- coefficients, reasons, errors ----------------------------------------------------------------------------------
def test_placements_carry_the_costs_of_estimate_at_their_start():
    rng = np.random.default_rng(7)
    jobs = [
        make_job(i, ORIGINS[rng.integers(len(ORIGINS))], cpu_cores=int(rng.choice([4, 32])),
                 gpu_cards=int(rng.choice([0, 2])), runtime_h=float(rng.choice([0.5, 3.0, 30.0])),
                 input_gb=float(rng.choice([0.0, 50.0])), deadline_h=float(rng.choice([40.0, 48.0])))
        for i in range(40)
    ]  # fmt: skip
    opt = BatchOptimizer(CTX)
    plan = opt.plan(jobs, ClusterState.from_sites(CTX.sites), 0.5)
    assert plan.placed == len(jobs)
    assert {d.placement.start_h for d in plan.decisions} != {0.5}
    for job, d in zip(jobs, plan.decisions, strict=True):
        p = d.placement
        est = estimate(CTX, job, p.start_h)
        assert p.cost_cny == pytest.approx(est.cost_cny[p.site_index], rel=1e-9)
        assert p.carbon_kg == pytest.approx(est.carbon_kg[p.site_index], rel=1e-9)
        assert p.energy_kwh == pytest.approx(est.energy_kwh[p.site_index], rel=1e-9)
        assert p.transfer_h == pytest.approx(est.transfer_h[p.site_index])
        assert p.latency_ms == pytest.approx(est.latency_ms[p.site_index])
    total = sum(weighted(opt, d.placement.cost_cny, d.placement.carbon_kg) for d in plan.decisions)
    assert plan.objective == pytest.approx(total, rel=1e-9)
    steps = ("columns", "greedy", "lp_highs", "lp_pricing", "lp_other", "round", "mip", "search", "decisions")
    assert set(plan.timings_s) == set(steps) and all(v >= -1e-6 for v in plan.timings_s.values())
    assert sum(plan.timings_s.values()) == pytest.approx(plan.build_s + plan.solve_s + plan.round_s, rel=1e-6)


def test_unplaced_jobs_say_why_and_whether_to_retry():
    ctx = small_ctx(["guian", "beijing-dc"])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = [64, 0]
    far = make_job(0, latency_class="realtime", origin=ATLAS.place("广州"))  # no site within 5 ms
    core = make_job(1, data_class="core", origin=HENAN_CITY)  # no henan site here
    big = [make_job(2 + i, cpu_cores=64, runtime_h=8.0, deadline_h=9.0) for i in range(3)]  # only one fits
    plan = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=4).plan([far, core, *big], state, 0.0)
    by_id = {d.job_id: d for d in plan.decisions}
    assert "latency" in by_id["j0"].reason and not by_id["j0"].retryable
    assert "residency" in by_id["j1"].reason and not by_id["j1"].retryable
    queued = [by_id[f"j{2 + i}"] for i in range(3)]
    assert sum(d.placed for d in queued) == 1
    assert all(d.retryable and "capacity" in d.reason for d in queued if not d.placed)


def test_a_full_cluster_is_a_retryable_capacity_refusal():
    ctx = small_ctx(["guian", "beijing-dc"])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = 0  # every site full now: no column at all for the job
    plan = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=4).plan([make_job(0)], state, 0.0)
    d = plan.decisions[0]
    assert not d.placed and d.reason.startswith("capacity:") and d.retryable
    state.up[:] = False  # every site down: also capacity, also worth retrying
    d = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=4).plan([make_job(0)], state, 0.0).decisions[0]
    assert not d.placed and d.reason.startswith("capacity:") and d.retryable


def test_an_unreachable_deadline_is_not_retryable():
    ctx = small_ctx(["guian", "beijing-dc"])
    state = ClusterState.from_sites(ctx.sites)
    job = make_job(0, runtime_h=4.0, deadline_h=2.0)
    d = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=4).plan([job], state, 0.0).decisions[0]
    assert not d.placed and d.reason.startswith("deadline:") and not d.retryable


def test_empty_window_gives_an_empty_plan():
    plan = BatchOptimizer(CTX).plan([], ClusterState.from_sites(CTX.sites), 0.0)
    assert plan.decisions == [] and plan.objective == 0.0 and plan.gap == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"weights": {"latency": 1.0}}, "latency"),
        ({"weights": {"cost": -1.0}}, "weights['cost']"),
        ({"weights": {"cost": 0.0, "carbon": 0.0}}, "both 0"),
        ({"slot_h": 0.0}, "slot_h"),
        ({"horizon_slots": 0}, "horizon_slots"),
        ({"carbon_price_cny_per_t": float("nan")}, "carbon_price_cny_per_t"),
        ({"penalty_factor": 0.5}, "penalty_factor"),
        ({"polish_time_limit_s": -1.0}, "polish_time_limit_s"),
        ({"mip_time_limit_s": float("inf")}, "mip_time_limit_s"),
        ({"search_evals": 2.5}, "search_evals"),
        ({"polish_max_cols": -1}, "polish_max_cols"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(OptimizerConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        BatchOptimizer(CTX, **kwargs)


def test_state_of_other_sites_is_refused():
    opt = BatchOptimizer(small_ctx(["guian"]))
    with pytest.raises(OptimizerConfigError, match="state.sites"):
        opt.plan([make_job(0)], ClusterState.from_sites(CTX.sites), 0.0)


def test_a_deadline_no_site_can_meet_is_not_retryable_even_when_every_site_is_full():
    ctx = small_ctx(["guian", "beijing-dc"])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = 0  # full now: room is not why this job fails
    job = make_job(0, runtime_h=4.0, deadline_h=2.0)
    d = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=4).plan([job], state, 0.0).decisions[0]
    assert not d.placed and d.reason.startswith("deadline:") and not d.retryable


def test_a_deadline_met_only_at_a_site_full_now_is_a_retryable_capacity_refusal():
    ctx = small_ctx(["guian", "beijing-dc"])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[ctx.site_ids.index("beijing-dc")] = 0  # the only site that meets the deadline is full now
    # 200 GB from Beijing to Guizhou takes 0.44 h at 1 Gbps: 1.44 h in all misses the 1.25 h deadline there
    job = make_job(0, runtime_h=1.0, input_gb=200.0, deadline_h=1.25)
    d = BatchOptimizer(ctx, slot_h=0.25, horizon_slots=4).plan([job], state, 0.0).decisions[0]
    assert not d.placed and d.reason.startswith("capacity:") and d.retryable
    state.cpu_free[:] = state.cpu_total  # with room it is placed at beijing-dc
    d = BatchOptimizer(ctx, slot_h=0.25, horizon_slots=4).plan([job], state, 0.0).decisions[0]
    assert d.placed and d.placement.site_id == "beijing-dc"


def test_a_job_released_after_the_horizon_is_retryable():
    ctx = small_ctx(["guian"])
    job = make_job(0, runtime_h=1.0, submit_h=5.0, deadline_h=9.0)  # may start only after the 4 h horizon
    d = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=4).plan([job], ClusterState.from_sites(ctx.sites), 0.0)
    d = d.decisions[0]
    assert not d.placed and d.reason.startswith("capacity:") and d.retryable
