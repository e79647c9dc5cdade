"""Cache keys are derived from what plugins declare they read: a plugin that reads an undeclared Job or Estimate
field fails here (run on a job and an estimate that record every attribute read)."""

from __future__ import annotations

import pytest

from suanwang.atlas import load_atlas
from suanwang.scheduler import POLICIES, ClusterState, CycleState, SchedulerContext, estimate, make_policy
from suanwang.scheduler.optimize.classes import CLASS_FIELDS, class_key
from suanwang.workload.job import Job


class Recorder:
    """Wraps an object and records the names of the attributes read from it."""

    def __init__(self, obj):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._obj, name)


@pytest.fixture(scope="module")
def ctx():
    return SchedulerContext.build(load_atlas())


def jobs(ctx) -> list[Job]:
    bj, sh = ctx.atlas.place("北京"), ctx.atlas.place("上海")
    return [
        Job("a", bj.adcode, bj.province_id, cpu_cores=8, latency_class="realtime", input_gb=50, deadline_h=3.0),
        Job("b", sh.adcode, sh.province_id, cpu_cores=10**6, data_class="core", labels=("gov-cloud",)),
        Job("c", bj.adcode, bj.province_id, gpu_cards=2, max_latency_ms=1.0, data_province="hebei", deadline_h=0.5),
    ]


def plugins(policy):
    online = getattr(policy, "online", policy)
    return [*online.filters, *(p for p, _ in online.scores)]


@pytest.mark.parametrize("name", POLICIES)
def test_every_plugin_reads_only_what_it_declares(ctx, name):
    for plugin in plugins(make_policy(name, ctx)):
        for job in jobs(ctx):
            rj, re = Recorder(job), Recorder(estimate(ctx, job, 0.0))
            state = ClusterState.from_sites(ctx.sites)
            state.cpu_free[::2] = 0  # some sites full, so capacity filters reject some
            cs = CycleState(ctx, rj, state, 0.0, re)
            if hasattr(plugin, "filter"):
                mask = plugin.filter(cs)
                for i in range(len(ctx.sites)):
                    plugin.admits(cs, i)
                declared = {*plugin.job_fields}
                assert rj.read <= declared, f"{plugin.name} reads {rj.read - declared} undeclared"
                for i in [i for i in range(len(ctx.sites)) if not mask[i]][:3]:
                    plugin.reason(cs, i)
                declared |= {*plugin.reason_fields}
                assert rj.read <= declared, f"{plugin.name}'s reason reads {rj.read - declared} undeclared"
            else:
                plugin.score(cs)
                assert rj.read <= {*plugin.job_fields}, f"{plugin.name} reads {rj.read} of the job"
            if plugin.reads is not None:
                est_read = re.read - {"at", "transfer_h_at"}  # one-site readers of a declared field
                assert est_read <= {*plugin.reads}, f"{plugin.name} reads estimate {est_read - {*plugin.reads}}"


def test_a_field_no_plugin_reads_does_not_split_keys(ctx):
    online = make_policy("online", ctx)
    a, b = jobs(ctx)[0], jobs(ctx)[0]
    b.priority, b.id, b.submit_h = 5, "other", 7.0  # read by no filter or score: same signature, same class
    assert online.signature(a) == online.signature(b)
    assert class_key(a, 0, -1) == class_key(b, 0, -1)
    b.input_gb = 51  # read by the estimate (transfer): a new signature, a new class
    assert online.signature(a) != online.signature(b)
    assert class_key(a, 0, -1) != class_key(b, 0, -1)
    assert "input_gb" in CLASS_FIELDS and "priority" not in CLASS_FIELDS
