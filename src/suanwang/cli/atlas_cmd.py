"""CLI: `suanwang atlas sites|provinces|places|summary` - the national dataset with its sources."""

from __future__ import annotations

from typing import Annotated

import typer

from suanwang.atlas import Atlas, Site, load_atlas
from suanwang.atlas.carbon import DEFAULT_ORIGINS, carbon_of_moving_west
from suanwang.atlas.loader import tou_note
from suanwang.cli.common import console, emit, for_table, friendly_errors, write_json
from suanwang.cli.options import CarbonYearOpt, JsonOpt, ProvinceOpt, ScenarioOpt, atlas_for

app = typer.Typer(no_args_is_help=True, help="The national atlas (数纽): sites, provinces, places, summary.")


def co2_columns(atlas: Atlas, p) -> dict:
    """co2_<year>_kg_per_kwh for every year the atlas has, then co2_kg_per_kwh for the atlas's carbon year."""
    return {
        **{f"co2_{y}_kg_per_kwh": p.co2_kg_per_kwh[y] for y in atlas.carbon_years},
        "co2_kg_per_kwh": p.co2(atlas.carbon_year),
    }


def site_row(atlas: Atlas, s: Site) -> dict:
    """One site with its numbers and the basis of each (source or assumption)."""
    p = atlas.province(s.province_id)
    return {
        "id": s.id,
        "name": s.label,
        "name_zh": s.name_zh,
        "name_en": s.name_en,
        "kind": s.kind,
        "province": f"{p.name_zh} {p.name_en}",
        "province_id": p.id,
        "hub": s.hub_id,
        "role": s.role,
        "lat": s.lat,
        "lon": s.lon,
        "cpu_cores": s.cpu_cores,
        "gpu_cards": s.gpu_cards,
        "pue": s.pue,
        "pue_basis": s.notes.get("pue", ""),
        "green_share": s.green_share,
        "green_basis": s.notes.get("green", ""),
        "price_cny_per_kwh": s.price_cny_per_kwh,
        "price_basis": s.notes.get("price", ""),
        "tou_area": atlas.tariff_area(s),
        "tou_basis": s.notes.get("tou") or tou_note(atlas, s),
        **co2_columns(atlas, p),
        "co2_basis": p.co2_basis,
        "capacity_basis": s.notes.get("capacity", ""),
        "published_capacity": s.notes.get("published", ""),
        "labels": ";".join(s.labels),
    }


@app.command("sites")
@friendly_errors
def sites_cmd(
    province: ProvinceOpt = None,
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="national-cluster / provincial-dc / ai-center / custom.")
    ] = None,
    as_json: JsonOpt = False,
    scenario: ScenarioOpt = None,
    carbon_year: CarbonYearOpt = None,
) -> None:
    """Sites jobs can run on: modelled cores / GPUs, PUE, green share, price, CO2 and the basis of each."""
    atlas = atlas_for(scenario, carbon_year)
    pid = atlas.find_province(province).id if province else None
    rows = [
        site_row(atlas, s)
        for s in atlas.sites
        if (pid is None or s.province_id == pid) and (kind is None or s.kind == kind)
    ]
    columns = [
        "id",
        "name",
        "kind",
        "province",
        "role",
        "cpu_cores",
        "gpu_cards",
        "pue",
        "pue_basis",
        "green_share",
        "green_basis",
        "price_cny_per_kwh",
        "price_basis",
        "co2_kg_per_kwh",
        "published_capacity",
    ]
    emit(
        for_table(rows, as_json),
        columns,
        as_json=as_json,
        title=f"Sites ({len(rows)}): modelled capacity, signals and their basis (grid CO2 {atlas.carbon_year})",
    )


@app.command("provinces")
@friendly_errors
def provinces_cmd(as_json: JsonOpt = False, scenario: ScenarioOpt = None, carbon_year: CarbonYearOpt = None) -> None:
    """The 31 provinces: grid CO2 factors 2021-2023 (kgCO2/kWh), DC power price (CNY/kWh), population."""
    atlas = atlas_for(scenario, carbon_year)
    rows = [
        {
            "id": p.id,
            "name": f"{p.name_zh} {p.name_en}",
            "capital": f"{p.capital_zh} {p.capital_en}",
            "region": p.region,
            "grid_region": p.grid_region,
            **co2_columns(atlas, p),
            "co2_basis": p.co2_basis,
            "price_cny_per_kwh": p.price_cny_per_kwh,
            "price_basis": p.price_basis,
            "price_note": p.price_note,
            "population_10k": p.population_10k,
            "renewable_weight_pct": p.renewable_weight_pct,
            "non_hydro_weight_pct": p.non_hydro_weight_pct,
        }
        for p in atlas.provinces.values()
    ]
    emit(
        for_table(rows, as_json),
        as_json=as_json,
        title="Provinces: grid CO2 (MEE/NBS), power price, population (NBS 2024)",
    )


