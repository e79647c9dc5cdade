"""Time the full latency matrix (every city x every site): vectorised numpy vs a pure-Python double loop.

Prints JSON: {median_s, baseline_median_s, speedup, ...}; both are measured in the same run on the same
machine, so the ratio is what to compare across machines, not the absolute seconds.
"""

from __future__ import annotations

import json
import math
import statistics
import time

import numpy as np

from suanwang.atlas import load_atlas
from suanwang.network import Network
from suanwang.network.calibration import FIBRE_KM_PER_MS
from suanwang.network.geo import EARTH_RADIUS_KM

REPEATS = 7


def loop_matrix_ms(net: Network, origins, targets) -> list[list[float]]:
    """Baseline: the same model, one pair at a time in pure Python (math module, no numpy)."""
    out = []
    for o in origins:
        p1, l1 = math.radians(o.lat), math.radians(o.lon)
        row = []
        for t in targets:
            p2, l2 = math.radians(t.lat), math.radians(t.lon)
            h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2
            km = 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, max(0.0, h))))
            row.append(net.route_factor * km / FIBRE_KM_PER_MS + net.overhead_ms)
        out.append(row)
    return out


def median_s(fn, repeats: int = REPEATS) -> float:
    """Median wall time of `fn()` in seconds over `repeats` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    atlas = load_atlas()
    net = Network(atlas)
    places, sites = atlas.places, atlas.sites
    fast = net.matrix_ms(places, sites)
    slow = np.array(loop_matrix_ms(net, places, sites))
    max_diff = float(np.max(np.abs(fast - slow)))
    vec = median_s(lambda: net.matrix_ms(places, sites))
    base = median_s(lambda: loop_matrix_ms(net, places, sites))
    print(
        json.dumps(
            {
                "benchmark": "latency matrix, all cities x all sites, one-way ms",
                "places": len(places),
                "sites": len(sites),
                "repeats": REPEATS,
                "median_s": round(vec, 6),
                "baseline": "pure-Python double loop (math module)",
                "baseline_median_s": round(base, 6),
                "speedup": round(base / vec, 1),
                "max_abs_diff_ms": max_diff,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
