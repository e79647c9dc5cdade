"""Two ways to talk to one Slurm cluster: slurmrestd (REST, OpenAPI v0.0.38) and the CLI (sbatch, scontrol, scancel).

Both answer in the same plain shapes, so `SlurmExecutor` does not care which one it drives:
- `submit(script, job)` -> (Slurm job id, None) or (None, Slurm's message) when Slurm refuses the job;
- `job(id)` -> `SlurmJob` or None when Slurm does not know the id (never submitted, or purged after MinJobAge);
- `jobs()` -> every job Slurm still knows (one call); `by_name(name)` -> the ids of jobs with that name;
- `cancel(id)`, `nodes()` -> `SlurmNode`s, `partition_up(name)`, `ping()` (is slurmctld up).
An unreachable controller or slurmrestd raises `SlurmDown` with what was tried.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import httpx

INVALID_JOB_ID = 2017  # Slurm's ESLURM_INVALID_JOB_ID


class SlurmDown(RuntimeError):
    """Slurm (slurmctld, or slurmrestd in front of it) does not answer; the message names the endpoint."""


@dataclass(frozen=True)
class SlurmJob:
    """One job as Slurm reports it: state (e.g. RUNNING), reason, exit code and terminating signal of the batch
    script, and its comment (where the executor writes whose job it is)."""

    job_id: int
    name: str
    state: str
    reason: str
    exit_code: int
    signal: int
    comment: str = ""


@dataclass(frozen=True)
class SlurmNode:
    """One node: its partitions, state flags (e.g. IDLE, MIXED+DRAIN), CPUs total/allocated, GPUs total/used."""

    name: str
    partitions: tuple[str, ...]
    state: str
    cpus: int
    alloc_cpus: int
    gpus: int
    gpus_used: int


def _comm_error(number) -> bool:
    """Slurm error numbers for communication failures (slurm_errno.h: 1000-1099 protocol, 1800-1899 slurmctld
    communication, 5000-5099 socket) - the controller is unreachable, not the request wrong."""
    return isinstance(number, int) and (1000 <= number < 1100 or 1800 <= number < 1900 or 5000 <= number < 5100)


def gpu_count(gres: str) -> int:
    """GPUs in a gres string such as 'gpu:4', 'gpu:a100:2(S:0-1),gpu:t4:1' or 'gpu:0(IDX:N/A)'."""
    total = 0
    for item in re.split(r",(?![^()]*\))", gres or ""):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


class RestApi:
    """slurmrestd over HTTP or a Unix socket (`unix:/path` or a bare path). `user`/`token`: JWT headers, where the
    site uses rest_auth/jwt; with rest_auth/local on a socket, jobs run as slurmrestd's own user."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        user: str | None = None,
        version: str = "v0.0.38",
        timeout_s: float = 10.0,
    ):
        headers = {}
        if token:
            headers["X-SLURM-USER-TOKEN"] = token
        if user:
            headers["X-SLURM-USER-NAME"] = user
        if url.startswith("unix:") or url.startswith("/"):
            self.where = url.removeprefix("unix:")
            transport = httpx.HTTPTransport(uds=self.where)
            base = "http://slurmrestd"
        else:
            self.where, transport, base = url, None, url.rstrip("/")
        self.client = httpx.Client(
            transport=transport, base_url=f"{base}/slurm/{version}", headers=headers, timeout=timeout_s
        )

    def _call(self, method: str, path: str, **kw) -> dict:
        try:
            r = self.client.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise SlurmDown(f"slurmrestd at {self.where} does not answer: {e}") from e
        try:
            body = r.json()
        except ValueError as e:
            raise SlurmDown(f"slurmrestd at {self.where} answered {r.status_code} without JSON: {r.text[:200]}") from e
        for err in body.get("errors") or []:
            if _comm_error(err.get("error_number", err.get("error_code"))):
                raise SlurmDown(f"slurmrestd at {self.where}: {err.get('error')}")
        return body

    @staticmethod
    def _message(body: dict) -> str:
        return "; ".join(e.get("error") or e.get("description") or str(e) for e in body.get("errors") or [])

    def ping(self) -> bool:
        """Whether slurmctld answers slurmrestd (an instant check; other calls wait ~2 s for a down controller)."""
        pings = self._call("GET", "/ping").get("pings") or []
        return any(p.get("ping") == "UP" for p in pings)

    def _raise_down(self, body: dict, what: str) -> None:
        """slurmrestd answers a down controller with 'Unspecified error': say what it means."""
        if not self.ping():
            raise SlurmDown(
                f"slurmctld does not answer (via slurmrestd at {self.where}; {what}: {self._message(body)})"
            )

    def submit(self, script: str, job: dict) -> tuple[int | None, str | None]:
        body = self._call("POST", "/job/submit", json={"script": script, "job": job})
        if body.get("errors"):
            self._raise_down(body, "submit")
            if body.get("job_id"):  # accepted despite an error: do not leave it queued behind the message
                self.cancel(int(body["job_id"]))
            return None, self._message(body)
        return int(body["job_id"]), None

    def job(self, job_id: int) -> SlurmJob | None:
        body = self._call("GET", f"/job/{job_id}")
        errors = body.get("errors") or []
        if any(e.get("error_number") == INVALID_JOB_ID for e in errors):
            return None
        if errors or not body.get("jobs"):
            self._raise_down(body, f"job {job_id}")
            raise SlurmDown(
                f"slurmrestd at {self.where}, job {job_id}: {self._message(body) or 'no job in the answer'}"
            )
        return _rest_job(body["jobs"][0])

    def jobs(self) -> list[SlurmJob]:
        """Every job Slurm still knows, in one call."""
        body = self._call("GET", "/jobs")
        if body.get("errors"):
            self._raise_down(body, "jobs")
            raise SlurmDown(f"slurmrestd at {self.where}, jobs: {self._message(body)}")
        return [_rest_job(j) for j in body.get("jobs") or []]

    def by_name(self, name: str) -> list[int]:
        return [j.job_id for j in self.jobs() if j.name == name]

    def cancel(self, job_id: int) -> None:
        body = self._call("DELETE", f"/job/{job_id}")
        errors = [e for e in body.get("errors") or [] if e.get("error_number") != INVALID_JOB_ID]
        if errors:
            self._raise_down(body, f"cancel {job_id}")
            raise SlurmDown(f"slurmrestd at {self.where} could not cancel job {job_id}: {self._message(body)}")

    def nodes(self) -> list[SlurmNode]:
        body = self._call("GET", "/nodes")
        if body.get("errors"):
            self._raise_down(body, "nodes")
            raise SlurmDown(f"slurmrestd at {self.where}, nodes: {self._message(body)}")
        return [
            SlurmNode(
                n["name"],
                tuple(n.get("partitions") or ()),
                "+".join([n.get("state", "").upper(), *n.get("state_flags", [])]),
                int(n.get("cpus") or 0),
                int(n.get("alloc_cpus") or 0),
                gpu_count(n.get("gres", "")),
                gpu_count(n.get("gres_used", "")),
            )
            for n in body.get("nodes") or []
        ]

    def partition_up(self, name: str) -> bool:
        body = self._call("GET", f"/partition/{name}")
        if body.get("errors"):
            self._raise_down(body, f"partition {name}")
            raise SlurmDown(f"slurmrestd at {self.where}, partition {name}: {self._message(body)}")
        return any(p.get("state") == "UP" for p in body.get("partitions") or [])


