"""One policy over one job list: arrivals, starts, completions, site outages and link cuts, hourly sampling.

The policy object is the scheduler's own (`make_policy`, see scheduler/policy.py); nothing here decides a
placement. What the simulator adds is time:

- arrival: the policy places the job now; when it says `retryable` the job waits in a queue, else it is
  rejected with the policy's reason. A job the policy `defers` (batch-lp: batch-class jobs) waits for the next
  plan instead: plans run every `policy.window_h` hours; their placements may start later (temporal shifting)
  and take their capacity when they start, and the room is held for them until then.
- completion: frees the cores and cards and retries queued jobs that could use the freed site (each queue of
  jobs with the same static rules is scanned `queue_depth` jobs deep, like Slurm's default_queue_depth).
- outage: the site goes down (state.up False); its running jobs stop - the work done so far is counted as
  spent - and are placed again through the policy. Recovery brings the site back and retries the queues.
- link cut (data province -> site): while cut, the site is marked down for the placement of any job whose
  input would travel over that link (its data province differs from the site's and it has data to move),
  and restored right after. Jobs already running keep running (their data already moved).
- hourly: the utilisation of every site is sampled (the signals themselves change by hour of day inside the
  scheduler's estimates).

Queued jobs that still wait when no event is left are placed by a final pass; whatever cannot be placed then
is failed with a reason. So every job ends done, failed or rejected.
"""

from __future__ import annotations

import gc
import math
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from suanwang.scheduler import ClusterState, SchedulerContext, make_policy
from suanwang.scheduler.decision import Placement
from suanwang.scheduler.holds import Holds
from suanwang.scheduler.policy import Policy
from suanwang.sim.columns import JobColumns
from suanwang.sim.engine import ARRIVAL, COMPLETION, FAILURE, PLAN, SIGNAL, START, Engine
from suanwang.workload.job import Job

GC_EVERY_JOBS = 1_000_000  # streamed runs: a full garbage collection after reading this many more jobs
PENDING, QUEUED, RUNNING, DONE, FAILED, REJECTED = range(6)
STATUS = ("pending", "queued", "running", "done", "failed", "rejected")


def _smallest(shapes) -> tuple[tuple[int, int], ...]:
    """The (cores, cards) shapes no other shape is at most in both: a job of `shapes` fits some room iff one of
    these does. Sorted by cores up (so cards go down)."""
    out: list[tuple[int, int]] = []
    for c, g in sorted(set(shapes)):
        if not out or g < out[-1][1]:
            out.append((c, g))
    return tuple(out)


def _any_fits(smallest: tuple[tuple[int, int], ...], free_c: int, free_g: int) -> bool:
    """Whether some shape of `smallest` (from `_smallest`) fits free_c cores and free_g cards."""
    if smallest[0][0] > free_c or smallest[-1][1] > free_g:
        return False  # even the fewest cores, or the fewest cards, do not fit
    for c, g in smallest:
        if c > free_c:
            return False
        if g <= free_g:
            return True
    return False


@dataclass(frozen=True)
class Outage:
    """Site `site_id` is down from start_h to end_h (hours)."""

    site_id: str
    start_h: float
    end_h: float


@dataclass(frozen=True)
class LinkCut:
    """The link from data province `province_id` to site `site_id` is cut from start_h to end_h (hours)."""

    province_id: str
    site_id: str
    start_h: float
    end_h: float


SEGMENT_FIELDS = ("job", "site", "start_h", "frac", "cost_cny", "energy_kwh", "carbon_kg", "transfer_gb", "latency_ms")


