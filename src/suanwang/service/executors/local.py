"""The `local` executor: runs a job's command on this host, sandboxed, or simulates a run.

A command job runs under a supervisor (`jobrun.py`) in a bubblewrap sandbox, as an unprivileged uid of its own
(`JOB_UID_BASE` + a slot from the job id, an account-less uid, when the server runs as root; the server's own uid
otherwise), with new user, pid, mount and network namespaces: it sees read-only /usr, a private /tmp, /proc and
/dev, and its own directory at /job - not the server's files, environment or processes, nor other jobs. Its
environment is cleared (PATH, HOME, TMPDIR, LANG, SUANWANG_JOB_ID); its limits come from the request (CPU seconds
from runtime x cores, address space from mem_gb, processes, file size from output_gb).

Layout of `<workdir>`:
- `run/<job id>/`: the job's directory (owned by its uid, mode 0700), bound at /job; the server never reads it.
- `state/<job id>/` (the server's only, mode 0700): spec.json, supervisor.pid (written by the server),
  stdout.log, stderr.log and status.json (written by the root supervisor). This is all the server trusts, with
  the supervisor's Popen in memory: a restarted server learns the outcome from status.json, or - no status and no
  supervisor alive - reports the job lost. Cancel signals only the supervisor the server started (never a pid a
  job could have written), which kills the sandbox's whole pid namespace.

A job without a command (or any job while commands are not allowed) does no work and is "running" for
`simulated_run_s` seconds, then done: its reference carries its start time (`sim@<unix s>@<job id>`), so it
touches no file and any replica can poll it after a restart. Without bubblewrap, command jobs fail at once with
the fix in the message (`refused@nobwrap@<job id>`); so do they when the job's uid could not reach its directory
(`refused@workdir@<job id>`: a workdir writable by others, or a folder above it not searchable by others).
Commands never run unsandboxed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from suanwang.service.executors.base import ExecRequest, ExecStatus, Executor

SIMULATED = "sim@"  # prefix of a simulated run's reference
REFUSED = "refused@"  # prefix of a command job that could not be run safely: refused@<why>@<job id>
WHY = {
    "nobwrap": "commands run only in a sandbox: install bubblewrap (make sandbox)",
    "workdir": "the workdir is not safe for commands: it must be the server user's own folder, not writable by "
    "group or others, with every folder above it searchable (chmod o+x) - or start the server with another --workdir",
}
SUPERVISOR = str(Path(__file__).with_name("jobrun.py"))  # run as a script: no package import, a fast start
JOB_UID_BASE = 200_000  # job uids: JOB_UID_BASE .. + JOB_UIDS - 1 (above any login or system account)
JOB_UIDS = 60_000
GiB = 1 << 30
# Defaults where a request states nothing - assumptions, not measurements: a job that declares no memory gets
# 2 GiB of address space, no output size 1 GiB per file; every job at most 256 processes.
DEFAULT_MEMORY_GB = 2.0
DEFAULT_FILE_GB = 1.0
MAX_PROCESSES = 256
LIMIT_MAX = 1 << 62  # below RLIM_INFINITY: a request's absurd runtime or memory is a large limit, not an error
LOG_TAIL_BYTES = 1 << 20  # the most of each log GET /jobs/{id}/logs returns (its end)


def limits_for(request: ExecRequest) -> dict[str, int]:
    """The job's resource limits from its request: CPU seconds (runtime x cores, at least 1 s), bytes of address
    space (mem_gb), processes, and bytes per file written (output_gb)."""
    cpu_s = max(1, math.ceil(request.runtime_h * 3600 * max(1, request.cpu_cores)))
    memory_gb = request.mem_gb if request.mem_gb > 0 else DEFAULT_MEMORY_GB
    file_gb = request.output_gb if request.output_gb > 0 else DEFAULT_FILE_GB
    return {
        "cpu_s": min(cpu_s, LIMIT_MAX),
        "memory_bytes": min(int(memory_gb * GiB), LIMIT_MAX),
        "processes": MAX_PROCESSES,
        "file_bytes": min(int(file_gb * GiB), LIMIT_MAX),
    }


def job_uid(job_id: str) -> int:
    """The unprivileged uid a job runs as (when the server is root): a slot of the job uid range from its id."""
    return JOB_UID_BASE + int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % JOB_UIDS


class LocalExecutor(Executor):
    """Sandboxed commands on this host, or simulated runs; the reference is the job id, `sim@<start>@<job id>`,
    or `refused@<why>@<job id>`."""

    name = "local"

    def __init__(self, workdir: Path, simulated_run_s: float = 1.0, allow_commands: bool = False):
        self.workdir = Path(workdir)
        self.simulated_run_s = simulated_run_s
        self.allow_commands = allow_commands
        self.bwrap = shutil.which("bwrap")
        self._procs: dict[str, subprocess.Popen] = {}

    def _state(self, ref: str) -> Path:
        d = self.workdir / "state" / ref
        if d.parent != self.workdir / "state" or ref in ("", ".", ".."):
            raise ValueError(f"bad executor reference {ref!r}")
        return d

    def _prepare_dirs(self, job_id: str, uid: int) -> tuple[Path, Path] | None:
        """Fresh state and run directories for a (re)started job: state 0700 the server's, run 0700 the job's.
        None when the workdir is not safe: not a folder of the server's own, or writable by group or others."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        roots = ((self.workdir / "state", 0o700), (self.workdir / "run", 0o711))
        for d, mode in roots:
            d.mkdir(mode=mode, exist_ok=True)
        for d in (self.workdir, *(d for d, _ in roots)):
            st = os.lstat(d)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
        for d, mode in roots:
            os.chmod(d, mode)
        state, run = self._state(job_id), self.workdir / "run" / job_id
        for d in (state, run):
            shutil.rmtree(d, ignore_errors=True)
        state.mkdir(mode=0o700)
        run.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(run, uid, uid)
        return state, run

    def submit(self, request: ExecRequest) -> str:
        """Start the command in its sandbox (the ref is the job id), or a simulated run (the ref carries its start
        time)."""
        if request.command is None or not self.allow_commands:
            return f"{SIMULATED}{time.time()!r}@{request.job_id}"
        if self.bwrap is None:
            return f"{REFUSED}nobwrap@{request.job_id}"
        uid = job_uid(request.job_id) if os.geteuid() == 0 else os.getuid()
        dirs = self._prepare_dirs(request.job_id, uid)
        if dirs is None or (uid != os.getuid() and not _searchable_by_others(self.workdir)):
            return f"{REFUSED}workdir@{request.job_id}"
        state, run = dirs
        spec = {
            "job_id": request.job_id,
            "command": request.command,
            "run_dir": str(run),
            "uid": uid,
            "gid": uid,
            "limits": limits_for(request),
            "bwrap": self.bwrap,
        }
        (state / "spec.json").write_text(json.dumps(spec))
        proc = subprocess.Popen(
            [sys.executable, "-I", SUPERVISOR, str(state)],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},  # nothing of the server's environment
            start_new_session=True,  # outlives a server restart; the restarted server reads its status.json
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(state / "supervisor.log", "wb"),  # noqa: SIM115 - the child holds it
            close_fds=True,
        )
        (state / "supervisor.pid").write_text(str(proc.pid))
        self._procs[request.job_id] = proc
        return request.job_id

    def poll(self, ref: str) -> ExecStatus:
        """Running while its supervisor runs; then done or failed from the supervisor's status.json."""
        if ref.startswith(SIMULATED):
            return self._simulated(float(ref[len(SIMULATED) :].partition("@")[0]))
        if ref.startswith(REFUSED):
            return ExecStatus("failed", None, WHY.get(ref[len(REFUSED) :].partition("@")[0], "refused"))
        legacy = self.workdir / ref / "simulated"  # a simulated run started before references carried the start
        if legacy.parent.parent == self.workdir and legacy.exists():
            return self._simulated(float(legacy.read_text() or 0))
        state = self._state(ref)
        proc = self._procs.get(ref)
        if proc is not None:
            if proc.poll() is None:
                return ExecStatus("running")
            self._procs.pop(ref, None)
        elif self._supervisor_alive(ref):
            return ExecStatus("running")
        try:
            status = json.loads((state / "status.json").read_text())
        except (OSError, ValueError):
            return ExecStatus("failed", None, "lost: its supervisor ended without an outcome (host restarted?)")
        code = int(status["exit_code"])
        if status.get("signal"):
            why = f"killed by {_signal_name(status['signal'])}"
        elif 128 < code < 128 + signal.NSIG:  # the sandbox reports a command killed by a signal as 128 + it
            why = f"exit code {code} (killed by {_signal_name(code - 128)})"
        else:
            why = f"exit code {code}"
        return ExecStatus("done" if code == 0 else "failed", code, why)

    def _simulated(self, started: float) -> ExecStatus:
        """A simulated run started at `started` (unix s): done once `simulated_run_s` have passed."""
        done = time.time() - started >= self.simulated_run_s
        return ExecStatus("done", 0, "simulated run") if done else ExecStatus("running")

    def _supervisor_pid(self, ref: str) -> int | None:
        """The pid of the supervisor of `ref` if it still runs: from the server's own file, and only if that pid
        is still a supervisor of this job (pids are reused)."""
        try:
            pid = int((self._state(ref) / "supervisor.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ok = SUPERVISOR.encode() in cmdline and str(self._state(ref)).encode() in cmdline
        return pid if ok else None

    def _supervisor_alive(self, ref: str) -> bool:
        return self._supervisor_pid(ref) is not None

    def cancel(self, ref: str) -> None:
        """Stop the job: SIGTERM to the supervisor this server started, which kills the whole sandbox."""
        if ref.startswith((SIMULATED, REFUSED)):
            return
        proc = self._procs.pop(ref, None)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # the sandbox dies with it (--die-with-parent)
            return
        pid = self._supervisor_pid(ref)  # after a restart: the supervisor the previous server started
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def logs(self, ref: str) -> str:
        """The end of stdout.log followed by the end of stderr.log (nothing for a simulated run)."""
        if ref.startswith((SIMULATED, REFUSED)):
            return ""
        state = self._state(ref)
        parts = []
        for name in ("stdout.log", "stderr.log"):
            try:
                with open(state / name, "rb") as f:
                    f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_TAIL_BYTES))
                    parts.append(f.read().decode(errors="replace"))
            except FileNotFoundError:
                pass
        return "".join(parts)


def _searchable_by_others(path: Path) -> bool:
    """True when `path` and every folder above it can be traversed by any user."""
    for parent in (Path(os.path.abspath(path)), *Path(os.path.abspath(path)).parents):
        try:
            if not os.stat(parent).st_mode & 0o001:
                return False
        except FileNotFoundError:
            continue  # created later, by us, searchable
    return True


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
