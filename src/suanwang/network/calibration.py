"""Fit the two-regime latency model to every published point in atlas/data/latency_measurements.csv.

    one_way_ms(d) = route_factor x d / 200 + overhead_ms - (overhead_ms - metro_overhead_ms) x exp(-d / metro_km)

A same-city path (d = 0) pays the metro overhead (an assumption, assumptions.yaml); a long-haul path pays the
long-haul overhead; the fixed cost rises between them over the metro distance `metro_km`. For each candidate
metro_km (a grid, 5-600 km) route_factor and overhead_ms are a linear least-squares fit to the `fit` rows; the
metro_km with the smallest squared error wins. The fit, its residuals, the leave-one-out (out-of-sample) error of
every fitted point and the error on the `check` rows are reported by `suanwang network calibration` and in
docs/network-model.md. All latencies are one-way ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import yaml

from suanwang.atlas.loader import DATA, read_csv
from suanwang.network.geo import great_circle_km

FIBRE_KM_PER_MS = 200.0  # light in fibre, n ~ 1.47: ~204,000 km/s
METRO_KM_GRID = np.arange(5.0, 600.0 + 1e-9, 5.0)


@dataclass(frozen=True)
class Calibration:
    """The fitted parameters and how well they reproduce each published point (all one-way, ms)."""

    route_factor: float
    overhead_ms: float  # long-haul fixed overhead
    metro_overhead_ms: float  # same-city fixed overhead (assumption)
    metro_km: float  # distance over which the overhead rises from metro to long-haul
    rows: list[dict]  # path, km, measured_ms, model_ms, error_ms, loo_error_ms, use, kind, source
    rmse_ms: float  # over the fitted rows
    max_abs_error_ms: float
    loo_rmse_ms: float  # leave-one-out: each fitted row predicted by a fit without it
    check_rmse_ms: float | None  # over the check rows (never fitted)


def model_ms(km, route_factor: float, overhead_ms: float, metro_overhead_ms: float, metro_km: float) -> np.ndarray:
    """One-way ms of the two-regime model at distance(s) `km`; the metro overhead is capped at the long-haul one
    so that the fixed cost never falls with distance."""
    km = np.asarray(km, dtype=float)
    metro = min(metro_overhead_ms, overhead_ms)
    return route_factor * km / FIBRE_KM_PER_MS + overhead_ms - (overhead_ms - metro) * np.exp(-km / metro_km)


def _fit(km: np.ndarray, y: np.ndarray, metro_ms: float) -> tuple[float, float, float]:
    """(route_factor, overhead_ms, metro_km) minimising the squared error over the points."""
    best = None
    for d0 in METRO_KM_GRID:
        design = np.column_stack([km / FIBRE_KM_PER_MS, 1.0 - np.exp(-km / d0)])
        (factor, rise), *_ = np.linalg.lstsq(design, y - metro_ms, rcond=None)
        sse = float(np.sum((design @ np.array([factor, rise]) + metro_ms - y) ** 2))
        if best is None or sse < best[0] - 1e-12:
            best = (sse, float(factor), float(rise + metro_ms), float(d0))
    return best[1], best[2], best[3]


def _metro_overhead_ms() -> float:
    raw = yaml.safe_load((DATA / "assumptions.yaml").read_text(encoding="utf-8"))
    return float(raw["metro_overhead_ms"]["value"])


@cache
def calibrate() -> Calibration:
    """The two-regime fit to the shipped published points, with residuals and out-of-sample errors."""
    rows = read_csv(DATA / "latency_measurements.csv")
    km = np.array(
        [
            float(r["km"])
            if r["km"].strip()
            else float(
                great_circle_km(float(r["from_lat"]), float(r["from_lon"]), float(r["to_lat"]), float(r["to_lon"]))
            )
            for r in rows
        ]
    )
    y = np.array([float(r["one_way_ms"]) for r in rows])
    fit = np.array([r["use"] == "fit" for r in rows])
    metro = _metro_overhead_ms()
    params = _fit(km[fit], y[fit], metro)
    model = model_ms(km, params[0], params[1], metro, params[2])
    err = model - y
    loo = np.full(len(rows), np.nan)
    for i in np.flatnonzero(fit):
        keep = fit.copy()
        keep[i] = False
        p = _fit(km[keep], y[keep], metro)
        loo[i] = float(model_ms(km[i], p[0], p[1], metro, p[2])) - y[i]
    out = [
        {
            "path": f"{r['from_name']} - {r['to_name']}",
            "km": round(float(k), 1),
            "measured_ms": float(m),
            "model_ms": round(float(p), 2),
            "error_ms": round(float(e), 2),
            "loo_error_ms": None if np.isnan(lo) else round(float(lo), 2),
            "use": r["use"],
            "kind": r["kind"],
            "source": r["source"],
        }
        for r, k, m, p, e, lo in zip(rows, km, y, model, err, loo, strict=True)
    ]
    checks = err[~fit]
    return Calibration(
        round(params[0], 3),
        round(params[1], 3),
        metro,
        params[2],
        out,
        round(float(np.sqrt(np.mean(err[fit] ** 2))), 3),
        round(float(np.max(np.abs(err[fit]))), 3),
        round(float(np.sqrt(np.nanmean(loo[fit] ** 2))), 3),
        round(float(np.sqrt(np.mean(checks**2))), 3) if checks.size else None,
    )