@app.command("places")
@friendly_errors
def places_cmd(
    province: ProvinceOpt = None,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="capital / prefecture / county.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cities (demand origins / candidate sites) with adcode, coordinates (cpca) and level."""
    atlas = load_atlas()
    pid = atlas.find_province(province).id if province else None
    rows = [
        {
            "adcode": c.adcode,
            "name": c.label,
            "name_zh": c.name_zh,
            "pinyin": c.pinyin,
            "province": f"{atlas.province(c.province_id).name_zh} {atlas.province(c.province_id).name_en}",
            "province_id": c.province_id,
            "level": c.level,
            "lat": c.lat,
            "lon": c.lon,
        }
        for c in atlas.places
        if (pid is None or c.province_id == pid) and (kind is None or c.level == kind)
    ]
    columns = ["adcode", "name", "name_zh", "province", "level", "lat", "lon"]
    emit(for_table(rows, as_json), columns, as_json=as_json, title=f"Places ({len(rows)}); coordinates from cpca (MIT)")


def capacity_by_role(atlas: Atlas) -> list[dict]:
    """Modelled CPU cores and GPU cards per programme direction (east / west) and site kind."""
    out: dict[tuple[str, str], dict] = {}
    for s in atlas.sites:
        row = out.setdefault(
            (s.role, s.kind), {"role": s.role, "kind": s.kind, "sites": 0, "cpu_cores": 0, "gpu_cards": 0}
        )
        row["sites"] += 1
        row["cpu_cores"] += s.cpu_cores
        row["gpu_cards"] += s.gpu_cards
    return sorted(out.values(), key=lambda r: (r["role"], r["kind"]))


@app.command("summary")
@friendly_errors
def summary_cmd(
    origins: Annotated[
        str, typer.Option("--origins", help="Comma-separated eastern demand cities for the carbon table.")
    ] = DEFAULT_ORIGINS,
    as_json: JsonOpt = False,
    scenario: ScenarioOpt = None,
    carbon_year: CarbonYearOpt = None,
) -> None:
    """Counts, modelled capacity east vs west, and the grid-carbon change of moving work west."""
    atlas = atlas_for(scenario, carbon_year)
    kinds: dict[str, int] = {}
    for s in atlas.sites:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    levels: dict[str, int] = {}
    for c in atlas.places:
        levels[c.level] = levels.get(c.level, 0) + 1
    counts = {
        "provinces": len(atlas.provinces),
        "hubs": len(atlas.hubs),
        "clusters": kinds.get("national-cluster", 0),
        "sites": len(atlas.sites),
        "sites_by_kind": kinds,
        "places": len(atlas.places),
        "places_by_level": levels,
    }
    capacity = capacity_by_role(atlas)
    carbon = carbon_of_moving_west(atlas, [o.strip() for o in origins.split(",") if o.strip()])
    if as_json:
        write_json(
            {"counts": counts, "capacity": capacity, "carbon_of_moving_west": carbon, "co2_year": atlas.carbon_year}
        )
        return
    console.print(
        f"[bold]数纽 atlas[/bold]: {counts['provinces']} provinces, {counts['hubs']} hubs, "
        f"{counts['clusters']} national clusters, {counts['sites']} sites, {counts['places']} places "
        f"({', '.join(f'{v} {k}' for k, v in levels.items())})",
        highlight=False,
    )
    emit(capacity, title="Modelled capacity by direction (platform share of each site, see assumptions)")
    sites = list(dict.fromkeys(r["site"] for r in carbon))
    table = []
    for r in carbon:
        if not table or table[-1]["origin"] != r["origin"]:
            table.append({"origin": r["origin"], "kgCO2/kWh": format(r["origin_co2_kg_per_kwh"], ".4f")})
        table[-1][r["site"]] = f"{r['change_pct']:+.0f}%"
    emit(
        table,
        ["origin", "kgCO2/kWh", *sites],
        title=f"Carbon of moving west: grid CO2 per kWh, site vs origin province ({atlas.carbon_year}, location-based)",
    )
    console.print(
        "[dim]Location-based provincial factors (MEE/NBS); a site's contracted green power (e.g. Horinger's 80% "
        "policy floor) is not in this table. Positive = moving west raises carbon.[/dim]",
        highlight=False,
    )
