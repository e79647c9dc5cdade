"""Slurm end to end: jobs submitted through the API run on real Slurm clusters through `suanwang agent` processes.

Two sites bound to engine `slurm` in two provinces: "east" in Henan (next to the jobs' origin, Xuchang) on the
session's cluster through slurmrestd, "west" in Guizhou on a second cluster of its own through sbatch. The platform
(engines/platform.py) is a real `suanwang serve` with one agent process per site, which the tests kill, pause and
restart; the atlas's own sites are down, so only these two take work. The oracle for what ran is Slurm's own
record (`squeue -t all`) and the jobs' output files.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from engines.platform import Platform, wait_for
from engines.slurm_cluster import ClusterError, SlurmCluster

from suanwang.service.executors.base import ExecRequest
from suanwang.service.executors.slurm import SlurmExecutor, slurm_name

pytestmark = pytest.mark.xdist_group("slurm-e2e")  # one platform: every test here on one worker

EAST = {"province_id": "henan", "lat": 34.035771, "lon": 113.852454}  # at the jobs' origin, Xuchang
WEST = {"province_id": "guizhou", "lat": 26.4, "lon": 106.4}
AGENT_LOST_S = 20.0  # an agent silent this long has its running jobs retried elsewhere (above the 15 s timeout)


# session-scoped: an xdist worker may run other modules' tests between these, and a module-scoped platform would
# then be built again (about 30 s here)
@pytest.fixture(scope="session")
def west_cluster() -> Iterator[SlurmCluster]:
    """A second Slurm cluster on this host (its own controller, ports and folders)."""
    cluster = SlurmCluster(name="swwest")
    try:
        cluster.start()
    except ClusterError as e:
        pytest.fail(str(e), pytrace=False)
    yield cluster
    cluster.stop()


class Live:
    """The platform with a Slurm site "east" (slurmrestd) and "west" (sbatch), and Slurm's own view of both."""

    def __init__(self, p: Platform, clusters: dict[str, SlurmCluster]):
        self.p, self.clusters = p, clusters
        self.workdirs = {"east": clusters["east"].workdir("nobody"), "west": clusters["west"].workdir("root")}
        settings = {
            "east": {"mode": "rest", "rest_url": f"unix:{clusters['east'].rest_socket}"},
            "west": {"mode": "sbatch", "slurm_conf": str(clusters["west"].conf)},
        }
        for sid, where in (("east", EAST), ("west", WEST)):
            engine = {**settings[sid], "workdir": str(self.workdirs[sid]), "partition": clusters[sid].partition}
            p.add_site({"id": sid, "name_zh": sid, "name_en": sid, **where, "pue": 1.2, "cpu_cores": 64,
                        "engine": "slurm", "allow_commands": True, "engine_settings": engine})  # fmt: skip
        for sid in ("east", "west"):  # the agents' first heartbeats carry what Slurm has
            wait_for(lambda sid=sid: self.p.site(sid)["cpu_free"] == clusters[sid].cpus, f"{sid}'s capacity")

    def wait(self, jid: str, *states: str) -> dict:
        return self.p.wait_state(jid, *states)

    def wait_site(self, sid: str, status: str) -> dict:
        return wait_for(lambda: (s := self.p.site(sid))["status"] == status and s, f"site {sid} to be {status}")

    def in_engine(self, sid: str, jid: str) -> list[str]:
        """Slurm's own record of the job on the site's cluster: one 'id state' line per Slurm job of its name."""
        out = self.clusters[sid].cli("squeue", "-h", "-t", "all", "-n", slurm_name(jid), "-o", "%i %T").stdout
        return out.splitlines()

    def states(self, sid: str, jid: str) -> list[str]:
        return [line.split()[1] for line in self.in_engine(sid, jid)]

    def idle(self, sid: str) -> None:
        """Wait until the site's cluster runs nothing and the service has heard so from the agent."""
        cluster = self.clusters[sid]
        wait_for(lambda: not cluster.cli("squeue", "-h", "-o", "%i").stdout.strip(), f"{sid}'s cluster to drain")
        wait_for(lambda: self.p.site(sid)["cpu_free"] == cluster.cpus, f"the service to see {sid} idle")


@pytest.fixture(scope="session")
def live(tmp_path_factory, slurm_cluster, west_cluster) -> Iterator[Live]:
    p = Platform(tmp_path_factory.mktemp("slurm-e2e"), agent_lost_s=AGENT_LOST_S)
    try:
        p.only_engine_sites()
        yield Live(p, {"east": slurm_cluster, "west": west_cluster})
    finally:
        p.close()


