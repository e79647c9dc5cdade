"""Residency (数盾): sites the policy rules allow for the job's data class, data province and tenant."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin


class ResidencyFilter(FilterPlugin):
    """Sites every applicable residency rule allows; a rejection names the rule id."""

    name = "residency"
    stage = "static"
    job_fields = ("data_class", "data_province", "tenant")

    def filter(self, cs: CycleState) -> np.ndarray:
        job = cs.job
        return cs.ctx.shield.allowed(job.data_class, job.data_province, job.tenant)

    def reason(self, cs: CycleState, i: int) -> str:
        job = cs.job
        return cs.ctx.shield.reason(i, job.data_class, job.data_province, job.tenant)
