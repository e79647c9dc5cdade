"""Hourly signals per site: electricity price (CNY/kWh) and grid carbon intensity (kgCO2/kWh).

Price: the site's average price x its own tariff area's time-of-use shape for the month (atlas/tariffs.py:
the provincial notice's hours; period prices sourced from the 95598 tables where shipped, else the median
period ratios; the shape's annual mean is 1). Carbon: no public hourly series exists for Chinese provinces,
so it is the official annual provincial factor x (1 - dip x (solar(h) - mean solar)), where solar(h) is a
clear-sky half-sine from 06:00 to 18:00 (mean 1/pi). With solar's share of consumption s (the province's 2023
non-hydro renewable weight x solar_share_of_non_hydro) displacing fossil generation (share 1 - total
renewable weight) at a constant load, intensity(h) / mean = 1 - pi s (solar(h) - 1/pi) / (1 - total), so
dip = pi s / (1 - total) (solar_dip_of). Provinces without a weight (Tibet) use their grid region's assumed
dip (grid_regions.csv). The daily mean of the carbon shape equals the official annual factor.

A Signals object holds one calendar month's daily profile: a run uses the month of its start date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from suanwang.atlas.loader import DATA, Atlas, read_csv
from suanwang.atlas.model import Site

HOURS = np.arange(24)
DEFAULT_TOU_MONTH = 1  # the month of simulate's default start date (2025-01-06)


def solar_shape() -> np.ndarray:
    """Clear-sky solar output by local hour (0..1): a half-sine between 06:00 and 18:00."""
    return np.clip(np.sin(np.pi * (HOURS + 0.5 - 6.0) / 12.0), 0.0, None)


@dataclass(frozen=True)
class Signals:
    """Daily profiles, one row per site: price_cny_per_kwh[s, h] and grid_kg_per_kwh[s, h] (h = 0..23)."""

    price_cny_per_kwh: np.ndarray
    grid_kg_per_kwh: np.ndarray
    year: int
    month: int = DEFAULT_TOU_MONTH  # calendar month of the time-of-use hours and prices (1..12)

    def __post_init__(self) -> None:
        # Cumulative sums over a doubled (48 h) profile: the sum over hours [h, h + n) of day-wrapping runs is
        # cum[:, h + n] - cum[:, h], so a window mean costs O(1) per site whatever the run length.
        for name in ("price_cny_per_kwh", "grid_kg_per_kwh"):
            prof = getattr(self, name)
            cum = np.zeros((prof.shape[0], 49))
            np.cumsum(np.tile(prof, 2), axis=1, out=cum[:, 1:])
            object.__setattr__(self, f"_cum_{name}", cum)

    def at(self, hour: float) -> tuple[np.ndarray, np.ndarray]:
        """(price, grid carbon) vectors over sites at simulated hour `hour` (hours since midnight of day 0)."""
        h = int(hour) % 24
        return self.price_cny_per_kwh[:, h], self.grid_kg_per_kwh[:, h]

    def mean_over(self, start_h: float, duration_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Average (price, grid carbon) vectors over sites for a run from `start_h` lasting `duration_h` hours:
        the mean over the whole hours [floor(start_h), floor(start_h) + ceil(duration_h)), the daily mean for
        runs of 24 h or more (the same numbers from any start)."""
        n = min(24, max(1, math.ceil(duration_h)))
        h = int(start_h) % 24 if n < 24 else 0
        cp, cg = self._cum_price_cny_per_kwh, self._cum_grid_kg_per_kwh
        return (cp[:, h + n] - cp[:, h]) / n, (cg[:, h + n] - cg[:, h]) / n

    def window_means(self, start_h: np.ndarray, duration_h: float) -> tuple[np.ndarray, np.ndarray]:
        """mean_over for many starts at once: (price, grid carbon) arrays [len(start_h), sites]; row k equals
        mean_over(start_h[k], duration_h) exactly."""
        n = min(24, max(1, math.ceil(duration_h)))
        h = np.floor(np.asarray(start_h, dtype=float)).astype(np.int64) % 24 * (n < 24)
        cp, cg = self._cum_price_cny_per_kwh, self._cum_grid_kg_per_kwh
        return (cp[:, h + n] - cp[:, h]).T / n, (cg[:, h + n] - cg[:, h]).T / n


def solar_dip_of(atlas: Atlas, province_id: str, region_dips: dict[str, float]) -> float:
    """Midday carbon dip of a province (fraction of its annual factor per unit of solar(h) - mean solar), from its
    2023 renewable consumption weights; its grid region's assumed dip where it has none."""
    p = atlas.province(province_id)
    if p.non_hydro_weight_pct is None or p.renewable_weight_pct is None:
        return region_dips[p.grid_region]
    solar = p.non_hydro_weight_pct / 100.0 * atlas.value("solar_share_of_non_hydro")
    return math.pi * solar / (1.0 - p.renewable_weight_pct / 100.0)


def price_profile(atlas: Atlas, site: Site, month: int) -> np.ndarray:
    """24 hourly prices (CNY/kWh) of `site` in calendar `month`: its average price x its area's TOU shape."""
    return site.price_cny_per_kwh * atlas.tariffs.shape(atlas.tariff_area(site), month)


def build_signals(
    atlas: Atlas, sites: list[Site] | None = None, year: int | None = None, month: int = DEFAULT_TOU_MONTH
) -> Signals:
    """Hourly price and carbon profiles for `sites` (default: all atlas sites) using `year`'s CO2 factors
    (default: the atlas's carbon year) and calendar `month`'s time-of-use hours and prices."""
    sites = atlas.sites if sites is None else sites
    year = atlas.carbon_year if year is None else atlas.check_carbon_year(year)
    if month not in range(1, 13):
        raise ValueError(f"month must be 1..12, got {month}")
    dips = {r["grid_region"]: float(r["solar_dip"]) for r in read_csv(DATA / "grid_regions.csv")}
    solar = solar_shape()
    solar = solar - solar.mean()
    price = np.array([price_profile(atlas, s, month) for s in sites]).reshape(len(sites), 24)
    carbon = np.array(
        [
            atlas.province(s.province_id).co2(year) * (1.0 - solar_dip_of(atlas, s.province_id, dips) * solar)
            for s in sites
        ]
    )
    return Signals(price, carbon.reshape(len(sites), 24), year, month)
