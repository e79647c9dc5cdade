"""Baselines: the same hard filters as the online policy, a different choice among feasible sites.

local-only  - the status quo 'run where submitted': a site in the origin's province, closest first
nearest     - the lowest one-way latency
cheapest    - the lowest predicted cost (CNY)
greenest    - the lowest predicted carbon (kgCO2)
round-robin - rotate over the feasible sites with room, in site order
"""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.contract import CycleState
from suanwang.scheduler.framework import Scheduler
from suanwang.scheduler.online import hard_filters
from suanwang.scheduler.plugins.carbon import CarbonScore
from suanwang.scheduler.plugins.cost import CostScore
from suanwang.scheduler.plugins.latency import LatencyScore
from suanwang.scheduler.plugins.locality import LocalityFilter


def local_only(ctx: SchedulerContext, *, cache: bool = True) -> Scheduler:
    """Run in the origin's province at the site closest to the origin, or nowhere."""
    filters = hard_filters()
    filters.insert(0, LocalityFilter())
    return Scheduler("local-only", ctx, filters, [(LatencyScore(), 1.0)], normalise=False, cache=cache)


def nearest(ctx: SchedulerContext, *, cache: bool = True) -> Scheduler:
    """The feasible site with the lowest one-way latency (ms)."""
    return Scheduler("nearest", ctx, hard_filters(), [(LatencyScore(), 1.0)], normalise=False, cache=cache)


def cheapest(ctx: SchedulerContext, *, cache: bool = True) -> Scheduler:
    """The feasible site with the lowest predicted cost (CNY)."""
    return Scheduler("cheapest", ctx, hard_filters(), [(CostScore(), 1.0)], normalise=False, cache=cache)


def greenest(ctx: SchedulerContext, *, cache: bool = True) -> Scheduler:
    """The feasible site with the lowest predicted carbon (kgCO2)."""
    return Scheduler("greenest", ctx, hard_filters(), [(CarbonScore(), 1.0)], normalise=False, cache=cache)


class RoundRobin(Scheduler):
    """Rotates over feasible sites with room: the next one in site order after the last choice."""

    def __init__(self, ctx: SchedulerContext, *, cache: bool = True):
        super().__init__("round-robin", ctx, hard_filters(), [], normalise=False, cache=cache)
        self._next = 0

    def select(self, cs: CycleState, candidates: np.ndarray, total: np.ndarray) -> int:
        idx = np.flatnonzero(candidates)
        if not len(idx):
            return -1
        after = idx[idx >= self._next]
        i = int(after[0] if len(after) else idx[0])
        self._next = i + 1
        return i


def round_robin(ctx: SchedulerContext, *, cache: bool = True) -> Scheduler:
    """A fresh round-robin scheduler (its rotation starts at the first site)."""
    return RoundRobin(ctx, cache=cache)
