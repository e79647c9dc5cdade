"""Read jobs from CSV, JSON or Python dicts (format: docs/formats.md); every bad value names row and field."""

from __future__ import annotations

import csv
import difflib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from suanwang.atlas import Atlas, load_atlas
from suanwang.errors import JobError, UnknownPlaceError
from suanwang.workload.job import DataClass, Job, LatencyClass

FIELDS = (
    "id",
    "tenant",
    "origin",
    "cpu_cores",
    "gpu_cards",
    "mem_gb",
    "runtime_h",
    "input_gb",
    "output_gb",
    "data_province",
    "latency_class",
    "max_latency_ms",
    "submit_h",
    "deadline_h",
    "data_class",
    "priority",
    "command",
    "labels",
)
REQUIRED = ("id", "origin")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


class _Row:
    """One raw job row with its file and row number, for parsing fields with precise errors."""

    def __init__(self, raw: Mapping[str, Any], file: str, row: int):
        self.raw, self.file, self.row = raw, file, row

    def error(self, key: str, problem: str, fix: str = "") -> JobError:
        return JobError(self.file, self.row, key, problem, fix)

    def text(self, key: str, default: str | None = None) -> str | None:
        v = self.raw.get(key)
        return default if _blank(v) else str(v).strip()

    def number(self, key: str, default: float | None, *, low: float = 0.0, strict: bool = False) -> float | None:
        """A finite number >= low (> low when strict), or `default` when blank."""
        v = self.raw.get(key)
        if _blank(v):
            return default
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise self.error(key, f"'{v}' is not a number", "give a number such as 2 or 0.5") from None
        if not math.isfinite(x) or x < low or (strict and x == low):
            op = ">" if strict else ">="
            raise self.error(key, f"{v} is not {op} {low:g}", f"give a finite number {op} {low:g}")
        return x

    def integer(self, key: str, default: int, *, low: int | None = 0) -> int:
        v = self.raw.get(key)
        if _blank(v):
            return default
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise self.error(key, f"'{v}' is not a whole number", "give a whole number such as 8") from None
        if not math.isfinite(x) or x != int(x):
            raise self.error(key, f"'{v}' is not a whole number", "give a whole number such as 8")
        if low is not None and x < low:
            raise self.error(key, f"{v} is not >= {low}", f"give a whole number >= {low}")
        return int(x)

    def choice(self, key: str, enum, default):
        v = self.text(key)
        if v is None:
            return default
        try:
            return enum(v.lower())
        except ValueError:
            raise self.error(
                key, f"'{v}' is not one of {', '.join(e.value for e in enum)}", f"use one of {', '.join(enum)}"
            ) from None


def job_from_dict(raw: Mapping[str, Any], atlas: Atlas, file: str = "jobs", row: int = 1) -> Job:
    """One Job from a mapping of field -> value (strings or numbers); JobError names file, row and field."""
    r = _Row(raw, file, row)
    for key in raw:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1, cutoff=0.4)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise r.error(str(key), "is not a job field", f"{hint}fields are {', '.join(FIELDS)}")
    for key in REQUIRED:
        if _blank(raw.get(key)):
            raise r.error(key, "is missing", "every job needs an id and an origin city")
    origin_name = r.text("origin")
    try:
        origin = atlas.place(origin_name)
    except UnknownPlaceError as e:
        raise r.error("origin", str(e), "give a city in Chinese, pinyin or its adcode") from None
    data_province = origin.province_id
    if r.text("data_province"):
        try:
            data_province = atlas.find_province(r.text("data_province")).id
        except UnknownPlaceError as e:
            raise r.error("data_province", str(e), "give a province id or name, e.g. henan or 河南") from None
    cpu, gpu = r.integer("cpu_cores", 1), r.integer("gpu_cards", 0)
    if cpu == 0 and gpu == 0:
        raise r.error("cpu_cores", "the job asks for no cores and no cards", "give cpu_cores or gpu_cards > 0")
    runtime = r.number("runtime_h", 1.0, strict=True)
    submit = r.number("submit_h", 0.0)
    deadline = r.number("deadline_h", None)
    if deadline is not None and deadline < submit + runtime:
        raise r.error(
            "deadline_h",
            f"{deadline:g} is before submit_h {submit:g} + runtime_h {runtime:g}",
            "give a deadline the job can meet, or leave it empty",
        )
    labels = raw.get("labels")
    if isinstance(labels, str) or labels is None:
        labels = [s.strip() for s in (labels or "").split(";") if s.strip()]
    elif not isinstance(labels, list | tuple) or not all(isinstance(s, str) for s in labels):
        raise r.error("labels", f"{labels!r} is not a list of names", "write labels as 'gov-cloud;ai' or a list")
    return Job(
        id=r.text("id"),
        origin=origin.adcode,
        origin_province=origin.province_id,
        cpu_cores=cpu,
        gpu_cards=gpu,
        mem_gb=r.number("mem_gb", 0.0),
        runtime_h=runtime,
        input_gb=r.number("input_gb", 0.0),
        output_gb=r.number("output_gb", 0.0),
        data_province=data_province,
        latency_class=r.choice("latency_class", LatencyClass, LatencyClass.BATCH),
        max_latency_ms=r.number("max_latency_ms", None, strict=True),
        submit_h=submit,
        deadline_h=deadline,
        data_class=r.choice("data_class", DataClass, DataClass.PUBLIC),
        tenant=r.text("tenant", "public"),
        priority=r.integer("priority", 0, low=None),
        command=r.text("command"),
        labels=tuple(labels),
    )


