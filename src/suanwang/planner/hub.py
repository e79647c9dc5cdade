"""`plan hub`: where one or more new hubs should go, whom they serve in the 1 / 5 / 20 ms tiers, and what
they change in national batch cost and carbon. Builds the instance, ranks single candidates, solves the MIP
for each k and turns solutions into rows (every assumption named)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from suanwang.atlas import Atlas, Place
from suanwang.network import TIERS_MS, Network, coverage
from suanwang.planner.candidates import Candidate, PlanError, build_candidates
from suanwang.planner.instance import TIER_CLASSES, Context, Instance, Weights, build_instance
from suanwang.planner.mip import Model, Solution, rank_with_status_quo

HOURS_PER_YEAR = 8760.0


@dataclass
class HubPlan:
    """Everything `plan hub` found: the status quo, every single candidate, the best set for each k."""

    candidates: list[Candidate]
    instance: Instance
    context: Context
    network: Network
    status_quo: Solution
    singles: list[Solution]  # candidate order
    best: dict[int, Solution] = field(default_factory=dict)  # k -> optimal set

    def label(self, j: int) -> str:
        """Bilingual name of candidate j."""
        return self.candidates[j].label


def plan_hub(
    atlas: Atlas,
    network: Network,
    places: list[Place],
    *,
    k_max: int = 1,
    weights: Weights = Weights(),
    basis: str = "demand",
    carbon_year: int,
    cores: int | None = None,
    cards: int | None = None,
    green_share: float | None = None,
    max_util: float = 0.85,
    mip_time_limit_s: float = 60.0,
    loads: dict | None = None,
) -> HubPlan:
    """Rank every candidate city alone and choose the best set of k = 1..k_max candidates jointly (MIP)."""
    if k_max < 1:
        raise PlanError(f"--k: {k_max} must be >= 1 - e.g. --k 1")
    if k_max > len(places):
        raise PlanError(f"--k: {k_max} is more than the {len(places)} candidate cities - lower --k or widen --province")
    existing, cands = build_candidates(
        atlas, places, cores=cores, cards=cards, green_share=green_share, carbon_year=carbon_year
    )
    inst, ctx = build_instance(
        atlas,
        network,
        existing,
        [c.site for c in cands],
        carbon_year=carbon_year,
        weights=weights,
        basis=basis,
        max_util=max_util,
        loads=loads,
    )
    plan = HubPlan(cands, inst, ctx, network, *rank_with_status_quo(inst))
    best = plan.singles[ranked(plan)[0]]  # k = 1: every candidate was solved exactly, so the best is proven
    plan.best[1] = replace(best, gap=0.0, bound=best.objective, method="enumeration")
    model = Model(inst) if k_max > 1 else None
    for k in range(2, k_max + 1):
        plan.best[k] = model.solve_k(k, time_limit_s=mip_time_limit_s, start=_greedy(plan, k, plan.best[k - 1]))
    return plan


def _greedy(plan: HubPlan, k: int, prev: Solution | None) -> tuple[int, ...]:
    """A starting set for the k-site MIP: the optimal k-1 set plus the best single candidate not in it."""
    base = set(prev.open) if prev else set()
    order = ranked(plan)
    for j in order:
        if len(base) >= k:
            break
        base.add(j)
    return tuple(sorted(base))


# --- rows ------------------------------------------------------------------------------------------------
def delta_row(plan: HubPlan, sol: Solution) -> dict:
    """What a solution changes against the status quo: served shares (percentage points), batch cost (CNY/year),
    carbon (tCO2/year, market-based, and location-based: grid mix only), and the objective's marginal value."""
    sq = plan.status_quo
    row = {"value": round(sol.objective - sq.objective, 6)}
    for c, cls in enumerate(TIER_CLASSES):
        row[f"{cls.value}_served_pp"] = round(float(100.0 * (sol.served[c] - sq.served[c])), 4)
    row["cost_cny_per_year"] = round((sol.cost_cny_h - sq.cost_cny_h) * HOURS_PER_YEAR)
    row["carbon_t_per_year"] = round((sol.carbon_kg_h - sq.carbon_kg_h) * HOURS_PER_YEAR / 1e3, 1)
    loc = plan.context.batch_carbon_location
    before = float((sq.batch_share * loc[:, sq.sites]).sum())
    after = float((sol.batch_share * loc[:, sol.sites]).sum())
    row["carbon_location_t_per_year"] = round((after - before) * HOURS_PER_YEAR / 1e3, 1)
    return row