def test_job_runs_on_slurm_and_its_output_comes_back_as_logs(live: Live):
    jid = live.p.submit("echo hello-$((6*7)) from $SUANWANG_JOB_ID")
    got = live.wait(jid, "done", "failed")
    assert (got["state"], got["exit_code"], got["site_id"]) == ("done", 0, "east")
    assert f"hello-42 from {jid}" in live.p.logs(jid)
    assert live.states("east", jid) == ["COMPLETED"]
    assert live.in_engine("west", jid) == []


def test_long_job_is_cancelled_and_gone_from_squeue(live: Live):
    jid = live.p.submit("sleep 600")
    live.wait(jid, "running")
    wait_for(lambda: live.states("east", jid) == ["RUNNING"], "Slurm to run it")
    assert live.p.call("POST", f"/api/v1/jobs/{jid}/cancel", headers=live.p.tenant)["state"] == "cancelled"
    wait_for(lambda: "stopped in the slurm engine" in live.p.job(jid)["reason"], "the agent to confirm the stop")
    east = live.clusters["east"]
    assert east.cli("squeue", "-h", "-n", slurm_name(jid), "-o", "%i").stdout.strip() == ""  # gone from squeue
    assert live.states("east", jid) == ["CANCELLED"]


def test_exit_3_is_failed_with_exit_code_3(live: Live):
    jid = live.p.submit("echo trying; exit 3")
    got = live.wait(jid, "done", "failed")
    assert (got["state"], got["exit_code"]) == ("failed", 3)
    assert got["attempts"] == 0  # the job's own failure is not retried
    assert "trying" in live.p.logs(jid)


def test_agent_killed_and_restarted_runs_every_job_exactly_once(live: Live):
    jids = [live.p.submit(f"sleep 0.5; echo ran {i}") for i in range(6)]
    deadline = time.monotonic() + 30
    while sum(bool(live.in_engine("east", j)) for j in jids) < 2:  # mid-stream: some are in Slurm, not all
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live.p.kill_agent("east")
    time.sleep(1.0)  # Slurm keeps running what it has; the service still has the rest placed or queued
    live.p.start_agent("east")
    for j in jids:
        assert live.wait(j, "done", "failed")["state"] == "done"
    for i, j in enumerate(jids):  # Slurm's record and the output files: one run each, in one engine only
        runs = live.in_engine("east", j) + live.in_engine("west", j)
        assert len(runs) == 1, (j, runs)
        site = "east" if live.in_engine("east", j) else "west"
        output = (live.workdirs[site] / slurm_name(j) / "output.log").read_text()
        assert output.splitlines() == [f"ran {i}"]


def test_slurmctld_stopped_takes_the_site_down_and_placed_work_moves_west(live: Live):
    east = live.clusters["east"]
    live.idle("east")  # nothing running in east: only placed work moves
    agent = live.p.agents["east"]
    agent.send_signal(signal.SIGSTOP)  # the agent holds still while work is placed on its site
    try:
        jids = [live.p.submit(f"echo moved {i}") for i in range(2)]
        for j in jids:
            assert live.wait(j, "placed")["site_id"] == "east"
        east.stop_controller()
    finally:
        agent.send_signal(signal.SIGCONT)
    try:
        site = live.wait_site("east", "down")
        assert "slurmctld does not answer" in site["engine_message"]
        for j in jids:  # re-placed within a scheduling cycle, run by the west cluster
            got = live.wait(j, "done", "failed")
            assert (got["state"], got["site_id"], got["attempts"]) == ("done", "west", 1)
            assert len(live.in_engine("west", j)) == 1
    finally:
        east.start_controller()
    live.wait_site("east", "up")
    assert all(live.in_engine("east", j) == [] for j in jids)  # never submitted in east


def test_running_job_survives_a_slurmctld_outage_and_is_done_exactly_once(live: Live):
    east = live.clusters["east"]
    live.idle("east")
    jid = live.p.submit("sleep 8; echo survived")
    assert live.wait(jid, "running")["site_id"] == "east"
    wait_for(lambda: live.states("east", jid) == ["RUNNING"], "Slurm to run it")
    east.stop_controller()  # slurmd goes on running the job; the controller does not answer
    try:
        site = live.wait_site("east", "down")
        assert "slurmctld does not answer" in site["engine_message"]
        time.sleep(2.0)  # several heartbeats with the engine unreachable
        got = live.p.job(jid)  # not lost, not retried: the engine may (and does) still run it
        assert (got["state"], got["site_id"], got["attempts"]) == ("running", "east", 0), got
    finally:
        east.start_controller()
    live.wait_site("east", "up")
    got = live.wait(jid, "done", "failed")
    assert (got["state"], got["site_id"], got["attempts"], got["exit_code"]) == ("done", "east", 0, 0), got
    assert live.states("east", jid) == ["COMPLETED"] and live.in_engine("west", jid) == []  # Slurm's record: one run
    assert (live.workdirs["east"] / slurm_name(jid) / "output.log").read_text().splitlines() == ["survived"]
    assert [e["action"] for e in live.p.audit(jid)].count("start") == 1
    assert not {"fail", "requeue", "retry"} & {e["action"] for e in live.p.audit(jid)}


