"""Data integrity of the shipped atlas and name resolution."""

import csv

import pytest

from suanwang.atlas.loader import DATA, inside_china, read_csv
from suanwang.errors import UnknownPlaceError

# The official 2022 provincial grid factors (MEE/NBS 2024-12-20 announcement as summarised by 新京报): the
# five highest and five lowest. Test data, not model data: the model reads provinces.csv.
TOP5_2022 = {"河北": 0.7252, "山西": 0.7096, "天津": 0.7041, "内蒙古": 0.6849, "安徽": 0.6782}
BOTTOM5_2022 = {"福建": 0.4092, "广西": 0.4044, "青海": 0.1567, "四川": 0.1404, "云南": 0.1073}


def test_counts(atlas):
    kinds = [s.kind for s in atlas.sites]
    assert len(atlas.provinces) == 31
    assert len(atlas.hubs) == 8
    assert kinds.count("national-cluster") == 10
    assert kinds.count("provincial-dc") == 31
    assert {s.province_id for s in atlas.sites if s.kind == "provincial-dc"} == set(atlas.provinces)
    assert len(atlas.capitals) == 31
    assert len({c.adcode for c in atlas.capitals}) == 31


def test_every_cluster_belongs_to_a_hub_and_hubs_have_clusters(atlas):
    clusters = [s for s in atlas.sites if s.kind == "national-cluster"]
    assert {c.hub_id for c in clusters} == set(atlas.hubs)
    for c in clusters:
        assert c.role == atlas.hubs[c.hub_id].role


def test_places_have_no_pseudo_cities_and_unique_adcodes(atlas):
    names = [p.short_zh for p in atlas.places]
    assert "市辖区" not in names and "县" not in names
    assert len({p.adcode for p in atlas.places}) == len(atlas.places)
    assert 330 <= len(atlas.places) <= 380


def test_coordinates_inside_china(atlas):
    for node in [*atlas.places, *atlas.sites, *atlas.provinces.values()]:
        assert inside_china(node.lat, node.lon), node
    assert not inside_china(48.85, 2.35)  # Paris
    assert not inside_china(35.7, 139.7)  # Tokyo


def test_co2_2022_extremes_match_official(atlas):
    by_zh = {p.name_zh: p.co2(2022) for p in atlas.provinces.values()}
    for name, value in {**TOP5_2022, **BOTTOM5_2022}.items():
        assert by_zh[name] == pytest.approx(value, abs=1e-4), name
    official = {p.name_zh: p.co2(2022) for p in atlas.provinces.values() if p.co2_basis == "official"}
    ranked = sorted(official, key=official.get, reverse=True)
    assert set(ranked[:5]) == set(TOP5_2022)
    assert set(ranked[-5:]) == set(BOTTOM5_2022)


def test_population_plausible(atlas):
    total_10k = sum(p.population_10k for p in atlas.provinces.values())
    assert 139_000 < total_10k < 142_000  # mainland China ~1.40 billion (31 provinces) in 2022-2024
    rows = {r["region"]: r for r in read_csv(DATA / "province_population_nbs.csv")}
    total_2022 = sum(float(r["2022"]) for r in rows.values())
    assert 140_000 < total_2022 < 142_000


def test_every_row_sourced_or_flagged(atlas):
    for p in atlas.provinces.values():
        assert p.co2_basis in {"official", "assumption"}
        assert p.price_basis in {"sourced", "assumption"}
        assert p.price_note
    for s in atlas.sites:
        for key in ("pue", "green", "capacity", "price", "coordinates", "published"):
            assert s.notes.get(key), (s.id, key)
    for key, a in atlas.assumptions.items():
        assert a.source or a.assumption, key
        assert a.unit, key
    for name in ("hubs.csv", "latency_measurements.csv"):
        for row in read_csv(DATA / name):
            assert row["source"].strip(), (name, row)
    for row in read_csv(DATA / "clusters.csv"):
        for col in ("coord_basis", "pue_basis", "green_basis", "servers_basis"):
            assert row[col].strip(), (row["id"], col)
    for row in read_csv(DATA / "grid_regions.csv"):
        assert row["basis"].startswith("assumption")


def test_shipped_csvs_are_rectangular():
    for path in DATA.iterdir():
        if path.name.endswith(".csv"):
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
            widths = {len(r) for r in csv.reader(lines)}
            assert len(widths) == 1, path.name


@pytest.mark.parametrize("name", ["许昌", "许昌市", "Xuchang", "xuchang", "XUCHANG", "411000", " Xuchang "])
def test_xuchang_resolves(atlas, name):
    assert atlas.place(name).adcode == "411000"


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("Xi'an", "西安"),
        ("xian", "西安"),
        ("西安", "西安"),
        ("Hohhot", "呼和浩特"),
        ("Urumqi", "乌鲁木齐"),
        ("河南", "郑州"),
    ],
)
def test_capitals_and_provinces_resolve(atlas, name, short):
    assert atlas.place(name).short_zh == short


def test_sites_resolve_by_id_and_names(atlas):
    assert atlas.site("zhongwei").name_zh == "中卫集群"
    assert atlas.site("中卫集群").id == "zhongwei"
    assert atlas.site("Gui'an").id == "guian"


def test_unknown_place_suggests(atlas):
    with pytest.raises(UnknownPlaceError) as e:
        atlas.place("Xuchan")
    assert "许昌 Xuchang" in e.value.suggestions
    assert "Did you mean" in str(e.value)


def test_find_province(atlas):
    assert atlas.find_province("Inner Mongolia").id == "inner-mongolia"
    assert atlas.find_province("四川").id == "sichuan"
    assert atlas.find_province("41").id == "henan"
    with pytest.raises(UnknownPlaceError):
        atlas.find_province("Atlantis")


def test_load_atlas_returns_independent_copies(atlas):
    from suanwang.atlas import load_atlas

    atlas.sites.pop()
    assert len(load_atlas().sites) == len(atlas.sites) + 1
