"""Simulator benchmark: our event loop vs SimPy on the same queueing model, and a national year, extrapolated.

Prints one JSON object:
- bare_loop: events/s of Engine.run over pre-scheduled no-op events (a heap of 1M: memory-bound) and over
  self-rescheduling events (1,000 live at a time, as in a simulation); the median of `--reps` rounds, by wall clock
  and by this process's CPU time (the second is steadier on a shared machine);
- mmc: the same M/M/c model (sites x c servers, identical pre-drawn arrivals and service times) in our engine
  and in SimPy; model events (arrivals + completions) per second, the ratio, and a check that both give the
  same mean wait;
- national: one policy on national default demand at the yearly rate (10 million jobs / 365 days) for
  `--days` simulated days; wall time, jobs/s, the time per job split into the policy's decision (`place`, timed
  around each call) and the simulator's own work, and the linear extrapolation to one year of 10 million jobs.

With `--year` (or `--stream-days D`) it runs instead a real streamed simulation of 365 (or D) days of national
demand at the yearly rate - 10 million jobs for the year, drawn one day at a time (national_demand_days) and fed
to the simulator as the arrivals reach them - and prints: wall seconds, jobs, events, the time per job split as
above (demand drawn as the run goes, timed around each day's draw), peak RSS (ru_maxrss) and the 1-minute load
before and after. Progress goes to stderr every 30 simulated days. It also prints the outcome's digest (done /
rejected / failed counts and a SHA-256 of every job's end state: status, end hour, restarts, and each run's job,
site and start hour) and compares it with the digest stored for the same policy and days in
benchmarks/digests/ (`--write-digest` stores it): a faster simulator must give the same outcome to the job.

Usage: python benchmarks/bench_sim.py [--customers N] [--days D] [--policy NAME] [--reps R]
       python benchmarks/bench_sim.py --year [--policy NAME] [--write-digest]   (about 10 minutes on 2 cores)
       python benchmarks/bench_sim.py --stream-days 7              (a week, a few seconds; digest checked too)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import time
from collections import deque
from pathlib import Path

import numpy as np

from suanwang.sim.engine import COMPLETION, Engine

YEAR_JOBS = 10_000_000
DIGESTS = Path(__file__).parent / "digests"


def _bare_round(n: int, clock) -> tuple[float, float]:
    """(pre-scheduled, rescheduling) events per second of one round, timed with `clock`."""
    e = Engine()
    noop = lambda _p: None  # noqa: E731
    for t in np.random.default_rng(0).random(n).tolist():
        e.schedule(t, noop)
    t0 = clock()
    done = e.run()
    pre = done / (clock() - t0)
    e2 = Engine()

    def tick(k: int) -> None:
        if k:
            e2.schedule(e2.now_h + 1.0, tick, k - 1)

    for i in range(1000):
        e2.schedule(i * 1e-3, tick, n // 1000 - 1)
    t0 = clock()
    done2 = e2.run()
    resched = done2 / (clock() - t0)
    assert done == n and done2 == 1000 * (n // 1000), "the engine lost events"
    return pre, resched


def bare_loop(n: int, reps: int) -> dict:
    wall = [_bare_round(n, time.perf_counter) for _ in range(reps)]
    cpu = [_bare_round(n, time.process_time) for _ in range(reps)]
    return {
        "events": n,
        "rounds": reps,
        "prescheduled_events_per_s": round(statistics.median(r[0] for r in wall)),
        "rescheduling_events_per_s": round(statistics.median(r[1] for r in wall)),
        "prescheduled_events_per_cpu_s": round(statistics.median(r[0] for r in cpu)),
        "rescheduling_events_per_cpu_s": round(statistics.median(r[1] for r in cpu)),
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
    from suanwang.sim.simulator import Simulation
    from suanwang.workload.demand import national_demand

    atlas = load_atlas()
    ctx = SchedulerContext.build(atlas)
    jobs = round(YEAR_JOBS / 365 * days)
    t0 = time.perf_counter()
    demand = national_demand(atlas, jobs, days, seed=1)
    t1 = time.perf_counter()
    sim = Simulation(ctx, demand.jobs, policy, horizon_h=days * 24)
    run, decide, plan, t2, totals, t3 = _run_timed(sim, ctx)
    per_job = (t3 - t0) / jobs
    sim_s = t2 - t1
    rest_s = sim_s - decide[0] - plan[0]
    return {
        "policy": policy,
        "days": days,
        "jobs": jobs,
        "demand_s": round(t1 - t0, 2),
        "simulate_s": round(sim_s, 2),
        "metrics_s": round(t3 - t2, 2),
        "events": run.events,
        "jobs_per_s": round(jobs / sim_s),
        "events_per_s": round(run.events / sim_s),
        "decisions": decide[1],
        "us_per_job": {
            "decision": round(decide[0] / jobs * 1e6, 1),
            "batch_plan": round(plan[0] / jobs * 1e6, 1),
            "simulator": round(rest_s / jobs * 1e6, 1),
            "demand": round((t1 - t0) / jobs * 1e6, 1),
            "metrics": round((t3 - t2) / jobs * 1e6, 1),
        },
        "decision_share_of_simulate": round(decide[0] / sim_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "done": totals["done"],
        "year_10m_jobs_extrapolated_min": round(per_job * YEAR_JOBS / 60, 1),
        "note": "extrapolated linearly from the measured days at the yearly job rate (not a full-year run)",
    }


def outcome_digest(run) -> dict:
    """The outcome of a run to the job: status counts and a SHA-256 over every job's status, end hour (rounded to
    1e-6 h), restarts, and every run's (job, site, start hour)."""
    from suanwang.sim.records import DONE, FAILED, REJECTED

    status = np.asarray(run.status, dtype=np.int8)
    h = hashlib.sha256()
    h.update(status.tobytes())
    h.update(np.round(np.asarray(run.end_h, dtype=np.float64), 6).tobytes())
    h.update(np.asarray(run.restarts, dtype=np.int32).tobytes())
    seg = run.segments
    h.update(seg.column("job").tobytes() + seg.column("site").tobytes())
    h.update(np.round(seg.column("start_h"), 6).tobytes())
    counts = {
        name: int((status == code).sum()) for name, code in (("done", DONE), ("rejected", REJECTED), ("failed", FAILED))
    }
    return {**counts, "jobs": int(status.size), "runs": len(seg), "sha256": h.hexdigest()}


