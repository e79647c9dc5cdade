"""Online scheduler throughput and decision latency over the national network (all sites).

A seeded stream of jobs (origins weighted by provincial population, a menu of resource shapes, latency and
data classes) is placed one by one, releasing capacity as jobs finish. The same stream is placed by the
cached pipeline (opportunistic batching) and the un-cached one; prints JSON with decisions/s, p50 / p99
decision latency (ms) and the speed-up ratio, all measured in this run.

    python benchmarks/bench_online.py [--jobs 100000] [--policy online] [--seed 7]

Wall-clock figures include time the process waits for a CPU; the *_cpu figures count only the CPU time
this process used (thread time per decision), which stays meaningful on a shared machine.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import platform
import time

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


def run(ctx: SchedulerContext, jobs: list[Job], policy: str, cache: bool) -> dict:
    """Place every job in order; returns throughput, latency percentiles and outcome counts."""
    sched = make_policy(policy, ctx, cache=cache)
    state = ClusterState.from_sites(ctx.sites)
    running: list[tuple[float, int, int]] = []
    lat_ns = np.empty(len(jobs), dtype=np.int64)
    cpu_ns = np.empty(len(jobs), dtype=np.int64)
    placed = queued = rejected = 0
    decisions = []
    gc.disable()
    t0, c0 = time.perf_counter(), time.process_time()
    for k, job in enumerate(jobs):
        while running and running[0][0] <= job.submit_h:
            _, done, site = heapq.heappop(running)
            state.release(site, jobs[done])
        s, c = time.perf_counter_ns(), time.thread_time_ns()
        d = sched.place(job, state, job.submit_h)
        lat_ns[k], cpu_ns[k] = time.perf_counter_ns() - s, time.thread_time_ns() - c
        decisions.append(d.placement.site_index if d.placement else -1)
        if d.placement:
            placed += 1
            heapq.heappush(running, (job.submit_h + d.placement.transfer_h + job.runtime_h, k, d.placement.site_index))
        elif d.retryable:
            queued += 1
        else:
            rejected += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.enable()
    ms, cpu_ms = lat_ns / 1e6, cpu_ns / 1e6
    return {
        "decisions_per_s": round(len(jobs) / wall, 1),
        "decisions_per_cpu_s": round(len(jobs) / cpu, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "max_ms": round(float(ms.max()), 3),
        "p50_cpu_ms": round(float(np.percentile(cpu_ms, 50)), 4),
        "p99_cpu_ms": round(float(np.percentile(cpu_ms, 99)), 4),
        "placed": placed,
        "queued": queued,
        "rejected": rejected,
        "_decisions": decisions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--policy", default="online")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    atlas = load_atlas()
    ctx = SchedulerContext.build(atlas)
    jobs = job_stream(atlas, args.jobs, args.seed)
    cached = run(ctx, jobs, args.policy, cache=True)
    uncached = run(ctx, jobs, args.policy, cache=False)
    same = cached.pop("_decisions") == uncached.pop("_decisions")
    print(
        json.dumps(
            {
                "benchmark": "online placement, national network",
                "policy": args.policy,
                "sites": len(ctx.sites),
                "jobs": len(jobs),
                "python": platform.python_version(),
                "cached": cached,
                "uncached": uncached,
                "speedup_cached_over_uncached": round(cached["decisions_per_s"] / uncached["decisions_per_s"], 2),
                "speedup_cpu": round(cached["decisions_per_cpu_s"] / uncached["decisions_per_cpu_s"], 2),
                "identical_decisions": same,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
