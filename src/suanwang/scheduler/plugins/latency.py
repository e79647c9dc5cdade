"""Latency: filter by the job's one-way bound (class tier or explicit ms); score by one-way ms."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin, ScorePlugin


class LatencyFilter(FilterPlugin):
    """Sites within the job's one-way latency bound (ms) from its origin city."""

    name = "latency"
    stage = "static"
    job_fields = ("latency_bound_ms",)
    reads = ("latency_ms",)
    reason_fields = ("max_latency_ms", "latency_class")

    def filter(self, cs: CycleState) -> np.ndarray:
        return cs.estimate.latency_ms <= cs.job.latency_bound_ms

    def reason(self, cs: CycleState, i: int) -> str:
        job = cs.job
        why = "explicit bound" if job.max_latency_ms is not None else job.latency_class.value
        return f"latency: {cs.estimate.latency_ms[i]:.1f} ms one-way > {job.latency_bound_ms:g} ms ({why})"


class LatencyScore(ScorePlugin):
    """One-way latency from the origin city, ms."""

    name = "latency"
    unit = "ms"
    reads = ("latency_ms",)
    estimate_field = "latency_ms"

    def score(self, cs: CycleState) -> np.ndarray:
        return cs.estimate.latency_ms