@dataclass
class Segments:
    """Every run of a job at a site (a job stopped by an outage has a partial run, then another): one row of
    SEGMENT_FIELDS per run, kept in one flat array of floats (one append per run; job and site indices are
    whole numbers, exact as floats)."""

    rows: array = field(default_factory=lambda: array("d"))

    def add(self, idx: int, p: Placement, start_h: float, frac: float) -> None:
        """Record a run of job idx under placement p that did `frac` of its work (costs scale with it)."""
        self.rows.extend(
            (
                idx,
                p.site_index,
                start_h,
                frac,
                p.cost_cny * frac,
                p.energy_kwh * frac,
                p.carbon_kg * frac,
                p.transfer_gb,
                p.latency_ms,
            )
        )

    def __len__(self) -> int:
        return len(self.rows) // len(SEGMENT_FIELDS)

    def __getattr__(self, name: str) -> np.ndarray:
        """seg.job, seg.site, seg.frac, ...: the column of that field (see `column`)."""
        if name in SEGMENT_FIELDS:
            return self.column(name)
        raise AttributeError(name)

    def column(self, name: str) -> np.ndarray:
        """One field of every run, in order: int64 for "job" and "site" (a copy), else float64 (a read-only view:
        no run can be added while it lives)."""
        k, n = SEGMENT_FIELDS.index(name), len(SEGMENT_FIELDS)
        col = np.frombuffer(self.rows, dtype=np.float64)[k::n] if self.rows else np.zeros(0)
        return col.astype(np.int64) if name in ("job", "site") else col


@dataclass
class Run:
    """What happened to every job under one policy (lists indexed by job, in arrival order)."""

    policy: str
    jobs: list[Job]  # empty for a streamed run: its jobs were let go as they ended (see `columns`)
    status: list[int]
    reason: list[str]
    end_h: Sequence[float]  # completion (done) or decision time (rejected / failed)
    restarts: list[int]
    segments: Segments
    util_hours: list[int]
    util: list[np.ndarray]  # per sampled hour: utilisation of every site
    events: int
    wall_s: float = 0.0
    columns: JobColumns | None = None  # the job fields the metrics read (built from `jobs` when None)


