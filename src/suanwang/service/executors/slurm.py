"""The `slurm` executor: runs a placed job as a Slurm batch job, through slurmrestd (REST) or the sbatch CLI.

Mapping: cores -> `--cpus-per-task` (one task), cards -> `--gres=gpu:N`, runtime -> `--time` of
`ceil(runtime_h * 60 * (1 + time_margin) + time_margin_min)` minutes (defaults 25 % + 5 min: Slurm kills a job at
its limit, and a user's runtime is an estimate), job id -> `--job-name` `sw-<sanitised id>` (also the working
directory's name); the comment is `suanwang:<owner>:sw-<id>` (the submitting site's tag, which `owned()` lists for
the agent's orphan sweep). Each job runs in `<workdir>/sw-<id>/`; its stdout and stderr go to `output.log` there;
the batch script writes its Slurm id to `slurm_job_id` and the command's exit code to `exit_code`, so the outcome
survives Slurm purging the job (MinJobAge). The workdir must be on a file system this agent and the compute nodes
share; per-job folders take the owner of the workdir (the user jobs run as: with slurmrestd's rest_auth/local,
slurmrestd's own user).

The reference is `<slurm job id>@sw-<id>`. A job Slurm refuses at submission (e.g. more cores than any node has)
raises `SlurmRejected` (a ValueError) with Slurm's own message; an unreachable Slurm raises `SlurmDown` (a
RuntimeError) from submit/poll/cancel/find, and `capacity()` then says `up=False, reachable=False` with the
reason (a partition that is not UP, or has no usable node, is `up=False` but reachable). A job Slurm no
longer knows that left no exit code, or whose node failed, is failed with a message starting "lost:". Whether a
job's command may run is the control plane's decision (sites that allow commands): this executor runs the command
it is given; a job without one runs `sleep simulated_run_s` (default 0).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import time
from pathlib import Path

from suanwang.service.executors.base import EngineCapacity, ExecRequest, ExecStatus, Executor
from suanwang.service.executors.slurm_api import CliApi, RestApi, SlurmDown, SlurmJob

__all__ = ["SlurmDown", "SlurmExecutor", "SlurmRejected", "slurm_name"]

PREFIX = "sw-"
ENDED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
    "SPECIAL_EXIT",
}
UNUSABLE = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "FUTURE", "POWERED_DOWN", "MAINT")  # node state flags
LOG_TAIL_BYTES = 1 << 20
SCRIPT = """#!/bin/sh
# suanwang job {name}
echo "$SLURM_JOB_ID" > slurm_job_id
/bin/sh -c {command}
code=$?
echo "$code" > exit_code.tmp && mv exit_code.tmp exit_code
exit "$code"
"""


class SlurmRejected(ValueError):
    """Slurm refused the job at submission; the message is Slurm's."""


