"""Authorisation matrix: every role x every endpoint gets exactly the expected status (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import re

from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World, auth

ROLES = ("anon", "acme", "beta", "operator", "admin", "site", "othersite")
# a site token acts only on its own site's agent endpoints: everywhere else 403 (unless a row says otherwise)
DEFAULT = {"site": 403, "othersite": 403}
AGENT = {"anon": 401, "acme": 403, "beta": 403, "operator": 403, "othersite": 403}
HEARTBEAT = {"engine": "ray", "capacity": {"cpu_total": 8, "cpu_free": 8}}
_n = itertools.count()


def acme_job(w: World) -> str:
    """A fresh job of tenant acme."""
    return w.client.post("/api/v1/jobs", json=JOB, headers=w.acme).json()["id"]


def scheduled_acme_job(w: World) -> str:
    jid = acme_job(w)
    w.svc.loop.place()
    return jid


def new_token(w: World) -> int:
    """The id of a fresh tenant token of acme."""
    w.client.post("/api/v1/tokens", json={"role": "tenant", "tenant": "acme"}, headers=w.admin).raise_for_status()
    return w.client.get("/api/v1/tokens", headers=w.admin).json()[-1]["id"]


def new_site(_w: World) -> dict:
    i = next(_n)
    return {"id": f"edge-{i}", "name_zh": "边缘", "name_en": "Edge", "province_id": "henan", "lat": 34, "lon": 113}


# (method, path(world), body(world) or None, {role: status}); an absent role: DEFAULT, else the same as "admin".
MATRIX = [
    ("GET", lambda w: "/healthz", None, dict.fromkeys(ROLES, 200)),
    ("GET", lambda w: "/api/v1/me", None, dict(dict.fromkeys(ROLES, 200), anon=401)),
    ("GET", lambda w: "/metrics", None, {"anon": 401, "acme": 403, "beta": 403, "operator": 200, "admin": 200}),
    (
        "POST",
        lambda w: "/api/v1/sites/agent-site/tokens",
        None,
        {"anon": 401, "acme": 403, "beta": 403, "operator": 201, "admin": 201},
    ),
    (
        "POST",
        lambda w: "/api/v1/sites/agent-site/agent/heartbeat",
        lambda w: HEARTBEAT,
        dict(AGENT, site=200, admin=200),
    ),
    ("GET", lambda w: "/api/v1/sites/agent-site/agent/config", None, dict(AGENT, site=200, admin=200)),
    ("POST", lambda w: "/api/v1/sites/agent-site/agent/claim", lambda w: {}, dict(AGENT, site=200, admin=200)),
    (
        "POST",
        lambda w: "/api/v1/sites/agent-site/agent/reports",
        lambda w: {"reports": [{"job_id": acme_job(w), "state": "running", "ref": "x"}]},
        dict(AGENT, site=200, admin=200),  # 200 with ok: false for a job not placed there
    ),
    (
        "POST",
        lambda w: f"/api/v1/sites/agent-site/agent/jobs/{acme_job(w)}/report",
        lambda w: {"state": "running", "ref": "x"},
        dict(AGENT, site=409, admin=409),  # the job is not placed there: the agent must stop it
    ),
    ("GET", lambda w: "/api/v1/tenants", None, {"anon": 401, "acme": 403, "beta": 403, "operator": 403, "admin": 200}),
    (
        "POST",
        lambda w: "/api/v1/tenants",
        lambda w: {"name": f"t{next(_n)}"},
        {"anon": 401, "acme": 403, "beta": 403, "operator": 403, "admin": 201},
    ),
    (
        "POST",
        lambda w: "/api/v1/tokens",
        lambda w: {"role": "tenant", "tenant": "acme"},
        {"anon": 401, "acme": 403, "beta": 403, "operator": 403, "admin": 201},
    ),
    ("GET", lambda w: "/api/v1/tokens", None, {"anon": 401, "acme": 403, "beta": 403, "operator": 403, "admin": 200}),
    (
        "DELETE",
        lambda w: f"/api/v1/tokens/{new_token(w)}",
        None,
        {"anon": 401, "acme": 403, "beta": 403, "operator": 403, "admin": 200},
    ),
    ("GET", lambda w: "/api/v1/sites", None, {"anon": 401, "acme": 200, "beta": 200, "operator": 200, "admin": 200}),
    (
        "POST",
        lambda w: "/api/v1/sites",
        lambda w: dict(new_site(w), pue=1.2, cpu_cores=64),
        {"anon": 401, "acme": 403, "beta": 403, "operator": 201, "admin": 201},
    ),
    (
        "PATCH",
        lambda w: "/api/v1/sites/henan-dc",
        lambda w: {"price_cny_per_kwh": 0.5},
        {"anon": 401, "acme": 403, "beta": 403, "operator": 200, "admin": 200},
    ),
    (
        "POST",
        lambda w: "/api/v1/sites/henan-dc/heartbeat",
        None,
        {"anon": 401, "acme": 403, "beta": 403, "operator": 200, "admin": 200},
    ),
    (
        "POST",
        lambda w: "/api/v1/jobs",
        lambda w: dict(JOB, tenant="acme"),
        {"anon": 401, "acme": 201, "beta": 403, "operator": 403, "admin": 201},
    ),
    (
        "POST",
        lambda w: "/api/v1/jobs/batch",
        lambda w: {"jobs": [dict(JOB, tenant="acme")]},
        {"anon": 401, "acme": 201, "beta": 403, "operator": 403, "admin": 201},
    ),
    ("GET", lambda w: "/api/v1/jobs", None, {"anon": 401, "acme": 200, "beta": 200, "operator": 200, "admin": 200}),
    (
        "GET",
        lambda w: f"/api/v1/jobs/{acme_job(w)}",
        None,
        {"anon": 401, "acme": 200, "beta": 404, "operator": 200, "admin": 200},
    ),
    (
        "POST",
        lambda w: f"/api/v1/jobs/{acme_job(w)}/cancel",
        None,
        {"anon": 401, "acme": 200, "beta": 404, "operator": 200, "admin": 200},
    ),
    (
        "GET",
        lambda w: f"/api/v1/jobs/{scheduled_acme_job(w)}/placement",
        None,
        {"anon": 401, "acme": 200, "beta": 404, "operator": 200, "admin": 200},
    ),
    (
        "GET",
        lambda w: f"/api/v1/jobs/{acme_job(w)}/logs",
        None,
        {"anon": 401, "acme": 200, "beta": 404, "operator": 200, "admin": 200},
    ),
    ("GET", lambda w: "/api/v1/audit", None, {"anon": 401, "acme": 403, "beta": 403, "operator": 200, "admin": 200}),
    (
        "GET",
        lambda w: "/api/v1/metrics/summary?by=site",
        None,
        {"anon": 401, "acme": 200, "beta": 200, "operator": 200, "admin": 200},
    ),
    ("GET", lambda w: "/api/v1/quotas", None, {"anon": 401, "acme": 200, "beta": 200, "operator": 200, "admin": 200}),
    (
        "PUT",
        lambda w: "/api/v1/quotas",
        lambda w: {"quotas": [{"id": "Q1", "tenant": "acme", "cores": 4000}]},
        {"anon": 401, "acme": 403, "beta": 403, "operator": 200, "admin": 200},
    ),
    ("GET", lambda w: "/api/v1/usage", None, {"anon": 401, "acme": 200, "beta": 200, "operator": 200, "admin": 200}),
    (
        "POST",
        lambda w: "/api/v1/quotes",
        lambda w: JOB,
        {"anon": 401, "acme": 200, "beta": 200, "operator": 200, "admin": 200},
    ),
    (
        "GET",
        lambda w: "/api/v1/jobs/job_doesnotexist",
        None,
        {"anon": 401, "acme": 404, "beta": 404, "operator": 404, "admin": 404},
    ),
]


def agent_tokens(w: World) -> tuple[dict, dict]:
    """Site tokens of a Ray site ('agent-site') and of another agent site."""
    out = []
    for sid in ("agent-site", "other-site"):
        body = dict(new_site(w), id=sid, pue=1.2, cpu_cores=64, engine="ray", engine_settings={"address": "x"})
        assert w.client.post("/api/v1/sites", json=body, headers=w.admin).status_code == 201
        r = w.client.post(f"/api/v1/sites/{sid}/tokens", headers=w.operator)
        assert r.status_code == 201, r.text
        out.append(auth(r.json()["token"]))
    return out[0], out[1]


def test_every_role_on_every_endpoint(world: World):
    site, other = agent_tokens(world)
    headers = {"anon": {}, "acme": world.acme, "beta": world.beta, "operator": world.operator, "admin": world.admin}
    headers.update(site=site, othersite=other)
    wrong = []
    for method, path, body, expected in MATRIX:
        for role in ROLES:
            url = path(world)
            want = expected.get(role, DEFAULT.get(role, expected.get("admin")))
            r = world.client.request(method, url, json=body(world) if body else None, headers=headers[role])
            if r.status_code != want:
                wrong.append(f"{role} {method} {url}: {r.status_code} != {want} ({r.text[:120]})")
    assert not wrong, "\n".join(wrong)
    openapi = world.client.get("/openapi.json").json()
    covered = {p.split("?")[0] for p in ("/healthz",)} | {
        re.sub(r"/tokens/\d+$", "/tokens/{token_id}", path(world).split("?")[0])
        .replace("henan-dc", "{site_id}")
        .replace("agent-site", "{site_id}")
        for _, path, _, _ in MATRIX
    }
    routes = set(openapi["paths"])
    templated = {r for r in routes if "{job_id}" in r}
    assert routes - templated <= covered, f"endpoints missing from the matrix: {routes - templated - covered}"
    assert len(templated) == 5  # job detail, cancel, placement, logs, agent report: all in the matrix above
