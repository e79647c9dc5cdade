"""Slurm end to end: jobs submitted through the API run on real Slurm clusters through `suanwang agent` processes.

Two sites bound to engine `slurm` in two provinces: "east" in Henan (next to the jobs' origin, Xuchang) on the
session's cluster through slurmrestd, "west" in Guizhou on a second cluster of its own through sbatch. The platform
(engines/platform.py) is the real service on a loopback port with one agent process per site, which the tests kill
and restart. The oracle for what ran is Slurm's own record (`squeue -t all`) and the jobs' output files.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from engines.platform import EngineSite, Live, platform
from engines.slurm_cluster import ClusterError, SlurmCluster

from suanwang.service.executors.slurm import slurm_name

pytestmark = pytest.mark.xdist_group("slurm-e2e")  # one platform for the module: every test here on one worker

EAST = ("henan", 34.035771, 113.852454)  # at the origin
WEST = ("guizhou", 26.4, 106.4)


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
    east_dir, west_dir = slurm_cluster.workdir("nobody"), west_cluster.workdir("root")
    sites = [
        EngineSite("east", *EAST, "slurm", {"mode": "rest", "rest_url": f"unix:{slurm_cluster.rest_socket}",
                                             "workdir": str(east_dir), "partition": slurm_cluster.partition}),
        EngineSite("west", *WEST, "slurm", {"mode": "sbatch", "slurm_conf": str(west_cluster.conf),
                                             "workdir": str(west_dir), "partition": west_cluster.partition}),
    ]  # fmt: skip
    with platform(tmp_path_factory.mktemp("slurm-e2e"), sites, {"east": slurm_cluster, "west": west_cluster}) as w:
        yield w


def test_job_runs_on_slurm_and_its_output_comes_back_as_logs(live: Live):
    jid = live.submit("echo hello-$((6*7)) from $SUANWANG_JOB_ID")
    got = live.wait(jid, ("done", "failed"))
    assert (got["state"], got["exit_code"], got["site_id"]) == ("done", 0, "east")
    assert f"hello-42 from {jid}" in live.logs(jid)
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
    assert "trying" in live.logs(jid)


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
    live.drain("east")  # nothing running in east: only placed work moves
    deadline = time.monotonic() + 15
    while live.site("east")["cpu_free"] < east.cpus:  # and the service has heard that from the agent
        assert time.monotonic() < deadline, live.site("east")
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
