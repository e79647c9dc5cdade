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
from concurrent.futures import ThreadPoolExecutor, as_completed

import httpx

from suanwang.errors import SuanwangError
from suanwang.service.executors.base import EngineCapacity, ExecRequest, ExecStatus, Executor

log = logging.getLogger("suanwang.agent")
LOG_TAIL_CHARS = 200_000  # at most this much of a job's output is uploaded (the service keeps 256 KiB)
LOG_EVERY_S = 10.0  # a running job's output so far is uploaded this often
SUBMIT_CHUNK = 32  # accepted jobs reported in one request (one transaction), at most this many
REPORT_WITHIN_S = 0.5  # ... and at most this long after the first of them was accepted
SWEEP_EVERY_S = 60.0  # the engine is searched for orphans (jobs of this site's tag the service does not run here)
BEAT_EVERY_S = 1.0  # with a heartbeat thread: capacity read and heartbeat this often (or every pass, if slower)
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
        self._beating = threading.Event()  # set while the heartbeat thread runs: passes then do not heartbeat
        self._threads: ThreadPoolExecutor | None = None
        self.last_capacity: EngineCapacity | None = None
        self._beat_at = -1e9  # monotonic s of the last heartbeat

    def capacity(self) -> EngineCapacity | None:
        """The engine's room now; an engine that raises counts as down."""
        try:
            return self.executor.capacity()
        except Exception as e:  # noqa: BLE001 - any engine failure means: not answering
            return EngineCapacity(0, 0, 0, 0, up=False, message=f"{type(e).__name__}: {e}", reachable=False)

    def beat(self) -> EngineCapacity | None:
        """Read the engine's capacity and heartbeat with it; the reading is kept for the passes (`last_capacity`)."""
        cap = self.capacity()
        self.client.heartbeat(self.engine, cap)
        self.last_capacity, self._beat_at = cap, time.monotonic()
        return cap

    def _pool(self) -> ThreadPoolExecutor:
        """The agent's engine threads (kept for its life: jobs flow through them without a barrier per chunk)."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.submit_threads, thread_name_prefix="engine")
        return self._threads

    def tick(self) -> dict[str, int]:
        """One pass; returns how many jobs were submitted, adopted, ended, cancelled and swept (orphans cancelled).
        Without a heartbeat thread (`run` starts one) the pass heartbeats first; with one, it uses the capacity the
        thread read last (reading an engine's capacity can take longer than a pass: Ray's takes 0.1-0.5 s)."""
        done = {"submitted": 0, "adopted": 0, "ended": 0, "cancelled": 0, "swept": 0}
        cap = self.last_capacity if self._beating.is_set() else self.beat()
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
        self._submit_all(todo["submit"], done)
        reports = self._poll_all(todo["running"])
        if reports:
            for res in self.client.report_many(reports):
                if not res["ok"]:
                    log.info("job %s ran or ended in the engine but is no longer this site's", res["job_id"])
        done["ended"] += sum(body["state"] != "running" for body in reports)
        return done

    def _submit_all(self, specs: list[dict], done: dict[str, int]) -> None:
        """Adopt or submit every claimed job through the engine threads; as jobs are accepted their reports go out
        in batches of up to SUBMIT_CHUNK (one request, one transaction each) while the threads go on submitting.
        Every job handed to a thread is waited for (and the accepted ones reported) before an engine error is
        raised, so no submission outlives its pass."""
        futures = [self._pool().submit(self._start, spec) for spec in specs]
        batch: list[tuple[str, dict]] = []
        oldest = 0.0  # monotonic s when the first job of `batch` was accepted
        error: BaseException | None = None
        for fut in as_completed(futures):
            try:
                batch.append(fut.result())
            except Exception as e:  # noqa: BLE001 - raised below, once the other jobs are accounted for
                error = error or e
                continue
            now = time.monotonic()
            oldest = oldest if len(batch) > 1 else now
            if len(batch) >= SUBMIT_CHUNK or now - oldest >= REPORT_WITHIN_S:
                self._report_started(batch, done)
                batch = []
                if not self._beating.is_set() and time.monotonic() - self._beat_at > self.interval_s:
                    self.beat()  # a long claim must not let the site look silent
        if batch:
            self._report_started(batch, done)
        if error is not None:
            raise error

    def _report_started(self, outcomes: list[tuple[str, dict]], done: dict[str, int]) -> None:
        results = self.client.report_many([body for _, body in outcomes])
        for (how, body), res in zip(outcomes, results, strict=True):
            done[how] += 1
            if not res["ok"] and body["state"] == "running":
                self.executor.cancel(body["ref"])  # re-placed or cancelled meanwhile: it must not run here

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

    def _poll_all(self, running: list[dict]) -> list[dict]:
        """The reports to send for the site's running jobs: those that ended in the engine, and running ones whose
        output so far is due for upload (every LOG_EVERY_S). The engine reads all statuses at once where it can
        (`poll_many`); the outputs are fetched by the engine threads."""
        refs = {job["ref"]: job["id"] for job in running}
        try:
            statuses = self.executor.poll_many(list(refs))
        except (OSError, ValueError, RuntimeError) as e:
            log.warning("polls of %d jobs failed: %s", len(refs), e)
            return []
        if len(statuses) < len(refs):
            log.warning("%d of %d polls got no answer from the engine", len(refs) - len(statuses), len(refs))
        now = time.monotonic()
        due = []
        for ref, st in statuses.items():
            job_id = refs[ref]
            if st.state != "running":
                self._logged.pop(job_id, None)
                due.append((job_id, ref, st))
            elif now - self._logged.setdefault(job_id, now) >= LOG_EVERY_S:  # the output so far, for the tenant
                self._logged[job_id] = now
                due.append((job_id, ref, st))
        return list(self._pool().map(lambda d: self._report_for(*d), due))

    def _report_for(self, job_id: str, ref: str, st: ExecStatus) -> dict:
        """The report of one polled job, with its output."""
        if st.state == "running":
            return {"job_id": job_id, "state": "running", "ref": ref, "logs": self._logs(ref)}
        return {
            "job_id": job_id,
            "state": st.state,
            "ref": ref,
            "exit_code": st.exit_code,
            "reason": st.message[:2000],
            "lost": st.state == "failed" and st.message.startswith("lost"),
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
        """Heartbeat every `every_s` seconds beside the passes (which use the capacity read here), so a long pass (a
        slow engine) never lets the site look silent and no pass waits for a capacity read."""
        while True:
            try:
                self.beat()
            except Exception as e:  # noqa: BLE001 - the next beat retries
                log.warning("heartbeat failed: %s", e)
            if self._stop.wait(every_s):
                return

    def run(self, heartbeat_every_s: float | None = None) -> None:
        """Tick every `interval_s` seconds until `stop()`; a failed pass (service or engine unreachable) is logged
        and the next one retries. With `heartbeat_every_s`, a thread heartbeats every min(that, max(interval_s,
        1 s)) seconds and the passes use its readings; without, each pass heartbeats first."""
        if heartbeat_every_s:
            every_s = min(heartbeat_every_s, max(self.interval_s, BEAT_EVERY_S))
            try:
                self.beat()  # the first pass has a reading to go by
            except Exception as e:  # noqa: BLE001 - the thread retries
                log.warning("heartbeat failed: %s", e)
            threading.Thread(target=self._beat_forever, args=(every_s,), daemon=True).start()
            self._beating.set()
        try:
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
        finally:
            self._beating.clear()
            if self._threads is not None:
                self._threads.shutdown(wait=True)
                self._threads = None

    def stop(self) -> None:
        self._stop.set()
