"""CLI: `suanwang place` - place a file of jobs with a policy and show where each runs, and why."""

from __future__ import annotations

import csv
import difflib
import heapq
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from suanwang.cli.common import console, emit, err_console, friendly_errors, write_json
from suanwang.cli.options import CarbonYearOpt, ScenarioOpt, atlas_for
from suanwang.errors import JobError, PolicyError
from suanwang.policy import load_rules
from suanwang.scheduler import POLICIES, ClusterState, Decision, SchedulerContext, make_policy, parse_weights
from suanwang.scheduler.registry import load_weights
from suanwang.workload.io import load_jobs
from suanwang.workload.job import Job

MAX_TABLE_ROWS = 100  # a table shows this many placements; --json / --csv carry all of them
PROGRESS_EVERY = 50_000  # jobs between progress lines on stderr
COLUMNS = [
    "job",
    "status",
    "site",
    "start_h",
    "latency_ms",
    "transfer_h",
    "cost_cny",
    "energy_kwh",
    "carbon_kg",
    "reason",
]


def run_placement(
    jobs: list[Job],
    ctx: SchedulerContext,
    policy: str,
    weights: dict | None,
    explain: str | None,
    on_progress: Callable[[int], None] | None = None,
):
    """Place `jobs` in submit order (ties: higher priority first) on a fresh cluster state, releasing capacity
    as placed jobs finish (start + transfer + runtime, hours). Returns (decisions in input order, explained).

    `on_progress(n)` is called after every PROGRESS_EVERY jobs placed."""
    sched = make_policy(policy, ctx, weights)
    if sched.window_h is not None:
        why = "plans windows of jobs over time, not one placement per job on a fresh cluster"
        fix = f"use `suanwang simulate --policies {policy}` or `suanwang serve --policy {policy}`"
        raise PolicyError("--policy", None, policy, why, fix)
    state = ClusterState.from_sites(ctx.sites)
    running: list[tuple[float, int, int]] = []  # (end_h, order, site index)
    by_id = {j.id: j for j in jobs}
    order = sorted(range(len(jobs)), key=lambda k: (jobs[k].submit_h, -jobs[k].priority, k))
    decisions: dict[str, Decision] = {}
    for n, k in enumerate(order, start=1):
        if on_progress is not None and n % PROGRESS_EVERY == 0:
            on_progress(n)
        job = jobs[k]
        while running and running[0][0] <= job.submit_h:
            _, done, site = heapq.heappop(running)
            state.release(site, jobs[done])
        d = sched.place(job, state, job.submit_h, explain=job.id == explain)
        decisions[job.id] = d
        if d.placement:
            p = d.placement
            heapq.heappush(running, (p.start_h + p.transfer_h + job.runtime_h, k, p.site_index))
    return [decisions[j.id] for j in jobs], decisions.get(explain) if explain in by_id else None


def _check_writable(path: Path) -> None:
    """Refuse an output file that cannot be written before any work is done."""
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise JobError(
            "--csv", None, None, f"cannot write {path} ({e.strerror or e})", "give a writable file"
        ) from None


def decision_row(d: Decision) -> dict:
    """One output row for a decision."""
    p = d.placement
    status = "placed" if p else "queued" if d.retryable else "rejected"
    row = {"job": d.job_id, "status": status, "reason": "" if p else d.reason}
    if p:
        row.update(
            site=p.site_id,
            start_h=p.start_h,
            latency_ms=round(p.latency_ms, 3),
            transfer_h=round(p.transfer_h, 4),
            cost_cny=round(p.cost_cny, 2),
            energy_kwh=round(p.energy_kwh, 3),
            carbon_kg=round(p.carbon_kg, 3),
        )
    return row


def totals(decisions: list[Decision], policy: str) -> dict:
    """Totals over placed jobs: CNY, kWh, kgCO2, and the count placed / queued / rejected."""
    placed = [d.placement for d in decisions if d.placement]
    return {
        "policy": policy,
        "jobs": len(decisions),
        "placed": len(placed),
        "queued": sum(1 for d in decisions if not d.placement and d.retryable),
        "rejected": sum(1 for d in decisions if not d.placement and not d.retryable),
        "cost_cny": round(sum(p.cost_cny for p in placed), 2),
        "energy_kwh": round(sum(p.energy_kwh for p in placed), 3),
        "carbon_kg": round(sum(p.carbon_kg for p in placed), 3),
    }


