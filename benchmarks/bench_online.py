"""Online scheduler throughput and decision latency over the national network (all sites).

A seeded stream of jobs (origins weighted by provincial population, a menu of resource shapes, latency and
data classes) is placed one by one, releasing capacity as jobs finish. The same stream is placed by the
cached pipeline (opportunistic batching) and the un-cached one; prints JSON with decisions/s, p50 / p99
decision latency (ms), the cache hit rate and the speed-up ratio, all measured in this run, and whether the
two took identical decisions (site, predictions, reason, retryable). A second stream in which every job has
its own signature shows what the caches cost when nothing repeats.

    python benchmarks/bench_online.py [--jobs 100000] [--unique-jobs 10000] [--repeats 3] [--policy online]

decisions/s is the median of untimed passes over the whole stream (releases included); the percentiles come
from one more pass that reads two clocks around every decision (reported as decisions_per_s_timed).
Wall-clock figures include time the process waits for a CPU; the *_cpu figures count only the CPU time this
process used, which stays meaningful on a shared machine (the 1-minute load average is printed).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import platform
import statistics
import time
from dataclasses import replace

import numpy as np

from suanwang.atlas import load_atlas
from suanwang.scheduler import ClusterState, SchedulerContext, make_policy
from suanwang.workload.job import Job

# Benchmark workload menu (cores, cards, runtime_h, input_gb): inference, web, ETL, rendering, training.
SHAPES = [(4, 1, 0.5, 1.0), (8, 0, 1.0, 5.0), (16, 0, 2.0, 50.0), (64, 0, 6.0, 200.0), (32, 8, 12.0, 500.0)]
LATENCY = ["realtime", "interactive", "batch"]
DATA = ["public", "internal", "sensitive", "core"]


def job_stream(atlas, n: int, seed: int) -> list[Job]:
    """n jobs arriving over about a day and a half, deterministic for `seed`."""
    rng = np.random.default_rng(seed)
    caps = atlas.capitals
    pop = np.array([atlas.province(p.province_id).population_10k for p in caps])
    origins = rng.choice(len(caps), size=n, p=pop / pop.sum())
    shapes = rng.integers(0, len(SHAPES), size=n)
    lat = rng.choice(len(LATENCY), size=n, p=[0.3, 0.3, 0.4])
    data = rng.choice(len(DATA), size=n, p=[0.5, 0.3, 0.15, 0.05])
    submit = np.sort(rng.uniform(0.0, 36.0, size=n))
    jobs = []
    for k in range(n):
        o = caps[origins[k]]
        cpu, gpu, runtime, gb = SHAPES[shapes[k]]
        jobs.append(
            Job(
                id=f"j{k}",
                origin=o.adcode,
                origin_province=o.province_id,
                cpu_cores=cpu,
                gpu_cards=gpu,
                runtime_h=runtime,
                input_gb=gb,
                latency_class=LATENCY[lat[k]],
                data_class=DATA[data[k]],
                submit_h=float(submit[k]),
            )
        )
    return jobs


def replay(ctx: SchedulerContext, jobs: list[Job], policy: str, cache: bool, timed: bool) -> dict:
    """Place every job in order, releasing capacity as jobs finish. With `timed`, every decision's wall and
    thread-CPU time is taken (two clock reads, one a system call, about 1.5 us per decision) for the
    percentiles; without, only the whole stream is timed (the throughput)."""
    sched = make_policy(policy, ctx, cache=cache)
    state = ClusterState.from_sites(ctx.sites)
    place, release = sched.place, state.release
    running: list[tuple[float, int, int]] = []
    lat_ns = np.empty(len(jobs), dtype=np.int64)
    cpu_ns = np.empty(len(jobs), dtype=np.int64)
    decisions = []
    gc.disable()
    t0, c0 = time.perf_counter(), time.process_time()
    for k, job in enumerate(jobs):
        while running and running[0][0] <= job.submit_h:
            _, done, site = heapq.heappop(running)
            release(site, jobs[done])
        if timed:
            s, c = time.perf_counter_ns(), time.thread_time_ns()
            d = place(job, state, job.submit_h)
            lat_ns[k], cpu_ns[k] = time.perf_counter_ns() - s, time.thread_time_ns() - c
        else:
            d = place(job, state, job.submit_h)
        decisions.append(d)
        if d.placement:
            heapq.heappush(running, (job.submit_h + d.placement.transfer_h + job.runtime_h, k, d.placement.site_index))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.enable()
    out = {"decisions_per_s": len(jobs) / wall, "decisions_per_cpu_s": len(jobs) / cpu}
    if timed:
        ms, cpu_ms = lat_ns / 1e6, cpu_ns / 1e6
        out |= {
            "p50_ms": round(float(np.percentile(ms, 50)), 4),
            "p99_ms": round(float(np.percentile(ms, 99)), 4),
            "max_ms": round(float(ms.max()), 3),
            "p50_cpu_ms": round(float(np.percentile(cpu_ms, 50)), 4),
            "p99_cpu_ms": round(float(np.percentile(cpu_ms, 99)), 4),
        }
    if cache:
        out["cache_hit_rate"] = round(sched.hits / max(1, sched.hits + sched.misses), 4)
        out["day_computations"] = sched.day_misses
    out["placed"] = sum(d.placed for d in decisions)
    out["queued"] = sum(d.retryable for d in decisions)
    out["rejected"] = len(decisions) - out["placed"] - out["queued"]
    out["_decisions"] = [(d.placement, d.reason, d.retryable) for d in decisions]
    return out


def run(ctx: SchedulerContext, jobs: list[Job], policy: str, cache: bool, repeats: int) -> dict:
    """Throughput as the median of `repeats` untimed passes (each with a fresh scheduler), then one timed pass
    for the latency percentiles; decisions/s of the timed pass are reported too (decisions_per_s_timed)."""
    passes = [replay(ctx, jobs, policy, cache, timed=False) for _ in range(repeats)]
    timed = replay(ctx, jobs, policy, cache, timed=True)
    if any(p["_decisions"] != timed["_decisions"] for p in passes):
        raise SystemExit("decisions differ between passes of the same stream")
    out = {
        "decisions_per_s": round(statistics.median(p["decisions_per_s"] for p in passes), 1),
        "decisions_per_cpu_s": round(statistics.median(p["decisions_per_cpu_s"] for p in passes), 1),
        "decisions_per_s_timed": round(timed.pop("decisions_per_s"), 1),
        "decisions_per_cpu_s_timed": round(timed.pop("decisions_per_cpu_s"), 1),
    }
    return out | timed


def unique_stream(jobs: list[Job], seed: int) -> list[Job]:
    """The same jobs, each with its own input size (x 1..2), so no two share a signature: the simulator's
    demand model draws sizes from a continuous distribution."""
    rng = np.random.default_rng(seed)
    return [replace(j, input_gb=round(j.input_gb * (1.0 + rng.random()), 6)) for j in jobs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--unique-jobs", type=int, default=10_000, help="jobs in the all-new-signatures stream (0: skip)")
    ap.add_argument("--repeats", type=int, default=3, help="untimed passes of the cached pipeline (median)")
    ap.add_argument("--policy", default="online")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    load_before = os.getloadavg()
    atlas = load_atlas()
    ctx = SchedulerContext.build(atlas)
    jobs = job_stream(atlas, args.jobs, args.seed)
    cached = run(ctx, jobs, args.policy, cache=True, repeats=args.repeats)
    uncached = run(ctx, jobs, args.policy, cache=False, repeats=1)
    same = cached.pop("_decisions") == uncached.pop("_decisions")
    result = {
        "benchmark": "online placement, national network",
        "policy": args.policy,
        "sites": len(ctx.sites),
        "jobs": len(jobs),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cached": cached,
        "uncached": uncached,
        "speedup_cached_over_uncached": round(cached["decisions_per_s"] / uncached["decisions_per_s"], 2),
        "speedup_cpu": round(cached["decisions_per_cpu_s"] / uncached["decisions_per_cpu_s"], 2),
        "identical_decisions": same,
    }
    if args.unique_jobs:
        fresh = unique_stream(jobs[: args.unique_jobs], args.seed)
        uc = run(ctx, fresh, args.policy, cache=True, repeats=args.repeats)
        uu = run(ctx, fresh, args.policy, cache=False, repeats=args.repeats)
        result["unique_signatures"] = {
            "jobs": len(fresh),
            "cached_decisions_per_cpu_s": uc["decisions_per_cpu_s"],
            "uncached_decisions_per_cpu_s": uu["decisions_per_cpu_s"],
            "speedup_cpu": round(uc["decisions_per_cpu_s"] / uu["decisions_per_cpu_s"], 2),
            "cache_hit_rate": uc["cache_hit_rate"],
            "identical_decisions": uc.pop("_decisions") == uu.pop("_decisions"),
        }
    result["load_avg_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
