"""`suanwang sweep`: a grid of scenarios x policies x seeds x days, each run simulated on its own, on local worker
processes or on a Ray cluster; one summary per run and an aggregate with mean and 95 % CI over seeds.

A run is a pure function of its `RunSpec` (the scenario file, the policy, the seed, the days, the jobs), so the
results are the same whichever backend ran it and however many workers there were. A run that raises is
reported with its cause; the others still finish. Scenario files must be readable at the same path on every node.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suanwang.errors import ScenarioError
from suanwang.planner.candidates import PlanError
from suanwang.planner.validate import METRICS, interval

NATIONAL = "national"


@dataclass(frozen=True)
class RunSpec:
    """One simulation of the grid."""

    scenario: str  # "national" or a scenario YAML path
    policy: str
    seed: int
    days: float
    jobs: int
    carbon_year: int | None = None


class SweepFile(BaseModel):
    """The YAML of a sweep (see docs/planning.md)."""

    model_config = ConfigDict(extra="forbid")
    scenarios: list[str] = Field(default_factory=lambda: [NATIONAL], min_length=1)
    policies: list[str] = Field(default_factory=lambda: ["local-only", "online"], min_length=1)
    seeds: int | list[int] = 5
    days: list[float] = Field(default_factory=lambda: [2.0], min_length=1)
    jobs: int = Field(2000, ge=1)
    carbon_year: int | None = None


def load_sweep(path: Path) -> SweepFile:
    """A sweep YAML, validated; errors name the file and field."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(str(path), None, None, "file not found", "check the path") from None
    except yaml.YAMLError:
        raise ScenarioError(str(path), None, None, "is not valid YAML", "fix the syntax") from None
    try:
        return SweepFile.model_validate(raw or {})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise ScenarioError(
            str(path), None, field, err["msg"], f"allowed: {', '.join(SweepFile.model_fields)}"
        ) from None


def grid(spec: SweepFile, base: Path | None = None) -> list[RunSpec]:
    """Every run of the sweep, scenario paths resolved against `base` (the sweep file's folder)."""
    from suanwang.sim.runner import check_policies

    policies = check_policies(spec.policies)
    seeds = list(range(1, spec.seeds + 1)) if isinstance(spec.seeds, int) else list(spec.seeds)
    if not seeds:
        raise PlanError("seeds: give at least one seed")
    scenarios = []
    for s in spec.scenarios:
        if s == NATIONAL:
            scenarios.append(s)
            continue
        p = Path(s) if base is None or Path(s).is_absolute() else base / s
        if not p.is_file():
            raise PlanError(f"scenarios: '{s}' is not a file - give a scenario YAML path or '{NATIONAL}'")
        scenarios.append(str(p.resolve()))
    for d in spec.days:
        if d <= 0:
            raise PlanError(f"days: {d:g} must be > 0")
    return [
        RunSpec(sc, pol, seed, float(d), spec.jobs, spec.carbon_year)
        for sc in scenarios
        for pol in policies
        for d in spec.days
        for seed in seeds
    ]


@lru_cache(maxsize=8)
def _world(scenario: str, carbon_year: int | None):
    """(scheduler context, atlas, carbon year) of a scenario, built once per worker process."""
    from suanwang.atlas import load_atlas
    from suanwang.atlas.signals import build_signals
    from suanwang.planner.instance import default_carbon_year
    from suanwang.scheduler import SchedulerContext

    if scenario == NATIONAL:
        atlas, network = load_atlas(), None
    else:
        from suanwang.atlas.scenario import load_scenario

        sc = load_scenario(scenario)
        atlas, network = sc.atlas, sc.network
    year = carbon_year or default_carbon_year(atlas)
    return SchedulerContext.build(atlas, network, build_signals(atlas, year=year)), atlas, year


@lru_cache(maxsize=4)
def _jobs(scenario: str, carbon_year: int | None, jobs: int, days: float, seed: int):
    from suanwang.workload.demand import national_demand

    ctx, atlas, _ = _world(scenario, carbon_year)
    return national_demand(atlas, jobs, days, seed, ctx.sites).jobs


def run_one(spec: RunSpec) -> dict:
    """Simulate one run: {"run": spec, "ok": True, "totals": ...} or {"run", "ok": False, "error": cause}."""
    from suanwang.sim.runner import run_policy

    try:
        ctx, _, year = _world(spec.scenario, spec.carbon_year)
        job_list = _jobs(spec.scenario, spec.carbon_year, spec.jobs, spec.days, spec.seed)
        out = run_policy(ctx, job_list, spec.policy, year, horizon_h=spec.days * 24.0, outages=[], cuts=[])
        return {"run": asdict(spec), "ok": True, "totals": out["totals"], "pid": os.getpid()}
    except Exception as e:  # a failed run is a result: its cause is reported, the others go on
        return {"run": asdict(spec), "ok": False, "error": f"{type(e).__name__}: {e}", "pid": os.getpid()}


def run_sweep(
    specs: list[RunSpec],
    *,
    workers: int = 2,
    ray_address: str | None = None,
    on_done: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Every run of `specs`, in spec order: on `workers` local processes, or on the Ray cluster at `ray_address`
    ('auto' for the one this host belongs to)."""
    results: list[dict | None] = [None] * len(specs)
    if ray_address:
        for i, res in _ray_runs(specs, ray_address):
            results[i] = res
            if on_done:
                on_done(res)
    elif workers <= 1:
        for i, s in enumerate(specs):
            results[i] = run_one(s)
            if on_done:
                on_done(results[i])
    else:
        with ProcessPoolExecutor(workers) as pool:
            futures = {pool.submit(run_one, s): i for i, s in enumerate(specs)}
            for f in as_completed(futures):
                results[futures[f]] = f.result()
                if on_done:
                    on_done(results[futures[f]])
    return results  # type: ignore[return-value]


def _ray_runs(specs: list[RunSpec], address: str):
    try:
        import ray
    except ImportError:
        raise PlanError("--ray: Ray is not installed - pip install 'suanwang[ray]' (the engines' Ray extra)") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except Exception as e:
            raise PlanError(f"--ray: cannot reach the Ray cluster at '{address}' ({type(e).__name__}: {e})") from None
    try:
        remote = ray.remote(num_cpus=1)(run_one)
        pending = {remote.remote(s): i for i, s in enumerate(specs)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def aggregate(results: list[dict]) -> list[dict]:
    """Mean and 95 % CI of each metric over the seeds of every (scenario, policy, days) that ran."""
    groups: dict[tuple, list[dict]] = {}
    failed: dict[tuple, int] = {}
    for r in results:
        key = (r["run"]["scenario"], r["run"]["policy"], r["run"]["days"])
        if r["ok"]:
            groups.setdefault(key, []).append(r["totals"])
        else:
            failed[key] = failed.get(key, 0) + 1
    rows = []
    for key in dict.fromkeys([*groups, *failed]):
        scenario, policy, days = key
        totals = groups.get(key, [])
        row = {
            "scenario": Path(scenario).name,
            "policy": policy,
            "days": days,
            "runs": len(totals),
            "failed": failed.get(key, 0),
        }
        for m in METRICS:
            if totals:
                mean, half = interval([t[m] for t in totals])
                row[m], row[f"{m}_ci95"] = round(mean, 4), None if half != half else round(half, 4)
        rows.append(row)
    return rows
