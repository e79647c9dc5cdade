"""What a tenant sees of the state it shares with other tenants: the sites' capacity. Decided here, once.

Free capacity moves as other tenants' jobs start and end, so any exact view of it - `cpu_free` on GET /sites, the
free cores quoted by a placement verdict, a site's utilisation score - lets one tenant watch another's activity;
even bucketed numbers leak at every bucket edge. So a tenant sees each site's total capacity and what its own
placed and running jobs hold there (`cpu_cores_mine`, `gpu_cards_mine`), and free capacity as null; verdicts of
sites where its job did not fit say only that. Admins and operators see exact free capacity.
"""

from __future__ import annotations

from suanwang.service.auth import Principal
from suanwang.service.db import SiteRow
from suanwang.service.sites import site_json

NO_ROOM = "capacity-free: not enough free cores or cards now"
UTILISATION_SCORES = ("balance",)  # scores computed from free capacity (scheduler/plugins/balance.py)


def sites_for(who: Principal, rows: list[SiteRow], held: dict, waiting: dict, mine: dict | None) -> list[dict]:
    """GET /sites for `who`: exact for staff; for a tenant, free capacity null (the engine's own reading too) and
    its own holdings added. held / waiting / mine: (cores, cards) per site id held by every tenant's placed and
    running jobs / by placed jobs not yet started / by this tenant's placed and running jobs."""
    if who.staff:
        return [site_json(r, held.get(r.id, (0, 0)), waiting.get(r.id, (0, 0))) for r in rows]
    out = []
    for r in rows:
        site = site_json(r, staff=False)
        own = (mine or {}).get(r.id, (0, 0))
        site.update(cpu_free=None, gpu_free=None, engine_capacity=None, cpu_cores_mine=own[0], gpu_cards_mine=own[1])
        out.append(site)
    return out


def verdicts_for(who: Principal, verdicts: list[dict]) -> list[dict]:
    """A placement's per-site verdicts for `who`: for a tenant, no free-capacity figures and no utilisation score
    (nor the total it is part of)."""
    if who.staff:
        return verdicts
    out = []
    for v in verdicts:
        v = dict(v)
        reason = v.get("reason") or ""
        if reason.startswith("capacity-free:") and "down" not in reason:
            v["reason"] = NO_ROOM
        scores = v.get("scores")
        if isinstance(scores, dict) and any(k in scores for k in UTILISATION_SCORES):
            v["scores"] = {k: x for k, x in scores.items() if k not in UTILISATION_SCORES and k != "total"}
        out.append(v)
    return out
