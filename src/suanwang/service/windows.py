"""The service's side of a windowed policy (batch-lp): deferred jobs wait for plans, planned room is held.

The same steps as the simulator's, on the service's clock: at each call, first the planned starts that are due
(their room is taken if their site still has it, else they go through the online pipeline), then the jobs met
for the first time (deferred, or placed online now), then - when a window is due - a plan of every deferred job
on the room free now plus what placed jobs release when they end (as placed: start + transfer + runtime), minus
what earlier plans hold. Windows open with the first job and follow every `window_h` hours.

A deferred or planned job stays 'queued' in the database (its reason says what it waits for); plans and holds
live in this object. A restarted service (or a replica that did not make them) re-plans those jobs at its next
window and counts no release of jobs placed before it started (it knows their start from no one) - safe, as
every planned start is checked against the room free when it comes.
"""

from __future__ import annotations

from collections.abc import Collection

from suanwang.scheduler.decision import Decision, Placement
from suanwang.scheduler.holds import Holds
from suanwang.scheduler.policy import Policy
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job

PENDING, HOLD, ONLINE, REJECT = "pending", "hold", "online", "reject"


class Windows:
    """Deferred jobs, plans and holds of one windowed policy over one site set (site indices of its context)."""

    def __init__(self, policy: Policy, n_sites: int):
        self.policy = policy
        self.holds = Holds(n_sites)
        self.fate: dict[str, tuple] = {}  # job id -> (PENDING,) | (HOLD, Decision) | (ONLINE,) | (REJECT, reason)
        self.pending: dict[str, Job] = {}  # deferred jobs waiting for the next plan, in arrival order
        self.ends: dict[str, tuple[int, float, int, int]] = {}  # placed job id -> (site, end_h, cores, cards)
        self.next_plan_h: float | None = None

    def place(self, jobs: list[Job], state: ClusterState, now_h: float, unfinished: Collection[str]) -> list[Decision]:
        """One decision per job, in order (retryable ones stay queued); `unfinished`: the ids of every job still
        queued, placed or running (the others' plans, holds and ends are let go)."""
        self._forget(unfinished)
        out: list[Decision | None] = [None] * len(jobs)
        for k, job in enumerate(jobs):  # planned starts first, as the simulator's start events come before arrivals
            fate = self.fate.get(job.id)
            if fate is not None and fate[0] == HOLD and fate[1].placement.start_h <= now_h:
                out[k] = self._start(job, state, now_h, fate[1])
        for k, job in enumerate(jobs):
            if out[k] is not None:
                continue
            fate = self.fate.get(job.id)
            if fate is None and self.policy.defers(job):
                self.fate[job.id] = (PENDING,)
                self.pending[job.id] = job
            elif fate is None or fate[0] == ONLINE:
                out[k] = self._online(job, state, now_h)
        if self.next_plan_h is None:
            self.next_plan_h = now_h
        if now_h >= self.next_plan_h:
            if self.pending:
                self._plan(state, now_h)
            while self.next_plan_h <= now_h:
                self.next_plan_h += self.policy.window_h
        for k, job in enumerate(jobs):  # what the plan decided for these jobs; the rest wait
            if out[k] is None:
                out[k] = self._after_plan(job, state, now_h)
        return out

    def _after_plan(self, job: Job, state: ClusterState, now_h: float) -> Decision:
        fate = self.fate[job.id]
        if fate[0] == HOLD:
            p = fate[1].placement
            if p.start_h <= now_h:
                return self._start(job, state, now_h, fate[1])
            why = f"planned: starts at {p.site_id} at {p.start_h:g} h"
            return Decision(job.id, None, why, None, self.policy.name, True)
        if fate[0] == ONLINE:
            return self._online(job, state, now_h)
        if fate[0] == REJECT:
            del self.fate[job.id]
            return Decision(job.id, None, fate[1], None, self.policy.name, False)
        why = f"waiting for the batch plan at {self.next_plan_h:g} h"
        return Decision(job.id, None, why, None, self.policy.name, True)

    def _plan(self, state: ClusterState, now_h: float) -> None:
        """Plan every deferred job from `now_h`: hold the room of the planned ones; the others go online (or are
        rejected when no site could ever take them)."""
        ids, jobs = list(self.pending), list(self.pending.values())
        self.pending.clear()
        policy = self.policy
        free = self.holds.free_profile(state, now_h, policy.slot_h, 2 * policy.horizon_slots, self.ends.values())
        decisions = policy.plan(jobs, self.holds.unheld(state), now_h, free)
        for jid, job, d in zip(ids, jobs, decisions, strict=True):
            if d.placement is not None:
                self.holds.add(jid, job, d.placement)
                self.fate[jid] = (HOLD, d)
            elif d.retryable or policy.may_fit_later(job, now_h):
                self.fate[jid] = (ONLINE,)
            else:
                self.fate[jid] = (REJECT, d.reason)

    def _start(self, job: Job, state: ClusterState, now_h: float, planned: Decision) -> Decision:
        """A planned start that is due: its room if its site still has it, else the online pipeline."""
        self.holds.drop(job.id)
        del self.fate[job.id]
        p = planned.placement
        over = state.quotas is not None and state.quotas.breaking(job, p.site_index) is not None  # plans ignore quotas
        if over or not state.fits(job)[p.site_index]:  # online placements took the room: place it now, or it
            self.fate[job.id] = (ONLINE,)  # waits for room online, as the simulator's queue (not for a later plan)
            return self._online(job, state, now_h)
        state.reserve(p.site_index, job)
        self._ran(job, p, now_h)
        return planned

    def _online(self, job: Job, state: ClusterState, now_h: float) -> Decision:
        d = self.policy.place(job, state, now_h, explain=True)
        if d.placement is not None:
            self.fate.pop(job.id, None)
            self._ran(job, d.placement, now_h)
        return d

    def _ran(self, job: Job, p: Placement, now_h: float) -> None:
        self.ends[job.id] = (p.site_index, now_h + p.transfer_h + job.runtime_h, job.cpu_cores, job.gpu_cards)

    def _forget(self, unfinished: Collection[str]) -> None:
        """Let go of jobs that ended or left (cancelled, failed, done)."""
        for jid in [j for j in self.fate if j not in unfinished]:
            if self.fate.pop(jid)[0] == HOLD:
                self.holds.drop(jid)
            self.pending.pop(jid, None)
        for jid in [j for j in self.ends if j not in unfinished]:
            del self.ends[jid]
