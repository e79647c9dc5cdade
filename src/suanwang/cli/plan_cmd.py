"""CLI: `suanwang plan hub` - where a new hub should go, whom it serves, what it changes (the planner)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from suanwang.cli.common import console, emit, friendly_errors
from suanwang.cli.options import ScenarioOpt
from suanwang.planner.candidates import PlanError

app = typer.Typer(no_args_is_help=True, help="The planner: where a new hub should go and what it changes.")

OBJECTIVES = ("balanced", "coverage", "cost", "carbon")
ZH = {
    "rank": "排名",
    "city": "城市",
    "province": "省份",
    "value": "边际价值",
    "realtime_served_pp": "实时需求覆盖变化(百分点)",
    "interactive_served_pp": "交互需求覆盖变化(百分点)",
    "cost_cny_per_year": "成本变化(元/年)",
    "carbon_t_per_year": "碳排放变化(吨/年)",
    "reach_5ms_share": "5ms内实时需求占比",
    "absorbed_cores": "承接核数",
    "k": "新枢纽数",
    "sites": "选址",
    "gap": "最优性间隙",
    "solve_s": "求解秒",
    "coverage_pp": "覆盖变化(百分点)",
    "effect": "影响",
    "change_t_per_year": "变化(吨/年)",
}
TITLES = {
    "ranked": ("Candidates for one new hub, best first (marginal value vs the status quo)", "单个新枢纽候选排名"),
    "sets": (
        "Best set of k new hubs (k = 1: every candidate solved; k > 1: HiGHS MIP; gap 0 = proven optimal)",
        "k个新枢纽的最优组合",
    ),
    "sites": ("Coverage of the chosen sites (capitals within 1 / 5 / 20 ms)", "所选枢纽的时延圈覆盖"),
    "routes": ("Provinces whose batch carbon changes most (best set, largest k)", "碳排放变化最大的省份"),
    "pareto": ("Cost-carbon-coverage Pareto front over the single candidates", "成本-碳-覆盖帕累托前沿"),
    "sensitivity": ("Sensitivity of the k = 1 ranking", "排名敏感性分析"),
    "validation": (
        "Simulation of the top candidates and the status quo (mean ± 95 % CI)",
        "仿真验证(均值±95%置信区间)",
    ),
}
VALIDATION_METRICS = ("cost_cny", "carbon_t", "wait_p95_h", "latency_violations", "deadline_misses", "rejected")


def _t(key: str, lang: str) -> str:
    en, zh = TITLES[key]
    return f"{zh} {en}" if lang == "zh" else en


def _cols(cols: list[str], lang: str) -> list[str]:
    return [f"{ZH[c]} {c}" if lang == "zh" and c in ZH else c for c in cols]


def _relabel(rows: list[dict], cols: list[str], lang: str) -> list[dict]:
    return [dict(zip(_cols(cols, lang), (r.get(c) for c in cols), strict=True)) for r in rows]


def _paired(row: dict, metric: str) -> str:
    """'+d ± h' of the paired difference to the status quo."""
    return f"{row[metric + '_vs_first']:+.3g} ± {row[metric + '_vs_first_ci95'] or 0:.2g}"


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        if not rows:
            return
        flat = [
            {k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for k, v in r.items()}
            for r in rows
        ]
        w = csv.DictWriter(f, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)


@app.command("hub")
@friendly_errors
def hub_cmd(
    candidates: Annotated[
        str | None, typer.Option("--candidates", "-c", help="Comma-separated cities (许昌,郑州,洛阳); default: all.")
    ] = None,
    province: Annotated[str | None, typer.Option("--province", "-p", help="Only cities of this province.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only cities of east/central/west/northeast.")] = None,
    k: Annotated[int, typer.Option("--k", help="Choose the best set of 1..K new hubs.")] = 1,
    objective: Annotated[
        str, typer.Option("--objective", help=f"Weight preset: {', '.join(OBJECTIVES)}.")
    ] = "balanced",
    w_realtime: Annotated[float | None, typer.Option("--w-realtime", help="Weight of real-time demand served.")] = None,
    w_interactive: Annotated[
        float | None, typer.Option("--w-interactive", help="Weight of interactive served.")
    ] = None,
    w_cost: Annotated[float | None, typer.Option("--w-cost", help="Weight of batch cost (relative).")] = None,
    w_carbon: Annotated[float | None, typer.Option("--w-carbon", help="Weight of batch carbon (relative).")] = None,
    basis: Annotated[str, typer.Option("--basis", help="Coverage weighed by 'demand' or 'population'.")] = "demand",
    cores: Annotated[int | None, typer.Option("--cores", min=1, help="CPU cores of each candidate.")] = None,
    cards: Annotated[int | None, typer.Option("--cards", min=0, help="GPU cards of each candidate.")] = None,
    green_share: Annotated[
        float | None, typer.Option("--green-share", min=0.0, max=1.0, help="Contracted green share of candidates.")
    ] = None,
    max_util: Annotated[
        float, typer.Option("--max-util", min=0.05, max=1.0, help="Usable share of every site's capacity.")
    ] = 0.85,
    carbon_year: Annotated[int | None, typer.Option("--carbon-year", help="Year of grid CO2 factors.")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows of the ranking to show.")] = 15,
    mip_time_limit: Annotated[float, typer.Option("--mip-time-limit", min=1.0, help="Seconds per MIP.")] = 120.0,
    scenario: ScenarioOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    csv_dir: Annotated[Path | None, typer.Option("--csv", help="Also write CSV tables into this folder.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the offline HTML report here.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Table headings: en or zh (names are bilingual).")] = "en",
    sensitivity: Annotated[
        bool, typer.Option("--sensitivity", help="Re-rank under latency models, carbon years, +-20 % prices.")
    ] = False,
    validate: Annotated[
        bool, typer.Option("--validate", help="Simulate the top candidates and the status quo over --seeds seeds.")
    ] = False,
    validate_top: Annotated[int, typer.Option("--validate-top", min=1, help="Candidates to simulate.")] = 3,
    seeds: Annotated[int, typer.Option("--seeds", min=2, help="Seeds per simulated scenario.")] = 5,
    sim_jobs: Annotated[int, typer.Option("--sim-jobs", min=10, help="Jobs per simulation.")] = 2000,
    sim_days: Annotated[float, typer.Option("--sim-days", min=0.1, help="Days per simulation.")] = 2.0,
) -> None:
    """Rank candidate cities for a new hub and choose the best k jointly (facility location, HiGHS)."""
    from suanwang.planner.report import hub_payload, plan_from_options

    if lang not in ("en", "zh"):
        raise PlanError(f"--lang: '{lang}' is not a language - use en or zh")
    if objective not in OBJECTIVES:
        raise PlanError(f"--objective: '{objective}' is not a preset - use one of {', '.join(OBJECTIVES)}")
    if basis not in ("demand", "population"):
        raise PlanError(f"--basis: '{basis}' - use demand or population")
    names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    plan = plan_from_options(
        scenario=scenario,
        names=names,
        province=province,
        region=region,
        k=k,
        objective=objective,
        overrides={"realtime": w_realtime, "interactive": w_interactive, "cost": w_cost, "carbon": w_carbon},
        basis=basis,
        cores=cores,
        cards=cards,
        green_share=green_share,
        max_util=max_util,
        carbon_year=carbon_year,
        mip_time_limit_s=mip_time_limit,
    )
    payload = hub_payload(plan, top)
    if sensitivity:
        from suanwang.planner.report import sensitivity_payload

        payload["sensitivity"] = sensitivity_payload(plan, max_util=max_util, basis=basis)
    if validate:
        from suanwang.planner.report import validation_rows

        payload["validation"] = validation_rows(plan, validate_top, seeds, sim_jobs, sim_days)
    if html is not None:
        from suanwang.report.plan_html import write_plan_report

        written = write_plan_report(payload, html, lang)
        if not as_json:
            console.print(f"wrote {written}", highlight=False)
    if csv_dir is not None:
        csv_dir.mkdir(parents=True, exist_ok=True)
        for key in ("ranked", "sets", "sites", "routes", "pareto", "validation"):
            if key in payload:
                _write_csv(csv_dir / f"{key}.csv", payload[key])
        if "sensitivity" in payload:
            _write_csv(csv_dir / "sensitivity.csv", payload["sensitivity"]["variants"])
    if as_json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    ranked_cols = [
        "rank",
        "city",
        "province",
        "value",
        "realtime_served_pp",
        "interactive_served_pp",
        "cost_cny_per_year",
        "carbon_t_per_year",
        "reach_5ms_share",
        "absorbed_cores",
    ]
    emit(_relabel(payload["ranked"], ranked_cols, lang), title=_t("ranked", lang))
    set_cols = [
        "k",
        "sites",
        "method",
        "gap",
        "value",
        "realtime_served_pp",
        "cost_cny_per_year",
        "carbon_t_per_year",
        "solve_s",
    ]
    emit(_relabel(payload["sets"], set_cols, lang), title=_t("sets", lang))
    site_table = [
        {
            "city": r["city"],
            **{
                f"{t} one-way": f"{len(r[f'capitals_{t}_oneway'])} ({r[f'population_10k_{t}_oneway']:g} 万人)"
                for t in ("1ms", "5ms", "20ms")
            },
            **{
                f"{t} RTT": f"{len(r[f'capitals_{t}_rtt'])} ({r[f'population_10k_{t}_rtt']:g} 万人)"
                for t in ("1ms", "5ms", "20ms")
            },
            "capitals 5 ms one-way": ", ".join(r["capitals_5ms_oneway"]),
            "batch cores absorbed": r["absorbed_batch_cores"],
        }
        for r in payload["sites"]
    ]
    emit(site_table, title=_t("sites", lang))
    emit(_relabel(payload["routes"], ["province", "change_t_per_year", "effect"], lang), title=_t("routes", lang))
    emit(
        _relabel(payload["pareto"], ["city", "coverage_pp", "cost_cny_per_year", "carbon_t_per_year"], lang),
        title=_t("pareto", lang),
    )
    if "sensitivity" in payload:
        sens = payload["sensitivity"]
        cols = [
            "variant",
            "best",
            "base_best_rank",
            "base_best_value",
            "base_best_cost_cny_per_year",
            "base_best_carbon_t_per_year",
            "base_best_capitals_5ms",
        ]
        emit(sens["variants"], cols, title=_t("sensitivity", lang))
        for c in sens["conclusions"]:
            console.print(f"[bold]survives:[/bold] {c}" if "every variant" in c else f"depends: {c}", highlight=False)
    if "validation" in payload:
        rows = [
            {
                "scenario": r["scenario"],
                **{m: f"{r[m]:.4g} ± {r[m + '_ci95']:.2g}" for m in VALIDATION_METRICS},
                "carbon_t vs status quo (paired)": _paired(r, "carbon_t"),
            }
            for r in payload["validation"]
        ]
        emit(rows, title=_t("validation", lang))
    for key, value in payload["meta"].items():
        if key != "assumptions":
            console.print(f"[dim]{key}:[/dim] {value}", highlight=False)
    for key, value in payload["meta"]["assumptions"].items():
        console.print(f"[dim]candidate {key}:[/dim] {value}", highlight=False)


@app.command("capacity")
@friendly_errors
def capacity_cmd(
    growth: Annotated[float, typer.Option("--growth", help="Demand as a multiple of today's.")] = 1.0,
    max_miss: Annotated[float, typer.Option("--max-miss", help="Largest share of each class left unserved.")] = 0.01,
    grow: Annotated[
        str | None, typer.Option("--grow", help="Comma-separated sites allowed to grow (default: every site).")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Comma-separated cities where a new site may be built.")
    ] = None,
    max_util: Annotated[
        float, typer.Option("--max-util", min=0.05, max=1.0, help="Usable share of every site's capacity.")
    ] = 0.85,
    carbon_year: Annotated[int | None, typer.Option("--carbon-year", help="Year of grid CO2 factors.")] = None,
    scenario: ScenarioOpt = None,
    validate: Annotated[bool, typer.Option("--validate", help="Simulate today's and the sized network.")] = False,
    seeds: Annotated[int, typer.Option("--seeds", min=2, help="Seeds per simulated network.")] = 5,
    sim_jobs: Annotated[int, typer.Option("--sim-jobs", min=10, help="Jobs per simulation (x growth).")] = 2000,
    sim_days: Annotated[float, typer.Option("--sim-days", min=0.1, help="Days per simulation.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Cores and cards to add at which sites so a (grown) demand is served, at least capital + operating cost."""
    from suanwang.planner.capacity import plan_capacity, validate_capacity
    from suanwang.planner.report import check_year, load_world

    atlas, net = load_world(scenario)
    year = check_year(atlas, carbon_year)
    split = lambda text: [x.strip() for x in text.split(",") if x.strip()] if text else None  # noqa: E731
    plan = plan_capacity(
        atlas,
        net,
        growth=growth,
        max_miss=max_miss,
        grow_at=split(grow),
        new_cities=split(at),
        carbon_year=year,
        max_util=max_util,
    )
    rows = [
        {
            "site": s.label,
            "id": s.id,
            "kind": s.kind,
            "cpu_cores": s.cpu_cores,
            "add_cores": round(float(c)),
            "gpu_cards": s.gpu_cards,
            "add_cards": round(float(g)),
        }
        for s, c, g in zip(plan.sites, plan.add_cores, plan.add_cards, strict=True)
        if c >= 0.5 or g >= 0.5
    ]
    payload = {
        "additions": rows,
        "totals": {
            "add_cores": round(float(plan.add_cores.sum())),
            "add_cards": round(float(plan.add_cards.sum())),
            "capex_cny_per_year": round(plan.capex_cny_per_year),
            "opex_cny_per_year": round(plan.opex_cny_per_year),
            "served": {k: round(v, 5) for k, v in plan.served.items()},
        },
        "meta": {"growth": growth, "max_miss": max_miss, "carbon_year": year, **plan.basis},
    }
    if validate:
        payload["validation"] = validate_capacity(
            atlas, net, plan, seeds=seeds, jobs=sim_jobs, days=sim_days, carbon_year=year
        )
    if as_json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    emit(rows, title=f"Capacity to add for {growth:g} x today's demand, at most {max_miss:.1%} unserved per class")
    emit([payload["totals"]], title="Totals (CNY per year)")
    if validate:
        emit(payload["validation"], title="Simulation: share of jobs missing their deadline or rejected (95 % CI)")
    for key, value in payload["meta"].items():
        console.print(f"[dim]{key}:[/dim] {value}", highlight=False)


