"""Whole jobs on small windows: the fast fits (optimize/occupancy) equal the sparse-table ones (round.Residual),
LP-guided rounding gives feasible plans, the local search never makes a plan worse or infeasible and repeats
itself with its seed, and deterministic mode stays deterministic."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tight_instances import optimiser_inputs, random_instance

from suanwang.scheduler.optimize import BatchOptimizer
from suanwang.scheduler.optimize.lp import solve
from suanwang.scheduler.optimize.occupancy import Footprint
from suanwang.scheduler.optimize.round import Residual, class_orders, guided_round, objective, round_plan
from suanwang.scheduler.optimize.search import improve

PROPS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(0, 2**32 - 1)


def _columns(seed: int):
    inst = random_instance(seed, n_jobs=(5, 60), n_sites=(2, 5), n_slots=(3, 12))
    ctx, state, free = optimiser_inputs(inst)
    opt = BatchOptimizer(ctx, slot_h=inst.slot_h, horizon_slots=inst.n_slots)
    cols, _ = opt.columns(inst.jobs, state, inst.now_h, free)
    return cols


def _feasible(cols, counts) -> bool:
    res = Residual(cols)
    used = np.nonzero(counts)[0]
    res.take(used, counts[used])
    placed = np.bincount(cols.cls, weights=counts, minlength=len(cols.count))
    return res.ok() and bool((counts >= 0).all()) and bool((placed <= cols.count).all())


@PROPS
@given(SEEDS, st.floats(0.0, 1.0))
def test_fast_fits_equal_the_sparse_table_fits(seed, share):
    cols = _columns(seed)
    rng = np.random.default_rng(seed)
    counts = round_plan(cols, np.zeros(len(cols)))
    counts = np.where(rng.random(len(cols)) < share, counts, 0)  # some plan, not only the greedy one
    res = Residual(cols)
    used = np.nonzero(counts)[0]
    res.take(used, counts[used])
    fp = Footprint(cols)
    idx = np.arange(len(cols))
    fast = fp.room(fp.load(counts), idx)
    slow = res.fit(idx)
    assert np.array_equal(np.minimum(fast, 1e9), np.minimum(slow, 1e9))


@PROPS
@given(SEEDS)
def test_lp_guided_rounding_is_feasible_in_every_order(seed):
    cols = _columns(seed)
    lp = solve(cols, all_columns=True)
    for order in class_orders(cols, lp.x):
        assert sorted(order.tolist()) == list(range(len(cols.count)))
        counts = guided_round(cols, lp.x, order)
        assert _feasible(cols, counts)
        assert objective(cols, counts) >= lp.lp_bound - 1e-6 * max(1.0, abs(lp.lp_bound))


@PROPS
@given(SEEDS, st.integers(1, 60))
def test_the_search_never_makes_a_plan_worse_or_infeasible_and_repeats_with_its_seed(seed, evals):
    cols = _columns(seed)
    start = round_plan(cols, np.zeros(len(cols)))
    out = improve(cols, start, max_evals=evals, seed=seed % 7)
    assert _feasible(cols, out)
    assert objective(cols, out) <= objective(cols, start)
    assert np.array_equal(out, improve(cols, start, max_evals=evals, seed=seed % 7))


def test_deterministic_mode_gives_the_same_plan_twice():
    inst = random_instance(9)  # 161 jobs, 6 sites: guided rounding and the nearest floor both run
    ctx, state, free = optimiser_inputs(inst)
    opt = BatchOptimizer(
        ctx, slot_h=inst.slot_h, horizon_slots=inst.n_slots, mip_max_cols=0, polish_time_limit_s=0, search_evals=0
    )
    a, b = (opt.plan(inst.jobs, state, inst.now_h, free) for _ in range(2))
    assert a.objective == b.objective
    assert [(d.job_id, d.placement) for d in a.decisions] == [(d.job_id, d.placement) for d in b.decisions]


@PROPS
@given(SEEDS, st.integers(1, 3))
def test_a_first_master_on_few_sites_converges_to_the_same_lp(seed, sites):
    cols = _columns(seed)
    full = solve(cols, all_columns=True)
    capped = solve(cols, init_sites=sites, max_rounds=1000, bound_tol=0.0)
    scale = max(1.0, abs(full.lp_objective))
    assert capped.lp_bound <= full.lp_objective + 1e-6 * scale
    assert capped.converged
    assert abs(capped.lp_objective - full.lp_objective) <= 1e-6 * scale


@PROPS
@given(SEEDS)
def test_lazy_capacity_rows_converge_to_the_same_lp_and_never_overload_a_site(seed):
    cols = _columns(seed)
    full = solve(cols, all_columns=True)
    lazy = solve(cols, lazy_sites=0, init_sites=1, max_rounds=1000, bound_tol=0.0)
    scale = max(1.0, abs(full.lp_objective))
    assert lazy.converged and lazy.lp_bound <= full.lp_objective + 1e-6 * scale
    assert abs(lazy.lp_objective - full.lp_objective) <= 1e-6 * scale
    cpu = np.zeros_like(cols.cpu_cap, dtype=float)  # the LP's occupancy, recomputed slot by slot
    gpu = np.zeros_like(cols.gpu_cap, dtype=float)
    for i in np.nonzero(lazy.x > 1e-9)[0]:
        c, s, t, d = cols.cls[i], cols.site[i], cols.slot[i], cols.dur[i]
        cpu[s, t : t + d] += cols.cpu[c] * lazy.x[i]
        gpu[s, t : t + d] += cols.gpu[c] * lazy.x[i]
    assert (cpu <= cols.cpu_cap + 1e-6).all() and (gpu <= cols.gpu_cap + 1e-6).all()


@PROPS
@given(SEEDS)
def test_the_few_column_paths_of_the_residual_equal_the_general_ones(seed):
    cols = _columns(seed)
    counts = round_plan(cols, np.zeros(len(cols)))
    used = np.nonzero(counts)[0]
    at_once, one_by_one = Residual(cols), Residual(cols)
    padded = np.concatenate([counts[used], np.zeros(4 * used.size, dtype=np.int64)])  # over the few-column limit
    at_once.take(np.concatenate([used] * 5), padded)
    for i in used:  # the in-place path, one column at a time
        one_by_one.take(np.array([i]), np.array([counts[i]]))
    assert np.array_equal(at_once.cpu, one_by_one.cpu) and np.array_equal(at_once.gpu, one_by_one.gpu)
    idx = np.arange(len(cols))
    many = np.concatenate([idx] * (300 // max(1, idx.size) + 1))  # over the few-column limit: the sparse table
    general = one_by_one.fit(many)[: idx.size]
    few = np.concatenate([one_by_one.fit(idx[k : k + 7]) for k in range(0, idx.size, 7)] or [np.zeros(0)])
    assert np.array_equal(general, few)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=60), st.integers(1, 4))
def test_the_run_path_of_best_per_group_equals_the_sort(items, k):
    from suanwang.scheduler.optimize.lp import _best_per_run

    group = np.sort(np.array([g for g, _ in items]))
    value = np.array([float(v) for _, v in items])  # few distinct values: many ties
    tie = np.arange(group.size)
    order = np.lexsort((tie, value, group))
    g = group[order]
    expected = np.sort(order[(np.arange(order.size) - np.searchsorted(g, g, side="left")) < k])
    assert np.array_equal(_best_per_run(group, value, k), expected)
