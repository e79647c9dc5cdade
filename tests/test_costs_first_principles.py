"""scheduler.costs.estimate against its documented formulas, recomputed from the raw data (site PUE and green
share, the hourly price and grid profiles, the atlas assumptions) - not against another estimate."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from milp_oracle import _run_mean

from suanwang.atlas import load_atlas
from suanwang.scheduler import SchedulerContext, estimate
from suanwang.workload.job import Job

ATLAS = load_atlas()
CTX = SchedulerContext.build(ATLAS)
CITIES = [ATLAS.place(n) for n in ("北京", "上海", "广州", "成都", "兰州", "郑州", "贵阳")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(CITIES),
    st.integers(0, 256),
    st.integers(0, 8),
    st.floats(0.05, 30.0),
    st.floats(0.0, 500.0),
    st.floats(0.0, 50.0),
    st.floats(0.0, 72.0),
)
def test_estimate_follows_its_formulas_at_every_site(city, cores, cards, runtime_h, input_gb, output_gb, start_h):
    job = Job(
        id="j", origin=city.adcode, origin_province=city.province_id, cpu_cores=cores, gpu_cards=cards,
        runtime_h=runtime_h, input_gb=input_gb, output_gb=output_gb,
    )  # fmt: skip
    est = estimate(CTX, job, start_h)
    v = ATLAS.value
    for s, site in enumerate(CTX.sites):
        energy = (cores * v("watts_per_core") + cards * v("watts_per_gpu")) / 1000.0 * runtime_h * site.pue
        cross = site.province_id != job.data_province
        price = _run_mean(CTX.signals.price_cny_per_kwh[s], start_h, runtime_h)
        grid = _run_mean(CTX.signals.grid_kg_per_kwh[s], start_h, runtime_h)
        amort = (cores * v("amortisation_cny_per_core_hour") + cards * v("amortisation_cny_per_gpu_hour")) * runtime_h
        moved_gb = input_gb + output_gb if cross else 0.0
        cost = energy * price + amort + moved_gb * v("transfer_price_cny_per_gb")
        assert est.energy_kwh[s] == pytest.approx(energy, rel=1e-9, abs=1e-12)
        assert est.cost_cny[s] == pytest.approx(cost, rel=1e-9, abs=1e-9)
        assert est.carbon_location_kg[s] == pytest.approx(energy * grid, rel=1e-9, abs=1e-12)
        assert est.carbon_kg[s] == pytest.approx(energy * grid * (1 - site.green_share), rel=1e-9, abs=1e-12)
        assert est.transfer_gb[s] == pytest.approx(moved_gb)
        hours = input_gb * 8.0 / (v("job_bandwidth_gbps") * 3600.0) if cross else 0.0
        assert est.transfer_h[s] == pytest.approx(hours, rel=1e-12, abs=1e-12)
        assert est.latency_ms[s] == pytest.approx(CTX.network.one_way_ms(city, site), rel=1e-9)
        assert math.isfinite(est.cost_cny[s])
