"""Validation by simulation: the top candidates and the status quo, each simulated as a scenario on the same
jobs over several seeds (online policy), with mean and 95 % confidence interval of each total."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import stats

from suanwang.atlas import Atlas, Site
from suanwang.atlas.signals import build_signals
from suanwang.network import Network
from suanwang.scheduler import SchedulerContext
from suanwang.sim.runner import run_policy
from suanwang.workload.demand import national_demand

METRICS = ("cost_cny", "carbon_t", "wait_p95_h", "latency_violations", "deadline_misses", "rejected")
PAIRED = ("cost_cny", "carbon_t", "deadline_misses")


def interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95 % t confidence interval) of `values`."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float(x.mean()), math.nan
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def world_context(atlas: Atlas, net: Network, sites: list[Site], carbon_year: int) -> SchedulerContext:
    """The scheduler context of `atlas` with `sites` instead of its own, latency model as `net`."""
    world = replace(atlas, sites=sites)
    wnet = Network(world, net.route_factor, net.overhead_ms, dict(net.overrides))
    return SchedulerContext.build(world, wnet, build_signals(world, year=carbon_year))


def validate(
    atlas: Atlas,
    net: Network,
    scenarios: dict[str, list[Site]],
    *,
    seeds: int = 5,
    jobs: int = 2000,
    days: float = 2.0,
    carbon_year: int,
    policy: str = "online",
) -> list[dict]:
    """One row per scenario (name -> sites added to the atlas): mean and 95 % CI of METRICS over `seeds` seeds, and
    of the paired per-seed difference to the first scenario (PAIRED). Every scenario sees the same jobs per seed
    (drawn for the status-quo sites)."""
    worlds = {
        name: world_context(atlas, net, list(atlas.sites) + list(added), carbon_year)
        for name, added in scenarios.items()
    }
    runs: dict[str, list[dict]] = {name: [] for name in scenarios}
    for seed in range(seeds):
        job_list = national_demand(atlas, jobs, days, seed, atlas.sites).jobs
        for name, ctx in worlds.items():
            out = run_policy(ctx, job_list, policy, carbon_year, horizon_h=days * 24.0, outages=[], cuts=[])
            runs[name].append(out["totals"])
    rows = []
    first = next(iter(runs.values()))
    for name, totals in runs.items():
        row = {"scenario": name, "seeds": seeds}
        for m in METRICS:
            mean, half = interval([t[m] for t in totals])
            row[m] = round(mean, 4)
            row[f"{m}_ci95"] = round(half, 4)
        for m in PAIRED:  # same jobs per seed: the paired difference has a much tighter interval
            mean, half = interval([t[m] - b[m] for t, b in zip(totals, first, strict=True)])
            row[f"{m}_vs_first"] = round(mean, 4)
            row[f"{m}_vs_first_ci95"] = round(half, 4) if not math.isnan(half) else None
        rows.append(row)
    return rows
