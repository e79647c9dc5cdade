"""Priority classes and the preemption settings of a tenancy file (format: docs/tenancy.md).

Classes are listed highest first (e.g. realtime, interactive, batch). A job belongs to the first class that
names its tenant under `tenants`, else to the first that names its latency class under `latency_classes`
(a class called like a latency class takes that latency class when it names none); a job no class takes has
rank 0 and is never preempted. `preemptible` jobs may be evicted by jobs of a higher class; `checkpoint_h`
says the class's jobs checkpoint every so many hours of run (an evicted job resumes from its last one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from suanwang.errors import PolicyError
from suanwang.workload.job import Job, LatencyClass

CLASS_KEYS = {"name", "preemptible", "latency_classes", "tenants", "checkpoint_h", "description"}
PREEMPTION_KEYS = {"protect_after", "protect_h"}


@dataclass(frozen=True)
class PriorityClass:
    """One class: its name, rank (higher wins), whether its jobs may be evicted, their checkpoint interval (h)."""

    name: str
    rank: int
    preemptible: bool = False
    latency_classes: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    checkpoint_h: float | None = None


@dataclass(frozen=True)
class Priorities:
    """The classes, highest first, and the protection rule: a job evicted `protect_after` times is not evicted
    again for `protect_h` hours after its last eviction."""

    classes: tuple[PriorityClass, ...] = ()
    protect_after: int = 3
    protect_h: float = 6.0

    def of(self, job: Job) -> PriorityClass | None:
        """The class of `job` (None: no class takes it; rank 0, never preempted)."""
        for c in self.classes:
            if job.tenant in c.tenants:
                return c
        for c in self.classes:
            if str(job.latency_class) in c.latency_classes:
                return c
        return None

    def rank(self, job: Job) -> int:
        """The rank of `job`'s class (0: none)."""
        c = self.of(job)
        return 0 if c is None else c.rank


def _names(value, file: str, row: int, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise PolicyError(file, row, key, f"{value!r} is not a list of names", "write e.g. [realtime]")
    return tuple(v.strip() for v in items)


def _hours(value, file: str, row: int | None, key: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf
    if not ok:
        raise PolicyError(file, row, key, f"{value!r} is not hours > 0", f"write e.g. '{key}: 2'")
    return float(value)


def parse_priorities(classes, preemption, file: str = "tenants") -> Priorities:
    """Priorities from the parsed `priority_classes` list and `preemption` mapping; errors name row and field."""
    classes = classes or []
    if not isinstance(classes, list):
        raise PolicyError(file, None, "priority_classes", "is not a list", "give '- name: realtime' entries")
    out, seen = [], set()
    for n, e in enumerate(classes, start=1):
        if not isinstance(e, dict):
            raise PolicyError(file, n, None, "is not a mapping", "give each class as 'name: ..., preemptible: ...'")
        bad = set(e) - CLASS_KEYS
        if bad:
            raise PolicyError(
                file, n, sorted(bad)[0], "is not a class field", f"use only {', '.join(sorted(CLASS_KEYS))}"
            )
        name = str(e.get("name") or "").strip()
        if not name:
            raise PolicyError(file, n, "name", "is missing", "name each class, e.g. realtime")
        if name in seen:
            raise PolicyError(file, n, "name", f"'{name}' is used twice", "give each class its own name")
        seen.add(name)
        pre = e.get("preemptible", False)
        if not isinstance(pre, bool):
            raise PolicyError(file, n, "preemptible", f"{pre!r} is not true or false", "write 'preemptible: true'")
        lat = _names(e.get("latency_classes"), file, n, "latency_classes")
        for v in lat:
            if v not in {c.value for c in LatencyClass}:
                fix = f"use {', '.join(c.value for c in LatencyClass)}"
                raise PolicyError(file, n, "latency_classes", f"'{v}' is not a latency class", fix)
        if not lat and name in {c.value for c in LatencyClass}:
            lat = (name,)
        ck = e.get("checkpoint_h")
        ck = None if ck is None else _hours(ck, file, n, "checkpoint_h")
        out.append(PriorityClass(name, 0, pre, lat, _names(e.get("tenants"), file, n, "tenants"), ck))
    ranked = tuple(
        PriorityClass(c.name, len(out) - k, c.preemptible, c.latency_classes, c.tenants, c.checkpoint_h)
        for k, c in enumerate(out)
    )
    pre = preemption or {}
    if not isinstance(pre, dict):
        raise PolicyError(file, None, "preemption", "is not a mapping", "write e.g. 'preemption: {protect_after: 3}'")
    bad = set(pre) - PREEMPTION_KEYS
    if bad:
        fix = f"use only {', '.join(sorted(PREEMPTION_KEYS))}"
        raise PolicyError(file, None, f"preemption.{sorted(bad)[0]}", "is not a field", fix)
    after = pre.get("protect_after", 3)
    if isinstance(after, bool) or not isinstance(after, int) or after < 1:
        raise PolicyError(file, None, "preemption.protect_after", f"{after!r} is not a whole number >= 1", "write 3")
    hours = _hours(pre.get("protect_h", 6.0), file, None, "preemption.protect_h")
    return Priorities(ranked, after, hours)
