"""The plugin contract: what a filter or score plugin is given (`CycleState`) and what it must offer.

Every plugin is vectorised over sites: a filter returns one boolean mask, a score one vector (lower is better).
Each declares the Job fields it reads (`job_fields`, `reason_fields`) and the Estimate fields (`reads`), from
which every cache key is derived (signature.py). Plugins read the cycle state and never call each other.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.costs import Estimate
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job


class CycleState:
    """What one scheduling cycle (one job, one decision) knows; plugins read it and never call each other."""

    __slots__ = ("ctx", "job", "state", "now_h", "estimate", "data")

    def __init__(self, ctx: SchedulerContext, job: Job, state: ClusterState, now_h: float, est: Estimate):
        self.ctx, self.job, self.state, self.now_h, self.estimate = ctx, job, state, now_h, est
        self.data: dict = {}


class FilterPlugin:
    """Drops infeasible sites. `filter` returns a boolean mask over sites; `reason` explains a False."""

    name: ClassVar[str] = "filter"
    stage: ClassVar[str] = "static"  # static / job / dynamic (see module docstring)
    job_fields: ClassVar[tuple[str, ...]] = ()  # the Job fields `filter` and `admits` read (see signature.py)
    reason_fields: ClassVar[tuple[str, ...]] = ()  # the further Job fields `reason` reads
    reads: ClassVar[tuple[str, ...] | None] = ()  # the Estimate fields it reads (None: any of them)

    def filter(self, cs: CycleState) -> np.ndarray:
        raise NotImplementedError

    def reason(self, cs: CycleState, i: int) -> str:
        """Why site i fails this filter, e.g. 'latency: 28.1 ms one-way > 5 ms (realtime)'."""
        raise NotImplementedError

    def admits(self, cs: CycleState, i: int) -> bool:
        """Whether site i passes, for one site (the fast path); must agree with `filter`."""
        return bool(self.filter(cs)[i])


class ScorePlugin:
    """Rates sites: a raw vector over sites in the plugin's unit, lower is better. A static one (dynamic=False)
    reads only the estimate and the job's score-key fields, element by element, so that given an estimate for
    every start hour ([hours, sites]) it rates every hour at once."""

    name: ClassVar[str] = "score"
    unit: ClassVar[str] = ""
    dynamic: ClassVar[bool] = False  # True: depends on the cluster state now (never cached), already in 0..1
    # The Estimate fields a static score reads (costs.FIELD_INPUTS says which job fields they depend on); None:
    # any of them. Jobs alike in those job fields share one cached combination of scores, whatever else differs.
    reads: ClassVar[tuple[str, ...] | None] = None
    # The Estimate field that `score` returns unchanged, if it does (the cached pipeline then scores a first
    # sighting at its statically feasible sites only, see fresh.py); None: any other score.
    estimate_field: ClassVar[str | None] = None
    job_fields: ClassVar[tuple[str, ...]] = ()  # the Job fields `score` reads itself (see signature.py)
    reason_fields: ClassVar[tuple[str, ...]] = ()

    def score(self, cs: CycleState) -> np.ndarray:
        raise NotImplementedError
