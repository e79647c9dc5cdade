"""Tenancy benchmark: decisions/s of the online policy with quotas on vs off, and the simulator's time per job
with tenants (quotas + fair share) on vs off, in the same run on the same jobs.

Prints one JSON object:
- decisions: the online policy placing the same national jobs into a fresh state (released after each, so the
  state does not fill) without and with a QuotaBook carrying examples/tenants.yaml; the median of `--reps`
  rounds in decisions/s, and on / off (target >= 0.8);
- simulation: national default demand for `--days` days simulated without and with the tenancy file (its demand
  mix applied to both); wall seconds, microseconds per job, and on / off.

Usage: python benchmarks/bench_tenancy.py [--jobs N] [--days D] [--reps R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from suanwang.atlas import load_atlas
from suanwang.policy.quotas import load_tenancy
from suanwang.scheduler import ClusterState, SchedulerContext, make_policy
from suanwang.scheduler.quotas import QuotaBook, west_hubs
from suanwang.sim.simulator import Simulation
from suanwang.sim.tenants import with_tenants
from suanwang.workload.demand import national_demand

EXAMPLE = Path(__file__).parent.parent / "examples" / "tenants.yaml"


def decisions_per_s(ctx, jobs, book, reps: int) -> float:
    """Median decisions/s of one online policy over `jobs` (each placed, then released)."""
    policy = make_policy("online", ctx)
    rates = []
    for _ in range(reps):
        state = ClusterState.from_sites(ctx.sites, book)
        t0 = time.perf_counter()
        for j in jobs:
            d = policy.place(j, state, j.submit_h)
            if d.placement is not None:
                state.release(d.placement.site_index, j)
        rates.append(len(jobs) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    atlas = load_atlas()
    ctx = SchedulerContext.build(atlas)
    tenancy = load_tenancy(EXAMPLE, atlas)
    jobs = with_tenants(national_demand(atlas, a.jobs, a.days, 1, ctx.sites).jobs, tenancy.demand, 1)
    off = decisions_per_s(ctx, jobs, None, a.reps)
    on = decisions_per_s(ctx, jobs, QuotaBook(tenancy, ctx.sites, west_hubs(atlas.hubs)), a.reps)
    sim = {}
    for name, t in (("off", None), ("on", tenancy)):
        t0 = time.perf_counter()
        Simulation(ctx, jobs, "online", horizon_h=a.days * 24, tenancy=t).run()
        sim[name] = time.perf_counter() - t0
    out = {
        "jobs": len(jobs),
        "decisions": {"off_per_s": round(off), "on_per_s": round(on), "on_over_off": round(on / off, 3)},
        "simulation": {
            "days": a.days,
            "off_s": round(sim["off"], 2),
            "on_s": round(sim["on"], 2),
            "off_us_per_job": round(1e6 * sim["off"] / len(jobs), 1),
            "on_us_per_job": round(1e6 * sim["on"] / len(jobs), 1),
            "on_over_off": round(sim["on"] / sim["off"], 3),
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
