"""The discrete-event core: a heap of (time_h, priority, seq, handler, payload), in the shape of SimPy's core.

`schedule` puts an event on the heap; `run` pops events in time order and calls handler(payload). Ties at
one time go by `priority` (lower first), then by `seq`, a counter that only grows - so runs are
deterministic. Times are simulated hours.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count
from typing import Any

# Event priorities at equal times: world changes first, then freed capacity, then new demand.
SIGNAL, FAILURE, COMPLETION, START, ARRIVAL, PLAN = range(6)


class Engine:
    """An event loop over simulated hours."""

    def __init__(self, start_h: float = 0.0):
        self.now_h = float(start_h)
        self._heap: list[tuple[float, int, int, Callable[[Any], None], Any]] = []
        self._seq = count()
        self.processed = 0

    def schedule(self, time_h: float, handler: Callable[[Any], None], payload: Any = None, priority: int = 0) -> None:
        """Call handler(payload) at simulated hour `time_h` (never earlier than now)."""
        if time_h < self.now_h:
            raise ValueError(f"cannot schedule at {time_h} h, before now {self.now_h} h")
        heapq.heappush(self._heap, (time_h, priority, next(self._seq), handler, payload))

    def peek(self) -> float:
        """Time of the next event in hours (inf when none)."""
        return self._heap[0][0] if self._heap else float("inf")

    def step(self) -> None:
        """Process the next event."""
        time_h, _, _, handler, payload = heapq.heappop(self._heap)
        self.now_h = time_h
        self.processed += 1
        handler(payload)

    def run(self, until_h: float = float("inf")) -> int:
        """Process events up to and including `until_h` hours; returns how many were processed."""
        heap, pop = self._heap, heapq.heappop
        n = 0
        while heap and heap[0][0] <= until_h:
            time_h, _, _, handler, payload = pop(heap)
            self.now_h = time_h
            n += 1
            handler(payload)
        self.processed += n
        return n

    def __len__(self) -> int:
        return len(self._heap)
