"""POST /api/v1/quotes: where a job could run, without submitting it - the same decision and predictions as its
placement, quotas included, and for a tenant nothing of other tenants' load (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import World

from suanwang.service.db import AuditEvent, JobRow, SiteRow
from suanwang.service.visibility import NO_ROOM
from suanwang.workload.job import DataClass

BODY = {"origin": "许昌", "cpu_cores": 8, "runtime_h": 2, "input_gb": 50, "latency_class": "batch"}
AT_H = 491_234.5  # the scheduler clock of this test (hours)


def counts(w: World) -> tuple[int, int]:
    with w.svc.sessions() as s:
        jobs = s.scalar(sa.select(sa.func.count()).select_from(JobRow))
        submits = s.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "submit"))
    return jobs, submits


def test_a_quote_is_the_placement_it_would_get_and_submits_nothing(world: World):
    world.svc.loop.clock = lambda: AT_H
    before = counts(world)
    r = world.client.post("/api/v1/quotes", json=BODY, headers=world.acme)
    assert r.status_code == 200, r.text
    q = r.json()
    assert counts(world) == before  # nothing stored
    assert q["at_h"] == AT_H and q["tenant"] == "acme" and q["site_id"] == q["feasible"][0]["site_id"]
    with world.svc.sessions() as s:
        n_sites = s.scalar(sa.select(sa.func.count()).select_from(SiteRow))
    assert len(q["feasible"]) + len(q["out"]) == n_sites
    for f in q["feasible"]:
        assert f["room_now"] and f["start_h"] == AT_H and f["starts"] == "now"
        assert f["cost_cny"] > 0 and f["carbon_kg"] >= 0 and f["latency_ms"] >= 0 and f["energy_kwh"] > 0
    for o in q["out"]:
        assert o["reason"] and ":" in o["reason"]
    # submitted and placed at the same hour: the same site and the same predictions
    jid = world.client.post("/api/v1/jobs", json=BODY, headers=world.acme).json()["id"]
    world.svc.loop.place()
    job = world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()
    assert job["site_id"] == q["site_id"]
    chosen = q["feasible"][0]
    for k in ("cost_cny", "energy_kwh", "carbon_kg", "latency_ms"):
        assert job[k] == pytest.approx(chosen[k], rel=1e-12), k
    placement = world.client.get(f"/api/v1/jobs/{jid}/placement", headers=world.acme).json()
    why = {v["site_id"]: v["reason"] for v in placement["verdicts"]}
    assert all(why[o["site_id"]] == o["reason"] for o in q["out"])  # the same explanation


def test_sites_ruled_out_say_why(world: World):
    body = dict(BODY, data_class=DataClass.SENSITIVE.value)  # must stay in the job's province (Henan)
    q = world.client.post("/api/v1/quotes", json=body, headers=world.acme).json()
    with world.svc.sessions() as s:
        province = dict(s.execute(sa.select(SiteRow.id, SiteRow.province_id)).all())
    assert q["feasible"] and all(province[f["site_id"]] == "henan" for f in q["feasible"])
    assert any("sensitive" in o["reason"] for o in q["out"])


def test_a_tenant_learns_no_other_tenants_load_staff_get_an_estimated_start(world: World):
    with world.svc.sessions() as s, s.begin():
        s.execute(sa.delete(SiteRow).where(SiteRow.id != "henan-dc"))
        s.execute(sa.update(SiteRow).values(cpu_cores=8, gpu_cards=0))
    world.svc.loop.clock = lambda: AT_H
    world.client.post("/api/v1/jobs", json=BODY, headers=world.acme).raise_for_status()
    world.svc.loop.place()  # acme's job holds the whole site (placed, 2 h to run)
    mine = world.client.post("/api/v1/quotes", json=BODY, headers=world.beta).json()
    assert mine["site_id"] is None and "no free capacity now" in mine["reason"]
    [f] = mine["feasible"]
    assert not f["room_now"] and f["start_h"] is None and f["starts"] == "when capacity frees"
    assert f["reason"] == NO_ROOM and "balance" not in f["scores"]
    assert "acme" not in str(mine)
    staff = world.client.post("/api/v1/quotes", json=dict(BODY, tenant="beta"), headers=world.operator).json()
    [f] = staff["feasible"]
    assert f["start_h"] == pytest.approx(AT_H + 2) and f["starts"] == "estimated"
    assert f["reason"].startswith("capacity-free:") and f["reason"] != NO_ROOM


def test_a_quote_counts_the_tenants_quota(world: World):
    doc = {"quotas": [{"id": "A1", "tenant": "acme", "cores": 10}]}
    assert world.client.put("/api/v1/quotas", json=doc, headers=world.admin).status_code == 200
    world.client.post("/api/v1/jobs", json=BODY, headers=world.acme).raise_for_status()
    world.svc.loop.place()
    q = world.client.post("/api/v1/quotes", json=BODY, headers=world.acme).json()
    assert q["site_id"] is None and not any(f["room_now"] for f in q["feasible"])
    assert all(f["reason"].startswith("quota A1: tenant acme at most 10 cores") for f in q["feasible"])
    big = world.client.post("/api/v1/quotes", json=dict(BODY, cpu_cores=16), headers=world.acme).json()
    assert big["feasible"] == [] and "quota A1 rejects" in big["reason"]  # never within the cap
    assert world.client.post("/api/v1/quotes", json=BODY, headers=world.beta).json()["feasible"][0]["room_now"]


def test_a_bad_quote_is_refused_like_a_bad_submission(world: World):
    r = world.client.post("/api/v1/quotes", json=dict(BODY, origin="atlantis"), headers=world.acme)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "origin"]
    r = world.client.post("/api/v1/quotes", json=dict(BODY, cpu_cores=0), headers=world.acme)
    assert r.status_code == 422 and "cpu_cores" in r.text
    r = world.client.post("/api/v1/quotes", json=dict(BODY, tenant="beta"), headers=world.acme)
    assert r.status_code == 403
    r = world.client.post("/api/v1/quotes", json=dict(BODY, tenant="nobody"), headers=world.admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "tenant"]
