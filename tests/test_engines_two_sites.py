"""Two sites on two engines in two provinces, end to end: a Slurm site in Henan ("east", through slurmrestd) and a
Ray site in Ningxia ("west"), each with its real agent, under a real `suanwang serve` whose embedded sites are all
down. The scheduler's choice and the residency rules are checked in the engines themselves (the Slurm job's own
output file, Ray's Jobs API); when slurmctld stops, new work goes to the Ray site."""

from __future__ import annotations

import os
import signal

import pytest
from engines.platform import Platform, wait_for

from suanwang.service.executors.ray import submission_id
from suanwang.service.executors.slurm import slurm_name

pytestmark = pytest.mark.xdist_group("ray")  # shares the session's Ray head with test_engine_ray.py

EAST, WEST = "east-slurm", "west-ray"


@pytest.fixture(scope="module")
def two(ray_cluster, slurm_cluster, tmp_path_factory):
    p = Platform(tmp_path_factory.mktemp("twosites"))
    p.only_engine_sites()
    workdir = slurm_cluster.workdir("nobody")  # slurmrestd (rest_auth/local) runs jobs as its own user
    east = {
        "id": EAST, "name_zh": "许昌 Slurm", "name_en": "Xuchang Slurm", "province_id": "henan", "lat": 34.035771,
        "lon": 113.852454, "pue": 1.25, "cpu_cores": 64, "engine": "slurm", "allow_commands": True,
        "engine_settings": {"mode": "rest", "rest_url": f"unix:{slurm_cluster.rest_socket}", "workdir": str(workdir),
                            "partition": slurm_cluster.partition},
    }  # fmt: skip
    west = {
        "id": WEST, "name_zh": "中卫 Ray", "name_en": "Zhongwei Ray", "province_id": "ningxia", "lat": 37.499972,
        "lon": 105.196902, "pue": 1.15, "cpu_cores": 64, "engine": "ray", "allow_commands": True,
        "engine_settings": {"address": ray_cluster.address},
    }  # fmt: skip
    p.add_site(east)
    p.add_site(west, ray_cluster.env)
    p.slurm, p.ray, p.workdir = slurm_cluster, ray_cluster, workdir
    yield p
    p.close()


@pytest.fixture
def live(two):
    if two.ray.proc is None:
        two.ray.start()
    for sid in (EAST, WEST):
        two.ensure_agent(sid)
        wait_for(lambda sid=sid: (s := two.site(sid))["status"] == "up" and s["engine_capacity"], f"{sid}'s report")
    return two


def in_slurm(p: Platform, jid: str) -> str:
    """What the job's command wrote, read from the Slurm job's own output file."""
    out = p.workdir / slurm_name(jid) / "output.log"
    return out.read_text() if out.exists() else ""


def in_ray(p: Platform, jid: str) -> str:
    """The status Ray's own Jobs API gives for the job."""
    from ray.job_submission import JobSubmissionClient

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    return str(JobSubmissionClient(p.ray.address).get_job_status(submission_id(jid)))


def test_the_choice_and_residency_are_visible_in_the_engines(live: Platform):
    # the session's Slurm cluster is shared with other tests: start once it is idle and the service knows it
    wait_for(lambda: not live.slurm.cli("squeue", "-h", "-o", "%i").stdout.strip(), "Slurm to drain")
    wait_for(lambda: live.site(EAST)["cpu_free"] == live.slurm.cpus, "the service to see the Slurm site idle")
    east = live.submit("echo ran-east", origin="许昌")  # nearest: the Henan Slurm site
    west = live.submit("echo ran-west", origin="中卫")  # nearest: the Ningxia Ray site
    # sensitive data of Henan stays in Henan (rule R2), although its users are next to the Ray site
    kept = live.submit("echo ran-kept", origin="中卫", data_class="sensitive", data_province="henan")
    for jid in (east, west, kept):
        assert live.wait_state(jid, "done", "failed")["state"] == "done", live.job(jid)
    assert (live.job(east)["site_id"], live.job(west)["site_id"], live.job(kept)["site_id"]) == (EAST, WEST, EAST)
    assert "ran-east" in in_slurm(live, east) and "ran-kept" in in_slurm(live, kept)
    assert in_slurm(live, west) == ""
    assert in_ray(live, west).endswith("SUCCEEDED")
    assert "ran-west" in live.logs(west) and "ran-kept" in live.logs(kept)
    verdicts = live.call("GET", f"/api/v1/jobs/{kept}/placement", headers=live.tenant)["verdicts"]
    assert next(v for v in verdicts if v["site_id"] == WEST)["reason"].startswith("residency")


def test_slurmctld_stopped_the_east_site_is_down_and_new_work_runs_on_ray(live: Platform):
    live.slurm.stop_controller()
    try:
        wait_for(lambda: live.site(EAST)["status"] == "down", "the Slurm site to be down")
        jid = live.submit("echo went-west", origin="许昌")
        got = live.wait_state(jid, "done", "failed")
        assert (got["state"], got["site_id"]) == ("done", WEST), got
        assert in_ray(live, jid).endswith("SUCCEEDED") and in_slurm(live, jid) == ""
    finally:
        live.slurm.start_controller()
    wait_for(lambda: live.site(EAST)["status"] == "up", "the Slurm site to come back up")


def test_slurmctld_stopped_work_placed_there_is_placed_again_on_ray(live: Platform):
    """Work already placed on the Slurm site (not yet started) when slurmctld stops runs on the Ray site."""
    slurm = live.slurm
    wait_for(lambda: not slurm.cli("squeue", "-h", "-o", "%i").stdout.strip(), "Slurm to drain")
    wait_for(lambda: live.site(EAST)["cpu_free"] == slurm.cpus, "the service to see the Slurm site idle")
    live.agents[EAST].send_signal(signal.SIGSTOP)  # the agent holds still while work is placed on its site
    try:
        jids = [live.submit(f"echo moved-{i}", origin="许昌") for i in range(2)]
        for j in jids:
            assert live.wait_state(j, "placed")["site_id"] == EAST
        slurm.stop_controller()
    finally:
        live.agents[EAST].send_signal(signal.SIGCONT)
    try:
        wait_for(lambda: live.site(EAST)["status"] == "down", "the Slurm site to be down")
        assert "slurmctld does not answer" in live.site(EAST)["engine_message"]
        for i, j in enumerate(jids):
            got = live.wait_state(j, "done", "failed")
            assert (got["state"], got["site_id"], got["attempts"]) == ("done", WEST, 1), got
            assert in_ray(live, j).endswith("SUCCEEDED") and f"moved-{i}" in live.logs(j)
    finally:
        slurm.start_controller()
    wait_for(lambda: live.site(EAST)["status"] == "up", "the Slurm site to come back up")
    names = [slurm.cli("squeue", "-h", "-t", "all", "-n", slurm_name(j), "-o", "%i").stdout.strip() for j in jids]
    assert names == ["", ""]  # never submitted to Slurm
