"""Provincial time-of-use tariffs: the notices' hours partition each day, the half-hour bands equal the notices,
each site has one tariff area, and the hourly prices equal the sourced 95598 tables where shipped.

Oracles: an independent parse of tou_tariffs.csv's hour ranges (not the loader), and values hand-copied from
the source tables (Beijing peaks 10-13 and 17-22, Ningxia's valley 09-17, Beijing's July 2024 prices).
"""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest

from suanwang.atlas import load_atlas
from suanwang.atlas.loader import DATA
from suanwang.atlas.signals import build_signals

CODE = {"super_peak": "S", "peak": "P", "flat": "F", "valley": "V", "deep_valley": "D"}


def rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def half_hours(spec: str) -> list[int]:
    """'23:00-24:00;00:00-07:00' -> half-hour indices 46, 47, 0..13."""
    out = []
    for part in spec.split(";"):
        a, b = part.split("-")
        ia = int(a[:2]) * 2 + int(a[3:]) // 30
        ib = int(b[:2]) * 2 + int(b[3:]) // 30
        out += list(range(ia, ib))
    return out


def notice_partitions() -> dict[tuple[str, int], list[str]]:
    """(area, month) -> 48 period codes from the partition rows (no condition) of tou_tariffs.csv."""
    cells: dict[tuple[str, str], list[str | None]] = defaultdict(lambda: [None] * 48)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 48)
    for r in rows("tou_tariffs.csv"):
        if r["condition"]:
            continue
        for i in half_hours(r["hours"]):
            cells[(r["area_id"], r["months"])][i] = CODE[r["period"]]
            counts[(r["area_id"], r["months"])][i] += 1
    for key, n in counts.items():
        assert n == [1] * 48, f"{key} does not cover 24 h exactly once"
    out = {}
    for (area, months), codes in cells.items():
        for m in months.split(","):
            assert (area, int(m)) not in out, (area, m)
            out[(area, int(m))] = codes
    return out


def test_every_month_group_covers_24_hours_exactly_once():
    parts = notice_partitions()
    areas = {a for a, _ in parts}
    assert len(areas) == 34
    assert {(a, m) for a in areas for m in range(1, 13)} == set(parts)


def test_half_hour_bands_equal_the_notices():
    parts = notice_partitions()
    atlas = load_atlas()
    for (area, month), codes in parts.items():
        assert atlas.tariffs.areas[area].codes[month] == "".join(codes), (area, month)


def hours_of(atlas, area: str, month: int, period: str) -> list[float]:
    return atlas.tariffs.band_hours(area, month, period)


def test_hand_checked_hours():
    atlas = load_atlas()
    # Beijing (京发改规〔2023〕11号): peaks 10-13 and 17-22 outside Jan, Jul, Aug, Dec; valley 23-07
    assert hours_of(atlas, "beijing", 3, "peak") == [h / 2 for h in [*range(20, 26), *range(34, 44)]]
    assert hours_of(atlas, "beijing", 3, "valley") == [h / 2 for h in [*range(0, 14), 46, 47]]
    # Ningxia and Qinghai: midday valley 09-17 all year; Gansu 10-16
    for m in (1, 7):
        assert hours_of(atlas, "ningxia", m, "valley") == [h / 2 for h in range(18, 34)]
        assert hours_of(atlas, "qinghai", m, "valley") == [h / 2 for h in range(18, 34)]
        assert hours_of(atlas, "gansu", m, "valley") == [h / 2 for h in range(20, 32)]
    # western Inner Mongolia (蒙西): 11-16 low, with a 13-15 deep valley in Jun-Aug
    assert hours_of(atlas, "inner-mongolia", 7, "deep_valley") == [13.0, 13.5, 14.0, 14.5]
    assert set(h / 2 for h in range(22, 32)) <= set(hours_of(atlas, "inner-mongolia", 1, "valley"))


@pytest.mark.parametrize(
    ("site", "area"),
    [
        ("zhangjiakou", "hebei-jibei"),
        ("hebei-dc", "hebei"),
        ("horinger", "inner-mongolia"),
        ("shaoguan", "guangdong"),
        ("yrd-demo-zone", "shanghai"),
        ("tianfu", "sichuan"),
    ],
)
def test_sites_resolve_to_their_area(site, area):
    atlas = load_atlas()
    assert atlas.tariff_area(atlas.site(site)) == area


