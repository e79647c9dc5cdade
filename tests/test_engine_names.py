"""Job ids are sanitised before they reach an engine's names: Ray submission ids are safe, short and distinct."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from suanwang.service.executors.ray import submission_id
from suanwang.service.jobs import new_job_id

RAY_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@given(st.text(min_size=1, max_size=300))
def test_any_id_becomes_a_safe_submission_id(job_id: str):
    sid = submission_id(job_id)
    assert RAY_SAFE.fullmatch(sid), sid
    assert sid == submission_id(job_id)  # deterministic: a restarted agent finds the same Ray job


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_different_ids_never_share_a_submission_id(a: str, b: str):
    if a != b:
        assert submission_id(a) != submission_id(b)


def test_the_services_own_ids_pass_unchanged():
    jid = new_job_id()
    assert submission_id(jid) == f"suanwang-{jid}"
    assert "/" not in submission_id("../../etc/passwd") and ".." not in submission_id("../../etc/passwd")
