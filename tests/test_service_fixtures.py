"""Fixtures shared by the service tests: a service on SQLite and on PostgreSQL, clients per role.

PostgreSQL: a database of its own per test session on the local server (SUANWANG_TEST_PG, default
postgresql+psycopg://postgres@127.0.0.1:5432/test is used only to create and drop it).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from suanwang.service import Service, ServiceConfig, create_app

PG_ADMIN_URL = os.environ.get("SUANWANG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "test-admin-token"


class PgDatabase:
    """A throw-away PostgreSQL database: created on enter, dropped on exit."""

    def __init__(self):
        self.name = f"suanwang_test_{uuid.uuid4().hex[:10]}"
        self.admin = sa.make_url(PG_ADMIN_URL)
        self.url = self.admin.set(database=self.name).render_as_string(hide_password=False)

    def _exec(self, sql: str) -> None:
        dsn = self.admin.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(sql)

    def __enter__(self) -> str:
        self._exec(f'CREATE DATABASE "{self.name}"')
        return self.url

    def __exit__(self, *exc) -> None:
        self._exec(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL database for this test session (dropped afterwards)."""
    with PgDatabase() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh database URL per test: a SQLite file, or a fresh schema state in the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'svc.db'}"
    url = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    with engine.begin() as c:  # a clean slate per test: drop every table the migrations made
        c.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


def make_service(db_url: str, tmp_path, **cfg) -> Service:
    """A service (loop not started) on `db_url` with the bootstrap admin token."""
    config = ServiceConfig(
        db_url=db_url,
        admin_token=ADMIN_TOKEN,
        loop=False,
        workdir=cfg.pop("workdir", tmp_path / "jobs"),
        simulated_run_s=0.0,
        heartbeat_timeout_s=cfg.pop("heartbeat_timeout_s", 30.0),
        **cfg,
    )
    return Service(config)


@dataclass
class World:
    """A service with clients for each role: admin, operator, tenant A ('acme'), tenant B ('beta')."""

    svc: Service
    client: TestClient
    admin: dict
    operator: dict
    acme: dict
    beta: dict

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.svc.loop.tick()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def build_world(svc: Service) -> World:
    client = TestClient(create_app(svc))
    admin = auth(ADMIN_TOKEN)
    tokens = {}
    for name in ("acme", "beta"):
        assert client.post("/api/v1/tenants", json={"name": name}, headers=admin).status_code == 201
        r = client.post("/api/v1/tokens", json={"role": "tenant", "tenant": name}, headers=admin)
        assert r.status_code == 201, r.text
        tokens[name] = auth(r.json()["token"])
    r = client.post("/api/v1/tokens", json={"role": "operator"}, headers=admin)
    assert r.status_code == 201, r.text
    return World(svc, client, admin, auth(r.json()["token"]), tokens["acme"], tokens["beta"])


@pytest.fixture
def world(db_url, tmp_path):
    svc = make_service(db_url, tmp_path)
    w = build_world(svc)
    with w.client:
        yield w
    svc.close()


JOB = {"origin": "许昌", "cpu_cores": 4, "runtime_h": 2, "input_gb": 10, "latency_class": "batch"}


@pytest.fixture
def job_workdir():
    """A workdir for sandboxed command jobs that their uids can reach (pytest's own tmp folders are 0700 root)."""
    import shutil
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="suanwang-jobs-"))
    d.chmod(0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)
