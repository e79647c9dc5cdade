"""The one interface every policy offers to whoever drives it: the simulator, the service and the CLI.

An online policy (the online pipeline, the baselines) decides each job when it is asked, `place`; it never
defers a job (`window_h` None). A windowed policy (`batch-lp`, the batch plan + online hybrid) `defers` some
jobs: the driver collects them and calls `plan` every `window_h` hours; the decisions it returns may start
later (`Placement.start_h`), and the driver holds their room until then (`holds.Holds`). Every other job goes
through `place` as under an online policy. Drivers own time; the policy owns every decision.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from suanwang.scheduler.decision import Decision
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job


class Policy(Protocol):
    """What `registry.make_policy` returns."""

    name: str
    window_h: float | None  # hours between plans of the deferred jobs; None: nothing is deferred
    # windowed policies also name their plan's grid: slot_h (hours per slot) and horizon_slots (slots ahead)

    def defers(self, job: Job) -> bool:
        """Whether `job` waits for the next plan instead of being placed on arrival."""
        ...

    def place(
        self, job: Job, state: ClusterState, now_h: float, explain: bool = False, blocked: list[int] | None = None
    ) -> Decision:
        """Place `job` now at hour `now_h` (reserving its room in `state`); `blocked`: site indices it may not
        use now (e.g. its data would cross a cut link). retryable: some site could take it later."""
        ...

    def plan(
        self, jobs: list[Job], state: ClusterState, now_h: float, free: tuple[np.ndarray, np.ndarray] | None = None
    ) -> list[Decision]:
        """One decision per deferred job, in order, for a plan from `now_h`; `state` is not changed (the driver
        holds planned room). `free`: (cores, cards) [sites, slots] free in each slot (see BatchOptimizer.plan)."""
        ...

    def may_fit_later(self, job: Job, now_h: float) -> bool:
        """Whether a job no plan could fit now might still run: a site passes its static rules and could hold
        it when empty, and its deadline can still be met."""
        ...

    def static_key(self, job: Job) -> tuple:
        """The job fields its static rules read (jobs with equal keys may go to the same sites)."""
        ...

    def static_sites(self, job: Job) -> np.ndarray:
        """The indices of the sites that pass every static rule for `job` (where it may ever go)."""
        ...
