"""The discrete-event core: a heap of (time_h, priority, seq, handler, payload), in the shape of SimPy's core.

`schedule` puts an event on the heap; `run` pops events in time order and calls handler(payload). Ties at
one time go by `priority` (lower first), then by `seq`, a counter that only grows - so runs are
deterministic. Times are simulated hours.

The loop is kept tight on purpose (about a microsecond per event): an event is a plain tuple, the heap
functions are module globals, and the loop counts nothing - the number of events processed is the number
scheduled minus those still waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

# Event priorities at equal times: world changes first, then freed capacity, then new demand.
SIGNAL, FAILURE, COMPLETION, START, ARRIVAL, PLAN = range(6)
INF = float("inf")


class Engine:
    """An event loop over simulated hours."""

    __slots__ = ("now_h", "_heap", "_seq")

    def __init__(self, start_h: float = 0.0):
        self.now_h = float(start_h)
        self._heap: list[tuple[float, int, int, Callable[[Any], None], Any]] = []
        self._seq = 0  # events scheduled so far; also the tie-breaker

    def schedule(self, time_h: float, handler: Callable[[Any], None], payload: Any = None, priority: int = 0) -> None:
        """Call handler(payload) at simulated hour `time_h` (never earlier than now)."""
        if time_h < self.now_h:
            raise ValueError(f"cannot schedule at {time_h} h, before now {self.now_h} h")
        self._seq += 1
        heappush(self._heap, (time_h, priority, self._seq, handler, payload))

    def peek(self) -> float:
        """Time of the next event in hours (inf when none)."""
        return self._heap[0][0] if self._heap else INF

    def step(self) -> None:
        """Process the next event."""
        self.now_h, _, _, handler, payload = heappop(self._heap)
        handler(payload)

    def run(self, until_h: float = INF) -> int:
        """Process events up to and including `until_h` hours; returns how many were processed."""
        heap = self._heap
        before = self.processed
        if until_h == INF:
            while heap:
                self.now_h, _, _, handler, payload = heappop(heap)
                handler(payload)
        else:
            while heap and heap[0][0] <= until_h:
                self.now_h, _, _, handler, payload = heappop(heap)
                handler(payload)
        return self.processed - before

    @property
    def processed(self) -> int:
        """Events processed so far (scheduled minus still waiting)."""
        return self._seq - len(self._heap)

    def __len__(self) -> int:
        return len(self._heap)
