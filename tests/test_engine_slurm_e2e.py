"""Slurm end to end: jobs submitted through the API run on real Slurm clusters through `suanwang agent` processes.

Two sites bound to engine `slurm` in two provinces: "east" in Henan (next to the jobs' origin, Xuchang) on the
session's cluster through slurmrestd, "west" in Guizhou on a second cluster of its own through sbatch. The service
(SQLite, scheduling loop on, policy nearest, the atlas's own sites set down) is served on a loopback port; each agent is a real process that the
tests kill and restart. The oracle for what ran is Slurm's own record (`squeue -t all`) and the jobs' output files.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from engines.slurm_cluster import ClusterError, SlurmCluster, free_port

from suanwang.service import Service, ServiceConfig, create_app
from suanwang.service.executors.slurm import slurm_name

ADMIN = "e2e-admin-token"
XUCHANG = "许昌"
SITES = {"east": ("henan", 34.0357, 113.8526), "west": ("guizhou", 26.4, 106.4)}
SUANWANG = str(Path(sys.executable).with_name("suanwang"))


class AgentProcess:
    """`suanwang agent` for one site, as a process of its own (its output in a log file)."""

    def __init__(self, url: str, site: str, token_file: Path, log: Path):
        self.args = [SUANWANG, "agent", "--service", url, "--site", site, "--token-file", str(token_file)]
        self.args += ["--interval-s", "0.2"]
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

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
    url: str
    admin: httpx.Client
    tenant: httpx.Client
    clusters: dict[str, SlurmCluster]
    agents: dict[str, AgentProcess]
    workdirs: dict[str, Path]

    def submit(self, command: str, **extra) -> str:
        body = {"origin": XUCHANG, "cpu_cores": 1, "runtime_h": 0.1, "command": command, **extra}
        r = self.tenant.post("/api/v1/jobs", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def job(self, jid: str) -> dict:
        return self.tenant.get(f"/api/v1/jobs/{jid}").json()

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
        """Slurm's own record of the job on the site's cluster: one 'id state' line per Slurm job of that name."""
        out = self.clusters[site].cli("squeue", "-h", "-t", "all", "-n", slurm_name(jid), "-o", "%i %T").stdout
        return out.splitlines()


@pytest.fixture(scope="module")
def west_cluster() -> Iterator[SlurmCluster]:
    """A second Slurm cluster on this host (its own controller, ports and folders)."""
    cluster = SlurmCluster(name="swwest")
    try:
        cluster.start()
    except ClusterError as e:
        pytest.fail(str(e), pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory, slurm_cluster, west_cluster) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("slurm-e2e")
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
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=15)
    assert admin.post("/api/v1/tenants", json={"name": "acme"}).status_code == 201
    tenant_token = admin.post("/api/v1/tokens", json={"role": "tenant", "tenant": "acme"}).json()["token"]
    operator_token = admin.post("/api/v1/tokens", json={"role": "operator"}).json()["token"]
    operator = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {operator_token}"}, timeout=15)
    tenant = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tenant_token}"}, timeout=15)
    for site in operator.get("/api/v1/sites").json():  # only the two Slurm sites take work in these tests
        assert operator.patch(f"/api/v1/sites/{site['id']}", json={"status": "down"}).status_code == 200
    clusters = {"east": slurm_cluster, "west": west_cluster}
    workdirs = {"east": slurm_cluster.workdir("nobody"), "west": west_cluster.workdir("root")}
    engine_settings = {
        "east": {"mode": "rest", "rest_url": f"unix:{slurm_cluster.rest_socket}", "workdir": str(workdirs["east"])},
        "west": {"mode": "sbatch", "slurm_conf": str(west_cluster.conf), "workdir": str(workdirs["west"])},
    }
    agents = {}
    for sid, (province, lat, lon) in SITES.items():
        body = {
            "id": sid,
            "name_zh": sid,
            "name_en": sid,
            "province_id": province,
            "lat": lat,
            "lon": lon,
            "pue": 1.2,
            "cpu_cores": 64,
            "engine": "slurm",
            "engine_settings": {**engine_settings[sid], "partition": clusters[sid].partition},
            "allow_commands": True,
        }
        r = operator.post("/api/v1/sites", json=body)
        assert r.status_code == 201, r.text
        token_file = tmp / f"{sid}.token"
        token_file.write_text(operator.post(f"/api/v1/sites/{sid}/tokens").json()["token"])
        agents[sid] = AgentProcess(url, sid, token_file, tmp / f"agent-{sid}.log")
        agents[sid].start()
    w = Live(url, admin, tenant, clusters, agents, workdirs)
    for sid in SITES:  # the agents' first heartbeats carry what Slurm has
        deadline = time.monotonic() + 30
        while w.site(sid)["cpu_free"] != clusters[sid].cpus:
            assert time.monotonic() < deadline, (tmp / f"agent-{sid}.log").read_text()[-2000:]
            time.sleep(0.1)
    yield w
    for a in agents.values():
        a.stop()
    server.should_exit = True
    thread.join(timeout=10)
    svc.close()
    for c in (admin, operator, tenant):
        c.close()


def test_job_runs_on_slurm_and_its_output_comes_back_as_logs(live: Live):
    jid = live.submit("echo hello-$((6*7)) from $SUANWANG_JOB_ID")
    got = live.wait(jid, ("done", "failed"))
    assert (got["state"], got["exit_code"], got["site_id"]) == ("done", 0, "east")
    logs = live.tenant.get(f"/api/v1/jobs/{jid}/logs").json()["logs"]
    assert f"hello-42 from {jid}" in logs
    assert [line.split()[1] for line in live.in_engine("east", jid)] == ["COMPLETED"]
    assert live.in_engine("west", jid) == []


def test_long_job_is_cancelled_and_gone_from_squeue(live: Live):
    jid = live.submit("sleep 600")
    live.wait(jid, ("running",))
    deadline = time.monotonic() + 15
    while [line.split()[1] for line in live.in_engine("east", jid)] != ["RUNNING"]:
        assert time.monotonic() < deadline, live.in_engine("east", jid)
        time.sleep(0.1)
    r = live.tenant.post(f"/api/v1/jobs/{jid}/cancel")
    assert r.json()["state"] == "cancelled"
    deadline = time.monotonic() + 15
    while "stopped in the slurm engine" not in live.job(jid)["reason"]:
        assert time.monotonic() < deadline, live.job(jid)
        time.sleep(0.1)
    east = live.clusters["east"]
    assert east.cli("squeue", "-h", "-n", slurm_name(jid), "-o", "%i").stdout.strip() == ""  # gone from squeue
    assert [line.split()[1] for line in live.in_engine("east", jid)] == ["CANCELLED"]


def test_exit_3_is_failed_with_exit_code_3(live: Live):
    jid = live.submit("echo trying; exit 3")
    got = live.wait(jid, ("done", "failed"))
    assert (got["state"], got["exit_code"]) == ("failed", 3)
    assert got["attempts"] == 0  # the job's own failure is not retried
    assert "trying" in live.tenant.get(f"/api/v1/jobs/{jid}/logs").json()["logs"]


def test_agent_killed_and_restarted_runs_every_job_exactly_once(live: Live):
    jids = [live.submit(f"sleep 0.5; echo ran {i}") for i in range(6)]
    deadline = time.monotonic() + 30
    while sum(bool(live.in_engine("east", j)) for j in jids) < 2:  # mid-stream: some are in Slurm, not all
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live.agents["east"].kill()
    time.sleep(1.0)  # Slurm keeps running what it has; the service still has the rest placed or queued
    live.agents["east"].start()
    for j in jids:
        assert live.wait(j, ("done", "failed"), timeout_s=60)["state"] == "done"
    for i, j in enumerate(jids):  # Slurm's record and the output files: one run each, in one engine only
        runs = live.in_engine("east", j) + live.in_engine("west", j)
        assert len(runs) == 1, (j, runs)
        site = "east" if live.in_engine("east", j) else "west"
        output = (live.workdirs[site] / slurm_name(j) / "output.log").read_text()
        assert output.splitlines() == [f"ran {i}"]


def test_slurmctld_stopped_takes_the_site_down_and_placed_work_moves_west(live: Live):
    east = live.clusters["east"]
    deadline = time.monotonic() + 30
    while east.cli("squeue", "-h", "-o", "%i").stdout.strip():  # nothing running in east: only placed work moves
        assert time.monotonic() < deadline
        time.sleep(0.1)
    agent = live.agents["east"]
    agent.signal(signal.SIGSTOP)  # the agent holds still while work is placed on its site
    try:
        jids = [live.submit(f"echo moved {i}") for i in range(2)]
        for j in jids:
            live.wait(j, ("placed",))
            assert live.job(j)["site_id"] == "east"
        east.stop_controller()
    finally:
        agent.signal(signal.SIGCONT)
    try:
        site = live.wait_site("east", "down")
        assert "slurmctld does not answer" in site["engine_message"]
        for j in jids:  # re-placed within a scheduling cycle, run by the west cluster
            got = live.wait(j, ("done", "failed"))
            assert (got["state"], got["site_id"], got["attempts"]) == ("done", "west", 1)
            assert len(live.in_engine("west", j)) == 1
    finally:
        east.start_controller()
    live.wait_site("east", "up")
    assert all(live.in_engine("east", j) == [] for j in jids)  # never submitted in east


def test_two_provinces_residency_holds_in_the_engines(live: Live):
    # sensitive data of Guizhou must stay in Guizhou even though Henan is next to the origin
    held = live.submit("echo guizhou data", data_class="sensitive", data_province="guizhou")
    near = live.submit("echo henan data", data_class="sensitive", data_province="henan")
    for jid, site, other in ((held, "west", "east"), (near, "east", "west")):
        got = live.wait(jid, ("done", "failed"))
        assert (got["state"], got["site_id"]) == ("done", site)
        assert len(live.in_engine(site, jid)) == 1 and live.in_engine(other, jid) == []
