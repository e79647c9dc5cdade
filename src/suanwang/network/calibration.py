"""Fit the latency model's route factor and overhead to published east-west measurements.

one_way_ms = route_factor * great_circle_km / 200 + overhead_ms, fitted by least squares to the rows of
atlas/data/latency_measurements.csv (each with its source). The fit and its residuals are reported by
`suanwang network calibration` and in docs/network-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from suanwang.atlas.loader import DATA, read_csv
from suanwang.network.geo import great_circle_km

FIBRE_KM_PER_MS = 200.0  # light in fibre, n ~ 1.47: ~204,000 km/s


@dataclass(frozen=True)
class Calibration:
    """The fitted parameters and how well they reproduce each measurement (all one-way, ms)."""

    route_factor: float
    overhead_ms: float
    rows: list[dict]  # name, km, measured_ms, model_ms, error_ms, source
    rmse_ms: float
    max_abs_error_ms: float


@cache
def calibrate() -> Calibration:
    """Least-squares fit of (route_factor, overhead_ms) to the shipped one-way measurements."""
    rows = read_csv(DATA / "latency_measurements.csv")
    km = np.array(
        [
            float(great_circle_km(float(r["from_lat"]), float(r["from_lon"]), float(r["to_lat"]), float(r["to_lon"])))
            for r in rows
        ]
    )
    y = np.array([float(r["one_way_ms"]) for r in rows])
    design = np.column_stack([km / FIBRE_KM_PER_MS, np.ones_like(km)])
    (factor, overhead), *_ = np.linalg.lstsq(design, y, rcond=None)
    model = design @ np.array([factor, overhead])
    err = model - y
    out = [
        {
            "path": f"{r['from_name']} - {r['to_name']}",
            "km": round(float(k), 1),
            "measured_ms": float(m),
            "model_ms": round(float(p), 2),
            "error_ms": round(float(e), 2),
            "kind": r["kind"],
            "source": r["source"],
        }
        for r, k, m, p, e in zip(rows, km, y, model, err, strict=True)
    ]
    return Calibration(
        round(float(factor), 3),
        round(float(overhead), 3),
        out,
        round(float(np.sqrt(np.mean(err**2))), 3),
        round(float(np.max(np.abs(err))), 3),
    )
