"""batch-lp: the batch plan and the online pipeline as one policy, as an operator would run them.

Batch-class jobs are deferred: the driver collects them and asks for a plan every `window_h` hours (slots of
`slot_h`, a 24 h horizon); the batch optimiser may start them later (temporal shifting). Real-time and
interactive jobs cannot wait for a window: they go to the online pipeline on arrival, and so do jobs no plan
can fit and planned starts that find their site full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.decision import Decision
from suanwang.scheduler.framework import Scheduler
from suanwang.scheduler.online import online_policy
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job, LatencyClass

DEADLINE_MARGIN_H = 2.0  # plans aim to finish this much before a deadline (at most a quarter of the slack)


class BatchHybrid:
    """The `batch-lp` policy: windowed batch plans for batch-class jobs, the online pipeline for the rest."""

    name = "batch-lp"

    def __init__(
        self,
        ctx: SchedulerContext,
        weights: Mapping[str, float] | None = None,
        *,
        window_h: float = 1.0,
        slot_h: float = 1.0,
        cache: bool = True,
    ):
        from suanwang.scheduler.optimize import BatchOptimizer  # HiGHS loads only when a plan is wanted

        self.ctx = ctx
        self.window_h = float(window_h)
        self.online: Scheduler = online_policy(ctx, weights, cache=cache, name=self.name)
        self.optimizer = BatchOptimizer(
            ctx, weights, slot_h=slot_h, horizon_slots=max(1, round(24.0 / slot_h)), mip_max_cols=0
        )

    @property
    def slot_h(self) -> float:
        """Hours per plan slot."""
        return self.optimizer.slot_h

    @property
    def horizon_slots(self) -> int:
        """Slots a plan looks ahead."""
        return self.optimizer.horizon_slots

    def defers(self, job: Job) -> bool:
        """Batch-class jobs wait for the next plan."""
        return job.latency_class == LatencyClass.BATCH

    def place(
        self, job: Job, state: ClusterState, now_h: float, explain: bool = False, blocked: list[int] | None = None
    ) -> Decision:
        """The online pipeline's decision now (see Scheduler.place)."""
        return self.online.place(job, state, now_h, explain, blocked)

    def plan(
        self, jobs: list[Job], state: ClusterState, now_h: float, free: tuple[np.ndarray, np.ndarray] | None = None
    ) -> list[Decision]:
        """The batch plan of `jobs` from `now_h`, each deadline pulled in by a safety margin (`with_margin`)."""
        return self.optimizer.plan([with_margin(j, now_h) for j in jobs], state, now_h, free).decisions

    def may_fit_later(self, job: Job, now_h: float) -> bool:
        """Whether a job no plan could fit now may still run later: some site passes its static rules and could
        hold it when empty, and its deadline can still be met."""
        from suanwang.scheduler.optimize import static_mask

        if job.deadline_h is not None and now_h + job.runtime_h > job.deadline_h:
            return False
        return bool(static_mask(self.ctx, job).any())

    def static_key(self, job: Job) -> tuple:
        """The online pipeline's static key of `job` (see Scheduler)."""
        return self.online.static_key(job)

    def static_sites(self, job: Job) -> np.ndarray:
        """The online pipeline's statically feasible sites for `job` (indices)."""
        return self.online.static_sites(job)


def with_margin(job: Job, now_h: float) -> Job:
    """The job as the planner should see it: its deadline pulled in by a safety margin (a quarter of its slack,
    at most `DEADLINE_MARGIN_H`), so a late-planned start that finds its site full still has time."""
    if job.deadline_h is None:
        return job
    slack = job.deadline_h - now_h - job.runtime_h
    margin = min(DEADLINE_MARGIN_H, max(0.0, 0.25 * slack))
    return replace(job, deadline_h=job.deadline_h - margin) if margin > 0 else job
