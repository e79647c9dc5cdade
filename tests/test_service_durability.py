"""Durability: kill -9 the real server mid-stream of idempotent submissions; after a restart every acknowledged job
exists exactly once, and re-sending the unacknowledged ones never duplicates."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from test_service_fixtures import ADMIN_TOKEN, JOB

SERVE = "from suanwang.cli.main import app; app()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int, workdir: Path) -> subprocess.Popen:
    """`suanwang serve` in a subprocess; returns once /healthz answers."""
    cmd = [sys.executable, "-c", SERVE, "serve", "--db", f"sqlite:///{db}", "--port", str(port)]
    cmd += ["--admin-token", ADMIN_TOKEN, "--workdir", str(workdir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start in 30 s")


def test_kill9_mid_stream_loses_no_acknowledged_job(tmp_path):
    db, port = tmp_path / "durable.db", free_port()
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    proc = start_server(db, port, tmp_path / "jobs")
    try:
        httpx.post(f"{base}/api/v1/tenants", json={"name": "acme"}, headers=admin).raise_for_status()
        token = httpx.post(f"{base}/api/v1/tokens", json={"role": "tenant", "tenant": "acme"}, headers=admin)
        tenant = {"Authorization": f"Bearer {token.json()['token']}"}
        acked: dict[str, str] = {}  # idempotency key -> job id
        keys = [f"key-{i}" for i in range(200)]
        victim = proc

        def killer() -> None:  # kill -9 at an arbitrary moment, usually with a request in flight
            while len(acked) < 50:
                time.sleep(0.001)
            os.kill(victim.pid, signal.SIGKILL)

        threading.Thread(target=killer, daemon=True).start()
        with httpx.Client(base_url=base, headers=tenant, timeout=5) as client:
            for key in keys:
                try:
                    r = client.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    continue
                if r.status_code in (200, 201):
                    acked[key] = r.json()["id"]
        proc.wait(timeout=10)
        assert 0 < len(acked) < len(keys)
        proc = start_server(db, port, tmp_path / "jobs")
        with httpx.Client(base_url=base, headers=tenant, timeout=10) as client:
            for key in keys:  # re-send everything: acknowledged ones must come back unchanged
                r = client.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": key})
                assert r.status_code in (200, 201), r.text
                if key in acked:
                    assert r.status_code == 200 and r.json()["id"] == acked[key]
            listed = client.get("/api/v1/jobs", params={"limit": 500}).json()
        ids = [j["id"] for j in listed["items"]]
        assert listed["total"] == len(keys) == len(set(ids))
        assert set(acked.values()) <= set(ids)
    finally:
        proc.kill()
        proc.wait(timeout=10)
