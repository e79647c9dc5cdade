"""Provincial time-of-use (分时电价) tariffs: each site's tariff area, its period of every half hour by month, and
the price of each period (CNY/kWh).

Hours come from the provincial notices (tou_halfhour_bands.csv, derived from tou_tariffs.csv; overlays such as
holiday deep valleys are not applied). Period prices come from State Grid 95598 agency-purchase tables
(tou_prices.csv) where one is shipped for the area; elsewhere the period prices are an assumption: the median
ratio of each period to the flat price over the shipped tables, applied to the area's own hours.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import cache

import numpy as np

from suanwang.atlas.tables import DATA, number, read_csv
from suanwang.errors import DataError

BANDS = "tou_halfhour_bands.csv"
TARIFFS = "tou_tariffs.csv"
PRICES = "tou_prices.csv"
AREAS = "tou_areas.csv"
PERIOD = {"S": "super_peak", "P": "peak", "F": "flat", "V": "valley", "D": "deep_valley"}
CONFIDENCE_RANK = {"A": 0, "B": 1, "C": 2}
MONTHS = range(1, 13)


@dataclass(frozen=True)
class PriceSnapshot:
    """One area's sourced period prices (CNY/kWh) for one month, with its source and confidence grade."""

    area_id: str
    price_month: str
    prices: dict[str, float]  # period -> CNY/kWh
    user_class: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Area:
    """A tariff area: its period code per (month, half hour), notice and hours confidence, and sourced prices."""

    id: str
    province_id: str
    name_zh: str
    codes: dict[int, str]  # month -> 48 period codes (S/P/F/V/D), one per half hour from 00:00
    doc_id: str
    confidence: str
    price: PriceSnapshot | None


@dataclass(frozen=True)
class Tariffs:
    """Every tariff area, the city -> area exceptions, and the period ratios used where no price is sourced."""

    areas: dict[str, Area]
    city_area: dict[str, str]  # prefecture adcode -> area id, where a province has more than one area
    default_ratio: dict[str, float]  # period -> price / flat price (median over the sourced snapshots)

    def area_id(self, province_id: str, adcode: str = "") -> str:
        """The tariff area of a place: its city's area where the province is split, else the province's."""
        return self.city_area.get(adcode[:4] + "00", province_id) if adcode else province_id

    def ratios(self, area_id: str) -> dict[str, float]:
        """Price / flat price per period: from the area's sourced snapshot, the default ratios for the rest."""
        a = self.areas[area_id]
        if a.price is None:
            return dict(self.default_ratio)
        p = a.price.prices
        out = {k: v / p["flat"] for k, v in p.items()}
        out.setdefault("super_peak", out["peak"] * self.default_ratio["super_peak"] / self.default_ratio["peak"])
        out.setdefault("deep_valley", out["valley"] * self.default_ratio["deep_valley"] / self.default_ratio["valley"])
        return out

    def hourly_ratio(self, area_id: str, month: int) -> np.ndarray:
        """24 hourly price / flat price ratios of the area in `month` (each hour the mean of its two half hours)."""
        r = self.ratios(area_id)
        half = np.array([r[PERIOD[c]] for c in self.areas[area_id].codes[month]])
        return half.reshape(24, 2).mean(axis=1)

    def annual_mean_ratio(self, area_id: str) -> float:
        """The time-weighted mean of hourly_ratio over the 12 months (every hour and month weighs the same)."""
        return float(np.mean([self.hourly_ratio(area_id, m) for m in MONTHS]))

    def shape(self, area_id: str, month: int) -> np.ndarray:
        """24 hourly multipliers of the area's annual mean price in `month`. Where prices are sourced the
        month's own level shows (a summer super-peak raises it); elsewhere every month has a mean of 1."""
        h = self.hourly_ratio(area_id, month)
        if self.areas[area_id].price is None:
            return h / h.mean()
        return h / self.annual_mean_ratio(area_id)

    def sourced_mean_cny_per_kwh(self, area_id: str) -> float | None:
        """The area's annual time-weighted mean price (CNY/kWh) from its sourced snapshot, None if none."""
        a = self.areas[area_id]
        return None if a.price is None else a.price.prices["flat"] * self.annual_mean_ratio(area_id)

    def band_hours(self, area_id: str, month: int, period: str) -> list[float]:
        """Start hours (0, 0.5, ... 23.5) of the half hours of `period` in the area and month."""
        return [i / 2 for i, c in enumerate(self.areas[area_id].codes[month]) if PERIOD[c] == period]


