"""The facility-location instance of `plan hub`: demand, sites, latency, capacity, cost and carbon as arrays.

Demand is a steady load (busy cores and cards per hour) from the national demand model: each latency class's
share of core-hours and card-hours is read off one draw of the model (`national_demand`), and split over the
origin cities by the model's exact origin weights. Real-time and interactive demand must be served within its
class bound (5 / 20 ms one-way) or it counts as not served; batch demand must be served somewhere, at a cost
(energy x PUE x price + inter-province transfer) and carbon (energy x grid factor x (1 - green share)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from suanwang.atlas import Atlas, Site
from suanwang.atlas.signals import build_signals
from suanwang.network import Network
from suanwang.workload.demand import national_demand, origin_weights
from suanwang.workload.job import MAX_ONE_WAY_MS, LatencyClass

TIER_CLASSES = (LatencyClass.REALTIME, LatencyClass.INTERACTIVE)
COVERAGE_BASES = ("demand", "population")


@dataclass(frozen=True)
class Weights:
    """Objective weights: served share of each latency-bound class, and batch cost / carbon relative to the
    reference (every province's batch at its own provincial DC)."""

    realtime: float = 1.0
    interactive: float = 1.0
    cost: float = 1.0
    carbon: float = 1.0

    @classmethod
    def preset(cls, name: str) -> Weights:
        """'balanced' (all 1), 'coverage', 'cost' or 'carbon' (the others get a 0.001 tie-break weight)."""
        t = 1e-3
        return {
            "balanced": cls(),
            "coverage": cls(1.0, 1.0, t, t),
            "cost": cls(t, t, 1.0, t),
            "carbon": cls(t, t, t, 1.0),
        }[name]


@dataclass
class Instance:
    """Arrays of one plan. Sites s: the existing ones first (n_existing), then the candidates.

    tier_* are [class, origin] (classes: TIER_CLASSES); tier_weight rows sum to 1 (share of the class's
    demand by the coverage basis). batch_* are [province] or [province, site]; cost in CNY/h, carbon in kg/h.
    """

    site_ids: list[str]
    n_existing: int
    cap_cores: np.ndarray  # [S] usable busy cores
    cap_cards: np.ndarray  # [S]
    lat_ms: np.ndarray  # [O, S] one-way
    tier_bound_ms: np.ndarray  # [C]
    tier_cores: np.ndarray  # [C, O] busy cores
    tier_cards: np.ndarray  # [C, O]
    tier_weight: np.ndarray  # [C, O]
    batch_cores: np.ndarray  # [P]
    batch_cards: np.ndarray  # [P]
    batch_cost: np.ndarray  # [P, S] CNY/h if all of province p's batch ran at s
    batch_carbon: np.ndarray  # [P, S] kgCO2/h (market-based)
    cost_ref: float  # CNY/h
    carbon_ref: float  # kgCO2/h
    weights: Weights = Weights()

    @property
    def n_candidates(self) -> int:
        """Number of candidate sites."""
        return len(self.site_ids) - self.n_existing

    def restrict(self, open_set) -> tuple[Instance, np.ndarray]:
        """(the instance with only the candidates in `open_set`, the kept site indices into this instance)."""
        keep = np.concatenate([np.arange(self.n_existing), self.n_existing + np.asarray(sorted(open_set), dtype=int)])
        return (
            replace(
                self,
                site_ids=[self.site_ids[i] for i in keep],
                cap_cores=self.cap_cores[keep],
                cap_cards=self.cap_cards[keep],
                lat_ms=self.lat_ms[:, keep],
                batch_cost=self.batch_cost[:, keep],
                batch_carbon=self.batch_carbon[:, keep],
            ),
            keep,
        )


@dataclass
class Context:
    """What the atlas side of an instance keeps for reporting: origins, provinces, sites and their signals."""

    origins: list[str]  # adcodes, instance origin order
    provinces: list[str]  # province ids, instance batch order
    sites: list[Site]
    batch_carbon_location: np.ndarray  # [P, S] kgCO2/h, grid mix only
    carbon_year: int
    demand_note: str


def carbon_years(atlas: Atlas) -> list[int]:
    """The carbon years every province of the atlas has a grid factor for."""
    years = set.intersection(*(set(p.co2_kg_per_kwh) for p in atlas.provinces.values()))
    return sorted(years)


def default_carbon_year(atlas: Atlas) -> int:
    """The atlas's carbon year (its `carbon_year` when it has one), else the latest it holds."""
    return int(getattr(atlas, "carbon_year", None) or carbon_years(atlas)[-1])


def class_loads(atlas: Atlas, sites: list[Site], jobs: int = 20000, days: float = 7.0, seed: int = 0) -> dict:
    """Busy cores, cards and GB moved per hour of each latency class in one draw of the national demand
    (scaled to `sites`): {class: (cores, cards, gb_per_h)}."""
    demand = national_demand(atlas, jobs, days, seed, sites)
    horizon_h = days * 24.0
    out = {c: [0.0, 0.0, 0.0] for c in LatencyClass}
    for j in demand.jobs:
        acc = out[j.latency_class]
        acc[0] += j.cpu_cores * j.runtime_h
        acc[1] += j.gpu_cards * j.runtime_h
        acc[2] += j.input_gb + j.output_gb
    return {c: tuple(v / horizon_h for v in acc) for c, acc in out.items()}


def build_instance(
    atlas: Atlas,
    network: Network,
    existing: list[Site],
    candidates: list[Site],
    *,
    carbon_year: int,
    weights: Weights = Weights(),
    basis: str = "demand",
    max_util: float = 0.85,
    loads: dict | None = None,
) -> tuple[Instance, Context]:
    """The instance for `existing` sites plus `candidates`; `max_util` is the usable share of each site's
    capacity, `basis` weighs coverage by the demand model's origin weights or by population."""
    sites = list(existing) + list(candidates)
    loads = loads or class_loads(atlas, existing)
    adcodes, provs, w = origin_weights(atlas)
    places = [atlas.place(a) for a in adcodes]
    lat = network.matrix_ms(places, sites)
    if basis == "population":  # province population split over its cities as the demand model splits demand
        prov_w: dict[str, float] = {}
        for p, x in zip(provs, w, strict=True):
            prov_w[p] = prov_w.get(p, 0.0) + x
        cov_w = np.array([atlas.province(p).population_10k * x / prov_w[p] for p, x in zip(provs, w, strict=True)])
        cov_w /= cov_w.sum()
    else:
        cov_w = w
    tier_cores = np.array([w * loads[c][0] for c in TIER_CLASSES])
    tier_cards = np.array([w * loads[c][1] for c in TIER_CLASSES])
    pids = list(dict.fromkeys(provs))
    share = np.array([sum(x for p, x in zip(provs, w, strict=True) if p == pid) for pid in pids])
    b_cores, b_cards, b_gb = (share * loads[LatencyClass.BATCH][k] for k in range(3))
    sig = build_signals(atlas, sites, year=carbon_year)
    price, grid = sig.price_cny_per_kwh.mean(axis=1), sig.grid_kg_per_kwh.mean(axis=1)
    pue = np.array([s.pue for s in sites])
    green = np.array([s.green_share for s in sites])
    it_kw = (b_cores * atlas.value("watts_per_core") + b_cards * atlas.value("watts_per_gpu")) / 1e3
    energy = it_kw[:, None] * pue[None, :]
    moved = np.array([[s.province_id != p for s in sites] for p in pids], dtype=float)
    cost = energy * price[None, :] + moved * (b_gb * network.transfer_cost_cny(1.0, False))[:, None]
    carbon_loc = energy * grid[None, :]
    carbon = carbon_loc * (1.0 - green)[None, :]
    index = {s.id: i for i, s in enumerate(sites)}
    local = [index.get(f"{p}-dc") for p in pids]
    cost_ref = sum(cost[i, j] if j is not None else cost[i].mean() for i, j in enumerate(local))
    carbon_ref = sum(carbon[i, j] if j is not None else carbon[i].mean() for i, j in enumerate(local))
    inst = Instance(
        site_ids=[s.id for s in sites],
        n_existing=len(existing),
        cap_cores=np.array([s.cpu_cores for s in sites], dtype=float) * max_util,
        cap_cards=np.array([s.gpu_cards for s in sites], dtype=float) * max_util,
        lat_ms=lat,
        tier_bound_ms=np.array([MAX_ONE_WAY_MS[c] for c in TIER_CLASSES]),
        tier_cores=tier_cores,
        tier_cards=tier_cards,
        tier_weight=np.array([cov_w, cov_w]),
        batch_cores=b_cores,
        batch_cards=b_cards,
        batch_cost=cost,
        batch_carbon=carbon,
        cost_ref=float(cost_ref),
        carbon_ref=float(max(carbon_ref, 1e-9)),
        weights=weights,
    )
    note = (
        "steady load from the national demand model: class shares of core- and card-hours from one draw "
        "(20,000 jobs, 7 days, seed 0), split over cities by the model's origin weights"
    )
    return inst, Context(adcodes, pids, sites, carbon_loc, carbon_year, note)
