"""The control plane for site agents, driven over HTTP as an agent drives it (SQLite and PostgreSQL): site tokens,
engine capacity the scheduler sees, claims, reports, cancels, stale agents, engines that go down, the retry policy,
commands only where allowed, logs only for their tenant."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World, auth, build_world, make_service

# The job's origin city: the nearest policy prefers a site right there (a hair nearer than the seeded zhongyuan-ai);
# between equally near sites, the first by id (ray-a before ray-b).
XUCHANG = (34.035771, 113.852454)

from suanwang.service import agents  # noqa: E402
from suanwang.service.db import JobRow, utcnow  # noqa: E402


@pytest.fixture
def world(db_url, tmp_path):
    svc = make_service(db_url, tmp_path, policy="nearest", max_attempts=2, allow_commands=True)
    w = build_world(svc)
    with w.client:
        yield w
    svc.close()


def agent_site(w: World, sid: str, **extra) -> dict:
    """Register a Ray-bound site near Xuchang; returns the site token's headers."""
    body = {
        "id": sid,
        "name_zh": sid,
        "name_en": sid,
        "province_id": "henan",
        "lat": XUCHANG[0],
        "lon": XUCHANG[1],
        "pue": 1.2,
        "cpu_cores": 64,
        "engine": "ray",
        "engine_settings": {"address": "http://127.0.0.1:1"},
        **extra,
    }
    r = w.client.post("/api/v1/sites", json=body, headers=w.operator)
    assert r.status_code == 201, r.text
    r = w.client.post(f"/api/v1/sites/{sid}/tokens", headers=w.operator)
    assert r.status_code == 201, r.text
    return auth(r.json()["token"])


def beat(w: World, sid: str, tok: dict, cpu_total=8, cpu_free=8, up=True, message="", reachable=True) -> dict:
    cap = {"cpu_total": cpu_total, "cpu_free": cpu_free, "up": up, "message": message, "reachable": reachable}
    r = w.client.post(f"/api/v1/sites/{sid}/agent/heartbeat", json={"engine": "ray", "capacity": cap}, headers=tok)
    assert r.status_code == 200, r.text
    return r.json()


def claim(w: World, sid: str, tok: dict) -> dict:
    r = w.client.post(f"/api/v1/sites/{sid}/agent/claim", json={}, headers=tok)
    assert r.status_code == 200, r.text
    return r.json()


def report(w: World, sid: str, tok: dict, job_id: str, **body) -> int:
    return w.client.post(f"/api/v1/sites/{sid}/agent/jobs/{job_id}/report", json=body, headers=tok).status_code


def submit(w: World, **extra) -> str:
    r = w.client.post("/api/v1/jobs", json=dict(JOB, **extra), headers=w.acme)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def job(w: World, jid: str, who: str = "acme") -> dict:
    return w.client.get(f"/api/v1/jobs/{jid}", headers=getattr(w, who)).json()


def actions(w: World, jid: str) -> list[str]:
    items = w.client.get("/api/v1/audit?limit=500", headers=w.admin).json()["items"]
    return [e["action"] for e in reversed(items) if e["object"] == f"job:{jid}"]


def test_engine_capacity_is_what_the_scheduler_sees(world: World):
    tok = agent_site(world, "ray-a")
    beat(world, "ray-a", tok, cpu_total=6, cpu_free=3)
    site = next(s for s in world.client.get("/api/v1/sites", headers=world.admin).json() if s["id"] == "ray-a")
    assert (site["cpu_cores"], site["cpu_free"]) == (64, 3)  # declared 64, the engine has 3 free
    seen = next(s for s in world.client.get("/api/v1/sites", headers=world.acme).json() if s["id"] == "ray-a")
    assert (seen["cpu_free"], seen["engine_capacity"]) == (None, None)  # a tenant sees no free room (visibility.py)
    assert "engine_settings" not in seen  # connection settings: staff only
    big = submit(world, cpu_cores=4)  # more than the engine has free: not placed there
    small = submit(world, cpu_cores=3)
    world.svc.loop.place()
    assert job(world, big)["site_id"] != "ray-a"
    assert job(world, small)["site_id"] == "ray-a"
    site = next(s for s in world.client.get("/api/v1/sites", headers=world.admin).json() if s["id"] == "ray-a")
    assert site["cpu_free"] == 0 and site["engine_settings"] == {"address": "http://127.0.0.1:1"}


