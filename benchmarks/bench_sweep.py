"""A sweep of N simulated runs (default 20 seven-day runs: 2 policies x 10 seeds) on the local process pool and on
a local Ray cluster of two nodes started on this host, in the same run: wall seconds of each and their ratio, and
whether every per-run summary is identical. Needs the `ray` extra for the Ray half (else it is skipped).

Prints JSON. Smaller: `--seeds 2 --days 1 --jobs 500`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from suanwang.planner.sweep import SweepFile, grid, run_sweep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    specs = grid(SweepFile(policies=["local-only", "online"], seeds=args.seeds, days=[args.days], jobs=args.jobs))
    t0 = time.perf_counter()
    local = run_sweep(specs, workers=args.workers)
    local_s = time.perf_counter() - t0
    out = {
        "runs": len(specs),
        "days": args.days,
        "jobs": args.jobs,
        "workers": args.workers,
        "local_s": round(local_s, 2),
        "failed": sum(not r["ok"] for r in local),
    }
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        out["ray"] = "skipped: ray is not installed (pip install 'suanwang[ray]')"
    else:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        try:
            ray.init(
                address=cluster.address,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}},
            )
            t0 = time.perf_counter()
            on_ray = run_sweep(specs, ray_address=cluster.address)
            ray_s = time.perf_counter() - t0
        finally:
            ray.shutdown()
            cluster.shutdown()
        same = [{k: v for k, v in r.items() if k != "pid"} for r in local] == [
            {k: v for k, v in r.items() if k != "pid"} for r in on_ray
        ]
        out.update(ray_nodes=2, ray_s=round(ray_s, 2), ray_over_local=round(ray_s / local_s, 3), identical=same)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
