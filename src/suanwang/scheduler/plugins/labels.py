"""Labels / affinity: sites carrying every label the job asks for (e.g. 'gov-cloud', 'ai')."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin


class LabelsFilter(FilterPlugin):
    """Sites whose labels include all of the job's labels."""

    name = "labels"
    stage = "static"
    job_fields = ("labels",)

    def filter(self, cs: CycleState) -> np.ndarray:
        return cs.ctx.label_mask(tuple(cs.job.labels))

    def reason(self, cs: CycleState, i: int) -> str:
        missing = sorted(set(cs.job.labels) - cs.ctx.site_labels[i])
        return f"labels: site lacks {', '.join(missing)}"
