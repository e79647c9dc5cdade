"""The site agent's loop: heartbeat with the engine's capacity, claim, reconcile, submit, poll, report, cancel.

Each `tick()` is one pass. Before submitting a job that an agent may already have submitted (one the service says
was claimed before) the agent asks the engine for it by job id (`Executor.find`): a job already there is adopted,
never submitted twice; a job claimed for the first time cannot be in the engine and is submitted at once. A report
the service refuses (the job was re-placed, cancelled or ended) makes the agent stop that job in its engine. The
engine runs jobs on its own: when only the agent dies, they keep running and the restarted agent adopts them.
Every job carries the site's tag; on its first pass and every `sweep_every_s` the agent lists the engine's live
jobs with that tag and cancels those the service calls orphans (unknown, ended, or run elsewhere), never another's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from suanwang.errors import SuanwangError
from suanwang.service.executors.base import EngineCapacity, ExecRequest, ExecStatus, Executor

log = logging.getLogger("suanwang.agent")
LOG_TAIL_CHARS = 200_000  # at most this much of a job's output is uploaded (the service keeps 256 KiB)
LOG_EVERY_S = 10.0  # a running job's output so far is uploaded this often
SUBMIT_CHUNK = 32  # jobs submitted, then reported in one request; a heartbeat goes out between two chunks
SWEEP_EVERY_S = 60.0  # the engine is searched for orphans (jobs of this site's tag the service does not run here)
STOPPING_S = 60.0  # an orphan this agent cancelled is not listed again for this long (the engine is ending it)
OWNER = re.compile(r"[A-Za-z0-9_.-]{0,80}")


class AgentError(SuanwangError):
    """The service refused the agent (bad token, unknown site, wrong engine); `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class AgentClient:
    """The agent's calls to the service, with its site token."""

    def __init__(self, service_url: str, site_id: str, token: str, http: httpx.Client | None = None):
        self.base = f"/api/v1/sites/{site_id}/agent"
        self.site_id = site_id
        self.http = http or httpx.Client(base_url=service_url.rstrip("/"), timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}

    def _post(self, path: str, body: dict, allow: tuple[int, ...] = ()) -> httpx.Response:
        r = self.http.post(self.base + path, json=body, headers=self.headers)
        if r.status_code in (401, 403, 404, 422) or (r.status_code >= 400 and r.status_code not in allow):
            raise AgentError(f"{self.base}{path}: HTTP {r.status_code}: {r.text[:300]}", r.status_code)
        return r

    def config(self) -> dict:
        """The site's engine, engine settings and heartbeat timeout, as its operator set them."""
        r = self.http.get(self.base + "/config", headers=self.headers)
        if r.status_code != 200:
            msg = f"{self.base}/config: HTTP {r.status_code}: {r.text[:300]} - check --site and the token"
            raise AgentError(msg, r.status_code)
        return r.json()

    def heartbeat(self, engine: str, cap: EngineCapacity | None) -> dict:
        body: dict = {"engine": engine}
        if cap is not None:
            body["capacity"] = {
                "cpu_total": cap.cpu_total,
                "cpu_free": max(0, cap.cpu_free),
                "gpu_total": cap.gpu_total,
                "gpu_free": max(0, cap.gpu_free),
                "up": cap.up,
                "reachable": cap.reachable,
                "message": cap.message[:2000],
            }
        return self._post("/heartbeat", body).json()

    def claim(self, limit: int, engine_jobs: list[dict] | None = None, swept: list[dict] | None = None) -> dict:
        """The site's work; with `engine_jobs` ({"job_id", "ref"} of its tag live in the engine) also the orphans
        among them; `swept` ({"job_id", "ref", "why"}) tells the service which orphans were cancelled."""
        body: dict = {"limit": limit}
        if engine_jobs is not None:
            body["engine_jobs"] = engine_jobs
        if swept:
            body["swept"] = swept
        return self._post("/claim", body).json()

    def report_many(self, reports: list[dict]) -> list[dict]:
        """Send several jobs' states in one request; one {"job_id", "ok", ...} per report, in order."""
        if not reports:
            return []
        return self._post("/reports", {"reports": reports}).json()["results"]

    def report(self, job_id: str, **body) -> bool:
        """Send one job's state; False when the service says the job is no longer this site's (409)."""
        return self._post(f"/jobs/{job_id}/report", body, allow=(409,)).status_code != 409


class Agent:
    """One site's agent over `executor`. `tick()` runs one pass; `run()` repeats it every `interval_s` seconds."""

    def __init__(
        self,
        client: AgentClient,
        executor: Executor,
        engine: str,
        interval_s: float = 1.0,
        limit: int = 100,
        submit_threads: int = 4,
        owner: str = "",
        sweep_every_s: float = SWEEP_EVERY_S,
    ):
        if not OWNER.fullmatch(owner):
            raise AgentError(f"engine_owner {owner!r} from the service is not a tag of [A-Za-z0-9_.-]")
        self.client = client
        self.executor = executor
        executor.owner = owner  # every job it submits carries the tag; the sweep touches only jobs that do
        self.sweep_every_s = sweep_every_s  # 0: never sweep
        self._swept_at: float | None = None  # monotonic s of the last sweep; None: not yet (the first is at start)
        self._swept: list[dict] = []  # orphans cancelled, not yet told to the service
        self._stopping: dict[str, float] = {}  # ref -> when this agent cancelled it as an orphan (monotonic s)
        self.engine = engine
        self.interval_s = interval_s
        self.limit = limit
        self.submit_threads = submit_threads  # jobs handed to the engine at once (an engine's submit is slow)
        self._logged: dict[str, float] = {}  # job id -> when its running output was last uploaded (monotonic s)
        self._stop = threading.Event()

    def capacity(self) -> EngineCapacity | None:
        """The engine's room now; an engine that raises counts as down."""
        try:
            return self.executor.capacity()
        except Exception as e:  # noqa: BLE001 - any engine failure means: not answering
            return EngineCapacity(0, 0, 0, 0, up=False, message=f"{type(e).__name__}: {e}", reachable=False)

    def tick(self) -> dict[str, int]:
        """One pass; returns how many jobs were submitted, adopted, ended, cancelled and swept (orphans cancelled)."""
        done = {"submitted": 0, "adopted": 0, "ended": 0, "cancelled": 0, "swept": 0}
        cap = self.capacity()
        self.client.heartbeat(self.engine, cap)
        if cap is not None and not cap.reachable:
            # the service has taken the site down; its running jobs stay running there (the engine's nodes may go
            # on), and nothing can be asked of the engine until it answers again
            return done
        engine_jobs = self._engine_jobs()
        todo = self.client.claim(self.limit, engine_jobs, self._swept)
        self._swept = []
        for orphan in todo.get("orphans", ()):
            done["swept"] += self._sweep(orphan)
        for job in todo["cancel"]:
            self._cancel(job["id"], job["ref"])
            done["cancelled"] += 1
        specs = todo["submit"]
        for at in range(0, len(specs), SUBMIT_CHUNK):  # a chunk's reports go in one request (one transaction)
            chunk = specs[at : at + SUBMIT_CHUNK]
            if self.submit_threads > 1 and len(chunk) > 1:
                with ThreadPoolExecutor(min(self.submit_threads, len(chunk))) as pool:
                    outcomes = list(pool.map(self._start, chunk))
            else:
                outcomes = [self._start(spec) for spec in chunk]
            results = self.client.report_many([body for _, body in outcomes])
            for (how, body), res in zip(outcomes, results, strict=True):
                done[how] += 1
                if not res["ok"] and body["state"] == "running":
                    self.executor.cancel(body["ref"])  # re-placed or cancelled meanwhile: it must not run here
            if at + SUBMIT_CHUNK < len(specs):  # a long claim must not let the site look silent
                self.client.heartbeat(self.engine, self.capacity())
        ended = [body for job in todo["running"] if (body := self._poll(job["id"], job["ref"])) is not None]
        if ended:
            for res in self.client.report_many(ended):
                if not res["ok"]:
                    log.info("job %s ended in the engine but is no longer this site's", res["job_id"])
        done["ended"] += len(ended)
        return done

    def _engine_jobs(self) -> list[dict] | None:
        """The live engine jobs of this site's tag when a sweep is due (the first pass after start-up, whose claim
        also hands the agent the jobs to adopt, then every `sweep_every_s`), else None (no sweep this pass)."""
        if not self.executor.owner or self.sweep_every_s <= 0:
            return None
        now = time.monotonic()
        if self._swept_at is not None and now - self._swept_at < self.sweep_every_s:
            return None
        try:
            jobs = self.executor.owned()
        except (OSError, ValueError, RuntimeError) as e:
            log.warning("orphan sweep: cannot list the engine's jobs: %s", e)
            return None
        self._swept_at = now
        self._stopping = {ref: t for ref, t in self._stopping.items() if now - t < STOPPING_S}
        return [{"job_id": job_id, "ref": ref} for job_id, ref in jobs if ref not in self._stopping]

    def _sweep(self, orphan: dict) -> int:
        """Cancel one orphan in the engine (a job of this site's tag the service does not run here); 1 when done,
        0 when the engine refused (the next sweep tries again)."""
        try:
            self.executor.cancel(orphan["ref"])
        except (OSError, ValueError, RuntimeError) as e:
            log.warning("orphan %s (%s): cancel failed: %s", orphan["ref"], orphan["job_id"], e)
            return 0
        self._stopping[orphan["ref"]] = time.monotonic()  # an engine may list it as running while it stops
        log.info("cancelled orphan engine job %s (job %s: %s)", orphan["ref"], orphan["job_id"], orphan["why"])
        self._swept.append({"job_id": orphan["job_id"], "ref": orphan["ref"], "why": orphan["why"][:500]})
        return 1

    def _start(self, spec: dict) -> tuple[str, dict]:
        """Adopt or submit one job; (how, the report to send)."""
        job_id = spec["id"]
        ref = None
        if spec.get("claimed_before"):  # reconcile: an agent (this one before a restart) may have submitted it;
            ref = self.executor.find(job_id)  # a job never claimed before cannot be in the engine
        how = "adopted" if ref is not None else "submitted"
        if ref is not None:
            log.info("job %s is already in the engine as %s: adopted, not submitted again", job_id, ref)
        else:
            request = ExecRequest(job_id, spec["command"], spec["cpu_cores"], spec["gpu_cards"], spec["runtime_h"])
            try:
                ref = self.executor.submit(request)
            except (OSError, ValueError) as e:  # refused by the engine: the job fails with its words
                return "ended", {"job_id": job_id, "state": "failed", "reason": f"engine rejected it: {e}"[:2000]}
        return how, {"job_id": job_id, "state": "running", "ref": ref}

    def _poll(self, job_id: str, ref: str) -> dict | None:
        """The report of a job that ended in the engine, else None (a running job's output is uploaded now and
        then)."""
        try:
            st: ExecStatus = self.executor.poll(ref)
        except (OSError, ValueError, RuntimeError) as e:
            log.warning("poll of %s (%s) failed: %s", job_id, ref, e)
            return None
        if st.state == "running":
            now = time.monotonic()
            if now - self._logged.setdefault(job_id, now) >= LOG_EVERY_S:  # the output so far, for the tenant
                self._logged[job_id] = now
                self.client.report(job_id, state="running", ref=ref, logs=self._logs(ref))
            return None
        self._logged.pop(job_id, None)
        lost = st.state == "failed" and st.message.startswith("lost")
        return {
            "job_id": job_id,
            "state": st.state,
            "ref": ref,
            "exit_code": st.exit_code,
            "reason": st.message[:2000],
            "lost": lost,
            "logs": self._logs(ref),
        }

    def _cancel(self, job_id: str, ref: str) -> None:
        self.executor.cancel(ref)
        self.client.report(job_id, state="cancelled", ref=ref, logs=self._logs(ref))

    def _logs(self, ref: str) -> str:
        try:
            return self.executor.logs(ref)[-LOG_TAIL_CHARS:]
        except (OSError, ValueError, RuntimeError):
            return ""

    def _beat_forever(self, every_s: float) -> None:
        """Heartbeat every `every_s` seconds beside the passes, so a long pass (a slow engine) never lets the site
        look silent."""
        while not self._stop.wait(every_s):
            try:
                self.client.heartbeat(self.engine, self.capacity())
            except Exception as e:  # noqa: BLE001 - the next beat retries
                log.warning("heartbeat failed: %s", e)

    def run(self, heartbeat_every_s: float | None = None) -> None:
        """Tick every `interval_s` seconds until `stop()`; a failed pass (service or engine unreachable) is logged
        and the next one retries. With `heartbeat_every_s`, a thread also heartbeats that often."""
        if heartbeat_every_s:
            threading.Thread(target=self._beat_forever, args=(heartbeat_every_s,), daemon=True).start()
        while not self._stop.is_set():
            try:
                self.tick()
            except AgentError as e:
                if e.status in (401, 403):  # the token was revoked or is for another site: stop
                    raise
                log.error("%s", e)
            except Exception:  # noqa: BLE001 - keep the agent alive; the next pass retries
                log.exception("agent pass failed")
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
