"""One validation of a job's values wherever a job enters: job files (`workload/io.py`), the REST API
(`service/schemas.py` JobIn) and the CLI's options. A value that passes here is finite, storable (every integer
fits a 32-bit column) and consistent (some cores or cards; a deadline the runtime can meet).

The bounds keep values storable and arithmetic finite; they are not facts about jobs (no job runs 10^6 hours).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suanwang.safeio import has_control, shown

INT32_MAX = 2**31 - 1  # the widest integer every supported database column holds
MAX_TEXT_CHARS = {"id": 100, "tenant": 100, "origin": 100, "data_province": 100, "command": 10_000}
MAX_WORD_CHARS = 32  # latency_class, data_class: checked against their names
MAX_LABEL_CHARS = 64
MAX_LABELS = 32
LABEL_SEPARATOR = ";"  # labels in a CSV cell: 'gov-cloud;ai'


@dataclass(frozen=True)
class Bound:
    """The range of one numeric field: low (inclusive, or exclusive when `strict_low`) to high (inclusive)."""

    low: float
    high: float
    strict_low: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a finite number"
        op = ">" if self.strict_low else ">="
        high = f"{self.high:,.0f}" if self.integer else f"{self.high:g}"
        return f"{kind} {op} {self.low:g} and <= {high}"

    def field_kwargs(self) -> dict[str, Any]:
        """The same bounds as pydantic `Field` keyword arguments (for the API schema)."""
        low = {"gt": self.low} if self.strict_low else {"ge": self.low}
        high = int(self.high) if self.integer else self.high
        return {**low, "le": high, **({} if self.integer else {"allow_inf_nan": False})}


BOUNDS = {
    "cpu_cores": Bound(0, INT32_MAX, integer=True),  # cores
    "gpu_cards": Bound(0, INT32_MAX, integer=True),  # cards
    "mem_gb": Bound(0, 1e12),
    "runtime_h": Bound(0, 1e6, strict_low=True),
    "input_gb": Bound(0, 1e12),
    "output_gb": Bound(0, 1e12),
    "max_latency_ms": Bound(0, 1e6, strict_low=True),
    "submit_h": Bound(0, 1e7),  # hours since the scenario start (job files)
    "deadline_h": Bound(0, 1e7, strict_low=True),  # absolute in job files, hours after submission in the API
    "priority": Bound(-1000, 1000, integer=True),
}


class JobFieldError(ValueError):
    """One job field is invalid: `field`, what is wrong (`problem`) and how to fix it (`fix`)."""

    def __init__(self, field: str, problem: str, fix: str):
        super().__init__(f"{field}: {problem} - {fix}")
        self.field, self.problem, self.fix = field, problem, fix


def check_number(field: str, value: Any) -> float | int:
    """`value` as a number within BOUNDS[field] (an int for whole-number fields); JobFieldError otherwise."""
    b = BOUNDS[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobFieldError(field, f"{shown(value)} is not a number", f"give {b.describe()}")
    if isinstance(value, float) and not math.isfinite(value):
        raise JobFieldError(field, f"{value} is not a finite number", f"give {b.describe()}")
    if b.integer and value != int(value):
        raise JobFieldError(field, f"{shown(value)} is not a whole number", f"give {b.describe()}")
    if value < b.low or (b.strict_low and value == b.low) or value > b.high:
        raise JobFieldError(field, f"{shown(value)} is out of range", f"give {b.describe()}")
    return int(value) if b.integer else float(value)


def check_text(field: str, value: Any) -> str:
    """`value` as text of at most MAX_TEXT_CHARS[field] characters with no control characters (a command may hold
    tabs and newlines)."""
    limit = MAX_TEXT_CHARS.get(field, MAX_WORD_CHARS)
    if not isinstance(value, str):
        raise JobFieldError(field, f"{shown(value)} is not text", "give it as a string")
    if not value.strip():
        raise JobFieldError(field, "is empty", "give a value or leave the field out")
    if len(value) > limit:
        raise JobFieldError(field, f"is {len(value):,} characters long", f"give at most {limit:,}")
    bad = has_control(value, allow="\t\n\r" if field == "command" else "")
    if bad is not None:
        raise JobFieldError(
            field, f"{shown(value)} contains the control character {shown(bad)}", "remove control characters"
        )
    return value


def check_labels(labels: Any) -> tuple[str, ...]:
    """Site labels a job needs: at most MAX_LABELS names of 1..MAX_LABEL_CHARS characters, no control characters
    and no ';' (the CSV separator)."""
    fix = f"write labels as 'gov-cloud{LABEL_SEPARATOR}ai' in a CSV, or a list of names"
    if not isinstance(labels, list | tuple) or not all(isinstance(s, str) for s in labels):
        raise JobFieldError("labels", f"{shown(labels)} is not a list of names", fix)
    if len(labels) > MAX_LABELS:
        raise JobFieldError("labels", f"has {len(labels)} labels", f"give at most {MAX_LABELS}")
    for s in labels:
        if not s.strip() or len(s) > MAX_LABEL_CHARS or LABEL_SEPARATOR in s or has_control(s) is not None:
            raise JobFieldError(
                "labels",
                f"{shown(s)} is not a label name",
                f"give 1 to {MAX_LABEL_CHARS} characters without '{LABEL_SEPARATOR}' or control characters",
            )
    return tuple(labels)


def check_job(cpu_cores: int, gpu_cards: int, runtime_h: float, submit_h: float, deadline_h: float | None) -> None:
    """The rules between fields: some cores or cards; a deadline (absolute hours) no earlier than submit + runtime."""
    if cpu_cores == 0 and gpu_cards == 0:
        raise JobFieldError("cpu_cores", "the job asks for no cores and no cards", "give cpu_cores or gpu_cards > 0")
    if deadline_h is not None and deadline_h < submit_h + runtime_h:
        raise JobFieldError(
            "deadline_h",
            f"{deadline_h:g} is before submit_h {submit_h:g} + runtime_h {runtime_h:g}",
            "give a deadline the job can meet, or leave it empty",
        )


def check_values(values: Mapping[str, Any], *, relative_deadline: bool, bounded: bool = False) -> None:
    """Check typed job values (absent or None fields take their defaults): numbers, texts, labels and the rules
    between fields. `relative_deadline`: deadline_h counts from submission (the API) rather than from the
    scenario start (job files). `bounded`: the numbers and labels were already checked against BOUNDS and the
    label rules (a schema built from them), so only texts and the rules between fields remain. Raises
    JobFieldError naming the first bad field."""
    if not bounded:
        for name in BOUNDS:
            if values.get(name) is not None:
                check_number(name, values[name])
        if values.get("labels") is not None:
            check_labels(values["labels"])
    for name in MAX_TEXT_CHARS:
        if values.get(name) is not None:
            check_text(name, values[name])
    submit_h = 0.0 if relative_deadline else values.get("submit_h") or 0.0
    check_job(
        values.get("cpu_cores", 1) if values.get("cpu_cores") is not None else 1,
        values.get("gpu_cards") or 0,
        values.get("runtime_h") if values.get("runtime_h") is not None else 1.0,
        submit_h,
        values.get("deadline_h"),
    )