def test_orphans_of_the_sites_tag_are_cancelled_and_no_other_job_is_touched(live: Live):
    east = live.clusters["east"]
    live.idle("east")
    settings = {"mode": "rest", "rest_url": f"unix:{east.rest_socket}", "workdir": str(live.workdirs["east"])}

    def submit_as(owner: str, job_id: str) -> str:  # the agent's own executor code, under a given tag
        ex = SlurmExecutor.from_settings(settings)
        ex.owner = owner
        return ex.submit(ExecRequest(job_id, "sleep 60", 1, 0, 0.1)).split("@")[0]

    tag = live.p.agent_config("east")["engine_owner"]
    orphan = submit_as(tag, "job_0000000000000000000a")  # the site's tag, a job the service never had
    other_site = submit_as("east.0123456789", "job_0000000000000000000b")  # another service's site "east"
    untagged = submit_as("", "job_0000000000000000000c")  # same name scheme, no tag (an older agent, or by hand)
    by_hand = east.cli("sbatch", "--parsable", "--job-name=sw-job_0000000000000000000d", "--wrap", "sleep 60")
    by_hand = by_hand.stdout.strip()
    placed_jobs = [orphan, other_site, untagged, by_hand]
    try:
        state = lambda i: east.cli("squeue", "-h", "-t", "all", "-j", i, "-o", "%T").stdout.strip()  # noqa: E731
        wait_for(lambda: state(orphan) == "CANCELLED", "the agent to cancel the orphan")
        time.sleep(2.0)  # more sweeps (every second here)
        assert [state(i) in ("PENDING", "RUNNING") for i in (other_site, untagged, by_hand)] == [True] * 3
        events = wait_for(lambda: live.p.audit("job_0000000000000000000a"), "the agent to report what it cancelled")
        assert [(e["action"], e["detail"]["ref"]) for e in events] == [
            ("orphan_cancel", f"{orphan}@sw-job_0000000000000000000a")
        ]
        assert events[0]["detail"]["why"] == "unknown to the service"
    finally:
        east.cli("scancel", *placed_jobs, check=False)


def test_a_run_retried_elsewhere_is_cancelled_in_its_first_engine_when_the_agent_returns(live: Live):
    live.idle("east")
    jid = live.p.submit("sleep 45; echo ran")
    assert live.wait(jid, "running")["site_id"] == "east"
    wait_for(lambda: live.states("east", jid) == ["RUNNING"], "Slurm to run it")
    agent = live.p.agents["east"]
    agent.send_signal(signal.SIGSTOP)  # the agent is silent past agent_lost_s: its run is failed as lost
    try:
        got = wait_for(lambda: (j := live.p.job(jid))["site_id"] == "west" and j, "the retry to run west", 90)
        assert got["attempts"] == 1
        wait_for(lambda: live.states("west", jid) == ["RUNNING"], "the west cluster to run the retry")
        assert live.states("east", jid) == ["RUNNING"]  # the first copy still runs: an orphan now
    finally:
        agent.send_signal(signal.SIGCONT)
    wait_for(lambda: live.states("east", jid) == ["CANCELLED"], "the returning agent to cancel its orphan")
    swept = lambda: [e for e in live.p.audit(jid) if e["action"] == "orphan_cancel"]  # noqa: E731
    sweep = wait_for(swept, "the agent to report the orphan it cancelled")  # with its next claim
    assert [(e["detail"]["site_id"], e["detail"]["why"]) for e in sweep] == [("east", "running on site west")]
    assert live.states("west", jid) == ["RUNNING"]  # the retry is the service's run: untouched
    live.p.call("POST", f"/api/v1/jobs/{jid}/cancel", headers=live.p.tenant)
    wait_for(lambda: live.states("west", jid) == ["CANCELLED"], "the west agent to stop the cancelled retry")


def test_two_provinces_residency_holds_in_the_engines(live: Live):
    # sensitive data of Guizhou must stay in Guizhou even though Henan is next to the origin
    held = live.p.submit("echo guizhou data", data_class="sensitive", data_province="guizhou")
    near = live.p.submit("echo henan data", data_class="sensitive", data_province="henan")
    for jid, site, other in ((held, "west", "east"), (near, "east", "west")):
        got = live.wait(jid, "done", "failed")
        assert (got["state"], got["site_id"]) == ("done", site)
        assert len(live.in_engine(site, jid)) == 1 and live.in_engine(other, jid) == []
