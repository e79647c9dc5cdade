"""The `ray` executor: jobs of a site agent on a Ray cluster through the Ray Jobs API (`pip install suanwang[ray]`).

Each job is one Ray job: the entrypoint is the job's command run by the head's shell, with `entrypoint_num_cpus` /
`entrypoint_num_gpus` its cores and cards, `metadata` carrying the platform's job id (and the submitting site's
tag, `suanwang_owner`, which `owned()` lists for the agent's orphan sweep), and a `submission_id`
derived from the job id - so a restarted agent finds the job (`find`) instead of submitting it twice, and a second
submit of the same id is refused by Ray itself. Logs come from the Jobs API; cancel is `stop_job`. Capacity is the
cluster's used / total CPU and GPU as the head's autoscaler reports them (`GET /api/cluster_status`, refreshed every
few seconds; the control plane also subtracts what it has placed there, see `sites.room`).
"""

from __future__ import annotations

import hashlib
import re
import time

import httpx

from suanwang.service.executors.base import EngineCapacity, ExecRequest, ExecStatus, Executor

PREFIX = "suanwang-"  # submission ids: PREFIX + the sanitised job id
TIMEOUT_S = 10.0  # each call to the head
TOTALS_FRESH_S = 5.0  # submit checks a job against cluster totals read at most this long ago (the agent reads them
# every pass; a cluster's totals change only when nodes join or leave)


LIST_FROM = 8  # polls of at least this many jobs read one listing of the cluster's jobs instead
SAFE = re.compile(r"[A-Za-z0-9_-]{1,48}")


def submission_id(job_id: str) -> str:
    """The Ray submission id of a platform job: only letters, digits, '-' and '_' reach Ray, at most 64 of them.
    A safe id (the service's own `job_<hex>`) is kept as it is; any other is cut, cleaned and given a digest of
    the original, so two different ids never share a submission id."""
    if SAFE.fullmatch(job_id):
        return PREFIX + job_id
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:16]
    return f"{PREFIX}{re.sub(r'[^A-Za-z0-9_-]', '_', job_id)[:30]}-{digest}"