def reach(plan: HubPlan, j: int) -> float:
    """Share of real-time demand (by the coverage basis) whose origin lies within 5 ms one-way of candidate j -
    its reach whether or not existing sites already serve that demand."""
    inst = plan.instance
    within = inst.lat_ms[:, inst.n_existing + j] <= inst.tier_bound_ms[0]
    return float(inst.tier_weight[0][within].sum())


def ranked(plan: HubPlan) -> list[int]:
    """Candidate indices best first: by marginal value, ties broken by real-time reach, then by name."""
    return sorted(range(len(plan.singles)), key=lambda j: (-round(plan.singles[j].objective, 9), -reach(plan, j), j))


def ties(plan: HubPlan) -> int:
    """How many single candidates share the best marginal value (to 1e-9)."""
    best = max(s.objective for s in plan.singles)
    return sum(1 for s in plan.singles if s.objective >= best - 1e-9)


def ranking_rows(plan: HubPlan, top: int | None = None) -> list[dict]:
    """The candidates for k = 1, best first: marginal value and its parts, and the candidate's assumptions."""
    order = ranked(plan)
    rows = []
    for rank, j in enumerate(order[:top] if top else order, start=1):
        c = plan.candidates[j]
        s = c.site
        rows.append(
            {
                "rank": rank,
                "city": c.label,
                "adcode": c.place.adcode,
                "province": _province(plan, c),
                **delta_row(plan, plan.singles[j]),
                "reach_5ms_share": round(reach(plan, j), 5),
                "absorbed_cores": round(float(plan.singles[j].site_cores[:, -1].sum())),
                "cpu_cores": s.cpu_cores,
                "gpu_cards": s.gpu_cards,
                "pue": s.pue,
                "green_share": s.green_share,
                "price_cny_per_kwh": s.price_cny_per_kwh,
                "co2_kg_per_kwh": _co2(plan, c),
            }
        )
    return rows


def _province(plan: HubPlan, c: Candidate) -> str:
    p = plan.network.atlas.province(c.place.province_id)
    return f"{p.name_zh} {p.name_en}"


def _co2(plan: HubPlan, c: Candidate) -> float:
    return plan.network.atlas.province(c.site.province_id).co2(plan.context.carbon_year)


def set_rows(plan: HubPlan) -> list[dict]:
    """The optimal set for each k with its proven gap and what it changes."""
    return [
        {
            "k": k,
            "sites": " + ".join(plan.label(j) for j in sol.open),
            "method": sol.method,
            "gap": round(sol.gap, 8),
            "bound": None if sol.bound is None else round(sol.bound - plan.status_quo.objective, 6),
            **delta_row(plan, sol),
            "solve_s": round(sol.solve_s, 2),
        }
        for k, sol in sorted(plan.best.items())
    ]


def coverage_row(net: Network, center) -> dict:
    """Capitals and their provinces' population (10,000 persons) within 1 / 5 / 20 ms of `center`, one-way and
    round-trip - the network model's own coverage."""
    row = {}
    for tier in TIERS_MS.values():
        for rtt in (False, True):
            cov = coverage(net, center, tier, rtt=rtt)
            key = f"{tier:g}ms_{'rtt' if rtt else 'oneway'}"
            row[f"capitals_{key}"] = [c.place.label for c in cov.covered]
            row[f"population_10k_{key}"] = round(cov.population_10k, 1)
    return row


