"""The online scheduling framework, in the shape of kube-scheduler's: pre-filter (estimate), filter, score,
normalise, select, reserve; bind is the caller's (the service dispatches, the simulator schedules completion).

Everything is vectorised over sites: each filter plugin returns one boolean mask, each score plugin one
vector (lower is better). Filters run in three stages:

- static:  depend only on the job's signature (latency, residency, labels, locality) - cached;
- job:     depend on the job and the clock but not on free capacity (total capacity, deadline);
- dynamic: depend on free capacity now (free cores / cards, site up).

Opportunistic batching, four caches: the static mask per static key (origin, data province, latency bound,
data class, tenant, labels); the estimate and raw static scores per score key (origin, data province, resource
shape, data size, hour of day); their weighted normalised combination per (static mask, score key), and the
result per (signature, hour) for the common case of a repeated signature. Static score plugins may read only
the estimate and the fields of the score key. With the caches on, a job then tries the best few statically
feasible sites one by one (each job / dynamic filter's `admits`) - the site the masks and argmin would pick
when no score depends on the state - and falls back to whole masks when they are all taken. Normalisation
(min-max) runs over the statically feasible sites, so the cached and the uncached pipeline take identical
decisions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.costs import Estimate, estimate
from suanwang.scheduler.decision import Decision, Placement, Verdict
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job

CACHE_ENTRIES = 32768  # signatures kept before the cache is cleared (memory bound, not a fact about the world)
SCAN_SITES = 4  # fast path: sites tried one by one in score order before falling back to whole masks


class CycleState:
    """What one scheduling cycle (one job, one decision) knows; plugins read it and never call each other."""

    __slots__ = ("ctx", "job", "state", "now_h", "estimate", "data")

    def __init__(self, ctx: SchedulerContext, job: Job, state: ClusterState, now_h: float, est: Estimate):
        self.ctx, self.job, self.state, self.now_h, self.estimate = ctx, job, state, now_h, est
        self.data: dict = {}


class FilterPlugin:
    """Drops infeasible sites. `filter` returns a boolean mask over sites; `reason` explains a False."""

    name: ClassVar[str] = "filter"
    stage: ClassVar[str] = "static"  # static / job / dynamic (see module docstring)

    def filter(self, cs: CycleState) -> np.ndarray:
        raise NotImplementedError

    def reason(self, cs: CycleState, i: int) -> str:
        """Why site i fails this filter, e.g. 'latency: 28.1 ms one-way > 5 ms (realtime)'."""
        raise NotImplementedError

    def admits(self, cs: CycleState, i: int) -> bool:
        """Whether site i passes, for one site (the fast path); must agree with `filter`."""
        return bool(self.filter(cs)[i])


class ScorePlugin:
    """Rates sites: a raw vector over sites in the plugin's unit, lower is better."""

    name: ClassVar[str] = "score"
    unit: ClassVar[str] = ""
    dynamic: ClassVar[bool] = False  # True: depends on the cluster state now (never cached), already in 0..1

    def score(self, cs: CycleState) -> np.ndarray:
        raise NotImplementedError


def combine(matrix: np.ndarray, weights: np.ndarray, static: np.ndarray, normalise: bool) -> np.ndarray:
    """Weighted sum of score rows (`matrix` [scores, sites]); with `normalise` each row is first min-max scaled
    to 0..1 over the statically feasible sites (a row that is constant there counts 0). +inf outside `static`."""
    if len(weights) == 0:
        total = np.zeros(matrix.shape[1])
    elif normalise and static.any():
        feasible = matrix[:, static]
        lo = feasible.min(axis=1, keepdims=True)
        span = feasible.max(axis=1, keepdims=True) - lo
        total = weights @ ((matrix - lo) / np.where(span > 0, span, np.inf))
    else:
        total = weights @ matrix
    return np.where(static, total, np.inf)


