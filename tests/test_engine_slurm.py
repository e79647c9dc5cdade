"""The `slurm` executor against a real single-node Slurm cluster, through slurmrestd and through sbatch.

The oracle is Slurm itself, asked through its own CLI (`squeue`, `scontrol`, `sinfo`), never the executor's parsing.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanwang.service.executors import ExecRequest
from suanwang.service.executors.slurm import SlurmDown, SlurmExecutor, SlurmRejected, slurm_name

MODES = ["rest", "sbatch"]


def settings(cluster, mode: str) -> dict:
    """Engine settings as an operator would give them for the test cluster."""
    if mode == "rest":
        base = {"mode": "rest", "rest_url": f"unix:{cluster.rest_socket}", "workdir": str(cluster.workdir("nobody"))}
    else:
        base = {"mode": "sbatch", "slurm_conf": str(cluster.conf), "workdir": str(cluster.workdir("root"))}
    return {**base, "partition": cluster.partition}


@pytest.fixture(params=MODES)
def executor(request, slurm_cluster) -> SlurmExecutor:
    return SlurmExecutor.from_settings(settings(slurm_cluster, request.param))


_seq = iter(range(10**6))


def job(command: str | None, cores: int = 1, cards: int = 0, runtime_h: float = 0.1) -> ExecRequest:
    return ExecRequest(f"job_t{time.time_ns():x}{next(_seq)}", command, cores, cards, runtime_h)


def wait_end(ex: SlurmExecutor, ref: str, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st_ = ex.poll(ref)
        if st_.state != "running":
            return st_
        time.sleep(0.05)
    raise AssertionError(f"{ref} still running after {timeout_s} s: {ex.poll(ref)}")


def wait_state(cluster, slurm_id: str, state: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while cluster.cli("squeue", "-h", "-j", slurm_id, "-o", "%T", check=False).stdout.strip() != state:
        assert time.monotonic() < deadline, f"Slurm job {slurm_id} never became {state}"
        time.sleep(0.05)


def scontrol(cluster, slurm_id: str) -> dict[str, str]:
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", cluster.cli("scontrol", "-o", "show", "job", slurm_id).stdout))


def drain(cluster, timeout_s: float = 15.0) -> None:
    """Wait until the cluster runs nothing (earlier tests' jobs have ended)."""
    deadline = time.monotonic() + timeout_s
    while cluster.cli("squeue", "-h", "-o", "%i").stdout.strip():
        assert time.monotonic() < deadline, "the test cluster did not drain"
        time.sleep(0.05)


def test_echo_job_is_done_with_its_output_as_logs(executor, slurm_cluster):
    req = job("echo hello-$((6*7)) $SUANWANG_JOB_ID; echo to-stderr >&2", cores=slurm_cluster.cpus, runtime_h=2.0)
    ref = executor.submit(req)
    slurm_id = ref.split("@")[0]
    status = wait_end(executor, ref)
    assert (status.state, status.exit_code) == ("done", 0)
    logs = executor.logs(ref)
    assert f"hello-42 {req.job_id}" in logs and "to-stderr" in logs
    f = scontrol(slurm_cluster, slurm_id)  # Slurm's own record of what it was asked
    assert f["JobName"] == slurm_name(req.job_id) and f["JobState"] == "COMPLETED"
    assert f["CPUs/Task"] == str(slurm_cluster.cpus) and f["Partition"] == slurm_cluster.partition
    assert f["TimeLimit"] == "02:35:00"  # 2 h * 1.25 + 5 min
    assert f["WorkDir"].endswith("/" + slurm_name(req.job_id)) and f["StdOut"].endswith("/output.log")


def test_long_job_is_cancelled_and_gone_from_squeue(executor, slurm_cluster):
    ref = executor.submit(job("sleep 600"))
    slurm_id = ref.split("@")[0]
    wait_state(slurm_cluster, slurm_id, "RUNNING")
    assert executor.poll(ref).state == "running"
    executor.cancel(ref)
    assert slurm_cluster.cli("squeue", "-h", "-j", slurm_id, check=False).stdout.strip() == ""
    assert scontrol(slurm_cluster, slurm_id)["JobState"] == "CANCELLED"
    status = executor.poll(ref)
    assert status.state == "failed" and "cancelled" in status.message
    executor.cancel(ref)  # cancelling an ended job is no error


def test_exit_3_is_failed_with_exit_code_3(executor, slurm_cluster):
    ref = executor.submit(job("echo before; exit 3"))
    status = wait_end(executor, ref)
    assert (status.state, status.exit_code) == ("failed", 3)
    assert scontrol(slurm_cluster, ref.split("@")[0])["ExitCode"] == "3:0"
    assert "before" in executor.logs(ref)


@pytest.mark.parametrize(
    ("cores", "cards", "slurm_says"),
    [(None, 0, "More processors requested than permitted"), (1, 1, "Requested node configuration is not available")],
)
def test_job_slurm_refuses_fails_with_slurms_message(executor, slurm_cluster, cores, cards, slurm_says):
    req = job("true", cores=cores or slurm_cluster.cpus + 1, cards=cards)
    with pytest.raises(SlurmRejected, match=slurm_says):
        executor.submit(req)
    adopted = executor.find(req.job_id)  # slurmrestd may have made the job before refusing it: then it is ended
    assert adopted is None or executor.poll(adopted).state == "failed"
    queued = slurm_cluster.cli("squeue", "-h", "-n", slurm_name(req.job_id), "-o", "%i %T").stdout
    assert queued.strip() == ""  # nothing was left pending or running behind the refusal


def test_find_adopts_a_job_already_in_slurm(executor, slurm_cluster, request):
    req = job("sleep 600")
    ref = executor.submit(req)
    mode = request.node.callspec.params["executor"]
    restarted = SlurmExecutor.from_settings(settings(slurm_cluster, mode))  # a fresh agent after a restart
    assert restarted.find(req.job_id) == ref
    assert restarted.find(job("true").job_id) is None  # never submitted
    names = slurm_cluster.cli("squeue", "-h", "-t", "all", "-o", "%j").stdout.split()
    assert names.count(slurm_name(req.job_id)) == 1
    restarted.cancel(ref)
    assert restarted.find(req.job_id) == ref  # ended, still known: adopted, not resubmitted


def test_polls_of_many_jobs_read_one_listing(executor, slurm_cluster):
    calls = {"jobs": 0, "job": 0}
    for name in calls:  # count the real calls to Slurm (they still go through)
        real = getattr(executor.api, name)
        setattr(
            executor.api,
            name,
            lambda *a, _real=real, _name=name: calls.__setitem__(_name, calls[_name] + 1) or _real(*a),
        )
    refs = [executor.submit(job("sleep 600")) for _ in range(3)]
    first = [executor.poll(r) for r in refs]  # one listing; the jobs submitted after it are asked for alone
    assert calls["jobs"] == 1 and calls["job"] <= 3
    before = dict(calls)
    again = [executor.poll(r) for r in refs]
    assert calls == before or calls["jobs"] == before["jobs"] + 1  # a fresh listing at most, never one per job
    assert calls["job"] == before["job"]
    assert all(st_.state == "running" for st_ in first + again)
    for r in refs:
        executor.cancel(r)
        assert executor.poll(r).state == "failed"  # a cancel is seen at once, not after the snapshot's age


def test_capacity_reflects_a_running_job(executor, slurm_cluster):
    drain(slurm_cluster)
    cpus = slurm_cluster.cpus
    before = executor.capacity()
    assert (before.up, before.cpu_total, before.cpu_free, before.gpu_total, before.gpu_free) == (True, cpus, cpus, 0, 0)
    ref = executor.submit(job("sleep 600"))
    wait_state(slurm_cluster, ref.split("@")[0], "RUNNING")
    during = executor.capacity()
    alloc, idle = slurm_cluster.cli("sinfo", "-h", "-p", slurm_cluster.partition, "-o", "%C").stdout.split("/")[:2]
    assert (during.cpu_total, during.cpu_free) == (cpus, cpus - 1) == (cpus, int(idle))
    assert int(alloc) == 1
    executor.cancel(ref)


def test_controller_stopped_says_down_and_errors_are_clear(slurm_cluster):
    executors = [SlurmExecutor.from_settings(settings(slurm_cluster, m)) for m in MODES]
    slurm_cluster.stop_controller()
    try:
        for ex in executors:
            t = time.monotonic()
            cap = ex.capacity()
            assert not cap.up and not cap.reachable and "slurmctld does not answer" in cap.message
            with pytest.raises(SlurmDown, match=r"(?i)slurm|controller"):
                ex.submit(job("true"))
            assert time.monotonic() - t < 20
    finally:
        slurm_cluster.start_controller()
    assert all(ex.capacity().up for ex in executors)


def test_owned_lists_only_live_jobs_of_its_own_tag(executor, slurm_cluster):
    mine, ended = job("sleep 60"), job("true")
    executor.owner = "site-x.0123456789"
    refs = [executor.submit(mine), executor.submit(ended)]
    wait_end(executor, refs[1])
    executor.owner = "site-y.0123456789"
    theirs = executor.submit(job("sleep 60"))
    executor.owner = "site-x.0123456789"
    try:
        owned = executor.owned()
        assert (mine.job_id, refs[0]) in owned and all(j != ended.job_id for j, _ in owned)
        assert theirs not in [r for _, r in owned]
        executor.owner = ""
        assert executor.owned() == []  # no tag: nothing is ever listed
    finally:
        executor.cancel(refs[0])
        executor.cancel(theirs)


def test_partition_down_is_not_up_but_reachable(executor, slurm_cluster):
    part = slurm_cluster.partition
    slurm_cluster.cli("scontrol", "update", f"PartitionName={part}", "State=DOWN")
    try:
        cap = executor.capacity()
        assert not cap.up and cap.reachable and f"partition {part} is not up" in cap.message
    finally:
        slurm_cluster.cli("scontrol", "update", f"PartitionName={part}", "State=UP")
    assert executor.capacity().up


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=80))
def test_job_names_are_safe_and_distinct(job_id, other):
    name = slurm_name(job_id)
    assert re.fullmatch(r"sw-[A-Za-z0-9_-]+", name) and len(name) <= 100
    assert name == slurm_name(job_id)  # deterministic: a restarted agent finds the same Slurm job
    if other != job_id:
        assert slurm_name(other) != name
    assert slurm_name("job_0123456789abcdef0123") == "sw-job_0123456789abcdef0123"  # the service's ids unchanged


