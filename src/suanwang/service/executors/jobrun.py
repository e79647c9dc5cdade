"""The supervisor of one command job: started by the local executor (as the server's user, root on a real host),
it runs the command in a sandbox as an unprivileged user and records the outcome where only the server can read.

    python -I .../suanwang/service/executors/jobrun.py <state dir>

(run as a script, importing only the standard library, so that it starts in a few milliseconds).

It reads `spec.json` from the state directory (written by the server: the command, the job's directory, its uid
and gid, its limits), starts the sandbox (bubblewrap) with stdout and stderr going to `stdout.log` and
`stderr.log` in the state directory, waits, and writes `status.json` (exit code, signal, start and end, CPU
seconds) there. The job never sees the state directory: the server trusts only what this process wrote. SIGTERM
(a cancel) kills the sandbox - its whole pid namespace - and is recorded as such. If this process dies, the sandbox
dies with it (bubblewrap --die-with-parent) and the server reports the job lost.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

GiB = 1 << 30
SANDBOX_ENV_PATH = "/usr/local/bin:/usr/bin:/bin"
ETC_READ_ONLY = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime", "/etc/ssl")


def sandbox_argv(spec: dict, run_fd: int) -> list[str]:
    """bubblewrap's command line: new user, pid, mount, network, IPC and UTS namespaces; read-only /usr and a few
    files of /etc; a private /tmp, /proc and /dev; the job's directory (open as `run_fd`: its parents need not be
    reachable by the job's uid) at /job; a cleared environment."""
    argv = [spec["bwrap"], "--unshare-all", "--die-with-parent", "--new-session"]
    argv += ["--ro-bind", "/usr", "/usr"]
    argv += [x for name in ("bin", "lib", "lib64", "sbin") for x in ("--symlink", f"usr/{name}", f"/{name}")]
    argv += [x for p in ETC_READ_ONLY for x in ("--ro-bind-try", p, p)]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += ["--bind-fd", str(run_fd), "/job", "--chdir", "/job", "--clearenv"]
    env = {"PATH": SANDBOX_ENV_PATH, "HOME": "/job", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    env["SUANWANG_JOB_ID"] = spec["job_id"]
    argv += [x for k, v in env.items() for x in ("--setenv", k, v)]
    return [*argv, "--", "/bin/sh", "-c", spec["command"]]


CPU_GRACE_S = 5  # after the CPU limit a process gets SIGXCPU, this much later SIGKILL


def _limits(spec: dict) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for the job: CPU seconds, bytes of address space, processes, bytes per file, no
    core dumps."""
    lim = spec["limits"]
    return [
        (resource.RLIMIT_CPU, lim["cpu_s"], lim["cpu_s"] + CPU_GRACE_S),
        (resource.RLIMIT_AS, lim["memory_bytes"], lim["memory_bytes"]),
        (resource.RLIMIT_NPROC, lim["processes"], lim["processes"]),
        (resource.RLIMIT_FSIZE, lim["file_bytes"], lim["file_bytes"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]


def _become_the_job(spec: dict) -> None:
    """In the forked child, before exec: own session, the job's limits, then the job's unprivileged uid and gid
    (when this runs as root; otherwise the sandbox runs as the server's own user)."""
    os.setsid()
    for which, soft, hard in _limits(spec):
        resource.setrlimit(which, (soft, hard))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])


def _write_status(state: Path, status: dict) -> None:
    tmp = state / "status.json.tmp"
    tmp.write_text(json.dumps(status))
    tmp.replace(state / "status.json")


def main(state_dir: str) -> int:
    """Run the job of `state_dir` to its end; 0 unless the sandbox could not start."""
    state = Path(state_dir)
    cancelled, proc = False, None

    def cancel(*_):
        nonlocal cancelled
        cancelled = True
        if proc is not None:
            proc.kill()  # the sandbox's pid 1 goes, and with it every process of the job

    signal.signal(signal.SIGTERM, cancel)  # first: a cancel during start-up is recorded too
    spec = json.loads((state / "spec.json").read_text())
    out = os.open(state / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(state / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    run_fd = os.open(spec["run_dir"], os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    started = time.time()
    rc = -signal.SIGKILL
    if not cancelled:
        proc = subprocess.Popen(
            sandbox_argv(spec, run_fd),
            pass_fds=(run_fd,),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env={"PATH": SANDBOX_ENV_PATH},
            cwd="/",
            preexec_fn=lambda: _become_the_job(spec),  # noqa: PLW1509 - this process has one thread
        )
        if cancelled:  # cancelled while it started
            proc.kill()
        rc = proc.wait()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    _write_status(
        state,
        {
            "exit_code": rc if rc >= 0 else 128 - rc,
            "signal": -rc if rc < 0 else None,
            "cancelled": cancelled,
            "started": started,
            "ended": time.time(),
            "cpu_s": usage.ru_utime + usage.ru_stime,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
