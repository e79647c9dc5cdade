"""Database faults, made for real: a full disk (SQLite on a small tmpfs, filled), a read-only database and one
that refuses connections as while restarting (PostgreSQL). Through a real uvicorn server with keep-alive clients
in parallel: every answer is a JSON 201/200 or a JSON 503 with Retry-After - never a 500, never a reset
connection -; /healthz says the database is not writable; once the fault ends, the loop places the jobs and
retries with the same Idempotency-Key store each job once."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import psycopg
import pytest
import sqlalchemy as sa
import uvicorn
from test_service_durability import free_port
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import ADMIN_TOKEN, JOB, PG_ADMIN_URL

from suanwang.service import Service, ServiceConfig, create_app

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def serving(svc: Service):
    """A real uvicorn server (in a thread) over `svc`, with its scheduling loop; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _service(db_url: str, tmp_path) -> Service:
    cfg = ServiceConfig(db_url=db_url, admin_token=ADMIN_TOKEN, loop=True, loop_interval_s=0.05)
    cfg.workdir, cfg.simulated_run_s = tmp_path / "jobs", 0.0
    return Service(cfg)


def _tenant(base: str) -> dict:
    httpx.post(f"{base}/api/v1/tenants", json={"name": "acme"}, headers=ADMIN).raise_for_status()
    r = httpx.post(f"{base}/api/v1/tokens", json={"role": "tenant", "tenant": "acme"}, headers=ADMIN)
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _through_a_fault(base: str, acme: dict, start, end, requests: int = 240) -> None:
    """Submit before, during and after a fault; check every answer and that nothing acknowledged is lost."""
    acked: dict[str, str] = {}
    with httpx.Client(base_url=base, headers=acme, timeout=30) as c:
        assert c.get("/api/v1/me").status_code == 200  # the token is cached: the fast path takes submissions
        for i in range(5):
            acked[f"before-{i}"] = c.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": f"before-{i}"}).json()[
                "id"
            ]
    start()
    answers, lock = [], threading.Lock()

    def client(t: int) -> None:
        with httpx.Client(base_url=base, headers=acme, timeout=30) as c:  # keep-alive: a reset would show here
            for i in range(requests // 4):
                key = f"during-{t}-{i}"
                kind = i % 4
                if kind == 0:
                    r = c.post("/api/v1/jobs/batch", json={"jobs": [JOB, JOB]}, headers={"Idempotency-Key": key})
                elif kind == 1:
                    r = c.get("/api/v1/jobs", params={"limit": 5})
                elif kind == 2:
                    r = c.patch("/api/v1/sites/henan-dc", json={"price_cny_per_kwh": 0.5}, headers=ADMIN)
                else:
                    r = c.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": key})
                with lock:
                    answers.append((kind, key, r))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(client, range(4)))  # a reset connection raises here
    wrong = [
        f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
        for _, _, r in answers
        if r.status_code not in (200, 201, 503)
        or r.headers.get("content-type") != "application/json"
        or (r.status_code == 503 and not (r.headers.get("retry-after", "").isdigit() and "detail" in r.json()))
    ]
    assert not wrong, "\n".join(wrong[:10])
    assert sum(r.status_code == 503 for *_, r in answers) >= 1, "the fault was never met"
    health = httpx.get(f"{base}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["writable"] is False and health.headers["retry-after"]
    end()
    with httpx.Client(base_url=base, headers=acme, timeout=30) as c:
        for kind, key, r in answers:
            if kind == 3:
                again = c.post("/api/v1/jobs", json=JOB, headers={"Idempotency-Key": key})
                assert again.status_code == (200 if r.status_code == 201 else 201), again.text
                if r.status_code == 201:
                    assert again.json()["id"] == r.json()["id"]
                acked[key] = again.json()["id"]
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
        deadline = time.monotonic() + 20  # the loop survived: it places what was acknowledged
        while {c.get(f"/api/v1/jobs/{j}").json()["state"] for j in acked.values()} - {"running", "done"}:
            assert time.monotonic() < deadline, "the loop did not resume"
            time.sleep(0.1)
        singles = c.get("/api/v1/jobs", params={"limit": 500}).json()["items"]
        assert len({j["id"] for j in singles if j["id"] in set(acked.values())}) == len(acked)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_answers_503_and_the_service_resumes(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    filler = disk / "filler"
    svc = _service(f"sqlite:///{disk / 'svc.db'}", tmp_path)

    def fill() -> None:  # take every free block of the disk
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)

    try:
        with serving(svc) as base:
            _through_a_fault(base, _tenant(base), fill, lambda: filler.unlink())
    finally:
        svc.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _pg(sql: str) -> None:
    dsn = sa.make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(sql)


def _kick(name: str) -> str:
    return (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("fault", ["read-only", "restarting"])
def test_a_read_only_or_restarting_postgresql_answers_503_and_the_service_resumes(db_url, tmp_path, fault):
    name = sa.make_url(db_url).database
    on, off = {
        "read-only": ("SET default_transaction_read_only = on", "RESET default_transaction_read_only"),
        "restarting": ("ALLOW_CONNECTIONS false", "ALLOW_CONNECTIONS true"),
    }[fault]
    svc = _service(db_url, tmp_path)

    def start() -> None:
        _pg(f'ALTER DATABASE "{name}" {on}')
        _pg(_kick(name))  # every open session ends, as in a failover or restart; new ones meet the fault

    def end() -> None:
        _pg(f'ALTER DATABASE "{name}" {off}')
        _pg(_kick(name))

    try:
        with serving(svc) as base:
            _through_a_fault(base, _tenant(base), start, end, requests=80)
    finally:
        _pg(f'ALTER DATABASE "{name}" {off}')
        svc.close()
