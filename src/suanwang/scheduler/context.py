"""The per-scenario scheduling context: sites as arrays, the latency matrix, signals. Built once, read-only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from suanwang.atlas import Atlas, Site
from suanwang.atlas.signals import Signals, build_signals
from suanwang.errors import UnknownPlaceError
from suanwang.network import Network
from suanwang.policy import ResidencyRules, Shield, national_rules


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
    rules: ResidencyRules = field(default_factory=national_rules)
    shield: Shield | None = None  # the rules bound to `sites`; built in __post_init__ when not given

    def __post_init__(self) -> None:
        if self.shield is None:
            self.shield = self.rules.bind(self.sites, set(self.atlas.provinces))
        self.site_ids = [s.id for s in self.sites]
        self.all_sites = np.ones(len(self.sites), dtype=bool)  # the mask every site passes (read-only)
        self.all_sites.setflags(write=False)
        self._label_masks: dict[tuple[str, ...], np.ndarray] = {}
        self._signal_means: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._day_signals: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._moved: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.cost_constants: tuple[float, ...] | None = None  # memo of costs._constants (read on first estimate)
        self.non_green_share = 1.0 - self.green_share  # the share of a site's energy drawn from the grid mix
        # CNY per GB moved between provinces, from the network's (linear) price: x * it == transfer_cost_cny(x)
        self.transfer_cny_per_gb = float(self.network.transfer_cost_cny(1.0, False))

    @classmethod
    def build(
        cls,
        atlas: Atlas,
        network: Network | None = None,
        signals: Signals | None = None,
        sites: list[Site] | None = None,
        rules: ResidencyRules | None = None,
    ) -> SchedulerContext:
        """Precompute the context for `sites` (default: all atlas sites) under residency `rules`
        (default: the national rules, see policy.national_rules)."""
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
            rules=rules or national_rules(),
        )

    def latency_row(self, origin_adcode: str) -> np.ndarray:
        """One-way ms from the origin city to every site."""
        try:
            return self.latency_ms[self.place_index[origin_adcode]]
        except KeyError:
            raise UnknownPlaceError(origin_adcode, [], "origin adcode") from None

    def moved_mask(self, data_province: str) -> np.ndarray:
        """Boolean vector over sites: the site lies outside `data_province` (the input must cross a border);
        memoised per province, read-only."""
        return self.moved_masks(data_province)[0]

    def moved_masks(self, data_province: str) -> tuple[np.ndarray, np.ndarray]:
        """moved_mask(data_province) and the same as floats 1.0 / 0.0 (memoised, read-only)."""
        hit = self._moved.get(data_province)
        if hit is None:
            moved = self.site_province != data_province
            hit = (moved, moved.astype(float))
            for v in hit:
                v.setflags(write=False)
            self._moved[data_province] = hit
        return hit

    def label_mask(self, labels: tuple[str, ...]) -> np.ndarray:
        """Boolean vector over sites: the site carries every one of `labels` (cached per tuple)."""
        hit = self._label_masks.get(labels)
        if hit is None:
            need = frozenset(labels)
            hit = np.array([need <= lab for lab in self.site_labels], dtype=bool)
            self._label_masks[labels] = hit
        return hit

    @staticmethod
    def signal_key(start_h: float, duration_h: float) -> tuple[int, int]:
        """What mean_signals(start_h, duration_h) depends on: (hour of day, whole hours), (-1, 24) for a day or
        more."""
        n = max(1, math.ceil(duration_h))
        return (-1, 24) if n >= 24 else (int(start_h) % 24, n)

    def mean_signals(self, start_h: float, duration_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean (price CNY/kWh, grid kgCO2/kWh) over sites for a run from `start_h` lasting `duration_h` hours;
        memoised per (hour of day, whole hours), as Signals.mean_over computes it."""
        key = self.signal_key(start_h, duration_h)
        hit = self._signal_means.get(key)
        if hit is None:
            hit = self.signals.mean_over(start_h, duration_h)
            self._signal_means[key] = hit
        return hit

    def day_signals(self, duration_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean (price CNY/kWh, grid kgCO2/kWh) for a run lasting `duration_h` hours from each start hour of the day:
        arrays [24, sites] whose row h equals mean_signals(h, duration_h) exactly; memoised per whole hours."""
        n = max(1, math.ceil(duration_h))
        hit = self._day_signals.get(n)
        if hit is None:
            hit = self.signals.window_means(np.arange(24), duration_h)
            self._day_signals[n] = hit
        return hit
