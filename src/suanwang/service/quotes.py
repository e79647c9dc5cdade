"""Quotes: for a job description, without submitting it, where it could run - each feasible site with its
predicted start, cost (CNY), energy (kWh), carbon (kgCO2), latency (ms, one way) and transfer (h), the others with
the rule that rules them out. The same code as a placement and its explanation: the service's policy places the
job on a copy of the cluster state now (quotas included) with `explain=True`, and the per-site predictions are the
scheduler's `estimate`.

What a tenant sees follows service/visibility.py: no free-capacity figures and no utilisation score; a site with
room now starts now, any other feasible site "when capacity frees" without an hour (an hour would be computed
from other tenants' jobs' ends). Staff get that hour estimated from the ends of the jobs holding the site.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from suanwang.scheduler.contract import CycleState
from suanwang.scheduler.costs import estimate
from suanwang.service import jobs, sites, tenancy, visibility
from suanwang.service.auth import Principal, Role
from suanwang.service.convert import finite
from suanwang.service.db import JobRow, Tenant, utcnow
from suanwang.service.errors import Forbidden, Invalid
from suanwang.service.placement import Placer, to_job
from suanwang.service.schemas import JobIn

WAITS = "when capacity frees"  # what a tenant is told of a feasible site that is full now


class Quoter:
    """A placer of its own (the loop's is used by the loop thread) and the tenancy in force; one quote at a time."""

    def __init__(self, atlas, policy: str, make_policy=None):
        self.placer = Placer(atlas, policy, make_policy)
        self.tenancy = tenancy.TenancyCache(atlas)
        self.lock = threading.Lock()


def _owner(session: Session, who: Principal, requested: str | None) -> tuple[int, str]:
    """(tenant id, name) the quote is for: a tenant's own; staff may name any tenant (none: no tenant's quotas)."""
    if who.role is Role.TENANT:
        if requested is not None and requested != who.tenant:
            raise Forbidden("tenant: a tenant token asks quotes only for its own tenant - drop the field", "tenant")
        return who.tenant_id, who.tenant
    if requested is None:
        return 0, ""
    tid = session.scalar(sa.select(Tenant.id).where(Tenant.name == requested))
    if tid is None:
        raise Invalid(f"tenant: unknown tenant '{requested}' - create it with POST /api/v1/tenants", "tenant")
    return tid, requested


def _ends(session: Session, now_h: float) -> dict[str, list[tuple[float, int, int]]]:
    """Per site, (expected end hour, cores, cards) of the jobs holding it: running ones after the rest of their
    runtime, placed ones after all of it."""
    t = JobRow.__table__
    rows = session.execute(
        sa.select(t.c.site_id, t.c.state, t.c.started_at, t.c.runtime_h, t.c.cpu_cores, t.c.gpu_cards).where(
            t.c.state.in_(sites.HOLDING)
        )
    )
    now = utcnow()
    out: dict[str, list] = {}
    for site_id, state, started, runtime_h, cores, cards in rows:
        done_h = (now - started).total_seconds() / 3600.0 if state == "running" and started else 0.0
        out.setdefault(site_id, []).append((now_h + max(0.0, runtime_h - done_h), int(cores), int(cards)))
    return out


def _start_estimate(ends: list, free: tuple[int, int], need: tuple[int, int]) -> float | None:
    """The first expected end after which the site has the cores and cards needed (None: never, from these)."""
    cores, cards = free
    for end, c, g in sorted(ends):
        cores, cards = cores + c, cards + g
        if cores >= need[0] and cards >= need[1]:
            return end
    return None


def _could_run(pipeline, ctx, job, state, now_h: float, est) -> np.ndarray:
    """Boolean vector over sites: the job passes every static and job rule there (it runs once room frees)."""
    mask = np.zeros(len(ctx.sites), dtype=bool)
    mask[pipeline.static_sites(job)] = True
    cs = CycleState(ctx, job, state, now_h, est)
    for f in pipeline.job_filters:
        mask &= np.asarray(f.filter(cs), dtype=bool)
    return mask


def quote(session: Session, quoter: Quoter, atlas, who: Principal, body: JobIn, now_h: float, commands: bool) -> dict:
    """The quote for `body` at `now_h` (scheduler hours) as `who` sees it (module docstring)."""
    tenant_id, tenant = _owner(session, who, body.tenant)
    new = jobs.new_job(atlas, body, tenant_id, tenant, None, who, commands)  # the submission's own checks
    row = SimpleNamespace(**dict(new.values, submit_h=now_h, id="quote"))  # reasons name "job quote"
    job = to_job(row, tenant)
    site_rows = sites.all_sites(session)
    if not site_rows:
        raise Invalid("no sites registered - register one with POST /api/v1/sites", "origin")
    held, waiting = sites.held(session), sites.held(session, ("placed",))
    with quoter.lock:
        rules = quoter.tenancy.current(session)
        holdings = tenancy.holdings(session) if rules is not None else ()
        site_list, state = quoter.placer.state(site_rows, held, waiting, rules, holdings)
        ctx, policy = quoter.placer.policy_for(site_list, rules)
        free = list(zip(state.cpu_free.tolist(), state.gpu_free.tolist(), strict=True))
        decision = policy.place(job, state, now_h, explain=True)
        est = estimate(ctx, job, now_h)
        could = _could_run(getattr(policy, "online", policy), ctx, job, state, now_h, est)
    why = decision.explanation
    verdicts = [
        {"site_id": v.site_id, "passed": v.passed, "reason": v.reason, "scores": v.scores} for v in why.verdicts()
    ]
    shown = visibility.verdicts_for(who, verdicts)
    ends = _ends(session, now_h) if who.staff else {}
    feasible, out = [], []
    for i, (v, seen) in enumerate(zip(verdicts, shown, strict=True)):
        waits = not v["passed"] and bool(could[i])
        if not v["passed"] and not waits:
            out.append({"site_id": v["site_id"], "reason": seen["reason"]})
            continue
        start = now_h if v["passed"] else None
        if waits and who.staff and not v["reason"].startswith("quota"):
            start = _start_estimate(ends.get(v["site_id"], []), free[i], (job.cpu_cores, job.gpu_cards))
        at = est if start in (None, now_h) else estimate(ctx, job, start)
        feasible.append(
            {
                "site_id": v["site_id"],
                "room_now": v["passed"],
                "start_h": start,
                "starts": "now" if v["passed"] else (WAITS if start is None else "estimated"),
                "cost_cny": finite(at.cost_cny.item(i)),
                "energy_kwh": finite(at.energy_kwh.item(i)),
                "carbon_kg": finite(at.carbon_kg.item(i)),
                "latency_ms": finite(est.latency_ms.item(i)),
                "transfer_h": finite(est.transfer_h.item(i)),
                "reason": seen["reason"],
                "scores": {k: finite(x) for k, x in seen["scores"].items()},
            }
        )
    total = why.total.tolist()
    order = {s: n for n, s in enumerate(sorted(range(len(total)), key=lambda k: total[k]))}
    index = {s.id: k for k, s in enumerate(site_list)}
    feasible.sort(key=lambda f: (not f["room_now"], order[index[f["site_id"]]]))
    p = decision.placement
    return {
        "at_h": now_h,
        "policy": decision.policy or quoter.placer.policy_name,
        "tenant": tenant or None,
        "origin": row.origin,
        "origin_label": row.origin_label,
        "site_id": p.site_id if p is not None else None,
        "reason": decision.reason,  # placed at / no room now / infeasible (static and job rules only): no figures
        "feasible": feasible,
        "out": out,
    }
