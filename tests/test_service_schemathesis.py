"""Property-based fuzzing of every operation in the OpenAPI spec (schemathesis): no input gives a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from test_service_fixtures import ADMIN_TOKEN, make_service

from suanwang.service import create_app

MAX_EXAMPLES = 8


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    svc = make_service(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}", tmp_path_factory.mktemp("jobs"))
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(svc))
    svc.close()


def test_no_input_gives_a_server_error(schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {ADMIN_TOKEN}"}
            case.call_and_validate(checks=[not_a_server_error])

        fuzz()
