"""Room promised to planned jobs that have not started yet, and the free room a next plan may count on.

The simulator and the service both keep one: a windowed policy's plan may start a job hours later, and until
then its cores and cards are held for it (a next plan must not hand them out again; online placements still may
take them, and a planned start that then finds its site full goes through the online pipeline).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable

import numpy as np

from suanwang.scheduler.decision import Placement
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job


class Holds:
    """Held room per site (cores, cards), and each hold by the driver's job key: (site, start_h, end_h, cores,
    cards)."""

    def __init__(self, n_sites: int):
        self.cpu = np.zeros(n_sites, dtype=np.int64)
        self.gpu = np.zeros(n_sites, dtype=np.int64)
        self.items: dict[Hashable, tuple[int, float, float, int, int]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.items

    def add(self, key: Hashable, job: Job, p: Placement) -> None:
        """Hold the room of planned `job` at p's site from p.start_h until its transfer and run end (hours)."""
        s = p.site_index
        self.cpu[s] += job.cpu_cores
        self.gpu[s] += job.gpu_cards
        self.items[key] = (s, p.start_h, p.start_h + p.transfer_h + job.runtime_h, job.cpu_cores, job.gpu_cards)

    def drop(self, key: Hashable) -> None:
        """Hand back the room held for `key` (its start came, or the job left)."""
        s, _, _, cores, cards = self.items.pop(key)
        self.cpu[s] -= cores
        self.gpu[s] -= cards

    def unheld(self, state: ClusterState) -> ClusterState:
        """The state as the next plan should see it: room promised to planned jobs is not free."""
        return ClusterState(
            state.sites,
            state.cpu_total,
            state.gpu_total,
            np.maximum(state.cpu_free - self.cpu, 0),
            np.maximum(state.gpu_free - self.gpu, 0),
            state.up.copy(),
        )

    def free_profile(
        self,
        state: ClusterState,
        now_h: float,
        slot_h: float,
        n_slots: int,
        running: Iterable[tuple[int, float, int, int]] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """(cores, cards) [sites, n_slots] free for a plan in each slot of `slot_h` hours from `now_h`: the room
        free in `state` now, plus what `running` jobs (site, end_h, cores, cards) release once they end, minus
        what the holds take from their start to their end. A slot counts room only if it is free for the whole
        slot; what ends beyond the profile is dropped (the last slot holds beyond)."""
        site, slot, cores, cards = [], [], [], []
        for s, end_h, c, g in running:
            site.append(s)
            slot.append(math.ceil((end_h - now_h) / slot_h))
            cores.append(c)
            cards.append(g)
        for s, start, end, c, g in self.items.values():  # held: minus from the start slot, back after the end
            site += [s, s]
            slot += [math.floor((start - now_h) / slot_h), math.ceil((end - now_h) / slot_h)]
            cores += [-c, c]
            cards += [-g, g]
        site_a = np.array(site, dtype=np.int64)
        slot_a = np.clip(np.array(slot, dtype=np.int64), 0, n_slots)  # n_slots: beyond the profile, dropped
        out = []
        for now_free, delta in ((state.cpu_free, cores), (state.gpu_free, cards)):
            change = np.zeros((len(now_free), n_slots + 1))
            np.add.at(change, (site_a, slot_a), np.array(delta, dtype=float))
            out.append(now_free[:, None] + np.cumsum(change, axis=1)[:, :n_slots])
        return out[0], out[1]
