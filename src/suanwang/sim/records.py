"""What a simulation records: each job's status, and every run of a job at a site (a job stopped by an outage
has a partial run, then another)."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from suanwang.scheduler.decision import Placement
from suanwang.sim.columns import JobColumns
from suanwang.workload.job import Job

PENDING, QUEUED, RUNNING, DONE, FAILED, REJECTED = range(6)
STATUS = ("pending", "queued", "running", "done", "failed", "rejected")


SEGMENT_FIELDS = ("job", "site", "start_h", "frac", "cost_cny", "energy_kwh", "carbon_kg", "transfer_gb", "latency_ms")


@dataclass
class Segments:
    """Every run of a job at a site (a job stopped by an outage has a partial run, then another): one row of
    SEGMENT_FIELDS per run, kept in one flat array of floats (one append per run; job and site indices are
    whole numbers, exact as floats)."""

    rows: array = field(default_factory=lambda: array("d"))

    def add(self, idx: int, p: Placement, start_h: float, frac: float) -> None:
        """Record a run of job idx under placement p that did `frac` of its work (costs scale with it)."""
        self.rows.extend(
            (
                idx,
                p.site_index,
                start_h,
                frac,
                p.cost_cny * frac,
                p.energy_kwh * frac,
                p.carbon_kg * frac,
                p.transfer_gb,
                p.latency_ms,
            )
        )

    def __len__(self) -> int:
        return len(self.rows) // len(SEGMENT_FIELDS)

    def __getattr__(self, name: str) -> np.ndarray:
        """seg.job, seg.site, seg.frac, ...: the column of that field (see `column`)."""
        if name in SEGMENT_FIELDS:
            return self.column(name)
        raise AttributeError(name)

    def column(self, name: str) -> np.ndarray:
        """One field of every run, in order: int64 for "job" and "site" (a copy), else float64 (a read-only view:
        no run can be added while it lives)."""
        k, n = SEGMENT_FIELDS.index(name), len(SEGMENT_FIELDS)
        col = np.frombuffer(self.rows, dtype=np.float64)[k::n] if self.rows else np.zeros(0)
        return col.astype(np.int64) if name in ("job", "site") else col


@dataclass
class Run:
    """What happened to every job under one policy (lists indexed by job, in arrival order)."""

    policy: str
    jobs: list[Job]  # empty for a streamed run: its jobs were let go as they ended (see `columns`)
    status: list[int]
    reason: list[str]
    end_h: Sequence[float]  # completion (done) or decision time (rejected / failed)
    restarts: list[int]
    segments: Segments
    util_hours: list[int]
    util: list[np.ndarray]  # per sampled hour: utilisation of every site
    events: int
    wall_s: float = 0.0
    columns: JobColumns | None = None  # the job fields the metrics read (built from `jobs` when None)
    evictions: list[Evicted] = field(default_factory=list)  # every reclaim (R1) and preemption (P1), in order
    borrowed: dict[str, tuple[float, float]] = field(default_factory=dict)  # tenant -> borrowed core-h, card-h


@dataclass(frozen=True)
class Evicted:
    """One eviction: job `job` stopped at `site` at `at_h` (its run began at `start_h`), by rule R1 (reclaim of
    borrowed quota room) or P1 (preemption by class); `lost_h` hours of its work since its last checkpoint are
    lost, `saved_h` kept (it resumes from there)."""

    job: int
    site: int
    start_h: float
    at_h: float
    rule: str
    why: str
    lost_h: float
    saved_h: float
