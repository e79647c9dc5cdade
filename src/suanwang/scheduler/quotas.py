"""Quota usage: each quota rule bound to the sites of its region, and the cores and cards each rule counts now.

A `QuotaBook` rides on the cluster state (`ClusterState.quotas`): every reserve adds the job's cores and cards
to the rules of its tenant whose region holds the site, every release takes them off, so usage is tracked by
the same calls that take and give back capacity, in the simulator and the service alike. The quota filter
plugins (plugins/quota.py) read it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from suanwang.atlas.model import Site
from suanwang.policy.quotas import QuotaRule, Region, Tenancy
from suanwang.workload.job import Job


def region_mask(region: Region | None, sites: Sequence[Site], west_hubs: frozenset[str]) -> np.ndarray:
    """Boolean vector over `sites`: the site lies in `region` (None: every site)."""
    if region is None:
        return np.ones(len(sites), dtype=bool)
    inside = np.array(
        [
            s.province_id in region.provinces or s.hub_id in region.hubs or (region.west and s.hub_id in west_hubs)
            for s in sites
        ],
        dtype=bool,
    )
    return ~inside if region.outside else inside


class Bound:
    """One quota rule over the sites: `mask` (its region), `sites` (the same as a list of bools) and usage now."""

    __slots__ = ("rule", "mask", "sites", "cores", "cards")

    def __init__(self, rule: QuotaRule, mask: np.ndarray):
        self.rule, self.mask, self.sites = rule, mask, mask.tolist()
        self.cores = 0  # cores of the tenant's running jobs at the rule's sites
        self.cards = 0

    def over(self, cores: int, cards: int) -> bool:
        """Whether adding `cores` and `cards` would pass the rule's caps."""
        r = self.rule
        return (cores > 0 and r.cores is not None and self.cores + cores > r.cores) or (
            cards > 0 and r.cards is not None and self.cards + cards > r.cards
        )

    def never(self, cores: int, cards: int) -> bool:
        """Whether `cores` and `cards` alone pass the rule's caps (the job can never run in its region)."""
        r = self.rule
        return (r.cores is not None and cores > r.cores) or (r.cards is not None and cards > r.cards)


class QuotaBook:
    """The rules of `tenancy` bound to `sites`, by tenant, with the usage each counts now."""

    def __init__(self, tenancy: Tenancy, sites: Sequence[Site], west_hubs: frozenset[str]):
        self.tenancy = tenancy
        self.by_tenant: dict[str, list[Bound]] = {}
        for rule in tenancy.rules:
            self.by_tenant.setdefault(rule.tenant, []).append(Bound(rule, region_mask(rule.region, sites, west_hubs)))

    def rules(self, tenant: str) -> list[Bound]:
        """The bound rules of `tenant` (empty when it has none)."""
        return self.by_tenant.get(tenant, [])

    def add(self, i: int, job: Job, sign: int) -> None:
        """Count (sign +1) or stop counting (-1) `job`'s cores and cards at site i in its tenant's rules."""
        for b in self.by_tenant.get(job.tenant, ()):
            if b.sites[i]:
                b.cores += sign * job.cpu_cores
                b.cards += sign * job.gpu_cards

    def room(self, job: Job) -> np.ndarray | None:
        """Boolean vector over sites: placing `job` there now passes no rule of its tenant (None: all pass)."""
        mask = None
        for b in self.by_tenant.get(job.tenant, ()):
            if b.over(job.cpu_cores, job.gpu_cards):
                mask = ~b.mask if mask is None else mask & ~b.mask
        return mask

    def ever(self, job: Job) -> np.ndarray | None:
        """Boolean vector over sites: no rule of its tenant there caps less than `job` alone (None: all pass)."""
        mask = None
        for b in self.by_tenant.get(job.tenant, ()):
            if b.never(job.cpu_cores, job.gpu_cards):
                mask = ~b.mask if mask is None else mask & ~b.mask
        return mask

    def breaking(self, job: Job, i: int, now: bool = True) -> Bound | None:
        """The first rule (file order) that placing `job` at site i would pass now (`now` False: ever), or None."""
        for b in self.by_tenant.get(job.tenant, ()):
            if b.sites[i] and (b.over(job.cpu_cores, job.gpu_cards) if now else b.never(job.cpu_cores, job.gpu_cards)):
                return b
        return None

    def usage(self) -> dict[str, dict[str, int]]:
        """Cores and cards each rule counts now, by rule id."""
        return {b.rule.id: {"cores": b.cores, "cards": b.cards} for bs in self.by_tenant.values() for b in bs}


def west_hubs(hubs) -> frozenset[str]:
    """The ids of the western hubs (role west) among atlas `hubs` (id -> Hub)."""
    return frozenset(h.id for h in hubs.values() if h.role == "west")
