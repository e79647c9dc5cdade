"""Every Job field round-trips through a CSV job file, a JSON job file, the API and the database (hypothesis), and
the API refuses exactly what job files refuse, naming the field (one validation: workload/validate.py)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import ADMIN_TOKEN, JOB, auth, build_world, make_service

from suanwang.atlas import load_atlas
from suanwang.errors import JobError
from suanwang.service.db import JobRow
from suanwang.service.placement import COMMANDS_LABEL, to_job
from suanwang.workload.io import FIELDS, job_to_dict, jobs_from_dicts, load_jobs
from suanwang.workload.job import JOB_FIELDS, DataClass, Job, LatencyClass
from suanwang.workload.validate import BOUNDS, INT32_MAX

ATLAS = load_atlas()
PLACES = sorted(ATLAS.places, key=lambda p: p.adcode)
PROVINCES = sorted(ATLAS.provinces)
TENANTS = ("acme", "beta")

# text the validation accepts: printable, no control characters, no surrounding blanks
word = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=30).map(
    str.strip
)
word = word.filter(bool)
label = word.filter(lambda s: ";" not in s and not s.startswith("#"))


def bounded(name: str):
    b = BOUNDS[name]
    if b.integer:
        return st.integers(int(b.low) + b.strict_low, int(b.high))
    return st.floats(b.low, b.high, exclude_min=b.strict_low, allow_nan=False, allow_infinity=False)


@st.composite
def jobs(draw, tenants=None) -> Job:
    """Any Job the validation accepts (origin and provinces from the atlas); it draws every Job field, so each
    round trip below checks every field (a new one fails here until it is drawn)."""
    place = draw(st.sampled_from(PLACES))
    cpu = draw(bounded("cpu_cores"))
    gpu = draw(st.integers(1 if cpu == 0 else 0, INT32_MAX))
    runtime = draw(bounded("runtime_h"))
    submit = draw(st.floats(0, 1e6, allow_nan=False))
    deadline = draw(st.none() | st.floats(submit + runtime, 1e7, allow_nan=False))
    values = dict(
        id=draw(word.filter(lambda s: not s.startswith("#"))),
        origin=place.adcode,
        origin_province=place.province_id,
        cpu_cores=cpu,
        gpu_cards=gpu,
        mem_gb=draw(bounded("mem_gb")),
        runtime_h=runtime,
        input_gb=draw(bounded("input_gb")),
        output_gb=draw(bounded("output_gb")),
        data_province=draw(st.sampled_from(PROVINCES)),
        latency_class=draw(st.sampled_from(list(LatencyClass))),
        max_latency_ms=draw(st.none() | bounded("max_latency_ms")),
        submit_h=submit,
        deadline_h=deadline,
        data_class=draw(st.sampled_from(list(DataClass))),
        tenant=draw(st.sampled_from(tenants) if tenants else word),
        priority=draw(bounded("priority")),
        command=draw(st.none() | st.builds(lambda a, b: f"{a}\n\t{b}", word, word) | word),
        labels=tuple(draw(st.lists(label, max_size=4, unique=True))),
    )
    assert set(values) == set(JOB_FIELDS), f"jobs() does not draw {set(JOB_FIELDS) - set(values)}"
    return Job(**values)


@settings(max_examples=150, deadline=None)
@given(job=jobs())
def test_every_field_round_trips_through_csv_and_json(job, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rt")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerow({k: "" if v is None else v for k, v in job_to_dict(job).items()})
    (folder / "jobs.csv").write_text(buf.getvalue(), encoding="utf-8")
    (folder / "jobs.json").write_text(json.dumps([job_to_dict(job)], ensure_ascii=False), encoding="utf-8")
    assert load_jobs(folder / "jobs.csv", ATLAS) == [job]
    assert load_jobs(folder / "jobs.json", ATLAS) == [job]


def _body(job: Job) -> dict:
    """The API body of a job: deadline_h counts from submission; the tenant is named (admin token)."""
    body = {k: v for k, v in job_to_dict(job).items() if k not in ("id", "submit_h") and v is not None}
    body["labels"] = list(job.labels)
    if job.deadline_h is not None:
        body["deadline_h"] = job.deadline_h - job.submit_h
        if body["deadline_h"] < job.runtime_h:  # float rounding of the subtraction; never in a real submission
            body["deadline_h"] = job.runtime_h
    return body


@pytest.fixture
def command_world(db_url, tmp_path):
    svc = make_service(db_url, tmp_path, allow_commands=True)
    w = build_world(svc)
    with w.client:
        yield w
    svc.close()


def test_every_field_round_trips_through_the_api_and_the_database(command_world):
    w = command_world

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(job=jobs(tenants=TENANTS))
    def check(job):
        body = _body(job)
        r = w.client.post("/api/v1/jobs/batch", json={"jobs": [body]}, headers=auth(ADMIN_TOKEN))
        assert r.status_code == 201, r.text
        (out,) = r.json()["jobs"]
        got = w.client.get(f"/api/v1/jobs/{out['id']}", headers=auth(ADMIN_TOKEN)).json()
        for k, v in body.items():
            assert got[k] == v, k
        with w.svc.sessions() as s:
            row = s.get(JobRow, s.query(JobRow.seq).filter(JobRow.id == out["id"]).scalar())
            back = to_job(row, got["tenant"])
        assert row.deadline_h == body.get("deadline_h")
        same = {f: getattr(job, f) for f in Job.__dataclass_fields__ if f not in ("id", "submit_h", "deadline_h")}
        if job.command is not None:  # a job with a command also needs a site that runs commands
            same["labels"] = (*job.labels, COMMANDS_LABEL)
        assert {f: getattr(back, f) for f in same} == same

    check()


BAD = [
    ({"cpu_cores": 0, "gpu_cards": 0}, "cpu_cores", "no cores and no cards"),
    ({"runtime_h": 4, "deadline_h": 2}, "deadline_h", "before"),
    ({"cpu_cores": 1e308}, "cpu_cores", ""),
    ({"mem_gb": 1e308}, "mem_gb", ""),
    ({"labels": ["ai", "a;b"]}, "labels", ""),
    ({"labels": ["x" * 65]}, "labels", ""),
    ({"origin": "许\x1b[31m昌"}, "origin", "control character"),
    ({"data_province": "he\x00nan"}, "data_province", "control character"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD)
def test_the_api_refuses_what_job_files_refuse_naming_the_field(world, change, field, words):
    body = dict(JOB, **change)
    for path, payload in (("/api/v1/jobs", body), ("/api/v1/jobs/batch", {"jobs": [body]})):  # fast path and route
        r = world.client.post(path, json=payload, headers=world.acme)
        assert r.status_code == 422, r.text
        loc = r.json()["detail"][0]["loc"]
        assert field in loc and words in r.json()["detail"][0]["msg"], r.text
    row = {"id": "a", **{k: v for k, v in body.items()}}
    with pytest.raises(JobError) as e:  # the job file refuses the same job, naming the same field
        jobs_from_dicts([row], ATLAS, "jobs.json")
    assert e.value.field == field


@pytest.mark.parametrize("raw", [b'{"origin": "x", "runtime_h": Infinity}', b'{"origin": "x", "runtime_h": NaN}'])
def test_non_finite_json_is_refused(world, raw):
    headers = dict(world.acme, **{"content-type": "application/json"})
    r = world.client.post("/api/v1/jobs", content=raw, headers=headers)
    assert r.status_code == 422 and "Infinity" not in r.text and "NaN" not in r.text


def test_labels_reach_the_scheduler(world):
    (ai_site,) = [s.id for s in ATLAS.sites if "ai" in s.labels]
    r = world.client.post("/api/v1/jobs", json=dict(JOB, labels=["ai"]), headers=world.acme)
    assert r.status_code == 201 and r.json()["labels"] == ["ai"]
    world.tick()
    got = world.client.get(f"/api/v1/jobs/{r.json()['id']}", headers=world.acme).json()
    assert got["site_id"] == ai_site, got


number = st.one_of(
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, 1e308, 2**31 - 1, 2**31, 1e6, 1e6 + 1e-9, 1e7, 1e12, 1e12 * 1.0001, -1000, 1001]),
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["cpu_cores", "gpu_cards", "mem_gb", "runtime_h", "input_gb", "max_latency_ms", "priority"]),
        number,
        max_size=3,
    ),
    deadline=st.none() | number,
)
def test_the_api_and_job_files_accept_exactly_the_same_numbers(values, deadline):
    """The same values, as an API body and as a job file row (submit_h 0, so the deadlines mean the same): the
    API accepts them exactly when the job file does."""
    from pydantic import ValidationError

    from suanwang.service.schemas import JobIn

    body = {"origin": "许昌", **values, **({} if deadline is None else {"deadline_h": deadline})}
    try:
        JobIn.model_validate(body)
        api_ok = True
    except ValidationError:
        api_ok = False
    try:
        jobs_from_dicts([{"id": "a", **body}], ATLAS, "jobs.json")
        file_ok = True
    except JobError:
        file_ok = False
    assert api_ok == file_ok, body
