"""Locality (the local-only baseline): sites in the province the job was submitted from."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin


class LocalityFilter(FilterPlugin):
    """Sites in the job's origin province: the status quo 'run where submitted'."""

    name = "local-only"
    stage = "static"
    job_fields = ("origin_province",)

    def filter(self, cs: CycleState) -> np.ndarray:
        return cs.ctx.site_province == cs.job.origin_province

    def reason(self, cs: CycleState, i: int) -> str:
        return f"local-only: site in {cs.ctx.site_province[i]} != origin province {cs.job.origin_province}"
