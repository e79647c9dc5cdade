"""CLI: `suanwang simulate` - every policy on the same national demand; results.json, CSV tables, report.html."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from suanwang.cli.common import console, emit, friendly_errors
from suanwang.errors import SuanwangError, UnknownPlaceError
from suanwang.safeio import shown

DEFAULT_POLICIES = "local-only,nearest,cheapest,greenest,round-robin,online,batch-lp"
MAX_DAYS = 3660  # ten years of simulated demand: bounds run time (limits, not facts)
MAX_JOBS = 10_000_000
MAX_WORKERS = 64


class SimulateArgumentError(SuanwangError):
    """A `simulate` option is invalid (names the option and the fix)."""


def _hours(text: str, option: str, fmt: str) -> list[str]:
    parts = text.split(":")
    if len(parts) != fmt.count(":") + 1:
        raise SimulateArgumentError(f"{option} '{text}' is not {fmt} - e.g. {option} {fmt.replace('START', '24')}")
    return parts


def _num(x: str, option: str) -> float:
    try:
        v = float(x)
    except ValueError:
        raise SimulateArgumentError(f"{option}: {shown(x)} is not a number of hours - e.g. 24") from None
    if not math.isfinite(v) or v < 0 or v > MAX_DAYS * 24:
        raise SimulateArgumentError(
            f"{option}: {shown(x)} is not between 0 and {MAX_DAYS * 24} hours - give hours since the start, e.g. 24"
        )
    return v


def _window(spec: str, option: str, a: str, b: str) -> tuple[float, float]:
    start, end = _num(a, option), _num(b, option)
    if end <= start:
        raise SimulateArgumentError(f"{option} {shown(spec)}: END {end:g} is not after START {start:g} - e.g. 24:48")
    return start, end


def _site_id(atlas, name: str, option: str) -> str:
    try:
        return atlas.site(name).id
    except UnknownPlaceError as e:
        raise SimulateArgumentError(f"{option}: {e} - list site ids with `suanwang atlas sites`") from None


def _start_month(start: str) -> int:
    """The calendar month of --start (YYYY-MM-DD): the month whose time-of-use hours and prices the run uses."""
    try:
        return date.fromisoformat(start).month
    except ValueError:
        raise SimulateArgumentError(
            f"--start: {shown(start)} is not a date YYYY-MM-DD - e.g. --start 2025-01-06"
        ) from None


def _outages(specs: list[str], atlas):
    from suanwang.sim.faults import Outage

    out = []
    for spec in specs:
        site, a, b = _hours(spec, "--outage", "SITE:START:END")
        out.append(Outage(_site_id(atlas, site, "--outage"), *_window(spec, "--outage", a, b)))
    return out


def _cuts(specs: list[str], atlas):
    from suanwang.sim.faults import LinkCut

    out = []
    for spec in specs:
        prov, site, a, b = _hours(spec, "--cut", "PROVINCE:SITE:START:END")
        try:
            province = atlas.find_province(prov).id
        except UnknownPlaceError as e:
            raise SimulateArgumentError(f"--cut: {e}") from None
        out.append(LinkCut(province, _site_id(atlas, site, "--cut"), *_window(spec, "--cut", a, b)))
    return out


def _writable_folder(out: Path) -> None:
    """Create `out` and check a file can be written there, before any work is done."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".suanwang-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SimulateArgumentError(
            f"--out: cannot write to {out} ({e.strerror or e}) - give a writable folder"
        ) from None


