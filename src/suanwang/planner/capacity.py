"""`plan capacity`: how many CPU cores and GPU cards to add at which sites so that a (grown) demand is served with
at most a given share unserved, at the least annual capital plus operating cost. An LP solved with HiGHS.

    minimise  sum_s (capex_core add_c[s] + capex_card add_g[s])                      (CNY / year, annualised)
              + 8760 (sum x[c,o,s] (cores[c,o] e_core[s] + cards[c,o] e_card[s]) + sum b[p,s] opex[p,s])
    s.t.      sum_s x[c,o,s] <= 1, x only where lat[o,s] <= bound_c;   sum_s b[p,s] <= 1
              served load of each latency class and of batch >= (1 - max_miss) x its load
              load of cores (cards) at s <= max_util (capacity_s + add_c[s] (add_g[s]))
              add_c, add_g >= 0 only at the sites allowed to grow

The annual capital cost per core and per card is the atlas's amortisation (CNY per core-hour / card-hour, from a
server / card price written off over its lifetime) x 8760; operating cost is energy x PUE x price (+ transfer).
Demand not served within its latency bound counts as missed - the steady-state stand-in for a deadline miss - and
`max_miss` applies to the demand some site can reach at all (demand out of every site's reach needs a new site, not
more capacity: see `plan hub`; its share is reported). `validate_capacity` checks the sized network in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import highspy
import numpy as np
import scipy.sparse as sp

from suanwang.atlas import Atlas, Site
from suanwang.atlas.signals import build_signals
from suanwang.network import Network
from suanwang.planner.candidates import PlanError, candidate_site
from suanwang.planner.instance import TIER_CLASSES, build_instance, class_loads
from suanwang.planner.validate import interval
from suanwang.scheduler.optimize.lp import quiet_highs

_INF = highspy.kHighsInf
HOURS_PER_YEAR = 8760.0


@dataclass
class CapacityPlan:
    """The sized network: cores and cards added per site, their annual cost, and what is served."""

    sites: list[Site]  # every site of the plan (existing first, then new cities)
    add_cores: np.ndarray
    add_cards: np.ndarray
    capex_cny_per_year: float
    opex_cny_per_year: float
    served: dict[str, float]  # class -> share of its load served (batch: anywhere; others within bound)
    growth: float
    max_miss: float
    basis: dict[str, str]

    def sized_sites(self) -> list[Site]:
        """The sites with the added capacity (rounded up to whole cores and cards)."""
        return [
            replace(s, cpu_cores=s.cpu_cores + int(np.ceil(c - 1e-6)), gpu_cards=s.gpu_cards + int(np.ceil(g - 1e-6)))
            for s, c, g in zip(self.sites, self.add_cores, self.add_cards, strict=True)
        ]


def plan_capacity(
    atlas: Atlas,
    net: Network,
    *,
    growth: float = 1.0,
    max_miss: float = 0.01,
    grow_at: list[str] | None = None,
    new_cities: list[str] | None = None,
    carbon_year: int,
    max_util: float = 0.85,
) -> CapacityPlan:
    """Size the network for today's demand x `growth`, at most `max_miss` of each class unserved. Capacity may be
    added at the sites named in `grow_at` (default: every existing site) and at new sites in `new_cities`."""
    if growth <= 0:
        raise PlanError(f"--growth: {growth} must be > 0 - e.g. --growth 1.5")
    if not 0.0 <= max_miss < 1.0:
        raise PlanError(f"--max-miss: {max_miss} must be in [0, 1) - e.g. --max-miss 0.01")
    existing = list(atlas.sites)
    loads = class_loads(atlas, existing)
    loads = {c: tuple(v * growth for v in load) for c, load in loads.items()}
    new = []
    for name in new_cities or []:
        try:
            place = atlas.place(name)
        except Exception as e:  # UnknownPlaceError carries the suggestions
            raise PlanError(f"--at: {e}") from None
        new.append(candidate_site(atlas, place, cores=0, cards=0, carbon_year=carbon_year).site)
    inst, ctx = build_instance(atlas, net, existing, new, carbon_year=carbon_year, loads=loads, max_util=1.0)
    sites = ctx.sites
    n_s = len(sites)
    if grow_at:
        allowed = np.zeros(n_s, dtype=bool)
        for name in grow_at:
            try:
                allowed[[s.id for s in sites].index(atlas.site(name).id)] = True
            except Exception as e:
                raise PlanError(f"--grow: {e} - use a site id or name") from None
        allowed[len(existing) :] = True
    else:
        allowed = np.ones(n_s, dtype=bool)
    sig = build_signals(atlas, sites, year=carbon_year)
    price = sig.price_cny_per_kwh.mean(axis=1)
    pue = np.array([s.pue for s in sites])
    e_core = atlas.value("watts_per_core") / 1e3 * pue * price  # CNY per busy core-hour
    e_card = atlas.value("watts_per_gpu") / 1e3 * pue * price
    capex_core = atlas.value("amortisation_cny_per_core_hour") * HOURS_PER_YEAR
    capex_card = atlas.value("amortisation_cny_per_gpu_hour") * HOURS_PER_YEAR
    add_c, add_g, served, capex, opex = _solve(
        inst, allowed, e_core, e_card, capex_core, capex_card, max_miss, max_util
    )
    core_note, card_note = (
        atlas.assumptions[k].assumption or atlas.assumptions[k].source
        for k in ("amortisation_cny_per_core_hour", "amortisation_cny_per_gpu_hour")
    )
    basis = {
        "capex_per_core": f"{capex_core:.1f} CNY/year = amortisation_cny_per_core_hour x 8760 ({core_note})",
        "capex_per_card": f"{capex_card:.0f} CNY/year = amortisation_cny_per_gpu_hour x 8760 ({card_note})",
        "opex": "energy x PUE x the site's mean price (+ inter-province transfer for batch)",
        "max_util": f"{max_util:g} of each site's cores and cards usable (assumption: queueing headroom)",
        "demand": f"{ctx.demand_note}; x {growth:g}",
        "miss": "demand not served within its latency bound (batch: not served at all) counts as missed; the target "
        "applies to the demand within reach of some site",
    }
    return CapacityPlan(sites, add_c, add_g, capex, opex, served, growth, max_miss, basis)


def _solve(inst, allowed, e_core, e_card, capex_core, capex_card, max_miss, max_util):
    n_c, n_o = inst.tier_cores.shape
    n_s, n_p = len(inst.site_ids), inst.batch_cores.size
    cls, org, site = [], [], []
    for c in range(n_c):
        o_ix, s_ix = np.nonzero(inst.lat_ms <= inst.tier_bound_ms[c])
        cls.append(np.full(o_ix.size, c))
        org.append(o_ix)
        site.append(s_ix)
    xc_, xo, xs = (np.concatenate(v).astype(np.int64) for v in (cls, org, site))
    n_x = xc_.size
    bp, bs = np.repeat(np.arange(n_p), n_s), np.tile(np.arange(n_s), n_p)
    n_b = bp.size
    grow = np.nonzero(allowed)[0]
    n_g = grow.size
    off_b, off_ac = n_x, n_x + n_b
    off_ag = off_ac + n_g
    n_col = off_ag + n_g
    # rows: [served <= 1 per (c, o)] [batch p <= 1] [class served >= ...] [batch served >=] [cap cores s] [cap cards s]
    r_cls = n_c * n_o + n_p
    r_bat = r_cls + n_c
    r_cap = r_bat + 1
    n_row = r_cap + 2 * n_s
    xi, bi = np.arange(n_x), np.arange(n_b) + off_b
    x_cores, x_cards = inst.tier_cores[xc_, xo], inst.tier_cards[xc_, xo]
    rows = [xc_ * n_o + xo, n_c * n_o + bp, r_cls + xc_, np.full(n_b, r_bat), r_cap + xs, r_cap + n_s + xs]
    cols = [xi, bi, xi, bi, xi, xi]
    vals = [np.ones(n_x), np.ones(n_b), x_cores, inst.batch_cores[bp], x_cores, x_cards]
    rows += [r_cap + bs, r_cap + n_s + bs, r_cap + grow, r_cap + n_s + grow]
    cols += [bi, bi, np.arange(n_g) + off_ac, np.arange(n_g) + off_ag]
    vals += [inst.batch_cores[bp], inst.batch_cards[bp], -max_util * np.ones(n_g), -max_util * np.ones(n_g)]
    a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_row, n_col))
    a.sum_duplicates()
    batch_opex = inst.batch_cost  # CNY/h if all of p's batch ran at s (energy x PUE x price + transfer)
    cost = np.concatenate(
        [
            HOURS_PER_YEAR * (x_cores * e_core[xs] + x_cards * e_card[xs]),
            HOURS_PER_YEAR * batch_opex.ravel(),
            np.full(n_g, capex_core),
            np.full(n_g, capex_card),
        ]
    )
    row_lo = np.full(n_row, -_INF)
    row_hi = np.zeros(n_row)
    row_hi[: n_c * n_o + n_p] = 1.0
    tier_total = inst.tier_cores.sum(axis=1)
    reach = np.array(
        [(inst.tier_cores[c] * (inst.lat_ms <= inst.tier_bound_ms[c]).any(axis=1)).sum() for c in range(n_c)]
    )
    row_lo[r_cls : r_cls + n_c] = (1.0 - max_miss) * reach
    row_hi[r_cls : r_cls + n_c] = _INF
    row_lo[r_bat], row_hi[r_bat] = (1.0 - max_miss) * inst.batch_cores.sum(), _INF
    row_hi[r_cap : r_cap + n_s] = max_util * inst.cap_cores
    row_hi[r_cap + n_s :] = max_util * inst.cap_cards
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_col, n_row
    lp.col_cost_ = cost
    lp.col_lower_, lp.col_upper_ = np.zeros(n_col), np.full(n_col, _INF)
    lp.row_lower_, lp.row_upper_ = row_lo, row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    h = quiet_highs()
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise PlanError(
            _why_infeasible(inst, allowed, max_miss)
            if status == highspy.HighsModelStatus.kInfeasible
            else f"capacity plan: HiGHS says {h.modelStatusToString(status)}"
        )
    v = np.asarray(h.getSolution().col_value)
    add_c, add_g = np.zeros(n_s), np.zeros(n_s)
    add_c[grow], add_g[grow] = v[off_ac:off_ag], v[off_ag:]
    x, b = v[:n_x], v[off_b:off_ac]
    served = {
        cls_.value: float((np.bincount(xc_, weights=x * x_cores, minlength=n_c) / tier_total)[c])
        for c, cls_ in enumerate(TIER_CLASSES)
    }
    served["batch"] = float((b * inst.batch_cores[bp]).sum() / inst.batch_cores.sum())
    for c, cls_ in enumerate(TIER_CLASSES):
        served[f"{cls_.value}_in_reach"] = float(reach[c] / tier_total[c])
    capex = float(capex_core * v[off_ac:off_ag].sum() + capex_card * v[off_ag:].sum())
    opex = float(cost[:off_ac] @ v[:off_ac])
    return add_c, add_g, served, capex, opex


def _why_infeasible(inst, allowed, max_miss: float) -> str:
    """The one-line reason the target cannot be met: the sites allowed to grow cannot reach enough demand."""
    for c, cls in enumerate(TIER_CLASSES):
        any_site = (inst.lat_ms <= inst.tier_bound_ms[c]).any(axis=1)
        growable = ((inst.lat_ms <= inst.tier_bound_ms[c]) & allowed[None, :]).any(axis=1)
        if growable.sum() < any_site.sum():
            share = float(inst.tier_cores[c][growable].sum() / inst.tier_cores[c][any_site].sum())
            return (
                f"--max-miss: {max_miss:g} cannot be met - the sites allowed to grow reach {share:.1%} of the "
                f"{cls.value} demand in reach; allow more with --grow or raise --max-miss"
            )
    return f"--max-miss: {max_miss:g} cannot be met with the sites allowed to grow - allow more sites with --grow"


def validate_capacity(
    atlas: Atlas,
    net: Network,
    plan: CapacityPlan,
    *,
    seeds: int = 5,
    jobs: int = 2000,
    days: float = 2.0,
    carbon_year: int,
    policy: str = "online",
) -> list[dict]:
    """Simulate today's network and the sized one on the grown demand: deadline-miss and rejection shares, mean and
    95 % CI over `seeds` seeds (same jobs for both)."""
    from suanwang.planner.validate import world_context
    from suanwang.sim.runner import run_policy
    from suanwang.workload.demand import national_demand

    grown = [
        replace(s, cpu_cores=round(s.cpu_cores * plan.growth), gpu_cards=round(s.gpu_cards * plan.growth))
        for s in atlas.sites
    ]
    worlds = {
        "today": world_context(
            atlas, net, list(atlas.sites) + [s for s in plan.sites[len(atlas.sites) :]], carbon_year
        ),
        "sized": world_context(atlas, net, plan.sized_sites(), carbon_year),
    }
    out = {name: {"miss": [], "rejected": [], "cost": []} for name in worlds}
    for seed in range(seeds):
        job_list = national_demand(atlas, round(jobs * plan.growth), days, seed, grown).jobs
        for name, ctx in worlds.items():
            t = run_policy(ctx, job_list, policy, carbon_year, horizon_h=days * 24.0, outages=[], cuts=[])["totals"]
            out[name]["miss"].append((t["deadline_misses"] + t["rejected"] + t["failed"]) / t["jobs"])
            out[name]["rejected"].append(t["rejected"] / t["jobs"])
            out[name]["cost"].append(t["cost_cny"])
    rows = []
    for name, m in out.items():
        row = {"network": name, "seeds": seeds}
        for key, values in m.items():
            mean, half = interval(values)
            row[f"{key}_share" if key != "cost" else "cost_cny"] = round(mean, 5)
            row[f"{key}_ci95"] = round(half, 5)
        rows.append(row)
    return rows
