"""The per-scenario scheduling context: sites as arrays, the latency matrix, signals. Built once, read-only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanwang.atlas import Atlas, Site
from suanwang.atlas.signals import Signals, build_signals
from suanwang.errors import UnknownPlaceError
from suanwang.network import Network


@dataclass
class SchedulerContext:
    """Everything static a policy needs, vectorised over sites (index s) and places (index p).

    latency_ms[p, s] is one-way ms from place p to site s. Arrays over sites follow `sites` order, which is
    also the order of ClusterState arrays built from the same list.
    """

    atlas: Atlas
    network: Network
    signals: Signals
    sites: list[Site]
    place_index: dict[str, int]  # adcode -> row of latency_ms
    latency_ms: np.ndarray  # [places, sites], one-way
    site_province: np.ndarray  # [sites] province id (str)
    pue: np.ndarray
    green_share: np.ndarray
    site_labels: list[frozenset[str]]

    @classmethod
    def build(
        cls,
        atlas: Atlas,
        network: Network | None = None,
        signals: Signals | None = None,
        sites: list[Site] | None = None,
    ) -> SchedulerContext:
        """Precompute the context for `sites` (default: all atlas sites)."""
        network = network or Network(atlas)
        sites = list(atlas.sites if sites is None else sites)
        signals = signals or build_signals(atlas, sites)
        places = atlas.places
        return cls(
            atlas=atlas,
            network=network,
            signals=signals,
            sites=sites,
            place_index={p.adcode: i for i, p in enumerate(places)},
            latency_ms=network.matrix_ms(places, sites),
            site_province=np.array([s.province_id for s in sites]),
            pue=np.array([s.pue for s in sites]),
            green_share=np.array([s.green_share for s in sites]),
            site_labels=[frozenset(s.labels) for s in sites],
        )

    def latency_row(self, origin_adcode: str) -> np.ndarray:
        """One-way ms from the origin city to every site."""
        try:
            return self.latency_ms[self.place_index[origin_adcode]]
        except KeyError:
            raise UnknownPlaceError(origin_adcode, [], "origin adcode") from None