def site_rows(plan: HubPlan, sol: Solution) -> list[dict]:
    """Per opened site of `sol`: coverage, demand absorbed by class, and its assumptions with their basis."""
    out = []
    n_e = plan.instance.n_existing
    sites = list(sol.sites)
    totals = np.concatenate([plan.instance.tier_cores.sum(axis=1), [plan.instance.batch_cores.sum()]])
    for j in sol.open:
        c = plan.candidates[j]
        col = sites.index(n_e + j)
        absorbed = sol.site_cores[:, col]
        row = {"city": c.label, "adcode": c.place.adcode, "site_id": c.site.id, **coverage_row(plan.network, c.site)}
        for i, cls in enumerate((*TIER_CLASSES, "batch")):
            name = getattr(cls, "value", cls)
            row[f"absorbed_{name}_cores"] = round(float(absorbed[i]))
            row[f"absorbed_{name}_share"] = round(float(absorbed[i] / totals[i]), 5) if totals[i] else 0.0
        row["assumptions"] = {
            "cpu_cores": c.site.cpu_cores,
            "gpu_cards": c.site.gpu_cards,
            "pue": c.site.pue,
            "green_share": c.site.green_share,
            "price_cny_per_kwh": c.site.price_cny_per_kwh,
            "co2_kg_per_kwh": _co2(plan, c),
        }
        row["basis"] = dict(c.basis)
        out.append(row)
    return out


def route_rows(plan: HubPlan, sol: Solution, top: int = 10) -> list[dict]:
    """Provinces whose batch carbon per hour changes most under `sol` (negative: greener), tCO2/year."""
    sq, inst = plan.status_quo, plan.instance
    before = (sq.batch_share * inst.batch_carbon[:, sq.sites]).sum(axis=1)
    after = (sol.batch_share * inst.batch_carbon[:, sol.sites]).sum(axis=1)
    names = [plan.network.atlas.province(p) for p in plan.context.provinces]
    rows = [
        {
            "province": f"{p.name_zh} {p.name_en}",
            "carbon_before_t_per_year": round(float(b) * HOURS_PER_YEAR / 1e3, 1),
            "carbon_after_t_per_year": round(float(a) * HOURS_PER_YEAR / 1e3, 1),
            "change_t_per_year": round(float(a - b) * HOURS_PER_YEAR / 1e3, 1),
            "effect": "greener" if a < b else "dirtier",
        }
        for p, b, a in zip(names, before, after, strict=True)
        if abs(a - b) * HOURS_PER_YEAR / 1e3 >= 0.05
    ]
    greener = sorted((r for r in rows if r["effect"] == "greener"), key=lambda r: r["change_t_per_year"])
    dirtier = sorted((r for r in rows if r["effect"] == "dirtier"), key=lambda r: -r["change_t_per_year"])
    return greener[:top] + dirtier[:top]


def pareto_rows(plan: HubPlan) -> list[dict]:
    """Single candidates that no other beats on all three of coverage gain, cost change and carbon change."""
    pts = []
    for j, s in enumerate(plan.singles):
        d = delta_row(plan, s)
        cover = sum(d[f"{c.value}_served_pp"] for c in TIER_CLASSES)
        pts.append((j, cover, d["cost_cny_per_year"], d["carbon_t_per_year"]))
    front = [
        p
        for p in pts
        if not any(
            q[1] >= p[1] and q[2] <= p[2] and q[3] <= p[3] and (q[1] > p[1] or q[2] < p[2] or q[3] < p[3]) for q in pts
        )
    ]
    return [
        {
            "city": plan.label(j),
            "coverage_pp": round(float(cov), 4),
            "cost_cny_per_year": cost,
            "carbon_t_per_year": co2,
        }
        for j, cov, cost, co2 in sorted(front, key=lambda p: -p[1])
    ]