def test_claim_run_report_done_and_logs_only_for_the_owner(world: World):
    tok = agent_site(world, "ray-a")
    beat(world, "ray-a", tok)
    jid = submit(world)
    world.tick()
    assert job(world, jid)["state"] == "placed"  # the loop never starts jobs of an agent site itself
    todo = claim(world, "ray-a", tok)
    assert [j["id"] for j in todo["submit"]] == [jid] and todo["submit"][0]["claimed_before"] is False
    assert claim(world, "ray-a", tok)["submit"][0]["claimed_before"] is True  # a restarted agent must look first
    assert report(world, "ray-a", tok, jid, state="running", ref="suanwang-x") == 200
    assert job(world, jid)["state"] == "running"
    assert claim(world, "ray-a", tok)["running"] == [{"id": jid, "ref": "suanwang-x"}]
    assert report(world, "ray-a", tok, jid, state="done", exit_code=0, logs="hello\n") == 200
    got = job(world, jid)
    assert (got["state"], got["exit_code"]) == ("done", 0)
    assert world.client.get(f"/api/v1/jobs/{jid}/logs", headers=world.acme).json()["logs"] == "hello\n"
    assert world.client.get(f"/api/v1/jobs/{jid}/logs", headers=world.beta).status_code == 404
    assert world.client.get(f"/api/v1/jobs/{jid}/logs", headers=tok).status_code == 403
    assert report(world, "ray-a", tok, jid, state="running", ref="suanwang-x") == 409  # ended: stop it
    assert actions(world, jid) == ["submit", "place", "claim", "start", "finish"]


def test_failed_with_exit_code_and_engine_reason(world: World):
    tok = agent_site(world, "ray-a")
    beat(world, "ray-a", tok)
    jid = submit(world)
    world.svc.loop.place()
    report(world, "ray-a", tok, jid, state="running", ref="r")
    assert report(world, "ray-a", tok, jid, state="failed", exit_code=3, reason="Ray FAILED: exit code 3") == 200
    got = job(world, jid)
    assert (got["state"], got["exit_code"], got["reason"]) == ("failed", 3, "Ray FAILED: exit code 3")
    assert got["attempts"] == 0  # the job's own failure is not retried


def test_site_token_acts_for_its_site_only(world: World):
    tok_a, tok_b = agent_site(world, "ray-a"), agent_site(world, "ray-b")
    beat(world, "ray-a", tok_a)
    jid = submit(world)
    world.svc.loop.place()
    assert job(world, jid)["site_id"] == "ray-a"
    assert world.client.post("/api/v1/sites/ray-a/agent/claim", json={}, headers=tok_b).status_code == 403
    assert report(world, "ray-b", tok_b, jid, state="running", ref="r") == 409  # not placed on ray-b
    assert world.client.get("/api/v1/jobs", headers=tok_a).status_code == 403
    body = {"engine": "slurm", "capacity": {"cpu_total": 1, "cpu_free": 1}}
    r = world.client.post("/api/v1/sites/ray-a/agent/heartbeat", json=body, headers=tok_a)
    assert r.status_code == 409 and "bound to engine 'ray'" in r.text
    r = world.client.post("/api/v1/sites/henan-dc/tokens", headers=world.operator)
    assert r.status_code == 422  # the embedded engine has no agent


def test_cancel_reaches_the_agent_and_is_confirmed(world: World):
    tok = agent_site(world, "ray-a")
    beat(world, "ray-a", tok)
    jid = submit(world)
    world.svc.loop.place()
    report(world, "ray-a", tok, jid, state="running", ref="suanwang-c")
    r = world.client.post(f"/api/v1/jobs/{jid}/cancel", headers=world.acme)
    assert r.json()["state"] == "cancelled" and "agent" in r.json()["reason"]
    assert claim(world, "ray-a", tok)["cancel"] == [{"id": jid, "ref": "suanwang-c"}]
    assert report(world, "ray-a", tok, jid, state="cancelled", ref="suanwang-c") == 200
    assert claim(world, "ray-a", tok)["cancel"] == []
    assert "stopped in the ray engine" in job(world, jid)["reason"]
    assert actions(world, jid)[-2:] == ["cancel", "cancel_confirmed"]


