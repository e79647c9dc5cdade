"""Two engines in two provinces: a Slurm site in Henan (next to the jobs' origin) and a Ray site in Ningxia, each
with its own `suanwang agent`. When slurmctld stops, the Slurm site goes down and the work placed there runs at
the Ray site instead - read from Ray's own Jobs API and Slurm's own record."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from engines.platform import EngineSite, Live, platform

pytestmark = pytest.mark.xdist_group("ray")  # shares the session's Ray head with tests/test_engine_ray.py


@pytest.fixture(scope="module")
def live(tmp_path_factory, slurm_cluster, ray_cluster) -> Iterator[Live]:
    if ray_cluster.proc is None:  # another module's test may have stopped the head
        ray_cluster.start()
    sites = [
        EngineSite("slurm-east", "henan", 34.035771, 113.852454, "slurm", {
            "mode": "rest", "rest_url": f"unix:{slurm_cluster.rest_socket}",
            "workdir": str(slurm_cluster.workdir("nobody")), "partition": slurm_cluster.partition}),
        EngineSite("ray-west", "ningxia", 37.5, 105.19, "ray", {"address": ray_cluster.address}, ray_cluster.env),
    ]  # fmt: skip
    with platform(tmp_path_factory.mktemp("slurm-ray"), sites, {"slurm-east": slurm_cluster}) as w:
        yield w


def ray_jobs(address: str) -> dict[str, list[str]]:
    """Ray's own record: platform job id -> the statuses of the Ray jobs carrying it."""
    out: dict[str, list[str]] = {}
    for j in httpx.get(f"{address}/api/jobs/", timeout=10).json():
        jid = (j.get("metadata") or {}).get("suanwang_job_id")
        if jid:
            out.setdefault(jid, []).append(j["status"])
    return out


def test_slurmctld_stopped_placed_work_runs_at_the_ray_site(live: Live, slurm_cluster, ray_cluster):
    live.drain("slurm-east")
    deadline = time.monotonic() + 15
    while live.site("slurm-east")["cpu_free"] < slurm_cluster.cpus:  # the service knows Slurm is idle
        assert time.monotonic() < deadline, live.site("slurm-east")
        time.sleep(0.1)
    first = live.submit("echo on-slurm")  # while Slurm is up, the nearest site takes it
    assert live.wait(first, ("done", "failed"))["site_id"] == "slurm-east"
    agent = live.agents["slurm-east"]
    agent.signal(signal.SIGSTOP)  # hold the agent while work is placed on its site
    try:
        jids = [live.submit(f"echo moved-{i}") for i in range(2)]
        for j in jids:
            assert live.wait(j, ("placed",))["site_id"] == "slurm-east"
        slurm_cluster.stop_controller()
    finally:
        agent.signal(signal.SIGCONT)
    try:
        site = live.wait_site("slurm-east", "down")
        assert "slurmctld does not answer" in site["engine_message"]
        for i, j in enumerate(jids):
            got = live.wait(j, ("done", "failed"), timeout_s=60)
            assert (got["state"], got["site_id"], got["attempts"]) == ("done", "ray-west", 1), got
            assert f"moved-{i}" in live.logs(j)
        in_ray = ray_jobs(ray_cluster.address)
        assert [in_ray.get(j) for j in jids] == [["SUCCEEDED"], ["SUCCEEDED"]] and first not in in_ray
    finally:
        slurm_cluster.start_controller()
    live.wait_site("slurm-east", "up")
    assert [live.in_engine("slurm-east", j) for j in jids] == [[], []]  # never submitted to Slurm
    assert len(live.in_engine("slurm-east", first)) == 1