def slurm_name(job_id: str) -> str:
    """The Slurm job name (and folder name) for a job id: `sw-` + the id with anything outside [A-Za-z0-9_-]
    replaced; an id that had to change (or is long) also gets 8 hex digits of its hash, so two ids never share it."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", job_id)[:80]
    if clean != job_id:
        clean += "-" + hashlib.sha256(job_id.encode()).hexdigest()[:8]
    return PREFIX + clean


class SlurmExecutor(Executor):
    """One Slurm partition as a site's engine (see the module docstring for the mapping and the layout)."""

    name = "slurm"

    def __init__(
        self,
        api: RestApi | CliApi,
        workdir: Path,
        partition: str | None = None,
        account: str | None = None,
        time_margin: float = 0.25,
        time_margin_min: float = 5.0,
        simulated_run_s: float = 0.0,
        environment: dict[str, str] | None = None,
        cancel_timeout_s: float = 10.0,
        poll_snapshot_s: float = 0.5,
    ):
        self.api = api
        self.workdir = Path(workdir)
        self.partition = partition
        self.account = account
        self.time_margin = time_margin
        self.time_margin_min = time_margin_min
        self.simulated_run_s = simulated_run_s
        self.environment = environment or {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        self.cancel_timeout_s = cancel_timeout_s
        self.poll_snapshot_s = poll_snapshot_s
        self._snapshot: dict[int, SlurmJob] | None = None
        self._snapshot_at = 0.0
        self.last_error = ""
        self._owner: tuple[int, ...] | None = None  # (uid, gid) for job folders, () to keep ours; read on first use

    @classmethod
    def from_settings(cls, settings: dict) -> SlurmExecutor:
        """Build from a site's engine settings (strings, numbers, booleans):
        - `mode`: "rest" (default) or "sbatch";
        - rest: `rest_url` (http(s)://host:6820, or unix:/path or a path to slurmrestd's socket), optional `user` and
          `token` (X-SLURM-USER-NAME / -TOKEN, for rest_auth/jwt), `api_version` (default v0.0.38);
        - sbatch: optional `slurm_conf` (else the host's default configuration);
        - `workdir` (required: a folder shared with the compute nodes), `partition`, `account`, `time_margin`
          (fraction of the runtime, default 0.25), `time_margin_min` (minutes, default 5), `simulated_run_s`
          (seconds a job without a command sleeps, default 0), `environment` ("K=V,K=V": the jobs' variables;
          default a plain PATH and LANG), `timeout_s` (per call to Slurm, default 10), `cancel_timeout_s` (10),
          `poll_snapshot_s` (polls read one listing of all jobs at most this old, default 0.5; 0: a call per job).
        ValueError naming the setting when one is missing, unknown or not a number."""
        s = {k: v for k, v in settings.items() if v is not None}
        mode = str(s.pop("mode", "rest"))
        timeout_s = _number(s, "timeout_s", 10.0)
        if mode == "rest":
            if not s.get("rest_url"):
                raise ValueError(
                    "slurm settings: mode 'rest' needs 'rest_url' (http://host:6820 or unix:/path/to/slurmrestd.sock)"
                )
            api: RestApi | CliApi = RestApi(
                str(s.pop("rest_url")),
                s.pop("token", None),
                s.pop("user", None),
                s.pop("api_version", "v0.0.38"),
                timeout_s,
            )
        elif mode == "sbatch":
            conf = s.pop("slurm_conf", None)
            api = CliApi(dict(os.environ, SLURM_CONF=str(conf)) if conf else None, timeout_s)
        else:
            raise ValueError(f"slurm settings: mode {mode!r} is not 'rest' or 'sbatch'")
        if not s.get("workdir"):
            raise ValueError("slurm settings: 'workdir' (a folder shared with the compute nodes) is required")
        workdir = Path(str(s.pop("workdir")))
        env = s.pop("environment", None)
        if isinstance(env, str):
            pairs = [item.partition("=") for item in env.split(",") if item.strip()]
            if any(not k or not sep for k, sep, _ in pairs):
                raise ValueError(f"slurm settings: 'environment' {env!r} is not K=V,K=V")
            env = {k.strip(): v for k, _, v in pairs}
        kw = {
            k: _number(s, k, d)
            for k, d in (
                ("time_margin", 0.25),
                ("time_margin_min", 5.0),
                ("simulated_run_s", 0.0),
                ("cancel_timeout_s", 10.0),
                ("poll_snapshot_s", 0.5),
            )
        }
        partition, account = s.pop("partition", None), s.pop("account", None)
        if s:
            known = "mode, rest_url, user, token, api_version, slurm_conf, workdir, partition, account, time_margin, "
            known += "time_margin_min, simulated_run_s, environment, timeout_s, cancel_timeout_s, poll_snapshot_s"
            raise ValueError(f"slurm settings: unknown key(s) {', '.join(sorted(s))}; known: {known}")
        return cls(api, workdir, partition and str(partition), account=account and str(account), environment=env, **kw)

    # --- helpers
    def time_limit_min(self, runtime_h: float) -> int:
        """The `--time` limit in minutes for a declared runtime (hours): runtime plus the margin, at least 1."""
        return max(1, math.ceil(max(runtime_h, 0.0) * 60 * (1 + self.time_margin) + self.time_margin_min))

    def _dir(self, name: str) -> Path:
        d = self.workdir / name
        if d.parent != self.workdir or not name.startswith(PREFIX):
            raise ValueError(f"bad slurm executor reference name {name!r}")
        return d

    def _make_dir(self, name: str) -> Path:
        """The job's fresh folder (stale outcome files of an earlier try removed), owned like the workdir."""
        d = self._dir(name)
        if self._owner is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            st = self.workdir.stat()
            self._owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 and st.st_uid != 0 else ()
        try:
            os.mkdir(d)
        except FileExistsError:
            for stale in ("exit_code", "slurm_job_id", "output.log"):
                (d / stale).unlink(missing_ok=True)
        if self._owner:
            os.chown(d, *self._owner)
        return d

    @staticmethod
    def _split(ref: str) -> tuple[str, str]:
        head, sep, name = ref.partition("@")
        if not sep or not head.isdigit():
            raise ValueError(f"bad slurm executor reference {ref!r}")
        return head, name

    # --- the interface
    def submit(self, request: ExecRequest) -> str:
        """Submit one batch job; the reference is `<slurm id>@<name>`. SlurmRejected with Slurm's message when
        Slurm refuses it."""
        name = slurm_name(request.job_id)
        d = self._make_dir(name)
        command = request.command if request.command is not None else f"sleep {self.simulated_run_s:g}"
        job = {
            "name": name,
            "comment": f"suanwang:{self.owner}:{name}" if self.owner else f"suanwang {name}",
            "current_working_directory": str(d),
            "standard_output": str(d / "output.log"),
            "environment": {**self.environment, "SUANWANG_JOB_ID": name.removeprefix(PREFIX)},
            "cpus_per_task": max(1, int(request.cpu_cores)),
            "tasks": 1,
            "time_limit": self.time_limit_min(request.runtime_h),
        }
        if self.partition:
            job["partition"] = self.partition
        if self.account:
            job["account"] = self.account
        if request.gpu_cards > 0:
            job["gres"] = f"gpu:{int(request.gpu_cards)}"
        slurm_id, refused = self.api.submit(SCRIPT.format(name=name, command=shlex.quote(command)), job)
        if slurm_id is None:
            raise SlurmRejected(f"Slurm refused the job: {refused or 'no message'}")
        return f"{slurm_id}@{name}"

    def poll(self, ref: str) -> ExecStatus:
        """Running while Slurm has it pending or running (the message says which, with Slurm's reason); done or
        failed with the exit code once it ended; a job Slurm has forgotten is judged by its `exit_code` file."""
        head, name = self._split(ref)
        d = self._dir(name)
        job = self._job(int(head))
        code_file = _read(d / "exit_code").strip()
        if job is None:
            if code_file.lstrip("-").isdigit():
                code = int(code_file)
                return ExecStatus("done" if code == 0 else "failed", code, f"exit code {code}")
            return ExecStatus("failed", None, f"lost: Slurm no longer knows job {head} and it left no exit code")
        if job.state not in ENDED:
            why = "" if job.reason in ("None", "") else f" ({job.reason})"
            return ExecStatus("running", None, f"Slurm job {head} {job.state.lower()}{why}")
        return _ended(job, code_file)

    def _job(self, slurm_id: int) -> SlurmJob | None:
        """The job from a snapshot of all jobs at most `poll_snapshot_s` old (one call to Slurm serves an agent's
        polls of all its running jobs), or asked for alone when the snapshot does not have it or is off."""
        if self.poll_snapshot_s > 0:
            now = time.monotonic()
            if self._snapshot is None or now - self._snapshot_at > self.poll_snapshot_s:
                self._snapshot, self._snapshot_at = {j.job_id: j for j in self.api.jobs()}, now
            if slurm_id in self._snapshot:
                return self._snapshot[slurm_id]
        return self.api.job(slurm_id)

    def cancel(self, ref: str) -> None:
        """scancel / REST DELETE, then wait (up to `cancel_timeout_s`) until Slurm says the job has ended."""
        head, _ = self._split(ref)
        self.api.cancel(int(head))
        self._snapshot = None  # the next poll sees the cancel
        deadline = time.monotonic() + self.cancel_timeout_s
        while True:
            job = self.api.job(int(head))
            if job is None or job.state in ENDED:
                return
            if time.monotonic() > deadline:
                raise SlurmDown(f"Slurm job {head} is still {job.state} {self.cancel_timeout_s:g} s after the cancel")
            time.sleep(0.05)

    def logs(self, ref: str) -> str:
        """The job's `output.log` (stdout and stderr, last MiB)."""
        _, name = self._split(ref)
        return _read(self._dir(name) / "output.log", LOG_TAIL_BYTES)

    def find(self, job_id: str) -> str | None:
        """A job of this id already in Slurm (by job name: a live one first, else the newest), or one Slurm has
        purged that left its id and exit code in its folder; None when it was never submitted."""
        name = slurm_name(job_id)
        ids = self.api.by_name(name)
        if ids:
            jobs = [j for j in (self.api.job(i) for i in ids) if j is not None]
            live = [j.job_id for j in jobs if j.state not in ENDED]
            return f"{max(live or [j.job_id for j in jobs] or ids)}@{name}"
        d = self._dir(name)
        recorded = _read(d / "slurm_job_id").strip()
        if recorded.isdigit() and (d / "exit_code").exists():
            return f"{recorded}@{name}"
        return None

    def owned(self) -> list[tuple[str, str]]:
        """(job id, reference) of the jobs Slurm still has pending or running whose comment is this executor's
        `suanwang:<owner>:<name>` and whose name is that name; a job whose name does not lead back to its job id
        (an id that had to be cleaned) is left out, as is every job without the tag."""
        if not self.owner:
            return []
        out = []
        for j in self.api.jobs():
            tag, _, name = j.comment.rpartition(":")
            if j.state in ENDED or tag != f"suanwang:{self.owner}" or j.name != name:
                continue
            job_id = name.removeprefix(PREFIX)
            if name.startswith(PREFIX) and slurm_name(job_id) == name:
                out.append((job_id, f"{j.job_id}@{name}"))
        return out

    def capacity(self) -> EngineCapacity:
        """CPUs and GPUs of the partition's nodes, total and free (free counts only nodes that take jobs); `up` is
        false when Slurm does not answer or the partition is not UP (`message`, also kept in `last_error`, says why)."""
        try:
            if not self.api.ping():
                raise SlurmDown(f"slurmctld does not answer a ping (via {self.api.where})")
            nodes = [n for n in self.api.nodes() if self.partition is None or self.partition in n.partitions]
            up = self.api.partition_up(self.partition) if self.partition else True
        except SlurmDown as e:
            self.last_error = str(e)
            return EngineCapacity(0, 0, 0, 0, up=False, message=self.last_error, reachable=False)
        usable = [n for n in nodes if not any(flag in n.state for flag in UNUSABLE)]
        self.last_error = "" if up and usable else f"partition {self.partition} is not up or has no usable node"
        return EngineCapacity(
            cpu_total=sum(n.cpus for n in nodes),
            cpu_free=sum(max(0, n.cpus - n.alloc_cpus) for n in usable),
            gpu_total=sum(n.gpus for n in nodes),
            gpu_free=sum(max(0, n.gpus - n.gpus_used) for n in usable),
            up=up and bool(usable),
            message=self.last_error,
        )


def _number(settings: dict, key: str, default: float) -> float:
    """Pop a numeric setting (a number or a numeric string) or its default; ValueError naming it otherwise."""
    value = settings.pop(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"slurm settings: {key!r} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"slurm settings: {key!r} must be a finite number >= 0, got {value!r}")
    return number


def _ended(job: SlurmJob, code_file: str) -> ExecStatus:
    """Status of a job Slurm reports as ended; the command's own exit code (its file) wins over Slurm's."""
    code = int(code_file) if code_file.lstrip("-").isdigit() else job.exit_code
    if job.state == "COMPLETED" and code == 0:
        return ExecStatus("done", 0, "exit code 0")
    what = {
        "CANCELLED": "was cancelled in Slurm",
        "TIMEOUT": "hit its Slurm time limit (runtime + margin)",
        "OUT_OF_MEMORY": "ran out of memory",
        "NODE_FAIL": "lost its node",
        "PREEMPTED": "was preempted",
    }.get(job.state, job.state.lower())
    sig = f", signal {job.signal}" if job.signal else ""
    reason = f" ({job.reason})" if job.reason not in ("None", "") else ""
    exit_code = None if job.state in ("CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED") and not code_file else code
    lost = "lost: " if job.state in ("NODE_FAIL", "BOOT_FAIL") else ""  # the engine lost it: retried elsewhere
    return ExecStatus("failed", exit_code, f"{lost}Slurm job {job.job_id} {what}{reason}, exit code {code}{sig}")


def _read(path: Path, tail: int | None = None) -> str:
    try:
        with open(path, "rb") as f:
            if tail is not None:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - tail))
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
