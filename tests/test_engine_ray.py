"""End to end on a real Ray cluster: a real `suanwang serve` and a real `suanwang agent` (subprocesses), a Ray
head started by the tests (engines/ray_cluster.py). What the engine did is read from Ray's own Jobs API and from
files the jobs' commands write, never from the service under test alone."""

from __future__ import annotations

import os
import time

import pytest
from engines.platform import Platform, wait_for

pytestmark = pytest.mark.xdist_group("ray")  # one Ray head per test run: every test here on one worker

SITE = "ray-xuchang"
XUCHANG = (34.035771, 113.852454)  # the jobs' origin: the nearest policy puts them on the Ray site, at the origin


@pytest.fixture(scope="module")
def platform(ray_cluster, tmp_path_factory):
    p = Platform(tmp_path_factory.mktemp("rayplatform"))
    site = {
        "id": SITE, "name_zh": "许昌 Ray", "name_en": "Xuchang Ray", "province_id": "henan", "lat": XUCHANG[0],
        "lon": XUCHANG[1], "pue": 1.2, "cpu_cores": 64, "engine": "ray", "allow_commands": True,
        "engine_settings": {"address": ray_cluster.address},
    }  # fmt: skip
    p.add_site(site, ray_cluster.env)
    p.cluster = ray_cluster
    yield p
    p.close()


@pytest.fixture
def live(platform):
    """The platform with its agent running and the Ray head up (restarted if a test stopped it)."""
    if platform.cluster.proc is None:
        platform.cluster.start()
    platform.ensure_agent(SITE)
    wait_for(lambda: (s := platform.site(SITE))["status"] == "up" and s["engine_capacity"], "the Ray site's report")
    return platform


def _ray_jobs(p: Platform):
    from ray.job_submission import JobSubmissionClient

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    return JobSubmissionClient(p.cluster.address)


def test_a_command_runs_on_ray_and_its_output_comes_back(live: Platform):
    site = wait_for(lambda: (s := live.site(SITE))["engine_capacity"] and s, "the agent's first capacity report")
    assert site["engine_capacity"]["cpu_total"] == 4  # read from Ray, not the declared 64
    jid = live.submit("echo hello-$((6*7))")
    got = live.wait_state(jid, "done", "failed")
    assert (got["state"], got["site_id"], got["exit_code"]) == ("done", SITE, 0), got
    assert "hello-42" in live.logs(jid)
    info = _ray_jobs(live).get_job_info(f"suanwang-{jid}")
    assert str(info.status) in ("SUCCEEDED", "JobStatus.SUCCEEDED") and info.metadata["suanwang_job_id"] == jid


def test_exit_code_3_fails_with_exit_code_3(live: Platform):
    jid = live.submit("echo before-exit; exit 3")
    got = live.wait_state(jid, "done", "failed")
    assert (got["state"], got["exit_code"]) == ("failed", 3), got
    assert "exit code 3" in got["reason"]


def test_cancel_stops_the_ray_job(live: Platform):
    jid = live.submit("sleep 600")
    live.wait_state(jid, "running")
    client = _ray_jobs(live)
    wait_for(lambda: str(client.get_job_status(f"suanwang-{jid}")).endswith("RUNNING"), "Ray to run it")
    live.call("POST", f"/api/v1/jobs/{jid}/cancel", headers=live.tenant)
    wait_for(lambda: str(client.get_job_status(f"suanwang-{jid}")).endswith("STOPPED"), "Ray to stop it")
    wait_for(lambda: "stopped in the ray engine" in live.job(jid)["reason"], "the agent to confirm the stop")
    assert [e["action"] for e in live.audit(jid)][-2:] == ["cancel", "cancel_confirmed"]


def test_agent_killed_mid_stream_and_restarted_runs_every_job_once(live: Platform, tmp_path):
    runs = tmp_path / "runs.txt"
    # each run appends to a host file (Ray's workers can; a local site's sandboxed jobs cannot see it) and prints
    ids = [live.submit(f"echo run-{i}; (echo run-{i} >> {runs}) 2>/dev/null; sleep 1") for i in range(6)]
    wait_for(lambda: any(live.job(j)["state"] == "running" for j in ids), "a first job to run")
    live.kill_agent(SITE)  # SIGKILL: no goodbye; some jobs were submitted, some maybe not yet reported
    live.start_agent(SITE)
    for j in ids:
        got = live.wait_state(j, "done", "failed")
        assert got["state"] == "done", (got, live.logs(j))
    # Ray has 4 CPUs: jobs beyond its free room went to the next nearest site (a local one), as they should
    on_ray = sorted(j for j in ids if live.job(j)["site_id"] == SITE)
    assert len(on_ray) >= 2
    lines = runs.read_text().split() if runs.exists() else []
    assert sorted(lines) == sorted(f"run-{ids.index(j)}" for j in on_ray)  # each Ray run happened exactly once
    for j in set(ids) - set(on_ray):  # the local site's runs (the service's own sandbox, no agent involved)
        assert live.logs(j).split().count(f"run-{ids.index(j)}") == 1
    in_ray = [j for j in _ray_jobs(live).list_jobs() if (j.metadata or {}).get("suanwang_job_id") in ids]
    assert sorted(j.metadata["suanwang_job_id"] for j in in_ray) == on_ray  # one Ray job each, none elsewhere
    for j in ids:
        assert [e["action"] for e in live.audit(j)].count("start") == 1


