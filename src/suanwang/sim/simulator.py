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
from collections.abc import Iterable
from itertools import islice

import numpy as np

from suanwang.policy.quotas import Tenancy
from suanwang.scheduler import ClusterState, SchedulerContext, make_policy
from suanwang.scheduler.decision import Placement
from suanwang.scheduler.fairshare import FairShare
from suanwang.scheduler.holds import Holds
from suanwang.scheduler.policy import Policy
from suanwang.scheduler.preemption import Running, preemption_victims, reclaim_victims
from suanwang.scheduler.quotas import QuotaBook, west_hubs
from suanwang.scheduler.registry import with_spill_over
from suanwang.sim.columns import JobColumns
from suanwang.sim.engine import ARRIVAL, COMPLETION, FAILURE, PLAN, SIGNAL, START, Engine
from suanwang.sim.faults import LinkCut, LinkCuts, Outage
from suanwang.sim.queues import WaitQueues
from suanwang.sim.records import DONE, FAILED, PENDING, QUEUED, REJECTED, RUNNING, Evicted, Run, Segments
from suanwang.workload.job import Job

GC_EVERY_JOBS = 1_000_000  # streamed runs: a full garbage collection after reading this many more jobs


class Simulation:
    """Simulates `policy` (a name of POLICIES, or a policy object) on `jobs` (sorted by submit_h) in context `ctx`;
    `window_h`, `slot_h` and `weights` build a named policy (see make_policy).

    Streaming: `more` yields further job lists (each sorted, none starting before the one before ends), read one
    at a time when the arrivals reach them - e.g. one day of demand each - and the jobs are then let go as they
    end, so a long run holds only the jobs alive plus compact per-job records (Run.columns, Run.segments). The
    decisions and results are the same as for one list of all the jobs; job indices count on across the lists.

    Tenants: with a `tenancy` (policy/quotas.py) the state carries a QuotaBook the quota filters read, and the
    wait queues are ranked by fair share, each kept in priority order (docs/tenancy.md). Cohorts let tenants
    borrow idle quota room, reclaimed (rule R1) as soon as its owner's job needs it; priority classes let a job
    that finds its feasible sites full evict lower-class preemptible jobs at one site (rule P1). Evicted jobs are
    requeued and resume from their last checkpoint (their class's `checkpoint_h`), else from the start.
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
        tenancy: Tenancy | None = None,
    ):
        self.ctx = ctx
        if isinstance(policy, str):
            policy = make_policy(policy, ctx, weights, window_h=window_h, slot_h=slot_h)
        policy = with_spill_over(policy, ctx, tenancy)  # ordered places per tenant (unchanged without)
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
        # Tenants (policy/quotas.py): quota usage rides on the state, fair share ranks the wait queues.
        self.tenancy = tenancy
        book = None if tenancy is None else QuotaBook(tenancy, ctx.sites, west_hubs(ctx.atlas.hubs))
        self.state = ClusterState.from_sites(ctx.sites, book)
        st = self.state
        self.fair = None if tenancy is None else FairShare(tenancy, st.cpu_total.sum(), st.gpu_total.sum())
        self.prio = None if tenancy is None else tenancy.priorities  # policy.priorities.Priorities or None
        ranks = [c.rank for c in self.prio.classes if c.preemptible] if self.prio is not None else []
        self.lowest_victim_rank = min(ranks, default=math.inf)  # only a job ranked above it may preempt
        self.reclaims = book is not None and bool(book.pools)
        self.lenders = [b for bs in book.by_tenant.values() for b in bs if b.pool] if self.reclaims else []
        self.borrowed: dict[str, list[float]] = {}  # tenant -> [borrowed core-hours, card-hours]
        self.meter_h = 0.0
        self.evictions: list[Evicted] = []
        self.saved_h: dict[int, float] = {}  # job -> hours of work kept by checkpoints across evictions
        self.evicted: dict[int, list[float]] = {}  # job -> [times evicted, hour of the last]
        self._static: dict = {}  # static key -> the sites a job with it may ever use (preemption candidates)
        self.priority: list[int] | None = None if tenancy is None else []
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
        self.cuts = LinkCuts(ctx.site_province)
        self.sid = {s.id: i for i, s in enumerate(ctx.sites)}
        for o in self.outages:
            self._site_index(o.site_id)
        for c in self.cuts_plan:
            self._site_index(c.site_id)
        order = None if self.fair is None else self._fair_key
        self.waiting = WaitQueues(  # by static rules
            len(ctx.sites), self.queue_depth, self.cores, self.cards, order, self.priority
        )
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
        if self.priority is not None:
            self.priority += [j.priority for j in jobs]
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
            self.evictions,
            self._borrowed_totals(),
        )

    def _drain(self) -> bool:
        """No event left: place every waiting job now (the cluster is idle); True if that made new events."""
        waiting = self.waiting.drain()
        if not waiting and not self.pending:
            return False
        if self.pending:
            self._plan(None, final=True)
        if self.tenancy is not None:
            # Quotas: a job placed now may hold the quota a later one needs; those wait for it to end, and fail
            # only when a pass places nothing.
            for idx in waiting:
                self.status[idx] = PENDING
                self._try(idx)
            if len(self.engine) > 0:
                return True
            waiting = self.waiting.drain()
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
        if self.reclaims:
            self._meter()
        p, start = self.running[s].pop(idx)  # as _stop, inlined: this runs once per job
        job = self.jobs[idx]
        self.state.release(s, job)
        if self.fair is not None:
            self.fair.stop(job, self.engine.now_h)
        self.gen[idx] = gen + 1
        saved = self.saved_h.pop(idx, 0.0) if self.saved_h else 0.0
        self.seg.add(idx, p, start, 1.0 - saved / job.runtime_h if saved else 1.0)
        self.status[idx] = DONE
        self.reason[idx] = self.done_reason[s]
        self.end_h[idx] = self.engine.now_h
        if self.streamed:
            self.jobs[idx] = None  # ended: the results read Run.columns
        if self.waiting.active[s]:  # some queue may use the freed room
            self._retry(s)
        if self.state.quotas is not None and self.state.quotas.rules(job.tenant):
            self._retry_quota(self._cohort_of(job.tenant))

    def _outage(self, s: int) -> None:
        self.state.up[s] = False
        victims = sorted(self.running[s])
        for idx in victims:
            p, start = self._stop(idx)
            job = self.jobs[idx]
            done = (self.engine.now_h - start - p.transfer_h) / job.runtime_h
            left = 1.0 - self.saved_h.get(idx, 0.0) / job.runtime_h
            self.seg.add(idx, p, start, float(min(left, max(0.0, done))))
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
        self.cuts.add(*key)

    def _uncut(self, key: tuple[str, int]) -> None:
        self.cuts.restore(*key)
        self._retry(key[1])

    # --- online placement ----------------------------------------------------------------------------
    def _try(self, idx: int, enqueue: bool = True) -> int:
        """Ask the policy to place job idx now: RUNNING, QUEUED or REJECTED. A job that must wait joins its queue,
        unless `enqueue` is False (a retry from the queue: the caller puts it back where it was)."""
        job, now = self.jobs[idx], self.engine.now_h
        if self.reclaims:
            self._meter()
        blocked = self.cuts.blocked(job, self.state.up) if self.cuts else None
        d = self.sched.place(job, self.state, now, blocked=blocked)
        p = d.placement
        if p is None and d.retryable and (self.reclaims or self.prio is not None):
            p = self._evict_for(idx, blocked)
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
        sites = None if self.waiting.known(key) else self.sched.static_sites(job)  # where it may ever go
        self.waiting.add(key, idx, sites)
        self.status[idx] = QUEUED

    def _retry(self, s: int) -> None:
        """Capacity appeared at site s: retry the queues that may use s, oldest head first (see WaitQueues): each
        job of a queue's window that fits at s now is tried, until the room is taken."""
        st = self.state
        if not self.waiting.active[s] or not st.up[s]:
            return
        free_c, free_g = int(st.cpu_free[s]), int(st.gpu_free[s])
        cores, cards, book = self.cores, self.cards, st.quotas
        for key in self.waiting.heads(s, free_c, free_g):
            fit = self.waiting.window(key, free_c, free_g)
            if fit is None:
                continue  # no job of its window fits the room left
            gone = []
            for idx in fit:
                if cores[idx] > free_c or cards[idx] > free_g:
                    continue  # an earlier try of this scan took the room at s
                if book is not None and book.breaking(self.jobs[idx], s) is not None:
                    if not (self.reclaims and book.only_lent(self.jobs[idx], s)):
                        continue  # its tenant's quota bars s now (freed quota room retries it: _retry_quota)
                self.status[idx] = PENDING
                if self._try(idx, enqueue=False) != QUEUED:
                    gone.append(idx)
                    free_c, free_g = int(st.cpu_free[s]), int(st.gpu_free[s])
            if gone:
                self.waiting.remove(key, gone)

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
        if self.reclaims:
            self._meter()
        over = st.quotas is not None and st.quotas.breaking(job, s) is not None  # plans do not count quotas
        if over or s in self.cuts.blocked(job, st.up) or not st.fits(job)[s]:
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
        if self.fair is not None:
            self.fair.start(self.jobs[idx], now)
        left = self.jobs[idx].runtime_h - (self.saved_h.get(idx, 0.0) if self.saved_h else 0.0)
        self.engine.schedule(now + p.transfer_h + left, self._complete, (idx, gen), COMPLETION)

    def _stop(self, idx: int, release: bool = True) -> tuple[Placement, float]:
        """Take job idx off its site (outage or eviction; `release` False: its room was given back already);
        returns its placement and start hour."""
        s = self.site_of[idx]
        if self.reclaims:
            self._meter()
        p, start = self.running[s].pop(idx)
        if release:
            self.state.release(s, self.jobs[idx])
        if self.fair is not None:
            self.fair.stop(self.jobs[idx], self.engine.now_h)
        self.gen[idx] += 1
        return p, start

    def _fair_key(self, idx: int) -> tuple:
        """Fair share's order of queued job idx now (see scheduler/fairshare.py)."""
        return self.fair.key(self.jobs[idx], idx, self.engine.now_h)

    def _retry_quota(self, tenants: tuple[str, ...]) -> None:
        """A job of `tenants[0]` (which has quotas) ended: the quota room it freed may let the queued jobs of the
        tenant and of its cohort-mates (`tenants`, in that order) use free room anywhere. Each of their queues is
        tried in order until a job still has to wait."""
        queues, st, jobs = self.waiting.queues, self.state, self.jobs
        order = {t: n for n, t in enumerate(tenants)}
        keys = [(order[t], k) for k, q in queues.items() if q and (t := jobs[q[0]].tenant) in order]
        for _, key in sorted(keys, key=lambda x: x[0]):
            head = self.jobs[queues[key][0]]
            sites = self.waiting.sites[key]
            room = st.quotas.room(head)
            fits = st.fits(head)[sites]
            lent = st.quotas.lent_mask(head) if self.reclaims else None
            if lent is not None and (fits & lent[sites]).any():
                pass  # reclaiming its lent room would let it run at a site with room: try it
            elif not (fits & (True if room is None else room[sites])).any():
                continue  # no site of the queue has room for its head within the quotas now
            gone = []
            for idx in list(islice(queues[key], self.queue_depth)):
                self.status[idx] = PENDING
                if self._try(idx, enqueue=False) == QUEUED:
                    break
                gone.append(idx)
            if gone:
                self.waiting.remove(key, gone)

    def _finish(self, idx: int, status: int, reason: str) -> None:
        self.status[idx] = status
        self.reason[idx] = reason
        self.end_h[idx] = self.engine.now_h
        if self.streamed:
            self.jobs[idx] = None

    # --- tenants: reclaim (R1), preemption (P1), borrowed hours ----------------------------------------
    def _cohort_of(self, tenant: str) -> tuple[str, ...]:
        """`tenant` and its cohort-mates (a job's end frees pool room they may borrow)."""
        t = self.tenancy
        name = t.cohort(tenant) if t is not None and t.cohorts else None
        return (tenant,) if name is None else (tenant, *(m for m in t.cohorts[name] if m != tenant))

    def _runners(self, sites=None, tenants=None):
        """The running jobs (at `sites`, None: all; of `tenants`, None: any) as scheduler/preemption.py sees them."""
        ev, jobs = self.evicted, self.jobs
        for s in range(len(self.running)) if sites is None else sites:
            for idx, (p, start) in self.running[s].items():
                if tenants is None or jobs[idx].tenant in tenants:
                    n, last = ev.get(idx, (0, -math.inf))
                    yield Running(idx, s, jobs[idx], start + p.transfer_h, int(n), last)

    def _evict_for(self, idx: int, blocked: list[int] | None) -> Placement | None:
        """Job idx found no room: reclaim its cohort's lent room (R1), else preempt lower classes at one site
        (P1). The victims are taken off tentatively; when the job then places, they are evicted and requeued,
        else put back as they were. Returns the job's placement or None."""
        job, st, now = self.jobs[idx], self.state, self.engine.now_h
        tries = []
        lent = st.quotas.lent_rules(job) if self.reclaims else None
        if lent:
            borrowers = {m.rule.tenant for b in lent for m in b.pool.members if m is not b and any(m.borrowed())}
            runners = self._runners(tenants=borrowers)
            tries.append((reclaim_victims(st.quotas, job, runners, job.id), blocked))
        if self.prio is not None and self.prio.rank(job) > self.lowest_victim_rank:
            key = self.sched.static_key(job)
            sites = self._static.get(key)
            if sites is None:
                sites = self._static[key] = self.sched.static_sites(job).tolist()
            out = set(blocked or ())
            book = st.quotas
            ok = [s for s in sites if st.up[s] and s not in out and (book is None or book.breaking(job, s) is None)]
            got = preemption_victims(job, ok, st.cpu_free, st.gpu_free, self._runners(ok), self.prio, now, job.id)
            if got is not None:
                s, victims = got
                tries.append((victims, [i for i in range(len(st.up)) if i != s]))
        for victims, block in tries:
            if not victims:
                continue
            taken = [(v, self.site_of[v.key]) for v in victims]
            for v, s in taken:
                st.release(s, self.jobs[v.key])
            d = self.sched.place(job, st, now, blocked=block)
            if d.placement is None:
                for v, s in taken:
                    st.reserve(s, self.jobs[v.key])
                continue
            for v, _ in taken:
                self._evict(v.key, v.rule, v.why)  # its room is already given back
            return d.placement
        return None

    def _evict(self, idx: int, rule: str, why: str) -> None:
        """Stop job idx (evicted by `rule`), count its lost work, keep what its checkpoints saved, requeue it."""
        now, job = self.engine.now_h, self.jobs[idx]
        s = self.site_of[idx]
        p, start = self._stop(idx, release=False)
        ran = max(0.0, now - start - p.transfer_h)
        c = self.prio.of(job) if self.prio is not None else None
        every = c.checkpoint_h if c is not None else None
        before = self.saved_h.get(idx, 0.0)
        ran = min(ran, job.runtime_h - before)
        kept = math.floor(ran / every) * every if every else 0.0
        self.seg.add(idx, p, start, ran / job.runtime_h)
        if kept:
            self.saved_h[idx] = before + kept
        self.restarts[idx] += 1
        n = self.evicted.setdefault(idx, [0, now])
        n[0], n[1] = n[0] + 1, now
        self.evictions.append(Evicted(idx, s, start, now, rule, why, ran - kept, kept))
        self.reason[idx] = why
        if self.windowed and self.sched.defers(job):
            self.status[idx] = PENDING
            self.pending.append(idx)
            self._ensure_plan()
        else:
            self._enqueue(idx)

    def _meter(self) -> None:
        """Count the borrowed cores and cards held since the last call (borrowing changes only at starts and stops)."""
        now = self.engine.now_h
        dt = now - self.meter_h
        if dt > 0:
            for b in self.lenders:
                c, g = b.borrowed()
                if c or g:
                    acc = self.borrowed.setdefault(b.rule.tenant, [0.0, 0.0])
                    acc[0] += c * dt
                    acc[1] += g * dt
        self.meter_h = now

    def _borrowed_totals(self) -> dict[str, tuple[float, float]]:
        """Borrowed (core-hours, card-hours) per tenant over the run."""
        if self.reclaims:
            self._meter()
        return {t: (a[0], a[1]) for t, a in self.borrowed.items()}