def test_job_without_a_command_sleeps_simulated_run_s(slurm_cluster):
    ex = SlurmExecutor.from_settings({**settings(slurm_cluster, "sbatch"), "simulated_run_s": 0.5})
    ref = ex.submit(job(None))
    assert wait_end(ex, ref).state == "done"
    assert scontrol(slurm_cluster, ref.split("@")[0])["JobState"] == "COMPLETED"


def test_settings_errors_name_the_key():
    with pytest.raises(ValueError, match="rest_url"):
        SlurmExecutor.from_settings({"mode": "rest", "workdir": "w"})
    with pytest.raises(ValueError, match="workdir"):
        SlurmExecutor.from_settings({"mode": "sbatch"})
    with pytest.raises(ValueError, match="mode"):
        SlurmExecutor.from_settings({"mode": "k8s", "workdir": "w"})
    with pytest.raises(ValueError, match="partiton"):
        SlurmExecutor.from_settings({"mode": "sbatch", "workdir": "w", "partiton": "x"})
    with pytest.raises(ValueError, match="time_margin"):
        SlurmExecutor.from_settings({"mode": "sbatch", "workdir": "w", "time_margin": "a quarter"})
    with pytest.raises(ValueError, match="environment"):
        SlurmExecutor.from_settings({"mode": "sbatch", "workdir": "w", "environment": "PATH"})
    ex = SlurmExecutor.from_settings({"mode": "sbatch", "workdir": "w", "time_margin": "0.5", "environment": "A=1,B=x"})
    assert (ex.time_limit_min(1.0), ex.environment) == (95, {"A": "1", "B": "x"})
