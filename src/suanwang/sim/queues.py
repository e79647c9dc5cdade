"""Jobs waiting for room: one FIFO queue per static key (the jobs with the same static rules), each looked at
`depth` jobs deep on a retry, like Slurm's default_queue_depth. With tenants (scheduler/fairshare.py) the
queues are ranked by fair share and each queue keeps higher priority first.

The simulator asks which queues may use freed room at a site (`heads`) and which of a queue's jobs fit it
(`window`), tries those itself, and hands back the ones that left (`remove`): the queues return what to try
and never call back into the simulation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from itertools import islice

import numpy as np


def _smallest(shapes) -> tuple[tuple[int, int], ...]:
    """The (cores, cards) shapes no other shape is at most in both: a job of `shapes` fits some room iff one of
    these does. Sorted by cores up (so cards go down)."""
    out: list[tuple[int, int]] = []
    for c, g in sorted(set(shapes)):
        if not out or g < out[-1][1]:
            out.append((c, g))
    return tuple(out)


def _any_fits(smallest: tuple[tuple[int, int], ...], free_c: int, free_g: int) -> bool:
    """Whether some shape of `smallest` (from `_smallest`) fits free_c cores and free_g cards."""
    if smallest[0][0] > free_c or smallest[-1][1] > free_g:
        return False  # even the fewest cores, or the fewest cards, do not fit
    for c, g in smallest:
        if c > free_c:
            return False
        if g <= free_g:
            return True
    return False


class WaitQueues:
    """The waiting jobs (indices) by static key; `cores` / `cards`: every job's shape, by index (the caller's
    lists, which grow as jobs arrive)."""

    def __init__(
        self,
        n_sites: int,
        depth: int,
        cores: Sequence[int],
        cards: Sequence[int],
        order: Callable[[int], tuple] | None = None,
        priority: Sequence[int] | None = None,
    ):
        """`order` (job index -> sort key, e.g. fair share's) ranks the queues by their heads instead of age;
        `priority` (by job index) keeps each queue in higher priority first, then age."""
        self.depth, self.cores, self.cards = depth, cores, cards
        self.order, self.priority = order, priority
        self.queues: dict[Hashable, deque[int]] = {}
        self.smallest: dict[Hashable, tuple[tuple[int, int], ...]] = {}  # smallest shapes of each window
        self.sites: dict[Hashable, np.ndarray] = {}  # the sites each key's jobs may ever use
        self.active: list[dict[Hashable, None]] = [{} for _ in range(n_sites)]  # per site: non-empty queues

    def known(self, key: Hashable) -> bool:
        """Whether a queue for `key` exists (its sites are known)."""
        return key in self.queues

    def add(self, key: Hashable, idx: int, sites: np.ndarray | None = None) -> None:
        """Job idx joins the queue of `key` (`sites`: where its jobs may go, needed for a new key)."""
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = deque()
            self.sites[key] = sites
        if not q:
            for s in self.sites[key]:
                self.active[s][key] = None
        pos = len(q)
        if self.priority is not None:  # after every job of higher or equal priority, or of equal priority and older
            prio = self.priority
            while pos and (-prio[q[pos - 1]], q[pos - 1]) > (-prio[idx], idx):
                pos -= 1
        if pos < self.depth:  # the job joins the window the scan looks at
            self.smallest[key] = _smallest((*self.smallest.get(key, ()), (self.cores[idx], self.cards[idx])))
        q.insert(pos, idx)

    def heads(self, s: int, free_c: int, free_g: int) -> list[Hashable]:
        """The queues that may use site s with a job in their window that fits the room now, oldest head first
        (a job waits in one queue). The room only shrinks during a scan, so no other queue could be tried in it.
        """
        queues, smallest = self.queues, self.smallest
        rank = self.order
        if rank is not None:  # e.g. fair share: the head of the least-served tenant first
            fit = [k for k in self.active[s] if _any_fits(smallest[k], free_c, free_g)]
            return [k for _, k in sorted([(rank(queues[k][0]), k) for k in fit])]
        return [
            k for _, k in sorted([(queues[k][0], k) for k in self.active[s] if _any_fits(smallest[k], free_c, free_g)])
        ]

    def window(self, key: Hashable, free_c: int, free_g: int) -> list[int] | None:
        """The jobs of the queue's window that fit free_c cores and free_g cards, in queue order; None when the
        smallest shapes say none does (passed over without a look - the same tries as checking each)."""
        if not _any_fits(self.smallest[key], free_c, free_g):
            return None
        cores, cards = self.cores, self.cards
        return [i for i in islice(self.queues[key], self.depth) if cores[i] <= free_c and cards[i] <= free_g]

    def remove(self, key: Hashable, gone: list[int]) -> None:
        """The jobs `gone` left the queue of `key` (placed or rejected)."""
        q = self.queues[key]
        for idx in gone:
            q.remove(idx)  # near the head: found after a few steps
        if q:
            self.smallest[key] = _smallest([(self.cores[i], self.cards[i]) for i in islice(q, self.depth)])
        else:
            for t in self.sites[key]:
                self.active[t].pop(key, None)
            del self.smallest[key]

    def drain(self) -> list[int]:
        """Every waiting job, lowest index first; the queues are left empty."""
        waiting = sorted(i for q in self.queues.values() for i in q)
        for q in self.queues.values():
            q.clear()
        for a in self.active:
            a.clear()
        self.smallest.clear()
        return waiting
