"""Service throughput: job submissions per second through HTTP on loopback (uvicorn subprocess, PostgreSQL),
p50 / p99 latency, time until the loop has placed them all, and the ratio to a bare FastAPI endpoint measured
in the same run. Prints JSON.

    python benchmarks/bench_service.py [--jobs 300] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid

import httpx
import psycopg
import sqlalchemy as sa

ADMIN = "bench-admin-token"
JOB = {"origin": "许昌", "cpu_cores": 2, "runtime_h": 1, "input_gb": 5, "latency_class": "batch"}


def bare_server(port: int) -> None:
    """A FastAPI app with one POST endpoint that parses the same body and answers JSON: the floor."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/api/v1/jobs", status_code=201)
    def echo(body: dict) -> dict:
        return {"id": "x", **body}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def post_many(base: str, headers: dict, n: int) -> list[float]:
    """n sequential POSTs with idempotency keys; latencies in ms."""
    out = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        for _ in range(n):
            t = time.perf_counter()
            r = c.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": uuid.uuid4().hex})
            out.append((time.perf_counter() - t) * 1e3)
            if r.status_code != 201:
                raise SystemExit(f"submit failed: {r.status_code} {r.text[:300]}")
    return out


def summary(lat_ms: list[float], wall_s: float) -> dict:
    q = statistics.quantiles(lat_ms, n=100)
    return {"per_s": round(len(lat_ms) / wall_s, 1), "p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_server:
        return bare_server(args.bare_server)

    admin_url = sa.make_url(args.pg)
    dbname = f"suanwang_bench_{uuid.uuid4().hex[:8]}"
    dsn = admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{dbname}"')
    db = admin_url.set(database=dbname).render_as_string(hide_password=False)
    procs = []
    try:
        port, bare_port = free_port(), free_port()
        serve = [sys.executable, "-c", "from suanwang.cli.main import app; app()", "serve", "--db", db]
        procs.append(subprocess.Popen(serve + ["--port", str(port), "--admin-token", ADMIN], stderr=subprocess.PIPE))
        procs.append(
            subprocess.Popen([sys.executable, __file__, "--bare-server", str(bare_port)], stderr=subprocess.PIPE)
        )
        base, bare = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        wait_up(base + "/healthz", procs[0])
        wait_up(bare + "/docs", procs[1])
        admin = {"Authorization": f"Bearer {ADMIN}"}
        httpx.post(base + "/api/v1/tenants", json={"name": "bench"}, headers=admin).raise_for_status()
        tok = httpx.post(base + "/api/v1/tokens", json={"role": "tenant", "tenant": "bench"}, headers=admin).json()
        tenant = {"Authorization": f"Bearer {tok['token']}"}

        post_many(bare, {}, 20)  # warm-up both
        post_many(base, tenant, 20)
        t = time.perf_counter()
        bare_lat = post_many(bare, {}, args.jobs)
        bare_s = time.perf_counter() - t
        t = time.perf_counter()
        svc_lat = post_many(base, tenant, args.jobs)
        svc_s = time.perf_counter() - t
        while True:  # until the loop has placed (or started / finished) every job
            left = httpx.get(base + "/api/v1/jobs", params={"state": "queued", "limit": 1}, headers=tenant).json()
            if left["total"] == 0 or time.perf_counter() - t > 120:
                break
            time.sleep(0.05)
        placed_s = time.perf_counter() - t
        svc, floor = summary(svc_lat, svc_s), summary(bare_lat, bare_s)
        print(
            json.dumps(
                {
                    "jobs": args.jobs,
                    "db": "postgresql",
                    "service_submit": svc,
                    "bare_fastapi": floor,
                    "ratio_service_to_bare_throughput": round(svc["per_s"] / floor["per_s"], 3),
                    "all_placed_after_s": round(placed_s, 2),
                    "submitted_and_placed_per_s": round(args.jobs / placed_s, 1),
                    "queued_left": left["total"],
                },
                indent=2,
            )
        )
    finally:
        for p in procs:
            p.kill()
            p.wait()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
