"""Load the shipped national atlas (数纽) from the CSV / YAML tables in `atlas/data`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import yaml

from suanwang.atlas.model import DEFAULT_CARBON_YEAR, CarbonYearError, Hub, Place, Province, Site
from suanwang.atlas.places import NameIndex
from suanwang.atlas.tables import DATA, number, read_csv
from suanwang.atlas.tariffs import Tariffs, load_tariffs
from suanwang.errors import DataError


@dataclass
class Assumption:
    """A modelling constant with its unit and its source, or the reasoning of an assumption."""

    value: float
    unit: str
    source: str = ""
    assumption: str = ""


@dataclass
class Atlas:
    """The national dataset: provinces, hubs, sites, places, modelling assumptions, time-of-use shape."""

    provinces: dict[str, Province]
    hubs: dict[str, Hub]
    sites: list[Site]
    places: list[Place]
    assumptions: dict[str, Assumption]
    tariffs: Tariffs  # provincial time-of-use areas, hours and period prices (atlas/tariffs.py)
    carbon_year: int = DEFAULT_CARBON_YEAR  # the year of grid CO2 factors every carbon figure uses
    _site_index: NameIndex[Site] = field(init=False, repr=False)
    _place_index: NameIndex[Place] = field(init=False, repr=False)
    _province_index: NameIndex[Province] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the name indexes after sites or places changed (scenario overrides)."""
        self._site_index = NameIndex("site")
        for s in self.sites:
            self._site_index.add(s, [s.id, s.name_zh, s.name_en], s.label)
        self._place_index = NameIndex("place")
        for p in sorted(self.places, key=lambda p: {"capital": 0, "prefecture": 1}.get(p.level, 2)):
            self._place_index.add(p, [p.adcode, p.name_zh, p.short_zh, p.pinyin], p.label)
        self._province_index = NameIndex("province")
        for pr in self.provinces.values():
            self._province_index.add(pr, [pr.id, pr.adcode, pr.name_zh, pr.name_en], f"{pr.name_zh} {pr.name_en}")
        for pr in self.provinces.values():  # a province name resolves to its capital; English names too
            cap = self._place_index.get(pr.capital_zh) if pr.capital_zh in self._place_index else None
            if cap:
                self._place_index.add(cap, [pr.capital_en, pr.id, pr.name_zh, pr.name_en], cap.label)

    def site(self, name: str) -> Site:
        """The site with this id or name (Chinese or English); UnknownPlaceError suggests close names."""
        return self._site_index.get(name)

    def place(self, name: str) -> Place:
        """The city with this Chinese name, pinyin or adcode; a province name gives its capital."""
        return self._place_index.get(name)

    def province(self, province_id: str) -> Province:
        """The province with this id."""
        return self.provinces[province_id]

    def find_province(self, name: str) -> Province:
        """The province with this id, adcode or name (中文 / English); UnknownPlaceError suggests close names."""
        return self._province_index.get(name)

    @property
    def carbon_years(self) -> list[int]:
        """The years for which every province has a grid CO2 factor."""
        years = set.intersection(*(set(p.co2_kg_per_kwh) for p in self.provinces.values()))
        return sorted(years)

    def check_carbon_year(self, year: int) -> int:
        """`year` if every province has a factor for it; CarbonYearError (naming the years there are) otherwise."""
        if year not in self.carbon_years:
            raise CarbonYearError(year, self.carbon_years)
        return year

    def with_carbon_year(self, year: int | None) -> Atlas:
        """This atlas with `year` as its carbon year (checked); None keeps the current one. Mutates and returns self."""
        if year is not None:
            self.carbon_year = self.check_carbon_year(year)
        return self

    def co2(self, province_id: str) -> float:
        """Grid CO2 factor in kgCO2/kWh of a province in the atlas's carbon year."""
        return self.provinces[province_id].co2(self.carbon_year)

    def tariff_area(self, site: Site) -> str:
        """The time-of-use tariff area of a site: that of the nearest city of its province (tou_areas.csv lists
        the cities of split provinces), else the province's own area."""
        cities = [p for p in self.places if p.province_id == site.province_id]
        if not cities:
            return site.province_id
        near = min(cities, key=lambda p: (p.lat - site.lat) ** 2 + ((p.lon - site.lon) * 0.8) ** 2)
        return self.tariffs.area_id(site.province_id, near.adcode)

    def value(self, key: str) -> float:
        """The value of a named modelling assumption (see data/assumptions.yaml)."""
        return self.assumptions[key].value

    @property
    def capitals(self) -> list[Place]:
        """The 31 provincial capitals, in province order."""
        return [self.place(p.capital_zh) for p in self.provinces.values()]


