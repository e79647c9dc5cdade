"""Fair share: which queued job is tried next, by weighted dominant resource fairness over cores and cards with
past usage decayed by a half-life, then priority, then age (formula: docs/tenancy.md).

Per tenant t, with a_t(τ) the cores (b_t(τ) the cards) it holds at time τ and H the half-life in hours:

    U_t(now) = ∫ a_t(τ) 2^(-(now - τ) / H) dτ        (decayed core-hours; V_t likewise for cards)
    share_t  = max(U_t / (C · T), V_t / (G · T)) / w_t,   T = H / ln 2 (the integral of 2^(-τ/H) over τ >= 0)

C and G are the network's total cores and cards, w_t the tenant's weight: share_t is the weighted decayed
fraction of the network the tenant has held (1 / w_t for a tenant that held all of it for ever). A queued job's
key is (share of its tenant, -priority, submit_h, index): the lowest key is tried first. Allocations are
piecewise constant, so U is updated exactly at each start and stop:
U <- U · 2^(-Δ/H) + a · T · (1 - 2^(-Δ/H)) over Δ hours holding a.
"""

from __future__ import annotations

import math

from suanwang.policy.quotas import Tenancy
from suanwang.workload.job import Job


class FairShare:
    """Decayed usage per tenant and the queue order it gives; the driver reports every start and stop."""

    def __init__(self, tenancy: Tenancy, total_cores: int, total_cards: int):
        self.tenancy = tenancy
        self.half_life_h = float(tenancy.half_life_h)
        self.mean_life_h = self.half_life_h / math.log(2)  # T
        self.total_cores, self.total_cards = max(1, int(total_cores)), max(1, int(total_cards))
        # tenant -> [decayed core-hours U, decayed card-hours V, cores held a, cards held b, last update hour]
        self.acc: dict[str, list[float]] = {}
        self._memo_h, self._memo = None, {}  # shares computed at hour _memo_h (a retry ranks many queues at once)

    def _at(self, tenant: str, now_h: float) -> list[float]:
        """The tenant's accumulator brought forward to `now_h`."""
        acc = self.acc.get(tenant)
        if acc is None:
            acc = self.acc[tenant] = [0.0, 0.0, 0.0, 0.0, now_h]
            return acc
        dt = now_h - acc[4]
        if dt > 0:
            keep = 2.0 ** (-dt / self.half_life_h)
            gain = self.mean_life_h * (1.0 - keep)
            acc[0] = acc[0] * keep + acc[2] * gain
            acc[1] = acc[1] * keep + acc[3] * gain
            acc[4] = now_h
        return acc

    def start(self, job: Job, now_h: float) -> None:
        """`job` took its cores and cards at `now_h`."""
        acc = self._at(job.tenant, now_h)
        acc[2] += job.cpu_cores
        acc[3] += job.gpu_cards
        self._memo.pop(job.tenant, None)

    def stop(self, job: Job, now_h: float) -> None:
        """`job` gave its cores and cards back at `now_h`."""
        acc = self._at(job.tenant, now_h)
        acc[2] -= job.cpu_cores
        acc[3] -= job.gpu_cards
        self._memo.pop(job.tenant, None)

    def usage(self, tenant: str, now_h: float) -> tuple[float, float]:
        """(decayed core-hours, decayed card-hours) of `tenant` at `now_h`."""
        acc = self._at(tenant, now_h)
        return acc[0], acc[1]

    def share(self, tenant: str, now_h: float) -> float:
        """The tenant's weighted dominant share at `now_h` (see the module docstring)."""
        if now_h != self._memo_h:
            self._memo_h, self._memo = now_h, {}
        hit = self._memo.get(tenant)
        if hit is None:
            u, v = self.usage(tenant, now_h)
            t = self.mean_life_h
            hit = max(u / (self.total_cores * t), v / (self.total_cards * t)) / self.tenancy.weight(tenant)
            self._memo[tenant] = hit
        return hit

    def key(self, job: Job, idx: int, now_h: float) -> tuple[float, int, float, int]:
        """The order of a queued job: (its tenant's share, -priority, submit_h, idx); lowest first."""
        return (self.share(job.tenant, now_h), -job.priority, job.submit_h, idx)
