"""The submission fast path answers exactly as the FastAPI route does: for any body and headers (hypothesis), the
same status and, for errors, the same body; it takes only the well-formed case and leaves the rest to FastAPI."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World

from suanwang.service import create_app
from suanwang.service.fastpath import SubmitFastPath

VOLATILE = ("id", "created_at", "updated_at")
VALUES = {
    "origin": st.sampled_from(["许昌", "Xuchang", "411000", "贵阳", "Atlantis", "", "x" * 101, 3]),
    "cpu_cores": st.one_of(st.integers(-2, 2**31), st.just("4"), st.just(1.5), st.none()),
    "gpu_cards": st.integers(-1, 8),
    "runtime_h": st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1, max_value=1e7), st.just(0)),
    "input_gb": st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1, max_value=1e13)),
    "latency_class": st.sampled_from(["batch", "interactive", "realtime", "BATCH", "fast"]),
    "data_class": st.sampled_from(["public", "internal", "sensitive", "core", "secret"]),
    "data_province": st.sampled_from(["henan", "河南", "贵州", "nowhere"]),
    "deadline_h": st.one_of(st.floats(min_value=-1, max_value=1e7, allow_nan=False, allow_infinity=False)),
    "priority": st.integers(-2000, 2000),
    "command": st.sampled_from(["echo hi", ""]),
    "tenant": st.sampled_from(["acme", "beta"]),
    "surprise": st.just(1),
}
bodies = st.one_of(
    st.just(JOB),
    st.fixed_dictionaries({"origin": VALUES["origin"]}, optional={k: v for k, v in VALUES.items() if k != "origin"}),
    st.sampled_from([b"", b"{", b"[]", b"null", b'{"origin": NaN}', b'{"origin": "\\ud800"}', b"\xff"]),
    st.sampled_from([b"[" * 100_000 + b"]" * 100_000, b'{"origin": ' + b"[" * 5000 + b"]" * 5000 + b"}"]),
    st.binary(max_size=64),  # arbitrary bytes: mostly not UTF-8, sometimes not even JSON
)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None])
keys = st.sampled_from([None, "", "k" * 150, "k" * 151, "retry"])
authz = st.sampled_from(["acme", "acme", "beta", "admin", "bearer-lower", "unknown", None])


def _headers(world: World, who: str | None, ctype: str | None, key: str | None, side: str) -> dict:
    h = {}
    if who == "bearer-lower":
        h["Authorization"] = world.acme["Authorization"].replace("Bearer", "bearer")
    elif who == "unknown":
        h["Authorization"] = "Bearer sw_nope"
    elif who is not None:
        h.update(getattr(world, who))
    if ctype is not None:
        h["Content-Type"] = ctype
    if key:  # each side its own key of the same length, so neither sees the other's stored job
        h["Idempotency-Key"] = side + key[1:]
    elif key is not None:
        h["Idempotency-Key"] = key
    return h


def _answer(r) -> tuple[int, object]:
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if r.status_code in (200, 201):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    elif r.status_code == 422:  # a reused key names the key and the job it holds: each side has its own of both
        text = re.sub(r"job_[0-9a-f]+", "job_<id>", json.dumps(body, ensure_ascii=False))
        body = json.loads(re.sub(r"Idempotency-Key: '[fs]", "Idempotency-Key: '<side>", text))
    return r.status_code, body


@pytest.fixture
def pair(world: World):
    """The world's app (fast path on) and a second app over the same service with it off."""
    with TestClient(create_app(world.svc, fast_submit=False)) as slow:
        for who in (world.acme, world.beta, world.admin):  # tokens now cached: the fast path can take them
            assert world.client.get("/api/v1/me", headers=who).status_code == 200
        yield world, slow


def test_fast_path_answers_like_the_route(pair):
    world, slow = pair
    stored = []

    @given(body=bodies, ctype=content_types, key=keys, who=authz)
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def same(body, ctype, key, who):
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        fast = world.client.post("/api/v1/jobs", content=raw, headers=_headers(world, who, ctype, key, "f"))
        route = slow.post("/api/v1/jobs", content=raw, headers=_headers(world, who, ctype, key, "s"))
        assert _answer(fast) == _answer(route)
        assert fast.status_code < 500
        stored.append(fast.status_code in (200, 201))

    same()
    assert any(stored), "no example reached the store: the comparison only covered errors"


def test_a_retry_through_either_path_returns_the_first_job(pair):
    world, slow = pair
    headers = dict(world.acme, **{"Idempotency-Key": "cross"})
    first = world.client.post("/api/v1/jobs", json=JOB, headers=headers)
    again = slow.post("/api/v1/jobs", json=JOB, headers=headers)
    third = world.client.post("/api/v1/jobs", json=JOB, headers=headers)
    assert (first.status_code, again.status_code, third.status_code) == (201, 200, 200)
    assert first.json()["id"] == again.json()["id"] == third.json()["id"]


def test_fast_path_takes_only_the_well_formed_case(world: World):
    world.client.get("/api/v1/me", headers=world.acme)  # caches acme's token
    fast = SubmitFastPath(None, world.svc)
    acme = world.acme["Authorization"].encode()
    who = fast._principal(acme)
    assert who is not None and who.tenant == "acme"
    assert fast._principal(None) is None
    assert fast._principal(b"Bearer sw_unknown") is None  # not cached: FastAPI authenticates
    assert fast._principal(world.admin["Authorization"].encode()) is None  # admin needs a tenant lookup
    assert fast._principal(b"Basic " + acme.split()[1]) is None
    ok = fast._prepare(json.dumps(JOB).encode(), who, "k")
    assert ok is not None and ok.values["idempotency_key"] == "k" and ok.values["origin"] == "411000"
    for bad in (b"{", b"[]", json.dumps(dict(JOB, origin="Atlantis")).encode(), json.dumps(dict(JOB, cpu_cores=-1))):
        assert fast._prepare(bad if isinstance(bad, bytes) else bad.encode(), who, None) is None
    assert fast._prepare(json.dumps(dict(JOB, tenant="beta")).encode(), who, None) is None  # FastAPI's 403


def test_bodies_the_parser_cannot_read_get_a_400_saying_why_on_both_paths(pair):
    world, slow = pair
    headers = dict(world.acme, **{"Content-Type": "application/json"})
    deep, latin1 = b"[" * 100_000 + b"]" * 100_000, '{"origin": "Zürich"}'.encode("latin-1")
    for client in (world.client, slow):
        r = client.post("/api/v1/jobs", content=deep, headers=headers)
        assert r.status_code == 400 and "nested too deeply" in r.json()["detail"], r.text
        r = client.post("/api/v1/jobs", content=latin1, headers=headers)
        assert r.status_code == 400 and r.json()["detail"].startswith("body: not UTF-8 (byte 13 is 0xfc)"), r.text


def test_a_key_reused_for_another_body_gets_the_same_422_through_either_path(pair):
    world, slow = pair
    answers = []
    for client, side in ((world.client, "f"), (slow, "s")):
        headers = dict(world.acme, **{"Idempotency-Key": f"{side}reused"})
        assert client.post("/api/v1/jobs", json=JOB, headers=headers).status_code == 201
        answers.append(_answer(client.post("/api/v1/jobs", json=dict(JOB, cpu_cores=3), headers=headers)))
    assert answers[0][0] == 422
    assert answers[0] == answers[1]
