"""The grid-carbon change of moving work west: location-based CO2 factors of a west cluster's province against an
eastern origin's province."""

from __future__ import annotations

from suanwang.atlas.loader import Atlas

DEFAULT_ORIGINS = "北京,上海,广州,深圳,杭州"  # eastern demand cities of `suanwang atlas summary` and docs/data.md


def carbon_of_moving_west(atlas: Atlas, origins: list[str], year: int | None = None) -> list[dict]:
    """Grid CO2 factor ratio (site province / origin province, location-based) for origin city x west cluster,
    with `year`'s factors (default: the atlas's carbon year)."""
    year = atlas.carbon_year if year is None else atlas.check_carbon_year(year)
    west = [s for s in atlas.sites if s.kind == "national-cluster" and s.role == "west"]
    rows = []
    for name in origins:
        city = atlas.place(name)
        origin_co2 = atlas.province(city.province_id).co2(year)
        for s in west:
            site_co2 = atlas.province(s.province_id).co2(year)
            rows.append(
                {
                    "origin": city.label,
                    "site": s.label,
                    "site_id": s.id,
                    "origin_co2_kg_per_kwh": origin_co2,
                    "site_co2_kg_per_kwh": site_co2,
                    "ratio": round(site_co2 / origin_co2, 3),
                    "change_pct": round(100.0 * (site_co2 / origin_co2 - 1.0), 1),
                }
            )
    return rows
