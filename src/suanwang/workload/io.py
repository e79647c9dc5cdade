"""Read jobs from CSV, JSON or Python dicts (format: docs/formats.md); every bad value names row and field."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from suanwang.atlas import Atlas, load_atlas
from suanwang.errors import DataError, JobError, UnknownPlaceError
from suanwang.safeio import MAX_JOB_FILE_BYTES, load_json_text, read_text, shown
from suanwang.workload.job import JOB_FIELDS, RESOLVED_FIELDS, DataClass, Job, LatencyClass
from suanwang.workload.validate import (
    BOUNDS,
    LABEL_SEPARATOR,
    JobFieldError,
    check_job,
    check_labels,
    check_number,
    check_text,
)

# A job file's fields: every Job field but the resolved ones, id and tenant first (the documented column order).
FIELDS = ("id", "tenant", *(f for f in JOB_FIELDS if f not in ("id", "tenant", *RESOLVED_FIELDS)))
REQUIRED = ("id", "origin")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


class _Row:
    """One raw job row with its file and row number, for parsing fields with precise errors."""

    def __init__(self, raw: Mapping[str, Any], file: str, row: int):
        self.raw, self.file, self.row = raw, file, row

    def error(self, key: str, problem: str, fix: str = "") -> JobError:
        return JobError(self.file, self.row, key, problem, fix)

    def checked(self, fn, *args):
        """fn(*args) of workload.validate, its JobFieldError turned into a JobError naming this row."""
        try:
            return fn(*args)
        except JobFieldError as e:
            raise self.error(e.field, e.problem, e.fix) from None

    def text(self, key: str, default: str | None = None) -> str | None:
        v = self.raw.get(key)
        if _blank(v):
            return default
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = str(v)
        return self.checked(check_text, key, v).strip()

    def number(self, key: str, default: float | int | None) -> float | int | None:
        """The number in `key` within its bounds (workload.validate.BOUNDS), or `default` when blank."""
        v = self.raw.get(key)
        if _blank(v):
            return default
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                bound = BOUNDS[key]
                raise self.error(key, f"{shown(v)} is not a number", f"give {bound.describe()}") from None
        return self.checked(check_number, key, v)

    def choice(self, key: str, enum, default):
        v = self.text(key)
        if v is None:
            return default
        try:
            return enum(v.lower())
        except ValueError:
            raise self.error(
                key, f"{shown(v)} is not one of {', '.join(e.value for e in enum)}", f"use one of {', '.join(enum)}"
            ) from None


def job_from_dict(raw: Mapping[str, Any], atlas: Atlas, file: str = "jobs", row: int = 1) -> Job:
    """One Job from a mapping of field -> value (strings or numbers); JobError names file, row and field.

    The values are checked by workload.validate, the same rules the API applies."""
    r = _Row(raw, file, row)
    for key in raw:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1, cutoff=0.4)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise r.error(shown(key)[1:-1], "is not a job field", f"{hint}fields are {', '.join(FIELDS)}")
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
    cpu, gpu = r.number("cpu_cores", 1), r.number("gpu_cards", 0)
    runtime = r.number("runtime_h", 1.0)
    submit = r.number("submit_h", 0.0)
    deadline = r.number("deadline_h", None)
    r.checked(check_job, cpu, gpu, runtime, submit, deadline)
    labels = raw.get("labels")
    if isinstance(labels, str) or labels is None:
        labels = [s.strip() for s in (labels or "").split(LABEL_SEPARATOR) if s.strip()]
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
        max_latency_ms=r.number("max_latency_ms", None),
        submit_h=submit,
        deadline_h=deadline,
        data_class=r.choice("data_class", DataClass, DataClass.PUBLIC),
        tenant=r.text("tenant", "public"),
        priority=r.number("priority", 0),
        command=r.text("command"),
        labels=r.checked(check_labels, labels),
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
            raise JobError(file, n, "id", f"{shown(job.id)} repeats row {seen[job.id]}", "give every job its own id")
        seen[job.id] = n
        jobs.append(job)
    return jobs


def _csv_records(text: str):
    """(first line number, values) of each CSV record; blank records and '#' comment lines are skipped. Quoted
    values may span lines (a command with newlines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        if values and not values[0].startswith("#") and any(v.strip() for v in values):
            yield start, values


def _csv_rows(text: str, file: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV text; the header must name each job field at most once."""
    try:
        records = list(_csv_records(text))
    except csv.Error as e:
        raise JobError(file, None, None, f"is not valid CSV ({e})", "check the quotes") from None
    if not records:
        return []
    header_row, header = records[0][0], [h.strip() for h in records[0][1]]
    for i, h in enumerate(header):
        if h in header[:i]:
            raise JobError(file, header_row, shown(h)[1:-1], "is a repeated column", "name each column once")
        if h not in FIELDS:
            close = difflib.get_close_matches(h, FIELDS, n=1, cutoff=0.4)
            hint = f"did you mean '{close[0]}'? " if close else ""
            fix = f"{hint}fields are {', '.join(FIELDS)}"
            raise JobError(file, header_row, shown(h)[1:-1], "is not a job field", fix)
    out = []
    for n, values in records[1:]:
        if len(values) > len(header):
            raise JobError(file, n, None, f"has {len(values)} values for {len(header)} columns", "quote commas")
        out.append((n, dict(zip(header, values, strict=False))))
    return out


def _no_jobs(file: str, kind: str) -> DataError:
    return JobError(file, None, None, f"holds no jobs ({kind})", "add one job per row below the header id,origin,...")


def load_jobs(path: str | Path, atlas: Atlas | None = None) -> list[Job]:
    """Jobs from a CSV (header row of field names) or JSON file (a list of objects, or {"jobs": [...]}).

    CSV rows are numbered as lines of the file (the header is row 1); JSON jobs from 1. The file must be UTF-8 text
    of at most MAX_JOB_FILE_BYTES and hold at least one job.
    """
    path = Path(path)
    if path.suffix.lower() not in (".json", ".csv"):
        raise JobError(path.name, None, None, f"{shown(path.suffix)} is not a job file type", "use .csv or .json")
    text = read_text(path, max_bytes=MAX_JOB_FILE_BYTES, shown_as=path.name, error=JobError)
    atlas = atlas or load_atlas()
    if path.suffix.lower() == ".json":
        raw = load_json_text(text, path.name, JobError)
        if isinstance(raw, dict) and "jobs" in raw:
            raw = raw["jobs"]
        if not isinstance(raw, list):
            raise JobError(path.name, None, None, "is not a list of jobs", 'write [{"id": ...}] or {"jobs": [...]}')
        if not raw:
            raise _no_jobs(path.name, "an empty list")
        return jobs_from_dicts(raw, atlas, path.name)
    rows = _csv_rows(text, path.name)
    if not rows:
        raise _no_jobs(path.name, "an empty file" if not text.strip() else "only a header")
    jobs, seen = [], {}
    for n, raw in rows:
        job = job_from_dict(raw, atlas, path.name, n)
        if job.id in seen:
            raise JobError(
                path.name, n, "id", f"{shown(job.id)} repeats row {seen[job.id]}", "give every job its own id"
            )
        seen[job.id] = n
        jobs.append(job)
    return jobs


def job_to_dict(job: Job) -> dict[str, Any]:
    """A job as plain JSON-ready values (the inverse of job_from_dict, with origin as adcode)."""
    out = {k: getattr(job, k) for k in FIELDS if k not in ("labels",)}
    out["latency_class"] = job.latency_class.value
    out["data_class"] = job.data_class.value
    out["labels"] = LABEL_SEPARATOR.join(job.labels)
    return out
