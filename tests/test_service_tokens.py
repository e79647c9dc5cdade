"""Tokens can be listed and revoked through the API (admin only, audited); a revoked token stops working at once on
the replica that revoked it and within `auth_cache_s` on every other replica sharing the database."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World, auth, build_world, make_service

from suanwang.service import create_app


def test_list_and_revoke_are_admin_only_and_audited(world: World):
    listed = world.client.get("/api/v1/tokens", headers=world.admin)
    assert listed.status_code == 200
    rows = listed.json()
    assert {r["role"] for r in rows} == {"admin", "operator", "tenant"} and all("token" not in r for r in rows)
    beta = next(r for r in rows if r["tenant"] == "beta")
    for who in (world.acme, world.operator):
        assert world.client.get("/api/v1/tokens", headers=who).status_code == 403
        assert world.client.delete(f"/api/v1/tokens/{beta['id']}", headers=who).status_code == 403
    assert world.client.get("/api/v1/me", headers=world.beta).status_code == 200
    r = world.client.delete(f"/api/v1/tokens/{beta['id']}", headers=world.admin)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert world.client.get("/api/v1/me", headers=world.beta).status_code == 401  # at once on this replica
    assert world.client.post("/api/v1/jobs", json=JOB, headers=world.beta).status_code == 401
    assert world.client.delete(f"/api/v1/tokens/{beta['id']}", headers=world.admin).status_code == 409
    assert world.client.delete("/api/v1/tokens/999999", headers=world.admin).status_code == 404
    own = next(r for r in rows if r["role"] == "admin")["id"]
    assert world.client.delete(f"/api/v1/tokens/{own}", headers=world.admin).status_code == 409
    events = world.client.get("/api/v1/audit", headers=world.admin).json()["items"]
    assert any(e["action"] == "token_revoke" and e["object"] == f"token:{beta['id']}" for e in events)
    after = {r["id"]: r for r in world.client.get("/api/v1/tokens", headers=world.admin).json()}
    assert after[beta["id"]]["revoked_at"] and all(v["revoked_at"] is None for k, v in after.items() if k != beta["id"])


def test_a_revocation_reaches_another_replica_within_auth_cache_s(db_url, tmp_path):
    cache_s = 1.0
    one = make_service(db_url, tmp_path / "a", auth_cache_s=cache_s)
    two = make_service(db_url, tmp_path / "b", auth_cache_s=cache_s)
    try:
        w = build_world(one)
        with w.client, TestClient(create_app(two)) as other:
            acme_id = next(r["id"] for r in w.client.get("/api/v1/tokens", headers=w.admin).json() if r["tenant"])
            assert other.post("/api/v1/jobs", json=JOB, headers=w.acme).status_code == 201  # cached on two (fast path)
            assert w.client.delete(f"/api/v1/tokens/{acme_id}", headers=w.admin).status_code == 200
            revoked = time.monotonic()
            while other.post("/api/v1/jobs", json=JOB, headers=w.acme).status_code != 401:
                assert time.monotonic() - revoked < cache_s + 0.5, "replica two still accepts a revoked token"
                time.sleep(0.05)
            assert other.get("/api/v1/me", headers=w.acme).status_code == 401
            assert other.get("/api/v1/me", headers=auth("sw_nope")).status_code == 401
    finally:
        one.close()
        two.close()
