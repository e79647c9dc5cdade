"""Which running jobs to evict: reclaim of borrowed quota room (rule R1) and preemption by priority class
(rule P1). The functions only choose; the driver (the simulator) stops the victims, requeues them and counts
their lost work.

R1 (reclaim): a job whose own quota has room but whose cohort lent that room out takes it back from the
borrowers of the pool - each borrower's most recent jobs in the region first, only while that borrower still
uses more than its own cap, until the pool holds the job.

P1 (preemption): a job of a higher class whose feasible sites are all full may evict preemptible jobs of lower
classes at one site: at each candidate site the fewest victims that make room (`fewest`; ties: the lowest
class, then the most recent), none of which could be left running; the site with the fewest victims wins,
then the least work lost, then the earlier site in the caller's order. A job evicted `protect_after` times is
protected for `protect_h` hours after its last eviction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from suanwang.policy.priorities import Priorities
from suanwang.scheduler.quotas import QuotaBook
from suanwang.workload.job import Job


@dataclass(frozen=True)
class Running:
    """A running job as the driver sees it: `key` its handle, `site` its index, `start_h` its (last) start, how
    many times it was evicted and when last (hours)."""

    key: int
    site: int
    job: Job
    start_h: float
    evictions: int = 0
    last_evicted_h: float = -math.inf


@dataclass(frozen=True)
class Eviction:
    """One victim: the driver's `key`, the rule (R1 reclaim, P1 preemption) and the explanation."""

    key: int
    rule: str
    why: str


def reclaim_victims(book: QuotaBook, job: Job, running: Iterable[Running], job_id: str = "") -> list[Eviction]:
    """R1: the borrowed jobs to evict so that `job`'s cohort pools hold it again (empty: nothing lent out)."""
    lent = book.lent_rules(job)
    if not lent:
        return []
    running = list(running)
    chosen: dict[int, Eviction] = {}
    for b in lent:
        p = b.pool
        need_c = p.cores + job.cpu_cores - p.cap_cores if b.rule.cores is not None and job.cpu_cores else 0
        need_g = p.cards + job.gpu_cards - p.cap_cards if b.rule.cards is not None and job.gpu_cards else 0
        used = {id(m): [m.cores, m.cards] for m in p.members}
        for v in chosen.values():  # victims already chosen for an earlier rule free room here too
            r = next(x for x in running if x.key == v.key)
            for m in p.members:
                if m.rule.tenant == r.job.tenant and m.sites[r.site]:
                    need_c -= r.job.cpu_cores if m.rule.cores is not None else 0
                    need_g -= r.job.gpu_cards if m.rule.cards is not None else 0
                    used[id(m)][0] -= r.job.cpu_cores
                    used[id(m)][1] -= r.job.gpu_cards
        by_tenant = {m.rule.tenant: m for m in p.members if m is not b}
        for r in sorted(running, key=lambda x: (-x.start_h, -x.key)):
            if need_c <= 0 and need_g <= 0:
                break
            m = by_tenant.get(r.job.tenant)
            if m is None or r.key in chosen or not m.sites[r.site]:
                continue
            u = used[id(m)]
            over_c = m.rule.cores is not None and u[0] > m.rule.cores
            over_g = m.rule.cards is not None and u[1] > m.rule.cards
            helps = (need_c > 0 and over_c and r.job.cpu_cores) or (need_g > 0 and over_g and r.job.gpu_cards)
            if not helps:
                continue  # not borrowing (or not what is short): its room is its own
            u[0] -= r.job.cpu_cores
            u[1] -= r.job.gpu_cards
            need_c -= r.job.cpu_cores if m.rule.cores is not None else 0
            need_g -= r.job.gpu_cards if m.rule.cards is not None else 0
            why = (
                f"reclaimed by job {job_id or job.id} of tenant {job.tenant}: quota {b.rule.id} room lent to "
                f"{r.job.tenant} in cohort {p.cohort}, rule R1"
            )
            chosen[r.key] = Eviction(r.key, "R1", why)
    return list(chosen.values())


def fewest(pool: list[Running], need_c: int, need_g: int, prio: Priorities) -> list[Running] | None:
    """The victims among `pool` that free at least `need_c` cores and `need_g` cards: greedily the one that
    covers most of what is still missing (ties: the lowest class, then the most recent start), then any that
    could be left running dropped again. With one resource short this is the fewest possible (the largest
    first); with both, a set none of which could be spared. None when the whole pool is not enough."""
    if sum(r.job.cpu_cores for r in pool) < need_c or sum(r.job.gpu_cards for r in pool) < need_g:
        return None
    rest, take, left_c, left_g = list(pool), [], need_c, need_g

    def gain(r: Running) -> float:
        c = min(r.job.cpu_cores, left_c) / need_c if left_c > 0 else 0.0
        g = min(r.job.gpu_cards, left_g) / need_g if left_g > 0 else 0.0
        return c + g

    while left_c > 0 or left_g > 0:
        best = min(rest, key=lambda r: (-gain(r), prio.rank(r.job), -r.start_h, -r.key))
        rest.remove(best)
        take.append(best)
        left_c, left_g = left_c - best.job.cpu_cores, left_g - best.job.gpu_cards
    for r in sorted(take, key=lambda r: (r.job.cpu_cores + r.job.gpu_cards, -prio.rank(r.job))):
        if left_c + r.job.cpu_cores <= 0 and left_g + r.job.gpu_cards <= 0:
            take.remove(r)  # the others free enough without it
            left_c, left_g = left_c + r.job.cpu_cores, left_g + r.job.gpu_cards
    return take


def _lost_h(r: Running, now_h: float, checkpoint_h: float | None) -> float:
    """Hours of work an eviction now throws away (since the last checkpoint)."""
    ran = max(0.0, now_h - r.start_h)
    return ran - (math.floor(ran / checkpoint_h) * checkpoint_h if checkpoint_h else 0.0)


def preemption_victims(
    job: Job,
    sites: Sequence[int],
    free_cores: Sequence[int],
    free_cards: Sequence[int],
    running: Iterable[Running],
    prio: Priorities,
    now_h: float,
    job_id: str = "",
) -> tuple[int, list[Eviction]] | None:
    """P1: (site, victims) - the fewest lower-class preemptible jobs at one of `sites` (the job's feasible sites,
    in the caller's preference order) whose eviction makes room for `job`; None when no site can be freed."""
    mine = prio.of(job)
    if mine is None:
        return None
    cands: dict[int, list[Running]] = {}
    for r in running:
        c = prio.of(r.job)
        if c is None or not c.preemptible or c.rank >= mine.rank:
            continue
        if r.evictions >= prio.protect_after and now_h < r.last_evicted_h + prio.protect_h:
            continue  # protected: evicted often enough lately
        cands.setdefault(r.site, []).append(r)
    best = None
    for order, s in enumerate(sites):
        need_c, need_g = job.cpu_cores - int(free_cores[s]), job.gpu_cards - int(free_cards[s])
        pool = cands.get(s)
        if not pool or (need_c <= 0 and need_g <= 0):
            continue
        take = fewest(pool, need_c, need_g, prio)
        if take is None:
            continue
        lost = sum(r.job.cpu_cores * _lost_h(r, now_h, c.checkpoint_h if (c := prio.of(r.job)) else None) for r in take)
        key = (len(take), lost, order)
        if best is None or key < best[0]:
            best = (key, s, take)
    if best is None:
        return None
    _, s, take = best
    who = job_id or job.id
    return s, [Eviction(r.key, "P1", f"preempted by job {who}, class {mine.name}, rule P1") for r in take]