def jobs_from_dicts(
    rows: Iterable[Mapping[str, Any]], atlas: Atlas | None = None, file: str = "jobs", first_row: int = 1
) -> list[Job]:
    """Jobs from mappings (row numbers count from `first_row`); ids must be unique."""
    atlas = atlas or load_atlas()
    jobs, seen = [], {}
    for n, raw in enumerate(rows, start=first_row):
        if not isinstance(raw, Mapping):
            raise JobError(file, n, None, "is not an object of job fields", 'give each job as {"id": ..., ...}')
        job = job_from_dict(raw, atlas, file, n)
        if job.id in seen:
            raise JobError(file, n, "id", f"'{job.id}' repeats row {seen[job.id]}", "give every job its own id")
        seen[job.id] = n
        jobs.append(job)
    return jobs


def _csv_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV; '#' lines are comments, blank lines are skipped."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        lines = [(i, line) for i, line in enumerate(f, start=1) if line.strip() and not line.startswith("#")]
    if not lines:
        return []
    reader = csv.reader(line for _, line in lines)
    header = [h.strip() for h in next(reader)]
    out = []
    for (n, _), values in zip(lines[1:], reader, strict=False):
        if len(values) > len(header):
            raise JobError(path.name, n, None, f"has {len(values)} values for {len(header)} columns", "quote commas")
        out.append((n, dict(zip(header, values, strict=False))))
    return out


def load_jobs(path: str | Path, atlas: Atlas | None = None) -> list[Job]:
    """Jobs from a CSV (header row of field names) or JSON file (a list of objects, or {"jobs": [...]}).

    CSV rows are numbered as lines of the file (the header is row 1); JSON jobs from 1.
    """
    path = Path(path)
    atlas = atlas or load_atlas()
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise JobError(path.name, e.lineno, None, f"is not valid JSON ({e.msg})", "check the brackets") from None
        if isinstance(raw, dict) and "jobs" in raw:
            raw = raw["jobs"]
        if not isinstance(raw, list):
            raise JobError(path.name, None, None, "is not a list of jobs", 'write [{"id": ...}] or {"jobs": [...]}')
        return jobs_from_dicts(raw, atlas, path.name)
    if path.suffix.lower() != ".csv":
        raise JobError(path.name, None, None, f"'{path.suffix}' is not a job file type", "use .csv or .json")
    jobs, seen = [], {}
    for n, raw in _csv_rows(path):
        job = job_from_dict(raw, atlas, path.name, n)
        if job.id in seen:
            raise JobError(path.name, n, "id", f"'{job.id}' repeats row {seen[job.id]}", "give every job its own id")
        seen[job.id] = n
        jobs.append(job)
    return jobs


def job_to_dict(job: Job) -> dict[str, Any]:
    """A job as plain JSON-ready values (the inverse of job_from_dict, with origin as adcode)."""
    out = {k: getattr(job, k) for k in FIELDS if k not in ("labels",)}
    out["latency_class"] = job.latency_class.value
    out["data_class"] = job.data_class.value
    out["labels"] = ";".join(job.labels)
    return out
