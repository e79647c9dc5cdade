"""Batch optimiser on a scaled network: bench_batch's window of jobs on the atlas's sites plus synthetic city DCs.

Issue 17's batch row: 100,000 jobs x 96 fifteen-minute slots at 400 sites in <= 30 s within 1 % of the LP
bound, and the 42 national sites no slower. For each --sites value the same seeded window (bench_batch.job_window)
is planned on `scale_network.scaled_context(n)` (the atlas's sites, then one synthetic DC per city up to n) with
the given share of every site free; prints JSON per site count: wall and CPU seconds, the time split per step,
classes, candidate and LP columns, CG rounds, objective, LP bound and gap, and the 1-minute load average.

    python benchmarks/scale_batch.py [--sites 42,400] [--jobs 100000] [--free-share 0.5] [--now 20] [--seed 11]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch import job_window, quiet_stdout  # noqa: E402
from scale_network import scaled_context  # noqa: E402

from suanwang.scheduler import ClusterState  # noqa: E402
from suanwang.scheduler.optimize import BatchOptimizer  # noqa: E402


def plan_at(n_sites: int, n_jobs: int, free_share: float, now_h: float, seed: int) -> dict:
    """Plan the window on `n_sites` sites; the figures of one run (see module docstring)."""
    ctx, meta = scaled_context(n_sites)
    state = ClusterState.from_sites(ctx.sites)
    state.cpu_free[:] = (state.cpu_total * free_share).astype(np.int64)
    state.gpu_free[:] = (state.gpu_total * free_share).astype(np.int64)
    jobs = job_window(ctx.atlas, n_jobs, now_h, seed)
    opt = BatchOptimizer(ctx, weights={"cost": 1.0, "carbon": 1.0}, slot_h=0.25, horizon_slots=96)
    with quiet_stdout():
        opt.plan(jobs[:200], state, now_h)  # warm-up: imports and HiGHS load
        t0, c0 = time.perf_counter(), time.process_time()
        plan = opt.plan(jobs, state, now_h)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "sites": len(ctx.sites),
        "synthetic_sites": meta["synthetic_sites"],
        "jobs": len(jobs),
        "classes": plan.n_classes,
        "candidate_columns": plan.n_candidates,
        "lp_columns": plan.n_vars,
        "cg_rounds": plan.rounds,
        "total_s": round(wall, 3),
        "total_cpu_s": round(cpu, 3),
        "time_split_s": {k: round(v, 3) for k, v in plan.timings_s.items()},
        "gap": plan.gap,
        "objective_cny_eq": round(plan.objective, 2),
        "lp_bound_cny_eq": round(plan.lp_bound, 2),
        "placed": plan.totals["placed"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", default="42,400", help="site counts, comma-separated (each >= the atlas's 42)")
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--free-share", type=float, default=0.5)
    ap.add_argument("--now", type=float, default=20.0, help="plan start, hours since midnight of day 0")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    runs = [plan_at(int(n), args.jobs, args.free_share, args.now, args.seed) for n in args.sites.split(",")]
    print(json.dumps({"benchmark": "scale_batch", "targets": {"total_s": 30.0, "gap": 0.01}, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