def test_stale_agent_site_replaces_placed_jobs_in_one_cycle_and_keeps_running_ones(world: World):
    tok_a, tok_b = agent_site(world, "ray-a"), agent_site(world, "ray-b")
    beat(world, "ray-a", tok_a, cpu_total=16, cpu_free=16)
    beat(world, "ray-b", tok_b)
    running, waiting, claimed = submit(world), submit(world), submit(world)
    world.svc.loop.place()
    report(world, "ray-a", tok_a, running, state="running", ref="r1")
    assert job(world, waiting)["site_id"] == job(world, claimed)["site_id"] == "ray-a"
    with world.svc.sessions() as s, s.begin():  # an agent took `claimed` (it may be in the engine) but said nothing yet
        s.execute(sa.update(JobRow).where(JobRow.id == claimed).values(claimed_at=utcnow()))
    world.svc.cfg.heartbeat_timeout_s = 0.2
    time.sleep(0.3)
    beat(world, "ray-b", tok_b)
    world.tick()  # one scheduling cycle: ray-a is down, its placed job is placed again on ray-b
    got = job(world, waiting)
    assert (got["state"], got["site_id"], got["attempts"]) == ("placed", "ray-b", 1)
    assert job(world, running)["state"] == "running"  # only the agent is silent: the engine still runs it
    assert job(world, claimed)["site_id"] == "ray-a"  # maybe submitted: kept for the agent to adopt
    assert report(world, "ray-a", tok_a, waiting, state="running", ref="late") == 409  # re-placed: stop it
    beat(world, "ray-a", tok_a)  # the agent is back: site up, it reports the job it kept running
    assert report(world, "ray-a", tok_a, running, state="done", exit_code=0) == 200
    assert job(world, running)["state"] == "done"


def test_engine_unreachable_keeps_running_jobs_and_a_run_it_then_says_is_gone_is_retried(world: World):
    tok_a, tok_b = agent_site(world, "ray-a"), agent_site(world, "ray-b")
    beat(world, "ray-a", tok_a, cpu_total=16, cpu_free=16)
    beat(world, "ray-b", tok_b)
    running, waiting, claimed = submit(world), submit(world), submit(world)
    world.svc.loop.place()
    assert {job(world, j)["site_id"] for j in (running, waiting, claimed)} == {"ray-a"}
    report(world, "ray-a", tok_a, running, state="running", ref="r1")
    assert claim(world, "ray-a", tok_a)["submit"]  # `waiting` and `claimed` are claimed now; none started
    down = "Ray head at http://127.0.0.1:1: connection refused"
    beat(world, "ray-a", tok_a, up=False, reachable=False, message=down)
    site = next(s for s in world.client.get("/api/v1/sites", headers=world.acme).json() if s["id"] == "ray-a")
    assert site["status"] == "down" and "connection refused" in site["engine_message"]
    for jid in (waiting, claimed):  # placed but not started: placed again elsewhere
        assert job(world, jid)["state"] == "queued"
    assert job(world, running)["state"] == "running"  # the engine may still run it: not lost, not retried
    assert "fail" not in actions(world, running)
    beat(world, "ray-a", tok_a, up=False, reachable=False, message=down)  # still unreachable, within the bound
    assert job(world, running)["state"] == "running"
    beat(world, "ray-a", tok_a)  # the engine answers again: the site is up, and the agent polls the run
    assert job(world, running)["state"] == "running"
    # the engine answers that it lost the run (a head restarted without it): retried, never on the same site
    assert report(world, "ray-a", tok_a, running, state="failed", reason="lost: Ray has no job r1", lost=True) == 200
    lost = job(world, running)
    assert lost["state"] == "queued" and lost["attempts"] == 1 and "Ray has no job r1" in lost["reason"]
    world.svc.loop.place()
    assert job(world, running)["site_id"] == "ray-b"
    assert actions(world, running) == ["submit", "place", "start", "fail", "requeue", "retry", "place"]
    # the second run is lost too: max_attempts=2 -> failed for good, audited
    report(world, "ray-b", tok_b, running, state="running", ref="r2")
    assert report(world, "ray-b", tok_b, running, state="failed", reason="lost: Ray has no job r2", lost=True) == 200
    got = job(world, running)
    assert got["state"] == "failed" and "gave up after 2 attempts" in got["reason"]
    assert actions(world, running)[-2:] == ["start", "fail"]


def test_engine_unreachable_past_agent_lost_s_retries_its_running_jobs(world: World):
    tok_a, tok_b = agent_site(world, "ray-a"), agent_site(world, "ray-b")
    beat(world, "ray-a", tok_a)
    jid = submit(world)
    world.svc.loop.place()
    report(world, "ray-a", tok_a, jid, state="running", ref="r1")
    world.svc.cfg.agent_lost_s = 0.3
    beat(world, "ray-a", tok_a, up=False, reachable=False, message="slurmctld does not answer a ping")
    assert job(world, jid)["state"] == "running"
    time.sleep(0.4)
    beat(world, "ray-b", tok_b)
    beat(world, "ray-a", tok_a, up=False, reachable=False, message="slurmctld does not answer a ping")
    got = job(world, jid)
    assert (got["state"], got["attempts"]) == ("queued", 1) and "unreachable for more than 0.3 s" in got["reason"]
    world.svc.loop.place()
    assert job(world, jid)["site_id"] == "ray-b"
    assert report(world, "ray-a", tok_a, jid, state="done", exit_code=0) == 409  # back too late: stop it there


