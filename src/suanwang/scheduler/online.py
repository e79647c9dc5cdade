"""The online policy: every hard filter, then weighted min-max-normalised cost, carbon, latency and balance."""

from __future__ import annotations

from collections.abc import Mapping

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.contract import FilterPlugin
from suanwang.scheduler.framework import Scheduler
from suanwang.scheduler.plugins.balance import BalanceScore
from suanwang.scheduler.plugins.capacity import CapacityFilter, FreeCapacityFilter
from suanwang.scheduler.plugins.carbon import CarbonScore
from suanwang.scheduler.plugins.cost import CostScore
from suanwang.scheduler.plugins.deadline import DeadlineFilter
from suanwang.scheduler.plugins.labels import LabelsFilter
from suanwang.scheduler.plugins.latency import LatencyFilter, LatencyScore
from suanwang.scheduler.plugins.quota import QuotaFilter, QuotaLimitFilter
from suanwang.scheduler.plugins.residency import ResidencyFilter

# Operator preference, not a fact about the world: money and carbon count alike, latency a little (inside
# its bound), balance off. Override with `weights` (CLI --weights, or a YAML file).
DEFAULT_WEIGHTS = {"cost": 1.0, "carbon": 1.0, "latency": 0.1, "balance": 0.0}

SCORES = {"cost": CostScore, "carbon": CarbonScore, "latency": LatencyScore, "balance": BalanceScore}


def hard_filters() -> list[FilterPlugin]:
    """The filters every policy obeys, in verdict order: latency, residency, labels, capacity, deadline, quota
    limit, free, quota (the quota filters pass every site when the state carries no quotas)."""
    return [
        LatencyFilter(),
        ResidencyFilter(),
        LabelsFilter(),
        CapacityFilter(),
        DeadlineFilter(),
        QuotaLimitFilter(),
        FreeCapacityFilter(),
        QuotaFilter(),
    ]


def online_policy(
    ctx: SchedulerContext, weights: Mapping[str, float] | None = None, *, cache: bool = True, name: str = "online"
) -> Scheduler:
    """The online scheduler with `weights` over score names (missing names keep their default weight); `name`
    labels its decisions (batch-lp's online part signs them batch-lp)."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    return Scheduler(name, ctx, hard_filters(), [(SCORES[k](), v) for k, v in w.items()], cache=cache)
