"""`suanwang serve --workers N`: N API worker processes without a loop plus one loop-only process; jobs submitted to
any worker are placed and run by the loop process, and stopping the server stops every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_service_durability import SERVE, free_port
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import ADMIN_TOKEN, JOB

from suanwang.service.config import ServiceConfig


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (Linux /proc)."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            parents[int(d)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p}
        out |= kids
        todo += kids
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("layout", [["--workers", "2"], ["--workers", "1", "--loop-process"]], ids=["2", "1+loop"])
def test_serve_with_workers_places_through_the_loop_process_and_stops_cleanly(db_url, tmp_path, layout):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", SERVE, "serve", "--db", db_url, "--port", str(port), *layout]
    cmd += ["--admin-token", ADMIN_TOKEN, "--workdir", str(tmp_path / "jobs")]
    env = dict(os.environ, SUANWANG_SIMULATED_RUN_S="0", SUANWANG_LOOP_INTERVAL_S="0.05")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        children = _descendants(proc.pid)
        workers = int(layout[1])  # one worker is `serve` itself; more are its children
        assert len(children) >= (workers if workers > 1 else 0) + 1  # and the loop process
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        httpx.post(base + "/api/v1/tenants", json={"name": "acme"}, headers=admin).raise_for_status()
        token = httpx.post(base + "/api/v1/tokens", json={"role": "tenant", "tenant": "acme"}, headers=admin)
        acme = {"Authorization": f"Bearer {token.json()['token']}"}
        with httpx.Client(base_url=base, headers=acme, timeout=10) as client:
            ids = [
                client.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": f"k{i}"}).json()["id"]
                for i in range(20)
            ]
            again = client.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": "k3"})
            assert again.status_code == 200 and again.json()["id"] == ids[3]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = {client.get(f"/api/v1/jobs/{i}").json()["state"] for i in ids}
                if states == {"done"}:
                    break
                time.sleep(0.1)
            assert states == {"done"}
            assert client.get("/api/v1/jobs", params={"limit": 500}).json()["total"] == 20
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "a process of the server outlived it"


def test_config_travels_to_worker_processes_through_the_environment(monkeypatch, tmp_path):
    cfg = ServiceConfig(
        db_url="sqlite:///x.db",
        admin_token="t",
        allow_commands=True,
        loop_interval_s=0.25,
        heartbeat_timeout_s=7.5,
        simulated_run_s=0.0,
        auth_cache_s=3.0,
        workdir=tmp_path,
        policy="cheapest",
    )
    for k in [k for k in os.environ if k.startswith("SUANWANG_")]:
        monkeypatch.delenv(k)
    for k, v in cfg.to_env().items():
        monkeypatch.setenv(k, v)
    back = ServiceConfig.from_env()
    back.replica = cfg.replica
    assert back == cfg


def _start(cmd: list[str], env: dict, base: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180  # three processes start: slow on a loaded machine
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_killed_with_sigkill_takes_its_workers_and_loop_process_with_it(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", SERVE, "serve", "--db", f"sqlite:///{tmp_path / 'k.db'}", "--port", str(port)]
    cmd += ["--workers", "2", "--admin-token", ADMIN_TOKEN, "--workdir", str(tmp_path / "jobs")]
    env = dict(os.environ, SUANWANG_LOOP_INTERVAL_S="0.05")
    proc = _start(cmd, env, base)
    children = _descendants(proc.pid)
    assert len(children) >= 3  # two API workers and the loop process
    proc.kill()  # SIGKILL: `serve` runs no cleanup of its own
    proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "a child of a SIGKILLed serve lived on"
    with socket.socket() as s:  # the port is free: no orphan holds it (a new `serve` would bind it)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