def _rest_job(j: dict) -> SlurmJob:
    status = int(j.get("exit_code") or 0)  # a wait(2) status: exit code in bits 8-15, signal in 0-6
    return SlurmJob(
        int(j["job_id"]),
        j["name"],
        j["job_state"],
        j.get("state_reason") or "None",
        (status >> 8) & 0xFF,
        status & 0x7F,
        j.get("comment") or "",
    )


_FIELD = re.compile(r"(\w[\w/:]*)=(\S*)")


def _cli_job(line: str) -> SlurmJob:
    f = dict(_FIELD.findall(line))
    code, _, sig = f.get("ExitCode", "0:0").partition(":")
    return SlurmJob(
        int(f["JobId"]),
        f.get("JobName", ""),
        f.get("JobState", ""),
        f.get("Reason", "None"),
        int(code or 0),
        int(sig or 0),
        f.get("Comment", ""),
    )


class CliApi:
    """The Slurm commands (`sbatch`, `scontrol`, `scancel`) of this host; `env` carries e.g. SLURM_CONF."""

    def __init__(self, env: dict[str, str] | None = None, timeout_s: float = 15.0):
        self.env = env
        self.timeout_s = timeout_s
        conf = (env or {}).get("SLURM_CONF")
        self.where = f"the Slurm commands (SLURM_CONF={conf})" if conf else "the Slurm commands of this host"

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                args, input=stdin, capture_output=True, text=True, env=self.env, timeout=self.timeout_s
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SlurmDown(f"`{args[0]}` failed: {e}") from e

    @staticmethod
    def _down(out: subprocess.CompletedProcess) -> bool:
        text = out.stderr.lower()
        return "unable to contact slurm controller" in text or "connection refused" in text or "timed out" in text

    def _check(self, out: subprocess.CompletedProcess, what: str) -> None:
        if out.returncode != 0 and self._down(out):
            raise SlurmDown(f"slurmctld does not answer ({what}: {out.stderr.strip()})")

    def ping(self) -> bool:
        """Whether slurmctld answers `scontrol ping` (instant, unlike other commands against a down controller)."""
        return "is UP" in self._run("scontrol", "ping").stdout

    def submit(self, script: str, job: dict) -> tuple[int | None, str | None]:
        args = ["sbatch", "--parsable", f"--job-name={job['name']}", f"--comment={job['comment']}"]
        args += [f"--chdir={job['current_working_directory']}", f"--output={job['standard_output']}"]
        args += ["--ntasks=1", f"--cpus-per-task={job['cpus_per_task']}", f"--time={job['time_limit']}"]
        args += ["--export=" + ",".join(f"{k}={v}" for k, v in job["environment"].items())]
        if job.get("partition"):
            args.append(f"--partition={job['partition']}")
        if job.get("account"):
            args.append(f"--account={job['account']}")
        if job.get("gres"):
            args.append(f"--gres={job['gres']}")
        out = self._run(*args, stdin=script)
        self._check(out, "sbatch")
        if out.returncode != 0:
            return None, out.stderr.strip().removeprefix("sbatch: error: ").removeprefix(
                "Batch job submission failed: "
            )
        return int(out.stdout.strip().split(";")[0]), None

    def job(self, job_id: int) -> SlurmJob | None:
        out = self._run("scontrol", "-o", "show", "job", str(job_id))
        self._check(out, "scontrol show job")
        if out.returncode != 0 or not out.stdout.strip():
            if "invalid job id" in out.stderr.lower():
                return None
            raise SlurmDown(f"scontrol show job {job_id}: {out.stderr.strip()}")
        return _cli_job(out.stdout.splitlines()[0])

    def jobs(self) -> list[SlurmJob]:
        """Every job Slurm still knows, in one `scontrol -o show job`."""
        out = self._run("scontrol", "-o", "show", "job")
        self._check(out, "scontrol show job")
        if out.returncode != 0:
            raise SlurmDown(f"scontrol show job: {out.stderr.strip()}")
        return [_cli_job(line) for line in out.stdout.splitlines() if line.startswith("JobId=")]

    def by_name(self, name: str) -> list[int]:
        out = self._run("squeue", "-h", "-t", "all", "-n", name, "-o", "%i")
        self._check(out, "squeue")
        if out.returncode != 0:
            raise SlurmDown(f"squeue: {out.stderr.strip()}")
        return [int(x) for x in out.stdout.split() if x.isdigit()]

    def cancel(self, job_id: int) -> None:
        out = self._run("scancel", str(job_id))
        self._check(out, "scancel")
        if out.returncode != 0 and "invalid job id" not in out.stderr.lower():
            raise SlurmDown(f"scancel {job_id}: {out.stderr.strip()}")

    def nodes(self) -> list[SlurmNode]:
        out = self._run("scontrol", "-o", "-d", "show", "node")
        self._check(out, "scontrol show node")
        if out.returncode != 0:
            raise SlurmDown(f"scontrol show node: {out.stderr.strip()}")
        nodes = []
        for line in out.stdout.splitlines():
            f = dict(_FIELD.findall(line))
            if "NodeName" not in f:
                continue
            parts = tuple(p for p in f.get("Partitions", "").split(",") if p)
            cpus, alloc = int(f.get("CPUTot", 0)), int(f.get("CPUAlloc", 0))
            nodes.append(
                SlurmNode(
                    f["NodeName"],
                    parts,
                    f.get("State", ""),
                    cpus,
                    alloc,
                    gpu_count(f.get("Gres", "")),
                    gpu_count(f.get("GresUsed", "")),
                )
            )
        return nodes

    def partition_up(self, name: str) -> bool:
        out = self._run("scontrol", "-o", "show", "partition", name)
        self._check(out, "scontrol show partition")
        if out.returncode != 0:
            raise SlurmDown(f"scontrol show partition {name}: {out.stderr.strip()}")
        return dict(_FIELD.findall(out.stdout)).get("State") == "UP"
