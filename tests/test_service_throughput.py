"""The fast submission path keeps its promises: group commit stores each job once and audits it, retries with an
Idempotency-Key stay safe under concurrency, one bad job does not fail its batch, cached tokens expire, and the
loop places a burst without waiting between full batches."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import ADMIN_TOKEN, JOB, World, auth, build_world, make_service

from suanwang.service import jobs
from suanwang.service.auth import Principal, Role, TokenCache
from suanwang.service.db import AuditEvent, JobRow, Token
from suanwang.service.schemas import JobIn


def _post(world: World, key: str | None, who: dict | None = None):
    headers = dict(who or world.acme, **({"Idempotency-Key": key} if key else {}))
    return world.client.post("/api/v1/jobs", json=JOB, headers=headers)


def test_concurrent_retries_store_each_key_once_and_audit_it(world: World):
    keys = [f"k{i}" for i in range(12)] * 4  # every key sent four times, all at once
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda k: (k, _post(world, k)), keys))
    assert all(r.status_code in (200, 201) for _, r in answers)
    ids = {}
    for k, r in answers:
        assert ids.setdefault(k, r.json()["id"]) == r.json()["id"], "a retry must return the first job"
    created = Counter(k for k, r in answers if r.status_code == 201)
    assert set(created) == set(ids) and set(created.values()) == {1}, "exactly one 201 per key"
    with world.svc.sessions() as s:
        stored = list(s.scalars(sa.select(JobRow.id)))
        audited = Counter(s.scalars(sa.select(AuditEvent.object).where(AuditEvent.action == "submit")))
    assert sorted(stored) == sorted(ids.values())
    assert audited == Counter(f"job:{i}" for i in ids.values())


def test_concurrent_submissions_without_key_are_all_stored(world: World):
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: _post(world, None), range(40)))
    assert [r.status_code for r in answers] == [201] * 40
    with world.svc.sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(JobRow)) == 40
        assert s.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "submit")) == 40


def test_answer_comes_after_commit(world: World):
    r = _post(world, "durable")
    with world.svc.engine.connect() as c:  # another connection sees it at once
        assert c.scalar(sa.select(JobRow.state).where(JobRow.id == r.json()["id"])) == "queued"


def test_one_failing_job_does_not_fail_its_batch(world: World):
    svc = world.svc
    who = Principal(Role.TENANT, 1, "acme", 1)
    body = JobIn(**JOB)
    good = [jobs.new_job(svc.atlas, body, 1, "acme", None, who, False) for _ in range(5)]
    bad = jobs.new_job(svc.atlas, body, 999_999, "nobody", None, who, False)  # no such tenant: FK violation
    futures = [svc.intake.put(j) for j in (*good[:2], bad, *good[2:])]
    results = []
    for f in futures:
        try:
            results.append(f.result(timeout=30))
        except sa.exc.IntegrityError:
            results.append("error")
    assert results[2] == "error"
    assert all(r != "error" and r[1] for i, r in enumerate(results) if i != 2)
    with svc.sessions() as s:
        assert set(s.scalars(sa.select(JobRow.id))) == {j.values["id"] for j in good}


def test_admin_submits_for_a_named_tenant_through_the_fast_path(world: World):
    r = world.client.post("/api/v1/jobs", json=dict(JOB, tenant="beta"), headers=world.admin)
    assert r.status_code == 201 and r.json()["tenant"] == "beta"
    assert world.client.get(f"/api/v1/jobs/{r.json()['id']}", headers=world.beta).status_code == 200
    assert world.client.get(f"/api/v1/jobs/{r.json()['id']}", headers=world.acme).status_code == 404
    r = world.client.post("/api/v1/jobs", json=dict(JOB, tenant="nobody"), headers=world.admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "tenant"]


def test_token_cache_expires_and_can_be_off(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("suanwang.service.auth.time.monotonic", lambda: now[0])
    who = Principal(Role.TENANT, 1, "acme", 7)
    cache = TokenCache(ttl_s=5)
    assert cache.get("t") is None
    cache.put("t", who)
    assert cache.get("t") == who and cache.get("other") is None
    now[0] += 5.1
    assert cache.get("t") is None
    off = TokenCache(ttl_s=0)
    off.put("t", who)
    assert off.get("t") is None


def test_deleted_token_works_until_the_cache_ttl_then_401(db_url, tmp_path):
    svc = make_service(db_url, tmp_path, auth_cache_s=0.5)
    w = build_world(svc)
    with w.client:
        assert w.client.get("/api/v1/me", headers=w.acme).status_code == 200
        token = w.acme["Authorization"].removeprefix("Bearer ")
        with svc.sessions() as s, s.begin():
            s.execute(sa.delete(Token).where(Token.role == "tenant"))
        assert w.client.get("/api/v1/me", headers=w.acme).status_code == 200  # cached
        time.sleep(0.6)
        assert w.client.get("/api/v1/me", headers=auth(token)).status_code == 401
        assert w.client.get("/api/v1/me", headers=auth(ADMIN_TOKEN)).status_code == 200
    svc.close()


def test_loop_places_a_burst_without_waiting_between_full_batches(db_url, tmp_path):
    n = 40
    svc = make_service(db_url, tmp_path, batch_size=8, loop_interval_s=30.0)
    w = build_world(svc)
    assert w.client.post("/api/v1/jobs/batch", json={"jobs": [JOB] * n}, headers=w.acme).status_code == 201
    svc.loop.start()
    deadline = time.monotonic() + 20  # far less than the 30 s a pause between batches would take
    try:
        while time.monotonic() < deadline:
            with svc.sessions() as s:
                queued = s.scalar(sa.select(sa.func.count()).where(JobRow.state == "queued"))
            if queued == 0:
                break
            time.sleep(0.05)
    finally:
        svc.loop.stop()
    assert queued == 0
    with svc.sessions() as s:
        placed = Counter(s.scalars(sa.select(AuditEvent.object).where(AuditEvent.action == "place")))
    assert len(placed) == n and set(placed.values()) == {1}
    svc.close()


def test_intake_stops_cleanly_and_restarts_on_demand(world: World):
    assert _post(world, "a").status_code == 201
    world.svc.intake.stop()
    assert _post(world, "b").status_code == 201  # a new writer thread starts for the next submission
    assert _post(world, "a").status_code == 200


def test_request_abandoned_before_its_write_is_dropped_and_the_rest_answered(world: World, monkeypatch):
    svc = world.svc
    who = Principal(Role.TENANT, 1, "acme", 1)
    new = [jobs.new_job(svc.atlas, JobIn(**JOB), 1, "acme", None, who, False) for _ in range(3)]
    release, original = threading.Event(), svc.intake._write

    def slow_write(batch):
        release.wait(10)
        original(batch)

    monkeypatch.setattr(svc.intake, "_write", slow_write)
    first = svc.intake.put(new[0])
    time.sleep(0.2)  # the writer holds the first job
    gone, last = svc.intake.put(new[1]), svc.intake.put(new[2])
    assert gone.cancel()  # the client went away while its job was still queued
    release.set()
    assert first.result(10)[1] and last.result(10)[1]
    with svc.sessions() as s:
        assert set(s.scalars(sa.select(JobRow.id))) == {new[0].values["id"], new[2].values["id"]}


def test_loop_only_replica_places_jobs_submitted_to_an_api_replica_without_loop(db_url, tmp_path):
    from suanwang.service.config import ServiceConfig
    from suanwang.service.worker import run_loop

    api = make_service(db_url, tmp_path / "api")  # loop=False, as API workers run with SUANWANG_LOOP=0
    w = build_world(api)
    ids = [w.client.post("/api/v1/jobs", json=JOB, headers=w.acme).json()["id"] for _ in range(5)]
    stop = threading.Event()
    cfg = ServiceConfig(db_url=db_url, loop_interval_s=0.05, workdir=tmp_path / "jobs", simulated_run_s=0.0)
    runner = threading.Thread(target=run_loop, args=(cfg, stop))
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = {w.client.get(f"/api/v1/jobs/{i}", headers=w.acme).json()["state"] for i in ids}
            if states <= {"done"}:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(30)
    assert states == {"done"} and not runner.is_alive()
    api.close()
