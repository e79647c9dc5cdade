"""Simulator benchmark: our event loop vs SimPy on the same queueing model, and a national year, extrapolated.

Prints one JSON object:
- bare_loop: events/s of Engine.run over pre-scheduled no-op events and over self-rescheduling events;
- mmc: the same M/M/c model (sites x c servers, identical pre-drawn arrivals and service times) in our engine
  and in SimPy; model events (arrivals + completions) per second, the ratio, and a check that both give the
  same mean wait;
- national: one policy on national default demand at the yearly rate (10 million jobs / 365 days) for
  `--days` simulated days; wall time, jobs/s, and the extrapolation to one year of 10 million jobs.

Usage: python benchmarks/bench_sim.py [--customers N] [--days D] [--policy NAME]
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
from collections import deque

import numpy as np

from suanwang.sim.engine import COMPLETION, Engine

YEAR_JOBS = 10_000_000


def bare_loop(n: int) -> dict:
    e = Engine()
    noop = lambda _p: None  # noqa: E731
    rng = np.random.default_rng(0)
    for t in rng.random(n).tolist():
        e.schedule(t, noop)
    t0 = time.perf_counter()
    done = e.run()
    pre = done / (time.perf_counter() - t0)
    e2 = Engine()

    def tick(k: int) -> None:
        if k:
            e2.schedule(e2.now_h + 1.0, tick, k - 1)

    for i in range(1000):
        e2.schedule(i * 1e-3, tick, n // 1000 - 1)
    t0 = time.perf_counter()
    done2 = e2.run()
    return {
        "events": done,
        "prescheduled_events_per_s": round(pre),
        "rescheduling_events_per_s": round(done2 / (time.perf_counter() - t0)),
    }


def draws(customers: int, sites: int, seed: int = 1) -> tuple[list[float], list[int], list[float]]:
    rng = np.random.default_rng(seed)
    arrive = np.cumsum(rng.exponential(1.0, customers)).tolist()
    site = rng.integers(0, sites, customers).tolist()
    service = rng.exponential(0.9 * 4 * sites, customers).tolist()  # load 0.9 with 4 servers per site
    return arrive, site, service


def mmc_ours(arrive, site, service, sites: int, c: int) -> tuple[float, float, int]:
    e = Engine()
    free = [c] * sites
    queues = [deque() for _ in range(sites)]
    waits = []

    def start(i: int) -> None:
        s = site[i]
        free[s] -= 1
        waits.append(e.now_h - arrive[i])
        e.schedule(e.now_h + service[i], finish, i, COMPLETION)

    def finish(i: int) -> None:
        s = site[i]
        free[s] += 1
        if queues[s]:
            start(queues[s].popleft())

    def arrival(i: int) -> None:
        if i + 1 < len(arrive):
            e.schedule(arrive[i + 1], arrival, i + 1, 4)
        if free[site[i]] > 0:
            start(i)
        else:
            queues[site[i]].append(i)

    t0 = time.perf_counter()
    e.schedule(arrive[0], arrival, 0, 4)
    n = e.run()
    return time.perf_counter() - t0, float(np.mean(waits)), n


def mmc_simpy(arrive, site, service, sites: int, c: int) -> tuple[float, float]:
    import simpy

    env = simpy.Environment()
    res = [simpy.Resource(env, capacity=c) for _ in range(sites)]
    waits = []

    def customer(i):
        with res[site[i]].request() as req:
            yield req
            waits.append(env.now - arrive[i])
            yield env.timeout(service[i])

    def source():
        last = 0.0
        for i, t in enumerate(arrive):
            yield env.timeout(t - last)
            last = t
            env.process(customer(i))

    t0 = time.perf_counter()
    env.process(source())
    env.run()
    return time.perf_counter() - t0, float(np.mean(waits))


def national(days: float, policy: str) -> dict:
    from suanwang.atlas import load_atlas
    from suanwang.scheduler import SchedulerContext
    from suanwang.sim.metrics import summarise
    from suanwang.sim.simulator import Simulation
    from suanwang.workload.demand import national_demand

    atlas = load_atlas()
    ctx = SchedulerContext.build(atlas)
    jobs = round(YEAR_JOBS / 365 * days)
    t0 = time.perf_counter()
    demand = national_demand(atlas, jobs, days, seed=1)
    t1 = time.perf_counter()
    run = Simulation(ctx, demand.jobs, policy, horizon_h=days * 24).run()
    t2 = time.perf_counter()
    totals = summarise(run, ctx, 2022)["totals"]
    t3 = time.perf_counter()
    per_job = (t3 - t0) / jobs
    return {
        "policy": policy,
        "days": days,
        "jobs": jobs,
        "demand_s": round(t1 - t0, 2),
        "simulate_s": round(t2 - t1, 2),
        "metrics_s": round(t3 - t2, 2),
        "events": run.events,
        "jobs_per_s": round(jobs / (t2 - t1)),
        "events_per_s": round(run.events / (t2 - t1)),
        "done": totals["done"],
        "year_10m_jobs_extrapolated_min": round(per_job * YEAR_JOBS / 60, 1),
        "note": "extrapolated linearly from the measured days at the yearly job rate (not a full-year run)",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--policy", default="nearest")
    args = ap.parse_args()
    sites, c = 42, 4
    arrive, site, service = draws(args.customers, sites)
    ours_s, ours_wait, n_events = mmc_ours(arrive, site, service, sites, c)
    simpy_s, simpy_wait = mmc_simpy(arrive, site, service, sites, c)
    model_events = 2 * args.customers
    out = {
        "bare_loop": bare_loop(1_000_000),
        "mmc": {
            "customers": args.customers,
            "sites": sites,
            "servers_per_site": c,
            "model_events": model_events,
            "ours_s": round(ours_s, 3),
            "simpy_s": round(simpy_s, 3),
            "ours_events_per_s": round(model_events / ours_s),
            "simpy_events_per_s": round(model_events / simpy_s),
            "speedup_vs_simpy": round(simpy_s / ours_s, 2),
            "mean_wait_ours": round(ours_wait, 6),
            "mean_wait_simpy": round(simpy_wait, 6),
            "same_model": bool(abs(ours_wait - simpy_wait) <= 1e-6 * max(1.0, abs(simpy_wait))),
        },
        "national": national(args.days, args.policy),
        "heapq_note": f"pure Python heapq ({heapq.__name__}); numbers depend on the machine and its load",
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