def test_engine_up_but_closed_to_jobs_keeps_running_jobs_past_agent_lost_s(world: World):
    tok_a = agent_site(world, "ray-a")
    beat(world, "ray-a", tok_a)
    jid = submit(world)
    world.svc.loop.place()
    report(world, "ray-a", tok_a, jid, state="running", ref="r1")
    world.svc.cfg.agent_lost_s = 0.2
    beat(world, "ray-a", tok_a, up=False, message="partition batch is not up or has no usable node")
    time.sleep(0.3)
    beat(world, "ray-a", tok_a, up=False, message="partition batch is not up or has no usable node")
    assert job(world, jid)["state"] == "running"  # the engine answers: its polls, not a timer, decide
    assert report(world, "ray-a", tok_a, jid, state="done", exit_code=0) == 200


def test_commands_only_on_sites_that_allow_them(world: World):
    tok_a = agent_site(world, "ray-a")  # commands not allowed
    tok_b = agent_site(world, "ray-b", allow_commands=True)
    beat(world, "ray-a", tok_a)
    beat(world, "ray-b", tok_b)
    with_cmd, without = submit(world, command="echo hi"), submit(world)
    world.svc.loop.place()
    assert job(world, with_cmd)["site_id"] == "ray-b"
    assert job(world, without)["site_id"] == "ray-a"
    # an operator who withdraws the permission after placement: the claim fails the job instead of running it
    world.client.patch("/api/v1/sites/ray-b", json={"allow_commands": False}, headers=world.operator)
    assert claim(world, "ray-b", tok_b)["submit"] == []
    got = job(world, with_cmd)
    assert got["state"] == "failed" and "does not run commands" in got["reason"]


def test_metrics_in_prometheus_text_format(world: World):
    tok = agent_site(world, "ray-a")
    beat(world, "ray-a", tok)
    submit(world)
    world.svc.loop.place()
    r = world.client.get("/metrics", headers=world.operator)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(r.text)
        for s in f.samples
    }
    assert samples[("suanwang_jobs", (("site", "ray-a"), ("state", "placed")))] == 1
    assert samples[("suanwang_placements_total", (("site", "ray-a"),))] == 1
    assert samples[("suanwang_scheduling_latency_seconds_count", ())] == 1
    assert 0 <= samples[("suanwang_site_heartbeat_age_seconds", (("engine", "ray"), ("site", "ray-a")))] < 60


def test_running_jobs_of_a_site_silent_past_agent_lost_s_are_retried_elsewhere(world: World):
    tok_a, tok_b = agent_site(world, "ray-a"), agent_site(world, "ray-b")
    beat(world, "ray-a", tok_a)
    jid = submit(world)
    world.svc.loop.place()
    report(world, "ray-a", tok_a, jid, state="running", ref="r1")
    world.svc.cfg.heartbeat_timeout_s = world.svc.cfg.agent_lost_s = 0.2
    time.sleep(0.3)
    beat(world, "ray-b", tok_b)
    world.svc.loop.watch_heartbeats()
    got = job(world, jid)
    assert (got["state"], got["attempts"]) == ("queued", 1) and "agent silent" in got["reason"]
    world.svc.loop.place()
    assert job(world, jid)["site_id"] == "ray-b"
    assert report(world, "ray-a", tok_a, jid, state="done", exit_code=0) == 409  # the agent is back: too late


def test_agent_command_line_errors_are_one_line_with_exit_code_2(tmp_path):
    from typer.testing import CliRunner

    from suanwang.cli.main import app

    token = tmp_path / "site.token"
    token.write_text("")
    real = tmp_path / "real.token"
    real.write_text("sw_not_a_real_token")
    cases = [
        (tmp_path / "missing.token", "No such file"),
        (token, "empty"),
        (real, "cannot reach http://127.0.0.1:9"),
    ]
    for path, says in cases:
        args = ["agent", "--service", "http://127.0.0.1:9", "--site", "x", "--token-file", str(path)]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output, r.output


