"""数脑 the scheduler: filter / score pipeline, baselines and shared types; used by the simulator and the service."""

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.contract import CycleState, FilterPlugin, ScorePlugin
from suanwang.scheduler.costs import Estimate, estimate
from suanwang.scheduler.decision import Decision, Placement, Verdict
from suanwang.scheduler.framework import Scheduler
from suanwang.scheduler.registry import POLICIES, load_weights, make_policy, parse_weights
from suanwang.scheduler.state import ClusterState

__all__ = [
    "POLICIES",
    "ClusterState",
    "CycleState",
    "Decision",
    "Estimate",
    "FilterPlugin",
    "Placement",
    "Scheduler",
    "SchedulerContext",
    "ScorePlugin",
    "Verdict",
    "estimate",
    "load_weights",
    "make_policy",
    "parse_weights",
]
