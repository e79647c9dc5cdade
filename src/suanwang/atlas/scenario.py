"""Scenario files: one YAML (plus optional CSVs) that adds or overrides sites, province prices and carbon
factors, modelling assumptions and measured latencies on top of the national atlas.

The format is documented in docs/data.md. Every error names the file, the row (for CSVs) and the field,
and says how to fix it; pydantic's ValidationError never leaks out (it becomes a ScenarioError).
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from suanwang.atlas.loader import Assumption, Atlas, build_atlas, inside_china, load_atlas, province_roles
from suanwang.atlas.model import CarbonYearError, Province, Site
from suanwang.errors import ScenarioError, UnknownPlaceError
from suanwang.safeio import has_control, load_yaml, read_text, shown

if TYPE_CHECKING:  # network sits above atlas in the layers; only load_scenario builds one, imported late
    from suanwang.network.model import Network

SITE_KINDS = ("national-cluster", "provincial-dc", "ai-center", "edge", "custom")
DOCS = "see docs/data.md, 'Scenario files'"
NOTE_KEYS = {
    "pue": "pue",
    "green_share": "green",
    "cpu_cores": "capacity",
    "gpu_cards": "capacity",
    "price_cny_per_kwh": "price",
}


class Strict(BaseModel):
    """Base model: unknown keys are errors (a typo must not be silently ignored); numbers are finite."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


def _no_control(text: str) -> str:
    if has_control(text) is not None:
        raise ValueError(f"{shown(text)} contains a control character - remove it")
    return text


Text = Annotated[str, Field(max_length=200), AfterValidator(_no_control)]  # names, labels: no control characters