def register(root) -> None:
    """Add the top-level `sweep` command to the root app."""

    @root.command("sweep")
    @friendly_errors
    def sweep_cmd(
        file: Annotated[
            Path | None, typer.Option("--file", "-f", help="Sweep YAML (scenarios, policies, ...).")
        ] = None,
        scenarios: Annotated[
            str | None, typer.Option("--scenarios", help="Comma-separated scenario YAMLs or 'national'.")
        ] = None,
        policies: Annotated[str | None, typer.Option("--policies", help="Comma-separated policies.")] = None,
        seeds: Annotated[int | None, typer.Option("--seeds", min=1, help="Seeds 1..N per cell.")] = None,
        days: Annotated[str | None, typer.Option("--days", help="Comma-separated simulated days.")] = None,
        jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Jobs per run.")] = None,
        carbon_year: Annotated[int | None, typer.Option("--carbon-year", help="Year of grid CO2 factors.")] = None,
        workers: Annotated[int, typer.Option("--workers", min=1, help="Local worker processes.")] = 2,
        ray: Annotated[str | None, typer.Option("--ray", help="Ray cluster address, or 'auto'.")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Folder for runs.json, aggregate.csv.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    ) -> None:
        """A grid of scenarios x policies x seeds x days, locally or on Ray; per-run results and mean +- 95 % CI."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from suanwang.planner.sweep import SweepFile, aggregate, grid, load_sweep, run_sweep

        spec = load_sweep(file) if file else SweepFile()
        changes = {
            "scenarios": scenarios and [s.strip() for s in scenarios.split(",") if s.strip()],
            "policies": policies and [p.strip() for p in policies.split(",") if p.strip()],
            "seeds": seeds,
            "jobs": jobs,
            "carbon_year": carbon_year,
        }
        if days:
            try:
                changes["days"] = [float(d) for d in days.split(",") if d.strip()]
            except ValueError:
                raise PlanError(f"--days: '{days}' is not a list of numbers - e.g. --days 2,7") from None
        spec = spec.model_copy(update={k: v for k, v in changes.items() if v})
        specs = grid(spec, file.parent if file else None)
        failed_lines = []
        with Progress(
            TextColumn("sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
            transient=True,
        ) as bar:
            task = bar.add_task("runs", total=len(specs))

            def done(res: dict) -> None:
                bar.advance(task)
                if not res["ok"]:
                    failed_lines.append(f"{res['run']['policy']} seed {res['run']['seed']}: {res['error']}")

            results = run_sweep(specs, workers=workers, ray_address=ray, on_done=done)
        agg = aggregate(results)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "runs.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
            _write_csv(out / "aggregate.csv", agg)
        if as_json:
            sys.stdout.write(json.dumps({"aggregate": agg, "runs": results}, ensure_ascii=False, indent=2) + "\n")
            return
        cols = ["scenario", "policy", "days", "runs", "failed", *VALIDATION_METRICS]
        rows = [
            {
                **{c: r.get(c) for c in cols[:5]},
                **{m: f"{r[m]:.4g} ± {r[m + '_ci95'] or 0:.2g}" if m in r else "-" for m in VALIDATION_METRICS},
            }
            for r in agg
        ]
        emit(rows, cols, title=f"Sweep: {len(specs)} runs, mean ± 95 % CI over seeds")
        for line in failed_lines:
            console.print(f"[red]failed:[/red] {line}", highlight=False)