def verdict_rows(d: Decision) -> list[dict]:
    """The verdict table of one decision: every site, passed or the rule that rejected it, and scores."""
    chosen = d.placement.site_id if d.placement else None
    return [
        {
            "site": v.site_id,
            "verdict": "chosen" if v.site_id == chosen else "passed" if v.passed else "rejected",
            **{k: round(x, 4) for k, x in v.scores.items()},
            "reason": v.reason,
        }
        for v in d.verdicts or []
    ]


def register(app: typer.Typer) -> None:
    """Add the `place` command to the root app."""

    @app.command("place")
    @friendly_errors
    def place_cmd(
        jobs_file: Annotated[Path, typer.Option("--jobs", "-j", help="Jobs CSV or JSON (see docs/formats.md).")],
        policy: Annotated[str, typer.Option("--policy", "-p", help=f"One of: {', '.join(POLICIES)}.")] = "online",
        weights: Annotated[
            str | None,
            typer.Option("--weights", "-w", help="Online score weights 'cost=1,carbon=1,latency=0.1' or a YAML file."),
        ] = None,
        policy_file: Annotated[
            Path | None, typer.Option("--policy-file", help="Residency rules YAML (default: national rules).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
        csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write the placements to this CSV.")] = None,
        explain: Annotated[
            str | None, typer.Option("--explain", help="Show every site's verdict for this job id.")
        ] = None,
        scenario: ScenarioOpt = None,
        carbon_year: CarbonYearOpt = None,
    ) -> None:
        """Place jobs with a policy: where each runs, its cost (CNY), energy (kWh), carbon (kgCO2), and why."""
        network = None
        if scenario is not None:
            from suanwang.atlas.scenario import load_scenario

            loaded = load_scenario(scenario)
            atlas, network = loaded.atlas.with_carbon_year(carbon_year), loaded.network
        else:
            atlas = atlas_for(None, carbon_year)
        if csv_out is not None:
            _check_writable(csv_out)
        t0 = time.monotonic()
        jobs = load_jobs(jobs_file, atlas)
        big = len(jobs) >= PROGRESS_EVERY
        if big:
            err_console.print(f"read {len(jobs):,} jobs in {time.monotonic() - t0:.0f} s; placing", highlight=False)
        ids = [j.id for j in jobs]
        if explain is not None and explain not in ids:
            close = difflib.get_close_matches(explain, ids, n=3)
            raise JobError(
                "--explain",
                None,
                "job id",
                f"'{explain}' is not in {jobs_file.name}",
                f"did you mean {', '.join(close)}?" if close else "give a job id from the file",
            )
        w = None
        if weights:
            if policy != "online":
                raise PolicyError(
                    "--weights", None, "policy", f"weights apply to the online policy, not {policy}", "drop --weights"
                )
            w = load_weights(weights) if Path(weights).suffix in (".yaml", ".yml") else parse_weights(weights)
        rules = load_rules(policy_file, atlas) if policy_file else None
        ctx = SchedulerContext.build(atlas, network=network, rules=rules)
        progress = (
            (lambda n: err_console.print(f"placed {n:,} of {len(jobs):,} jobs", highlight=False)) if big else None
        )
        decisions, explained = run_placement(jobs, ctx, policy, w, explain, progress)
        rows = [decision_row(d) for d in decisions]
        meta = totals(decisions, policy)
        if csv_out:
            with csv_out.open("w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        if as_json:
            payload = {"meta": meta, "rows": rows}
            if explained:
                payload["explain"] = {
                    "job": explained.job_id,
                    "reason": explained.reason,
                    "verdicts": verdict_rows(explained),
                }
            write_json(payload)
            return
        shown_rows = rows[:MAX_TABLE_ROWS]
        title = f"placements - policy {policy}"
        if len(rows) > len(shown_rows):
            title += f" (first {len(shown_rows)} of {len(rows):,}; all with --json or --csv FILE)"
        emit(shown_rows, COLUMNS, title=title, meta=meta)
        if explained:
            vrows = verdict_rows(explained)
            cols = list(dict.fromkeys(k for r in vrows for k in r))
            cols.remove("reason")
            emit(vrows, [*cols, "reason"], title=f"verdicts for job {explained.job_id}")
            console.print(f"[bold]{explained.job_id}:[/bold] {explained.reason}", highlight=False)