class SiteSpec(Strict):
    """A site to add (new id) or override (existing id; only the given fields change)."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    name_zh: Text | None = None
    name_en: Text | None = None
    kind: Literal[SITE_KINDS] | None = None  # type: ignore[valid-type]
    province: str | None = None  # id or name; default: the city's province
    city: str | None = None  # a city name places the site at the city centre
    lat: float | None = Field(None, ge=-90.0, le=90.0)
    lon: float | None = Field(None, ge=-180.0, le=180.0)
    pue: float | None = Field(None, ge=1.0)
    green_share: float | None = Field(None, ge=0.0, le=1.0)
    cpu_cores: int | None = Field(None, ge=0)
    gpu_cards: int | None = Field(None, ge=0)
    price_cny_per_kwh: float | None = Field(None, gt=0.0)
    role: Literal["east", "west"] | None = None
    hub_id: Text | None = None
    labels: list[Text] | None = None
    basis: str | None = None  # where the numbers come from, or "assumption: why"

    @model_validator(mode="after")
    def _lat_lon_together(self) -> SiteSpec:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither (then city places the site)")
        return self


class ProvinceSpec(Strict):
    """Overrides of one province: power price (CNY/kWh) and grid CO2 factors (kgCO2/kWh by year)."""

    price_cny_per_kwh: float | None = Field(None, gt=0.0)
    co2_kg_per_kwh: dict[int, float] | None = None
    population_10k: float | None = Field(None, gt=0.0)
    basis: str | None = None

    @model_validator(mode="after")
    def _co2_non_negative(self) -> ProvinceSpec:
        for year, value in (self.co2_kg_per_kwh or {}).items():
            if value < 0:
                raise ValueError(f"co2_kg_per_kwh[{year}] must be >= 0 kgCO2/kWh, got {value}")
        return self


class AssumptionSpec(Strict):
    """A new value for a modelling assumption, with the reason."""

    value: float = Field(ge=0.0)
    note: str = ""


class NetworkSpec(Strict):
    """Latency model parameters and a measured matrix (CSV a,b,one_way_ms) that overrides pairs."""

    route_factor: float | None = Field(None, gt=0.0)
    overhead_ms: float | None = Field(None, ge=0.0)
    measured_csv: str | None = None


class SimulationSpec(Strict):
    """Defaults for `suanwang simulate --scenario` (an option given on the command line wins)."""

    days: float | None = Field(None, gt=0.0)
    jobs: int | None = Field(None, ge=1)
    policies: list[Text] | None = None


class ScenarioFile(Strict):
    """The YAML document."""

    name: Text = Field(min_length=1)
    description: str = ""
    carbon_year: int | None = None  # year of the grid CO2 factors (default: the atlas default, 2023)
    assumptions: dict[str, Annotated[float, Field(ge=0.0)] | AssumptionSpec] = Field(default_factory=dict)
    provinces: dict[str, ProvinceSpec] = Field(default_factory=dict)
    sites: list[SiteSpec] = Field(default_factory=list)
    sites_csv: str | None = None
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    tenants: str | dict[str, Any] | None = None  # a tenancy file (relative to the YAML) or its content inline
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)


@dataclass
class Scenario:
    """A loaded scenario: its atlas (overrides applied) and network (parameters and measured pairs applied)."""

    name: str
    description: str
    path: Path
    atlas: Atlas
    network: Network
    added_sites: list[str]
    overridden_sites: list[str]
    tenancy: Any = None  # policy.quotas.Tenancy of the `tenants` section (None: no tenants)
    simulation: SimulationSpec | None = None


def _loc(loc: tuple) -> str:
    """pydantic location ('sites', 0, 'pue') -> 'sites[0].pue'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _from_validation(e: ValidationError, file: str, row: int | None = None, prefix: str = "") -> ScenarioError:
    """The first pydantic error as a ScenarioError naming file, row and field, with a fix."""
    err = e.errors()[0]
    if isinstance(err["input"], dict | list):  # a union (number or mapping): report the branch that was meant
        same = [x for x in e.errors() if x["loc"][:2] == err["loc"][:2]]
        err = max(same, key=lambda x: len(x["loc"]))
    skip = ("float", "function-after", "constrained-", "AssumptionSpec")
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(skip)))
    field = prefix + _loc(loc) if loc else (prefix or None)
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    given = f" (got {shown(err['input'])})" if err["type"] != "missing" else ""
    if err["type"] == "extra_forbidden":
        model = {"sites": SiteSpec, "provinces": ProvinceSpec, "network": NetworkSpec}.get(str(loc[0]), ScenarioFile)
        if row is not None:
            model = SiteSpec
        allowed = ", ".join(model.model_fields)
        problem, fix = "is not a known field", f"check the spelling; allowed: {allowed}"
    else:
        problem, fix = err["msg"].removeprefix("Value error, ") + given, DOCS
    return ScenarioError(file, row, field, problem + more, fix)


def _read_yaml(path: Path) -> dict:
    raw = load_yaml(path, error=ScenarioError)  # size, depth and alias limits; UTF-8 checked
    if not isinstance(raw, dict):
        raise ScenarioError(str(path), None, None, "must be a YAML mapping with at least 'name:'", DOCS)
    return raw


def _read_sites_csv(path: Path, where: str) -> list[tuple[int, SiteSpec]]:
    """Rows of a sites CSV as (line number, SiteSpec); '#' lines are comments, labels are ';'-separated."""
    lines = read_text(path, shown_as=where, error=ScenarioError).splitlines(keepends=True)
    data = [(n, line) for n, line in enumerate(lines, start=1) if line.strip() and not line.startswith("#")]
    if not data:
        raise ScenarioError(where, None, None, "is empty", "add a header row with at least 'id'")
    header = [h.strip() for h in next(csv.reader([data[0][1]]))]
    for i, h in enumerate(header):
        if h in header[:i]:
            raise ScenarioError(where, data[0][0], shown(h)[1:-1], "is a repeated column", "name each column once")
    out = []
    for (n, _), row in zip(data[1:], csv.DictReader(line for _, line in data), strict=False):
        values = {k.strip(): v for k, v in row.items() if k is not None and v is not None and v.strip() != ""}
        if "labels" in values:
            values["labels"] = [x for x in values["labels"].split(";") if x.strip()]
        try:
            out.append((n, SiteSpec.model_validate(values)))
        except ValidationError as e:
            raise _from_validation(e, where, n) from None
    return out