def _snapshots() -> dict[str, PriceSnapshot]:
    """The best price snapshot per area: highest confidence, then the latest month."""
    best: dict[str, PriceSnapshot] = {}
    for i, r in enumerate(read_csv(DATA / PRICES), start=2):
        prices = {p: v for p in PERIOD.values() if (v := number(r, p, PRICES, i, allow_empty=True)) is not None}
        for need in ("peak", "flat", "valley"):
            if need not in prices:
                raise DataError(PRICES, i, need, "is empty", "every snapshot needs peak, flat and valley prices")
        snap = PriceSnapshot(
            r["area_id"],
            r["price_month"],
            prices,
            r["user_class"],
            f"{r['official_source']} (via {r['transcribed_via']})",
            r["confidence"],
        )
        old = best.get(snap.area_id)
        key = (-CONFIDENCE_RANK[snap.confidence], snap.price_month)
        if old is None or key > (-CONFIDENCE_RANK[old.confidence], old.price_month):
            best[snap.area_id] = snap
    return best


def _default_ratio(snaps: dict[str, PriceSnapshot]) -> dict[str, float]:
    """Median over the snapshots of peak/flat, valley/flat, super-peak/flat and deep-valley/flat."""
    out = {"flat": 1.0}
    for period in ("super_peak", "peak", "valley", "deep_valley"):
        values = [s.prices[period] / s.prices["flat"] for s in snaps.values() if period in s.prices]
        out[period] = statistics.median(values)
    return out


@cache
def load_tariffs() -> Tariffs:
    """The shipped tariff areas, hours, snapshots and city exceptions (read once; callers must not mutate)."""
    docs: dict[str, tuple[str, str]] = {}
    names: dict[str, tuple[str, str]] = {}
    for r in read_csv(DATA / TARIFFS):
        docs.setdefault(r["area_id"], (r["tou_doc_id"], r["confidence"]))
        names.setdefault(r["area_id"], (r["province_id"], r["grid_area"]))
    codes: dict[str, dict[int, str]] = {}
    for i, r in enumerate(read_csv(DATA / BANDS), start=2):
        cells = [v for k, v in r.items() if k.startswith("t")]
        if len(cells) != 48 or any(c not in PERIOD for c in cells):
            raise DataError(BANDS, i, "t0000..t2330", "needs 48 period codes S/P/F/V/D", "regenerate the file")
        codes.setdefault(r["area_id"], {})[int(r["month"])] = "".join(cells)
    snaps = _snapshots()
    areas = {}
    for area_id, by_month in codes.items():
        if set(by_month) != set(MONTHS):
            raise DataError(BANDS, None, area_id, "does not list all 12 months", "regenerate the file")
        doc, conf = docs[area_id]
        areas[area_id] = Area(area_id, names[area_id][0], names[area_id][1], by_month, doc, conf, snaps.get(area_id))
    city_area = {}
    for i, r in enumerate(read_csv(DATA / AREAS), start=2):
        if r["area_id"] not in areas:
            raise DataError(AREAS, i, "area_id", f"'{r['area_id']}' is not in {BANDS}", "use an area id of that file")
        city_area[r["adcode"]] = r["area_id"]
    return Tariffs(areas, city_area, _default_ratio(snaps))