def _basis(a: Assumption) -> str:
    """'source: ...' or 'assumption: ...' for a modelling constant."""
    return f"source: {a.source}" if a.source else f"assumption: {a.assumption}"


def _price_basis(p: Province, delta_source: str = "") -> str:
    """Where a site's power price comes from: the province price basis, plus any site-specific delta."""
    text = f"{p.price_basis}: {p.price_note} (province {p.name_en})"
    return f"{text}; site delta: {delta_source}" if delta_source else text


CO2_2023 = "co2_factors_2023.csv"


def co2_2023() -> tuple[dict[str, float | None], dict[str, float]]:
    """2023 grid CO2 factors in kgCO2/kWh from the MEE/NBS table (公告2025年第47号): (by province id, None where
    the official table has no row - Tibet; by regional grid)."""
    rows = read_csv(DATA / CO2_2023)
    value = {r["id"]: number(r, "factor_kgco2_per_kwh", CO2_2023, i, allow_empty=True) for i, r in enumerate(rows, 2)}
    scope = {r["id"]: r["scope"] for r in rows}
    return (
        {k: v for k, v in value.items() if scope[k] == "provincial"},
        {k: v for k, v in value.items() if scope[k] == "regional"},
    )


def _co2_2023_of(r: dict[str, str], provincial: dict, regional: dict, i: int) -> float:
    """A province's 2023 factor; a province flagged `assumption` without an official row (Tibet) takes its
    regional grid's 2023 factor, as the 2021 and 2022 columns do."""
    value = provincial.get(r["id"])
    if value is None and r["co2_basis"] == "assumption":
        value = regional.get(r["grid_region"])
    if value is None:
        raise DataError(CO2_2023, None, r["id"], "has no 2023 factor", "add the official row or flag an assumption")
    return value


def _price(r: dict[str, str], f: str, i: int) -> tuple[float, str, str]:
    """(CNY/kWh, basis, note) of a province: the annual time-weighted mean of its sourced time-of-use period
    prices where tou_prices.csv has its area, else provinces.csv's level (sourced or assumption)."""
    tariffs = load_tariffs()
    mean = tariffs.sourced_mean_cny_per_kwh(r["id"]) if r["id"] in tariffs.areas else None
    if mean is None:
        return number(r, "price_cny_per_kwh", f, i), r["price_basis"], r["price_note"]
    snap = tariffs.areas[r["id"]].price
    note = (
        f"time-weighted annual mean of the {snap.price_month} period prices ({snap.user_class}, energy only, "
        f"no demand charge) over the notice's hours; {snap.source}; confidence {snap.confidence}"
    )
    return mean, "sourced", note


RENEWABLE = "renewable_weights.csv"


def renewable_weights() -> dict[str, tuple[float | None, float | None]]:
    """Province id -> (total, non-hydro) 2023 renewable consumption weights in %, None where not assessed."""
    return {
        r["province_id"]: (
            number(r, "total_weight_pct", RENEWABLE, i, allow_empty=True),
            number(r, "non_hydro_weight_pct", RENEWABLE, i, allow_empty=True),
        )
        for i, r in enumerate(read_csv(DATA / RENEWABLE), start=2)
    }


def _provinces() -> dict[str, Province]:
    provincial_2023, regional_2023 = co2_2023()
    weights = renewable_weights()
    pop_rows = read_csv(DATA / "province_population_nbs.csv")
    population = {r["region"]: float(r["2024"]) for r in pop_rows}
    out = {}
    for i, r in enumerate(read_csv(DATA / "provinces.csv"), start=2):
        f = "provinces.csv"
        key = r["name_en"].replace(" ", "")
        if key not in population:
            raise DataError("province_population_nbs.csv", None, "region", f"no row for {r['name_en']}")
        out[r["id"]] = Province(
            id=r["id"],
            adcode=r["adcode"],
            name_zh=r["name_zh"],
            name_en=r["name_en"],
            capital_zh=r["capital_zh"],
            capital_en=r["capital_en"],
            lat=number(r, "capital_lat", f, i),
            lon=number(r, "capital_lon", f, i),
            region=r["region"],
            grid_region=r["grid_region"],
            co2_kg_per_kwh={
                2021: number(r, "co2_2021_kg_per_kwh", f, i),
                2022: number(r, "co2_2022_kg_per_kwh", f, i),
                2023: _co2_2023_of(r, provincial_2023, regional_2023, i),
            },
            co2_basis=r["co2_basis"],
            **dict(zip(("price_cny_per_kwh", "price_basis", "price_note"), _price(r, f, i), strict=True)),
            population_10k=population[key],
            renewable_weight_pct=weights[r["id"]][0],
            non_hydro_weight_pct=weights[r["id"]][1],
        )
    return out


