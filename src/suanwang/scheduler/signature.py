"""Cache keys derived from what plugins declare they read, never listed by hand.

Each plugin names the Job fields it reads itself (`job_fields`, and `reason_fields` for its reasons) and the
Estimate fields it reads (`reads`; costs.FIELD_INPUTS says which Job fields each depends on). Two jobs equal in
every field a set of plugins reads get the same masks and scores from them, so those fields are the key under
which their results are shared (tests/test_signatures.py fails when a plugin reads a field it did not declare).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable

from suanwang.scheduler.costs import FIELD_INPUTS
from suanwang.workload.job import Job

ESTIMATE_INPUTS: tuple[str, ...] = tuple(dict.fromkeys(f for fields in FIELD_INPUTS.values() for f in fields))


def estimate_inputs(estimate_fields: Iterable[str] | None) -> tuple[str, ...]:
    """The Job fields the given Estimate fields depend on (None: any field, so every input of the estimate)."""
    if estimate_fields is None:
        return ESTIMATE_INPUTS
    return tuple(dict.fromkeys(f for name in estimate_fields for f in FIELD_INPUTS[name]))


def job_fields(plugins: Iterable, *, reasons: bool = False) -> tuple[str, ...]:
    """The Job fields `plugins` read, directly and through the estimate, in the order first declared; with
    `reasons` also those their reasons read."""
    out: list[str] = []
    for p in plugins:
        out += p.job_fields
        out += estimate_inputs(p.reads)
        if reasons:
            out += p.reason_fields
    return tuple(dict.fromkeys(out))


def key_of(fields: tuple[str, ...]) -> Callable[[Job], tuple]:
    """job -> the tuple of its `fields` (a C-level attrgetter; always a tuple)."""
    if not fields:
        return lambda job: ()
    get = operator.attrgetter(*fields)
    return get if len(fields) > 1 else lambda job: (get(job),)