def outcome_check(run, policy: str, days: int, write: bool) -> dict:
    """The run's digest, compared with the one stored for this policy and number of days (stored when `write`)."""
    digest = outcome_digest(run)
    path = DIGESTS / f"streamed-{policy}-{days}d.json"
    if write:
        DIGESTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(digest, indent=2) + "\n")
        return {**digest, "stored": path.name}
    if not path.exists():
        return {**digest, "same_as_stored": None, "note": f"no stored digest {path.name}: run with --write-digest"}
    stored = json.loads(path.read_text())
    return {**digest, "same_as_stored": stored == digest, "stored": stored if stored != digest else path.name}


def streamed(days: int, policy: str, write: bool = False) -> dict:
    """A real run of `days` days of national demand at the yearly rate, streamed day by day (see the docstring)."""
    import sys

    from suanwang.atlas import load_atlas
    from suanwang.scheduler import SchedulerContext
    from suanwang.sim.simulator import Simulation
    from suanwang.workload.demand import national_demand_days

    load_before = os.getloadavg()
    atlas = load_atlas()
    ctx = SchedulerContext.build(atlas)
    jobs = round(YEAR_JOBS / 365 * days)
    drawn = [0.0, 0]  # seconds drawing demand, days drawn
    t0 = time.perf_counter()

    def feed():
        for day in national_demand_days(atlas, jobs, days, seed=1):
            drawn[0] += time.perf_counter() - t_draw[0]
            drawn[1] += 1
            if drawn[1] % 30 == 0:
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                wall = time.perf_counter() - t0
                print(f"day {drawn[1]}: {wall:.0f} s, peak RSS {rss:.0f} MB", file=sys.stderr, flush=True)
            yield day.jobs
            t_draw[0] = time.perf_counter()

    t_draw = [time.perf_counter()]
    sim = Simulation(ctx, [], policy, horizon_h=days * 24.0, more=feed())
    run, decide, plan, t2, totals, t3 = _run_timed(sim, ctx)
    sim_s = t2 - t0 - drawn[0]
    rest_s = sim_s - decide[0] - plan[0]
    return {
        "policy": policy,
        "days": days,
        "jobs": jobs,
        "streamed": True,
        "wall_s": round(t3 - t0, 1),
        "wall_min": round((t3 - t0) / 60, 2),
        "demand_s": round(drawn[0], 2),
        "simulate_s": round(sim_s, 2),
        "metrics_s": round(t3 - t2, 2),
        "events": run.events,
        "decisions": decide[1],
        "us_per_job": {
            "total": round((t3 - t0) / jobs * 1e6, 1),
            "decision": round(decide[0] / jobs * 1e6, 1),
            "batch_plan": round(plan[0] / jobs * 1e6, 1),
            "simulator": round(rest_s / jobs * 1e6, 1),
            "demand": round(drawn[0] / jobs * 1e6, 1),
            "metrics": round((t3 - t2) / jobs * 1e6, 1),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "done": totals["done"],
        "failed": totals["failed"],
        "rejected": totals["rejected"],
        "outcome": outcome_check(run, policy, days, write),
        "load_1min_before": round(load_before[0], 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def _run_timed(sim, ctx) -> tuple:
    """Run `sim` with its decisions (and batch plans) timed, then its metrics: (run, decisions [s, calls], plans
    [s, calls], perf_counter when the run ended, the metrics' totals, perf_counter when they were done)."""
    from suanwang.sim.metrics import summarise

    decide = _timed(sim.sched, "place")
    plan = _timed(sim.sched, "plan") if sim.windowed else [0.0, 0]
    run = sim.run()
    ended = time.perf_counter()
    totals = summarise(run, ctx, 2022)["totals"]
    return run, decide, plan, ended, totals, time.perf_counter()


def _timed(obj, name: str) -> list:
    """Wrap obj.name so each call adds its wall seconds and a count to the returned [seconds, calls]."""
    inner, acc = getattr(obj, name), [0.0, 0]

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            acc[0] += time.perf_counter() - t0
            acc[1] += 1

    setattr(obj, name, timed)
    return acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--policy", default="nearest")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-national", action="store_true")
    ap.add_argument("--year", action="store_true", help="a real streamed run of 365 days (10 M jobs)")
    ap.add_argument("--stream-days", type=int, default=0, help="a real streamed run of this many days")
    ap.add_argument("--write-digest", action="store_true", help="store the streamed run's outcome digest")
    args = ap.parse_args()
    if args.year or args.stream_days:
        result = streamed(args.stream_days or 365, args.policy, args.write_digest)
        print(json.dumps({"national_streamed": result}, indent=2))
        return
    sites, c = 42, 4
    arrive, site, service = draws(args.customers, sites)
    ours_s, ours_wait, n_events = mmc_ours(arrive, site, service, sites, c)
    simpy_s, simpy_wait = mmc_simpy(arrive, site, service, sites, c)
    model_events = 2 * args.customers
    out = {
        "bare_loop": bare_loop(1_000_000, args.reps),
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
        "national": None if args.skip_national else national(args.days, args.policy),
        "load_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "heapq_note": "pure Python heapq; numbers depend on the machine and its load",
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
