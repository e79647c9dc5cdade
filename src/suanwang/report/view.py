"""The report's view of a results dict: tolerant reading, ratios against the baseline, the default policy.

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
)
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
    carbon_ratio: float | None
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


def _default_policy(policies: list[PolicyView], baseline: str) -> str:
    """The best non-baseline policy: no residency violations, then the most work done (to the nearest percent),
    then the lowest mean of its cost and carbon ratios."""
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
        if totals[name]["core_hours"] is None:  # older results: the sum over sites
            hours = [num(r.get("core_hours")) for r in _dicts(p.get("site_load"))]
            totals[name]["core_hours"] = sum(h for h in hours if h is not None) if hours else None
    base = totals[baseline]
    policies = []
    for name in names:
        p = raw[name] if isinstance(raw[name], dict) else {}
        t = totals[name]
        policies.append(
            PolicyView(
                name=name,
                totals=t,
                cost_ratio=per_unit_ratio(t["cost_cny"], t["core_hours"], base["cost_cny"], base["core_hours"]),
                carbon_ratio=per_unit_ratio(t["carbon_t"], t["core_hours"], base["carbon_t"], base["core_hours"]),
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
    meta = results.get("meta") if isinstance(results.get("meta"), dict) else {}
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
    )
