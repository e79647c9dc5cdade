"""Service throughput on PostgreSQL: concurrent job submissions through HTTP on loopback, end-to-end placement,
and the ratio to a bare FastAPI endpoint served the same way and loaded the same way in the same run. Prints JSON.

    python benchmarks/bench_service.py [--seconds 10] [--connections 32] [--workers 2] [--runs 3]
                                       [--layout loop-process|loop-in-workers]
                                       [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each run: a fresh database; `uvicorn --workers N` over `suanwang.service.asgi:app_from_env` with the scheduling
loop in one `python -m suanwang.service.worker` process (`--layout loop-process`, the default) or as a thread in
every worker (`--layout loop-in-workers`), and the bare app under the same uvicorn options; `wrk` (C, one thread,
N keep-alive connections, a fresh Idempotency-Key per request) for `--seconds` against each; then the wall time
until the loop has placed every accepted job. Without `wrk` on PATH, an asyncio httpx client with the same
connection count is used (it needs more CPU, so it lowers both numbers). The report gives each run and the
medians, with the 1-minute load average before and after each run: on a shared machine, read the ratio rather
than the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa

ADMIN = "bench-admin-token"
JOB = {"origin": "许昌", "cpu_cores": 2, "runtime_h": 1, "input_gb": 5, "latency_class": "batch"}
HERE = Path(__file__).resolve().parent

WRK_SCRIPT = r"""
local counter, threads = 0, {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function init(args)
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_BODY")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  prefix = os.getenv("BENCH_KEY_PREFIX") .. tid .. "-"
end
function request()
  counter = counter + 1
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  h["Idempotency-Key"] = prefix .. counter
  return wrk.format(nil, nil, h)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_s": %.3f, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n', summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3))
end
"""


def bare_app():
    """The floor: a FastAPI app with one async POST endpoint that parses a JSON body and answers it (201)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/api/v1/jobs", status_code=201)
    async def echo(body: dict) -> dict:
        return {"id": "x", **body}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uvicorn_cmd(factory: str, port: int, workers: int) -> list[str]:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port)]
    return cmd + ["--workers", str(workers), "--log-level", "warning", "--app-dir", str(HERE)]


def wait_up(url: str, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def load_wrk(url: str, token: str, seconds: int, connections: int, script: Path) -> dict:
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_BODY=json.dumps(JOB), BENCH_KEY_PREFIX=uuid.uuid4().hex[:8])
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    return json.loads(line.removeprefix("BENCH "))


async def _load_httpx(url: str, token: str, seconds: float, connections: int) -> dict:
    lat, bad, end = [], 0, time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=10) as client:

        async def worker() -> None:
            nonlocal bad
            while time.perf_counter() < end:
                t = time.perf_counter()
                r = await client.post(url, json=JOB, headers={"Idempotency-Key": uuid.uuid4().hex})
                lat.append((time.perf_counter() - t) * 1e3)
                bad += not r.is_success

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    return {"requests": len(lat), "duration_s": wall, "non2xx": bad, "socket_errors": 0, "p50_ms": q[49],
            "p99_ms": q[98], "max_ms": max(lat)}  # fmt: skip


def load(url: str, token: str, seconds: float, connections: int, script: Path | None) -> dict:
    """Drive POST /api/v1/jobs at `url` for `seconds`; requests, wall time, 2xx rate (per_s) and latency (ms)."""
    r = load_wrk(url, token, seconds, connections, script) if script else None
    r = r or asyncio.run(_load_httpx(url, token, seconds, connections))
    r["ok"] = r["requests"] - r["non2xx"]
    r["per_s"] = r["ok"] / r["duration_s"]
    return r