class RayExecutor(Executor):
    """A Ray cluster reached at `address` (the head's dashboard URL, e.g. http://127.0.0.1:8265)."""

    name = "ray"

    def __init__(self, address: str, simulated_run_s: float = 0.0):
        self.address = address.rstrip("/")
        self.simulated_run_s = simulated_run_s
        self._client = None
        self._last_capacity: EngineCapacity | None = None
        self._capacity_at = -1e9  # monotonic s of the last capacity read

    @classmethod
    def from_settings(cls, settings: dict) -> RayExecutor:
        """From a site's engine settings: {"address": dashboard URL, "simulated_run_s": s for jobs without a
        command (default 0)}."""
        if not settings.get("address"):
            raise ValueError(
                "engine_settings.address: missing - give the Ray head's dashboard URL, e.g. http://127.0.0.1:8265"
            )
        return cls(str(settings["address"]), float(settings.get("simulated_run_s", 0.0)))

    def client(self):
        """The Jobs API client (made on first use and again after the head was unreachable)."""
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(self.address)
        return self._client

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self.client(), method)(*args, **kwargs)
        except OSError:  # the head is unreachable (requests' errors are OSErrors): reconnect next time
            self._client = None
            raise

    def submit(self, request: ExecRequest) -> str:
        """Submit the job (entrypoint = its command; none: `sleep simulated_run_s`); the ref is its submission id.
        ValueError when the cluster could never hold it (Ray would keep it pending for ever)."""
        cap = self._last_capacity if time.monotonic() - self._capacity_at < TOTALS_FRESH_S else self.capacity()
        if cap is not None and cap.up and (request.cpu_cores > cap.cpu_total or request.gpu_cards > cap.gpu_total):
            raise ValueError(
                f"needs {request.cpu_cores} CPUs {request.gpu_cards} GPUs, the Ray cluster has "
                f"{cap.cpu_total} CPUs {cap.gpu_total} GPUs in all"
            )
        sid = submission_id(request.job_id)
        command = request.command if request.command is not None else f"sleep {self.simulated_run_s:g}"
        try:
            self._call(
                "submit_job",
                entrypoint=command,
                submission_id=sid,
                entrypoint_num_cpus=request.cpu_cores,
                entrypoint_num_gpus=request.gpu_cards,
                metadata={"suanwang_job_id": request.job_id, **({"suanwang_owner": self.owner} if self.owner else {})},
            )
        except RuntimeError as e:
            if "already exists" not in str(e):
                raise ValueError(_first_line(str(e))) from None
        return sid

    def poll(self, ref: str) -> ExecStatus:
        """PENDING / RUNNING: running; SUCCEEDED: done; FAILED / STOPPED: failed with the driver's exit code and
        Ray's message. A job Ray does not know (the head restarted without it) is failed as lost."""
        try:
            info = self._call("get_job_info", ref)
        except RuntimeError as e:
            if "does not exist" in str(e):
                return ExecStatus("failed", None, f"lost: Ray has no job {ref} (head restarted?)")
            raise
        return _status(info)

    def poll_many(self, refs: list[str]) -> dict[str, ExecStatus]:
        """Statuses of many jobs from one listing of the cluster's jobs (`GET /api/jobs/`) when there are at least
        LIST_FROM of them (a poll per job costs a request each: an agent with many running jobs spent its pass
        polling), else one poll each. A ref the listing lacks is polled alone (it may be lost: `poll` says so)."""
        if len(refs) < LIST_FROM:
            return super().poll_many(refs)
        try:
            listed = {info.submission_id: info for info in self._call("list_jobs")}
        except (OSError, RuntimeError):
            return {}
        out = {ref: _status(listed[ref]) for ref in refs if ref in listed}
        out.update(super().poll_many([ref for ref in refs if ref not in listed]))
        return out

    def cancel(self, ref: str) -> None:
        """Stop the Ray job (no error when it has already ended or Ray does not know it)."""
        try:
            self._call("stop_job", ref)
        except RuntimeError as e:
            if "does not exist" not in str(e):
                raise

    def logs(self, ref: str) -> str:
        """The job's output as the Jobs API keeps it (the driver's stdout and stderr)."""
        try:
            return self._call("get_job_logs", ref)
        except RuntimeError:
            return ""

    def find(self, job_id: str) -> str | None:
        """The submission id of this job if Ray already has it (a restarted agent adopts it)."""
        sid = submission_id(job_id)
        try:
            info = self._call("get_job_info", sid)
        except RuntimeError as e:
            if "does not exist" in str(e):
                return None
            raise
        meta = info.metadata or {}
        return sid if meta.get("suanwang_job_id", job_id) == job_id else None

    def owned(self) -> list[tuple[str, str]]:
        """(job id, submission id) of the Ray jobs still pending or running whose metadata names this executor's
        `owner` (`suanwang_owner`) and whose submission id is that of their `suanwang_job_id`."""
        if not self.owner:
            return []
        out = []
        for info in self._call("list_jobs"):
            meta = info.metadata or {}
            status = str(info.status.value if hasattr(info.status, "value") else info.status)
            job_id = meta.get("suanwang_job_id", "")
            if meta.get("suanwang_owner") != self.owner or status not in ("PENDING", "RUNNING") or not job_id:
                continue
            if info.submission_id == submission_id(job_id):
                out.append((job_id, info.submission_id))
        return out

    def capacity(self) -> EngineCapacity:
        """Used and total CPU / GPU of the cluster from the head; up and reachable False when the head does not
        answer."""
        try:
            r = httpx.get(f"{self.address}/api/cluster_status", timeout=TIMEOUT_S)
            r.raise_for_status()
            usage = r.json()["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            return EngineCapacity(0, 0, 0, 0, up=False, message=f"Ray head at {self.address}: {e}", reachable=False)
        cpu_used, cpu_total = usage.get("CPU", [0.0, 0.0])
        gpu_used, gpu_total = usage.get("GPU", [0.0, 0.0])
        cap = EngineCapacity(int(cpu_total), int(cpu_total - cpu_used), int(gpu_total), int(gpu_total - gpu_used))
        self._last_capacity, self._capacity_at = cap, time.monotonic()
        return cap


def _status(info) -> ExecStatus:
    """A Ray job's JobInfo / JobDetails as a status: PENDING / RUNNING running, SUCCEEDED done, FAILED / STOPPED
    failed with the driver's exit code and Ray's message."""
    status = str(info.status.value if hasattr(info.status, "value") else info.status)
    if status in ("PENDING", "RUNNING"):
        return ExecStatus("running")
    code = info.driver_exit_code
    if status == "SUCCEEDED":
        return ExecStatus("done", 0 if code is None else code, "succeeded in Ray")
    return ExecStatus("failed", code, f"Ray {status}: {_first_line(info.message or '')}")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:500] if text.strip() else ""