def test_each_site_resolves_to_exactly_one_known_area():
    atlas = load_atlas()
    for s in atlas.sites:
        area = atlas.tariff_area(s)
        assert area in atlas.tariffs.areas, s.id
        assert atlas.tariffs.areas[area].province_id == s.province_id, s.id
        assert s.notes["tou"].startswith("hours: "), s.id
    shenzhen = atlas.place("深圳")
    assert atlas.tariffs.area_id("guangdong", shenzhen.adcode) == "shenzhen"
    assert atlas.tariffs.area_id("inner-mongolia", atlas.place("赤峰").adcode) == "inner-mongolia-east"


def test_beijing_july_hourly_prices_equal_the_95598_table():
    # 国网北京 agency purchase table 2024-07, 1-10 kV two-part (tou_prices.csv, grade B), hand-copied
    atlas = load_atlas()
    sig = build_signals(atlas, month=7)
    i = [s.id for s in atlas.sites].index("beijing-dc")
    p = sig.price_cny_per_kwh[i]
    assert p[3] == pytest.approx(0.435829)  # valley
    assert p[8] == pytest.approx(0.681335)  # flat
    assert p[10] == pytest.approx(0.926841)  # peak
    assert p[11] == pytest.approx(1.057777)  # super-peak 11-13
    assert atlas.province("beijing").price_basis == "sourced"


def test_ningxia_midday_is_cheaper_than_its_evening():
    atlas = load_atlas()
    sig = build_signals(atlas)
    p = sig.price_cny_per_kwh[[s.id for s in atlas.sites].index("zhongwei")]
    assert p[9:17].max() < p[0:7].min() < p[18:22].min()


def test_assumed_areas_keep_the_site_average_price_every_month():
    atlas = load_atlas()
    for month in (1, 7):
        sig = build_signals(atlas, month=month)
        for s, row in zip(atlas.sites, sig.price_cny_per_kwh, strict=True):
            if atlas.tariffs.areas[atlas.tariff_area(s)].price is None:
                assert row.mean() == pytest.approx(s.price_cny_per_kwh), (s.id, month)


def test_sourced_areas_keep_the_annual_mean():
    atlas = load_atlas()
    means = np.mean([build_signals(atlas, month=m).price_cny_per_kwh for m in range(1, 13)], axis=(0, 2))
    for s, mean in zip(atlas.sites, means, strict=True):
        assert mean == pytest.approx(s.price_cny_per_kwh, rel=1e-3), s.id


def test_replaced_wrong_kind_prices_are_assumptions():
    atlas = load_atlas()
    for pid in ("sichuan", "gansu"):
        p = atlas.province(pid)
        assert p.price_basis == "assumption" and p.price_note, pid
    assert atlas.site("tianfu").price_cny_per_kwh != 0.34
    for p in atlas.provinces.values():
        assert p.price_basis in {"sourced", "assumption"}, p.id


def test_a_month_outside_1_to_12_is_refused():
    with pytest.raises(ValueError, match="1..12"):
        build_signals(load_atlas(), month=13)


def test_simulate_takes_the_tariff_month_from_start(tmp_path):
    from typer.testing import CliRunner

    from suanwang.cli.main import app
    from suanwang.cli.simulate_cmd import _start_month

    assert _start_month("2025-07-15") == 7 and _start_month("2025-01-06") == 1
    res = CliRunner().invoke(app, ["simulate", "--start", "2025-13-01", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--start" in res.output and "Traceback" not in res.output


def test_every_sourced_area_prices_equal_its_95598_snapshot():
    # the best-graded (then latest) row of tou_prices.csv per area, read here without the loader
    best: dict[str, dict[str, str]] = {}
    for r in rows("tou_prices.csv"):
        old = best.get(r["area_id"])
        if old is None or (r["confidence"], old["price_month"]) < (old["confidence"], r["price_month"]):
            best[r["area_id"]] = r
    assert set(best) == {"beijing", "chongqing", "shanghai", "zhejiang", "anhui", "jiangxi", "shaanxi", "jilin"}
    assert best["beijing"]["price_month"] == "2024-07" and best["chongqing"]["price_month"] == "2025-02"
    atlas = load_atlas()
    ids = [s.id for s in atlas.sites]
    for month in (1, 4, 7):
        sig = build_signals(atlas, month=month)
        for area, r in best.items():
            row = sig.price_cny_per_kwh[ids.index(f"{area}-dc")]
            codes = atlas.tariffs.areas[area].codes[month]
            for h in range(24):
                pair = codes[2 * h : 2 * h + 2]
                if pair[0] == pair[1] and r[{v: k for k, v in CODE.items()}[pair[0]]]:
                    want = float(r[{v: k for k, v in CODE.items()}[pair[0]]])
                    assert row[h] == pytest.approx(want, rel=1e-9), (area, month, h)
