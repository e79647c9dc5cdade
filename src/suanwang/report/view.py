"""The report's view of a results dict: tolerant reading, ratios against the baseline, the default policy.

Ratios are per unit of work, on one basis for the whole page (`ReportView.ratio_basis`):
- "core_equiv": per core-equivalent hour = CPU core-hours + k x GPU card-hours, where k (core-hours per
  card-hour) is the power model's W per busy card over W per busy core (atlas assumptions `watts_per_gpu` /
  `watts_per_core`: 400 / 8 = 50), read from meta.card_core_equivalent when the run wrote it. A card-hour so
  counts as the energy of k core-hours: the carbon ratio compares carbon per unit of IT energy, the cost ratio
  cost per unit of energy-weighted work (a card's amortisation, 2.28 CNY/h, is about 107 core-hours' worth, so
  cost per unit is not exactly constant across CPU and GPU work; see docs/simulation.md).
- "core": per CPU core-hour, when the results carry no card-hours (older results): GPU work is not counted.
- "total": ratios of totals, when the results carry no core-hours either.
The carbon ratio is market-based (carbon_t: grid x (1 - green share)); carbon_location_ratio is location-based
(carbon_location_t: the site's grid alone).

Only `policies` is required; every other key may be missing. For a run on the shipped atlas (meta.scenario
missing or "national default"), sites or provinces absent from the results are looked up in it so flows can
still be drawn; a run on another scenario is drawn from its own results only (the national atlas may name the
same ids with other places and capacities). Anything unknown is left off the map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from suanwang.atlas import load_atlas
from suanwang.errors import DataError
from suanwang.sim.runner import NATIONAL_SCENARIO

TOTAL_FIELDS = (
    "jobs",
    "done",
    "failed",
    "rejected",
    "cost_cny",
    "energy_mwh",
    "carbon_t",
    "carbon_location_t",
    "wait_p50_h",
    "wait_p95_h",
    "wait_p99_h",
    "deadline_misses",
    "latency_violations",
    "residency_violations",
    "wan_tb",
    "west_share",
    "core_hours",
    "card_hours",
)
BASES = ("core_equiv", "core", "total")
FILE = "results"


class ResultsError(DataError):
    """The results dict handed to the report is unusable (names the field and the fix)."""

    def __init__(self, field: str | None, problem: str, fix: str = ""):
        super().__init__(FILE, None, field, problem, fix)


def num(x: Any) -> float | None:
    """A finite number as float, else None (bools, strings, NaN and infinities are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base, or None when either is missing or the base is zero."""
    if value is None or base is None or base == 0:
        return None
    return value / base


def card_core_equivalent(meta: dict | None = None) -> float:
    """Core-hours one GPU card-hour counts as: meta's card_core_equivalent when the run wrote it, else the shipped
    atlas' power model (W per busy card / W per busy core)."""
    k = num((meta or {}).get("card_core_equivalent"))
    if k is not None and k >= 0:
        return k
    atlas = load_atlas()
    return atlas.value("watts_per_gpu") / atlas.value("watts_per_core")


def work_hours(core_hours: float | None, card_hours: float | None, k: float, basis: str) -> float | None:
    """The work a ratio divides by: core-hours + k x card-hours ("core_equiv"), core-hours ("core") or None
    ("total": no division)."""
    if basis == "total" or core_hours is None:
        return None
    if basis == "core":
        return core_hours
    return None if card_hours is None else core_hours + k * card_hours


def per_unit_ratio(value, units, base, base_units) -> float | None:
    """(value / units) / (base / base_units): policies that run different amounts of work compare per core-hour;
    without core-hours on both sides, the plain ratio of totals."""
    if units and base_units:
        return ratio(ratio(value, units), ratio(base, base_units))
    return ratio(value, base)


def _dicts(x: Any) -> list[dict]:
    """The dict items of a list (anything else gives an empty list)."""
    return [r for r in x if isinstance(r, dict)] if isinstance(x, list) else []


@dataclass
class SiteView:
    """A site as the page shows it: bilingual names, position (deg) and effective carbon (kgCO2/kWh)."""

    id: str
    name_zh: str
    name_en: str
    lat: float | None
    lon: float | None
    role: str
    kind: str
    cpu_cores: float | None
    carbon_kg_per_kwh: float | None


@dataclass
class PolicyView:
    """One policy's results: totals, ratios against the baseline and the raw tables (tolerantly read)."""

    name: str
    totals: dict[str, float | None]
    cost_ratio: float | None
    carbon_ratio: float | None  # market-based carbon (carbon_t)
    carbon_location_ratio: float | None  # location-based carbon (carbon_location_t)
    work_hours: float | None  # what the ratios divide by (see ratio_basis), core-hours or core-equivalent hours
    flows: list[dict]
    site_load: list[dict]
    utilisation: dict | None
    raised: list[dict]


@dataclass
class ReportView:
    """Everything the template and the page script need, already checked."""

    meta: dict[str, Any]
    sites: dict[str, SiteView]
    provinces: dict[str, dict[str, Any]]
    policies: list[PolicyView]
    baseline: str
    default_policy: str
    signals: dict[str, Any] = field(default_factory=dict)
    ratio_basis: str = "core_equiv"  # one of BASES: what every ratio (and so "best") is per
    card_core_equivalent: float = 50.0  # core-hours per GPU card-hour in the "core_equiv" basis

    def policy(self, name: str) -> PolicyView:
        """The policy with this name."""
        return next(p for p in self.policies if p.name == name)


def _national(results: dict) -> bool:
    """Whether the run was made on the shipped atlas (so it may complete the results)."""
    meta = results.get("meta") if isinstance(results.get("meta"), dict) else {}
    return meta.get("scenario", NATIONAL_SCENARIO) == NATIONAL_SCENARIO


def _provinces(results: dict) -> dict[str, dict[str, Any]]:
    """Province id -> {name_zh, name_en, lat, lon}: the results' own, completed from the atlas on a national run."""
    out = {
        p.id: {"name_zh": p.name_zh, "name_en": p.name_en, "lat": p.lat, "lon": p.lon}
        for p in (load_atlas().provinces.values() if _national(results) else ())
    }
    for p in _dicts(results.get("provinces")):
        pid = str(p.get("id", ""))
        if not pid:
            continue
        base = out.get(pid, {"name_zh": pid, "name_en": pid, "lat": None, "lon": None})
        out[pid] = {
            "name_zh": str(p.get("name_zh") or base["name_zh"]),
            "name_en": str(p.get("name_en") or base["name_en"]),
            "lat": num(p.get("lat")) if num(p.get("lat")) is not None else base["lat"],
            "lon": num(p.get("lon")) if num(p.get("lon")) is not None else base["lon"],
        }
    return out


def _sites(results: dict, grid: dict[str, list], referenced: set[str]) -> dict[str, SiteView]:
    """Site id -> SiteView: the results' sites, then (on a national run) atlas sites that the policies use but the
    results omit."""
    national = _national(results)
    atlas = load_atlas()
    co2 = {str(p["id"]): num(p.get("co2_kg_per_kwh")) for p in _dicts(results.get("provinces")) if "id" in p}
    rows = _dicts(results.get("sites"))
    seen = {str(r.get("id")) for r in rows}
    rows += [
        {k: getattr(s, k) for k in ("id", "name_zh", "name_en", "lat", "lon", "role", "kind", "province_id")}
        | {"cpu_cores": s.cpu_cores, "green_share": s.green_share}
        for s in (atlas.sites if national else ())
        if s.id in referenced - seen
    ]
    out: dict[str, SiteView] = {}
    for r in rows:
        sid = str(r.get("id") or "")
        if not sid:
            continue
        hourly = [v for v in (num(x) for x in grid.get(sid, []) or []) if v is not None]
        g = sum(hourly) / len(hourly) if hourly else co2.get(str(r.get("province_id")))
        if g is None and national and str(r.get("province_id")) in atlas.provinces:
            g = atlas.province(str(r.get("province_id"))).co2()
        green = num(r.get("green_share")) or 0.0
        out[sid] = SiteView(
            id=sid,
            name_zh=str(r.get("name_zh") or sid),
            name_en=str(r.get("name_en") or sid),
            lat=num(r.get("lat")),
            lon=num(r.get("lon")),
            role=str(r.get("role") or ""),
            kind=str(r.get("kind") or ""),
            cpu_cores=num(r.get("cpu_cores")),
            carbon_kg_per_kwh=None if g is None else g * (1.0 - min(max(green, 0.0), 1.0)),
        )
    return out


def _utilisation(u: Any) -> dict | None:
    """{hours, site_ids, values} when well-formed (rows as long as site_ids), else None."""
    if not isinstance(u, dict):
        return None
    hours, ids, values = u.get("hours"), u.get("site_ids"), u.get("values")
    if not (isinstance(hours, list) and isinstance(ids, list) and isinstance(values, list)):
        return None
    rows = [r for r in values if isinstance(r, list) and len(r) == len(ids)]
    if not ids or not rows:
        return None
    return {
        "hours": hours[: len(rows)],
        "site_ids": [str(i) for i in ids],
        "values": [[num(v) for v in r] for r in rows],
    }


def _basis(totals) -> str:
    """The one ratio basis of the page: "core_equiv" when every policy has core-hours and card-hours, "core" when
    every policy has core-hours, else "total" (a policy with no work at all compares by totals)."""
    totals = list(totals)
    if all(t["core_hours"] is not None and t["card_hours"] is not None for t in totals):
        return "core_equiv"
    if all(t["core_hours"] is not None for t in totals):
        return "core"
    return "total"


def _default_policy(policies: list[PolicyView], baseline: str) -> str:
    """The best non-baseline policy: no residency violations, then the most work done (to the nearest percent),
    then the lowest mean of its cost and market-based carbon ratios (on the page's ratio basis)."""
    candidates = [p for p in policies if p.name != baseline]
    if not candidates:
        return baseline

    def key(p: PolicyView) -> tuple:
        ratios = [r for r in (p.cost_ratio, p.carbon_ratio) if r is not None]
        done_share = ratio(p.totals.get("done"), p.totals.get("jobs"))
        return (
            (p.totals.get("residency_violations") or 0) > 0,
            -round(done_share, 2) if done_share is not None else 0.0,
            sum(ratios) / len(ratios) if ratios else math.inf,
        )

    return min(candidates, key=key).name


def build_view(results: Any) -> ReportView:
    """Read a results dict (the simulator's results.json) into a ReportView; ResultsError if unusable."""
    if not isinstance(results, dict):
        raise ResultsError(None, f"expected a JSON object (dict), got {type(results).__name__}", "pass results.json")
    raw = results.get("policies")
    if not isinstance(raw, dict) or not raw:
        raise ResultsError(
            "policies", "missing or empty", 'give at least one policy: {"policies": {"<name>": {"totals": {...}}}}'
        )
    names = [str(n) for n in raw]
    baseline = str(results.get("baseline") or "")
    if baseline not in raw:
        baseline = "local-only" if "local-only" in raw else names[0]
    totals = {}
    for name in names:
        p = raw[name] if isinstance(raw[name], dict) else {}
        t = p.get("totals") if isinstance(p.get("totals"), dict) else {}
        totals[name] = {k: num(t.get(k)) for k in TOTAL_FIELDS}
        for key in ("core_hours", "card_hours"):
            if totals[name][key] is None:  # older results: the sum over sites (absent there too: None)
                hours = [num(r.get(key)) for r in _dicts(p.get("site_load"))]
                hours = [h for h in hours if h is not None]
                totals[name][key] = sum(hours) if hours else None
    meta = results.get("meta") if isinstance(results.get("meta"), dict) else {}
    k = card_core_equivalent(meta)
    basis = _basis(totals.values())
    work = {n: work_hours(t["core_hours"], t["card_hours"], k, basis) for n, t in totals.items()}
    base, base_work = totals[baseline], work[baseline]
    policies = []
    for name in names:
        p = raw[name] if isinstance(raw[name], dict) else {}
        t, w = totals[name], work[name]
        policies.append(
            PolicyView(
                name=name,
                totals=t,
                cost_ratio=per_unit_ratio(t["cost_cny"], w, base["cost_cny"], base_work),
                carbon_ratio=per_unit_ratio(t["carbon_t"], w, base["carbon_t"], base_work),
                carbon_location_ratio=per_unit_ratio(t["carbon_location_t"], w, base["carbon_location_t"], base_work),
                work_hours=w,
                flows=_dicts(p.get("flows")),
                site_load=_dicts(p.get("site_load")),
                utilisation=_utilisation(p.get("utilisation")),
                raised=sorted(
                    _dicts(p.get("carbon_raised_routes")),
                    key=lambda r: -(num(r.get("increase_t")) or 0.0),
                ),
            )
        )
    sig = results.get("signals") if isinstance(results.get("signals"), dict) else {}
    grid = sig.get("grid_kg_per_kwh") if isinstance(sig.get("grid_kg_per_kwh"), dict) else {}
    price = sig.get("price_cny_per_kwh") if isinstance(sig.get("price_cny_per_kwh"), dict) else {}
    hours = sig.get("hours") if isinstance(sig.get("hours"), list) else None
    length = max((len(v) for v in [*grid.values(), *price.values()] if isinstance(v, list)), default=0)
    signals = {
        "hours": hours or list(range(length)),
        "price": {str(k): [num(x) for x in v] for k, v in price.items() if isinstance(v, list)},
        "grid": {str(k): [num(x) for x in v] for k, v in grid.items() if isinstance(v, list)},
    }
    used = {str(r.get("site_id")) for p in policies for r in [*p.flows, *p.site_load, *p.raised]}
    used |= {s for p in policies if p.utilisation for s in p.utilisation["site_ids"]}
    return ReportView(
        meta=meta,
        sites=_sites(results, grid, used),
        provinces=_provinces(results),
        policies=policies,
        baseline=baseline,
        default_policy=_default_policy(policies, baseline),
        signals=signals,
        ratio_basis=basis,
        card_core_equivalent=k,
    )
