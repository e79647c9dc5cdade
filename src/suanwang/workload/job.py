"""数链 data chain: a job, its latency class and its data class."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum


class LatencyClass(StrEnum):
    """How close to its users a job must run (the programme's tiers, one-way ms)."""

    REALTIME = "realtime"  # <= 5 ms one-way: finance, industrial internet, telemedicine, AI inference
    INTERACTIVE = "interactive"  # <= 20 ms one-way: hub-to-hub reach
    BATCH = "batch"  # no bound: offline analysis, rendering, training, backup - may go west


MAX_ONE_WAY_MS = {LatencyClass.REALTIME: 5.0, LatencyClass.INTERACTIVE: 20.0, LatencyClass.BATCH: math.inf}


class DataClass(StrEnum):
    """Data classification that drives residency rules (数盾)."""

    PUBLIC = "public"
    INTERNAL = "internal"
    SENSITIVE = "sensitive"
    CORE = "core"


@dataclass
class Job:
    """One unit of work. Times are hours since the scenario start; data in GB; resources in cores / cards.

    `origin` is the adcode of the city whose users submit it (latency is measured from there);
    `data_province` is where the input data lives (default: the origin's province).
    """

    id: str
    origin: str
    origin_province: str
    cpu_cores: int = 1
    gpu_cards: int = 0
    mem_gb: float = 0.0
    runtime_h: float = 1.0
    input_gb: float = 0.0
    output_gb: float = 0.0
    data_province: str = ""
    latency_class: LatencyClass = LatencyClass.BATCH
    max_latency_ms: float | None = None
    submit_h: float = 0.0
    deadline_h: float | None = None
    data_class: DataClass = DataClass.PUBLIC
    tenant: str = "public"
    priority: int = 0
    command: str | None = None
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        self.latency_class = LatencyClass(self.latency_class)
        self.data_class = DataClass(self.data_class)
        if not self.data_province:
            self.data_province = self.origin_province

    @property
    def latency_bound_ms(self) -> float:
        """The one-way latency bound in ms: the explicit one if given, else the class's tier."""
        return self.max_latency_ms if self.max_latency_ms is not None else MAX_ONE_WAY_MS[self.latency_class]


# The one list of a job's fields, in Job's order: job files, the API, the job table and the conversions between
# them derive theirs from it (tests/test_job_fields.py checks each covers it).
JOB_FIELDS = tuple(f.name for f in fields(Job))
RESOLVED_FIELDS = ("origin_province",)  # set from the origin city when a job is read; never given