def one_run(args, dsn_admin: sa.URL, script: Path | None) -> dict:
    dbname = f"suanwang_bench_{uuid.uuid4().hex[:8]}"
    dsn = dsn_admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{dbname}"')
    db = dsn_admin.set(database=dbname).render_as_string(hide_password=False)
    procs = []
    load_before = os.getloadavg()[0]
    try:
        port, bare_port = free_port(), free_port()
        env = dict(os.environ, SUANWANG_DB=db, SUANWANG_ADMIN_TOKEN=ADMIN, SUANWANG_WORKDIR=tempfile.mkdtemp())
        svc_cmd = uvicorn_cmd("suanwang.service.asgi:app_from_env", port, args.workers)
        if args.layout == "loop-process":  # API workers without a loop, and one loop-only replica
            procs.append(subprocess.Popen(svc_cmd, env=dict(env, SUANWANG_LOOP="0"), stderr=subprocess.PIPE))
            loop_cmd = [sys.executable, "-m", "suanwang.service.worker"]
            procs.append(subprocess.Popen(loop_cmd, env=env, stderr=subprocess.DEVNULL))
        else:  # every API worker runs a loop thread
            procs.append(subprocess.Popen(svc_cmd, env=env, stderr=subprocess.PIPE))
        bare_proc = subprocess.Popen(
            uvicorn_cmd("bench_service:bare_app", bare_port, args.workers), stderr=subprocess.PIPE
        )
        procs.append(bare_proc)
        base, bare = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        wait_up(base + "/healthz", procs[0])
        wait_up(bare + "/docs", bare_proc)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        httpx.post(base + "/api/v1/tenants", json={"name": "bench"}, headers=admin).raise_for_status()
        tok = httpx.post(base + "/api/v1/tokens", json={"role": "tenant", "tenant": "bench"}, headers=admin)
        token = tok.json()["token"]

        load(bare + "/api/v1/jobs", token, 1, args.connections, script)  # warm-up both
        load(base + "/api/v1/jobs", token, 1, args.connections, script)
        time.sleep(1)  # let the warm-up's last requests land before counting
        with psycopg.connect(db.replace("+psycopg", ""), autocommit=True) as c:
            before = c.execute("SELECT count(*) FROM jobs").fetchone()[0]
            floor = load(bare + "/api/v1/jobs", token, args.seconds, args.connections, script)
            t0 = time.perf_counter()
            svc = load(base + "/api/v1/jobs", token, args.seconds, args.connections, script)
            while True:  # until the loops have placed every accepted job
                queued = c.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
                if queued == 0 or time.perf_counter() - t0 > args.seconds + 300:
                    break
                time.sleep(0.05)
            placed_s = time.perf_counter() - t0
            stored = c.execute("SELECT count(*) FROM jobs").fetchone()[0] - before
            audited = c.execute("SELECT count(*) FROM audit WHERE action = 'submit'").fetchone()[0] - before
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    return {
        "service_submit_per_s": round(svc["per_s"], 1),
        "service_p50_ms": round(svc["p50_ms"], 2),
        "service_p99_ms": round(svc["p99_ms"], 2),
        "service_errors": svc["non2xx"] + svc["socket_errors"],
        "bare_per_s": round(floor["per_s"], 1),
        "bare_p50_ms": round(floor["p50_ms"], 2),
        "bare_p99_ms": round(floor["p99_ms"], 2),
        "ratio_service_to_bare": round(svc["per_s"] / floor["per_s"], 3),
        "accepted": svc["ok"],
        "stored_jobs": stored,
        "submit_audit_events": audited,
        "queued_left": queued,
        "all_placed_after_s": round(placed_s, 2),
        "submitted_and_placed_per_s": round(svc["ok"] / placed_s, 1),
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--layout",
        choices=["loop-process", "loop-in-workers"],
        default="loop-process",
        help="scheduling loop in a process of its own (API workers with SUANWANG_LOOP=0), or a thread in every worker",
    )
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = None
        if shutil.which("wrk"):
            script = Path(tmp) / "submit.lua"
            script.write_text(WRK_SCRIPT)
        runs = [one_run(args, sa.make_url(args.pg), script) for _ in range(args.runs)]
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    print(
        json.dumps(
            {
                "db": "postgresql",
                "load_generator": "wrk" if script else "httpx-asyncio",
                "seconds": args.seconds,
                "connections": args.connections,
                "workers": args.workers,
                "layout": args.layout,
                "cpu_count": os.cpu_count(),
                "median": {k: round(statistics.median(r[k] for r in runs), 3) for k in keys},
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