def _apply_provinces(spec: ScenarioFile, base: Atlas, file: str) -> dict[str, Province]:
    provinces = dict(base.provinces)
    for key, ps in spec.provinces.items():
        try:
            p = base.find_province(key)
        except UnknownPlaceError as e:
            raise ScenarioError(file, None, f"provinces.{key}", str(e), "use a province id or name") from None
        changes: dict = {}
        note = ps.basis or f"scenario {spec.name}"
        if ps.price_cny_per_kwh is not None:
            changes.update(price_cny_per_kwh=ps.price_cny_per_kwh, price_basis="scenario", price_note=note)
        if ps.co2_kg_per_kwh:
            changes.update(co2_kg_per_kwh={**p.co2_kg_per_kwh, **ps.co2_kg_per_kwh}, co2_basis="scenario")
        if ps.population_10k is not None:
            changes.update(population_10k=ps.population_10k)
        provinces[p.id] = replace(p, **changes)
    return provinces


def _apply_assumptions(spec: ScenarioFile, base: Atlas, file: str) -> dict[str, Assumption]:
    out = dict(base.assumptions)
    for key, a in spec.assumptions.items():
        if key not in out:
            close = difflib.get_close_matches(key, out, n=3)
            hint = f"did you mean: {', '.join(close)}?" if close else "see src/suanwang/atlas/data/assumptions.yaml"
            raise ScenarioError(file, None, f"assumptions.{key}", "is not a known assumption", hint)
        value, note = (a, "") if isinstance(a, float) else (a.value, a.note)
        out[key] = Assumption(value, out[key].unit, assumption=note or f"scenario {spec.name}")
    return out


