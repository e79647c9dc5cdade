"""Idempotency-Key as payment APIs do it: an exact retry returns the stored job(s); the same key with another
request (another body, another number of jobs in a batch) is refused with 422 naming the key - on the fast path,
through FastAPI's route, and for batches (SQLite and PostgreSQL)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World

from suanwang.service import create_app


def _refused(r, key: str) -> None:
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["header", "Idempotency-Key"] and f"'{key}'" in item["msg"]


def test_a_key_reused_with_another_body_is_refused_on_both_paths(world: World):
    world.client.get("/api/v1/me", headers=world.acme)  # acme's token cached: the fast path takes its requests
    with TestClient(create_app(world.svc, fast_submit=False)) as slow:
        for client, key in ((world.client, "fast"), (slow, "slow")):
            headers = dict(world.acme, **{"Idempotency-Key": key})
            first = client.post("/api/v1/jobs", json=JOB, headers=headers)
            assert first.status_code == 201
            # the same request spelled differently (a default written out, keys in another order) is a retry
            spelled = dict(reversed(list(JOB.items())), gpu_cards=0)
            again = client.post("/api/v1/jobs", json=spelled, headers=headers)
            assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
            _refused(client.post("/api/v1/jobs", json=dict(JOB, cpu_cores=8), headers=headers), key)
            _refused(client.post("/api/v1/jobs/batch", json={"jobs": [JOB, JOB]}, headers=headers), key)
    assert world.client.get("/api/v1/jobs", headers=world.acme).json()["total"] == 2


def test_a_batch_key_reused_for_other_jobs_or_another_count_is_refused(world: World):
    headers = dict(world.acme, **{"Idempotency-Key": "b"})
    jobs = [JOB, dict(JOB, origin="Xuchang"), dict(JOB, cpu_cores=2)]
    first = world.client.post("/api/v1/jobs/batch", json={"jobs": jobs}, headers=headers)
    assert first.status_code == 201
    ids = [j["id"] for j in first.json()["jobs"]]
    again = world.client.post("/api/v1/jobs/batch", json={"jobs": jobs}, headers=headers)
    assert again.status_code == 200 and [j["id"] for j in again.json()["jobs"]] == ids
    for other in (jobs[:2], [*jobs, JOB], [jobs[0], jobs[1], dict(JOB, cpu_cores=3)]):
        _refused(world.client.post("/api/v1/jobs/batch", json={"jobs": other}, headers=headers), "b")
    assert world.client.get("/api/v1/jobs", headers=world.acme).json()["total"] == 3
