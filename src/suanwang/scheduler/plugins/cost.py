"""Cost score: energy x price at the run hours + hardware amortisation + data transfer, CNY."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, ScorePlugin


class CostScore(ScorePlugin):
    """Predicted cost of the job at each site, CNY."""

    name = "cost"
    unit = "CNY"
    reads = ("cost_cny",)
    estimate_field = "cost_cny"

    def score(self, cs: CycleState) -> np.ndarray:
        return cs.estimate.cost_cny