def _assumptions() -> dict[str, Assumption]:
    raw = yaml.safe_load((DATA / "assumptions.yaml").read_text(encoding="utf-8"))
    out = {}
    for key, entry in raw.items():
        if not (entry.get("source") or entry.get("assumption")):
            raise DataError(
                "assumptions.yaml",
                None,
                key,
                "has neither 'source' nor 'assumption'",
                "cite a source or explain the assumption",
            )
        out[key] = Assumption(
            float(entry["value"]), entry["unit"], entry.get("source", ""), entry.get("assumption", "")
        )
    return out


def _clusters(provinces: dict[str, Province], a: dict[str, Assumption]) -> list[Site]:
    hubs_role = {r["id"]: r["role"] for r in read_csv(DATA / "hubs.csv")}
    share, cores = a["platform_share"].value, a["cores_per_server"].value
    sites = []
    for i, r in enumerate(read_csv(DATA / "clusters.csv"), start=2):
        f = "clusters.csv"
        pflops = number(r, "intelligent_pflops_fp16", f, i, allow_empty=True)
        gpus = (pflops / a["pflops_fp16_per_gpu"].value * share) if pflops else number(r, "gpu_cards_assumed", f, i)
        delta = number(r, "price_delta_cny_per_kwh", f, i, allow_empty=True) or 0.0
        sites.append(
            Site(
                id=r["id"],
                name_zh=r["name_zh"],
                name_en=r["name_en"],
                kind="national-cluster",
                province_id=r["province_id"],
                lat=number(r, "lat", f, i),
                lon=number(r, "lon", f, i),
                pue=number(r, "pue", f, i),
                green_share=number(r, "green_share", f, i),
                cpu_cores=round(number(r, "servers_equiv", f, i) * cores * share),
                gpu_cards=round(gpus),
                price_cny_per_kwh=round(provinces[r["province_id"]].price_cny_per_kwh + delta, 4),
                role=hubs_role[r["hub_id"]],
                hub_id=r["hub_id"],
                labels=("national",),
                notes={
                    "pue": r["pue_basis"],
                    "green": r["green_basis"],
                    "capacity": r["servers_basis"],
                    "published": f"{r['published_capacity']} {r['published_unit']} ({r['published_date']}, "
                    f"{r['published_source']})"
                    if r["published_capacity"]
                    else "not found",
                    "coordinates": r["coord_basis"],
                    "price": _price_basis(provinces[r["province_id"]], r["price_delta_source"]),
                },
            )
        )
    return sites


def province_roles(provinces: dict[str, Province]) -> dict[str, str]:
    """The programme direction (east / west) of each province: the role of the hub whose clusters it hosts
    (Sichuan and Chongqing: the demand-side Chengdu-Chongqing hub, east), else west for the NBS west region."""
    hub_role = {r["id"]: r["role"] for r in read_csv(DATA / "hubs.csv")}
    by_cluster = {r["province_id"]: hub_role[r["hub_id"]] for r in read_csv(DATA / "clusters.csv")}
    return {pid: by_cluster.get(pid, "west" if p.region == "west" else "east") for pid, p in provinces.items()}


def _provincial_dcs(provinces: dict[str, Province], a: dict[str, Assumption]) -> list[Site]:
    roles = province_roles(provinces)
    return [
        Site(
            id=f"{p.id}-dc",
            name_zh=f"{p.name_zh}省级数据中心",
            name_en=f"{p.name_en} provincial DC",
            kind="provincial-dc",
            province_id=p.id,
            lat=p.lat,
            lon=p.lon,
            pue=a["provincial_dc_pue"].value,
            green_share=0.0,
            cpu_cores=round(p.population_10k * a["provincial_dc_cores_per_10k_people"].value),
            gpu_cards=round(p.population_10k * a["provincial_dc_gpus_per_10k_people"].value),
            price_cny_per_kwh=p.price_cny_per_kwh,
            role=roles[p.id],
            labels=("provincial", "gov-cloud"),
            notes={
                "pue": _basis(a["provincial_dc_pue"]),
                "green": "assumption: no contracted green power; grid mix",
                "capacity": "assumption: sized by population (provincial_dc_cores_per_10k_people, "
                "provincial_dc_gpus_per_10k_people)",
                "published": "not found",
                "coordinates": "provincial capital (cpca adcodes)",
                "price": _price_basis(p),
            },
        )
        for p in provinces.values()
    ]


