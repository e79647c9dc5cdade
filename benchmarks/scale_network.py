"""A synthetic scaling scenario: the national network plus city data centres, up to about 400 sites.

Not atlas data. The national atlas has 42 sites (10 national clusters, 31 provincial DCs, one AI centre); a real
platform also brokers city and edge data centres. To see how the scheduler's cost grows with the number of sites,
`scaled_context(n)` adds n - 42 made-up city data centres, one per city of the atlas's city table:

- which cities: the prefecture-level cities first, in an order drawn from `seed`, then the provincial capitals,
  then the county-level cities (307 + 31 + 25 cities: at most 405 sites);
- where and at what price: at the city centre, as the planner's default candidate there
  (planner.candidates.candidate_site: PUE by the province's region, the default green share, the province's
  average price, its hourly price and carbon profiles);
- how big: the province's provincial DC split evenly among the province's cities (cores and cards, at least
  1,000 cores and 1 card) - small next to a national cluster, as a city DC is;
- labels ("city", "synthetic"): no job of the benchmarks asks for them, so they change no filter.

Each added site has id `city-<adcode>` and kind "city-dc".
"""

from __future__ import annotations

import dataclasses

import numpy as np

from suanwang.atlas import Atlas, Site, load_atlas
from suanwang.planner.candidates import candidate_site
from suanwang.scheduler import SchedulerContext

MIN_CORES, MIN_CARDS = 1000, 1  # the smallest synthetic city DC
LEVEL_ORDER = ("prefecture", "capital", "county")  # which cities get a synthetic DC first


def city_sites(atlas: Atlas, count: int, seed: int = 0) -> list[Site]:
    """`count` synthetic city data centres (see the module docstring), deterministic for `seed`."""
    rng = np.random.default_rng(seed)
    places = []
    for level in LEVEL_ORDER:
        group = sorted((p for p in atlas.places if p.level == level), key=lambda p: p.adcode)
        places += [group[k] for k in rng.permutation(len(group))]
    if count > len(places):
        raise ValueError(f"at most {len(atlas.sites) + len(places)} sites (one per city), asked for more")
    provincial = {s.province_id: s for s in atlas.sites if s.kind == "provincial-dc"}
    cities = {}
    for p in atlas.places:
        cities[p.province_id] = cities.get(p.province_id, 0) + 1
    out = []
    for place in places[:count]:
        dc = provincial.get(place.province_id)
        share = cities[place.province_id]
        cores = max(MIN_CORES, round(dc.cpu_cores / share)) if dc else MIN_CORES
        cards = max(MIN_CARDS, round(dc.gpu_cards / share)) if dc else MIN_CARDS
        site = candidate_site(atlas, place, cores=cores, cards=cards).site
        out.append(
            dataclasses.replace(
                site,
                id=f"city-{place.adcode}",
                name_zh=f"{place.short_zh}城市数据中心（合成）",
                name_en=f"{place.pinyin} city DC (synthetic)",
                kind="city-dc",
                labels=("city", "synthetic"),
                notes={"synthetic": "benchmark scaling scenario (benchmarks/scale_network.py), not atlas data"},
            )
        )
    return out


def scaled_context(n_sites: int, seed: int = 0, atlas: Atlas | None = None) -> tuple[SchedulerContext, dict]:
    """The national context with synthetic city DCs added up to `n_sites` sites (>= the atlas's own), and a
    description of how the sites were made (meta["synthetic"] is True when any was added)."""
    atlas = atlas or load_atlas()
    base = list(atlas.sites)
    if n_sites < len(base):
        raise ValueError(f"n_sites must be >= {len(base)} (the atlas's own sites), got {n_sites}")
    added = city_sites(atlas, n_sites - len(base), seed)
    ctx = SchedulerContext.build(atlas, sites=base + added)
    meta = {
        "sites": len(ctx.sites),
        "atlas_sites": len(base),
        "synthetic_sites": len(added),
        "synthetic": bool(added),
        "seed": seed,
        "how": (
            "one synthetic city DC per city of the atlas's city table (prefecture cities first in a seeded order, "
            "then capitals, then county cities), at the city centre, priced and profiled as the planner's default "
            "candidate there (province price, PUE by region), sized as the province's provincial DC split evenly "
            f"among its cities (at least {MIN_CORES} cores, {MIN_CARDS} card); labels city, synthetic"
        ),
        "cpu_cores_added": int(sum(s.cpu_cores for s in added)),
        "gpu_cards_added": int(sum(s.gpu_cards for s in added)),
    }
    return ctx, meta
