"""The job fields a run's results read, one compact column each, so a long run can let its Job objects go.

A streamed run (Simulation with `more`) adds each day's jobs as they arrive and drops every Job once it has
ended; the metrics then read these columns (about 60 bytes a job) instead of the jobs (about 1 kB each). A run
that holds its whole job list builds the same columns from it, with the same code, so both give the same
numbers.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.workload.job import Job


class JobColumns:
    """Per job, in job order: runtime (h), cores, cards, submit and deadline (h; inf without one), latency bound
    (ms), the origin's row of the latency matrix, and codes (in order of first appearance) for the origin province
    and for the (data class, tenant, data province) that residency rules read."""

    def __init__(self, ctx: SchedulerContext, jobs: Iterable[Job] = ()):
        self._place_index = ctx.place_index
        self.runtime_h = array("d")
        self.cpu_cores = array("d")
        self.gpu_cards = array("d")
        self.submit_h = array("d")
        self.deadline_h = array("d")
        self.latency_bound_ms = array("d")
        self.origin_row = array("q")
        self.province = array("q")
        self.rule = array("q")
        self._provinces: dict[str, int] = {}
        self._rules: dict[tuple, int] = {}
        self.add(jobs)

    def add(self, jobs: Iterable[Job]) -> None:
        """Append the columns of `jobs` (in order)."""
        jobs = list(jobs)
        self.runtime_h.extend([j.runtime_h for j in jobs])
        self.cpu_cores.extend([j.cpu_cores for j in jobs])
        self.gpu_cards.extend([j.gpu_cards for j in jobs])
        self.submit_h.extend([j.submit_h for j in jobs])
        self.deadline_h.extend([math.inf if j.deadline_h is None else j.deadline_h for j in jobs])
        self.latency_bound_ms.extend([j.latency_bound_ms for j in jobs])
        place = self._place_index
        self.origin_row.extend([place[j.origin] for j in jobs])
        provinces, rules = self._provinces, self._rules
        self.province.extend([provinces.setdefault(j.origin_province, len(provinces)) for j in jobs])
        self.rule.extend([rules.setdefault((j.data_class, j.tenant, j.data_province), len(rules)) for j in jobs])

    def __len__(self) -> int:
        return len(self.runtime_h)

    @property
    def provinces(self) -> list[str]:
        """The origin provinces by code."""
        return list(self._provinces)

    @property
    def rule_keys(self) -> list[tuple]:
        """The (data class, tenant, data province) keys by code."""
        return list(self._rules)

    def numpy(self, name: str) -> np.ndarray:
        """Column `name` as a numpy array (float64 or int64; a view of the column, not a copy)."""
        col = getattr(self, name)
        dtype = np.float64 if col.typecode == "d" else np.int64
        return np.frombuffer(col, dtype=dtype) if len(col) else np.zeros(0, dtype=dtype)
