"""Job classes for the batch optimiser: jobs that are interchangeable in the plan, and their hard site filters
(the online pipeline's filter plugins, so one set of rules and one wording of reasons).

Two jobs share a class when everything the plan depends on is equal: where the data lives, the latency bound
(and the origin city, only when the bound is finite), data class, tenant, labels, cores, cards, runtime, data
sizes, the slot from which the job may start and its deadline rounded DOWN to the slot grid (conservative:
the plan never schedules a miss). Jobs of one class are symmetric, so an LP over class counts is the exact
relaxation of the per-job problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.contract import CycleState, FilterPlugin
from suanwang.scheduler.costs import estimate
from suanwang.scheduler.explain import first_rejections, infeasible_text
from suanwang.scheduler.online import hard_filters
from suanwang.scheduler.plugins.capacity import CapacityFilter
from suanwang.scheduler.signature import estimate_inputs, job_fields
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job

_EPS = 1e-9


def plan_filters() -> list[FilterPlugin]:
    """The hard filters a plan applies site by site: the online policy's own (`online.hard_filters`), those that
    read neither the clock nor the free room - the static ones and total capacity. (The plan meets deadlines
    and free room slot by slot itself.)"""
    return [f for f in hard_filters() if f.stage == "static" or isinstance(f, CapacityFilter)]


_FILTERS = plan_filters()


def _cycle(ctx: SchedulerContext, job: Job) -> CycleState:
    """A cycle for the plan filters: a lazy estimate (they read its latency only) and the state of empty sites."""
    state = ClusterState.from_sites(ctx.sites)
    return CycleState(ctx, job, state, job.submit_h, estimate(ctx, job, lazy=True))


def static_masks(ctx: SchedulerContext, job: Job) -> dict[str, np.ndarray]:
    """Each plan filter's boolean vector over ctx.sites (True = passes), keyed by the filter's name: latency,
    residency, labels, capacity (the same plugins, so the same rules, as the online pipeline)."""
    cs = _cycle(ctx, job)
    return {f.name: np.asarray(f.filter(cs), dtype=bool) for f in _FILTERS}


def static_mask(ctx: SchedulerContext, job: Job) -> np.ndarray:
    """Boolean vector over ctx.sites: True where the site passes every plan filter for `job`."""
    cs = _cycle(ctx, job)
    mask = np.ones(len(ctx.sites), dtype=bool)
    for f in _FILTERS:
        mask &= np.asarray(f.filter(cs), dtype=bool)
    return mask


def rejection_reason(ctx: SchedulerContext, job: Job) -> str:
    """Why no site passes the plan filters for `job`, in the online pipeline's words (each rejecting rule with
    its site count and one example); '' when some site passes."""
    cs = _cycle(ctx, job)
    reasons = first_rejections(_FILTERS, cs, len(ctx.sites))
    return infeasible_text(job.id, reasons) if all(reasons) else ""


@dataclass
class JobClasses:
    """The window's jobs grouped into classes (index c). Arrays are per class; `members[c]` lists job indices."""

    reps: list[Job]  # one representative job per class
    members: list[np.ndarray]  # job indices (into the window's job list), highest priority first
    count: np.ndarray  # [C] jobs per class
    release_slot: np.ndarray  # [C] first slot a job may start in
    deadline_rel_h: np.ndarray  # [C] deadline in hours after now, rounded down to the slot grid (inf: none)

    def __len__(self) -> int:
        return len(self.reps)


# What a plan reads of a job: its plan filters' fields, and the inputs of the estimate fields it prices and
# reports (derived from the plugins' declarations and costs.FIELD_INPUTS, see signature.py).
PLAN_ESTIMATE = ("cost_cny", "carbon_kg", "energy_kwh", "transfer_h", "transfer_gb")
CLASS_FIELDS = tuple(dict.fromkeys((*job_fields(_FILTERS), *estimate_inputs(PLAN_ESTIMATE))))
_LATENCY_INPUTS = frozenset(estimate_inputs(("latency_ms",)))


def class_key(job: Job, release_slot: int, deadline_slot: int) -> tuple:
    """The tuple that decides class membership (see module docstring): CLASS_FIELDS, labels as a set, and the
    latency filter's inputs only when the bound is finite (else it passes everywhere, whatever the origin)."""
    finite = math.isfinite(job.latency_bound_ms)
    key = [
        ("" if not finite and f in _LATENCY_INPUTS else tuple(sorted(v)) if f == "labels" else v)
        for f in CLASS_FIELDS
        for v in (getattr(job, f),)
    ]
    return (*key, release_slot, deadline_slot)


def group_jobs(jobs: list[Job], now_h: float, slot_h: float) -> JobClasses:
    """Group `jobs` into classes for a plan starting at `now_h` (hours) with slots of `slot_h` hours."""
    index: dict[tuple, int] = {}
    reps: list[Job] = []
    members: list[list[int]] = []
    release: list[int] = []
    deadline: list[float] = []
    for j, job in enumerate(jobs):
        rel = max(0, math.ceil((job.submit_h - now_h) / slot_h - _EPS))
        if job.deadline_h is None:
            dl_slot, dl_h = -1, math.inf
        else:
            dl_slot = math.floor((job.deadline_h - now_h) / slot_h + _EPS)
            dl_h = dl_slot * slot_h
        key = class_key(job, rel, dl_slot)
        c = index.get(key)
        if c is None:
            c = index[key] = len(reps)
            reps.append(job)
            members.append([])
            release.append(rel)
            deadline.append(dl_h)
        members[c].append(j)
    ordered = [
        np.array(sorted(m, key=lambda j: (-jobs[j].priority, jobs[j].submit_h, j)), dtype=np.int64) for m in members
    ]
    return JobClasses(
        reps=reps,
        members=ordered,
        count=np.array([len(m) for m in members], dtype=np.int64),
        release_slot=np.array(release, dtype=np.int64),
        deadline_rel_h=np.array(deadline, dtype=float),
    )