def _site(atlas: Atlas, spec: SiteSpec, old: Site | None, scenario: str, file: str, row: int | None, where: str):
    """Build the new or overridden site from `spec`; errors name `file`, `row` and the field at `where`."""

    def fail(field: str, problem: str, fix: str) -> ScenarioError:
        return ScenarioError(file, row, f"{where}{field}", problem, fix)

    if old is None:
        for name in ("name_zh", "pue", "cpu_cores", "gpu_cards", "basis"):
            if getattr(spec, name) is None:
                raise fail(name, "is required for a new site", f"give {name} ({DOCS})")
        if spec.city is None and spec.lat is None:
            raise fail("city", "a new site needs a position", "give city (e.g. 许昌) or lat and lon with province")
    city = None
    if spec.city is not None:
        try:
            city = atlas.place(spec.city)
        except UnknownPlaceError as e:
            raise fail("city", str(e), "use a city name, pinyin or adcode") from None
    province_id = old.province_id if old else None
    if spec.province is not None:
        try:
            province_id = atlas.find_province(spec.province).id
        except UnknownPlaceError as e:
            raise fail("province", str(e), "use a province id or name") from None
    elif city is not None:
        province_id = city.province_id
    if province_id is None:
        raise fail("province", "is required when the site is placed by lat/lon", "give province (e.g. henan)")
    lat = spec.lat if spec.lat is not None else city.lat if city else old.lat
    lon = spec.lon if spec.lon is not None else city.lon if city else old.lon
    if not inside_china(lat, lon):
        raise fail("lat", f"({lat}, {lon}) lies outside China's bounding box", "check lat/lon order and sign")
    province = atlas.province(province_id)
    fields = {
        k: v
        for k, v in spec.model_dump(exclude={"id", "city", "province", "basis", "lat", "lon"}).items()
        if v is not None
    }
    if "labels" in fields:
        fields["labels"] = tuple(fields["labels"])
    fields.update(lat=lat, lon=lon, province_id=province_id)
    basis = spec.basis or f"scenario {scenario}"
    notes = {note: basis for name, note in NOTE_KEYS.items() if getattr(spec, name) is not None}
    if city is not None or spec.lat is not None:
        notes["coordinates"] = f"city centre of {city.label} (cpca adcodes)" if spec.lat is None else basis
    if old is not None:
        return replace(old, **fields, notes={**old.notes, **notes, "scenario": scenario})
    return Site(
        id=spec.id,
        name_zh=spec.name_zh,
        name_en=spec.name_en or spec.id,
        kind=spec.kind or "custom",
        province_id=province_id,
        lat=lat,
        lon=lon,
        pue=spec.pue,
        green_share=spec.green_share or 0.0,
        cpu_cores=spec.cpu_cores,
        gpu_cards=spec.gpu_cards,
        price_cny_per_kwh=spec.price_cny_per_kwh or province.price_cny_per_kwh,
        role=spec.role or province_roles(atlas.provinces)[province_id],
        hub_id=spec.hub_id or "",
        labels=tuple(spec.labels or ()),
        notes={
            "published": "not found",
            "price": f"{province.price_basis}: {province.price_note} (province {province.name_en})",
            **{k: basis for k in ("pue", "green", "capacity")},
            **notes,
            "scenario": scenario,
        },
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML; returns its atlas and network with every override applied.

    Raises ScenarioError naming the file, row (CSV) and field, and the fix, for any invalid input.
    """
    from suanwang.network.model import Network  # network sits above atlas; imported late by design

    path = Path(path)
    file = str(path)
    raw = _read_yaml(path)
    try:
        spec = ScenarioFile.model_validate(raw)
    except ValidationError as e:
        raise _from_validation(e, file) from None
    base = load_atlas()
    atlas = build_atlas(_apply_provinces(spec, base, file), _apply_assumptions(spec, base, file))
    try:
        atlas.with_carbon_year(spec.carbon_year)
    except CarbonYearError as e:
        years = ", ".join(map(str, e.years))
        raise ScenarioError(
            file, None, "carbon_year", f"{e.year} has no grid CO2 factors", f"use one of {years}"
        ) from None
    entries: list[tuple[str, int | None, str, SiteSpec]] = []
    if spec.sites_csv:
        csv_name = str(path.parent / spec.sites_csv)
        entries += [(csv_name, n, "", s) for n, s in _read_sites_csv(path.parent / spec.sites_csv, csv_name)]
    entries += [(file, None, f"sites[{i}].", s) for i, s in enumerate(spec.sites)]
    by_id = {s.id: i for i, s in enumerate(atlas.sites)}
    added, overridden = [], []
    for f, row, where, s in entries:
        old = atlas.sites[by_id[s.id]] if s.id in by_id else None
        site = _site(atlas, s, old, spec.name, f, row, where)
        if old is None:
            by_id[s.id] = len(atlas.sites)
            atlas.sites.append(site)
            added.append(s.id)
        else:
            atlas.sites[by_id[s.id]] = site
            overridden.append(s.id)
    atlas.reindex()
    net = Network(atlas)
    if spec.network.route_factor is not None:
        net.route_factor = spec.network.route_factor
    if spec.network.overhead_ms is not None:
        net.overhead_ms = spec.network.overhead_ms
    if spec.network.measured_csv:
        csv_path = path.parent / spec.network.measured_csv
        if not csv_path.is_file():
            raise ScenarioError(
                file, None, "network.measured_csv", f"'{csv_path}' not found", "path is relative to the YAML"
            )
        net.load_measured(csv_path, error=ScenarioError, file=str(csv_path))
    tenancy = _tenancy(spec, atlas, path) if spec.tenants is not None else None
    return Scenario(
        spec.name,
        spec.description,
        path,
        atlas,
        net,
        added,
        list(dict.fromkeys(overridden)),
        tenancy,
        spec.simulation,
    )


def _tenancy(spec: ScenarioFile, atlas: Atlas, path: Path):
    """The scenario's tenancy (docs/tenancy.md): a file next to the YAML or inline; its errors name the file
    (an inline section: '<scenario> tenants'), the rule number and the field."""
    from suanwang.policy.quotas import load_tenancy, parse_tenancy  # policy sits above atlas; imported late

    if isinstance(spec.tenants, str):
        file = path.parent / spec.tenants
        if not file.is_file():
            raise ScenarioError(
                str(path), None, "tenants", f"'{spec.tenants}' not found", "path is relative to the YAML"
            )
        return load_tenancy(file, atlas)
    return parse_tenancy(spec.tenants, atlas, f"{path.name} tenants")