def _extra_sites(provinces: dict[str, Province], a: dict[str, Assumption]) -> list[Site]:
    roles = province_roles(provinces)
    out = []
    for i, r in enumerate(read_csv(DATA / "sites_extra.csv"), start=2):
        f = "sites_extra.csv"
        p = provinces[r["province_id"]]
        out.append(
            Site(
                id=r["id"],
                name_zh=r["name_zh"],
                name_en=r["name_en"],
                kind=r["kind"],
                province_id=p.id,
                lat=number(r, "lat", f, i),
                lon=number(r, "lon", f, i),
                pue=a[r["pue_key"]].value,
                green_share=number(r, "green_share", f, i),
                cpu_cores=int(number(r, "cpu_cores", f, i)),
                gpu_cards=int(number(r, "gpu_cards", f, i)),
                price_cny_per_kwh=p.price_cny_per_kwh,
                role=roles[p.id],
                labels=tuple(r["labels"].split(";")),
                notes={
                    "pue": _basis(a[r["pue_key"]]),
                    "green": r["green_basis"],
                    "capacity": r["capacity_basis"],
                    "published": "not found",
                    "coordinates": r["coord_source"],
                    "price": _price_basis(p),
                },
            )
        )
    return out


def _places() -> list[Place]:
    f = "places.csv"
    return [
        Place(
            adcode=r["adcode"],
            name_zh=r["name_zh"],
            short_zh=r["short_zh"],
            pinyin=r["pinyin"],
            province_id=r["province_id"],
            lat=number(r, "lat", f, i),
            lon=number(r, "lon", f, i),
            level=r["level"],
        )
        for i, r in enumerate(read_csv(DATA / f), start=2)
    ]


def build_atlas(provinces: dict[str, Province], assumptions: dict[str, Assumption]) -> Atlas:
    """An atlas built from (possibly overridden) provinces and assumptions plus the shipped site tables.

    Site capacity, price and PUE are derived here, so an override of a province price or of an assumption
    such as platform_share flows into every site that depends on it.
    """
    hubs = {
        r["id"]: Hub(r["id"], r["name_zh"], r["name_en"], r["role"], r["source"]) for r in read_csv(DATA / "hubs.csv")
    }
    sites = (
        _clusters(provinces, assumptions)
        + _extra_sites(provinces, assumptions)
        + _provincial_dcs(provinces, assumptions)
    )
    atlas = Atlas(dict(provinces), hubs, sites, _places(), dict(assumptions), load_tariffs())
    for s in sites:
        s.notes.setdefault("tou", tou_note(atlas, s))
    return atlas


def tou_note(atlas: Atlas, site: Site) -> str:
    """Where a site's time-of-use hours and period prices come from."""
    area = atlas.tariffs.areas[atlas.tariff_area(site)]
    snap = area.price
    prices = (
        f"period prices sourced ({snap.price_month} 95598 table, confidence {snap.confidence})"
        if snap
        else "period prices: assumption (median period / flat ratios of the sourced 95598 tables, scaled to the "
        "site's average price)"
    )
    return f"hours: {area.name_zh} {area.doc_id} (confidence {area.confidence}); {prices}"


@cache
def _load_national() -> Atlas:
    return build_atlas(_provinces(), _assumptions())


def load_atlas(carbon_year: int = DEFAULT_CARBON_YEAR) -> Atlas:
    """The embedded national atlas: 31 provinces, 8 hubs, 10 clusters, Zhongyuan AI centre, 31 provincial DCs;
    carbon figures use `carbon_year`'s grid factors (2021, 2022 or 2023; CarbonYearError otherwise)."""
    base = _load_national()
    atlas = Atlas(
        dict(base.provinces),
        dict(base.hubs),
        list(base.sites),
        list(base.places),
        dict(base.assumptions),
        base.tariffs,
    )
    return atlas.with_carbon_year(carbon_year)


@cache
def china_bounds() -> dict[str, float]:
    """China's bounding box in degrees: lat_min, lat_max, lon_min, lon_max (data/geo_bounds.yaml)."""
    raw = yaml.safe_load((DATA / "geo_bounds.yaml").read_text(encoding="utf-8"))
    return {key: float(entry["value"]) for key, entry in raw.items()}


def inside_china(lat: float, lon: float) -> bool:
    """Whether (lat, lon) in degrees lies inside China's bounding box."""
    b = china_bounds()
    return b["lat_min"] <= lat <= b["lat_max"] and b["lon_min"] <= lon <= b["lon_max"]
