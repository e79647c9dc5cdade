"""Job classes for the batch optimiser: jobs that are interchangeable in the plan, and their hard site filters.

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
from suanwang.workload.job import Job

_EPS = 1e-9


def static_masks(ctx: SchedulerContext, job: Job) -> dict[str, np.ndarray]:
    """Each hard static filter as a boolean vector over ctx.sites (True = passes), keyed by rule name.

    latency: one-way ms from the origin <= the job's bound; residency: the context's residency shield (the same
    rules the online filters apply); labels: the site carries every label the job asks for; capacity: the site's
    total cores and cards can hold the job at all.
    """
    bound = job.latency_bound_ms
    latency = ctx.latency_row(job.origin) <= bound if math.isfinite(bound) else ctx.all_sites
    residency = ctx.shield.allowed(job.data_class, job.data_province, job.tenant)
    labels = ctx.label_mask(tuple(job.labels))
    capacity = np.array([s.cpu_cores >= job.cpu_cores and s.gpu_cards >= job.gpu_cards for s in ctx.sites])
    return {"latency": latency, "residency": residency, "labels": labels, "capacity": capacity}


def static_mask(ctx: SchedulerContext, job: Job) -> np.ndarray:
    """Boolean vector over ctx.sites: True where the site passes every hard static rule for `job`."""
    masks = static_masks(ctx, job)
    return masks["latency"] & masks["residency"] & masks["labels"] & masks["capacity"]


def rejection_reason(ctx: SchedulerContext, job: Job) -> str:
    """Why no site passes the static rules for `job`: the rules that emptied the site list, in order."""
    masks = static_masks(ctx, job)
    alive = np.ones(len(ctx.sites), dtype=bool)
    passed: list[str] = []
    for rule, mask in masks.items():
        if not (alive & mask).any():
            after = f" among the sites that pass {', '.join(passed)}" if passed else ""
            return f"no site passes {_rule_text(ctx, rule, job, alive)}{after}"
        alive &= mask
        passed.append(rule)
    return ""


def _rule_text(ctx: SchedulerContext, rule: str, job: Job, alive: np.ndarray) -> str:
    if rule == "latency":
        return f"latency (one-way <= {job.latency_bound_ms:g} ms from {job.origin})"
    if rule == "residency":
        first = int(np.nonzero(alive)[0][0])
        return ctx.shield.reason(first, job.data_class, job.data_province, job.tenant) or "residency"
    if rule == "labels":
        return f"labels (needs {', '.join(job.labels)})"
    return f"capacity (no site has {job.cpu_cores} cores and {job.gpu_cards} cards in total)"


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


def class_key(job: Job, release_slot: int, deadline_slot: int) -> tuple:
    """The tuple that decides class membership (see module docstring)."""
    bound = job.latency_bound_ms
    return (
        job.origin if math.isfinite(bound) else "",
        job.data_province,
        bound,
        job.data_class,
        job.tenant,
        tuple(sorted(job.labels)),
        job.cpu_cores,
        job.gpu_cards,
        job.runtime_h,
        job.input_gb,
        job.output_gb,
        release_slot,
        deadline_slot,
    )


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
