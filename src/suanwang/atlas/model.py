"""The atlas nouns: provinces, hubs, sites (places jobs run) and places (where demand comes from)."""

from __future__ import annotations

from dataclasses import dataclass, field

from suanwang.errors import SuanwangError

DEFAULT_CARBON_YEAR = 2023  # the latest year of official MEE/NBS provincial factors (公告2025年第47号)


class CarbonYearError(SuanwangError):
    """A carbon year the atlas has no factors for (the message names the years it has)."""

    def __init__(self, year: int, years: list[int]):
        have = ", ".join(str(y) for y in years)
        super().__init__(
            f"carbon year {year}: the atlas has grid CO2 factors for {have} only"
            f" - use one of those (e.g. --carbon-year {years[-1]})"
        )
        self.year, self.years = year, years


@dataclass(frozen=True)
class Province:
    """A provincial-level unit with its grid carbon factor (kgCO2/kWh by year) and data-centre power price."""

    id: str
    adcode: str
    name_zh: str
    name_en: str
    capital_zh: str
    capital_en: str
    lat: float
    lon: float
    region: str  # NBS economic region: east / central / west / northeast
    grid_region: str
    co2_kg_per_kwh: dict[int, float]
    co2_basis: str  # "official" (MEE/NBS tables) or "assumption" (Tibet: no official row in any year)
    price_cny_per_kwh: float
    price_basis: str  # "sourced" or "assumption"
    price_note: str
    population_10k: float  # NBS year-end resident population, 10,000 persons
    renewable_weight_pct: float | None = None  # 2023 renewable consumption weight, % (发改办能源〔2023〕569号)
    non_hydro_weight_pct: float | None = None  # its non-hydro part, %; None where not assessed (Tibet)

    def co2(self, year: int = DEFAULT_CARBON_YEAR) -> float:
        """Grid CO2 factor in kgCO2/kWh for `year`; CarbonYearError when the province has no factor for it."""
        try:
            return self.co2_kg_per_kwh[year]
        except KeyError:
            raise CarbonYearError(year, sorted(self.co2_kg_per_kwh)) from None


@dataclass(frozen=True)
class Hub:
    """One of the 8 national computing hub nodes (国家算力枢纽节点)."""

    id: str
    name_zh: str
    name_en: str
    role: str  # east / west
    source: str


@dataclass(frozen=True)
class Site:
    """A place jobs can run: a national cluster, a provincial data centre, an AI computing centre.

    Capacity is what the model schedules (CPU cores, GPU cards); `published` keeps the cluster's own
    figure in its own unit, never added to anything else.
    """

    id: str
    name_zh: str
    name_en: str
    kind: str  # national-cluster / provincial-dc / ai-center / custom
    province_id: str
    lat: float
    lon: float
    pue: float
    green_share: float  # fraction of consumption covered by contracted green power, 0..1
    cpu_cores: int
    gpu_cards: int
    price_cny_per_kwh: float  # average (daily-mean) price for this site's load
    role: str = "east"  # east / west: the programme's direction of the site
    hub_id: str = ""
    labels: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        """Bilingual display name: 中文 English."""
        return f"{self.name_zh} {self.name_en}"


@dataclass(frozen=True)
class Place:
    """A prefecture-level city (or municipality / county-level city): a demand origin or candidate site."""

    adcode: str
    name_zh: str
    short_zh: str
    pinyin: str
    province_id: str
    lat: float
    lon: float
    level: str  # capital / prefecture / county

    @property
    def label(self) -> str:
        """Bilingual display name: 中文 Pinyin."""
        return f"{self.short_zh} {self.pinyin}"
