"""Window means of the hourly signals (what every cost estimate reads) equal the plain mean over the run's hours."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suanwang.atlas import load_atlas
from suanwang.atlas.signals import build_signals

SIGNALS = build_signals(load_atlas())


def plain_mean(profile: np.ndarray, start_h: float, duration_h: float) -> np.ndarray:
    n = max(1, math.ceil(duration_h))
    if n >= 24:
        return profile.mean(axis=1)
    return profile[:, (int(start_h) + np.arange(n)) % 24].mean(axis=1)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 24.0 * 400), st.floats(0.01, 72.0))
def test_mean_over_is_the_mean_of_the_run_hours(start_h, duration_h):
    price, grid = SIGNALS.mean_over(start_h, duration_h)
    np.testing.assert_allclose(price, plain_mean(SIGNALS.price_cny_per_kwh, start_h, duration_h), rtol=1e-12)
    np.testing.assert_allclose(grid, plain_mean(SIGNALS.grid_kg_per_kwh, start_h, duration_h), rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 24.0 * 30), min_size=1, max_size=20), st.floats(0.01, 30.0))
def test_window_means_match_mean_over_for_every_start(starts, duration_h):
    price, grid = SIGNALS.window_means(np.array(starts), duration_h)
    assert price.shape == grid.shape == (len(starts), len(SIGNALS.price_cny_per_kwh))
    for k, h in enumerate(starts):
        p, g = SIGNALS.mean_over(h, duration_h)
        np.testing.assert_allclose(price[k], p, rtol=1e-12)
        np.testing.assert_allclose(grid[k], g, rtol=1e-12)


def test_a_day_long_run_sees_the_daily_mean_from_any_start():
    for h in (0.0, 5.5, 23.9):
        price, _ = SIGNALS.mean_over(h, 24.0)
        np.testing.assert_allclose(price, SIGNALS.price_cny_per_kwh.mean(axis=1))
