"""Quota usage: each quota rule bound to the sites of its region, and the cores and cards each rule counts now.

A `QuotaBook` rides on the cluster state (`ClusterState.quotas`): every reserve adds the job's cores and cards
to the rules of its tenant whose region holds the site, every release takes them off, so usage is tracked by
the same calls that take and give back capacity, in the simulator and the service alike. The quota filter
plugins (plugins/quota.py) read it.

Cohorts: the rules of a cohort's tenants over the same region form a pool. A rule with `borrow_cores` lets its
tenant pass its own cap by up to that many cores, but only into the idle room of the pool: the pool's usage
never passes the sum of its members' caps. A member whose own cap has room for a job that the pool has not
finds its room lent out (`lent`); the driver then reclaims borrowed jobs (scheduler/preemption.py).
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


class Pool:
    """The rules of one cohort over one region: the sum of their caps and of their usage (cores, cards; a rule
    that caps only one of them counts only in that one)."""

    __slots__ = ("cohort", "members", "cap_cores", "cap_cards", "cores", "cards")

    def __init__(self, cohort: str):
        self.cohort, self.members = cohort, []
        self.cap_cores = self.cap_cards = self.cores = self.cards = 0

    def join(self, b: Bound) -> None:
        """Add rule `b` to the pool."""
        self.members.append(b)
        self.cap_cores += b.rule.cores or 0
        self.cap_cards += b.rule.cards or 0


class Bound:
    """One quota rule over the sites: `mask` (its region), `sites` (the same as a list of bools) and usage now;
    `pool`: its cohort's pool over the same region (None: no cohort)."""

    __slots__ = ("rule", "mask", "sites", "cores", "cards", "pool")

    def __init__(self, rule: QuotaRule, mask: np.ndarray):
        self.rule, self.mask, self.sites = rule, mask, mask.tolist()
        self.cores = 0  # cores of the tenant's running jobs at the rule's sites
        self.cards = 0
        self.pool: Pool | None = None

    def over(self, cores: int, cards: int) -> bool:
        """Whether adding `cores` and `cards` would pass the rule's caps (its own plus what it may borrow, and
        the pool's idle room)."""
        r, p = self.rule, self.pool
        if cores > 0 and r.cores is not None:
            if self.cores + cores > r.cores + r.borrow_cores or (p is not None and p.cores + cores > p.cap_cores):
                return True
        if cards > 0 and r.cards is not None:
            if self.cards + cards > r.cards + r.borrow_cards or (p is not None and p.cards + cards > p.cap_cards):
                return True
        return False

    def lent(self, cores: int, cards: int) -> bool:
        """Whether the rule's own caps hold `cores` and `cards` more but its pool does not: its room is lent out."""
        r, p = self.rule, self.pool
        if p is None:
            return False
        own_c = cores == 0 or r.cores is None or self.cores + cores <= r.cores
        own_g = cards == 0 or r.cards is None or self.cards + cards <= r.cards
        short_c = cores > 0 and r.cores is not None and p.cores + cores > p.cap_cores
        short_g = cards > 0 and r.cards is not None and p.cards + cards > p.cap_cards
        return own_c and own_g and (short_c or short_g)

    def borrowed(self) -> tuple[int, int]:
        """(cores, cards) the tenant uses beyond the rule's own caps now (borrowed from its cohort)."""
        r = self.rule
        c = max(0, self.cores - r.cores) if r.cores is not None else 0
        g = max(0, self.cards - r.cards) if r.cards is not None else 0
        return c, g

    def never(self, cores: int, cards: int) -> bool:
        """Whether `cores` and `cards` alone pass the rule's caps (the job can never run in its region)."""
        r = self.rule
        return (r.cores is not None and cores > r.cores + r.borrow_cores) or (
            r.cards is not None and cards > r.cards + r.borrow_cards
        )


class QuotaBook:
    """The rules of `tenancy` bound to `sites`, by tenant, with the usage each counts now."""

    def __init__(self, tenancy: Tenancy, sites: Sequence[Site], west_hubs: frozenset[str]):
        self.tenancy = tenancy
        self.by_tenant: dict[str, list[Bound]] = {}
        self.pools: list[Pool] = []
        pools: dict[tuple, Pool] = {}
        for rule in tenancy.rules:
            b = Bound(rule, region_mask(rule.region, sites, west_hubs))
            self.by_tenant.setdefault(rule.tenant, []).append(b)
            cohort = tenancy.cohort(rule.tenant)
            if cohort is not None:
                key = (cohort, None if rule.region is None else rule.region.key)
                if key not in pools:
                    pools[key] = Pool(cohort)
                    self.pools.append(pools[key])
                b.pool = pools[key]
                b.pool.join(b)

    def rules(self, tenant: str) -> list[Bound]:
        """The bound rules of `tenant` (empty when it has none)."""
        return self.by_tenant.get(tenant, [])

    def add(self, i: int, job: Job, sign: int) -> None:
        """Count (sign +1) or stop counting (-1) `job`'s cores and cards at site i in its tenant's rules."""
        for b in self.by_tenant.get(job.tenant, ()):
            if b.sites[i]:
                b.cores += sign * job.cpu_cores
                b.cards += sign * job.gpu_cards
                p = b.pool
                if p is not None:
                    if b.rule.cores is not None:
                        p.cores += sign * job.cpu_cores
                    if b.rule.cards is not None:
                        p.cards += sign * job.gpu_cards

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

    def lent_rules(self, job: Job) -> list[Bound]:
        """The rules of `job`'s tenant whose own caps hold the job but whose cohort pool has lent the room out."""
        return [b for b in self.by_tenant.get(job.tenant, ()) if b.lent(job.cpu_cores, job.gpu_cards)]

    def only_lent(self, job: Job, i: int) -> bool:
        """Whether some rule bars `job` at site i now and every such rule only because its room is lent out
        (reclaiming it would let the job run there)."""
        cores, cards, barred = job.cpu_cores, job.gpu_cards, False
        for b in self.by_tenant.get(job.tenant, ()):
            if b.sites[i] and b.over(cores, cards):
                if not b.lent(cores, cards):
                    return False
                barred = True
        return barred

    def lent_mask(self, job: Job) -> np.ndarray | None:
        """Boolean vector over sites where `only_lent` holds for `job` (None: nowhere)."""
        cores, cards, lent, other = job.cpu_cores, job.gpu_cards, None, None
        for b in self.by_tenant.get(job.tenant, ()):
            if b.over(cores, cards):
                if b.lent(cores, cards):
                    lent = b.mask if lent is None else lent | b.mask
                else:
                    other = b.mask if other is None else other | b.mask
        if lent is None:
            return None
        return lent if other is None else lent & ~other

    def usage(self) -> dict[str, dict[str, int]]:
        """Cores and cards each rule counts now, and how many of them are borrowed from its cohort, by rule id."""
        out = {}
        for bs in self.by_tenant.values():
            for b in bs:
                c, g = b.borrowed()
                out[b.rule.id] = {"cores": b.cores, "cards": b.cards, "borrowed_cores": c, "borrowed_cards": g}
        return out


def west_hubs(hubs) -> frozenset[str]:
    """The ids of the western hubs (role west) among atlas `hubs` (id -> Hub)."""
    return frozenset(h.id for h in hubs.values() if h.role == "west")
