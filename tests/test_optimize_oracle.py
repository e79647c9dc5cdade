"""The batch optimiser against an oracle that does not trust it (tests/milp_oracle.py: the per-job integer program
from the documented model), and the properties the oracle relies on: a job's unplaced penalty is its own, and a
plan is called exact only when HiGHS proved it optimal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from milp_oracle import options
from milp_oracle import solve as oracle_solve
from tight_instances import ATLAS, optimiser_inputs, random_instance

from suanwang.scheduler import ClusterState, SchedulerContext
from suanwang.scheduler.optimize import BatchOptimizer
from suanwang.workload.job import Job

PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-6
DEFAULT_MODE_MAX_GAP = 0.01  # documented in docs/optimizer.md ("Plan quality")
LP_MODE_MAX_GAP = 0.05


def _job(i: int, city: str, **kw) -> Job:
    p = ATLAS.place(city)
    return Job(id=f"j{i}", origin=p.adcode, origin_province=p.province_id, **kw)


def _penalties(opt: BatchOptimizer, jobs: list[Job], state: ClusterState, now_h: float) -> dict[str, float]:
    cols, job_class = opt.columns(jobs, state, now_h)
    return {job.id: float(cols.penalty[c]) for job, c in zip(jobs, job_class, strict=True)}


def test_the_penalty_of_a_job_does_not_change_when_an_unplaceable_job_follows_it():
    ctx = SchedulerContext.build(ATLAS, sites=[ATLAS.site("beijing-dc")])
    state = ClusterState.from_sites(ctx.sites)
    batch = _job(0, "北京")
    far = _job(1, "广州", latency_class="realtime")  # no site within 5 ms: its class has no column
    opt = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=8)
    alone = _penalties(opt, [batch], state, 0.0)["j0"]
    assert alone > 0
    assert _penalties(opt, [batch, far], state, 0.0)["j0"] == alone
    assert _penalties(opt, [far, batch], state, 0.0)["j0"] == alone


@PROPS
@given(st.integers(0, 2**32 - 1), st.data())
def test_a_jobs_penalty_is_independent_of_the_order_and_presence_of_other_jobs(seed, data):
    inst = random_instance(seed, n_jobs=(2, 14), n_sites=(1, 4), n_slots=(2, 10), profile=False)
    ctx, state, _ = optimiser_inputs(inst)
    opt = BatchOptimizer(ctx, slot_h=inst.slot_h, horizon_slots=inst.n_slots)
    everyone = _penalties(opt, inst.jobs, state, inst.now_h)
    order = data.draw(st.permutations(range(len(inst.jobs))), label="order")
    keep = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)), label="keep")
    subset = [inst.jobs[i] for i, k in zip(order, keep, strict=True) if k] or [inst.jobs[order[0]]]
    nowhere = _job(99, "北京", cpu_cores=10**9)  # no site has that many cores: a class without columns
    subset.insert(data.draw(st.integers(0, len(subset)), label="where the unplaceable job goes"), nowhere)
    for job_id, penalty in _penalties(opt, subset, state, inst.now_h).items():
        assert (
            penalty == 0.0 if job_id == nowhere.id else penalty == pytest.approx(everyone[job_id], rel=1e-12, abs=1e-12)
        )
    _, oracle_penalty = options(inst)  # and it is the documented one: factor x the job's dearest option
    for job, penalty in zip(inst.jobs, oracle_penalty, strict=True):
        assert everyone[job.id] == pytest.approx(penalty, rel=1e-9, abs=1e-9)


def test_a_time_limited_integer_program_is_not_called_exact():
    inst = random_instance(5)  # 121 jobs, 3 sites, 23 slots: HiGHS needs seconds to prove optimality here
    ctx, state, free = optimiser_inputs(inst)
    opt = BatchOptimizer(ctx, slot_h=inst.slot_h, horizon_slots=inst.n_slots, mip_time_limit_s=0.5)
    plan = opt.plan(inst.jobs, state, inst.now_h, free)
    assert plan.lp_bound <= plan.bound <= plan.objective + TOL * plan.objective
    if plan.exact:  # only with a proof: the plan meets HiGHS's dual bound (a very fast machine may get there)
        assert plan.objective <= plan.bound + TOL * plan.objective and plan.mip_gap == 0
    else:
        assert plan.mip_gap > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_plans_are_bracketed_by_the_oracle_optimum(seed):
    inst = random_instance(seed, n_jobs=(4, 16), n_sites=(2, 4), n_slots=(3, 8))
    best = oracle_solve(inst, time_limit_s=20.0)
    assert best.proven
    ctx, state, free = optimiser_inputs(inst)
    scale = max(1.0, abs(best.objective))
    for mip_max_cols, max_gap in ((2000, DEFAULT_MODE_MAX_GAP), (0, LP_MODE_MAX_GAP)):
        opt = BatchOptimizer(ctx, slot_h=inst.slot_h, horizon_slots=inst.n_slots, mip_max_cols=mip_max_cols)
        plan = opt.plan(inst.jobs, state, inst.now_h, free)
        assert plan.lp_bound <= best.objective + TOL * scale  # the LP bound never overstates the optimum
        assert plan.bound <= best.objective + TOL * scale
        assert plan.objective >= best.objective - TOL * scale  # no whole-job plan beats the optimum
        assert plan.objective <= best.objective + max_gap * scale, mip_max_cols
        if plan.exact:
            assert plan.objective == pytest.approx(best.objective, rel=TOL, abs=TOL)
        placed = np.array([d.placed for d in plan.decisions])
        assert placed.sum() == plan.placed
