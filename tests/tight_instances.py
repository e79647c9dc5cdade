"""Small random instances with tight capacity and deadlines (some outages and link limits), for the oracle tests
and benchmarks/bench_plan_quality.py: `random_instance(seed)` -> milp_oracle.Instance, `optimiser_inputs` -> the
context, state and free profile the batch optimiser takes for the same instance."""

from __future__ import annotations

import copy
import math

import numpy as np
from milp_oracle import Instance

from suanwang.atlas import load_atlas
from suanwang.atlas.signals import build_signals
from suanwang.scheduler import ClusterState, SchedulerContext
from suanwang.workload.job import Job

ATLAS = load_atlas()
_SITE_IDS = [s.id for s in ATLAS.sites]


def random_instance(
    seed: int,
    n_jobs: tuple[int, int] = (20, 196),
    n_sites: tuple[int, int] = (3, 6),
    n_slots: tuple[int, int] = (8, 23),
    profile: bool | None = None,
) -> Instance:
    """A seeded instance: jobs, sites and slots drawn from the (inclusive) ranges; `profile` True gives a free
    profile that changes over time (None: drawn)."""
    rng = np.random.default_rng(seed)
    atlas = ATLAS
    if rng.random() < 0.3:  # a link limit that binds: two to five full-speed transfers per link at once
        atlas = copy.deepcopy(ATLAS)
        atlas.assumptions["link_capacity_gbps"].value = float(rng.integers(2, 6))
    s_n = int(rng.integers(n_sites[0], n_sites[1] + 1))
    site_ids = [_SITE_IDS[i] for i in sorted(rng.choice(len(_SITE_IDS), size=s_n, replace=False))]
    sites = [atlas.site(i) for i in site_ids]
    provinces = sorted({s.province_id for s in sites})
    near = [p for p in atlas.places if p.province_id in provinces and p.level == "capital"]
    others = [atlas.place(n) for n in ("北京", "上海", "广州", "成都", "郑州")]
    origins = near + others
    k = int(rng.integers(n_slots[0], n_slots[1] + 1))
    slot_h = float(rng.choice([0.25, 0.5, 1.0]))
    now_h = float(rng.integers(0, 24)) + float(rng.choice([0.0, 0.5]))
    horizon_h = k * slot_h
    jobs = []
    for i in range(int(rng.integers(n_jobs[0], n_jobs[1] + 1))):
        o = origins[int(rng.integers(len(origins)))]
        runtime = float(rng.choice([0.25, 0.5, 1.0, 2.0, 3.0]))
        submit = now_h + float(rng.choice([0.0, 0.0, 0.0, slot_h, 2 * slot_h]))
        slack = rng.choice([np.nan, 0.0, 0.5, 1.0, 2.0, 4.0]) * max(slot_h, 0.5)
        jobs.append(
            Job(
                id=f"j{i}",
                origin=o.adcode,
                origin_province=o.province_id,
                cpu_cores=int(rng.choice([4, 8, 16, 32])),
                gpu_cards=int(rng.choice([0, 0, 0, 1, 2])),
                runtime_h=runtime,
                input_gb=float(rng.choice([0.0, 0.0, 5.0, 50.0, 200.0])),
                output_gb=float(rng.choice([0.0, 1.0])),
                latency_class=str(rng.choice(["batch"] * 6 + ["interactive", "realtime"])),
                data_class=str(rng.choice(["public", "public", "internal", "sensitive", "core"])),
                submit_h=submit,
                deadline_h=None if math.isnan(slack) else submit + runtime + float(slack),
                priority=int(rng.integers(0, 3)),
            )
        )
    demand = sum(j.cpu_cores * j.runtime_h for j in jobs) / horizon_h  # cores busy on average, if all placed
    cards_demand = sum(j.gpu_cards * j.runtime_h for j in jobs) / horizon_h
    tight = float(rng.uniform(0.25, 0.8))  # share of the demand the free room can hold
    base_c = np.maximum(np.round(rng.dirichlet(np.ones(s_n)) * demand * tight / 4) * 4, 8)
    base_g = np.round(rng.dirichlet(np.ones(s_n)) * cards_demand * tight)
    profile = bool(rng.random() < 0.5) if profile is None else profile
    if profile:  # room changes over time: running work ends, earlier plans hold some
        steps = rng.choice([0.5, 1.0, 1.0, 1.5], size=(s_n, k))
        cores = np.round(base_c[:, None] * np.cumprod(np.where(rng.random((s_n, k)) < 0.2, steps, 1.0), axis=1))
        cards = np.round(base_g[:, None] * np.where(rng.random((s_n, k)) < 0.2, steps, 1.0))
    else:
        cores, cards = base_c[:, None].copy(), base_g[:, None].copy()
    up = np.ones(s_n, dtype=bool)
    if rng.random() < 0.3:  # an outage: one site down for the whole plan
        up[int(rng.integers(s_n))] = False
    signals = build_signals(atlas, sites)
    return Instance(
        atlas=atlas,
        site_ids=site_ids,
        jobs=jobs,
        now_h=now_h,
        slot_h=slot_h,
        n_slots=k,
        cores=cores,
        cards=cards,
        up=up,
        price=signals.price_cny_per_kwh,
        grid=signals.grid_kg_per_kwh,
    )


def optimiser_inputs(inst: Instance):
    """(SchedulerContext, ClusterState, free profile or None) of `inst` for BatchOptimizer.plan."""
    ctx = SchedulerContext.build(inst.atlas, sites=[inst.atlas.site(i) for i in inst.site_ids])
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = np.minimum(inst.cores[:, 0], state.cpu_total).astype(np.int64)
    state.gpu_free[:] = np.minimum(inst.cards[:, 0], state.gpu_total).astype(np.int64)
    state.up[:] = inst.up
    free = None if inst.cores.shape[1] == 1 and inst.cards.shape[1] == 1 else (inst.cores, inst.cards)
    return ctx, state, free
