"""Capacity: total capacity ever enough (job stage) and free capacity now, site up (dynamic stage)."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin


class CapacityFilter(FilterPlugin):
    """Sites whose total cores and cards could ever hold the job (otherwise queueing there is pointless)."""

    name = "capacity"
    stage = "job"
    job_fields = ("cpu_cores", "gpu_cards")

    def filter(self, cs: CycleState) -> np.ndarray:
        return cs.state.could_ever_fit(cs.job)

    def admits(self, cs: CycleState, i: int) -> bool:
        s, j = cs.state, cs.job
        return s.cpu_total.item(i) >= j.cpu_cores and s.gpu_total.item(i) >= j.gpu_cards

    def reason(self, cs: CycleState, i: int) -> str:
        s, j = cs.state, cs.job
        return (
            f"capacity: needs {j.cpu_cores} cores {j.gpu_cards} cards, "
            f"site total {s.cpu_total[i]} cores {s.gpu_total[i]} cards"
        )


class FreeCapacityFilter(FilterPlugin):
    """Sites that are up with enough free cores and cards now."""

    name = "capacity-free"
    stage = "dynamic"
    job_fields = ("cpu_cores", "gpu_cards")

    def filter(self, cs: CycleState) -> np.ndarray:
        return cs.state.fits(cs.job)

    def admits(self, cs: CycleState, i: int) -> bool:
        s, j = cs.state, cs.job
        return s.up.item(i) and s.cpu_free.item(i) >= j.cpu_cores and s.gpu_free.item(i) >= j.gpu_cards

    def reason(self, cs: CycleState, i: int) -> str:
        s, j = cs.state, cs.job
        if not s.up[i]:
            return "capacity-free: site is down now"
        return (
            f"capacity-free: {s.cpu_free[i]} cores {s.gpu_free[i]} cards free now, "
            f"needs {j.cpu_cores} cores {j.gpu_cards} cards"
        )
