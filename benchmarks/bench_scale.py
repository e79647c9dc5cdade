"""How the scheduler's cost grows with the number of sites: 42 (the national atlas) to 400 (synthetic city DCs).

For each network size (benchmarks/scale_network.py: the atlas's 42 sites plus synthetic city data centres, a
documented scaling scenario, not atlas data) this run measures, all in one process:

- online decisions per CPU-second, cached pipeline, on a stream of repeating jobs (bench_online's menu of shapes
  and classes) and on a stream in which no two jobs share a signature (each its own input size: the simulator's
  case), each the median of `--repeats` passes with a fresh scheduler;
- the batch plan (BatchOptimizer, 96 slots of 15 minutes, bench_batch's job window and half the capacity free):
  wall and CPU seconds, LP bound, objective and gap.

Prints JSON: one record per size and the ratios of each figure to the 42-site run (work grows with sites x jobs).

    python benchmarks/bench_scale.py [--sites 42,100,200,400] [--jobs 20000] [--unique-jobs 5000]
                                     [--batch-jobs 20000] [--repeats 3] [--no-batch] [--no-online]

The default takes a few minutes on a 2-core machine; `--sites 42,100 --batch-jobs 5000` is a quick check, and
`--batch-jobs 100000` the issue's 100,000 jobs x 96 slots. CPU-seconds count only this process's CPU time, which
stays meaningful on a shared machine (the 1-minute load average is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

from bench_batch import job_window, quiet_stdout  # noqa: E402
from bench_online import job_stream, replay, unique_stream  # noqa: E402
from scale_network import scaled_context  # noqa: E402

from suanwang.atlas import load_atlas  # noqa: E402
from suanwang.scheduler import ClusterState  # noqa: E402
from suanwang.scheduler.optimize import BatchOptimizer  # noqa: E402


def online(ctx, jobs, policy: str, repeats: int) -> dict:
    """Median decisions per CPU-second (and per wall second) of `repeats` cached passes over `jobs`."""
    passes = [replay(ctx, jobs, policy, cache=True, timed=False) for _ in range(repeats)]
    if any(p["_decisions"] != passes[0]["_decisions"] for p in passes):
        raise SystemExit("decisions differ between passes of the same stream")
    p = passes[0]
    return {
        "decisions_per_cpu_s": round(statistics.median(q["decisions_per_cpu_s"] for q in passes), 1),
        "decisions_per_s": round(statistics.median(q["decisions_per_s"] for q in passes), 1),
        "cache_hit_rate": p["cache_hit_rate"],
        "placed": p["placed"],
        "queued": p["queued"],
        "rejected": p["rejected"],
    }


def batch(ctx, jobs, now_h: float, free_share: float) -> dict:
    """One batch plan of `jobs` at `now_h` over 96 slots of 15 minutes with `free_share` of capacity free."""
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = (state.cpu_total * free_share).astype(np.int64)
    state.gpu_free[:] = (state.gpu_total * free_share).astype(np.int64)
    opt = BatchOptimizer(ctx, weights={"cost": 1.0, "carbon": 1.0}, slot_h=0.25, horizon_slots=96)
    with quiet_stdout():
        opt.plan(jobs[:200], state, now_h)  # warm-up: imports, HiGHS load, the context's memos
        t0, c0 = time.perf_counter(), time.process_time()
        plan = opt.plan(jobs, state, now_h)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "jobs": len(jobs),
        "slots": opt.horizon_slots,
        "total_s": round(wall, 3),
        "total_cpu_s": round(cpu, 3),
        "time_split_s": {k: round(v, 3) for k, v in plan.timings_s.items()},
        "classes": plan.n_classes,
        "lp_columns": plan.n_vars,
        "objective_cny_eq": round(plan.objective, 2),
        "lp_bound_cny_eq": round(plan.lp_bound, 2),
        "gap": plan.gap,
        "placed": plan.totals["placed"],
        "unplaced": plan.totals["unplaced"],
    }


RATIO_FIELDS = {
    "online_repeating": "decisions_per_cpu_s",
    "online_unique": "decisions_per_cpu_s",
    "batch": "total_cpu_s",
}


def ratios(runs: list[dict]) -> dict:
    """Each size's figures over the first (smallest) run's: decisions/CPU-s (below 1: slower) and batch CPU-s
    (above 1: slower), with the ratio of sites."""
    base = runs[0]
    out = {}
    for r in runs:
        row = {"sites": round(r["sites"] / base["sites"], 3)}
        for part, name in RATIO_FIELDS.items():
            if part in r and part in base:
                row[f"{part}.{name}"] = round(r[part][name] / base[part][name], 3)
        out[str(r["sites"])] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", default="42,100,200,400", help="network sizes, comma-separated (>= 42 each)")
    ap.add_argument("--jobs", type=int, default=20_000, help="repeating-job stream length")
    ap.add_argument("--unique-jobs", type=int, default=5_000, help="unique-signature stream length")
    ap.add_argument("--batch-jobs", type=int, default=20_000, help="jobs in the batch window (issue: 100000)")
    ap.add_argument("--repeats", type=int, default=3, help="online passes per stream (median)")
    ap.add_argument("--policy", default="online")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scale-seed", type=int, default=0, help="seed of the synthetic cities' order")
    ap.add_argument("--now", type=float, default=20.0, help="batch plan start, hours since midnight of day 0")
    ap.add_argument("--free-share", type=float, default=0.5, help="batch: share of each site's capacity free")
    ap.add_argument("--no-batch", action="store_true")
    ap.add_argument("--no-online", action="store_true")
    args = ap.parse_args()
    try:
        sizes = [int(s) for s in args.sites.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sites: {args.sites!r} is not a comma-separated list of numbers - e.g. --sites 42,100")
    load_before = os.getloadavg()
    atlas = load_atlas()
    jobs = job_stream(atlas, args.jobs, args.seed)
    fresh = unique_stream(job_stream(atlas, args.unique_jobs, args.seed + 1), args.seed)
    window = job_window(atlas, args.batch_jobs, args.now, args.seed + 4) if not args.no_batch else []
    runs = []
    for n in sizes:
        try:
            ctx, meta = scaled_context(n, args.scale_seed, atlas)
        except ValueError as e:
            ap.error(f"--sites {n}: {e} - e.g. --sites 42,100,200,400")
        run = {"sites": len(ctx.sites), "network": meta}
        if not args.no_online:
            run["online_repeating"] = online(ctx, jobs, args.policy, args.repeats) | {"jobs": len(jobs)}
            run["online_unique"] = online(ctx, fresh, args.policy, args.repeats) | {"jobs": len(fresh)}
        if window:
            run["batch"] = batch(ctx, window, args.now, args.free_share)
        runs.append(run)
        print(f"{n} sites done", file=sys.stderr, flush=True)
    result = {
        "benchmark": "scale: online and batch against the number of sites",
        "policy": args.policy,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "runs": runs,
        "ratios_to_first": ratios(runs),
        "targets": {
            "online_unique_decisions_per_cpu_s": {"42": 50_000, "400": 20_000},
            "batch_100k_jobs_total_s_at_400": 30.0,
            "batch_gap": 0.01,
        },
        "load_avg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
