"""The planner's outputs as one JSON-ready payload (the CLI prints it as tables, JSON or CSV)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from suanwang.atlas import load_atlas
from suanwang.network import Network
from suanwang.planner.candidates import PlanError, select_places
from suanwang.planner.hub import HubPlan, pareto_rows, plan_hub, ranking_rows, route_rows, set_rows, site_rows, ties
from suanwang.planner.instance import Weights, carbon_years, default_carbon_year


def load_world(scenario: Path | None):
    """(atlas, network) of the national atlas or of a scenario file."""
    if scenario is None:
        atlas = load_atlas()
        return atlas, Network(atlas)
    from suanwang.atlas.scenario import load_scenario

    sc = load_scenario(scenario)
    return sc.atlas, sc.network


def weights_for(objective: str, overrides: dict[str, float | None]) -> Weights:
    """The preset's weights with any explicit --w-* override applied."""
    w = Weights.preset(objective)
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, v in given.items():
        if v < 0:
            raise PlanError(f"--w-{key}: {v} must be >= 0")
    return replace(w, **given)


def check_year(atlas, year: int | None) -> int:
    """The carbon year to plan with: the given one if the atlas holds it, else the atlas default."""
    years = carbon_years(atlas)
    if year is None:
        return default_carbon_year(atlas)
    if year not in years:
        raise PlanError(f"--carbon-year: the atlas has grid CO2 factors for {', '.join(map(str, years))} only")
    return year


def plan_from_options(*, scenario, names, province, region, k, objective, overrides, carbon_year, **kw) -> HubPlan:
    """Build and solve a hub plan from CLI-style options."""
    atlas, net = load_world(scenario)
    places = select_places(atlas, names, province, region)
    return plan_hub(
        atlas,
        net,
        places,
        k_max=k,
        weights=weights_for(objective, overrides),
        carbon_year=check_year(atlas, carbon_year),
        **kw,
    )


def hub_payload(plan: HubPlan, top: int | None = None) -> dict:
    """ranked / sets / sites / routes / pareto rows and the meta data that names every assumption."""
    k_max = max(plan.best)
    sq = plan.status_quo
    net = plan.network
    return {
        "ranked": ranking_rows(plan, top),
        "sets": set_rows(plan),
        "sites": [r for k in sorted(plan.best) for r in site_rows(plan, plan.best[k]) if k == k_max],
        "routes": route_rows(plan, plan.best[k_max]),
        "pareto": pareto_rows(plan),
        "map": map_payload(plan),
        "meta": {
            "candidates": len(plan.candidates),
            "tied_best_single": ties(plan),
            "objective_weights": asdict(plan.instance.weights),
            "objective": "w_rt x real-time share served within 5 ms + w_int x interactive share served within 20 ms "
            "- w_cost x batch cost / reference - w_carbon x batch carbon / reference (reference: every "
            "province's batch at its own provincial DC)",
            "status_quo": {
                "realtime_served": round(float(sq.served[0]), 5),
                "interactive_served": round(float(sq.served[1]), 5),
                "batch_cost_cny_per_year": round(sq.cost_cny_h * 8760),
                "batch_carbon_t_per_year": round(sq.carbon_kg_h * 8.76, 1),
            },
            "carbon_year": plan.context.carbon_year,
            "carbon_basis": "market-based: grid factor x (1 - green share)",
            "latency_model": f"one-way ms = {net.route_factor:g} x km / 200 + {net.overhead_ms:g}"
            + (f", {len(net.overrides) // 2} measured pairs" if net.overrides else ""),
            "demand": plan.context.demand_note,
            "units": "changes per year at the demand model's steady load; batch cost = energy x PUE x price + "
            "inter-province transfer (amortisation is the same at every site and left out)",
            "not_modelled": "residency rules (sensitive / core data kept in province) and queueing: see the "
            "simulation validation",
            "assumptions": _assumptions(plan),
        },
    }


def sensitivity_payload(plan: HubPlan, **kw) -> dict:
    """The k = 1 ranking of the plan's candidates under every sensitivity variant (see planner.sensitivity)."""
    from suanwang.planner.sensitivity import sensitivity

    site = plan.candidates[0].site
    over = {}
    if any(c.basis.get("capacity") == "given on the command line" for c in plan.candidates):
        over = {"cores": site.cpu_cores, "cards": site.gpu_cards}
    if any(c.basis.get("green_share") == "given on the command line" for c in plan.candidates):
        over["green_share"] = site.green_share
    return sensitivity(
        plan.network.atlas,
        plan.network,
        [c.place for c in plan.candidates],
        carbon_year=plan.context.carbon_year,
        weights=plan.instance.weights,
        **over,
        **kw,
    )


def validation_rows(plan: HubPlan, top: int, seeds: int, jobs: int, days: float) -> list[dict]:
    """Simulated status quo and top-`top` single candidates (see planner.validate)."""
    from suanwang.planner.hub import ranked
    from suanwang.planner.validate import validate

    atlas = plan.network.atlas
    base = replace(
        atlas, sites=[s for s in atlas.sites if s.id in set(plan.instance.site_ids[: plan.instance.n_existing])]
    )
    scenarios = {"status quo": []}
    for j in ranked(plan)[:top]:
        scenarios[plan.label(j)] = [plan.candidates[j].site]
    return validate(
        base, plan.network, scenarios, seeds=seeds, jobs=jobs, days=days, carbon_year=plan.context.carbon_year
    )


def _assumptions(plan: HubPlan) -> dict[str, str]:
    """The basis of each candidate assumption; where candidates differ (scenario overrides, several provinces),
    the per-province part is left to each candidate's own row (`sites`)."""
    out = {}
    for key in plan.candidates[0].basis:
        values = {c.basis.get(key, "") for c in plan.candidates}
        out[key] = values.pop() if len(values) == 1 else "differs by candidate - see each chosen site's basis"
    return out


def map_payload(plan: HubPlan) -> dict:
    """Positions for the report's map: existing sites, candidates (with their k = 1 value), the chosen sites of the
    largest k and the capitals each covers within 1 / 5 / 20 ms one-way."""
    from suanwang.network import TIERS_MS, coverage

    sq = plan.status_quo.objective
    k_max = max(plan.best)
    net = plan.network
    chosen = []
    for j in plan.best[k_max].open:
        c = plan.candidates[j]
        tiers = {}
        for tier in TIERS_MS.values():
            tiers[f"{tier:g}"] = [
                [p.place.lon, p.place.lat, p.place.label] for p in coverage(net, c.site, tier).covered
            ]
        chosen.append({"name": c.label, "lon": c.place.lon, "lat": c.place.lat, "tiers": tiers})
    return {
        "existing": [
            {"name": s.label, "lon": s.lon, "lat": s.lat, "kind": s.kind}
            for s in plan.context.sites[: plan.instance.n_existing]
        ],
        "candidates": [
            {"name": c.label, "lon": c.place.lon, "lat": c.place.lat, "value": round(plan.singles[j].objective - sq, 6)}
            for j, c in enumerate(plan.candidates)
        ],
        "chosen": chosen,
    }
