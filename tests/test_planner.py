"""The hub planner's facility-location program against an independent oracle.

The oracle builds each fixed-set LP as dense matrices from the instance arrays and solves it with
scipy.optimize.linprog, then enumerates every k-subset of candidates - no code of suanwang.planner.mip is used.
"""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from suanwang.planner.instance import Instance, Weights
from suanwang.planner.mip import Model, evaluate, rank_single, rank_with_status_quo


def random_instance(seed: int, n_o: int = 6, n_e: int = 2, n_j: int = 5, n_p: int = 3, weights=None) -> Instance:
    """A small random instance: origins and sites on a plane, latency = distance, tight capacities."""
    rng = np.random.default_rng(seed)
    n_s = n_e + n_j
    lat = rng.uniform(0.0, 25.0, size=(n_o, n_s))
    tier_cores = rng.uniform(1.0, 10.0, size=(2, n_o))
    tier_cards = rng.uniform(0.0, 2.0, size=(2, n_o))
    w = rng.uniform(0.1, 1.0, size=(2, n_o))
    batch_cores = rng.uniform(5.0, 20.0, size=n_p)
    batch_cards = rng.uniform(0.0, 3.0, size=n_p)
    total = tier_cores.sum() + batch_cores.sum()
    cap = rng.uniform(0.1, 0.6, size=n_s) * total / n_e
    cap[:n_e] = np.maximum(cap[:n_e], batch_cores.sum() / n_e * 1.05)  # batch always fits the existing sites
    cards_total = tier_cards.sum() + batch_cards.sum()
    cap_cards = rng.uniform(0.1, 0.6, size=n_s) * cards_total / n_e
    cap_cards[:n_e] = np.maximum(cap_cards[:n_e], batch_cards.sum() / n_e * 1.05)
    cost = rng.uniform(1.0, 5.0, size=(n_p, n_s))
    carbon = rng.uniform(1.0, 5.0, size=(n_p, n_s))
    return Instance(
        site_ids=[f"s{i}" for i in range(n_s)],
        n_existing=n_e,
        cap_cores=cap,
        cap_cards=cap_cards,
        lat_ms=lat,
        tier_bound_ms=np.array([5.0, 20.0]),
        tier_cores=tier_cores,
        tier_cards=tier_cards,
        tier_weight=w / w.sum(axis=1, keepdims=True),
        batch_cores=batch_cores,
        batch_cards=batch_cards,
        batch_cost=cost,
        batch_carbon=carbon,
        cost_ref=float(cost.min(axis=1).sum()),
        carbon_ref=float(carbon.min(axis=1).sum()),
        weights=weights or Weights(1.0, 0.5, 0.7, 0.3),
    )


def oracle_value(inst: Instance, open_set) -> float:
    """The best objective with exactly the sites in `open_set` (candidate indices) open, by linprog."""
    avail = list(range(inst.n_existing)) + [inst.n_existing + j for j in open_set]
    n_c, n_o = inst.tier_cores.shape
    n_p = inst.batch_cores.size
    w = inst.weights
    cw = [w.realtime, w.interactive]
    var = []  # (kind, a, b, s)
    for c in range(n_c):
        for o in range(n_o):
            for s in avail:
                if inst.lat_ms[o, s] <= inst.tier_bound_ms[c]:
                    var.append(("x", c, o, s))
    for p in range(n_p):
        for s in avail:
            var.append(("b", p, None, s))
    obj = np.zeros(len(var))
    a_ub, b_ub, a_eq, b_eq = [], [], [], []
    for i, (kind, a, b, s) in enumerate(var):
        if kind == "x":
            obj[i] = -cw[a] * inst.tier_weight[a, b]
        else:
            obj[i] = (
                w.cost * inst.batch_cost[a, s] / inst.cost_ref + w.carbon * inst.batch_carbon[a, s] / inst.carbon_ref
            )
    for c in range(n_c):
        for o in range(n_o):
            a_ub.append([1.0 if v[0] == "x" and v[1] == c and v[2] == o else 0.0 for v in var])
            b_ub.append(1.0)
    for p in range(n_p):
        a_eq.append([1.0 if v[0] == "b" and v[1] == p else 0.0 for v in var])
        b_eq.append(1.0)
    for s in avail:
        for tier, batch, cap in (
            (inst.tier_cores, inst.batch_cores, inst.cap_cores),
            (inst.tier_cards, inst.batch_cards, inst.cap_cards),
        ):
            row = []
            for kind, a, b, t in var:
                if t != s:
                    row.append(0.0)
                else:
                    row.append(tier[a, b] if kind == "x" else batch[a])
            a_ub.append(row)
            b_ub.append(cap[s])
    res = linprog(obj, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs-ds")
    assert res.status == 0, res.message
    return -res.fun


def brute_force(inst: Instance, k: int) -> float:
    """The best objective over every k-subset of candidates."""
    return max(oracle_value(inst, s) for s in combinations(range(inst.n_candidates), k))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_mip_equals_brute_force(seed: int, k: int):
    inst = random_instance(seed)
    sol = Model(inst).solve_k(k)
    assert sol.gap <= 1e-6
    assert len(sol.open) == k
    assert sol.objective == pytest.approx(brute_force(inst, k), abs=1e-6)
    assert sol.objective == pytest.approx(oracle_value(inst, sol.open), abs=1e-6)  # the set it names is that good


def test_fixed_sets_and_ranking_equal_the_oracle():
    inst = random_instance(7)
    for s in [(), (0,), (1, 3), (0, 2, 4)]:
        assert evaluate(inst, s).objective == pytest.approx(oracle_value(inst, s), abs=1e-7)
    singles = rank_single(inst)
    sq, again = rank_with_status_quo(inst)
    assert sq.objective == pytest.approx(oracle_value(inst, ()), abs=1e-7)
    assert [s.objective for s in again] == [s.objective for s in singles]
    for j, sol in enumerate(singles):
        assert sol.open == (j,)
        assert sol.objective == pytest.approx(oracle_value(inst, (j,)), abs=1e-7)


def test_strong_and_weak_formulations_agree():
    inst = random_instance(11, n_j=6)
    for k in (1, 2):
        assert Model(inst, strong=True).solve_k(k).objective == pytest.approx(
            Model(inst, strong=False).solve_k(k).objective, abs=1e-7
        )


def drop_last_candidate(inst: Instance) -> Instance:
    """The instance without its last candidate."""
    sub, _ = inst.restrict(range(inst.n_candidates - 1))
    return sub


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 2))
def test_adding_a_candidate_never_makes_the_optimum_worse(seed: int, k: int):
    inst = random_instance(seed, n_j=4)
    fewer = drop_last_candidate(inst)
    assert Model(inst).solve_k(k).objective >= Model(fewer).solve_k(k).objective - 1e-7


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_objective_is_monotone_in_k(seed: int):
    inst = random_instance(seed, n_j=4)
    model = Model(inst)
    values = [evaluate(inst, ()).objective] + [model.solve_k(k).objective for k in (1, 2, 3)]
    assert all(b >= a - 1e-7 for a, b in zip(values, values[1:], strict=False))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), j=st.integers(0, 3))
def test_opening_a_site_never_lowers_served_demand(seed: int, j: int):
    inst = random_instance(seed, n_j=4, weights=Weights(1.0, 1.0, 0.0, 0.0))
    base = (0,) if j else ()
    more = tuple(sorted({*base, j}))
    before, after = evaluate(inst, base).served.sum(), evaluate(inst, more).served.sum()
    assert after >= before - 1e-7
