"""The online scheduling framework, in the shape of kube-scheduler's: pre-filter (estimate), filter, score,
normalise, select, reserve; bind is the caller's (the service dispatches, the simulator schedules completion).

Everything is vectorised over sites: each filter plugin returns one boolean mask, each score plugin one
vector (lower is better). Filters run in three stages:

- static:  depend only on the job's signature (latency, residency, labels, locality) - cached;
- job:     depend on the job and the clock but not on free capacity (total capacity, deadline);
- dynamic: depend on free capacity now (free cores / cards, site up).

Opportunistic batching, four caches, each keyed by the Job fields its plugins declare they read (signature.py):
the static mask per static key (for the online policy: origin, latency bound, data class, data province, tenant,
labels); per score key (the estimate's inputs: origin, data province, resource shape, data size) the estimate and
raw static scores for all 24 start hours at once ([hours, sites], one row for runs of a day or more); per
(static mask, score key) their weighted normalised combination and site order for every hour, and the entry of
each hour of day, shared by every signature with both; and per signature a pointer to that record, so a
repeated job costs one dictionary look-up. A score key met for the first time is computed for its own hour
only; its whole day is computed when it comes back at another hour of day, or a third time in one hour (a
queued job retried at once does not pay for a day). Static score plugins may read only the estimate and the
fields of the score key, element by element (an estimate may carry a leading axis of start hours); one that
names the estimate fields it reads (`ScorePlugin.reads`) none of which depends on the start hour lets a
first sighting reuse the combination of any job alike in the job fields behind them (costs.FIELD_INPUTS):
`nearest` scores by latency, which depends on the origin alone, so jobs of every size share one.

A first sighting whose static scores are all estimate fields (the online policy's cost, carbon and latency) is
scored at its statically feasible sites only (fresh.py: the sites it can never use pruned before scoring, the
same arithmetic element by element), and its order over them is sorted only when the best site has no room.

With the caches on, a job then tries the statically feasible sites one by one in score order (each dynamic /
job filter's `admits`), up to SCAN_SITES - the site the masks and argmin would pick when no score depends on
the state - and falls back to whole masks when they are all taken. Normalisation
(min-max) runs over the statically feasible sites and every step is the same arithmetic element by element,
so the cached and the uncached pipeline take identical decisions, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from suanwang.scheduler.cache import Day, Entry, Shared, SignatureCache, combine
from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.contract import CycleState, FilterPlugin, ScorePlugin
from suanwang.scheduler.costs import HOURLY_FIELDS, Estimate, estimate, estimate_day
from suanwang.scheduler.decision import Decision, Explanation, Placement
from suanwang.scheduler.explain import first_rejections, infeasible_text
from suanwang.scheduler.fresh import KERNEL_FIELDS, Subset, fresh_entry
from suanwang.scheduler.signature import ESTIMATE_INPUTS, estimate_inputs, job_fields, key_of
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job

SCAN_SITES = 16  # fast path: sites tried one by one in score order (about 0.4 us each) before whole masks (~20 us)


class Scheduler:
    """A placement policy: filter plugins, weighted score plugins, and a selection among feasible sites.

    `weights` pairs each score plugin with its weight; with `normalise` the static scores are min-max
    normalised over the statically feasible sites before weighting (baselines with one criterion use raw
    values). `cache=False` turns opportunistic batching off (same decisions, slower).
    """

    def __init__(
        self,
        name: str,
        ctx: SchedulerContext,
        filters: Sequence[FilterPlugin],
        scores: Sequence[tuple[ScorePlugin, float]],
        *,
        normalise: bool = True,
        cache: bool = True,
    ):
        self.name = name
        self.ctx = ctx
        self.filters = list(filters)
        self.static_filters = [f for f in self.filters if f.stage == "static"]
        self.job_filters = [f for f in self.filters if f.stage == "job"]
        self.dynamic_filters = [f for f in self.filters if f.stage == "dynamic"]
        self.scores = [(p, float(w)) for p, w in scores if w != 0]
        self.static_scores = [(p, w) for p, w in self.scores if not p.dynamic]
        self.dynamic_scores = [(p, w) for p, w in self.scores if p.dynamic]
        self.normalise = normalise
        self.cache = cache
        # Cache keys, derived from what the plugins declare they read (signature.py): the static filters' fields
        # decide the static mask (and a waiting job's queue in the simulator), with their reasons' fields its
        # reasons; the estimate's inputs and the static scores' own fields the scores; both a job's signature.
        static_fields = job_fields(self.static_filters)
        score_fields = tuple(dict.fromkeys((*ESTIMATE_INPUTS, *job_fields(p for p, _ in self.static_scores))))
        self.static_key = key_of(static_fields)
        self.reason_key = key_of(job_fields(self.static_filters, reasons=True))
        self.score_key = key_of(score_fields)
        self.signature = key_of(tuple(dict.fromkeys((*static_fields, *score_fields))))
        self._scan_filters = self.dynamic_filters + self.job_filters  # the fast path's order: most selective first
        # Fast path (cached pipelines only): try the best statically feasible sites one by one; it picks
        # what the masks would when selection is the default argmin and no score depends on the state.
        self._fast = cache and not self.dynamic_scores and type(self).select is Scheduler.select
        self._weights = np.array([w for _, w in self.static_scores], dtype=float)
        self._weight_list = self._weights.tolist()
        # Scores that read no hour-dependent field and name the job fields they depend on are shared, per static
        # key, by every job alike in those fields (a first sighting then skips scoring and combining).
        inputs = self._score_inputs()
        self._share_scores = cache and inputs is not None
        self._score_inputs_key = key_of(inputs or ())
        # First sightings scored at the statically feasible sites only (fresh.py), where every static score is an
        # estimate field the kernel computes; the uncached pipeline stays the reference it is tested against.
        kernel = tuple(p.estimate_field for p, _ in self.static_scores)
        usable = self._fast and not self._share_scores and kernel and set(kernel) <= KERNEL_FIELDS
        self._kernel = kernel if usable else None
        self.caches = SignatureCache()
        self.hits = 0  # decisions whose (signature, hour) entry was cached
        self.misses = 0  # decisions that built it (from the per-signature and per-day caches when they hold it)
        self.day_misses = 0  # score keys seen first: a whole day of estimates and raw scores computed at once

    # --- pre-filter and the cached static part -------------------------------------------------------
    def _score_inputs(self) -> tuple[str, ...] | None:
        """The job fields the static scores depend on, when each names what it reads and none reads a field that
        depends on the start hour; None otherwise (scores are then cached per score key and hour)."""
        names: list[str] = []
        for p, _ in self.static_scores:
            if p.reads is None or any(f in HOURLY_FIELDS for f in p.reads):
                return None
            names += [name for name in (*p.job_fields, *estimate_inputs(p.reads)) if name not in names]
        return tuple(names)

    def _entry(self, job: Job, state: ClusterState, now_h: float) -> Entry:
        """The estimate, static mask and weighted static score for `job` at `now_h`, from the caches if enabled."""
        if not self.cache:
            return self._fresh_entry(job, state, now_h)
        hour = int(now_h) % 24
        sig = self.signature(job)
        rec = self.caches.by_signature.get(sig)
        if rec is not None:
            entry = rec.entries[hour]
            if entry is not None:
                self.hits += 1
                return entry
        self.misses += 1
        if rec is None:
            skey = self.score_key(job)
            if skey not in self.caches.days:
                # First sighting of this score key: this hour alone. A whole day costs several first sightings
                # and pays off only when the key comes back at other hours: it is computed when the key is met in
                # a second hour of day, or a third time in the same hour (a queued job retried at once is not).
                seen = self.caches.seen.get(skey)
                if seen is None or (seen[0] == hour and seen[1] < 2):
                    self.caches.remember(self.caches.seen, skey, (hour, 1 if seen is None else seen[1] + 1))
                    return self._fresh_entry(job, state, now_h)
            rec = self.caches.remember(self.caches.by_signature, sig, self._shared(job, state, now_h, skey))
        return rec.entry(hour)

    def _shared(self, job: Job, state: ClusterState, now_h: float, skey: tuple) -> Shared:
        """The cached record of `job`'s static mask and score key `skey`: their day of estimates, combined scores
        and entries."""
        self.caches.make_room_for_a_day()  # memory bound
        day = self.caches.days.get(skey)
        if day is None:
            self.day_misses += 1
            est = estimate_day(self.ctx, job)
            cs = CycleState(self.ctx, job, state, now_h, est)
            matrix = np.empty((est.cost_cny.shape[0], len(self.static_scores), len(self.ctx.sites)))
            for k, (p, _) in enumerate(self.static_scores):
                matrix[:, k, :] = p.score(cs)  # static scores are element-wise in the estimate: [rows, sites]
            day = self.caches.days[skey] = Day(est, matrix)
        static = self._static_mask(job, state, now_h, day.estimate)
        ckey = (static.tobytes(), skey)  # jobs of other signatures may share both the mask and the scores
        shared = self.caches.combined.get(ckey)
        if shared is None:
            totals = combine(day.matrix, self._weights, static, self.normalise)
            shared = self.caches.combined[ckey] = Shared(static, day, totals, int(static.sum()))
        return shared

    def _static_mask(self, job: Job, state: ClusterState, now_h: float, est: Estimate, fkey=None) -> np.ndarray:
        """The static filters' mask for `job` (cached per static key `fkey`, default static_key(job), when caching
        is on)."""
        if self.cache and fkey is None:
            fkey = self.static_key(job)
        static = self.caches.static.get(fkey) if self.cache else None
        if static is None:
            cs = CycleState(self.ctx, job, state, now_h, est)
            static = np.ones(len(self.ctx.sites), dtype=bool)
            for f in self.static_filters:
                static &= f.filter(cs)
            static.setflags(write=False)
            if self.cache:
                self.caches.remember(self.caches.static, fkey, static)
        return static

    def _fresh_entry(self, job: Job, state: ClusterState, now_h: float) -> Entry:
        """The uncached pipeline: estimate, static filters and combination for this job at `now_h` alone."""
        if self._kernel is not None:
            est = estimate(self.ctx, job, now_h, lazy=True)
            fkey = self.static_key(job)
            static = self._static_mask(job, state, now_h, est, fkey)
            key = (fkey, job.origin, job.data_province)
            sub = self.caches.subsets.get(key)
            if sub is None:
                sub = Subset(static, est.parts, self._kernel, self._weights, self.normalise)
                self.caches.remember(self.caches.subsets, key, sub)
            entry = fresh_entry(est, static, sub, self._kernel, self._weight_list, self.normalise)
            if entry is not None:
                return entry
            return Entry(est, static, *self._combination(job, state, now_h, est, static), None)
        if not self._share_scores:
            est = estimate(self.ctx, job, now_h)
            static = self._static_mask(job, state, now_h, est)
            return Entry(est, static, *self._combination(job, state, now_h, est, static), None)
        # Jobs alike in the scores' inputs share their combination, so most first sightings read no more of the
        # estimate than a filter's few sites and the chosen site's predictions: computed as they are read.
        est = estimate(self.ctx, job, now_h, lazy=True)
        fkey = self.static_key(job)
        static = self._static_mask(job, state, now_h, est, fkey)
        key = (fkey, self._score_inputs_key(job))
        scores = self.caches.scores.get(key)
        if scores is None:  # equal for every job with these inputs: the same arithmetic on the same numbers
            scores = self.caches.remember(self.caches.scores, key, self._combination(job, state, now_h, est, static))
        return Entry(est, static, *scores, None)

    def _combination(self, job: Job, state: ClusterState, now_h: float, est: Estimate, static: np.ndarray) -> tuple:
        """(weighted static score with +inf outside `static`, raw static scores [scores, sites], the statically
        feasible sites in score order) of `job` at `now_h` given its estimate."""
        cs = CycleState(self.ctx, job, state, now_h, est)
        n = len(self.ctx.sites)
        matrix = np.array([p.score(cs) for p, _ in self.static_scores], dtype=float).reshape(len(self.static_scores), n)
        total = combine(matrix, self._weights, static, self.normalise)
        order = np.argsort(total, kind="stable")[: int(static.sum())].tolist() if self._fast else []
        return total, matrix, order

    # --- selection -----------------------------------------------------------------------------------
    def select(self, cs: CycleState, candidates: np.ndarray, total: np.ndarray) -> int:
        """The chosen site among `candidates`: the lowest total score, lowest index on ties; -1 if none."""
        i = int(np.where(candidates, total, np.inf).argmin())
        return i if candidates[i] else -1

    # --- the policy interface (policy.Policy) ----------------------------------------------------------
    window_h: float | None = None  # an online policy defers nothing

    def defers(self, job: Job) -> bool:
        """An online policy places every job on arrival."""
        return False

    def plan(
        self, jobs: list[Job], state: ClusterState, now_h: float, free: tuple[np.ndarray, np.ndarray] | None = None
    ) -> list[Decision]:
        """Each job placed now, in order (an online policy has no window to plan)."""
        return [self.place(job, state, now_h) for job in jobs]

    def may_fit_later(self, job: Job, now_h: float) -> bool:
        """Whether some site passes the job's static and job rules (it could run once room frees)."""
        est = estimate(self.ctx, job, now_h)
        cs = CycleState(self.ctx, job, ClusterState.from_sites(self.ctx.sites), now_h, est)
        mask = self._static_mask(job, cs.state, now_h, est).copy()
        for f in self.job_filters:
            mask &= np.asarray(f.filter(cs), dtype=bool)
        return bool(mask.any())

    def static_sites(self, job: Job) -> np.ndarray:
        """The indices of the sites that pass every static filter for `job` (where it may ever go)."""
        state = ClusterState.from_sites(self.ctx.sites)
        cs = CycleState(self.ctx, job, state, 0.0, estimate(self.ctx, job))
        mask = np.ones(len(self.ctx.sites), dtype=bool)
        for f in self.static_filters:
            mask &= np.asarray(f.filter(cs), dtype=bool)
        return np.flatnonzero(mask)

    # --- the cycle -----------------------------------------------------------------------------------
    def place(
        self, job: Job, state: ClusterState, now_h: float, explain: bool = False, blocked: list[int] | None = None
    ) -> Decision:
        """Decide where `job` runs at hour `now_h`; on placement the capacity is reserved in `state`.

        blocked: site indices the job may not use now (they count as down for this decision, e.g. its data would
        cross a cut link). retryable=True: some site passes every static and job rule but none has room now
        (keep it queued).
        """
        if blocked:
            up = state.up
            was = up[blocked].copy()
            up[blocked] = False
            try:
                return self._place(job, state, now_h, explain)
            finally:
                up[blocked] = was
        return self._place(job, state, now_h, explain)

    def _place(self, job: Job, state: ClusterState, now_h: float, explain: bool) -> Decision:
        entry = self._entry(job, state, now_h)
        cs = CycleState(self.ctx, job, state, now_h, entry.estimate)
        if self._fast and not explain:
            scan, first = self._scan_filters, entry.first
            if first >= 0:  # the best site first: a first sighting then needs no whole order
                for f in scan:
                    if not f.admits(cs, first):
                        break
                else:
                    return self._bind(job, state, now_h, entry, first, None)
            order = entry.order
            for i in order[1:SCAN_SITES]:
                for f in scan:
                    if not f.admits(cs, i):
                        break
                else:
                    return self._bind(job, state, now_h, entry, i, None)
            if len(order) <= SCAN_SITES:  # every statically feasible site is full now: count those that may free up
                n = sum(all(f.admits(cs, i) for f in self.job_filters) for i in order)
                if n:
                    return self._wait(job, n, None)
        feasible = entry.static
        masks = []  # each job and dynamic filter's mask, for the explanation
        for f in self.job_filters:
            mask = f.filter(cs)
            masks.append((f, mask))
            if mask is not self.ctx.all_sites:
                feasible = feasible & mask
        free = feasible
        for f in self.dynamic_filters:
            mask = f.filter(cs)
            masks.append((f, mask))
            free = free & mask
        total = entry.score
        for p, w in self.dynamic_scores:
            total = total + w * p.score(cs)
        why = self.explain(cs, entry, total, masks) if explain else None
        i = self.select(cs, free, total)
        if i < 0:
            n = int(np.count_nonzero(feasible))
            if n:
                return self._wait(job, n, why)
            return Decision(job.id, None, self.infeasible_reason(cs), why, self.name, False)
        return self._bind(job, state, now_h, entry, i, why)

    def _wait(self, job: Job, n: int, why: Explanation | None) -> Decision:
        """The retryable decision: `n` sites pass every static and job rule but none has room now."""
        reason = f"no free capacity now at any of {n} feasible site(s); retry later"
        return Decision(job.id, None, reason, why, self.name, True)

    def _bind(self, job: Job, state: ClusterState, now_h: float, entry: Entry, i: int, why) -> Decision:
        """Reserve site i for `job` and build the decision with its predictions."""
        state.reserve(i, job)
        site_id = self.ctx.site_ids[i]
        rows = entry.predictions
        predicted = rows[i].tolist() if rows is not None else entry.estimate.at(i)
        placement = Placement(job.id, site_id, i, now_h, *predicted)
        return Decision(job.id, placement, "placed at " + site_id, why, self.name, False)

    # --- explanations --------------------------------------------------------------------------------
    def static_rejections(self, cs: CycleState) -> list[str]:
        """For every site: '' if it passes every static filter, else the reason of the first that rejects it
        (cached per reason key when caching is on; the caller must not change the list)."""
        key = self.reason_key(cs.job) if self.cache else None
        out = self.caches.static_reasons.get(key) if self.cache else None
        if out is None:
            out = first_rejections(self.static_filters, cs, len(self.ctx.sites))
            if self.cache:
                self.caches.remember(self.caches.static_reasons, key, out)
        return out

    def rejections(self, cs: CycleState, masks: list | None = None) -> list[str]:
        """For every site: '' if it passes every filter, else the reason of the first filter that rejects it
        (static, then job, then dynamic filters). `masks`: each job and dynamic filter's mask, already computed."""
        if masks is None:
            masks = [(f, f.filter(cs)) for f in self.job_filters + self.dynamic_filters]
        out = list(self.static_rejections(cs))
        open_ = np.array([not r for r in out])  # sites no filter has rejected yet
        for f, mask in masks:
            bad = np.flatnonzero(open_ & ~np.asarray(mask, dtype=bool))
            for i in bad.tolist():
                out[i] = f.reason(cs, i)
            open_[bad] = False
        return out

    def explain(self, cs: CycleState, entry: Entry, total: np.ndarray, masks: list | None = None) -> Explanation:
        """Every site's verdict: passed, or the first rule that rejected it; its raw static scores and total."""
        names = [p.name for p, _ in self.static_scores]
        return Explanation(self.ctx.site_ids, self.rejections(cs, masks), names, entry.matrix, total)

    def infeasible_reason(self, cs: CycleState) -> str:
        """Why no site can ever take the job: each rejecting rule with its site count and one example."""
        return infeasible_text(cs.job.id, self.rejections(cs))
