"""Cost (CNY), energy (kWh) and carbon (kgCO2) of running a job at each site, vectorised over sites.

energy_kwh = (cores x W/core + cards x W/card) / 1000 x runtime_h x PUE
cost_cny   = energy_kwh x price(run hours) + amortisation (core-hours, card-hours) + inter-province transfer
carbon_kg  = energy_kwh x grid intensity(run hours) x (1 - green share)          (market-based)
carbon_location_kg = energy_kwh x grid intensity(run hours)                       (location-based, grid mix only)
Constants come from atlas/data/assumptions.yaml with their sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.workload.job import Job


@dataclass(frozen=True)
class Estimate:
    """Predictions for one job over all sites (arrays aligned with ctx.sites; from `estimate_day`, the cost and
    carbon fields carry a leading axis of start hours)."""

    energy_kwh: np.ndarray
    cost_cny: np.ndarray
    carbon_kg: np.ndarray
    carbon_location_kg: np.ndarray
    latency_ms: np.ndarray  # one-way from the job's origin
    transfer_gb: np.ndarray  # data moved between provinces
    transfer_h: np.ndarray  # time to move the input before the job can start


HOURLY_FIELDS = ("cost_cny", "carbon_kg", "carbon_location_kg")  # the Estimate fields that depend on the start hour


def it_power_kw(ctx: SchedulerContext, cpu_cores, gpu_cards) -> np.ndarray:
    """IT power in kW of busy cores and cards (before PUE)."""
    a = ctx.atlas
    return (np.asarray(cpu_cores) * a.value("watts_per_core") + np.asarray(gpu_cards) * a.value("watts_per_gpu")) / 1e3


def estimate(ctx: SchedulerContext, job: Job, start_h: float | None = None) -> Estimate:
    """Energy, cost, carbon, latency and transfer of `job` at every site if it starts at `start_h` (hours)."""
    start = job.submit_h if start_h is None else start_h
    return _predict(ctx, job, *ctx.mean_signals(start, job.runtime_h))


def estimate_day(ctx: SchedulerContext, job: Job) -> Estimate:
    """`estimate` for every start hour of the day at once: cost_cny, carbon_kg and carbon_location_kg are
    [24, sites] (row h: the run starts in hour h of the day), or [1, sites] for runs of a day or more (every start
    sees the daily mean); the other fields are [sites] as in `estimate`. Row h equals estimate(ctx, job, h) exactly
    (the same arithmetic, element by element)."""
    if math.ceil(job.runtime_h) >= 24:
        price, grid = ctx.mean_signals(0.0, job.runtime_h)
        return _predict(ctx, job, price[None, :], grid[None, :])
    return _predict(ctx, job, *ctx.day_signals(job.runtime_h))


def _predict(ctx: SchedulerContext, job: Job, price: np.ndarray, grid: np.ndarray) -> Estimate:
    """The estimate of `job` given the mean price (CNY/kWh) and grid intensity (kgCO2/kWh) over its run, per site
    ([sites]) or per start hour and site ([hours, sites])."""
    a = ctx.atlas
    moved = ctx.site_province != job.data_province
    transfer_gb = np.where(moved, job.input_gb + job.output_gb, 0.0)
    transfer_h = np.where(moved, ctx.network.transfer_h(job.input_gb), 0.0)
    energy = it_power_kw(ctx, job.cpu_cores, job.gpu_cards) * job.runtime_h * ctx.pue
    amort = (
        job.cpu_cores * a.value("amortisation_cny_per_core_hour")
        + job.gpu_cards * a.value("amortisation_cny_per_gpu_hour")
    ) * job.runtime_h
    transfer_cost = ctx.network.transfer_cost_cny(transfer_gb, ~moved)
    carbon_location = energy * grid
    return Estimate(
        energy_kwh=energy,
        cost_cny=energy * price + amort + transfer_cost,
        carbon_kg=carbon_location * (1.0 - ctx.green_share),
        carbon_location_kg=carbon_location,
        latency_ms=ctx.latency_row(job.origin),
        transfer_gb=transfer_gb,
        transfer_h=transfer_h,
    )
