"""`plan hub --sensitivity`: the k = 1 ranking under the latency model's alternatives, every carbon year the
atlas holds and a +-20 % band on the candidates' power prices; which conclusions survive every variant."""

from __future__ import annotations

from dataclasses import dataclass, replace

from suanwang.atlas import Atlas, Place
from suanwang.atlas.loader import DATA, read_csv
from suanwang.errors import UnknownPlaceError
from suanwang.network import Network, coverage
from suanwang.planner.candidates import build_candidates
from suanwang.planner.instance import Weights, build_instance, carbon_years, class_loads
from suanwang.planner.mip import rank_with_status_quo

PRICE_BAND = 0.2  # +-20 % on the candidates' power price


@dataclass
class Variant:
    """One alternative world: its name, network, carbon year and candidate price factor."""

    name: str
    network: Network
    carbon_year: int
    price_factor: float = 1.0


def measured_network(net: Network) -> tuple[Network, int]:
    """`net` plus the shipped latency measurements as overrides, for the pairs whose ends name atlas nodes."""
    out = Network(net.atlas, net.route_factor, net.overhead_ms, dict(net.overrides))
    n = 0
    for r in read_csv(DATA / "latency_measurements.csv"):
        try:
            a, b = out.resolve(r["from_name"]), out.resolve(r["to_name"])
        except UnknownPlaceError:
            continue
        out.set_measured(a, b, float(r["one_way_ms"]))
        n += 1
    return out, n


def variants(atlas: Atlas, net: Network, carbon_year: int) -> list[Variant]:
    """The base case, the latency alternatives, the other carbon years and the price band."""
    measured, n = measured_network(net)
    out = [
        Variant("base", net, carbon_year),
        Variant("latency: pure fibre floor (km / 200, no overhead)", Network(atlas, 1.0, 0.0, {}), carbon_year),
        Variant(f"latency: fitted + {n} measured pairs", measured, carbon_year),
    ]
    out += [Variant(f"carbon year {y}", net, y) for y in carbon_years(atlas) if y != carbon_year]
    out += [
        Variant(f"candidate prices {1 - PRICE_BAND:.0%}", net, carbon_year, 1 - PRICE_BAND),
        Variant(f"candidate prices {1 + PRICE_BAND:.0%}", net, carbon_year, 1 + PRICE_BAND),
    ]
    return out


def sensitivity(
    atlas: Atlas,
    net: Network,
    places: list[Place],
    *,
    carbon_year: int,
    weights: Weights = Weights(),
    top: int = 3,
    max_util: float = 0.85,
    basis: str = "demand",
    **kw,
) -> dict:
    """Per variant: the top candidates (k = 1) and the base best's value, cost and carbon change; then the
    conclusions that hold in every variant. `kw`: candidate overrides (cores, cards, green_share)."""
    existing, cands = build_candidates(atlas, places, carbon_year=carbon_year, **kw)
    loads = class_loads(atlas, existing)
    rows, tops, bests = [], {}, {}
    base_best = None
    for v in variants(atlas, net, carbon_year):
        sites = [replace(c.site, price_cny_per_kwh=round(c.site.price_cny_per_kwh * v.price_factor, 4)) for c in cands]
        inst, _ = build_instance(
            atlas,
            v.network,
            existing,
            sites,
            carbon_year=v.carbon_year,
            weights=weights,
            loads=loads,
            max_util=max_util,
            basis=basis,
        )
        sq, singles = rank_with_status_quo(inst)
        value = [round(x.objective - sq.objective, 9) for x in singles]
        near = [float(inst.tier_weight[0][inst.lat_ms[:, inst.n_existing + j] <= 5.0].sum()) for j in range(len(cands))]
        order = sorted(range(len(singles)), key=lambda j: (-value[j], -near[j], j))
        if base_best is None:
            base_best = order[0]
        best = base_best
        s = singles[best]
        cut = value[order[min(top, len(order)) - 1]]
        tied = [cands[j].label for j in order if value[j] >= value[order[0]] - 1e-9]
        tops[v.name] = [cands[j].label for j in order if value[j] >= cut - 1e-9]
        bests[v.name] = tied
        rows.append(
            {
                "variant": v.name,
                "best": tied[0]
                if len(tied) == 1
                else f"{len(tied)} tied: {', '.join(tied[:4])}{', ...' * (len(tied) > 4)}",
                "top": tops[v.name][:top],
                "base_best_rank": order.index(best) + 1,
                "base_best_value": round(s.objective - sq.objective, 6),
                "base_best_cost_cny_per_year": round((s.cost_cny_h - sq.cost_cny_h) * 8760),
                "base_best_carbon_t_per_year": round((s.carbon_kg_h - sq.carbon_kg_h) * 8.76, 1),
                "base_best_capitals_5ms": len(coverage(v.network, cands[best].site, 5.0).covered),
            }
        )
    name = cands[base_best].label
    always_top = set.intersection(*(set(t) for t in tops.values()))
    always_best = set.intersection(*(set(t) for t in bests.values()))
    conclusions = [
        f"best (or tied best) single candidate in every variant: {', '.join(sorted(always_best))}"
        if always_best
        else "no candidate is the best single candidate in every variant",
        f"in the top {top} (ties included) in every variant: {', '.join(sorted(always_top)) or 'no candidate'}",
    ]
    for key, what in (("base_best_cost_cny_per_year", "batch cost"), ("base_best_carbon_t_per_year", "batch carbon")):
        signs = {(r[key] > 0) - (r[key] < 0) for r in rows}
        word = {1: "raises", -1: "lowers", 0: "leaves unchanged"}
        conclusions.append(
            f"{name} {word[signs.pop()]} {what} in every variant"
            if len(signs) == 1
            else f"whether {name} raises or lowers {what} depends on the variant"
        )
    caps = sorted({r["base_best_capitals_5ms"] for r in rows})
    conclusions.append(
        f"capitals within 5 ms one-way of {name}: {caps[0]} in every variant"
        if len(caps) == 1
        else f"capitals within 5 ms one-way of {name}: {caps[0]} to {caps[-1]} depending on the latency model"
    )
    return {"variants": rows, "conclusions": conclusions}
