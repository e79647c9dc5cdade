"""2023 renewable consumption weights (发改办能源〔2023〕569号) as shipped, and the carbon midday dip built on them."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from suanwang.atlas import load_atlas
from suanwang.atlas.loader import DATA
from suanwang.atlas.signals import build_signals

# hand-copied from the notice's attachment 1 (total %, non-hydro %)
HAND = {"beijing": (20.1, 20.0), "ningxia": (26.5, 24.5), "sichuan": (70.0, 8.0), "fujian": (20.6, 10.0)}


def test_every_weight_equals_the_table():
    atlas = load_atlas()
    with (DATA / "renewable_weights.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    assert {r["province_id"] for r in rows} == set(atlas.provinces)
    for r in rows:
        p = atlas.province(r["province_id"])
        for cell, value in (
            (r["total_weight_pct"], p.renewable_weight_pct),
            (r["non_hydro_weight_pct"], p.non_hydro_weight_pct),
        ):
            assert value == (float(cell) if cell else None), p.id
    for pid, (total, non_hydro) in HAND.items():
        assert (atlas.province(pid).renewable_weight_pct, atlas.province(pid).non_hydro_weight_pct) == (
            total,
            non_hydro,
        )
    assert atlas.province("tibet").renewable_weight_pct is None  # not assessed


def test_ningxia_carbon_dip_follows_its_weights():
    atlas = load_atlas()
    sig = build_signals(atlas)
    g = sig.grid_kg_per_kwh[[s.id for s in atlas.sites].index("ningxia-dc")]
    hours = np.arange(24)
    solar = np.clip(np.sin(np.pi * (hours + 0.5 - 6.0) / 12.0), 0.0, None)
    dip = math.pi * 0.245 * 0.35 / (1 - 0.265)  # pi x solar share / fossil share
    want = 0.6187 * (1 - dip * (solar - solar.mean()))
    np.testing.assert_allclose(g, want, rtol=1e-12)
    assert g.mean() == pytest.approx(0.6187)
    assert (sig.grid_kg_per_kwh > 0).all()
