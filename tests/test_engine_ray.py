"""End to end on a real Ray cluster: a real `suanwang serve` and a real `suanwang agent` (subprocesses), a Ray
head started by the tests (engines/ray_cluster.py). What the engine did is read from Ray's own Jobs API and from
files the jobs' commands write, never from the service under test alone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from engines.ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")  # one Ray head per test run: every test here on one worker

ADMIN = "ray-test-admin"
SITE = "ray-xuchang"
XUCHANG = (34.035771, 113.852454)  # the jobs' origin: the nearest policy puts them on the Ray site, at the origin
HEARTBEAT_TIMEOUT_S = 15.0  # well above an agent restart (a few seconds here)
WAIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


class Platform:
    """`suanwang serve` on a free port and the agent of its Ray site, as subprocesses."""

    def __init__(self, root: Path, cluster: RayCluster):
        self.root, self.cluster = root, cluster
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = dict(os.environ, SUANWANG_LOOP_INTERVAL_S="0.2", SUANWANG_AUTH_CACHE_S="0")
        cmd = [
            _bin("suanwang"), "serve", "--db", f"sqlite:///{root / 'svc.db'}", "--port", self.url.rsplit(":", 1)[1],
            "--admin-token", ADMIN, "--allow-commands", "--heartbeat-timeout-s", str(HEARTBEAT_TIMEOUT_S),
            "--policy", "nearest", "--workdir", str(root / "local-jobs"),
        ]  # fmt: skip
        self.serve = subprocess.Popen(cmd, env=env, stdout=open(root / "serve.log", "wb"), stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.admin = {"Authorization": f"Bearer {ADMIN}"}
        wait_for(lambda: self._healthy(), "the service to answer")
        self.call("POST", "/api/v1/tenants", json={"name": "acme"})
        tok = self.call("POST", "/api/v1/tokens", json={"role": "tenant", "tenant": "acme"})["token"]
        self.tenant = {"Authorization": f"Bearer {tok}"}
        site = {
            "id": SITE, "name_zh": "许昌 Ray", "name_en": "Xuchang Ray", "province_id": "henan", "lat": XUCHANG[0],
            "lon": XUCHANG[1], "pue": 1.2, "cpu_cores": 64, "engine": "ray", "allow_commands": True,
            "engine_settings": {"address": cluster.address},
        }  # fmt: skip
        self.call("POST", "/api/v1/sites", json=site)
        self.token_file = root / "site.token"
        self.token_file.write_text(self.call("POST", f"/api/v1/sites/{SITE}/tokens")["token"])
        self.agent: subprocess.Popen | None = None
        self.start_agent()

    def _healthy(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def call(self, method: str, path: str, headers: dict | None = None, **kw):
        r = self.http.request(method, path, headers=headers or self.admin, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def start_agent(self) -> None:
        cmd = [_bin("suanwang"), "agent", "--service", self.url, "--site", SITE, "--token-file", str(self.token_file),
               "--interval-s", "0.2"]  # fmt: skip
        log = open(self.root / "agent.log", "ab")  # noqa: SIM115 - the agent's own output
        self.agent = subprocess.Popen(cmd, env=self.cluster.env, stdout=log, stderr=subprocess.STDOUT)

    def kill_agent(self) -> None:
        self.agent.send_signal(signal.SIGKILL)
        self.agent.wait(timeout=10)

    def submit(self, command: str, cpu: int = 1) -> str:
        body = {"origin": "许昌", "cpu_cores": cpu, "runtime_h": 0.1, "command": command}
        return self.call("POST", "/api/v1/jobs", headers=self.tenant, json=body)["id"]

    def job(self, jid: str) -> dict:
        return self.call("GET", f"/api/v1/jobs/{jid}", headers=self.tenant)

    def wait_state(self, jid: str, *states: str) -> dict:
        return wait_for(lambda: (j := self.job(jid))["state"] in states and j, f"job {jid} to be {states}")

    def audit(self, jid: str) -> list[dict]:
        items = self.call("GET", "/api/v1/audit?limit=500")["items"]
        return [e for e in reversed(items) if e["object"] == f"job:{jid}"]

    def close(self) -> None:
        for p in (self.agent, self.serve):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()


def wait_for(check, what: str, timeout_s: float = WAIT_S):
    """Poll `check` until it returns something truthy (returned), or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@pytest.fixture(scope="module")
