"""Latency-tier coverage: which places lie inside a tier of a site (or candidate city), and the reverse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanwang.atlas import Place, Site
from suanwang.network.geo import great_circle_km
from suanwang.network.model import Network, Node


@dataclass(frozen=True)
class Covered:
    """A place inside the tier, its latency (ms, one-way or RTT as `rtt` says) and distance."""

    place: Place
    latency_ms: float
    km: float
    population_10k: float | None  # province population when the place is a provincial capital


@dataclass(frozen=True)
class Coverage:
    """Result of a coverage query; `rtt` says whether tier and latencies are round-trip."""

    center: Node
    tier_ms: float
    rtt: bool
    covered: list[Covered]

    @property
    def population_10k(self) -> float:
        """Population (10,000 persons) of the provinces whose capitals are covered."""
        return sum(c.population_10k or 0.0 for c in self.covered)


def coverage(net: Network, center: Node, tier_ms: float, *, rtt: bool = False, capitals_only: bool = True) -> Coverage:
    """Places within `tier_ms` of `center` (one-way by default, round-trip if `rtt`), nearest first.

    The center's own city counts like any other (a same-city path pays the metro overhead, so the 1 ms city
    tier covers it). With capitals_only, only the 31 provincial capitals are considered and each carries its
    province population.
    """
    places = net.atlas.capitals if capitals_only else net.atlas.places
    ms = net.matrix_ms([center], places)[0] * (2.0 if rtt else 1.0)
    km = great_circle_km(center.lat, center.lon, np.array([p.lat for p in places]), np.array([p.lon for p in places]))
    pop = {p.capital_zh: p.population_10k for p in net.atlas.provinces.values()}
    out = [
        Covered(p, round(float(m), 3), round(float(k), 1), pop.get(p.short_zh) if p.level == "capital" else None)
        for p, m, k in zip(places, ms, km, strict=True)
        if m <= tier_ms
    ]
    return Coverage(center, tier_ms, rtt, sorted(out, key=lambda c: c.latency_ms))


def serving_sites(net: Network, place: Place, tier_ms: float, *, rtt: bool = False) -> list[tuple[Site, float]]:
    """Sites that serve `place` within `tier_ms` (one-way unless `rtt`), nearest first, with latency in ms."""
    ms = net.matrix_ms([place], net.atlas.sites)[0] * (2.0 if rtt else 1.0)
    return sorted(
        [(s, round(float(m), 3)) for s, m in zip(net.atlas.sites, ms, strict=True) if m <= tier_ms],
        key=lambda t: t[1],
    )
