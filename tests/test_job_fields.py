"""One job field list (workload.job.JOB_FIELDS, from the Job dataclass): every list derived from it covers each Job
field, save the ones it names as set elsewhere; the API schema, the validation and the migrated job table, which
cannot be derived, have each field too. A new Job field that one of them misses fails here."""

from __future__ import annotations

import typing
from dataclasses import fields
from pathlib import Path

import sqlalchemy as sa
from test_service_fixtures import *  # noqa: F403 - fixtures

from suanwang.service import jobs
from suanwang.service.db import JOB_COLUMNS, JobRow, make_engine
from suanwang.service.migrate import upgrade
from suanwang.service.schemas import SUBMITTED, JobIn
from suanwang.workload import io
from suanwang.workload.job import JOB_FIELDS, RESOLVED_FIELDS, Job
from suanwang.workload.validate import BOUNDS, MAX_TEXT_CHARS

# Written out here on purpose (the oracle): which Job fields each list leaves to someone else.
EVERY = {f.name for f in fields(Job)}
NOT_IN_JOB_FILES = {"origin_province"}  # resolved from the origin city
NOT_SUBMITTED = {"id", "submit_h", "origin_province"}  # the service's own id and clock; resolved from the origin
NOT_STORED_AS_GIVEN = NOT_SUBMITTED | {"origin", "tenant"}  # the resolved city; tenant_id
NOT_A_COLUMN = {"tenant"}  # the job table holds tenant_id


def test_the_field_list_is_the_job_dataclass():
    assert JOB_FIELDS == tuple(f.name for f in fields(Job)) and len(set(JOB_FIELDS)) == len(JOB_FIELDS)
    assert set(RESOLVED_FIELDS) == NOT_IN_JOB_FILES


def test_every_derived_list_covers_every_job_field():
    lists = {
        "workload.io.FIELDS (job file columns)": (io.FIELDS, NOT_IN_JOB_FILES),
        "service.schemas.SUBMITTED": (SUBMITTED, NOT_SUBMITTED),
        "service.jobs.FIELDS (stored and shown as given)": (jobs.FIELDS, NOT_STORED_AS_GIVEN),
        "service.db.JOB_COLUMNS": (JOB_COLUMNS, NOT_A_COLUMN),
    }
    for name, (names, left_out) in lists.items():
        assert len(set(names)) == len(names), f"{name} repeats a field"
        assert set(names) == EVERY - left_out, f"{name}: missing {EVERY - left_out - set(names)}"


def test_job_files_keep_their_documented_column_order():
    demo = Path(__file__).resolve().parents[1] / "examples/jobs-demo.csv"
    header = demo.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert [f for f in io.FIELDS if f in header] == header and set(header) <= set(io.FIELDS)


def test_the_api_schema_has_every_submitted_field():
    assert set(JobIn.model_fields) == EVERY - NOT_SUBMITTED


def test_the_validation_bounds_every_number_and_text():
    hints = typing.get_type_hints(Job)
    numbers = {f for f, t in hints.items() if set(typing.get_args(t) or (t,)) - {type(None)} <= {int, float}}
    texts = {f for f, t in hints.items() if set(typing.get_args(t) or (t,)) - {type(None)} == {str}}
    assert numbers == set(BOUNDS), f"numbers without bounds: {numbers - set(BOUNDS)}"
    assert texts - NOT_IN_JOB_FILES == set(MAX_TEXT_CHARS), f"texts without a length: {texts - set(MAX_TEXT_CHARS)}"


def test_the_migrated_job_table_and_the_orm_have_a_column_for_every_stored_field(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        migrated = {c["name"] for c in sa.inspect(conn).get_columns("jobs")}
    engine.dispose()
    assert EVERY - NOT_A_COLUMN <= migrated, f"no column for {EVERY - NOT_A_COLUMN - migrated}"
    assert EVERY - NOT_A_COLUMN <= set(JobRow.__table__.c.keys())
    assert "tenant_id" in migrated