def test_reports_in_one_request_each_answered(world: World):
    tok = agent_site(world, "ray-a")
    beat(world, "ray-a", tok)
    mine, gone = submit(world), submit(world)
    world.svc.loop.place()
    world.client.post(f"/api/v1/jobs/{gone}/cancel", headers=world.acme)
    body = {"reports": [{"job_id": mine, "state": "running", "ref": "m"}, {"job_id": gone, "state": "running"}]}
    r = world.client.post("/api/v1/sites/ray-a/agent/reports", json=body, headers=tok)
    assert r.status_code == 200, r.text
    ok = [(x["job_id"], x["ok"]) for x in r.json()["results"]]
    assert ok == [(mine, True), (gone, False)]  # the cancelled one: the agent stops it in its engine
    assert job(world, mine)["state"] == "running" and job(world, gone)["state"] == "cancelled"


def test_orphans_are_the_engine_jobs_the_service_does_not_run_on_that_site(world: World):
    tok_a, tok_b = agent_site(world, "ray-a"), agent_site(world, "ray-b")
    beat(world, "ray-a", tok_a, cpu_total=64, cpu_free=64)
    beat(world, "ray-b", tok_b)
    running, stale, placed, ended, just_ended, moved, cancelling = (submit(world) for _ in range(7))
    world.svc.loop.place()
    for jid in (running, stale, ended, just_ended, moved, cancelling):
        assert report(world, "ray-a", tok_a, jid, state="running", ref=f"ref-{jid}") == 200
    for jid in (ended, just_ended):
        assert report(world, "ray-a", tok_a, jid, state="done", exit_code=0) == 200
    world.client.post(f"/api/v1/jobs/{cancelling}/cancel", headers=world.acme)
    with world.svc.sessions() as s, s.begin():  # another site's run of `moved` (as after a retry elsewhere)
        s.execute(sa.update(JobRow).where(JobRow.id == moved).values(site_id="ray-b"))
        past = utcnow() - timedelta(seconds=agents.ENDING_GRACE_S + 1)  # `ended` ended a while ago
        s.execute(sa.update(JobRow).where(JobRow.id == ended).values(finished_at=past))
    unknown = "job_00000000000000000001"
    seen = [*({"job_id": j, "ref": f"ref-{j}"} for j in (running, ended, just_ended, moved, cancelling, unknown)),
            {"job_id": stale, "ref": "an-older-copy"}, {"job_id": placed, "ref": "submitted-not-yet-said"}]  # fmt: skip
    r = world.client.post("/api/v1/sites/ray-a/agent/claim", json={"engine_jobs": seen}, headers=tok_a)
    assert r.status_code == 200, r.text
    got = {o["job_id"]: o["why"] for o in r.json()["orphans"]}
    assert got == {
        ended: "done in the service",
        moved: "running on site ray-b",
        unknown: "unknown to the service",
        stale: f"a stale copy: the service runs it as ref-{stale}",
    }
    assert [c["id"] for c in r.json()["cancel"]] == [cancelling]  # stopped as a cancel, not as an orphan
    assert "orphans" not in claim(world, "ray-a", tok_a)  # no engine listing: no sweep
    swept = [{"job_id": unknown, "ref": f"ref-{unknown}", "why": "unknown to the service"}]
    r = world.client.post("/api/v1/sites/ray-a/agent/claim", json={"swept": swept}, headers=tok_a)
    assert r.status_code == 200, r.text
    events = world.client.get("/api/v1/audit?limit=500", headers=world.admin).json()["items"]
    mine = [e for e in events if e["action"] == "orphan_cancel"]
    assert [(e["object"], e["detail"]["ref"]) for e in mine] == [(f"job:{unknown}", f"ref-{unknown}")]
    r = world.client.post("/api/v1/sites/ray-b/agent/claim", json={"swept": swept}, headers=tok_a)
    assert r.status_code == 403  # a site token speaks for its own site only


def test_each_site_has_its_own_engine_tag(world: World):
    tok_a, tok_b = agent_site(world, "ray-a"), agent_site(world, "ray-b")
    tags = [world.client.get(f"/api/v1/sites/{sid}/agent/config", headers=t).json()["engine_owner"]
            for sid, t in (("ray-a", tok_a), ("ray-b", tok_b))]  # fmt: skip
    assert tags[0].startswith("ray-a.") and tags[1].startswith("ray-b.") and tags[0] != tags[1]
    again = world.client.get("/api/v1/sites/ray-a/agent/config", headers=tok_a).json()["engine_owner"]
    assert again == tags[0]  # stable: jobs submitted before an agent restart keep being recognised
