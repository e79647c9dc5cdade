"""Plan quality of the batch optimiser on small tight windows: the true gap to the integer optimum, per mode.

A seeded set of random instances (tests/tight_instances.py: 20-196 jobs, 3-6 sites, 8-23 slots of 15 min to 1 h,
free room for 25-80 % of the demand, tight deadlines, some free-room profiles, outages and link limits) is solved
by an independent per-job integer program (tests/milp_oracle.py, written from the documented model, not from the
optimiser's code) and planned by the optimiser in each mode:
- default: the integer program over the class columns when there are at most 2000 of them, else LP + rounding;
- lp: `mip_max_cols=0`, the simulator's setting (column generation, then whole jobs: rounding, the integer
  program under `polish_time_limit_s`, local search);
- lp_rounding_only: the same without the integer program and the local search (the rounding alone);
and, on the instances without a free-room profile, by every online baseline at now_h, priced with the same
function (`objective_of`). Prints JSON: per mode the median / p90 / max true gap (objective / optimum - 1), how
many instances are above 1 %, the solve seconds (median / p90 / max) and their ratio to lp_rounding_only on
the same instance, which instances a mode is worse than some baseline on, and (--rows) one row per instance.

    python benchmarks/bench_plan_quality.py [--instances 40] [--seed 0] [--oracle-time-limit 120]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from milp_oracle import solve as oracle_solve  # noqa: E402
from tight_instances import optimiser_inputs, random_instance  # noqa: E402

from suanwang.scheduler import POLICIES, make_policy  # noqa: E402
from suanwang.scheduler.optimize import BatchOptimizer  # noqa: E402
from suanwang.scheduler.optimize.lp import quiet_highs  # noqa: E402

MODES = {
    "default": {},
    "lp": {"mip_max_cols": 0},
    # the LP mode without the integer program and the local search: the rounding alone, as before issue 11's
    # work (the same code path otherwise), for the solve-time ratio measured in the same run
    "lp_rounding_only": {"mip_max_cols": 0, "polish_time_limit_s": 0.0, "search_evals": 0},
}


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {}
    return {"median": float(np.median(a)), "p90": float(np.quantile(a, 0.9)), "max": float(a.max())}


def run_instance(seed: int, oracle_time_limit_s: float, cache: dict | None = None) -> dict:
    """One instance: the oracle optimum, each mode's objective, gap and seconds, each baseline's objective
    (`cache`: oracle results by seed, read and filled)."""
    inst = random_instance(seed)
    t = time.perf_counter()
    hit = None if cache is None else cache.get(str(seed))
    if hit is None:
        best = oracle_solve(inst, time_limit_s=oracle_time_limit_s)
        hit = {"objective": best.objective, "proven": best.proven, "s": time.perf_counter() - t}
        if cache is not None:
            cache[str(seed)] = hit
    best = SimpleNamespace(**hit)
    row = {
        "seed": seed,
        "jobs": len(inst.jobs),
        "sites": len(inst.site_ids),
        "slots": inst.n_slots,
        "slot_h": inst.slot_h,
        "profile": inst.cores.shape[1] > 1,
        "oracle": hit,
    }
    ctx, state, free = optimiser_inputs(inst)
    scale = max(1.0, abs(best.objective))
    for mode, kw in MODES.items():
        opt = BatchOptimizer(ctx, slot_h=inst.slot_h, horizon_slots=inst.n_slots, **kw)
        t = time.perf_counter()
        plan = opt.plan(inst.jobs, state, inst.now_h, free)
        row[mode] = {
            "objective": plan.objective,
            "gap": (plan.objective - best.objective) / scale,
            "s": time.perf_counter() - t,
            "exact": plan.exact,
            "reported_gap": plan.mip_gap,
            "lp_bound_ok": plan.lp_bound <= best.objective + 1e-6 * scale,
        }
    if free is None:
        opt = BatchOptimizer(ctx, slot_h=inst.slot_h, horizon_slots=inst.n_slots)
        row["baselines"] = {}
        for name in POLICIES:
            sched, st = make_policy(name, ctx), copy.deepcopy(state)
            decisions = [sched.place(job, st, inst.now_h) for job in inst.jobs]
            row["baselines"][name] = opt.objective_of(inst.jobs, decisions, state, inst.now_h)
    return row


def summarise(rows: list[dict]) -> dict:
    """Per mode: true-gap and seconds distributions, instances above 1 %, instances worse than a baseline."""
    proven = [r for r in rows if r["oracle"]["proven"]]
    out = {"instances": len(rows), "oracle_proven": len(proven)}
    for mode in MODES:
        gaps = [r[mode]["gap"] for r in proven]
        worse = [
            r["seed"]
            for r in rows
            if "baselines" in r and any(r[mode]["objective"] > b * (1 + 1e-9) + 1e-9 for b in r["baselines"].values())
        ]
        out[mode] = {
            "true_gap": _stats(gaps),
            "above_1pct": int(sum(g > 0.01 for g in gaps)),
            "reported_gap": _stats([r[mode]["reported_gap"] for r in proven]),
            "seconds": _stats([r[mode]["s"] for r in rows]),
            "seconds_ratio_to_lp_rounding_only": _stats([r[mode]["s"] / r["lp_rounding_only"]["s"] for r in rows]),
            "worse_than_a_baseline": worse,
            "lp_bound_violations": [r["seed"] for r in rows if not r[mode]["lp_bound_ok"]],
            "exact_but_not_optimal": [
                r["seed"]
                for r in proven
                if r[mode]["exact"] and r[mode]["gap"] > 1e-6 * max(1.0, r["oracle"]["objective"])
            ],
        }
    with_baselines = [r for r in rows if "baselines" in r]
    out["baselines_compared_on"] = len(with_baselines)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0, help="first seed; instance i uses seed + i")
    ap.add_argument("--oracle-time-limit", type=float, default=120.0, help="seconds per oracle solve")
    ap.add_argument("--rows", action="store_true", help="also print one row per instance")
    ap.add_argument("--oracle-cache", type=Path, help="JSON file of oracle results by seed (read, then updated)")
    args = ap.parse_args(argv)
    quiet_highs()  # HiGHS prints its banner on the first construction: not into the JSON
    t0 = time.perf_counter()
    cache = None
    if args.oracle_cache:
        cache = json.loads(args.oracle_cache.read_text()) if args.oracle_cache.exists() else {}
    rows = [run_instance(args.seed + i, args.oracle_time_limit, cache) for i in range(args.instances)]
    if args.oracle_cache:
        args.oracle_cache.write_text(json.dumps(cache))
    result = {
        "benchmark": "bench_plan_quality",
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0],
        "seeds": [args.seed, args.seed + args.instances - 1],
        "wall_s": time.perf_counter() - t0,
        **summarise(rows),
    }
    if args.rows:
        result["rows"] = rows
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