def register(app) -> None:
    """Add the `simulate` command to the root app."""

    @app.command("simulate")
    @friendly_errors
    def simulate_cmd(
        scenario: Path = typer.Option(None, "--scenario", help="Scenario YAML (default: the national atlas)."),
        days: float = typer.Option(
            None, "--days", help=f"Simulated days of demand (at most {MAX_DAYS}; default the scenario's, else 7)."
        ),
        jobs: int = typer.Option(
            None,
            "--jobs",
            min=1,
            max=MAX_JOBS,
            help="Jobs over the whole horizon (default the scenario's, else 20000).",
        ),
        policies: str = typer.Option(None, "--policies", help="Comma-separated policies (default: all)."),
        seed: int = typer.Option(
            1, "--seed", min=0, max=2**32 - 1, help="Random seed: same seed, same jobs, same numbers."
        ),
        out: Path = typer.Option(Path("results"), "--out", help="Output folder."),
        lang: str = typer.Option("en", "--lang", help="Report language: en or zh."),
        trace: Path = typer.Option(None, "--trace", help="Replay jobs from a CSV/JSON job file instead."),
        outage: list[str] = typer.Option([], "--outage", help="SITE:START:END hours, repeatable."),
        cut: list[str] = typer.Option([], "--cut", help="PROVINCE:SITE:START:END hours, repeatable."),
        start: str = typer.Option(
            "2025-01-06", "--start", help="Calendar date of hour 0: its month picks the time-of-use hours and prices."
        ),
        carbon_year: int = typer.Option(
            None,
            "--carbon-year",
            help="Year of the grid CO2 factors: 2021, 2022 or 2023 (default: scenario's, else 2023).",
        ),
        workers: int = typer.Option(
            0, "--workers", min=0, max=MAX_WORKERS, help="Worker processes (0: CPU count, at most 4)."
        ),
        quotas: Path = typer.Option(
            None, "--quotas", help="Tenants file: weights, quotas, demand mix (docs/tenancy.md)."
        ),
    ):
        """Simulate the national computing network under each policy and compare them with local-only."""
        from suanwang import __version__
        from suanwang.atlas import load_atlas
        from suanwang.atlas.signals import build_signals
        from suanwang.scheduler import SchedulerContext
        from suanwang.sim.runner import NATIONAL_SCENARIO, check_policies, default_workers, simulate, write_results
        from suanwang.workload.demand import national_demand
        from suanwang.workload.traces import replay

        sc = None
        if scenario is not None:  # its simulation defaults apply where an option is not given
            from suanwang.atlas.scenario import load_scenario

            sc = load_scenario(scenario)
            d = sc.simulation
            days = days if days is not None else (d.days if d and d.days else 7.0)
            jobs = jobs if jobs is not None else (d.jobs if d and d.jobs else 20000)
            policies = policies or (",".join(d.policies) if d and d.policies else None)
        days = 7.0 if days is None else days
        jobs = 20000 if jobs is None else jobs
        policies = policies or DEFAULT_POLICIES
        if lang not in ("en", "zh"):
            raise SimulateArgumentError(f"--lang: '{lang}' is not a report language - use en or zh")
        if not 0 < days <= MAX_DAYS:  # also refuses NaN
            raise SimulateArgumentError(f"--days: {days:g} is not > 0 and <= {MAX_DAYS} (the limit) - e.g. --days 7")
        month = _start_month(start)  # checked before any work
        _writable_folder(out)
        names = check_policies([p.strip() for p in policies.split(",") if p.strip()])
        name, network = NATIONAL_SCENARIO, None
        if sc is not None:
            atlas, network, name = sc.atlas, sc.network, sc.name
        else:
            atlas = load_atlas()
        outages, cuts = _outages(outage, atlas), _cuts(cut, atlas)
        carbon_year = atlas.with_carbon_year(carbon_year).carbon_year
        ctx = SchedulerContext.build(atlas, network, build_signals(atlas, month=month))
        if trace is not None:
            job_list = replay(trace, atlas)
            days = max(days, max((j.submit_h for j in job_list), default=0.0) / 24.0)
            if days > MAX_DAYS:
                raise SimulateArgumentError(
                    f"--trace: {trace.name} spans {days:.0f} days, more than {MAX_DAYS} (the limit) - shorten it"
                )
            source = f"trace {trace.name}"
        else:
            demand = national_demand(atlas, jobs, days, seed, ctx.sites)
            job_list = demand.jobs
            source = (
                f"national default demand: offered load {demand.offered_cpu_util:.0%} of cores, "
                f"{demand.offered_gpu_util:.0%} of cards"
            )
        tenancy = sc.tenancy if sc is not None else None  # --quotas replaces the scenario's tenants
        if quotas is not None:
            from suanwang.policy.quotas import load_tenancy

            tenancy = load_tenancy(quotas, atlas)
        if tenancy is not None and trace is None and tenancy.demand:
            from suanwang.sim.tenants import with_tenants

            job_list = with_tenants(job_list, tenancy.demand, seed)
        console.print(f"[bold]{len(job_list)} jobs[/bold] over {days:g} days ({source}); {len(names)} policies")
        meta = {
            "seed": seed,
            "days": days,
            "start": start,
            "jobs": len(job_list),
            "scenario": name,
            "carbon_year": carbon_year,
            "tou_month": ctx.signals.month,
            # core-hours one GPU card-hour counts as in the report's ratios (power model: W per card / W per core)
            "card_core_equivalent": atlas.value("watts_per_gpu") / atlas.value("watts_per_core"),
            "generated_by": f"suanwang {__version__}",
        }
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("simulating policies", total=len(names))
            results, stats = simulate(
                ctx,
                job_list,
                names,
                days=days,
                meta=meta,
                outages=outages,
                cuts=cuts,
                workers=workers or default_workers(),
                carbon_year=carbon_year,
                tenancy=tenancy,
                on_done=lambda p: bar.update(task, advance=1, description=f"done {p}"),
            )
        paths = write_results(results, out)
        try:
            from suanwang.report import write_report

            paths.append(write_report(results, out / "report.html", lang))
        except ImportError:  # the report module is optional in a trimmed install
            pass
        _table(results, stats)
        if tenancy is not None:
            _tenants_table(results)
        for p in paths:
            console.print(f"[dim]wrote[/dim] {p}", highlight=False)


