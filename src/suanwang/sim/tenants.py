"""The tenants section of a run's results: per tenant its usage, share against its entitled share, waits and
quota peaks, and Jain's fairness index; and the demand mix that gives generated jobs their tenants.

Quota peaks are recomputed from the run's records (each job's run from its start to its end), not from the
scheduler's counters, so they audit the quota filter.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from suanwang.policy.quotas import Tenancy
from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.quotas import region_mask, west_hubs
from suanwang.sim.records import DONE, FAILED, REJECTED, Run
from suanwang.workload.job import Job

MAX_EVICTIONS = 20  # evictions listed one by one in the section (all are counted)


def with_tenants(jobs: list[Job], mix: Mapping[str, float], seed: int) -> list[Job]:
    """`jobs` with tenants drawn from `mix` (tenant -> share of jobs, > 0; normalised), the same for a seed."""
    if not mix or not jobs:
        return jobs
    names = list(mix)
    p = np.array([mix[n] for n in names], dtype=float)
    draw = np.random.default_rng(seed).choice(len(names), size=len(jobs), p=p / p.sum())
    for job, k in zip(jobs, draw.tolist(), strict=True):
        job.tenant = names[k]
    return jobs


def runs_of(run: Run) -> list[tuple[int, int, float, float]]:
    """(job, site, start_h, end_h) of every run that went to its end or was evicted (reclaim or preemption: it
    ends at the eviction); a run an outage stopped has no recorded end and is left out."""
    seg = run.segments
    last: dict[int, int] = {}
    jobs = seg.column("job").tolist()
    for k, j in enumerate(jobs):
        last[j] = k
    evicted = {(e.job, e.start_h): e.at_h for e in run.evictions}
    sites, starts = seg.column("site").tolist(), seg.column("start_h").tolist()
    out = []
    for k, j in enumerate(jobs):
        end = evicted.get((j, starts[k]))
        if end is None and last[j] == k and run.status[j] == DONE:
            end = float(run.end_h[j])
        if end is not None:
            out.append((j, sites[k], starts[k], end))
    return out


def peak_usage(
    intervals: list[tuple[float, float, int]],
) -> int:
    """The largest sum of amounts over intervals (start_h, end_h, amount) [start, end) holding at one time."""
    events = sorted([(e, -a) for s, e, a in intervals] + [(s, a) for s, e, a in intervals])  # ends first on ties
    peak = now = 0
    for _, a in events:
        now += a
        peak = max(peak, now)
    return peak


def _q(x: list[float], q: float) -> float:
    return round(float(np.quantile(x, q)), 3) if x else 0.0


def tenant_summary(run: Run, ctx: SchedulerContext, tenancy: Tenancy, horizon_h: float) -> dict:
    """The tenants section (docs/tenancy.md): one row per tenant with jobs, Jain's index over weighted dominant
    shares, and each quota rule's peak use recomputed from the runs."""
    jobs = run.jobs
    if not jobs and len(run.segments):
        raise ValueError("the tenants section reads the run's jobs: a streamed run has let them go")
    tenants = sorted({j.tenant for j in jobs} | {r.tenant for r in tenancy.rules})
    cap_c = float(sum(s.cpu_cores for s in ctx.sites)) * horizon_h or 1.0  # core-hours on offer
    cap_g = float(sum(s.gpu_cards for s in ctx.sites)) * horizon_h or 1.0
    runs = runs_of(run)
    seg = run.segments
    core_h = dict.fromkeys(tenants, 0.0)
    card_h = dict.fromkeys(tenants, 0.0)
    for j, frac in zip(seg.column("job").tolist(), seg.column("frac").tolist(), strict=True):
        job = jobs[j]
        core_h[job.tenant] += job.cpu_cores * job.runtime_h * frac
        card_h[job.tenant] += job.gpu_cards * job.runtime_h * frac
    waits: dict[str, list[float]] = {t: [] for t in tenants}
    status = {t: [0, 0, 0] for t in tenants}
    for i, job in enumerate(jobs):
        s = run.status[i]
        if s == DONE:
            waits[job.tenant].append(max(0.0, run.end_h[i] - job.submit_h - job.runtime_h))
        status[job.tenant][0 if s == DONE else 1 if s == FAILED else 2 if s == REJECTED else 1] += 1
    ev = {t: {"R1": 0, "P1": 0, "reclaimed": 0.0, "lost_c": 0.0, "lost_g": 0.0} for t in tenants}
    for e in run.evictions:
        job = jobs[e.job]
        acc = ev[job.tenant]
        acc[e.rule] += 1
        if e.rule == "R1":  # the core-hours the borrowed run had used when its owner took the room back
            acc["reclaimed"] += job.cpu_cores * (e.at_h - e.start_h)
        acc["lost_c"] += job.cpu_cores * e.lost_h
        acc["lost_g"] += job.gpu_cards * e.lost_h
    active = [t for t in tenants if any(status[t])]
    w_sum = sum(tenancy.weight(t) for t in active) or 1.0
    all_c, all_g = sum(core_h.values()) or 1.0, sum(card_h.values()) or 1.0
    rows, norm = [], []
    for t in tenants:
        dominant = max(core_h[t] / cap_c, card_h[t] / cap_g)
        if t in active:
            norm.append(dominant / tenancy.weight(t))
        rows.append(
            {
                "tenant": t,
                "weight": tenancy.weight(t),
                "entitled_share": round(tenancy.weight(t) / w_sum, 4) if t in active else 0.0,
                "jobs": sum(status[t]),
                "done": status[t][0],
                "failed": status[t][1],
                "rejected": status[t][2],
                "core_hours": round(core_h[t], 1),
                "card_hours": round(card_h[t], 1),
                "core_share": round(core_h[t] / all_c, 4),
                "card_share": round(card_h[t] / all_g, 4),
                "dominant_share": round(dominant, 6),
                "wait_p50_h": _q(waits[t], 0.5),
                "wait_p95_h": _q(waits[t], 0.95),
                "borrowed_core_hours": round(run.borrowed.get(t, (0.0, 0.0))[0], 1),
                "borrowed_card_hours": round(run.borrowed.get(t, (0.0, 0.0))[1], 1),
                "reclaims": ev[t]["R1"],
                "reclaimed_core_hours": round(ev[t]["reclaimed"], 1),
                "preemptions": ev[t]["P1"],
                "lost_core_hours": round(ev[t]["lost_c"], 1),
                "lost_card_hours": round(ev[t]["lost_g"], 1),
            }
        )
    west = west_hubs(ctx.atlas.hubs)
    quotas = []
    for r in tenancy.rules:
        inside = region_mask(r.region, ctx.sites, west).tolist()
        mine = [(a, b, jobs[j]) for j, s, a, b in runs if inside[s] and jobs[j].tenant == r.tenant]
        peak_c = peak_usage([(a, b, job.cpu_cores) for a, b, job in mine])
        peak_g = peak_usage([(a, b, job.gpu_cards) for a, b, job in mine])
        quotas.append(
            {"id": r.id, "tenant": r.tenant, "rule": r.text(), "cores": r.cores, "cards": r.cards}
            | {"borrow_cores": r.borrow_cores, "borrow_cards": r.borrow_cards}
            | {"peak_cores": peak_c, "peak_cards": peak_g}
        )
    jain = (sum(norm) ** 2 / (len(norm) * sum(x * x for x in norm))) if norm and any(norm) else 1.0
    return {"name": tenancy.name, "half_life_h": tenancy.half_life_h, "jain_index": round(jain, 4)} | {
        "tenants": rows,
        "quotas": quotas,
        "evictions": _evictions(run, ctx),
    }


def _evictions(run: Run, ctx: SchedulerContext) -> dict:
    """How many evictions by rule, and the first MAX_EVICTIONS of them with their explanations."""
    by_rule: dict[str, int] = {}
    for e in run.evictions:
        by_rule[e.rule] = by_rule.get(e.rule, 0) + 1
    first = [
        {
            "job": run.jobs[e.job].id,
            "tenant": run.jobs[e.job].tenant,
            "site": ctx.sites[e.site].id,
            "at_h": round(e.at_h, 3),
            "rule": e.rule,
            "why": e.why,
            "lost_core_hours": round(run.jobs[e.job].cpu_cores * e.lost_h, 1),
            "saved_h": round(e.saved_h, 3),
        }
        for e in run.evictions[:MAX_EVICTIONS]
    ]
    return {"total": len(run.evictions), "by_rule": by_rule, "first": first}
