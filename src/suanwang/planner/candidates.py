"""Candidate hub sites: one per city, each with the assumptions it is planned with (and where they come from).

A candidate is a `Site` at a city centre with kind "candidate"; its capacity, PUE, green share, price and
carbon factor come from the atlas through `data/candidates.yaml`. A scenario site labelled `candidate`
replaces the default candidate of its city (its own numbers and basis), and is not an existing site.
"""

from __future__ import annotations

import importlib.resources
import statistics
from dataclasses import dataclass, field

import yaml

from suanwang.atlas import Atlas, Place, Site
from suanwang.errors import SuanwangError, UnknownPlaceError

DATA = importlib.resources.files("suanwang.planner") / "data"
CANDIDATE_LABEL = "candidate"
REGIONS = ("east", "central", "west", "northeast")


class PlanError(SuanwangError):
    """A planner option is invalid (names the option and the fix)."""


@dataclass(frozen=True)
class Candidate:
    """A city where a new hub could go, the site it would be, and the basis of each assumption."""

    place: Place
    site: Site
    basis: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Bilingual city name: 许昌 Xuchang."""
        return self.place.label


def load_defaults() -> dict:
    """The default candidate assumptions (planner/data/candidates.yaml)."""
    return yaml.safe_load((DATA / "candidates.yaml").read_text(encoding="utf-8"))


def _basis(entry: dict) -> str:
    return f"source: {entry['source']}" if entry.get("source") else f"assumption: {entry['assumption']}"


def default_capacity(atlas: Atlas) -> tuple[int, int]:
    """(CPU cores, GPU cards) of a default candidate: the median of the atlas's national clusters."""
    clusters = [s for s in atlas.sites if s.kind == "national-cluster" and CANDIDATE_LABEL not in s.labels]
    if not clusters:
        raise PlanError("the atlas has no national clusters to size a candidate by - give --cores and --cards")
    return round(statistics.median(s.cpu_cores for s in clusters)), round(
        statistics.median(s.gpu_cards for s in clusters)
    )


def candidate_site(
    atlas: Atlas,
    place: Place,
    *,
    cores: int | None = None,
    cards: int | None = None,
    green_share: float | None = None,
    carbon_year: int | None = None,
) -> Candidate:
    """The default candidate at `place` (overrides: cores, cards, green share 0..1)."""
    d = load_defaults()
    province = atlas.province(place.province_id)
    west = province.region == "west"
    default_cores, default_cards = default_capacity(atlas)
    pue_key = "pue_west" if west else "pue_east"
    green = d["green_share"]["value"] if green_share is None else green_share
    site = Site(
        id=f"cand-{place.adcode}",
        name_zh=f"{place.short_zh}枢纽（候选）",
        name_en=f"{place.pinyin} hub (candidate)",
        kind="candidate",
        province_id=province.id,
        lat=place.lat,
        lon=place.lon,
        pue=float(d[pue_key]["value"]),
        green_share=float(green),
        cpu_cores=int(default_cores if cores is None else cores),
        gpu_cards=int(default_cards if cards is None else cards),
        price_cny_per_kwh=province.price_cny_per_kwh,
        role="west" if west else "east",
        labels=("national", CANDIDATE_LABEL),
    )
    cap = "given on the command line" if cores is not None or cards is not None else _basis(d["capacity"])
    year = "" if carbon_year is None else f" {carbon_year}"
    basis = {
        "capacity": cap,
        "pue": _basis(d[pue_key]),
        "green_share": "given on the command line" if green_share is not None else _basis(d["green_share"]),
        "price": f"{_basis(d['price'])}; {province.name_en}: {province.price_basis} ({province.price_note})",
        "carbon": f"{_basis(d['carbon'])}; {province.name_en}{year}: {province.co2_basis}",
    }
    return Candidate(place, site, basis)


def scenario_candidates(atlas: Atlas) -> tuple[list[Site], dict[str, Site]]:
    """(existing sites, candidate sites by city adcode) of an atlas whose scenario labels some sites `candidate`.

    A labelled site belongs to the city nearest its position (it sits at the centre when placed by city)."""
    existing, by_city = [], {}
    for s in atlas.sites:
        if CANDIDATE_LABEL in s.labels:
            city = min(atlas.places, key=lambda p: (p.lat - s.lat) ** 2 + (p.lon - s.lon) ** 2)
            by_city[city.adcode] = s
        else:
            existing.append(s)
    return existing, by_city


def select_places(
    atlas: Atlas, names: list[str] | None = None, province: str | None = None, region: str | None = None
) -> list[Place]:
    """The candidate cities: the named ones (--candidates), else those of a province or region, else all."""
    if names:
        out = []
        for n in names:
            try:
                out.append(atlas.place(n))
            except UnknownPlaceError as e:
                raise PlanError(f"--candidates: {e} - use a city name, pinyin or adcode") from None
        places = list(dict.fromkeys(out))
    else:
        places = list(atlas.places)
    if province:
        try:
            pid = atlas.find_province(province).id
        except UnknownPlaceError as e:
            raise PlanError(f"--province: {e} - use a province name or id such as 河南 or henan") from None
        places = [p for p in places if p.province_id == pid]
    if region:
        if region not in REGIONS:
            raise PlanError(f"--region: '{region}' is not a region - use one of {', '.join(REGIONS)}")
        places = [p for p in places if atlas.province(p.province_id).region == region]
    if not places:
        raise PlanError("no candidate city is left after --candidates / --province / --region - widen the selection")
    return places


def build_candidates(
    atlas: Atlas,
    places: list[Place],
    *,
    cores: int | None = None,
    cards: int | None = None,
    green_share: float | None = None,
    carbon_year: int | None = None,
) -> tuple[list[Site], list[Candidate]]:
    """(existing sites, candidates at `places`): scenario-labelled candidates replace the default of their city."""
    existing, labelled = scenario_candidates(atlas)
    out = []
    for p in places:
        if p.adcode in labelled:
            s = labelled[p.adcode]
            note = s.notes.get("scenario", "scenario")
            basis = {k: s.notes.get(n, f"scenario {note}") for k, n in _NOTE_OF.items()}
            out.append(Candidate(p, s, basis))
        else:
            out.append(
                candidate_site(atlas, p, cores=cores, cards=cards, green_share=green_share, carbon_year=carbon_year)
            )
    return existing, out


_NOTE_OF = {"capacity": "capacity", "pue": "pue", "green_share": "green", "price": "price", "carbon": "carbon"}
