"""One set of hard rules: the batch planner's masks and reasons are the online pipeline's filter plugins'."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanwang.atlas import load_atlas
from suanwang.scheduler import ClusterState, SchedulerContext, make_policy
from suanwang.scheduler.optimize import BatchOptimizer
from suanwang.scheduler.optimize.classes import rejection_reason, static_mask
from suanwang.workload.job import Job

CITIES = ("北京", "上海", "拉萨", "乌鲁木齐", "许昌", "广州")


@pytest.fixture(scope="module")
def ctx():
    return SchedulerContext.build(load_atlas())


def job(ctx, city: str, **kw) -> Job:
    p = ctx.atlas.place(city)
    return Job(kw.pop("id", "j1"), p.adcode, p.province_id, **kw)


@settings(max_examples=60, deadline=None)
@given(
    city=st.sampled_from(CITIES),
    latency=st.sampled_from(["realtime", "interactive", "batch"]),
    data=st.sampled_from(["public", "internal", "sensitive", "core"]),
    cores=st.sampled_from([1, 64, 10_000, 10**6]),
    labels=st.sampled_from([(), ("gov-cloud",), ("ai",), ("no-such-label",)]),
    bound=st.sampled_from([None, 0.5, 3.0]),
)
def test_plan_masks_and_reasons_are_the_online_pipelines(ctx, city, latency, data, cores, labels, bound):
    j = job(ctx, city, cpu_cores=cores, latency_class=latency, data_class=data, labels=labels, max_latency_ms=bound)
    online = make_policy("online", ctx)
    state = ClusterState.from_sites(ctx.sites)
    ever = state.could_ever_fit(j)
    expect = [i for i in online.static_sites(j) if ever[i]]
    assert static_mask(ctx, j).nonzero()[0].tolist() == expect
    d = online.place(j, state, 0.0)
    if expect:
        assert rejection_reason(ctx, j) == ""
    else:  # nowhere, ever: the planner says so in the online pipeline's words
        assert not d.retryable and d.placement is None
        assert rejection_reason(ctx, j) == d.reason


def test_a_plan_rejects_in_the_online_wording(ctx):
    j = job(ctx, "北京", cpu_cores=10**6, latency_class="batch")
    plan = BatchOptimizer(ctx, slot_h=1.0, horizon_slots=4).plan([j], ClusterState.from_sites(ctx.sites), 0.0)
    reason = plan.decisions[0].reason
    assert reason.startswith("no site can take job j1: capacity rejects")
    assert reason == make_policy("online", ctx).place(j, ClusterState.from_sites(ctx.sites), 0.0).reason
