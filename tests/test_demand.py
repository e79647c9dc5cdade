"""National default demand and the trace-derived distributions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanwang.atlas import load_atlas
from suanwang.workload.demand import DemandError, load_config, national_demand, origin_weights
from suanwang.workload.traces import job_shapes, replay, runtimes

ATLAS = load_atlas()


def test_same_seed_same_jobs_and_another_seed_differs():
    a = national_demand(ATLAS, 500, 1, seed=7).jobs
    b = national_demand(ATLAS, 500, 1, seed=7).jobs
    c = national_demand(ATLAS, 500, 1, seed=8).jobs
    assert a == b
    assert a != c


def test_jobs_are_sorted_valid_and_inside_the_horizon():
    jobs = national_demand(ATLAS, 2000, 2, seed=1).jobs
    submits = [j.submit_h for j in jobs]
    assert submits == sorted(submits) and 0 <= submits[0] and submits[-1] < 48
    adcodes = {p.adcode for p in ATLAS.places}
    assert all(j.origin in adcodes for j in jobs)
    assert all(j.deadline_h >= j.submit_h + j.runtime_h for j in jobs)
    assert all(j.cpu_cores >= 1 and j.gpu_cards >= 0 and j.runtime_h > 0 for j in jobs)
    assert len({j.id for j in jobs}) == len(jobs)


def test_mixes_follow_the_documented_assumptions():
    cfg = load_config()
    jobs = national_demand(ATLAS, 20000, 7, seed=2).jobs
    lat = Counter(j.latency_class.value for j in jobs)
    data = Counter(j.data_class.value for j in jobs)
    for k in ("realtime", "interactive", "batch"):
        assert lat[k] / len(jobs) == pytest.approx(cfg["latency_mix"][k], abs=0.02)
    for k in ("public", "internal", "sensitive", "core"):
        assert data[k] / len(jobs) == pytest.approx(cfg["data_mix"][k], abs=0.02)
    # the diurnal shape: the busiest hour gets several times the quietest
    hours = Counter(int(j.submit_h) % 24 for j in jobs)
    assert max(hours.values()) > 3 * min(hours.values())


def test_offered_load_is_near_the_target_and_no_job_outgrows_its_home_province():
    d = national_demand(ATLAS, 20000, 3, seed=4)
    target = load_config()["scale"]["target_utilisation"]
    assert 0.85 * target <= d.offered_cpu_util <= 1.05 * target
    assert 0.85 * target <= d.offered_gpu_util <= 1.05 * target
    share = load_config()["scale"]["max_job_share"]
    biggest = {}
    for s in ATLAS.sites:
        biggest[s.province_id] = max(biggest.get(s.province_id, 0), s.cpu_cores)
    assert all(j.cpu_cores <= max(1, share * biggest[j.origin_province]) for j in d.jobs)


def test_too_few_jobs_fall_short_of_the_target_because_of_the_size_cap():
    few = national_demand(ATLAS, 2000, 3, seed=4)
    many = national_demand(ATLAS, 20000, 3, seed=4)
    assert few.offered_cpu_util < many.offered_cpu_util


def test_richer_provinces_send_more_jobs():
    adcodes, provinces, w = origin_weights(ATLAS)
    by = Counter()
    for p, x in zip(provinces, w, strict=True):
        by[p] += x
    assert sum(w) == pytest.approx(1.0)
    assert by["guangdong"] > by["gansu"] * 5 and by["beijing"] > by["tibet"] * 5


@pytest.mark.parametrize("jobs,days", [(0, 1), (-5, 1), (10, 0), (10, float("nan"))])
def test_bad_settings_name_the_setting(jobs, days):
    with pytest.raises(DemandError, match="jobs|days"):
        national_demand(ATLAS, jobs, days)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 200))
def test_runtime_draws_stay_inside_the_table(seed, n):
    rng = np.random.default_rng(seed)
    for table in runtimes().values():
        x = table.sample(rng, n)
        assert x.min() >= table.value[0] and x.max() <= table.value[-1]
    cores, cards = job_shapes().sample(rng, n)
    assert (cores >= 1).all() and (cards >= 0).all()


def test_trace_tables_keep_the_published_shape():
    # Philly runs longer than the Alibaba pods at the median (datasets note: 1186 s vs 540 s)
    r = runtimes()
    med = {k: float(np.interp(0.5, t.q, t.value)) for k, t in r.items()}
    assert med["philly_runtime_h"] > med["alibaba_lifetime_h"]
    s = job_shapes()
    assert s.weight[s.gpu_cards == 1].sum() > 0.8  # most pods hold one card


def test_replay_sorts_by_submit_time(tmp_path):
    f = tmp_path / "trace.csv"
    f.write_text("id,origin,cpu_cores,runtime_h,submit_h\nb,北京,4,1,5\na,上海,2,1,1\n", encoding="utf-8")
    jobs = replay(f, ATLAS)
    assert [j.id for j in jobs] == ["a", "b"]


def test_generated_jobs_are_what_the_job_constructor_makes_of_their_fields():
    from dataclasses import fields

    from suanwang.workload.job import DataClass, Job, LatencyClass

    jobs = national_demand(ATLAS, 300, 1, seed=9).jobs
    for j in jobs:
        ref = Job(**{f.name: getattr(j, f.name) for f in fields(Job)})
        assert vars(j) == vars(ref) and list(vars(j)) == list(vars(ref))
        assert type(j.latency_class) is LatencyClass and type(j.data_class) is DataClass  # members, not strings
        assert j.data_province == j.origin_province and j.labels == () and j.tenant == "public"
