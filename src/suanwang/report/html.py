"""The self-contained offline HTML report of a national simulation: one file, ECharts and the China map inline."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

from suanwang.report.i18n import page_strings
from suanwang.report.view import PolicyView, ReportView, build_view, num

ASSETS = files("suanwang.report") / "assets"
MAX_MAP_FLOWS = 400  # the heaviest flows drawn on the map; the rest stay in the tables
MAX_RAISED_ROWS = 40  # rows per policy in the "carbon raised" table


def _asset(name: str) -> str:
    """The text of a vendored asset."""
    return (ASSETS / name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON safe to place inside a <script> element (no '<', '>' or '&' left unescaped)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def fmt(x: Any, digits: int = 0) -> str:
    """A number for people: thousands separators, `digits` decimals below 1,000, '—' when missing."""
    v = num(x)
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def pct_change(r: float | None) -> str:
    """A ratio as a signed percentage change: 0.94 -> '−6.0%', '—' when missing."""
    if r is None:
        return "—"
    d = (r - 1.0) * 100.0
    return ("+" if d > 0 else "−" if d < 0 else "±") + f"{abs(d):.1f}%"


def bilingual(zh: str, en: str, lang: str) -> str:
    """Both names, the page's language first (one only when they are the same)."""
    if zh == en:
        return zh
    return f"{zh} {en}" if lang == "zh" else f"{en} {zh}"


def _map_flows(view: ReportView, p: PolicyView, lang: str) -> list[dict]:
    """Flows between different provinces with known ends, heaviest first, as map lines."""
    out = []
    for f in p.flows:
        site = view.sites.get(str(f.get("site_id")))
        prov = view.provinces.get(str(f.get("origin_province")))
        jobs = num(f.get("jobs"))
        if not site or not prov or jobs is None or jobs <= 0 or None in (site.lat, site.lon, prov["lat"], prov["lon"]):
            continue
        if (prov["lon"], prov["lat"]) == (site.lon, site.lat):
            continue
        carbon, local = num(f.get("carbon_t")), num(f.get("carbon_if_local_t"))
        out.append(
            {
                "coords": [[prov["lon"], prov["lat"]], [site.lon, site.lat]],
                "jobs": jobs,
                "from": bilingual(prov["name_zh"], prov["name_en"], lang),
                "to": bilingual(site.name_zh, site.name_en, lang),
                "carbon_t": carbon,
                "carbon_if_local_t": local,
                "raised": carbon is not None and local is not None and carbon > local,
            }
        )
    out.sort(key=lambda r: -r["jobs"])
    return out[:MAX_MAP_FLOWS]


def _site_load(p: PolicyView) -> dict[str, dict]:
    """Site id -> its load numbers under this policy (from site_load, else summed from flows)."""
    keys = ("jobs", "core_hours", "energy_mwh", "carbon_t", "cost_cny", "mean_util")
    if p.site_load:
        return {str(r.get("site_id")): {k: num(r.get(k)) for k in keys} for r in p.site_load}
    out: dict[str, dict] = {}
    for f in p.flows:
        row = out.setdefault(str(f.get("site_id")), dict.fromkeys(keys))
        for k in ("jobs", "core_hours", "energy_mwh", "carbon_t"):
            if num(f.get(k)) is not None:
                row[k] = (row[k] or 0.0) + num(f.get(k))
    return out


def _payload(view: ReportView, lang: str, t: dict[str, str]) -> dict:
    """The data the page script draws from."""
    names = {sid: bilingual(s.name_zh, s.name_en, lang) for sid, s in view.sites.items()}
    return {
        "lang": lang,
        "t": t,
        "baseline": view.baseline,
        "default_policy": view.default_policy,
        "ratio_basis": view.ratio_basis,
        "card_core_equivalent": view.card_core_equivalent,
        "policies": [p.name for p in view.policies],
        "sites": [
            {
                "id": s.id,
                "name": names[s.id],
                "lat": s.lat,
                "lon": s.lon,
                "role": s.role,
                "kind": s.kind,
                "carbon": s.carbon_kg_per_kwh,
                "cores": s.cpu_cores,
            }
            for s in view.sites.values()
        ],
        "per_policy": {
            p.name: {
                "totals": p.totals,
                "cost_ratio": p.cost_ratio,
                "carbon_ratio": p.carbon_ratio,
                "carbon_location_ratio": p.carbon_location_ratio,
                "work_hours": p.work_hours,
                "load": _site_load(p),
                "flows": _map_flows(view, p, lang),
                "util": p.utilisation,
            }
            for p in view.policies
        },
        "signals": view.signals,
        "site_names": names,
    }


def _raised_rows(view: ReportView, p: PolicyView, lang: str) -> list[dict]:
    """The "carbon raised" table rows for one policy, with display names."""
    rows = []
    for r in p.raised[:MAX_RAISED_ROWS]:
        prov = view.provinces.get(str(r.get("origin_province")))
        site = view.sites.get(str(r.get("site_id")))
        rows.append(
            {
                "origin": bilingual(prov["name_zh"], prov["name_en"], lang) if prov else str(r.get("origin_province")),
                "site": bilingual(site.name_zh, site.name_en, lang) if site else str(r.get("site_id")),
                "jobs": r.get("jobs"),
                "carbon_t": r.get("carbon_t"),
                "carbon_if_local_t": r.get("carbon_if_local_t"),
                "increase_t": r.get("increase_t"),
            }
        )
    return rows


def render_report(results: dict, lang: str = "en") -> str:
    """The report page for a results dict (results.json schema) as one HTML string; every ratio and the "best"
    label say what they are per (report/view.py, ratio_basis) and which carbon basis they use."""
    view = build_view(results)
    t = page_strings(lang, view.ratio_basis, view.card_core_equivalent, view.baseline)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    env.filters["pct"] = pct_change
    template = env.from_string(_asset("report.html.j2"))
    page = template.render(
        lang=lang,
        t=t,
        view=view,
        meta_items=[
            (t[k], view.meta[k])
            for k in ("scenario", "start", "days", "jobs", "seed", "carbon_year", "generated_by")
            if k in view.meta
        ],
        raised={p.name: _raised_rows(view, p, lang) for p in view.policies},
        max_raised=MAX_RAISED_ROWS,
        css=_asset("report.css"),
        echarts_js=_asset("echarts.min.js"),
        china_json=script_json(json.loads(_asset("china.json"))),
        payload_json=script_json(_payload(view, lang, t)),
        page_js=_asset("report.js"),
    )
    from suanwang.report.tenants import with_tenants_section  # the tenants section (report/tenants.py)

    return with_tenants_section(page, results, view.default_policy, lang)


def write_report(results: dict, path: Path, lang: str = "en") -> Path:
    """Write the offline HTML report for `results` to `path` (a directory gets report.html); returns the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.html"
    html = render_report(results, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
