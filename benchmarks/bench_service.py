"""Service throughput: concurrent job submissions through HTTP on loopback, end-to-end placement, CPU per job by
process, and the ratio to a bare FastAPI endpoint served the same way and loaded the same way in the same run.
Prints JSON.

    python benchmarks/bench_service.py [--seconds 10] [--connections 32] [--workers 1] [--runs 3]
                                       [--layout loop-process|loop-in-workers|serve] [--client raw|wrk]
                                       [--db postgresql|sqlite] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each run: a fresh database; `uvicorn --workers N` over `suanwang.service.asgi:app_from_env` with the scheduling
loop in one `python -m suanwang.service.worker` process (`--layout loop-process`, the default), as a thread in
every worker (`--layout loop-in-workers`), or `suanwang serve --workers N --loop-process` (`--layout serve`); the
bare app under the same uvicorn options. The load (N keep-alive connections, a fresh Idempotency-Key per request,
`--seconds` against each) comes from a lean asyncio HTTP/1.1 client in this process (`--client raw`, about 0.1 ms
of CPU per request) or from `wrk` (`--client wrk`). Then the wall time until the loop has placed every accepted
job, and each job's time from its 'submit' to its 'place' audit event (p50 / p99). CPU per job (from the first
submission until every job is placed) is read from /proc for the API processes, the loop process, every PostgreSQL
process (the server may be shared) and this process. The report gives each run and the medians, with the 1-minute
load average before and after each run: on a shared machine, read the ratio and the CPU per job rather than the
absolute numbers.
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
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
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


def _request_bytes(host_port: str, token: str, key: str) -> bytes:
    body = json.dumps(JOB).encode()
    head = (
        f"POST /api/v1/jobs HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _load_raw(url: str, token: str, seconds: float, connections: int) -> dict:
    """A lean HTTP/1.1 keep-alive client on asyncio (uvloop when present): `connections` coroutines, each with one
    connection, sending a prebuilt request with a fresh Idempotency-Key and reading the answer by Content-Length.
    It costs far less CPU per request than an HTTP library, so it takes less of the server's cores."""
    u = httpx.URL(url)
    host_port = f"{u.host}:{u.port}"
    prefix = uuid.uuid4().hex[:8]
    lat: list[float] = []
    bad = errors = 0
    end = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal bad, errors
        reader, writer = await asyncio.open_connection(u.host, u.port)
        n = 0
        try:
            while time.perf_counter() < end:
                n += 1
                t = time.perf_counter()
                writer.write(_request_bytes(host_port, token, f"{prefix}-{w}-{n}"))
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                lat.append((time.perf_counter() - t) * 1e3)
                bad += not head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2"))
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(connections)))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    return {"requests": len(lat), "duration_s": wall, "non2xx": bad, "socket_errors": errors, "p50_ms": q[49],
            "p99_ms": q[98], "max_ms": max(lat)}  # fmt: skip


def _run_raw(url: str, token: str, seconds: float, connections: int) -> dict:
    try:
        import uvloop

        return uvloop.run(_load_raw(url, token, seconds, connections))
    except ImportError:
        return asyncio.run(_load_raw(url, token, seconds, connections))


def load(url: str, token: str, seconds: float, connections: int, script: Path | None) -> dict:
    """Drive POST /api/v1/jobs at `url` for `seconds`; requests, wall time, 2xx rate (per_s) and latency (ms)."""
    r = load_wrk(url, token, seconds, connections, script) if script else _run_raw(url, token, seconds, connections)
    r["ok"] = r["requests"] - r["non2xx"]
    r["per_s"] = r["ok"] / r["duration_s"]
    return r


