"""The scheduling loop: replicas never place a job twice; silent sites lose their jobs to others; executors run."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World, build_world, make_service

from suanwang.service import sites
from suanwang.service.convert import now_h
from suanwang.service.db import AuditEvent, JobRow, SiteRow, utcnow
from suanwang.service.executors import ExecRequest, LocalExecutor
from suanwang.service.placement import explanation_text, verdicts_of


def test_two_replicas_place_every_job_exactly_once(pg_url, tmp_path):
    with sa.create_engine(pg_url).begin() as c:
        c.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    a = make_service(pg_url, tmp_path / "a", batch_size=8, replica="a")
    b = make_service(pg_url, tmp_path / "b", batch_size=8, replica="b")
    w = build_world(a)
    n = 120
    body = {"jobs": [dict(JOB, cpu_cores=1 + i % 3) for i in range(n)]}
    assert w.client.post("/api/v1/jobs/batch", json=body, headers=w.acme).status_code == 201
    errors = []

    def run(svc):
        try:
            for _ in range(200):
                if svc.loop.place() == 0 and _queued(svc) == 0:
                    return
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    with a.sessions() as s:
        placed = Counter(s.scalars(sa.select(AuditEvent.object).where(AuditEvent.action == "place")))
        actors = set(s.scalars(sa.select(AuditEvent.actor).where(AuditEvent.action == "place")))
        states = Counter(s.scalars(sa.select(JobRow.state)))
    assert len(placed) == n and set(placed.values()) == {1}
    assert states == {"placed": n}
    assert len(actors) == 2, "both replicas should have taken a share"
    a.close()
    b.close()


def _queued(svc) -> int:
    with svc.sessions() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(JobRow).where(JobRow.state == "queued"))


def test_silent_site_goes_down_and_its_jobs_move(world: World):
    world.svc.executors["local"].simulated_run_s = 3600  # keep it running
    jid = world.client.post("/api/v1/jobs", json=JOB, headers=world.acme).json()["id"]
    world.tick()
    job = world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()
    assert job["state"] == "running"
    first = job["site_id"]
    world.client.post(f"/api/v1/sites/{first}/heartbeat", headers=world.operator)
    with world.svc.sessions() as s, s.begin():  # the site fell silent long ago
        s.get(SiteRow, first).last_heartbeat = utcnow() - timedelta(hours=1)
    world.tick()
    site = next(x for x in world.client.get("/api/v1/sites", headers=world.acme).json() if x["id"] == first)
    assert site["status"] == "down"
    job = world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()
    assert job["site_id"] not in (None, first) and job["attempts"] == 1
    actions = Counter(
        e["action"] for e in world.client.get("/api/v1/audit?limit=500", headers=world.admin).json()["items"]
    )
    assert actions["site_down"] == 1 and actions["requeue"] == 1 and actions["place"] == 2
    # a heartbeat brings it back
    assert world.client.post(f"/api/v1/sites/{first}/heartbeat", headers=world.operator).json()["status"] == "up"


def test_seeded_sites_are_not_monitored_until_they_beat(world: World):
    sites = world.client.get("/api/v1/sites", headers=world.acme).json()
    assert sites and all(s["status"] == "up" and not s["monitored"] for s in sites)
    world.svc.cfg.heartbeat_timeout_s = 0
    world.tick()
    assert all(s["status"] == "up" for s in world.client.get("/api/v1/sites", headers=world.acme).json())


def test_operator_can_take_a_site_down(world: World):
    jid = world.client.post("/api/v1/jobs", json=JOB, headers=world.acme).json()["id"]
    world.svc.loop.place()
    site = world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()["site_id"]
    r = world.client.patch(f"/api/v1/sites/{site}", json={"status": "down"}, headers=world.operator)
    assert r.status_code == 200 and r.json()["status"] == "down"
    job = world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()
    assert job["state"] == "queued" and job["site_id"] is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_commands_run_with_exit_codes_and_logs(db_url, tmp_path, job_workdir):
    svc = make_service(db_url, tmp_path, allow_commands=True, workdir=job_workdir)
    w = build_world(svc)
    ok = w.client.post("/api/v1/jobs", json=dict(JOB, command="echo hello-$SUANWANG_JOB_ID"), headers=w.acme).json()
    bad = w.client.post("/api/v1/jobs", json=dict(JOB, command="echo oops >&2; exit 3"), headers=w.acme).json()
    slow = w.client.post("/api/v1/jobs", json=dict(JOB, command="sleep 30"), headers=w.acme).json()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        w.tick()
        states = {j["id"]: j for j in w.client.get("/api/v1/jobs", headers=w.acme).json()["items"]}
        if states[ok["id"]]["state"] == "done" and states[bad["id"]]["state"] == "failed":
            break
        time.sleep(0.05)
    assert states[ok["id"]]["state"] == "done" and states[ok["id"]]["exit_code"] == 0
    assert states[bad["id"]]["state"] == "failed" and states[bad["id"]]["exit_code"] == 3
    assert f"hello-{ok['id']}" in w.client.get(f"/api/v1/jobs/{ok['id']}/logs", headers=w.acme).json()["logs"]
    assert "oops" in w.client.get(f"/api/v1/jobs/{bad['id']}/logs", headers=w.acme).json()["logs"]
    assert states[slow["id"]]["state"] == "running"
    t0 = time.monotonic()
    assert w.client.post(f"/api/v1/jobs/{slow['id']}/cancel", headers=w.acme).json()["state"] == "cancelled"
    assert time.monotonic() - t0 < 10
    svc.close()


def test_local_executor_outcome_survives_a_restart(job_workdir):
    tmp_path = job_workdir
    first = LocalExecutor(tmp_path, allow_commands=True)
    ref = first.submit(ExecRequest("job_x", "exit 7", 1, 0, 1.0))
    deadline = time.monotonic() + 10
    while first.poll(ref).state == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    again = LocalExecutor(tmp_path, allow_commands=True)  # a new process knows nothing in memory
    st = again.poll(ref)
    assert st.state == "failed" and st.exit_code == 7
    with pytest.raises(ValueError):
        again.poll("../etc")


def test_simulated_run_lasts_its_time(tmp_path):
    ex = LocalExecutor(tmp_path, simulated_run_s=0.3)
    ref = ex.submit(ExecRequest("job_s", None, 1, 0, 1.0))
    restarted = LocalExecutor(tmp_path, simulated_run_s=0.3)  # another replica, or this one after a restart
    assert ex.poll(ref).state == "running" and restarted.poll(ref).state == "running"
    assert list(tmp_path.iterdir()) == []  # the reference carries the start: no file per simulated run
    time.sleep(0.35)
    assert ex.poll(ref).state == "done" and restarted.poll(ref).state == "done"
    assert ex.logs(ref) == ""


def test_a_simulated_run_started_before_references_carried_its_start_still_ends(tmp_path):
    (tmp_path / "job_old").mkdir()
    (tmp_path / "job_old" / "simulated").write_text(str(time.time() - 10))
    assert LocalExecutor(tmp_path, simulated_run_s=5).poll("job_old").state == "done"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # a PostgreSQL column setting
def test_verdicts_are_stored_compressed_with_lz4_where_postgresql_has_it(world: World):
    assert world.svc.dialect == "postgresql"
    r = world.client.post("/api/v1/jobs", json=JOB, headers=world.acme)
    world.tick()
    with world.svc.engine.connect() as c:
        has_lz4 = c.exec_driver_sql(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).scalar()
        setting = c.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'jobs'::regclass AND attname = 'verdicts'"
        ).scalar()
        stored = c.exec_driver_sql("SELECT pg_column_compression(verdicts) FROM jobs WHERE id = %s", (r.json()["id"],))
        method = stored.scalar()
    assert setting == ("l" if has_lz4 else "")
    assert method == ("lz4" if has_lz4 else "pglz")  # about 8 kB of JSON: always compressed
    placement = world.client.get(f"/api/v1/jobs/{r.json()['id']}/placement", headers=world.acme).json()
    assert len(placement["verdicts"]) == len(world.client.get("/api/v1/sites", headers=world.acme).json())


def test_the_stored_explanation_reads_back_as_the_schedulers_verdicts(world: World):
    """The loop stores the explanation as columns; the placement endpoint gives one verdict per site, equal to the
    scheduler's own verdicts for the same decision (non-finite numbers as null)."""
    svc = world.svc
    origin = {"origin": "北京", "latency_class": "realtime", "data_class": "sensitive"}  # many sites rejected
    jid = world.client.post("/api/v1/jobs", json=dict(JOB, **origin), headers=world.acme).json()["id"]
    with svc.sessions() as s:
        row = s.scalars(sa.select(JobRow).where(JobRow.id == jid)).one()
        site_rows = sites.all_sites(s)
        held = sites.held(s)
    at_h = now_h()
    expected = svc.placer.place([(row, "acme")], site_rows, held, at_h)[0]
    text = explanation_text(expected)
    assert isinstance(json.loads(text), dict)  # columns, not one object per site
    want = [
        {
            "site_id": v.site_id,
            "passed": v.passed,
            "reason": v.reason,
            "scores": {k: (x if math.isfinite(x) else None) for k, x in v.scores.items()},
        }
        for v in expected.verdicts
    ]
    assert any(not v["passed"] for v in want) and any(v["passed"] for v in want)
    assert verdicts_of(json.loads(text)) == want
    world.tick()
    got = world.client.get(f"/api/v1/jobs/{jid}/placement", headers=world.acme).json()["verdicts"]
    assert [v["site_id"] for v in got] == [v["site_id"] for v in want]
    assert [(v["passed"], v["reason"].split(":")[0]) for v in got] == [
        (v["passed"], v["reason"].split(":")[0]) for v in want
    ]


def test_explanations_stored_one_object_per_site_still_read(world: World):
    """Rows placed before the columnar form keep their per-site list and are served as they were stored."""
    jid = world.client.post("/api/v1/jobs", json=JOB, headers=world.acme).json()["id"]
    world.tick()
    old = [{"site_id": "henan-dc", "passed": True, "reason": "", "scores": {"cost": 1.5, "total": 0.2}}]
    with world.svc.sessions() as s, s.begin():
        s.execute(sa.update(JobRow).where(JobRow.id == jid).values(verdicts=old))
    got = world.client.get(f"/api/v1/jobs/{jid}/placement", headers=world.acme).json()["verdicts"]
    assert got == old
