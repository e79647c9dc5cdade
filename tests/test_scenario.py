"""Scenario files: the shipped example loads; bad input names the file, row and field."""

from pathlib import Path

import pytest

from suanwang.atlas import load_atlas
from suanwang.atlas.scenario import load_scenario
from suanwang.errors import ScenarioError
from suanwang.network import Network

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "scenario-xuchang-hub.yaml"

NEW_SITE = """
  - id: lab
    name_zh: 实验站
    city: 许昌
    pue: 1.3
    cpu_cores: 100
    gpu_cards: 2
    basis: "assumption: test"
"""


def write(tmp_path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_loads_and_applies_overrides():
    sc = load_scenario(EXAMPLE)
    base = load_atlas()
    hub = sc.atlas.site("xuchang-hub")
    assert hub.province_id == "henan" and hub.kind == "national-cluster"
    assert hub.notes["pue"].startswith("assumption")
    assert sc.added_sites == ["xuchang-hub"] and sc.overridden_sites == ["zhongyuan-ai"]
    assert len(sc.atlas.sites) == len(base.sites) + 1
    assert sc.atlas.site("zhongyuan-ai").gpu_cards != base.site("zhongyuan-ai").gpu_cards
    assert sc.atlas.site("zhongyuan-ai").cpu_cores == base.site("zhongyuan-ai").cpu_cores
    # the province price override flows into every Henan site that takes the province price
    new_price = sc.atlas.province("henan").price_cny_per_kwh
    assert new_price != base.province("henan").price_cny_per_kwh
    assert sc.atlas.site("henan-dc").price_cny_per_kwh == new_price
    # the measured CSV overrides the model for the listed pair, both directions
    zz = sc.atlas.place("郑州")
    assert sc.network.is_measured(zz, hub)
    assert sc.network.one_way_ms(zz, hub) < model_ms(sc, zz, hub)


def model_ms(sc, a, b) -> float:
    """The calibrated model's one-way ms for a pair, ignoring the scenario's measured overrides."""
    return Network(sc.atlas).one_way_ms(a, b)


def test_assumption_override_flows_into_capacity(tmp_path):
    path = write(tmp_path, "name: t\nassumptions:\n  platform_share: 0.01\n")
    sc = load_scenario(path)
    base = load_atlas()
    assert sc.atlas.value("platform_share") == 0.01
    ratio = sc.atlas.site("zhongwei").cpu_cores / base.site("zhongwei").cpu_cores
    assert ratio == pytest.approx(0.01 / base.value("platform_share"), rel=1e-3)


def test_province_co2_override(tmp_path):
    path = write(tmp_path, "name: t\nprovinces:\n  宁夏:\n    co2_kg_per_kwh: {2022: 0.2}\n    basis: test\n")
    p = load_scenario(path).atlas.province("ningxia")
    assert p.co2(2022) == 0.2 and p.co2(2021) == load_atlas().province("ningxia").co2(2021)
    assert p.co2_basis == "scenario"


def test_site_by_lat_lon_and_csv(tmp_path):
    write(
        tmp_path,
        "# a comment\nid,name_zh,lat,lon,province,pue,cpu_cores,gpu_cards,labels,basis\n"
        "edge-1,边缘一号,34.5,113.0,henan,1.4,64,0,edge;test,assumption: test\n",
        "sites.csv",
    )
    sc = load_scenario(write(tmp_path, "name: t\nsites_csv: sites.csv\n"))
    s = sc.atlas.site("edge-1")
    assert (s.lat, s.lon, s.province_id, s.labels) == (34.5, 113.0, "henan", ("edge", "test"))
    assert s.role == "east" and s.kind == "custom"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("name: t\nsites:" + NEW_SITE.replace("pue: 1.3", "pue: 0.8"), "sites[0].pue", "greater than or equal"),
        ("name: t\nsites:" + NEW_SITE.replace("cpu_cores: 100", "cpu_cores: lots"), "sites[0].cpu_cores", "integer"),
        ("name: t\nsites:" + NEW_SITE.replace("city: 许昌", "city: Xuchan"), "sites[0].city", "许昌 Xuchang"),
        ("name: t\nsites:" + NEW_SITE.replace('    basis: "assumption: test"\n', ""), "sites[0].basis", "required"),
        ("name: t\nsites:" + NEW_SITE.replace("pue:", "peu:"), "sites[0].peu", "allowed: id"),
        (
            "name: t\nsites:" + NEW_SITE.replace("city: 许昌", "lat: 48.8\n    lon: 2.3\n    province: henan"),
            "sites[0].lat",
            "outside China",
        ),
        ("name: t\nsites:" + NEW_SITE.replace("city: 许昌", "lat: 34.0"), "sites[0]", "both lat and lon"),
        ("name: t\nassumptions:\n  platform_shar: 0.1\n", "assumptions.platform_shar", "platform_share"),
        ("name: t\nprovinces:\n  Atlantis:\n    price_cny_per_kwh: 0.5\n", "provinces.Atlantis", "unknown province"),
        ("name: t\nprovinces:\n  henan:\n    price_cny_per_kwh: -1\n", "provinces.henan.price_cny_per_kwh", "greater"),
        ("name: t\nnetwork:\n  route_factor: 0\n", "network.route_factor", "greater"),
        ("description: no name\n", "name", "required"),
    ],
)
def test_bad_field_names_file_and_field(tmp_path, text, field, words):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert e.value.file == str(path)
    assert e.value.field == field
    assert words in str(e.value)
    assert str(path) in str(e.value)


def test_bad_csv_row_names_row_and_field(tmp_path):
    write(
        tmp_path,
        "id,name_zh,city,pue,cpu_cores,gpu_cards,basis\nok,好,郑州,1.2,10,0,x\nbad,坏,郑州,1.2,10,0.5.1,x\n",
        "sites.csv",
    )
    with pytest.raises(ScenarioError) as e:
        load_scenario(write(tmp_path, "name: t\nsites_csv: sites.csv\n"))
    assert e.value.file.endswith("sites.csv")
    assert (e.value.row, e.value.field) == (3, "gpu_cards")


def test_bad_measured_csv_row(tmp_path):
    write(tmp_path, "a,b,one_way_ms\n郑州,武汉,2\n郑州,Nowhereville,3\n", "lat.csv")
    with pytest.raises(ScenarioError) as e:
        load_scenario(write(tmp_path, "name: t\nnetwork:\n  measured_csv: lat.csv\n"))
    assert e.value.file.endswith("lat.csv") and (e.value.row, e.value.field) == (3, "b")


@pytest.mark.parametrize("text", ["name: [unclosed\n", "- just\n- a list\n", ""])
def test_not_a_scenario(tmp_path, text):
    with pytest.raises(ScenarioError):
        load_scenario(write(tmp_path, text))


def test_missing_files(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(write(tmp_path, "name: t\nsites_csv: missing.csv\n"))
    with pytest.raises(ScenarioError) as e:
        load_scenario(write(tmp_path, "name: t\nnetwork:\n  measured_csv: missing.csv\n"))
    assert e.value.field == "network.measured_csv"