def _fresh_db(args, tmp: str) -> tuple[str, object]:
    """A fresh database URL for one run and a function that drops it afterwards."""
    if args.db == "sqlite":
        return f"sqlite:///{tmp}/bench.db", lambda: None
    admin = sa.make_url(args.pg)
    dbname = f"suanwang_bench_{uuid.uuid4().hex[:8]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{dbname}"')

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    return admin.set(database=dbname).render_as_string(hide_password=False), drop


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """Every process: pid -> (parent pid, command name, CPU seconds used so far), from /proc (Linux)."""
    out, tick = {}, os.sysconf("SC_CLK_TCK")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            text = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        comm, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        out[int(d)] = (int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process with its descendants, by every PostgreSQL process (the server
    is shared: other clients count too) and by this process (the load generator)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> float:
        return table.get(pid, (0, "", 0.0))[2] + sum(tree(c) for c in children.get(pid, []))

    out = {name: tree(pid) for name, pid in roots.items()}
    out["postgres"] = sum(cpu for _, comm, cpu in table.values() if comm.startswith("postgres"))
    out["load_generator"] = time.process_time()
    return out


def placement_waits_ms(conn, first_id: int) -> np.ndarray:
    """For each job submitted in the measured window (audit ids from `first_id`): ms from its 'submit' event
    (committed, answered 201) to its 'place' event (the loop stored its placement)."""
    rows = conn.exec_driver_sql(
        "SELECT object, action, at FROM audit WHERE id >= %s AND action IN ('submit', 'place')"
        if conn.dialect.name == "postgresql"
        else "SELECT object, action, at FROM audit WHERE id >= ? AND action IN ('submit', 'place')",
        (first_id,),
    ).all()
    submitted, placed = {}, {}
    for obj, action, at in rows:
        at = at if not isinstance(at, str) else datetime.fromisoformat(at)
        (submitted if action == "submit" else placed)[obj] = at
    return np.array([(placed[o] - t).total_seconds() * 1e3 for o, t in submitted.items() if o in placed])


def one_run(args) -> dict:
    tmp = tempfile.mkdtemp()
    db, drop = _fresh_db(args, tmp)
    procs = []
    load_before = os.getloadavg()[0]
    engine = None
    try:
        port, bare_port = free_port(), free_port()
        env = dict(os.environ, SUANWANG_DB=db, SUANWANG_ADMIN_TOKEN=ADMIN, SUANWANG_WORKDIR=tmp)
        svc_cmd = uvicorn_cmd("suanwang.service.asgi:app_from_env", port, args.workers)
        if args.layout == "loop-process":  # API workers without a loop, and one loop-only replica
            procs.append(subprocess.Popen(svc_cmd, env=dict(env, SUANWANG_LOOP="0"), stderr=subprocess.PIPE))
            loop_cmd = [sys.executable, "-m", "suanwang.service.worker"]
            procs.append(subprocess.Popen(loop_cmd, env=env, stderr=subprocess.DEVNULL))
        elif args.layout == "serve":  # what `suanwang serve --workers N` starts
            serve = [
                sys.executable,
                "-c",
                "from suanwang.cli.main import app; app()",
                "serve",
                "--db",
                db,
                "--port",
                str(port),
            ]
            serve += ["--workers", str(args.workers), "--loop-process", "--admin-token", ADMIN, "--workdir", tmp]
            procs.append(subprocess.Popen(serve, env=env, stderr=subprocess.PIPE))
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
        script = args.script

        load(bare + "/api/v1/jobs", token, 1, args.connections, script)  # warm-up both
        load(base + "/api/v1/jobs", token, 1, args.connections, script)
        time.sleep(1)  # let the warm-up's last requests land before counting
        roots = {"api": procs[0].pid} | ({"loop": procs[1].pid} if args.layout == "loop-process" else {})
        engine = sa.create_engine(db)
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT")

            def count(where: str = "") -> int:
                return c.exec_driver_sql(f"SELECT count(*) FROM jobs {where}").scalar()

            before = count()
            first_submit_id = c.exec_driver_sql("SELECT coalesce(max(id), 0) + 1 FROM audit").scalar()
            bare0 = cpu_seconds({"bare": bare_proc.pid})
            floor = load(bare + "/api/v1/jobs", token, args.seconds, args.connections, script)
            bare1 = cpu_seconds({"bare": bare_proc.pid})
            cpu0 = cpu_seconds(roots)
            t0 = time.perf_counter()
            svc = load(base + "/api/v1/jobs", token, args.seconds, args.connections, script)
            while True:  # until the loops have placed every accepted job
                queued = count("WHERE state = 'queued'")
                if queued == 0 or time.perf_counter() - t0 > args.seconds + 300:
                    break
                time.sleep(0.05)
            placed_s = time.perf_counter() - t0
            cpu1 = cpu_seconds(roots)  # submitting and placing every job
            stored = count() - before
            audited = c.exec_driver_sql("SELECT count(*) FROM audit WHERE action = 'submit'").scalar() - before
            waits = placement_waits_ms(c, first_submit_id)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        if engine is not None:
            engine.dispose()
        drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "service_submit_per_s": round(svc["per_s"], 1),
        "service_p50_ms": round(svc["p50_ms"], 2),
        "service_p99_ms": round(svc["p99_ms"], 2),
        "service_errors": svc["non2xx"] + svc["socket_errors"],
        "bare_per_s": round(floor["per_s"], 1),
        "bare_p50_ms": round(floor["p50_ms"], 2),
        "bare_p99_ms": round(floor["p99_ms"], 2),
        "ratio_service_to_bare": round(svc["per_s"] / floor["per_s"], 3),
        "cpu_ms_per_request_bare": round((bare1["bare"] - bare0["bare"]) * 1e3 / max(1, floor["requests"]), 3),
        "accepted": svc["ok"],
        "stored_jobs": stored,
        "submit_audit_events": audited,
        "queued_left": queued,
        "all_placed_after_s": round(placed_s, 2),
        "submitted_and_placed_per_s": round(svc["ok"] / placed_s, 1),
        "submit_to_placed_p50_ms": round(float(np.percentile(waits, 50)), 1) if len(waits) else None,
        "submit_to_placed_p99_ms": round(float(np.percentile(waits, 99)), 1) if len(waits) else None,
        **{f"cpu_ms_per_job_{k}": round((cpu1[k] - cpu0[k]) * 1e3 / max(1, svc["requests"]), 3) for k in cpu0},
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument(
        "--workers", type=int, default=1, help="API workers (2 cores: one beside the loop and the database)"
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--layout",
        choices=["loop-process", "loop-in-workers", "serve"],
        default="loop-process",
        help="scheduling loop in a process of its own (API workers with SUANWANG_LOOP=0), or a thread in every worker",
    )
    ap.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--client", choices=["raw", "wrk"], default="raw", help="load generator (wrk must be on PATH)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        args.script = None
        if args.client == "wrk":
            if not shutil.which("wrk"):
                raise SystemExit("--client wrk: wrk is not on PATH - install it or use --client raw")
            args.script = Path(tmp) / "submit.lua"
            args.script.write_text(WRK_SCRIPT)
        runs = [one_run(args) for _ in range(args.runs)]
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    print(
        json.dumps(
            {
                "db": args.db,
                "load_generator": args.client,
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
