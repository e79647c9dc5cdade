"""Deadline: now + transfer time + runtime must not pass the job's deadline (hours)."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin


class DeadlineFilter(FilterPlugin):
    """Sites where the job, starting now, moves its input and finishes by its deadline_h."""

    name = "deadline"
    stage = "job"
    job_fields = ("deadline_h", "runtime_h")
    reads = ("transfer_h",)

    def filter(self, cs: CycleState) -> np.ndarray:
        job = cs.job
        if job.deadline_h is None:
            return cs.ctx.all_sites
        return cs.now_h + cs.estimate.transfer_h + job.runtime_h <= job.deadline_h

    def admits(self, cs: CycleState, i: int) -> bool:
        job = cs.job
        return job.deadline_h is None or cs.now_h + cs.estimate.transfer_h_at(i) + job.runtime_h <= job.deadline_h

    def reason(self, cs: CycleState, i: int) -> str:
        job = cs.job
        t = cs.estimate.transfer_h[i]
        end = cs.now_h + t + job.runtime_h
        return (
            f"deadline: now {cs.now_h:g} h + transfer {t:.2f} h + runtime {job.runtime_h:g} h = {end:.2f} h "
            f"> deadline {job.deadline_h:g} h"
        )