@dataclass
class _Entry:
    """Cached per (job signature, hour of day): the estimate, static mask and weighted static score."""

    estimate: Estimate
    static: np.ndarray
    score: np.ndarray  # +inf outside `static`
    raw: dict[str, np.ndarray]
    order: list[int]  # the statically feasible sites, best score first (lowest index on ties)
    per_site: list[tuple]  # (cost, energy, carbon, latency, transfer_h, transfer_gb) per site, as floats


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
        self._later_filters = self.job_filters + self.dynamic_filters
        # Fast path (cached pipelines only): try the best statically feasible sites one by one; it picks
        # what the masks would when selection is the default argmin and no score depends on the state.
        self._fast = cache and not self.dynamic_scores and type(self).select is Scheduler.select
        self._weights = np.array([w for _, w in self.static_scores], dtype=float)
        self._cache: dict[tuple, _Entry] = {}  # (signature, hour) -> entry
        self._scored: dict[tuple, tuple] = {}  # score_key -> (estimate, raw scores, per-site predictions)
        self._static: dict[tuple, np.ndarray] = {}  # static_key -> static mask
        self._combined: dict[tuple, _Entry] = {}  # (static mask bytes, score_key) -> entry

    # --- pre-filter and the cached static part -------------------------------------------------------
    @staticmethod
    def hour_key(job: Job, now_h: float) -> int:
        """The hour of day the estimate depends on (-1: the run spans a whole day, any hour will do)."""
        return -1 if math.ceil(job.runtime_h) >= 24 else int(now_h) % 24

    @staticmethod
    def static_key(job: Job) -> tuple:
        """What static filters read: where the job comes from, its latency bound, data rules and labels."""
        return (
            job.origin,
            job.origin_province,
            job.data_province,
            job.latency_bound_ms,
            job.data_class,
            job.tenant,
            job.labels,
        )

    @staticmethod
    def score_key(job: Job, hour: int) -> tuple:
        """What the estimate and static scores read: origin, data province, resource shape, data size, hour."""
        return (
            job.origin,
            job.data_province,
            job.cpu_cores,
            job.gpu_cards,
            job.runtime_h,
            job.input_gb,
            job.output_gb,
            hour,
        )

    @staticmethod
    def _remember(cache: dict, key, value):
        if len(cache) >= CACHE_ENTRIES:
            cache.clear()
        cache[key] = value
        return value

    def _entry(self, job: Job, state: ClusterState, now_h: float) -> _Entry:
        """The estimate, static mask and weighted static score for `job` at `now_h`, from the caches if enabled."""
        hour = self.hour_key(job, now_h)
        key = (job.signature, hour)
        if self.cache:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        skey = self.score_key(job, hour)
        scored = self._scored.get(skey) if self.cache else None
        if scored is None:
            est = estimate(self.ctx, job, now_h)
            cs = CycleState(self.ctx, job, state, now_h, est)
            matrix = np.array([p.score(cs) for p, _ in self.static_scores], dtype=float).reshape(
                len(self.static_scores), len(self.ctx.sites)
            )
            cols = (est.cost_cny, est.energy_kwh, est.carbon_kg, est.latency_ms, est.transfer_h, est.transfer_gb)
            scored = (est, matrix, list(zip(*(np.asarray(c, dtype=float).tolist() for c in cols), strict=True)))
            if self.cache:
                self._remember(self._scored, skey, scored)
        est, matrix, per_site = scored
        fkey = self.static_key(job)
        static = self._static.get(fkey) if self.cache else None
        if static is None:
            cs = CycleState(self.ctx, job, state, now_h, est)
            static = np.ones(len(self.ctx.sites), dtype=bool)
            for f in self.static_filters:
                static &= f.filter(cs)
            static.setflags(write=False)
            if self.cache:
                self._remember(self._static, fkey, static)
        ckey = (static.tobytes(), skey)  # jobs of other signatures may share both the mask and the scores
        entry = self._combined.get(ckey) if self.cache else None
        if entry is None:
            total = combine(matrix, self._weights, static, self.normalise)
            raw = {p.name: matrix[k] for k, (p, _) in enumerate(self.static_scores)}
            order = np.argsort(total, kind="stable")[: int(static.sum())].tolist()
            entry = _Entry(est, static, total, raw, order, per_site)
            if self.cache:
                self._remember(self._combined, ckey, entry)
        if self.cache:
            self._remember(self._cache, key, entry)
        return entry

    # --- selection -----------------------------------------------------------------------------------
    def select(self, cs: CycleState, candidates: np.ndarray, total: np.ndarray) -> int:
        """The chosen site among `candidates`: the lowest total score, lowest index on ties; -1 if none."""
        i = int(np.where(candidates, total, np.inf).argmin())
        return i if candidates[i] else -1

    # --- the cycle -----------------------------------------------------------------------------------
    def place(self, job: Job, state: ClusterState, now_h: float, explain: bool = False) -> Decision:
        """Decide where `job` runs at hour `now_h`; on placement the capacity is reserved in `state`.

        retryable=True: some site passes every static and job rule but none has room now (keep it queued).
        """
        entry = self._entry(job, state, now_h)
        cs = CycleState(self.ctx, job, state, now_h, entry.estimate)
        if self._fast and not explain:
            for i in entry.order[:SCAN_SITES]:
                if all(f.admits(cs, i) for f in self._later_filters):
                    return self._bind(job, state, now_h, entry, i, None)
        feasible = entry.static
        for f in self.job_filters:
            feasible = feasible & f.filter(cs)
        free = feasible
        for f in self.dynamic_filters:
            free = free & f.filter(cs)
        total = entry.score
        for p, w in self.dynamic_scores:
            total = total + w * p.score(cs)
        verdicts = self.explain(cs, entry, total) if explain else None
        i = self.select(cs, free, total)
        if i < 0:
            if feasible.any():
                n = int(feasible.sum())
                reason = f"no free capacity now at any of {n} feasible site(s); retry later"
                return Decision(job.id, None, reason, verdicts, self.name, True)
            return Decision(job.id, None, self.infeasible_reason(cs), verdicts, self.name, False)
        return self._bind(job, state, now_h, entry, i, verdicts)

    def _bind(self, job: Job, state: ClusterState, now_h: float, entry: _Entry, i: int, verdicts) -> Decision:
        """Reserve site i for `job` and build the decision with its predictions."""
        state.reserve(i, job)
        cost, energy, carbon, latency, transfer_h, transfer_gb = entry.per_site[i]
        placement = Placement(
            job.id, self.ctx.site_ids[i], i, now_h, cost, energy, carbon, latency, transfer_h, transfer_gb
        )
        return Decision(job.id, placement, f"placed at {placement.site_id}", verdicts, self.name, False)

    # --- explanations --------------------------------------------------------------------------------
    def rejections(self, cs: CycleState) -> list[str]:
        """For every site: '' if it passes every filter, else the reason of the first filter that rejects it."""
        out = [""] * len(self.ctx.sites)
        for f in self.static_filters + self.job_filters + self.dynamic_filters:
            bad = np.flatnonzero(~np.asarray(f.filter(cs), dtype=bool))
            for i in bad:
                if not out[i]:
                    out[i] = f.reason(cs, int(i))
        return out

    def explain(self, cs: CycleState, entry: _Entry, total: np.ndarray) -> list[Verdict]:
        """The verdict of every site: passed, or the rule that rejected it; and its raw and total scores."""
        reasons = self.rejections(cs)
        verdicts = []
        for i, site_id in enumerate(self.ctx.site_ids):
            scores = {name: float(v[i]) for name, v in entry.raw.items()}
            if np.isfinite(total[i]):
                scores["total"] = float(total[i])
            verdicts.append(Verdict(site_id, not reasons[i], reasons[i], scores))
        return verdicts

    def infeasible_reason(self, cs: CycleState) -> str:
        """Why no site can ever take the job: each rejecting rule with its site count and one example."""
        groups: dict[str, list[str]] = {}
        for r in self.rejections(cs):
            if r:
                groups.setdefault(r.split(":", 1)[0], []).append(r)
        parts = [f"{rule} rejects {len(rs)} site(s) (e.g. {rs[0]})" for rule, rs in groups.items()]
        return f"no site can take job {cs.job.id}: " + "; ".join(parts)
