"""A real platform for the engine tests: `suanwang serve` on a free port, and one real `suanwang agent` per
engine-bound site, all as subprocesses (their output in files under the platform's folder)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ADMIN = "engine-test-admin"
WAIT_S = 60.0
HEARTBEAT_TIMEOUT_S = 15.0  # well above an agent's restart (a few seconds on a busy machine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def wait_for(check, what: str, timeout_s: float = WAIT_S):
    """Poll `check` until it returns something truthy (returned), or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


class Platform:
    """The service (nearest policy, commands allowed, loop every 0.2 s) with tenant `acme`, and site agents."""

    def __init__(self, root: Path, policy: str = "nearest", agent_lost_s: float | None = None):
        self.root = root
        # local command jobs run sandboxed under their own uids: their workdir must be reachable by them (pytest's
        # tmp folders are 0700), owned by the server and writable by no one else (service/executors/local.py)
        self.jobs_dir = Path(tempfile.mkdtemp(prefix="suanwang-jobs-"))
        self.jobs_dir.chmod(0o711)
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = dict(os.environ, SUANWANG_LOOP_INTERVAL_S="0.2", SUANWANG_AUTH_CACHE_S="0")
        if agent_lost_s is not None:  # an agent silent this long has its running jobs retried elsewhere
            env["SUANWANG_AGENT_LOST_S"] = str(agent_lost_s)
        cmd = [
            _bin("suanwang"), "serve", "--db", f"sqlite:///{root / 'svc.db'}", "--port", self.url.rsplit(":", 1)[1],
            "--admin-token", ADMIN, "--allow-commands", "--heartbeat-timeout-s", str(HEARTBEAT_TIMEOUT_S),
            "--policy", policy, "--workdir", str(self.jobs_dir),
        ]  # fmt: skip
        self.serve = subprocess.Popen(cmd, env=env, stdout=open(root / "serve.log", "wb"), stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.admin = {"Authorization": f"Bearer {ADMIN}"}
        wait_for(self._healthy, "the service to answer")
        self.call("POST", "/api/v1/tenants", json={"name": "acme"})
        tok = self.call("POST", "/api/v1/tokens", json={"role": "tenant", "tenant": "acme"})["token"]
        self.tenant = {"Authorization": f"Bearer {tok}"}
        self.agents: dict[str, subprocess.Popen] = {}
        self._agent_env: dict[str, dict] = {}

    def _healthy(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def call(self, method: str, path: str, headers: dict | None = None, **kw):
        r = self.http.request(method, path, headers=headers or self.admin, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def add_site(self, site: dict, agent_env: dict | None = None) -> None:
        """Register an engine-bound site, issue its token into a file and start its agent."""
        self.call("POST", "/api/v1/sites", json=site)
        self.add_agent(site["id"], agent_env)

    def add_agent(self, site_id: str, agent_env: dict | None = None) -> None:
        """Issue a registered site's token into a file and start its agent."""
        token = self.call("POST", f"/api/v1/sites/{site_id}/tokens")["token"]
        (self.root / f"{site_id}.token").write_text(token)
        self._agent_env[site_id] = dict(agent_env or os.environ)
        self.start_agent(site_id)

    def start_agent(self, site_id: str) -> None:
        cmd = [_bin("suanwang"), "agent", "--service", self.url, "--site", site_id,
               "--token-file", str(self.root / f"{site_id}.token"), "--interval-s", "0.2",
               "--sweep-every-s", "1"]  # fmt: skip
        log = open(self.root / f"agent-{site_id}.log", "ab")  # noqa: SIM115 - the agent's own output
        self.agents[site_id] = subprocess.Popen(cmd, env=self._agent_env[site_id], stdout=log, stderr=subprocess.STDOUT)

    def ensure_agent(self, site_id: str) -> None:
        if self.agents[site_id].poll() is not None:
            self.start_agent(site_id)

    def agent_config(self, site_id: str) -> dict:
        """The site's agent configuration as its agent reads it (with the site token)."""
        token = (self.root / f"{site_id}.token").read_text()
        return self.call("GET", f"/api/v1/sites/{site_id}/agent/config", {"Authorization": f"Bearer {token}"})

    def kill_agent(self, site_id: str) -> None:
        self.agents[site_id].send_signal(signal.SIGKILL)
        self.agents[site_id].wait(timeout=10)

    def site(self, site_id: str) -> dict:
        return next(s for s in self.call("GET", "/api/v1/sites") if s["id"] == site_id)

    def only_engine_sites(self) -> None:
        """Take every embedded (local-engine) site down, so jobs can go only to engine-bound sites."""
        for s in self.call("GET", "/api/v1/sites"):
            if s["engine"] == "local" and s["status"] == "up":
                self.call("PATCH", f"/api/v1/sites/{s['id']}", json={"status": "down"})

    def submit(self, command: str, origin: str = "许昌", cpu: int = 1, **extra) -> str:
        body = {"origin": origin, "cpu_cores": cpu, "runtime_h": 0.1, "command": command, **extra}
        return self.call("POST", "/api/v1/jobs", headers=self.tenant, json=body)["id"]

    def job(self, jid: str) -> dict:
        return self.call("GET", f"/api/v1/jobs/{jid}", headers=self.tenant)

    def logs(self, jid: str) -> str:
        return self.call("GET", f"/api/v1/jobs/{jid}/logs", headers=self.tenant)["logs"]

    def wait_state(self, jid: str, *states: str) -> dict:
        return wait_for(lambda: (j := self.job(jid))["state"] in states and j, f"job {jid} to be {states}")

    def audit(self, jid: str) -> list[dict]:
        items = self.call("GET", "/api/v1/audit?limit=500")["items"]
        return [e for e in reversed(items) if e["object"] == f"job:{jid}"]

    def close(self) -> None:
        """Stop the agents, then the service."""
        for p in (*self.agents.values(), self.serve):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.jobs_dir, ignore_errors=True)
