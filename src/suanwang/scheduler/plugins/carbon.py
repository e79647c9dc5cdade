"""Carbon score: energy x PUE x grid intensity at the run hours x (1 - green share), kgCO2."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, ScorePlugin


class CarbonScore(ScorePlugin):
    """Predicted market-based carbon of the job at each site, kgCO2."""

    name = "carbon"
    unit = "kgCO2"
    reads = ("carbon_kg",)
    estimate_field = "carbon_kg"

    def score(self, cs: CycleState) -> np.ndarray:
        return cs.estimate.carbon_kg
