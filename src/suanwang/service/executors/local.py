"""The `local` executor: runs a job's command as a subprocess of this host, in a working directory per job.

Layout of `<workdir>/<job id>/`: stdout.log, stderr.log, pid, exit_code (written by the wrapper shell when the
command ends, so a restarted service still learns the outcome). A job without a command (or any job while commands
are not allowed) does no work and is "running" for `simulated_run_s` seconds of wall time, then done: its reference
carries its start time (`sim@<unix s>@<job id>`), so it touches no file - creating a directory and a file cost
about 0.9 ms per job here, more than placing it - and any replica can poll it after a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from suanwang.service.executors.base import ExecRequest, ExecStatus, Executor

WRAPPER = 'sh -c "$SUANWANG_COMMAND" >stdout.log 2>stderr.log; echo $? > exit_code.tmp; mv exit_code.tmp exit_code'
SIMULATED = "sim@"  # prefix of a simulated run's reference


class LocalExecutor(Executor):
    """Subprocesses on this host; the reference is the job id (its working directory's name), or a simulated run's
    `sim@<start>@<job id>`."""

    name = "local"

    def __init__(self, workdir: Path, simulated_run_s: float = 1.0, allow_commands: bool = False):
        self.workdir = Path(workdir)
        self.simulated_run_s = simulated_run_s
        self.allow_commands = allow_commands
        self._procs: dict[str, subprocess.Popen] = {}

    def _dir(self, ref: str) -> Path:
        d = self.workdir / ref
        if d.parent != self.workdir:
            raise ValueError(f"bad executor reference {ref!r}")
        return d

    def submit(self, request: ExecRequest) -> str:
        """Start the command in a fresh working directory (the ref is the job id), or a simulated run (the ref
        carries its start time)."""
        if request.command is None or not self.allow_commands:
            return f"{SIMULATED}{time.time()!r}@{request.job_id}"
        d = self._dir(request.job_id)
        d.mkdir(parents=True, exist_ok=True)
        for stale in ("exit_code", "simulated", "pid"):
            (d / stale).unlink(missing_ok=True)
        env = dict(os.environ, SUANWANG_COMMAND=request.command, SUANWANG_JOB_ID=request.job_id)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", WRAPPER], cwd=d, env=env, start_new_session=True, stdin=subprocess.DEVNULL
        )
        (d / "pid").write_text(str(proc.pid))
        self._procs[request.job_id] = proc
        return request.job_id

    def poll(self, ref: str) -> ExecStatus:
        """Running until the exit code file appears (or the simulated time has passed)."""
        if ref.startswith(SIMULATED):
            return self._simulated(float(ref[len(SIMULATED) :].partition("@")[0]))
        d = self._dir(ref)
        sim = d / "simulated"  # a simulated run started before references carried the start time
        if sim.exists():
            return self._simulated(float(sim.read_text() or 0))
        proc = self._procs.get(ref)
        if proc is not None and proc.poll() is not None:
            self._procs.pop(ref, None)
        exit_file = d / "exit_code"
        if exit_file.exists():
            code = int(exit_file.read_text().strip() or -1)
            return ExecStatus("done" if code == 0 else "failed", code, f"exit code {code}")
        if proc is not None or _alive(d / "pid"):
            return ExecStatus("running")
        return ExecStatus("failed", None, "process lost (host restarted?)")

    def _simulated(self, started: float) -> ExecStatus:
        """A simulated run started at `started` (unix s): done once `simulated_run_s` have passed."""
        done = time.time() - started >= self.simulated_run_s
        return ExecStatus("done", 0, "simulated run") if done else ExecStatus("running")

    def cancel(self, ref: str) -> None:
        """Terminate the job's process group; a simulated run just ends."""
        if ref.startswith(SIMULATED):
            return
        d = self._dir(ref)
        (d / "simulated").unlink(missing_ok=True)
        pid_file = d / "pid"
        if pid_file.exists():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        proc = self._procs.pop(ref, None)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def logs(self, ref: str) -> str:
        """stdout.log followed by stderr.log (nothing for a simulated run)."""
        if ref.startswith(SIMULATED):
            return ""
        d = self._dir(ref)
        parts = [(d / f).read_text(errors="replace") for f in ("stdout.log", "stderr.log") if (d / f).exists()]
        return "".join(parts)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True
