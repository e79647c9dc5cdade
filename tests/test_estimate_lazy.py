"""estimate(..., lazy=True) and Estimate.at: the same numbers as the eager estimate, bit for bit."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from suanwang.atlas import load_atlas
from suanwang.scheduler import SchedulerContext
from suanwang.scheduler.costs import AT_FIELDS, estimate
from suanwang.workload.demand import national_demand

FIELDS = ("energy_kwh", "cost_cny", "carbon_kg", "carbon_location_kg", "latency_ms", "transfer_gb", "transfer_h")


@cache
def ctx() -> SchedulerContext:
    return SchedulerContext.build(load_atlas())


def jobs():
    base = national_demand(ctx().atlas, 400, 1.0, seed=12).jobs
    odd = [
        replace(base[0], input_gb=0.0, output_gb=0.0),
        replace(base[1], input_gb=-0.0, output_gb=0.0),  # a signed zero stays signed, as in the eager estimate
        replace(base[2], cpu_cores=0, gpu_cards=4, data_province="beijing"),
        replace(base[3], input_gb=math.inf),  # not finite: the np.where branch
        replace(base[4], runtime_h=30.0),  # a run of more than a day
    ]
    return base + odd


def same(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("start", [None, 3.5, 22.9])
def test_lazy_fields_and_one_site_equal_the_eager_estimate(start):
    n = len(ctx().sites)
    for job in jobs():
        eager = estimate(ctx(), job, start)
        lazy = estimate(ctx(), job, start, lazy=True)
        for i in range(n):  # before any field is read: from the scalars alone
            assert same(lazy.at(i), eager.at(i))
            assert same(eager.at(i), [getattr(eager, f)[i] for f in AT_FIELDS])
            assert same([lazy.transfer_h_at(i)], [eager.transfer_h[i]])
        assert "transfer_h" not in lazy.computed()
        for f in FIELDS:
            assert same(getattr(lazy, f), getattr(eager, f)), f
        assert same(lazy.at(n - 1), eager.at(n - 1))  # and after
        assert same([lazy.transfer_h_at(n - 1), eager.transfer_h_at(n - 1)], [eager.transfer_h[n - 1]] * 2)


def test_a_lazy_estimate_computes_a_field_only_when_read():
    lazy = estimate(ctx(), jobs()[7], 5.0, lazy=True)
    assert "cost_cny" not in lazy.computed()
    lazy.at(3)
    assert "cost_cny" not in lazy.computed() and "energy_kwh" not in lazy.computed()
    _ = lazy.cost_cny
    assert "cost_cny" in lazy.computed() and "energy_kwh" in lazy.computed() and "carbon_kg" not in lazy.computed()
    with pytest.raises(AttributeError):
        _ = lazy.no_such_field
