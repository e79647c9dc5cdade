"""Tenant commands are isolated (`--allow-commands`): each attack a hostile tenant tried is made by a real job, in
the bubblewrap sandbox of the local executor, and fails - reading the admin token from the server's environment
or command line, reading another tenant's job directory, rewriting a pid file so that cancel signals another
process, writing an exit code so that a running job shows done. Limits from the request hold (CPU, memory,
processes, file size)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_service_durability import SERVE, free_port
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import JOB, World, build_world, make_service

from suanwang.service.executors import ExecRequest, LocalExecutor
from suanwang.service.executors.local import job_uid

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap: make sandbox"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux namespaces"),
]
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="job uids of their own need a root server")
SECRET = "sw_the-admin-token-no-job-may-read"


@pytest.fixture
def cw(tmp_path, job_workdir):
    """A world whose local executor runs commands, on SQLite."""
    svc = make_service(f"sqlite:///{tmp_path / 'sandbox.db'}", tmp_path, allow_commands=True, workdir=job_workdir)
    w = build_world(svc)
    with w.client:
        yield w
    svc.close()


def _run(w: World, who: dict, command: str, **extra) -> str:
    r = w.client.post("/api/v1/jobs", json=dict(JOB, command=command, **extra), headers=who)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _wait(w: World, who: dict, jid: str, states: set[str], timeout_s: float = 20) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        w.tick()
        job = w.client.get(f"/api/v1/jobs/{jid}", headers=who).json()
        if job["state"] in states or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _logs(w: World, who: dict, jid: str) -> str:
    return w.client.get(f"/api/v1/jobs/{jid}/logs", headers=who).json()["logs"]


def _appears(path: Path, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _uid_processes(uid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and f"Uid:\t{uid}\t" in (d / "status").read_text():
                out.append(int(d.name))
        except OSError:
            continue
    return out


def test_a_job_cannot_read_the_admin_token_from_the_servers_environment_or_command_line(tmp_path, job_workdir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", SERVE, "serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--port", str(port)]
    cmd += ["--admin-token", SECRET, "--allow-commands", "--workdir", str(job_workdir)]
    env = dict(os.environ, SUANWANG_ADMIN_TOKEN=SECRET, SUANWANG_LOOP_INTERVAL_S="0.05")
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    admin = {"Authorization": f"Bearer {SECRET}"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None, "server did not start"
                time.sleep(0.1)
        httpx.post(base + "/api/v1/tenants", json={"name": "acme"}, headers=admin).raise_for_status()
        token = httpx.post(base + "/api/v1/tokens", json={"role": "tenant", "tenant": "acme"}, headers=admin)
        acme = {"Authorization": f"Bearer {token.json()['token']}"}
        snoop = (
            f"cat /proc/{server.pid}/cmdline /proc/{server.pid}/environ; "
            "for p in /proc/[0-9]*; do cat $p/cmdline $p/environ; echo; done; env; "
            f"cat {tmp_path / 's.db'}; ls -R {job_workdir}; cat /proc/1/environ; echo snooped-as-$(id -u)"
        )
        jid = httpx.post(base + "/api/v1/jobs", json=dict(JOB, command=snoop), headers=acme).json()["id"]
        deadline = time.monotonic() + 20
        while (job := httpx.get(f"{base}/api/v1/jobs/{jid}", headers=acme).json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        logs = httpx.get(f"{base}/api/v1/jobs/{jid}/logs", headers=acme).json()["logs"]
        assert "snooped-as-" in logs and f"SUANWANG_JOB_ID={jid}" in logs  # the job did run its snooping
        assert SECRET not in logs
        assert "snooped-as-0\n" not in logs  # not root
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_a_job_cannot_read_another_tenants_job_directory(cw: World, job_workdir):
    a = _run(cw, cw.acme, "echo acme-secret > /job/secret.txt; sleep 30")
    assert _wait(cw, cw.acme, a, {"running"})["state"] == "running"
    host = job_workdir / "run" / a
    _appears(host / "secret.txt")
    assert (host.stat().st_mode & 0o777) == 0o700 and host.stat().st_uid == (job_uid(a) if os.geteuid() == 0 else 0)
    steal = (
        f"cat {host}/secret.txt; cat /job/../{a}/secret.txt; ls {job_workdir}/run {job_workdir}/state; "
        "find / -path /usr -prune -o -path /proc -prune -o -name secret.txt -exec cat {} + 2>/dev/null; echo looked"
    )
    b = _run(cw, cw.beta, steal)
    assert _wait(cw, cw.beta, b, {"done", "failed"})["state"] in ("done", "failed")
    logs = _logs(cw, cw.beta, b)
    assert "looked" in logs and "acme-secret" not in logs
    if os.geteuid() == 0:  # outside any sandbox too, beta's uid may not enter acme's directory
        peek = subprocess.run(
            [
                "setpriv",
                f"--reuid={job_uid(b)}",
                f"--regid={job_uid(b)}",
                "--clear-groups",
                "cat",
                f"{host}/secret.txt",
            ],
            capture_output=True,
        )
        assert peek.returncode != 0 and b"acme-secret" not in peek.stdout
    cw.client.post(f"/api/v1/jobs/{a}/cancel", headers=cw.acme)


def test_a_rewritten_pid_file_does_not_redirect_cancel(cw: World, job_workdir):
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)  # what a hostile job would aim at
    try:
        forge = "; ".join(f"echo {bystander.pid} > {f}" for f in ("/job/pid", "/job/supervisor.pid", "pid"))
        a = _run(cw, cw.acme, f"{forge}; sleep 60")
        assert _wait(cw, cw.acme, a, {"running"})["state"] == "running"
        _appears(job_workdir / "run" / a / "supervisor.pid")  # the forgeries are written
        assert (job_workdir / "run" / a / "pid").read_text().strip() == str(bystander.pid)
        r = cw.client.post(f"/api/v1/jobs/{a}/cancel", headers=cw.acme)
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        time.sleep(0.5)
        assert bystander.poll() is None, "cancel signalled a process the job named"
        if os.geteuid() == 0:
            deadline = time.monotonic() + 5
            while _uid_processes(job_uid(a)):
                assert time.monotonic() < deadline, "a process of the cancelled job lived on"
                time.sleep(0.05)
    finally:
        bystander.kill()
        bystander.wait()


def test_a_job_cannot_write_its_own_exit_code(cw: World, job_workdir):
    forge = "; ".join(f"echo 0 > {f}" for f in ("/job/exit_code", "exit_code", "/job/status.json"))
    a = _run(cw, cw.acme, f"{forge}; sleep 60")
    assert _wait(cw, cw.acme, a, {"running"})["state"] == "running"
    _appears(job_workdir / "run" / a / "status.json")  # it did write where it could
    job = _wait(cw, cw.acme, a, {"done", "failed"}, timeout_s=1.5)
    assert job["state"] == "running" and job["exit_code"] is None
    cw.client.post(f"/api/v1/jobs/{a}/cancel", headers=cw.acme)


@root_only
def test_the_limits_of_the_request_hold(cw: World, job_workdir):
    cpu = _run(cw, cw.acme, "while :; do :; done", runtime_h=1 / 3600, cpu_cores=1)  # 1 CPU second
    mem = _run(cw, cw.acme, "python3 -c 'b = bytearray(1_000_000_000)'", mem_gb=0.25)
    big = _run(cw, cw.acme, "head -c 10000000 /dev/zero > /job/big; echo rc=$?", output_gb=0.001)
    fork = _run(cw, cw.acme, "i=0; while [ $i -lt 400 ]; do sleep 30 & i=$((i+1)); done")
    ended = {j: _wait(cw, cw.acme, j, {"done", "failed"}) for j in (cpu, mem, big, fork)}
    assert ended[cpu]["state"] == "failed" and "SIGXCPU" in ended[cpu]["reason"]
    assert ended[mem]["state"] == "failed" and "MemoryError" in _logs(cw, cw.acme, mem)
    assert "rc=153" in _logs(cw, cw.acme, big)  # 128 + SIGXFSZ
    assert (job_workdir / "run" / big / "big").stat().st_size <= 0.001 * 2**30
    assert ended[fork]["state"] == "failed" and "Cannot fork" in _logs(cw, cw.acme, fork)


def test_a_restarted_server_cancels_through_the_supervisor_and_reports_a_lost_one(job_workdir):
    first = LocalExecutor(job_workdir, allow_commands=True)
    ref = first.submit(ExecRequest("job_r", "sleep 60", 1, 0, 1.0))
    gone = first.submit(ExecRequest("job_g", "sleep 60", 1, 0, 1.0))
    for r in (ref, gone):  # the supervisors are up (a cancel before this would not be recorded)
        _appears(job_workdir / "state" / r / "stdout.log")
    again = LocalExecutor(job_workdir, allow_commands=True)  # a restarted server: nothing in memory
    assert again.poll(ref).state == "running", again.poll(ref)
    assert again.poll(gone).state == "running", again.poll(gone)
    again.cancel(ref)  # signals the supervisor the first server started, found by the server's own pid file
    deadline = time.monotonic() + 10
    while (st := again.poll(ref)).state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert st.state == "failed" and "SIGKILL" in st.message
    first._procs[gone].kill()  # its supervisor dies without writing an outcome (the sandbox dies with it)
    first._procs[gone].wait()
    st = again.poll(gone)
    assert st.state == "failed" and st.message.startswith("lost")


def test_a_workdir_others_could_tamper_with_refuses_commands(job_workdir):
    shared = job_workdir / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could swap its state folder for one holding a forged status.json
    ex = LocalExecutor(shared, allow_commands=True)
    ref = ex.submit(ExecRequest("job_w", "echo hi", 1, 0, 1.0))
    st = ex.poll(ref)
    assert st.state == "failed" and "not writable by group or others" in st.message
    assert not (shared / "run" / "job_w").exists()
