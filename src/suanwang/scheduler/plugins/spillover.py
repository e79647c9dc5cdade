"""Ordered spill-over per tenant: a tenant's jobs go to the first of its places (tiers) that has a feasible
site with room now, e.g. own province -> own hub -> the western hubs; only then do cost and carbon choose among
that tier's sites. Sites in none of its places are never used.

The step wraps a policy (`SpillOver`): for a tenant with tiers, each tier in order is offered to the policy's
own pipeline with every site outside the tier blocked, and the first placement wins. So each tier sees exactly
the filters and scores of the policy, and a tenant without tiers gets the policy's decision unchanged. Under a
windowed policy (batch-lp) a tenant with tiers is never deferred to the plan: its jobs go through the online
pipeline, tier by tier, so the order holds there too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from suanwang.atlas.model import Site
from suanwang.policy.quotas import Region
from suanwang.scheduler.decision import Decision
from suanwang.scheduler.quotas import region_mask
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job


class SpillTiers:
    """Each tenant's places bound to the sites: tenant -> boolean masks over sites, most preferred first."""

    def __init__(self, spill: dict[str, tuple[Region, ...]], sites: Sequence[Site], west_hubs: frozenset[str]):
        self.masks = {t: [region_mask(r, sites, west_hubs) for r in regions] for t, regions in spill.items()}
        self.text = {t: " -> ".join(r.text for r in regions) for t, regions in spill.items()}
        self.union = {t: np.logical_or.reduce(m) for t, m in self.masks.items()}

    def tiers(self, tenant: str) -> list[np.ndarray] | None:
        """The tenant's tiers (None: it has none, any site will do)."""
        return self.masks.get(tenant)


class SpillOver:
    """A policy whose jobs of tenants with tiers go to the first tier with room (see the module docstring);
    everything else is the wrapped policy's."""

    def __init__(self, inner, tiers: SpillTiers):
        self.inner, self.spill = inner, tiers
        self._static: dict = {}  # static key -> the inner policy's static sites (indices)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # name, window_h, slot_h, horizon_slots, cache counters, ...

    def defers(self, job: Job) -> bool:
        """The inner policy's choice, except that a tenant with tiers is never deferred to a plan."""
        return self.spill.tiers(job.tenant) is None and self.inner.defers(job)

    def static_key(self, job: Job) -> tuple:
        """The inner static key and the tenant (tiers differ by tenant)."""
        return (self.inner.static_key(job), job.tenant)

    def _inner_static(self, job: Job) -> np.ndarray:
        key = self.inner.static_key(job)
        out = self._static.get(key)
        if out is None:
            out = self._static[key] = self.inner.static_sites(job)
        return out

    def static_sites(self, job: Job) -> np.ndarray:
        """The inner policy's static sites that lie in one of the tenant's places."""
        sites = self._inner_static(job)
        union = self.spill.union.get(job.tenant)
        return sites if union is None else sites[union[sites]]

    def place(
        self, job: Job, state: ClusterState, now_h: float, explain: bool = False, blocked: list[int] | None = None
    ) -> Decision:
        """The first tier that places `job` (see the module docstring); retryable when a tier has feasible sites
        but no room now; rejected when none of its statically feasible sites lies in its places."""
        tiers = self.spill.tiers(job.tenant)
        if tiers is None:
            return self.inner.place(job, state, now_h, explain, blocked)
        static = self._inner_static(job)
        base = np.zeros(len(state.up), dtype=bool)
        if blocked:
            base[blocked] = True
        wait = last = None
        for mask in tiers:
            if not mask[static].any():
                continue  # no statically feasible site in this tier
            d = self.inner.place(job, state, now_h, explain, np.flatnonzero(base | ~mask).tolist())
            if d.placement is not None:
                return d
            if d.retryable:
                wait = wait or d
            else:
                last = d  # the tier's feasible sites fail a job rule (deadline, quota limit): the next tier
        if wait is not None:
            reason = f"spill-over: no room now in any place of tenant {job.tenant} ({self.spill.text[job.tenant]})"
            return Decision(job.id, None, reason, wait.explanation, wait.policy, True)
        if last is not None:
            return last
        reason = (
            f"spill-over: tenant {job.tenant} may use only {self.spill.text[job.tenant]}; none of the job's "
            f"{len(static)} statically feasible site(s) lies there"
        )
        return Decision(job.id, None, reason, None, self.inner.name, False)
