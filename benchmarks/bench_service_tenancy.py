"""Service tenancy benchmark: the scheduling loop's placement step with and without a tenancy document, on the same
jobs, interleaved in one run.

Each round is a fresh SQLite service (loop not started) with two tenants; `--jobs` jobs (4 cores, half per tenant)
are stored with batch submissions, then `SchedulingLoop.place()` runs until nothing more is placed. "on" stores a
tenancy first - weights 1 and 2, one national and one regional quota, both too large to bind - so every pass
builds the quota book, ranks the queued jobs by fair share and keeps the holds ledger; "off" stores none. Prints
one JSON object: loop milliseconds per placed job, the median of `--reps` rounds each, and on / off.

Usage: python benchmarks/bench_service_tenancy.py [--jobs N] [--reps R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from suanwang.service import Service, ServiceConfig, create_app

ADMIN = "bench-admin-token"
DOCUMENT = {
    "tenants": {"acme": 1, "beta": 2},
    "quotas": [
        {"id": "A1", "tenant": "acme", "cores": 10**9},
        {"id": "B1", "tenant": "beta", "cores": 10**9, "outside": "shanghai"},
    ],
}


def one_round(tenancy: bool, n_jobs: int, batch: int = 256) -> float:
    """Loop milliseconds per placed job for one fresh service."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServiceConfig(db_url=f"sqlite:///{Path(tmp) / 'b.db'}", admin_token=ADMIN, loop=False)
        cfg.workdir, cfg.batch_size = Path(tmp) / "jobs", batch
        svc = Service(cfg)
        try:
            client = TestClient(create_app(svc))
            admin = {"Authorization": f"Bearer {ADMIN}"}
            for name in ("acme", "beta"):
                client.post("/api/v1/tenants", json={"name": name}, headers=admin).raise_for_status()
            if tenancy:
                client.put("/api/v1/quotas", json=DOCUMENT, headers=admin).raise_for_status()
            job = {"origin": "许昌", "cpu_cores": 4, "runtime_h": 2, "input_gb": 10, "latency_class": "batch"}
            for start in range(0, n_jobs, 100):
                jobs = [dict(job, tenant=("acme", "beta")[i % 2]) for i in range(start, min(n_jobs, start + 100))]
                client.post("/api/v1/jobs/batch", json={"jobs": jobs}, headers=admin).raise_for_status()
            t0, placed = time.perf_counter(), 0
            while (n := svc.loop.place()) > 0:
                placed += n
            return (time.perf_counter() - t0) / max(1, placed) * 1e3
        finally:
            svc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1500)
    ap.add_argument("--reps", type=int, default=4)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.reps):
        runs["off"].append(one_round(False, args.jobs))
        runs["on"].append(one_round(True, args.jobs))
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    out = {
        "jobs": args.jobs,
        "reps": args.reps,
        "ms_per_placed_job": {"off": round(off, 3), "on": round(on, 3)},
        "runs": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "on_over_off": round(on / off, 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
