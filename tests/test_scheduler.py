"""Unit tests of the scheduler API: policies by name, weights, retryable vs rejected, round-robin, explain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from suanwang.errors import PolicyError
from suanwang.policy import parse_rules
from suanwang.scheduler import POLICIES, ClusterState, SchedulerContext, make_policy, parse_weights
from suanwang.workload.job import Job


@pytest.fixture(scope="module")
def ctx():
    from suanwang.atlas import load_atlas

    return SchedulerContext.build(load_atlas())


def job_from(ctx, city: str, **kw) -> Job:
    p = ctx.atlas.place(city)
    return Job(kw.pop("id", "j"), p.adcode, p.province_id, **kw)


def test_every_policy_is_made_and_named(ctx):
    for name in POLICIES:
        assert make_policy(name, ctx).name == name


def test_unknown_policy_and_bad_weights_are_clear(ctx):
    with pytest.raises(PolicyError, match="did you mean greenest"):
        make_policy("grenest", ctx)
    with pytest.raises(PolicyError, match="'speed'"):
        make_policy("online", ctx, {"speed": 1})
    with pytest.raises(PolicyError, match="not a finite weight"):
        parse_weights("cost=-1")
    with pytest.raises(PolicyError, match="name=value"):
        parse_weights("cost")
    assert parse_weights("cost=2, carbon=0.5") == {"cost": 2.0, "carbon": 0.5}


def test_full_cluster_is_retryable_and_release_makes_room(ctx):
    sites = [s for s in ctx.sites if s.id == "henan-dc"]
    small = SchedulerContext.build(ctx.atlas, sites=[replace(sites[0], cpu_cores=8, gpu_cards=0)])
    state = ClusterState.from_sites(small.sites)
    sched = make_policy("online", small)
    a = job_from(small, "郑州", id="a", cpu_cores=8)
    b = job_from(small, "郑州", id="b", cpu_cores=8)
    assert sched.place(a, state, 0.0).placed
    d = sched.place(b, state, 0.0)
    assert not d.placed and d.retryable and "retry" in d.reason
    state.release(0, a)
    assert sched.place(b, state, 1.0).placed
    huge = job_from(small, "郑州", id="c", cpu_cores=9)
    d = sched.place(huge, state, 1.0)
    assert not d.placed and not d.retryable and "capacity" in d.reason


def test_down_site_is_retryable_not_rejected(ctx):
    state = ClusterState.from_sites(ctx.sites)
    job = job_from(ctx, "郑州", data_class="core")
    state.up[ctx.site_ids.index("henan-dc")] = False
    d = make_policy("nearest", ctx).place(job, state, 0.0, explain=True)
    assert d.retryable and not d.placed
    henan = d.verdicts[ctx.site_ids.index("henan-dc")]
    assert henan.reason == "capacity-free: site is down now"


def test_infeasible_reason_names_rules(ctx):
    job = job_from(ctx, "郑州", data_class="core", labels=("ai",))
    d = make_policy("online", ctx).place(job, ClusterState.from_sites(ctx.sites), 0.0)
    assert not d.placed and not d.retryable
    assert "residency R2" in d.reason and "labels" in d.reason


def test_round_robin_rotates_over_feasible_sites(ctx):
    state = ClusterState.from_sites(ctx.sites)
    sched = make_policy("round-robin", ctx)
    chosen = [sched.place(job_from(ctx, "北京", id=f"j{k}"), state, 0.0).placement.site_index for k in range(50)]
    n = len(ctx.sites)
    assert chosen[:n] == list(range(n)) and chosen[n] == 0


def test_tenant_rules_from_a_policy_changes_placement(ctx):
    rules = parse_rules({"rules": [{"id": "T9", "tenants": ["acme"], "sites": ["qingyang"]}]}, ctx.atlas)
    tctx = SchedulerContext.build(ctx.atlas, rules=rules)
    state = ClusterState.from_sites(tctx.sites)
    d = make_policy("nearest", tctx).place(job_from(tctx, "北京", tenant="acme"), state, 0.0, explain=True)
    assert d.placement.site_id == "qingyang"
    assert all(v.reason.startswith("residency T9") for v in d.verdicts if not v.passed)


def test_deadline_excludes_slow_transfers(ctx):
    state = ClusterState.from_sites(ctx.sites)
    job = job_from(ctx, "上海", input_gb=50_000.0, runtime_h=1.0, deadline_h=1.5)
    d = make_policy("greenest", ctx).place(job, state, 0.0)
    assert d.placed and d.placement.transfer_h == 0.0
    assert ctx.sites[d.placement.site_index].province_id == "shanghai"


def test_placement_predictions_match_the_estimate(ctx):
    from suanwang.scheduler import estimate

    state = ClusterState.from_sites(ctx.sites)
    job = job_from(ctx, "广州", cpu_cores=16, gpu_cards=2, runtime_h=3.0, input_gb=100.0)
    p = make_policy("cheapest", ctx).place(job, state, 5.0).placement
    e = estimate(ctx, job, 5.0)
    assert p.cost_cny == pytest.approx(float(e.cost_cny.min()))
    assert p.carbon_kg == pytest.approx(float(e.carbon_kg[p.site_index]))
    assert p.start_h == 5.0


def test_a_day_of_estimates_equals_each_hours_estimate_exactly(ctx):
    from suanwang.scheduler.costs import estimate, estimate_day

    for runtime_h in (0.5, 5.0, 22.5):
        job = job_from(ctx, "成都", cpu_cores=8, gpu_cards=1, runtime_h=runtime_h, input_gb=40.0, output_gb=2.0)
        day = estimate_day(ctx, job)
        assert day.cost_cny.shape == day.carbon_kg.shape == (24, len(ctx.sites))
        for h in range(24):
            one = estimate(ctx, job, h + 0.7)  # any start within hour h
            for field in ("cost_cny", "carbon_kg", "carbon_location_kg"):
                assert np.array_equal(getattr(day, field)[h], getattr(one, field)), (runtime_h, h, field)
            assert np.array_equal(day.transfer_h, one.transfer_h) and np.array_equal(day.energy_kwh, one.energy_kwh)
    long = job_from(ctx, "成都", runtime_h=23.5)  # 24 whole hours: the daily mean from any start
    day = estimate_day(ctx, long)
    assert day.cost_cny.shape == (1, len(ctx.sites))
    for start_h in (0.0, 7.5, 23.9):
        assert np.array_equal(day.cost_cny[0], estimate(ctx, long, start_h).cost_cny)


def test_combining_many_hours_equals_combining_each_hour_exactly():
    from suanwang.scheduler.cache import combine

    rng = np.random.default_rng(3)
    matrix = rng.random((24, 3, 17)) * [[1.0], [100.0], [5.0]]
    matrix[5, 1] = 2.0  # a row constant over the sites counts 0
    weights = np.array([1.0, 1.0, 0.1])
    for static in (rng.random(17) < 0.5, np.ones(17, dtype=bool), np.zeros(17, dtype=bool)):
        for normalise in (True, False):
            many = combine(matrix, weights, static, normalise)
            for h in range(24):
                assert np.array_equal(many[h], combine(matrix[h], weights, static, normalise))
    assert np.isinf(combine(matrix, weights, np.zeros(17, dtype=bool), True)).all()


def test_a_placement_is_an_immutable_value():
    from suanwang.scheduler.decision import Placement

    args = ("j1", "qingyang", 3, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    one, two = Placement(*args), Placement(*args)
    assert one == two and hash(one) == hash(two) and one.transfer_gb == 7.0
    with pytest.raises(AttributeError):
        one.site_id = "elsewhere"  # frozen


def test_repeated_signatures_hit_and_a_day_is_computed_once(ctx):
    state = ClusterState.from_sites(ctx.sites)
    sched = make_policy("online", ctx)
    plain = make_policy("online", ctx, cache=False)
    other = ClusterState.from_sites(ctx.sites)
    decisions = []
    # 3.2 h and 3.7 h: first and second sighting in hour 3, each for its hour alone (a retry at once); 5.0 h: a
    # second hour of day, so the day of the score key is computed; then hours 17, 5 (hit) and 3 (built at 3.9 h)
    for k, now_h in enumerate([3.2, 3.7, 5.0, 17.4, 29.1, 3.9, 27.5]):
        job = job_from(ctx, "广州", id=f"j{k}", cpu_cores=4, runtime_h=2.0, input_gb=5.0)
        decisions.append((sched.place(job, state, now_h), plain.place(job, other, now_h)))
    assert sched.day_misses == 1
    assert sched.hits == 2  # 29.1 h (hour 5, built at 5.0 h) and 27.5 h (hour 3, built at 3.9 h)
    assert sched.misses == 5
    for cached, uncached in decisions:
        assert cached.placement == uncached.placement and cached.reason == uncached.reason


def test_a_third_sighting_in_the_same_hour_computes_the_day(ctx):
    sched = make_policy("online", ctx)
    state = ClusterState.from_sites(ctx.sites)
    job = job_from(ctx, "广州", id="j", cpu_cores=4, runtime_h=2.0, input_gb=5.0)
    for now_h in (3.1, 3.2):
        sched.place(job, state, now_h)
    assert sched.day_misses == 0
    sched.place(job, state, 3.3)
    assert sched.day_misses == 1


def test_scores_that_ignore_the_data_size_are_shared_between_sizes(ctx):
    """nearest scores by latency alone (the origin): jobs that differ only in size or shape share one combination
    of scores, and decide exactly as the uncached pipeline."""
    sched, plain = make_policy("nearest", ctx), make_policy("nearest", ctx, cache=False)
    assert sched._share_scores and not make_policy("online", ctx)._share_scores
    a, b = ClusterState.from_sites(ctx.sites), ClusterState.from_sites(ctx.sites)
    for k in range(40):
        job = job_from(ctx, "成都", id=f"j{k}", cpu_cores=1 + k % 7, runtime_h=0.5 + k / 7, input_gb=1.0 + k * 0.37)
        cached, uncached = sched.place(job, a, 2.0 + k * 0.9), plain.place(job, b, 2.0 + k * 0.9)
        assert (cached.placement, cached.reason, cached.retryable) == (
            uncached.placement,
            uncached.reason,
            uncached.retryable,
        )
    assert len(sched.caches.scores) == 1 and sched.day_misses == 0


def test_scores_are_shared_only_between_jobs_alike_in_what_they_read(ctx):
    """A score that names no fields keeps the full score key; one reading transfer hours shares between jobs of
    one origin province and input size only - and either way decides as the uncached pipeline."""
    from suanwang.scheduler.framework import Scheduler, ScorePlugin
    from suanwang.scheduler.online import hard_filters
    from suanwang.scheduler.plugins.latency import LatencyScore

    class Opaque(ScorePlugin):
        name = "opaque"

        def score(self, cs):
            return cs.estimate.transfer_h

    class Transfer(Opaque):
        reads = ("transfer_h",)

    assert not Scheduler("x", ctx, hard_filters(), [(LatencyScore(), 1.0), (Opaque(), 1.0)])._share_scores
    for cache in (True, False):
        sched = Scheduler("x", ctx, hard_filters(), [(LatencyScore(), 0.1), (Transfer(), 1.0)], cache=cache)
        state = ClusterState.from_sites(ctx.sites)
        out = []
        for k in range(30):
            job = job_from(ctx, "北京", id=f"j{k}", cpu_cores=1 + k, input_gb=(0.0, 5.0, 500.0)[k % 3])
            d = sched.place(replace(job, data_province="hebei" if k % 2 else job.data_province), state, 1.0 + k)
            out.append((d.placement, d.reason, d.retryable))
        if cache:
            assert sched._score_inputs() == ("origin", "data_province", "input_gb") and len(sched.caches.scores) == 6
            cached = out
    assert cached == out


def test_day_caches_stay_bounded_and_decide_alike(ctx, monkeypatch):
    from suanwang.scheduler import cache

    monkeypatch.setattr(cache, "DAY_ENTRIES", 3)
    sched, plain = make_policy("online", ctx), make_policy("online", ctx, cache=False)
    a, b = ClusterState.from_sites(ctx.sites), ClusterState.from_sites(ctx.sites)
    for k in range(120):
        city = ("广州", "北京", "成都", "上海", "西安")[k % 5]
        job = job_from(ctx, city, id=f"j{k}", cpu_cores=2 + k % 3, runtime_h=1.0 + k % 2, input_gb=5.0)
        for again in (job, replace(job, id=f"j{k}-again")):  # the second one hits the entry the first built
            cached, uncached = sched.place(again, a, k * 0.37), plain.place(again, b, k * 0.37)
            assert (cached.placement, cached.reason) == (uncached.placement, uncached.reason)
        assert len(sched.caches.days) <= 3 and len(sched.caches.combined) <= 3
    assert sched.day_misses > 3 and sched.hits > 0
