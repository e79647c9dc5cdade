"""数网 network: one-way latency, bandwidth, transfer time and transfer cost between places and sites.

Every latency here is ONE-WAY in ms unless a name says `rtt`; round trip = 2 x one-way.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from suanwang.atlas import Atlas, Place, Site
from suanwang.errors import DataError, UnknownPlaceError
from suanwang.network.calibration import calibrate, model_ms
from suanwang.network.geo import great_circle_km
from suanwang.safeio import read_text, shown

Node = Place | Site

# The programme's latency tiers, one-way ms: city 1 ms, province 5 ms, hub-to-hub 20 ms.
TIERS_MS = {"city": 1.0, "province": 5.0, "hub": 20.0}


def node_key(node: Node) -> str:
    """Stable key of a node for the override table: 'site:<id>' or 'place:<adcode>'."""
    return f"site:{node.id}" if isinstance(node, Site) else f"place:{node.adcode}"


@dataclass
class Network:
    """The latency / bandwidth / transfer model of the atlas.

    one_way_ms = route_factor * km / 200 + overhead_ms - (overhead_ms - metro_overhead_ms) * exp(-km / metro_km)
    (calibrated, see network.calibration): a metro regime (same-city pairs pay metro_overhead_ms, so the 1 ms
    city tier is reachable) and a long-haul regime (overhead_ms). Pairs in the measured override table win.
    """

    atlas: Atlas
    route_factor: float = field(default_factory=lambda: calibrate().route_factor)
    overhead_ms: float = field(default_factory=lambda: calibrate().overhead_ms)
    overrides: dict[tuple[str, str], float] = field(default_factory=dict)
    metro_overhead_ms: float = field(default_factory=lambda: calibrate().metro_overhead_ms)
    metro_km: float = field(default_factory=lambda: calibrate().metro_km)

    # --- latency -------------------------------------------------------------------------------------
    def model_ms(self, km) -> np.ndarray:
        """Modelled one-way latency in ms for great-circle distance(s) `km` (metro and long-haul regimes)."""
        return model_ms(km, self.route_factor, self.overhead_ms, self.metro_overhead_ms, self.metro_km)

    def one_way_ms(self, a: Node, b: Node) -> float:
        """One-way latency a -> b in ms (symmetric)."""
        key = (node_key(a), node_key(b))
        if key in self.overrides:
            return self.overrides[key]
        return float(self.model_ms(great_circle_km(a.lat, a.lon, b.lat, b.lon)))

    def rtt_ms(self, a: Node, b: Node) -> float:
        """Round-trip time a -> b -> a in ms (2 x one-way)."""
        return 2.0 * self.one_way_ms(a, b)

    def matrix_ms(self, origins: list[Node], targets: list[Node]) -> np.ndarray:
        """One-way latency matrix [len(origins), len(targets)] in ms, vectorised; overrides applied."""
        olat = np.array([o.lat for o in origins])[:, None]
        olon = np.array([o.lon for o in origins])[:, None]
        tlat = np.array([t.lat for t in targets])[None, :]
        tlon = np.array([t.lon for t in targets])[None, :]
        m = self.model_ms(great_circle_km(olat, olon, tlat, tlon))
        if self.overrides:
            oi: dict[str, list[int]] = {}
            ti: dict[str, list[int]] = {}
            for i, o in enumerate(origins):  # a node may appear more than once
                oi.setdefault(node_key(o), []).append(i)
            for j, t in enumerate(targets):
                ti.setdefault(node_key(t), []).append(j)
            for (a, b), ms in self.overrides.items():
                if a in oi and b in ti:
                    m[np.ix_(oi[a], ti[b])] = ms
        return m

    def set_measured(self, a: Node, b: Node, one_way_ms: float) -> None:
        """Override the model for the pair a-b (both directions) with a measured one-way latency."""
        if not np.isfinite(one_way_ms) or one_way_ms < 0:
            raise ValueError(f"one_way_ms must be a non-negative number, got {one_way_ms}")
        self.overrides[(node_key(a), node_key(b))] = float(one_way_ms)
        self.overrides[(node_key(b), node_key(a))] = float(one_way_ms)

    def is_measured(self, a: Node, b: Node) -> bool:
        """Whether the pair a-b has a measured override (rather than the model)."""
        return (node_key(a), node_key(b)) in self.overrides

    def load_measured(self, path: str | Path, *, error: type[DataError] = DataError, file: str | None = None) -> int:
        """Read a measured matrix CSV with columns `a,b,one_way_ms` (names of places or sites); returns rows.

        A bad row raises `error` (DataError by default) naming `file` (default: the CSV's name), row and field.
        """
        path = Path(path)
        file = file or path.name
        text = read_text(path, shown_as=file, error=error)  # bounded read, UTF-8 checked
        rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
        for i, r in enumerate(rows, start=2):
            for col in ("a", "b", "one_way_ms"):
                if not (r.get(col) or "").strip():
                    raise error(file, i, col, "is missing", "columns are a,b,one_way_ms")
            try:
                ms = float(r["one_way_ms"])
            except ValueError:
                problem = f"{shown(r['one_way_ms'])} is not a number"
                raise error(file, i, "one_way_ms", problem, "give ms such as 3.5") from None
            if not np.isfinite(ms) or ms < 0:
                raise error(file, i, "one_way_ms", f"'{r['one_way_ms']}' is not >= 0", "give a one-way latency in ms")
            nodes = []
            for col in ("a", "b"):
                try:
                    nodes.append(self.resolve(r[col]))
                except UnknownPlaceError as e:
                    raise error(file, i, col, str(e), "use a city or site name, pinyin or adcode") from None
            self.set_measured(nodes[0], nodes[1], ms)
        return len(rows)

    def resolve(self, name: str) -> Node:
        """A site if `name` names one, else a city."""
        try:
            return self.atlas.site(name)
        except UnknownPlaceError:
            return self.atlas.place(name)

    # --- bandwidth and transfer ----------------------------------------------------------------------
    def transfer_h(self, data_gb, bandwidth_gbps: float | None = None):
        """Hours to move `data_gb` GB at `bandwidth_gbps` (default: the per-job allotment assumption)."""
        gbps = bandwidth_gbps or self.atlas.value("job_bandwidth_gbps")
        return np.asarray(data_gb, dtype=float) * 8.0 / (gbps * 3600.0)

    def transfer_cost_cny(self, data_gb, same_province) -> np.ndarray:
        """CNY to move `data_gb` GB; free inside a province, priced per GB between provinces (assumption)."""
        price = self.atlas.value("transfer_price_cny_per_gb")
        return np.where(same_province, 0.0, np.asarray(data_gb, dtype=float) * price)
