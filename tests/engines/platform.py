"""The platform for end-to-end engine tests: the real service on a loopback port (SQLite, scheduling loop on,
policy nearest, the atlas's own sites set down so only the engine sites take work) and one real `suanwang agent`
process per engine site, which the tests may kill, pause and restart."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from engines.slurm_cluster import SlurmCluster, free_port
from suanwang.service import Service, ServiceConfig, create_app
from suanwang.service.executors.slurm import slurm_name

ADMIN = "e2e-admin-token"
XUCHANG = "许昌"  # the jobs' origin city
SUANWANG = str(Path(sys.executable).with_name("suanwang"))


@dataclass(frozen=True)
class EngineSite:
    """A site bound to an engine: where it is, its engine settings, the environment its agent runs in."""

    id: str
    province_id: str
    lat: float
    lon: float
    engine: str
    settings: dict
    agent_env: dict[str, str] | None = None


class AgentProcess:
    """`suanwang agent` for one site, as a process of its own (its output in a log file)."""

    def __init__(self, url: str, site: str, token_file: Path, log: Path, env: dict[str, str] | None = None):
        self.args = [SUANWANG, "agent", "--service", url, "--site", site, "--token-file", str(token_file)]
        self.args += ["--interval-s", "0.2"]
        self.log, self.env = log, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Live:
    """The running platform: API clients per role, the agents, and the Slurm clusters behind Slurm sites."""

    url: str
    admin: httpx.Client
    tenant: httpx.Client
    agents: dict[str, AgentProcess]
    clusters: dict[str, SlurmCluster] = field(default_factory=dict)
    workdirs: dict[str, Path] = field(default_factory=dict)  # Slurm sites' job folders

    def submit(self, command: str, **extra) -> str:
        body = {"origin": XUCHANG, "cpu_cores": 1, "runtime_h": 0.1, "command": command, **extra}
        r = self.tenant.post("/api/v1/jobs", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def job(self, jid: str) -> dict:
        return self.tenant.get(f"/api/v1/jobs/{jid}").json()

    def logs(self, jid: str) -> str:
        return self.tenant.get(f"/api/v1/jobs/{jid}/logs").json()["logs"]

    def wait(self, jid: str, states: tuple[str, ...], timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while (got := self.job(jid))["state"] not in states:
            assert time.monotonic() < deadline, f"job {jid} is {got['state']} ({got.get('reason')}), not {states}"
            time.sleep(0.1)
        return got

    def site(self, sid: str) -> dict:
        return next(s for s in self.admin.get("/api/v1/sites").json() if s["id"] == sid)

    def wait_site(self, sid: str, status: str, timeout_s: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while (got := self.site(sid))["status"] != status:
            assert time.monotonic() < deadline, f"site {sid} is {got['status']}, not {status}"
            time.sleep(0.1)
        return got

    def in_engine(self, site: str, jid: str) -> list[str]:
        """Slurm's own record of the job on a Slurm site's cluster: one 'id state' line per Slurm job of its name."""
        out = self.clusters[site].cli("squeue", "-h", "-t", "all", "-n", slurm_name(jid), "-o", "%i %T").stdout
        return out.splitlines()

    def drain(self, site: str, timeout_s: float = 30.0) -> None:
        """Wait until a Slurm site's cluster runs nothing."""
        deadline = time.monotonic() + timeout_s
        while self.clusters[site].cli("squeue", "-h", "-o", "%i").stdout.strip():
            assert time.monotonic() < deadline, f"{site}'s cluster did not drain"
            time.sleep(0.1)


@contextmanager
def platform(tmp: Path, sites: list[EngineSite], clusters: dict[str, SlurmCluster] | None = None) -> Iterator[Live]:
    """Serve the platform with `sites` registered (commands allowed there), a token and a running agent each;
    return once every agent has reported its engine's capacity."""
    cfg = ServiceConfig(
        db_url=f"sqlite:///{tmp / 'suanwang.db'}",
        admin_token=ADMIN,
        loop_interval_s=0.2,
        heartbeat_timeout_s=15.0,  # an agent restart (a few seconds) is not an outage
        policy="nearest",
        max_attempts=3,
        allow_commands=True,
        workdir=tmp / "local-jobs",
    )
    svc = Service(cfg)
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.config.port}"
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=15)
    assert admin.post("/api/v1/tenants", json={"name": "acme"}).status_code == 201
    tenant_token = admin.post("/api/v1/tokens", json={"role": "tenant", "tenant": "acme"}).json()["token"]
    operator_token = admin.post("/api/v1/tokens", json={"role": "operator"}).json()["token"]
    operator = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {operator_token}"}, timeout=15)
    tenant = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tenant_token}"}, timeout=15)
    for site in operator.get("/api/v1/sites").json():
        assert operator.patch(f"/api/v1/sites/{site['id']}", json={"status": "down"}).status_code == 200
    agents: dict[str, AgentProcess] = {}
    workdirs = {s.id: Path(s.settings["workdir"]) for s in sites if s.engine == "slurm"}
    live = Live(url, admin, tenant, agents, dict(clusters or {}), workdirs)
    try:
        for s in sites:
            body = {"id": s.id, "name_zh": s.id, "name_en": s.id, "province_id": s.province_id, "lat": s.lat}
            body |= {"lon": s.lon, "pue": 1.2, "cpu_cores": 64, "engine": s.engine, "engine_settings": s.settings}
            r = operator.post("/api/v1/sites", json={**body, "allow_commands": True})
            assert r.status_code == 201, r.text
            token_file = tmp / f"{s.id}.token"
            token_file.write_text(operator.post(f"/api/v1/sites/{s.id}/tokens").json()["token"])
            agents[s.id] = AgentProcess(url, s.id, token_file, tmp / f"agent-{s.id}.log", s.agent_env)
            agents[s.id].start()
        for s in sites:  # the agents' first heartbeats carry what the engines have
            deadline = time.monotonic() + 60
            while not ((got := live.site(s.id))["engine_capacity"] and got["status"] == "up"):
                assert time.monotonic() < deadline, (tmp / f"agent-{s.id}.log").read_text()[-2000:]
                time.sleep(0.1)
        yield live
    finally:
        for a in agents.values():
            a.stop()
        server.should_exit = True
        thread.join(timeout=10)
        svc.close()
        for c in (admin, operator, tenant):
            c.close()
