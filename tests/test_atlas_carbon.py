"""2023 grid CO2 factors (MEE/NBS 公告2025年第47号) and the carbon year: every factor equals its table, 2023 is the
default, and a year the atlas lacks is a one-line error."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from suanwang.atlas import load_atlas
from suanwang.atlas.carbon import carbon_of_moving_west
from suanwang.atlas.loader import DATA
from suanwang.atlas.model import CarbonYearError
from suanwang.atlas.scenario import load_scenario
from suanwang.cli.main import app
from suanwang.errors import ScenarioError

# Hand-copied from the official table's transcriptions (not read from the shipped file): a few provinces, the
# seven regional grids as the 光明日报 report gives them, and the national average.
HAND_2023 = {"beijing": 0.5554, "guangdong": 0.4419, "inner-mongolia": 0.6479, "guizhou": 0.5683, "yunnan": 0.1333}
REGIONAL_2023 = {"north": 0.6361, "northeast": 0.5122, "east": 0.5500, "central": 0.5271, "northwest": 0.5543}
REGIONAL_2023 |= {"south": 0.4042, "southwest": 0.2472}


def table_rows() -> list[dict[str, str]]:
    with (DATA / "co2_factors_2023.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_every_2023_provincial_factor_equals_the_table():
    atlas = load_atlas()
    rows = [r for r in table_rows() if r["scope"] == "provincial"]
    assert len(rows) == 31
    for r in rows:
        if r["id"] == "tibet":
            assert r["factor_kgco2_per_kwh"] == ""
            continue
        assert atlas.province(r["id"]).co2(2023) == float(r["factor_kgco2_per_kwh"]), r["id"]
    for pid, value in HAND_2023.items():
        assert atlas.province(pid).co2(2023) == value


def test_table_regional_and_national_values_match_the_report():
    by_id = {r["id"]: float(r["factor_kgco2_per_kwh"]) for r in table_rows() if r["scope"] != "provincial"}
    assert by_id["china"] == 0.5306
    for k, v in REGIONAL_2023.items():
        assert by_id[k] == v


def test_tibet_takes_the_southwest_grid_and_is_flagged():
    tibet = load_atlas().province("tibet")
    assert tibet.co2(2023) == REGIONAL_2023["southwest"]
    assert tibet.co2_basis == "assumption"


def test_change_vs_2022_column_agrees_with_the_shipped_2022_factors():
    atlas = load_atlas()
    ups = downs = 0
    for r in table_rows():
        if r["scope"] != "provincial" or not r["change_vs_2022"]:
            continue
        p = atlas.province(r["id"])
        assert (p.co2(2023) > p.co2(2022)) == (r["change_vs_2022"] == "up"), r["id"]
        ups += r["change_vs_2022"] == "up"
        downs += r["change_vs_2022"] == "down"
    assert (downs, ups) == (20, 10)  # 光明日报: 20 provinces down, 10 up


def test_2023_is_the_default_and_years_are_strict():
    atlas = load_atlas()
    assert atlas.carbon_year == 2023 and atlas.carbon_years == [2021, 2022, 2023]
    assert atlas.co2("beijing") == 0.5554
    assert load_atlas(carbon_year=2021).co2("beijing") == 0.5688
    with pytest.raises(CarbonYearError, match="2021, 2022, 2023"):
        load_atlas(carbon_year=2024)
    with pytest.raises(CarbonYearError):
        atlas.province("beijing").co2(2020)


def test_moving_west_ratios_follow_the_year():
    # hand-computed from the factors: Inner Mongolia / Beijing and Guizhou / Guangdong
    rows = {(r["origin"], r["site_id"]): r for r in carbon_of_moving_west(load_atlas(), ["北京", "广州"])}
    assert rows[("北京 Beijing", "horinger")]["change_pct"] == round(100 * (0.6479 / 0.5554 - 1), 1)  # +16.7
    assert rows[("广州 Guangzhou", "guian")]["change_pct"] == round(100 * (0.5683 / 0.4419 - 1), 1)  # +28.6
    old = {(r["origin"], r["site_id"]): r for r in carbon_of_moving_west(load_atlas(2022), ["北京"])}
    assert old[("北京 Beijing", "horinger")]["change_pct"] == round(100 * (0.6849 / 0.5580 - 1), 1)  # +22.7


def test_cli_unknown_carbon_year_is_one_line_exit_2():
    res = CliRunner().invoke(app, ["atlas", "summary", "--carbon-year", "2019"])
    assert res.exit_code == 2
    out = " ".join(res.output.split())  # rich may wrap a long line at the terminal width
    assert out.count("error:") == 1 and "2021, 2022, 2023" in out and "Traceback" not in out
    with pytest.raises(CarbonYearError) as e:
        load_atlas(2019)
    assert "\n" not in str(e.value)


def test_cli_carbon_year_selects_the_factors():
    res = CliRunner().invoke(app, ["atlas", "provinces", "--json", "--carbon-year", "2022"])
    assert res.exit_code == 0
    beijing = next(r for r in json.loads(res.output) if r["id"] == "beijing")
    assert beijing["co2_kg_per_kwh"] == 0.5580 and beijing["co2_2023_kg_per_kwh"] == 0.5554


def test_scenario_carbon_year(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("name: y2021\ncarbon_year: 2021\n", encoding="utf-8")
    assert load_scenario(ok).atlas.carbon_year == 2021
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: y2030\ncarbon_year: 2030\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"carbon_year.*2021, 2022, 2023"):
        load_scenario(bad)


def test_docs_data_changes_section_is_current():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("data_changes", root / "scripts" / "data_changes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.section() in (root / "docs" / "data.md").read_text(encoding="utf-8"), (
        "run scripts/data_changes.py --write"
    )