def _table(results: dict, stats: dict) -> None:
    """The policies table: cost and market-based carbon per core-equivalent hour (core-hours + k x card-hours,
    k from meta.card_core_equivalent; report/view.py) as a ratio of the baseline's, and the work they divide by."""
    from suanwang.report.view import card_core_equivalent

    k = card_core_equivalent(results.get("meta"))

    def work(t: dict) -> float:
        return t["core_hours"] + k * t["card_hours"]

    base = results["policies"][results["baseline"]]["totals"]
    base_w = work(base) or 1.0
    rows = []
    for name, r in results["policies"].items():
        t = r["totals"]
        w = work(t) or 1.0
        rows.append(
            {
                "policy": name,
                "done": t["done"],
                "rejected": t["rejected"] + t["failed"],
                "cost CNY": f"{t['cost_cny']:.3g}",
                "carbon t": f"{t['carbon_t']:.3g}",
                "core-h": f"{t['core_hours']:.3g}",
                "card-h": f"{t['card_hours']:.3g}",
                "cost/core-eq-h": _ratio(t["cost_cny"] / w, base["cost_cny"] / base_w),
                "CO2mkt/core-eq-h": _ratio(t["carbon_t"] / w, base["carbon_t"] / base_w),
                "wait p50/p95 h": f"{t['wait_p50_h']:.2f}/{t['wait_p95_h']:.2f}",
                "late": t["deadline_misses"],
                "viol lat/res": f"{t['latency_violations']}/{t['residency_violations']}",
                "west": f"{t['west_share']:.0%}",
                "s": round(stats[name]["wall_s"], 1),
            }
        )
    emit(
        rows,
        title=(
            f"policies; cost and market-based carbon (grid x (1 - green share)) per core-equivalent hour "
            f"(core-h + {k:g} x card-h, by power) as a ratio of {results['baseline']}'s"
        ),
    )


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.3f}" if base else "-"


def _tenants_table(results: dict) -> None:
    rows = [
        {
            "policy": name,
            "tenant": t["tenant"],
            "weight": t["weight"],
            "done": t["done"],
            "not run": t["failed"] + t["rejected"],
            "core-h": f"{t['core_hours']:.4g}",
            "card-h": f"{t['card_hours']:.4g}",
            "dominant share": f"{t['dominant_share']:.3g}",
            "wait p50/p95 h": f"{t['wait_p50_h']:.2f}/{t['wait_p95_h']:.2f}",
            "borrowed core-h": f"{t.get('borrowed_core_hours', 0):.4g}",
            "reclaims/preempted": f"{t.get('reclaims', 0)}/{t.get('preemptions', 0)}",
            "lost core-h": f"{t.get('lost_core_hours', 0):.4g}",
        }
        for name, r in results["policies"].items()
        for t in r["tenants"]["tenants"]
    ]
    jain = ", ".join(f"{n} {r['tenants']['jain_index']:.3f}" for n, r in results["policies"].items())
    emit(rows, title=f"tenants; Jain's index over weighted dominant shares: {jain}")