class Simulation:
    """Simulates `policy` (a name of POLICIES, or a policy object) on `jobs` (sorted by submit_h) in context `ctx`;
    `window_h`, `slot_h` and `weights` build a named policy (see make_policy).

    Streaming: `more` yields further job lists (each sorted, none starting before the one before ends), read one
    at a time when the arrivals reach them - e.g. one day of demand each - and the jobs are then let go as they
    end, so a long run holds only the jobs alive plus compact per-job records (Run.columns, Run.segments). The
    decisions and results are the same as for one list of all the jobs; job indices count on across the lists.
    """

    def __init__(
        self,
        ctx: SchedulerContext,
        jobs: list[Job],
        policy: str | Policy,
        *,
        horizon_h: float,
        outages: tuple[Outage, ...] | list[Outage] = (),
        cuts: tuple[LinkCut, ...] | list[LinkCut] = (),
        window_h: float = 1.0,
        slot_h: float = 1.0,
        queue_depth: int = 100,
        weights: dict[str, float] | None = None,
        free_profile: bool = True,
        more: Iterable[list[Job]] | None = None,
    ):
        self.ctx = ctx
        if isinstance(policy, str):
            policy = make_policy(policy, ctx, weights, window_h=window_h, slot_h=slot_h)
        self.sched: Policy = policy
        self.policy = policy.name
        self.more = None if more is None else iter(more)
        self.streamed = more is not None
        self.last_submit_h = -math.inf  # submit_h of the last job read (streaming checks the order)
        self.gc_at = math.inf  # streamed: jobs read at which run() collects garbage next
        self.jobs = jobs if self.more is None else list(jobs)  # streamed: our own list, emptied as jobs end
        self.horizon_h = float(horizon_h)
        self.queue_depth = int(queue_depth)
        if self.queue_depth < 1:
            raise ValueError(f"queue_depth must be >= 1 (jobs looked at per queue on a retry), got {queue_depth!r}")
        self.state = ClusterState.from_sites(ctx.sites)
        self.windowed = policy.window_h is not None  # some jobs wait for plans
        self.window_h = float(policy.window_h) if self.windowed else 0.0
        self.n_jobs = 0
        self.columns = JobColumns(ctx)
        self.cores: list[int] = []  # plain ints: the queue scan reads them for every waiting job
        self.cards: list[int] = []
        self.done_reason = [f"done at {s.id}" for s in ctx.sites]
        self.status: list[int] = []
        self.reason: list[str] = []
        self.end_h = array("d")
        self.restarts: list[int] = []
        self.gen: list[int] = []
        self.site_of: list[int] = []
        self._add(self.jobs)
        self.arrived = 0
        self.planned = 0
        self.holds = Holds(len(ctx.sites))  # windowed: room of planned jobs, not yet started (by job index)
        self.free_profile = bool(free_profile)
        self.plan_scheduled = False
        self.seg = Segments()
        self.running: list[dict[int, tuple[Placement, float]]] = [{} for _ in ctx.sites]
        self.engine = Engine()
        self.outages, self.cuts_plan = list(outages), list(cuts)
        self.cut: dict[str, set[int]] = {}
        self.sid = {s.id: i for i, s in enumerate(ctx.sites)}
        for o in self.outages:
            self._site_index(o.site_id)
        for c in self.cuts_plan:
            self._site_index(c.site_id)
        # queues of waiting jobs, by the static rules they share (online policies)
        self.queues: dict[tuple, deque[int]] = {}
        self.queue_min: dict[tuple, tuple[tuple[int, int], ...]] = {}  # smallest (cores, cards) of each window
        self.bucket_sites: dict[tuple, np.ndarray] = {}
        self.active: list[dict[tuple, None]] = [{} for _ in ctx.sites]
        self.pending: list[int] = []  # windowed: waiting for the next plan
        self.util_hours: list[int] = []
        self.util: list[np.ndarray] = []

    def _site_index(self, site_id: str) -> int:
        from suanwang.errors import UnknownPlaceError

        if site_id not in self.sid:
            raise UnknownPlaceError(site_id, [s for s in self.sid if site_id.split("-")[0] in s][:5], "site")
        return self.sid[site_id]

    def _add(self, jobs: list[Job]) -> None:
        """Make room for `jobs`, the next jobs in arrival order (already in self.jobs)."""
        n = len(jobs)
        if n:
            self.last_submit_h = jobs[-1].submit_h
        self.n_jobs += n
        self.columns.add(jobs)
        self.cores += [j.cpu_cores for j in jobs]
        self.cards += [j.gpu_cards for j in jobs]
        self.status += [PENDING] * n
        self.reason += [""] * n
        self.end_h.frombytes(bytes(8 * n))  # n zeros
        self.restarts += [0] * n
        self.gen += [0] * n
        self.site_of += [-1] * n

    def _read_more(self) -> None:
        """Streaming: append the next non-empty job list of `more` (none left: stop reading)."""
        for jobs in self.more:
            if not jobs:
                continue
            if jobs[0].submit_h < self.last_submit_h:
                raise ValueError(
                    f"streamed jobs must come in submit order: job {jobs[0].id} at {jobs[0].submit_h} h "
                    f"comes after a job submitted at {self.last_submit_h} h"
                )
            self.jobs += jobs
            self._add(jobs)
            if self.n_jobs >= self.gc_at:
                gc.collect()
                self.gc_at = self.n_jobs + GC_EVERY_JOBS
            return
        self.more = None

    # --- running the simulation ------------------------------------------------------------------------
    def run(self) -> Run:
        """Run to the end (all jobs decided); returns the record of every job."""
        import time

        t0 = time.perf_counter()
        e = self.engine
        if not self.jobs and self.more is not None:
            self._read_more()
        if self.jobs:
            e.schedule(self.jobs[0].submit_h, self._arrival, 0, ARRIVAL)
        for h in range(int(np.ceil(self.horizon_h))):
            e.schedule(float(h), self._sample, h, SIGNAL)
        for o in self.outages:
            e.schedule(o.start_h, self._outage, self.sid[o.site_id], FAILURE)
            e.schedule(o.end_h, self._recover, self.sid[o.site_id], FAILURE)
        for c in self.cuts_plan:
            e.schedule(c.start_h, self._cut, (c.province_id, self.sid[c.site_id]), FAILURE)
            e.schedule(c.end_h, self._uncut, (c.province_id, self.sid[c.site_id]), FAILURE)
        if self.windowed and self.jobs:
            self.plan_scheduled = True
            e.schedule(self.jobs[0].submit_h, self._plan, None, PLAN)
        # The cyclic garbage collector is paused while the events run: the simulation makes no reference cycles
        # (its garbage goes by reference counting alone), but each collection walks every live job, placement and
        # event - 19 % of a 12-day national run. A streamed run still collects fully every GC_EVERY_JOBS jobs
        # read, in case a policy plugin makes cycles. Restored on the way out, so the caller is unaffected.
        paused = gc.isenabled()
        gc.disable()
        self.gc_at = GC_EVERY_JOBS if paused else math.inf
        try:
            while True:
                e.run()
                if not self._drain():
                    break
        finally:
            if paused:
                gc.enable()
        return Run(
            self.policy,
            [] if self.streamed else self.jobs,
            self.status,
            self.reason,
            self.end_h,
            self.restarts,
            self.seg,
            self.util_hours,
            self.util,
            e.processed,
            time.perf_counter() - t0,
            self.columns,
        )

    def _drain(self) -> bool:
        """No event left: place every waiting job now (the cluster is idle); True if that made new events."""
        waiting = sorted(i for q in self.queues.values() for i in q)
        if not waiting and not self.pending:
            return False
        for q in self.queues.values():
            q.clear()
        for a in self.active:
            a.clear()
        self.queue_min.clear()
        if self.pending:
            self._plan(None, final=True)
        for idx in waiting:
            if self._try(idx) == QUEUED:
                self._finish(idx, FAILED, "still no room at any feasible site after every other job ended")
        return len(self.engine) > 0

    # --- events --------------------------------------------------------------------------------------
    def _arrival(self, idx: int) -> None:
        nxt = self.arrived = idx + 1
        if nxt == self.n_jobs and self.more is not None:
            self._read_more()
        if nxt < self.n_jobs:
            self.engine.schedule(self.jobs[nxt].submit_h, self._arrival, nxt, ARRIVAL)
        if self.windowed and self.sched.defers(self.jobs[idx]):
            self.pending.append(idx)
        else:
            self._try(idx)

    def _sample(self, hour: int) -> None:
        self.util_hours.append(hour)
        self.util.append(self.state.utilisation())

    def _complete(self, key: tuple[int, int]) -> None:
        idx, gen = key
        if gen != self.gen[idx]:
            return  # stopped by an outage; a newer run exists
        s = self.site_of[idx]
        p, start = self.running[s].pop(idx)  # as _stop, inlined: this runs once per job
        self.state.release(s, self.jobs[idx])
        self.gen[idx] = gen + 1
        self.seg.add(idx, p, start, 1.0)
        self.status[idx] = DONE
        self.reason[idx] = self.done_reason[s]
        self.end_h[idx] = self.engine.now_h
        if self.streamed:
            self.jobs[idx] = None  # ended: the results read Run.columns
        if self.active[s]:  # some queue may use the freed room
            self._retry(s)

    def _outage(self, s: int) -> None:
        self.state.up[s] = False
        victims = sorted(self.running[s])
        for idx in victims:
            p, start = self._stop(idx)
            job = self.jobs[idx]
            done = (self.engine.now_h - start - p.transfer_h) / job.runtime_h
            self.seg.add(idx, p, start, float(min(1.0, max(0.0, done))))
            self.restarts[idx] += 1
        for idx in victims:
            if self.windowed and self.sched.defers(self.jobs[idx]):
                self.status[idx] = PENDING
                self.pending.append(idx)
                self._ensure_plan()
            else:
                self._try(idx)

    def _recover(self, s: int) -> None:
        self.state.up[s] = True
        self._retry(s)

    def _cut(self, key: tuple[str, int]) -> None:
        self.cut.setdefault(key[0], set()).add(key[1])

    def _uncut(self, key: tuple[str, int]) -> None:
        self.cut.get(key[0], set()).discard(key[1])
        self._retry(key[1])

    # --- online placement ----------------------------------------------------------------------------
    def _cut_sites(self, job: Job) -> list[int]:
        """Sites the job may not use now because its data would travel over a cut link."""
        cut = self.cut.get(job.data_province) if self.cut else None
        if not cut or job.input_gb + job.output_gb <= 0:
            return []
        return [s for s in cut if self.ctx.site_province[s] != job.data_province and self.state.up[s]]

    def _try(self, idx: int, enqueue: bool = True) -> int:
        """Ask the policy to place job idx now: RUNNING, QUEUED or REJECTED. A job that must wait joins its queue,
        unless `enqueue` is False (a retry from the queue: the caller puts it back where it was)."""
        job, now = self.jobs[idx], self.engine.now_h
        d = self.sched.place(job, self.state, now, blocked=self._cut_sites(job) if self.cut else None)
        p = d.placement
        if p is not None:
            self._start_run(idx, p, now)
            return RUNNING
        if d.retryable:
            if enqueue:
                self._enqueue(idx)
            else:
                self.status[idx] = QUEUED
            return QUEUED
        self._finish(idx, REJECTED, d.reason)
        return REJECTED

    def _enqueue(self, idx: int) -> None:
        job = self.jobs[idx]
        key = self.sched.static_key(job)  # jobs with the same static rules share a queue
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = deque()
            self.bucket_sites[key] = self.sched.static_sites(job)  # the policy's own rules: where it may ever go
        if not q:
            for s in self.bucket_sites[key]:
                self.active[s][key] = None
        if len(q) < self.queue_depth:  # the job joins the window the scan looks at
            self.queue_min[key] = _smallest((*self.queue_min.get(key, ()), (self.cores[idx], self.cards[idx])))
        q.append(idx)
        self.status[idx] = QUEUED

    def _retry(self, s: int) -> None:
        """Capacity appeared at site s: retry the queues that may use s, oldest head first.

        Each queue is looked at `queue_depth` jobs deep (its window); a job is tried only if it fits at s now.
        Tries only take capacity, so a queue whose smallest job in the window does not fit, and every job that
        does not fit when the scan starts, can be passed over without a try - the same tries in the same order
        as checking each. (`queue_min` holds the smallest shapes of the window: kept on enqueue, recomputed when
        a job leaves.)
        """
        active = self.active[s]
        st = self.state
        if not active or not st.up[s]:
            return
        free_c, free_g = int(st.cpu_free[s]), int(st.gpu_free[s])
        queues, queue_min, cores, cards, depth = self.queues, self.queue_min, self.cores, self.cards, self.queue_depth
        # The queues with a job in their window that fits the room now, oldest head first (a job waits in one
        # queue). The room only shrinks during the scan, so no other queue could be tried later in it.
        heads = sorted([(queues[k][0], k) for k in active if _any_fits(queue_min[k], free_c, free_g)])
        for _, key in heads:
            if not _any_fits(queue_min[key], free_c, free_g):
                continue  # no job of its window fits the room left
            q = queues[key]
            fit = [i for i in islice(q, depth) if cores[i] <= free_c and cards[i] <= free_g]
            gone = []
            for idx in fit:
                if cores[idx] > free_c or cards[idx] > free_g:
                    continue  # an earlier try of this scan took the room at s
                self.status[idx] = PENDING
                if self._try(idx, enqueue=False) != QUEUED:
                    gone.append(idx)
                    free_c, free_g = int(st.cpu_free[s]), int(st.gpu_free[s])
            if not gone:
                continue
            for idx in gone:
                q.remove(idx)  # near the head: found after a few steps
            if q:
                queue_min[key] = _smallest([(cores[i], cards[i]) for i in islice(q, depth)])
            else:
                for t in self.bucket_sites[key]:
                    self.active[t].pop(key, None)
                del queue_min[key]

    # --- planned placement (windowed policies) -----------------------------------------------------------
    def _ensure_plan(self) -> None:
        """Make sure a planning window is scheduled (windowed policy)."""
        if not self.plan_scheduled:
            self.plan_scheduled = True
            self.engine.schedule(self.engine.now_h + self.window_h, self._plan, None, PLAN)

    def _plan(self, _payload=None, final: bool = False) -> None:
        self.plan_scheduled = False
        now = self.engine.now_h
        if self.pending:
            idxs, self.pending = self.pending, []
            free = self._free_profile(now) if self.free_profile else None
            jobs = [self.jobs[i] for i in idxs]
            decisions = self.sched.plan(jobs, self.holds.unheld(self.state), now, free)
            for idx, d in zip(idxs, decisions, strict=True):
                if d.placement is not None:
                    self.status[idx] = QUEUED
                    self.planned += 1
                    self.holds.add(idx, self.jobs[idx], d.placement)
                    self.engine.schedule(max(now, d.placement.start_h), self._start_planned, (idx, d.placement), START)
                elif (d.retryable or self.sched.may_fit_later(self.jobs[idx], now)) and not final:
                    # No room in the planning horizon: join the online queue, which retries on every
                    # completion, instead of waiting a whole window for the next plan.
                    self.status[idx] = PENDING
                    self._try(idx)
                elif d.retryable:
                    self._finish(idx, FAILED, d.reason)
                else:
                    self._finish(idx, REJECTED, d.reason)
        if not final and (self.arrived < len(self.jobs) or self.pending or self.planned):
            self._ensure_plan()

    def _free_profile(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(cores, cards) [sites, slots] free for the next plan in each slot from `now` (see Holds.free_profile),
        over twice the plan's horizon."""
        running = (
            (s, start + p.transfer_h + self.jobs[idx].runtime_h, self.cores[idx], self.cards[idx])
            for s, runs in enumerate(self.running)
            for idx, (p, start) in runs.items()
        )
        return self.holds.free_profile(self.state, now, self.sched.slot_h, 2 * self.sched.horizon_slots, running)

    def _start_planned(self, key: tuple[int, Placement]) -> None:
        idx, p = key
        self.planned -= 1
        self.holds.drop(idx)
        job, s, st = self.jobs[idx], p.site_index, self.state
        if s in self._cut_sites(job) or not st.fits(job)[s]:
            # The plan met a changed world (online arrivals took the room): place it now through the online
            # pipeline, or queue it - re-planning to a later window would eat its deadline.
            self.status[idx] = PENDING
            self._try(idx)
            return
        st.reserve(s, job)
        self._start_run(idx, p, self.engine.now_h)

    # --- bookkeeping ---------------------------------------------------------------------------------
    def _start_run(self, idx: int, p: Placement, now: float) -> None:
        s = self.site_of[idx] = p.site_index
        self.status[idx] = RUNNING
        gen = self.gen[idx] = self.gen[idx] + 1
        self.running[s][idx] = (p, now)
        self.engine.schedule(now + p.transfer_h + self.jobs[idx].runtime_h, self._complete, (idx, gen), COMPLETION)

    def _stop(self, idx: int) -> tuple[Placement, float]:
        """Take job idx off its site (completion or outage); returns its placement and start hour."""
        s = self.site_of[idx]
        p, start = self.running[s].pop(idx)
        self.state.release(s, self.jobs[idx])
        self.gen[idx] += 1
        return p, start

    def _finish(self, idx: int, status: int, reason: str) -> None:
        self.status[idx] = status
        self.reason[idx] = reason
        self.end_h[idx] = self.engine.now_h
        if self.streamed:
            self.jobs[idx] = None
