"""Run several policies on one job list (common random numbers) and assemble the results document.

    results = simulate(ctx, jobs, ["local-only", "online"], days=7, seed=1, meta={...})
    write_results(results, out_dir)          # results.json + CSV tables

Policies run in parallel worker processes (`workers`); each is deterministic, so the results do not depend
on the number of workers.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from suanwang.errors import SuanwangError
from suanwang.policy.quotas import Tenancy
from suanwang.scheduler import POLICIES, SchedulerContext
from suanwang.scheduler.registry import WINDOWED
from suanwang.sim.faults import LinkCut, Outage
from suanwang.sim.metrics import summarise
from suanwang.sim.simulator import Simulation
from suanwang.sim.tenants import tenant_summary
from suanwang.workload.job import Job

BASELINE = "local-only"
NATIONAL_SCENARIO = "national default"  # meta.scenario of a run on the shipped atlas
_SHARED: dict = {}


class SimulationError(SuanwangError):
    """A simulation setting is invalid (names the setting and the fix)."""


def check_policies(names: list[str]) -> list[str]:
    """The policy names, validated against POLICIES (order kept, duplicates dropped)."""
    out = []
    for n in names:
        if n not in POLICIES:
            raise SimulationError(f"--policies: '{n}' is not a policy - use any of {', '.join(POLICIES)}")
        if n not in out:
            out.append(n)
    if not out:
        raise SimulationError(f"--policies: give at least one of {', '.join(POLICIES)}")
    return out


def run_policy(ctx: SchedulerContext, jobs: list[Job], policy: str, carbon_year: int, **kwargs) -> dict:
    """Simulate one policy and summarise it; adds 'run': events processed and wall seconds, and with a
    `tenancy` the tenants section (sim/tenants.py)."""
    run = Simulation(ctx, jobs, policy, **kwargs).run()
    out = summarise(run, ctx, carbon_year)
    if kwargs.get("tenancy") is not None:
        out["tenants"] = tenant_summary(run, ctx, kwargs["tenancy"], kwargs["horizon_h"])
    out["run"] = {"events": run.events, "wall_s": round(run.wall_s, 3)}
    return out


def _worker(policy: str) -> tuple[str, dict]:
    ctx, jobs, carbon_year, kwargs = _SHARED["args"]
    return policy, run_policy(ctx, jobs, policy, carbon_year, **kwargs)


def simulate(
    ctx: SchedulerContext,
    jobs: list[Job],
    policies: list[str],
    *,
    days: float,
    meta: dict,
    outages: list[Outage] | None = None,
    cuts: list[LinkCut] | None = None,
    workers: int = 1,
    carbon_year: int | None = None,
    on_done: Callable[[str], None] | None = None,
    tenancy: Tenancy | None = None,
) -> tuple[dict, dict[str, dict]]:
    """(results of every policy on the same jobs in the results.json schema - see docs/simulation.md -,
    run statistics per policy: events processed and wall seconds). `carbon_year` defaults to the signals' year;
    `tenancy`: tenants' quotas and fair share (policy/quotas.py), and a tenants section per policy."""
    policies = check_policies(policies)
    carbon_year = ctx.signals.year if carbon_year is None else carbon_year
    kwargs = {"horizon_h": days * 24.0, "outages": outages or [], "cuts": cuts or []}
    if tenancy is not None:
        kwargs["tenancy"] = tenancy
    done: dict[str, dict] = {}
    if workers > 1 and len(policies) > 1 and "fork" in multiprocessing.get_all_start_methods():
        _SHARED["args"] = (ctx, jobs, carbon_year, kwargs)
        try:
            mp = multiprocessing.get_context("fork")
            slow_first = sorted(policies, key=lambda p: p not in WINDOWED)  # planning takes longest
            with ProcessPoolExecutor(min(workers, len(policies)), mp_context=mp) as pool:
                futures = [pool.submit(_worker, p) for p in slow_first]
                for f in as_completed(futures):
                    name, res = f.result()
                    done[name] = res
                    if on_done:
                        on_done(name)
        finally:
            _SHARED.clear()
    else:
        for name in policies:
            done[name] = run_policy(ctx, jobs, name, carbon_year, **kwargs)
            if on_done:
                on_done(name)
    stats = {p: done[p].pop("run") for p in policies}
    results = {
        "meta": meta,
        "sites": site_rows(ctx),
        "provinces": province_rows(ctx, carbon_year),
        "policies": {p: done[p] for p in policies},
        "baseline": BASELINE if BASELINE in policies else policies[0],
        "signals": signal_rows(ctx),
    }
    return results, stats


def site_rows(ctx: SchedulerContext) -> list[dict]:
    """The sites of the run with position, capacity, PUE and green share."""
    keys = ("id", "name_zh", "name_en", "kind", "province_id", "lat", "lon", "role", "cpu_cores", "gpu_cards")
    return [{**{k: getattr(s, k) for k in keys}, "pue": s.pue, "green_share": s.green_share} for s in ctx.sites]


def province_rows(ctx: SchedulerContext, carbon_year: int) -> list[dict]:
    """The provinces with capital position, region and grid CO2 factor (kgCO2/kWh) for `carbon_year`."""
    return [
        {
            "id": p.id,
            "name_zh": p.name_zh,
            "name_en": p.name_en,
            "lat": p.lat,
            "lon": p.lon,
            "region": p.region,
            "co2_kg_per_kwh": p.co2(carbon_year),
        }
        for p in ctx.atlas.provinces.values()
    ]


def signal_rows(ctx: SchedulerContext) -> dict:
    """Hourly price (CNY/kWh) and grid intensity (kgCO2/kWh) by site over one day."""
    sig = ctx.signals
    return {
        "hours": list(range(24)),
        "price_cny_per_kwh": {
            s.id: [round(float(v), 4) for v in sig.price_cny_per_kwh[i]] for i, s in enumerate(ctx.sites)
        },
        "grid_kg_per_kwh": {
            s.id: [round(float(v), 4) for v in sig.grid_kg_per_kwh[i]] for i, s in enumerate(ctx.sites)
        },
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("", encoding="utf-8")
        return
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_results(results: dict, out_dir: str | Path) -> list[Path]:
    """results.json plus CSV tables (totals, flows, site_load, utilisation, carbon_raised_routes) in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json"]
    paths[0].write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    pol = results["policies"]
    tables = {
        "totals": [{"policy": p, **r["totals"]} for p, r in pol.items()],
        "flows": [{"policy": p, **f} for p, r in pol.items() for f in r["flows"]],
        "site_load": [{"policy": p, **f} for p, r in pol.items() for f in r["site_load"]],
        "carbon_raised_routes": [{"policy": p, **f} for p, r in pol.items() for f in r["carbon_raised_routes"]],
        "utilisation": [
            {"policy": p, "hour": h, "site_id": sid, "util": v}
            for p, r in pol.items()
            for h, row in zip(r["utilisation"]["hours"], r["utilisation"]["values"], strict=True)
            for sid, v in zip(r["utilisation"]["site_ids"], row, strict=True)
        ],
    }
    if any("tenants" in r for r in pol.values()):
        rows = [{"policy": p, **t} for p, r in pol.items() for t in r.get("tenants", {}).get("tenants", [])]
        tables["tenants"] = rows
    for name, rows in tables.items():
        path = out / f"{name}.csv"
        _write_csv(path, rows)
        paths.append(path)
    return paths


def default_workers() -> int:
    """Worker processes: the CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))
