"""What one tenant sees of another (SQLite and PostgreSQL): never its job ids, counts or totals in any answer, and
not its load through site capacity (service/visibility.py): a tenant's GET /sites and placement verdicts are the
same whatever other tenants run, while staff see exact free capacity."""

from __future__ import annotations

import math

from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World

from suanwang.service.visibility import NO_ROOM


def _jobs(w: World, who: dict, n: int, **extra) -> list[str]:
    return [w.client.post("/api/v1/jobs", json=dict(JOB, **extra), headers=who).json()["id"] for _ in range(n)]


def test_a_tenant_never_sees_another_tenants_ids_counts_or_totals(world: World):
    acme = _jobs(world, world.acme, 3)
    beta = _jobs(world, world.beta, 2) + _jobs(world, world.admin, 1, tenant="beta")
    world.tick(2)
    _jobs(world, world.beta, 2)  # queued ones too
    mine = [world.client.get(f"/api/v1/jobs/{j}", headers=world.acme).json() for j in acme]
    placed = [j for j in mine if j["cost_cny"] is not None]
    sites = {j["site_id"] for j in placed}
    pages = {"/api/v1/jobs": 3, "/api/v1/jobs?limit=1": 3, "/api/v1/jobs?offset=2": 3, "/api/v1/jobs?state=queued": 0}
    pages |= {f"/api/v1/jobs?site_id={s}": sum(j["site_id"] == s for j in mine) for s in sites}
    for url, total in pages.items():
        page = world.client.get(url, headers=world.acme).json()
        assert page["total"] == total, url
        assert {j["tenant"] for j in page["items"]} <= {"acme"} and {j["id"] for j in page["items"]} <= set(acme)
    for by in ("tenant", "site", "day"):
        rows = world.client.get(f"/api/v1/metrics/summary?by={by}", headers=world.acme).json()
        assert sum(r["jobs"] for r in rows) == len(placed), by
        assert math.isclose(sum(r["cost_cny"] for r in rows), sum(j["cost_cny"] for j in placed)), by
        assert math.isclose(sum(r["carbon_kg"] for r in rows), sum(j["carbon_kg"] for j in placed)), by
    assert [r["tenant"] for r in world.client.get("/api/v1/metrics/summary", headers=world.acme).json()] == ["acme"]
    everything = [f"/api/v1/jobs/{j}{tail}" for j in acme for tail in ("", "/placement", "/logs")]
    everything += ["/api/v1/me", "/api/v1/sites", *pages]
    for url in everything:  # no answer to acme names beta or any of its jobs
        text = world.client.get(url, headers=world.acme).text
        assert "beta" not in text and not any(j in text for j in beta), url
    unknown = world.client.get("/api/v1/jobs/job_00000000000000000000", headers=world.acme)
    for j in beta:  # another tenant's job is answered exactly like one that does not exist
        for tail in ("", "/placement", "/logs"):
            r = world.client.get(f"/api/v1/jobs/{j}{tail}", headers=world.acme)
            assert r.status_code == 404 and r.json()["detail"] == unknown.json()["detail"].replace(
                "job_00000000000000000000", j
            )
    staff = world.client.get("/api/v1/jobs?limit=500", headers=world.operator).json()
    assert staff["total"] == 3 + 3 + 2  # the oracle: staff see every tenant's jobs


def test_a_tenant_cannot_watch_another_tenants_load_through_site_capacity(world: World):
    rows = world.client.get("/api/v1/sites", headers=world.operator).json()
    for s in rows:  # small sites, so that one job of beta changes what is free
        patch = {"cpu_cores": 8, "gpu_cards": 0}
        assert world.client.patch(f"/api/v1/sites/{s['id']}", json=patch, headers=world.operator).status_code == 200
    before = world.client.get("/api/v1/sites", headers=world.acme).json()
    staff_before = world.client.get("/api/v1/sites", headers=world.operator).json()
    assert all(s["cpu_free"] is None and s["gpu_free"] is None and s["cpu_cores_mine"] == 0 for s in before)
    assert all(s["cpu_free"] == 8 for s in staff_before)
    (b,) = _jobs(world, world.beta, 1, cpu_cores=6)
    world.svc.loop.place()  # placed: it holds its cores
    at = world.client.get(f"/api/v1/jobs/{b}", headers=world.beta).json()["site_id"]
    assert at is not None
    assert world.client.get("/api/v1/sites", headers=world.acme).json() == before  # nothing moved for acme
    staff = {s["id"]: s for s in world.client.get("/api/v1/sites", headers=world.operator).json()}
    assert staff[at]["cpu_free"] == 2  # it did move: staff see it
    beta_view = {s["id"]: s for s in world.client.get("/api/v1/sites", headers=world.beta).json()}
    assert beta_view[at]["cpu_cores_mine"] == 6 and beta_view[at]["cpu_free"] is None
    (a,) = _jobs(world, world.acme, 1, cpu_cores=4)
    world.svc.loop.place()
    mine = world.client.get(f"/api/v1/jobs/{a}/placement", headers=world.acme).json()["verdicts"]
    theirs = world.client.get(f"/api/v1/jobs/{a}/placement", headers=world.operator).json()["verdicts"]
    full = next(v for v in theirs if v["site_id"] == at)
    assert "2 cores" in full["reason"]  # staff see the free cores at beta's site ...
    assert next(v for v in mine if v["site_id"] == at)["reason"] == NO_ROOM  # ... acme does not
    assert not any("free now" in v["reason"] or "balance" in (v.get("scores") or {}) for v in mine)