def platform(ray_cluster, tmp_path_factory):
    p = Platform(tmp_path_factory.mktemp("rayplatform"), ray_cluster)
    yield p
    p.close()


@pytest.fixture
def live(platform):
    """The platform with its agent running and the Ray head up (restarted if a test stopped it)."""
    if platform.cluster.proc is None:
        platform.cluster.start()
    if platform.agent is None or platform.agent.poll() is not None:
        platform.start_agent()
    wait_for(lambda: _site(platform)["status"] == "up", "the Ray site to be up")
    return platform


def _site(p: Platform) -> dict:
    return next(s for s in p.call("GET", "/api/v1/sites") if s["id"] == SITE)


def _ray_jobs(p: Platform):
    from ray.job_submission import JobSubmissionClient

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    return JobSubmissionClient(p.cluster.address)


def test_a_command_runs_on_ray_and_its_output_comes_back(live: Platform):
    site = wait_for(lambda: (s := _site(live))["engine_capacity"] and s, "the agent's first capacity report")
    assert site["engine_capacity"]["cpu_total"] == 4  # read from Ray, not the declared 64
    jid = live.submit("echo hello-$((6*7))")
    got = live.wait_state(jid, "done", "failed")
    assert (got["state"], got["site_id"], got["exit_code"]) == ("done", SITE, 0), got
    assert "hello-42" in live.call("GET", f"/api/v1/jobs/{jid}/logs", headers=live.tenant)["logs"]
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
    ids = [live.submit(f"echo run-{i} >> {runs}; sleep 1") for i in range(6)]
    wait_for(lambda: any(live.job(j)["state"] == "running" for j in ids), "a first job to run")
    live.kill_agent()  # SIGKILL: no goodbye; some jobs were submitted, some maybe not yet reported
    live.start_agent()
    for j in ids:
        assert live.wait_state(j, "done", "failed")["state"] == "done"
    lines = runs.read_text().split()
    assert sorted(lines) == sorted(f"run-{i}" for i in range(6))  # each command ran exactly once
    # Ray has 4 CPUs: jobs beyond its free room went to the next nearest site (a local one), as they should
    on_ray = sorted(j for j in ids if live.job(j)["site_id"] == SITE)
    assert len(on_ray) >= 2
    in_ray = [j for j in _ray_jobs(live).list_jobs() if (j.metadata or {}).get("suanwang_job_id") in ids]
    assert sorted(j.metadata["suanwang_job_id"] for j in in_ray) == on_ray  # one Ray job each, none elsewhere
    for j in ids:
        assert [e["action"] for e in live.audit(j)].count("start") == 1


def test_ray_head_stopped_site_down_work_replaced_at_a_local_site(live: Platform):
    lost = live.submit("sleep 30")
    live.wait_state(lost, "running")
    live.cluster.stop()  # the engine goes down; the agent keeps running
    wait_for(lambda: _site(live)["status"] == "down", "the Ray site to be down")
    assert "Ray head" in _site(live)["engine_message"]
    retried = wait_for(lambda: (j := live.job(lost))["site_id"] not in (None, SITE) and j, "the retry to be placed")
    assert retried["attempts"] == 1 and retried["site_id"] != SITE
    events = live.audit(lost)
    assert [e["action"] for e in events if e["action"] in ("fail", "retry")] == ["fail", "retry"]
    assert next(e for e in events if e["action"] == "retry")["detail"]["avoid_site"] == SITE
    after = live.submit("echo placed-elsewhere")
    got = live.wait_state(after, "done", "failed")
    assert got["state"] == "done" and got["site_id"] != SITE
    assert "placed-elsewhere" in live.call("GET", f"/api/v1/jobs/{after}/logs", headers=live.tenant)["logs"]
    live.call("POST", f"/api/v1/jobs/{lost}/cancel", headers=live.tenant)
