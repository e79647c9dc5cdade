"""The REST API end to end (in process) on SQLite and PostgreSQL: jobs, sites, tenancy, audit, validation."""

from __future__ import annotations

from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World


def submit(w: World, who: dict, body: dict | None = None, key: str | None = None):
    headers = dict(who, **({"Idempotency-Key": key} if key else {}))
    return w.client.post("/api/v1/jobs", json=body or JOB, headers=headers)


def test_healthz_names_the_database(world: World):
    r = world.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "db": world.svc.dialect, "writable": True, "detail": None}


def test_me_reports_role_and_tenant(world: World):
    assert world.client.get("/api/v1/me", headers=world.acme).json() == {"tenant": "acme", "role": "tenant"}
    assert world.client.get("/api/v1/me", headers=world.admin).json() == {"tenant": None, "role": "admin"}
    assert world.client.get("/api/v1/me").status_code == 401
    assert world.client.get("/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_job_lifecycle_submit_place_run_finish(world: World):
    r = submit(world, world.acme)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "queued" and job["tenant"] == "acme" and job["origin"] == "411000"
    assert "许昌" in job["origin_label"]
    world.tick()  # place + dispatch (+ the simulated run of 0 s ends at the next poll)
    got = world.client.get(f"/api/v1/jobs/{job['id']}", headers=world.acme).json()
    assert got["state"] in ("running", "done")
    assert got["site_id"] and got["cost_cny"] > 0 and got["carbon_kg"] >= 0
    world.tick()
    got = world.client.get(f"/api/v1/jobs/{job['id']}", headers=world.acme).json()
    assert got["state"] == "done" and got["exit_code"] == 0
    placement = world.client.get(f"/api/v1/jobs/{job['id']}/placement", headers=world.acme).json()
    assert placement["site_id"] == got["site_id"]
    assert len(placement["verdicts"]) == len(world.client.get("/api/v1/sites", headers=world.acme).json())
    assert any(v["passed"] and v["site_id"] == got["site_id"] for v in placement["verdicts"])
    actions = [e["action"] for e in world.client.get("/api/v1/audit?limit=500", headers=world.operator).json()["items"]]
    for a in ("submit", "place", "start", "finish"):
        assert a in actions


def test_idempotency_key_returns_the_same_job(world: World):
    first = submit(world, world.acme, key="k-1")
    again = submit(world, world.acme, key="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other_tenant = submit(world, world.beta, key="k-1")  # keys are per tenant
    assert other_tenant.status_code == 201 and other_tenant.json()["id"] != first.json()["id"]
    assert world.client.get("/api/v1/jobs", headers=world.acme).json()["total"] == 1


def test_batch_submit_is_all_or_nothing(world: World):
    ok = world.client.post("/api/v1/jobs/batch", json={"jobs": [JOB, dict(JOB, origin="Xuchang")]}, headers=world.acme)
    assert ok.status_code == 201 and len(ok.json()["jobs"]) == 2
    bad = world.client.post(
        "/api/v1/jobs/batch", json={"jobs": [JOB, dict(JOB, origin="Atlantis")]}, headers=world.acme
    )
    assert bad.status_code == 422
    assert world.client.get("/api/v1/jobs", headers=world.acme).json()["total"] == 2


def test_tenants_are_isolated(world: World):
    mine = submit(world, world.acme).json()["id"]
    assert world.client.get(f"/api/v1/jobs/{mine}", headers=world.beta).status_code == 404
    assert world.client.post(f"/api/v1/jobs/{mine}/cancel", headers=world.beta).status_code == 404
    assert world.client.get(f"/api/v1/jobs/{mine}/placement", headers=world.beta).status_code == 404
    assert world.client.get("/api/v1/jobs", headers=world.beta).json()["total"] == 0
    assert world.client.get("/api/v1/jobs", headers=world.operator).json()["total"] == 1
    assert submit(world, world.acme, dict(JOB, tenant="beta")).status_code == 403


def test_cancel_frees_the_job_and_refuses_twice(world: World):
    jid = submit(world, world.acme).json()["id"]
    r = world.client.post(f"/api/v1/jobs/{jid}/cancel", headers=world.acme)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert world.client.post(f"/api/v1/jobs/{jid}/cancel", headers=world.acme).status_code == 409
    world.tick()
    assert world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()["state"] == "cancelled"


def test_unknown_origin_is_422_with_suggestions(world: World):
    r = submit(world, world.acme, dict(JOB, origin="许唱"))
    assert r.status_code == 422
    item = r.json()["detail"][0]
    assert item["loc"] == ["body", "origin"]
    assert "unknown place" in item["msg"]


def test_validation_names_the_field(world: World):
    r = submit(world, world.acme, dict(JOB, cpu_cores=-1))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "cpu_cores"
    r = submit(world, world.acme, dict(JOB, latency_class="warp"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "latency_class"
    r = world.client.post(
        "/api/v1/jobs", content=b"{not json", headers=dict(world.acme, **{"content-type": "application/json"})
    )
    assert r.status_code == 422
    r = submit(world, world.acme, dict(JOB, command="echo hi"))  # commands are off by default
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "command"]


def test_large_body_is_413(world: World):
    big = {"jobs": [dict(JOB, origin="x" * 90)] * 20000}
    r = world.client.post("/api/v1/jobs/batch", json=big, headers=world.acme)
    assert r.status_code == 413


def test_job_that_fits_nowhere_is_rejected_with_reasons(world: World):
    r = submit(world, world.acme, dict(JOB, cpu_cores=2_000_000_000))
    jid = r.json()["id"]
    world.tick()
    got = world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()
    assert got["state"] == "rejected" and got["reason"]
    verdicts = world.client.get(f"/api/v1/jobs/{jid}/placement", headers=world.acme).json()["verdicts"]
    assert verdicts and not any(v["passed"] for v in verdicts)


def test_site_register_patch_heartbeat(world: World):
    site = {
        "id": "xuchang-edge",
        "name_zh": "许昌边缘",
        "name_en": "Xuchang edge",
        "province_id": "河南",
        "lat": 34.03,
        "lon": 113.85,
        "pue": 1.3,
        "cpu_cores": 512,
    }
    assert world.client.post("/api/v1/sites", json=site, headers=world.acme).status_code == 403
    r = world.client.post("/api/v1/sites", json=site, headers=world.operator)
    assert r.status_code == 201, r.text
    assert r.json()["province_id"] == "henan" and r.json()["cpu_free"] == 512
    assert world.client.post("/api/v1/sites", json=site, headers=world.operator).status_code == 409
    r = world.client.patch("/api/v1/sites/xuchang-edge", json={"cpu_cores": 1024}, headers=world.operator)
    assert r.status_code == 200 and r.json()["cpu_cores"] == 1024
    r = world.client.post("/api/v1/sites/xuchang-edge/heartbeat", headers=world.operator)
    assert r.status_code == 200 and r.json()["last_heartbeat"]
    assert world.client.patch("/api/v1/sites/nowhere", json={"cpu_cores": 1}, headers=world.admin).status_code == 404


def test_site_free_capacity_counts_held_jobs(world: World):
    jid = submit(world, world.acme).json()["id"]
    world.svc.loop.place()
    job = world.client.get(f"/api/v1/jobs/{jid}", headers=world.acme).json()
    site = next(
        s for s in world.client.get("/api/v1/sites", headers=world.operator).json() if s["id"] == job["site_id"]
    )
    assert site["cpu_free"] == site["cpu_cores"] - JOB["cpu_cores"]
    mine = next(s for s in world.client.get("/api/v1/sites", headers=world.acme).json() if s["id"] == job["site_id"])
    assert mine["cpu_cores_mine"] == JOB["cpu_cores"] and mine["cpu_free"] is None  # see test_service_tenancy.py


def test_metrics_summary_totals_match_jobs(world: World):
    for body in (JOB, dict(JOB, cpu_cores=8)):
        submit(world, world.acme, body)
    submit(world, world.beta)
    world.tick()
    jobs = world.client.get("/api/v1/jobs", headers=world.admin).json()["items"]
    rows = world.client.get("/api/v1/metrics/summary?by=tenant", headers=world.admin).json()
    by = {r["tenant"]: r for r in rows}
    assert by["acme"]["jobs"] == 2 and by["beta"]["jobs"] == 1
    total = sum(j["cost_cny"] for j in jobs)
    assert abs(sum(r["cost_cny"] for r in rows) - total) < 1e-6 * max(1.0, total)
    mine = world.client.get("/api/v1/metrics/summary?by=site", headers=world.beta).json()
    assert sum(r["jobs"] for r in mine) == 1
    assert len(world.client.get("/api/v1/metrics/summary?by=day", headers=world.admin).json()) == 1


def test_admin_submits_on_behalf_of_a_tenant(world: World):
    assert submit(world, world.admin).status_code == 422  # which tenant?
    r = submit(world, world.admin, dict(JOB, tenant="beta"))
    assert r.status_code == 201 and r.json()["tenant"] == "beta"
    assert submit(world, world.admin, dict(JOB, tenant="nobody")).status_code == 422


def test_job_json_carries_the_origin_coordinates_for_maps(world: World):
    job = submit(world, world.acme, dict(JOB, origin="Xuchang")).json()
    xuchang = world.svc.atlas.place("许昌")
    assert (job["origin_lat"], job["origin_lon"]) == (xuchang.lat, xuchang.lon)
    listed = world.client.get("/api/v1/jobs", headers=world.acme).json()["items"][0]
    assert (listed["origin_lat"], listed["origin_lon"]) == (xuchang.lat, xuchang.lon)


def test_openapi_documents_every_error_answer(world: World):
    spec = world.client.get("/openapi.json").json()
    seen = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            seen |= codes
            if path.startswith("/api/v1/"):
                assert {"400", "401", "413", "503"} <= codes, f"{method} {path}: {sorted(codes)}"
                assert "Retry-After" in op["responses"]["503"]["headers"]
    assert {"400", "401", "403", "404", "409", "413", "422", "503"} <= seen
    assert "503" in spec["paths"]["/healthz"]["get"]["responses"]