def test_orphans_of_the_sites_tag_are_stopped_and_no_other_ray_job_is_touched(live: Platform):
    client = _ray_jobs(live)
    tag = live.agent_config(SITE)["engine_owner"]
    jobs = {  # submission id -> metadata: only the first carries this site's tag, for a job the service never had
        "suanwang-job_0000000000000000000a": {"suanwang_job_id": "job_0000000000000000000a", "suanwang_owner": tag},
        "suanwang-job_0000000000000000000b": {"suanwang_job_id": "job_0000000000000000000b", "suanwang_owner": "x.1"},
        "suanwang-job_0000000000000000000c": {"suanwang_job_id": "job_0000000000000000000c"},
        "someone-elses-job": {"owner": "not us"},
    }
    for sid, meta in jobs.items():
        client.submit_job(entrypoint="sleep 60", submission_id=sid, metadata=meta)
    status = lambda sid: str(client.get_job_status(sid)).rsplit(".", 1)[-1]  # noqa: E731
    try:
        wait_for(lambda: status("suanwang-job_0000000000000000000a") == "STOPPED", "the agent to stop the orphan")
        others = [sid for sid in jobs if not sid.endswith("a")]
        wait_for(lambda: all(status(sid) == "RUNNING" for sid in others), "the other jobs to run")
        time.sleep(2.0)  # more sweeps (every second here)
        assert [status(sid) for sid in others] == ["RUNNING"] * 3
        events = wait_for(lambda: live.audit("job_0000000000000000000a"), "the agent to report what it cancelled")
        assert [(e["action"], e["detail"]["ref"], e["detail"]["why"]) for e in events] == [
            ("orphan_cancel", "suanwang-job_0000000000000000000a", "unknown to the service")
        ]
    finally:
        for sid in jobs:
            client.stop_job(sid)


def test_a_job_ray_cannot_hold_fails_with_rays_numbers(live: Platform):
    # a site whose declared capacity (64 cores) is wrong and whose agent has not reported yet: the 8-core job is
    # placed there (first by id among the sites at the origin), and Ray, with 4 CPUs, cannot run it
    site = {
        "id": "a-ray-declared", "name_zh": "中卫 Ray", "name_en": "Zhongwei Ray", "province_id": "ningxia",
        "lat": 37.499972, "lon": 105.196902, "pue": 1.2, "cpu_cores": 64, "engine": "ray", "allow_commands": True,
        "engine_settings": {"address": live.cluster.address},
    }  # fmt: skip
    live.call("POST", "/api/v1/sites", json=site)  # registered, no agent yet
    jid = live.submit("echo never", origin="中卫", cpu=8)
    wait_for(lambda: live.job(jid)["site_id"] == "a-ray-declared", "the job to be placed on the declared site")
    live.add_agent("a-ray-declared", live.cluster.env)
    got = live.wait_state(jid, "failed", "done")
    assert got["state"] == "failed" and got["exit_code"] is None, got
    assert "engine rejected it: needs 8 CPUs 0 GPUs, the Ray cluster has 4 CPUs" in got["reason"]
    assert live.site("a-ray-declared")["engine_capacity"]["cpu_total"] == 4  # now the scheduler knows
    live.kill_agent("a-ray-declared")


def test_ray_head_stopped_site_down_work_replaced_and_a_lost_run_retried_once_the_head_answers(live: Platform):
    def ray_idle():  # the earlier tests' jobs have left Ray (else this job would rightly go elsewhere)
        room = live.site(SITE)["engine_capacity"]
        return room is not None and room["cpu_free"] == room["cpu_total"]

    wait_for(ray_idle, "the Ray site to be idle")
    lost = live.submit("sleep 30")
    assert live.wait_state(lost, "running")["site_id"] == SITE
    live.cluster.stop()  # the engine goes down; the agent keeps running
    wait_for(lambda: live.site(SITE)["status"] == "down", "the Ray site to be down")
    assert "Ray head" in live.site(SITE)["engine_message"]
    after = live.submit("echo placed-elsewhere")  # new work goes elsewhere while the site is down
    got = live.wait_state(after, "done", "failed")
    assert got["state"] == "done" and got["site_id"] != SITE
    assert "placed-elsewhere" in live.logs(after)
    # the head does not answer: the engine might still run the job, so it is neither lost nor retried yet
    assert (live.job(lost)["state"], live.job(lost)["site_id"]) == ("running", SITE)
    assert "fail" not in [e["action"] for e in live.audit(lost)]
    live.cluster.start()  # a new head without the job: the engine answers, and the run is gone
    retried = wait_for(lambda: (j := live.job(lost))["site_id"] not in (None, SITE) and j, "the retry to be placed")
    assert retried["attempts"] == 1 and retried["site_id"] != SITE
    events = live.audit(lost)
    assert [e["action"] for e in events if e["action"] in ("fail", "retry")] == ["fail", "retry"]
    assert next(e for e in events if e["action"] == "retry")["detail"]["avoid_site"] == SITE
    live.call("POST", f"/api/v1/jobs/{lost}/cancel", headers=live.tenant)
