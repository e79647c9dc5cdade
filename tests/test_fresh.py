"""The cached pipeline's first-sighting kernel (scheduler/fresh.py) against the reference arithmetic: the same
entry - best site, order, total and raw scores, bit for bit - as the uncached pipeline's estimate + combination,
with few statically feasible sites (Python floats) and many (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from suanwang.atlas import load_atlas
from suanwang.scheduler import ClusterState, SchedulerContext, make_policy
from suanwang.scheduler.costs import estimate
from suanwang.scheduler.fresh import PYTHON_SITES, FreshEntry
from suanwang.workload.job import Job

ATLAS = load_atlas()
CTX = SchedulerContext.build(ATLAS)


def jobs(n: int, seed: int) -> list[Job]:
    rng = np.random.default_rng(seed)
    caps = ATLAS.capitals
    out = []
    for k in range(n):
        o = caps[int(rng.integers(len(caps)))]
        out.append(
            Job(
                id=f"f{k}",
                origin=o.adcode,
                origin_province=o.province_id,
                cpu_cores=int(rng.integers(1, 65)),
                gpu_cards=int(rng.integers(0, 3)),
                runtime_h=float(rng.choice([0.25, 1.0, 3.7, 30.0])),
                input_gb=float(rng.uniform(0, 500)),
                output_gb=float(rng.uniform(0, 5)),
                latency_class=str(rng.choice(["realtime", "interactive", "batch"])),
                data_class=str(rng.choice(["public", "internal", "sensitive", "core"])),
                submit_h=float(rng.uniform(0, 48)),
            )
        )
    return out


def same(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("policy", ["online", "cheapest", "greenest"])
def test_a_first_sighting_entry_equals_the_reference(policy):
    sched = make_policy(policy, CTX)
    ref = make_policy(policy, CTX, cache=False)
    state = ClusterState.from_sites(CTX.sites)
    sizes = set()
    for job in jobs(300, 5):
        got = sched._fresh_entry(job, state, job.submit_h)
        assert isinstance(got, FreshEntry)
        est = estimate(CTX, job, job.submit_h)
        static = ref._static_mask(job, state, job.submit_h, est)
        score, matrix, order = sched._combination(job, state, job.submit_h, est, static)
        sizes.add(int(static.sum()) <= PYTHON_SITES)
        assert got.order == order and got.first == (order[0] if order else -1)
        assert same(got.score, score) and same(got.matrix, matrix) and np.array_equal(got.static, static)
        for i in order[:3]:
            assert same(got.estimate.at(i), est.at(i))
    assert sizes == {True, False}  # both forms of the kernel ran


def test_a_non_finite_score_falls_back_to_the_reference():
    sched = make_policy("online", CTX)
    state = ClusterState.from_sites(CTX.sites)
    job = jobs(1, 9)[0]
    job.input_gb = float("inf")  # the transfer cost is +inf at every site across a border
    job.data_class = "public"
    job.latency_class = "batch"
    with np.errstate(invalid="ignore"):
        got = sched._fresh_entry(job, state, 1.0)
        assert not isinstance(got, FreshEntry)
        before = make_policy("online", CTX)
        before._kernel = None  # the cached pipeline as it was before the kernel
        a = sched.place(job, ClusterState.from_sites(CTX.sites), 1.0)
        b = before.place(job, ClusterState.from_sites(CTX.sites), 1.0)
    assert (a.placement, a.reason, a.retryable) == (b.placement, b.reason, b.retryable)
