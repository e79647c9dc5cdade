"""The `suanwang atlas` and `suanwang network` commands, through typer's CliRunner."""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from suanwang.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "scenario-xuchang-hub.yaml"
runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    # an exception other than a clean exit would be a crash the user sees as a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def run_json(*args: str):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ("atlas", "sites"),
        ("atlas", "sites", "--province", "河南"),
        ("atlas", "sites", "--kind", "national-cluster"),
        ("atlas", "provinces"),
        ("atlas", "places", "--province", "Henan"),
        ("atlas", "summary"),
        ("network", "latency", "许昌", "郑州"),
        ("network", "coverage", "许昌", "--tier", "5"),
        ("network", "serving", "北京", "--tier", "province"),
        ("network", "calibration"),
    ],
)
def test_every_command_runs(args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def test_sites_json_has_sources():
    rows = run_json("atlas", "sites", "--kind", "national-cluster")
    assert len(rows) == 10
    for r in rows:
        assert r["pue_basis"] and r["green_basis"] and r["price_basis"]
        assert r["name_zh"] and r["name_en"]
    assert all(r["province_id"] == "henan" for r in run_json("atlas", "sites", "-p", "河南"))


def test_places_filters():
    rows = run_json("atlas", "places", "--kind", "capital")
    assert len(rows) == 31
    assert {r["province_id"] for r in run_json("atlas", "places", "-p", "Sichuan")} == {"sichuan"}


def test_provinces_json():
    rows = run_json("atlas", "provinces")
    assert len(rows) == 31
    assert {r["co2_basis"] for r in rows} <= {"official", "assumption"}


def test_summary_counts_and_carbon():
    out = run_json("atlas", "summary")
    c = out["counts"]
    assert (c["provinces"], c["hubs"], c["clusters"]) == (31, 8, 10)
    assert {r["role"] for r in out["capacity"]} == {"east", "west"}
    carbon = {(r["origin"].split()[0], r["site_id"]): r for r in out["carbon_of_moving_west"]}
    assert carbon[("北京", "horinger")]["ratio"] > 1.0  # Beijing -> Inner Mongolia raises grid carbon
    # Shanghai -> Gansu cuts ~22 % (2023: 0.4471 / 0.5737); Tianfu is a demand-side (east) cluster, not "west"
    assert carbon[("上海", "qingyang")]["change_pct"] == pytest.approx(100 * (0.4471 / 0.5737 - 1), abs=0.05)
    assert ("上海", "tianfu") not in carbon
    table = run("atlas", "summary").output
    assert "Carbon of moving west" in table


def test_latency_json_says_one_way_or_rtt():
    one = run_json("network", "latency", "Xuchang", "Xi'an")
    rtt = run_json("network", "latency", "Xuchang", "Xi'an", "--rtt")
    assert one["kind"] == "one-way" and rtt["kind"] == "round-trip"
    assert rtt["latency_ms"] == pytest.approx(2 * one["latency_ms"], abs=0.002)
    assert one["km"] == pytest.approx(453, abs=2)
    assert "one-way" in run("network", "latency", "许昌", "郑州").output
    assert "round-trip" in run("network", "latency", "许昌", "郑州", "--rtt").output


def test_latency_sensitivity_and_measured(tmp_path):
    floor = run_json("network", "latency", "许昌", "西安", "--route-factor", "1", "--overhead-ms", "0")
    assert floor["latency_ms"] == pytest.approx(floor["km"] / 200, abs=0.01)
    f = tmp_path / "m.csv"
    f.write_text("a,b,one_way_ms\n西安,许昌,7.5\n", encoding="utf-8")
    measured = run_json("network", "latency", "许昌", "西安", "--measured", str(f))
    assert measured["latency_ms"] == 7.5 and measured["basis"] == "measured override"


def test_coverage_xuchang():
    out = run_json("network", "coverage", "许昌", "--tier", "5")
    assert [r["city"] for r in out["rows"]] == ["郑州 Zhengzhou"]
    assert out["meta"]["kind"] == "one-way"
    assert out["meta"]["covered_population_10k"] == out["rows"][0]["population_10k"] > 0
    assert [r["city"] for r in run_json("network", "coverage", "许昌", "--tier", "5", "--rtt")["rows"]] == [
        "郑州 Zhengzhou"
    ]
    floor = run_json("network", "coverage", "许昌", "--tier", "province", "--route-factor", "1.0", "--overhead-ms", "0")
    assert len(floor["rows"]) >= 7
    cities = run_json("network", "coverage", "许昌", "--tier", "5", "--all-cities")
    assert len(cities["rows"]) > 1


def test_serving_json():
    out = run_json("network", "serving", "北京", "--tier", "5")
    assert "zhangjiakou" in {r["id"] for r in out["rows"]}
    assert all(r["latency_ms"] <= 5 for r in out["rows"])


def test_matrix_csv(tmp_path):
    out = tmp_path / "m.csv"
    assert run("network", "matrix", "--out", str(out), "--capitals").exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# one-way")
    rows = list(csv.reader(lines[1:]))
    assert len(rows) == 1 + 31 and rows[0][:2] == ["adcode", "name"]
    rtt = tmp_path / "r.csv"
    assert run("network", "matrix", "--out", str(rtt), "--rtt", "--capitals").exit_code == 0
    rlines = rtt.read_text(encoding="utf-8").splitlines()
    assert rlines[0].startswith("# round-trip")
    assert float(list(csv.reader(rlines[2:3]))[0][2]) == pytest.approx(2 * float(rows[1][2]), abs=0.002)


def test_calibration_json():
    out = run_json("network", "calibration")
    assert out["meta"]["rmse_ms"] < 1.0 and len(out["rows"]) == out["meta"]["measurements"]


def test_scenario_option():
    rows = run_json("atlas", "sites", "--scenario", str(EXAMPLE), "-p", "河南")
    assert "xuchang-hub" in {r["id"] for r in rows}
    out = run_json("network", "coverage", "xuchang-hub", "--tier", "5", "--scenario", str(EXAMPLE))
    assert out["rows"][0]["latency_ms"] == 1.0  # the scenario's measured-pair override


@pytest.mark.parametrize(
    "args",
    [
        ("network", "latency", "Xuchan", "Beijing"),
        ("network", "coverage", "Xuchan", "--tier", "5"),
        ("network", "serving", "Xuchan"),
    ],
)
def test_unknown_city_suggests_and_exits_2(args):
    result = run(*args)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "unknown place 'Xuchan'" in text and "Did you mean" in text and "许昌 Xuchang" in text


def test_bad_inputs_exit_2_without_traceback(tmp_path):
    assert run("network", "coverage", "许昌", "--tier", "soon").exit_code == 2
    assert run("atlas", "sites", "--province", "Atlantis").exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,one_way_ms\n许昌,郑州,fast\n", encoding="utf-8")
    result = run("network", "latency", "许昌", "郑州", "--measured", str(bad))
    assert result.exit_code == 2 and "one_way_ms" in result.output
    bad_yaml = tmp_path / "s.yaml"
    bad_yaml.write_text("name: t\nsites:\n  - id: x\n    pue: 0.5\n", encoding="utf-8")
    result = run("atlas", "summary", "--scenario", str(bad_yaml))
    assert result.exit_code == 2 and "pue" in result.output
    assert run("network", "latency", "许昌", "郑州", "--measured", str(tmp_path / "none.csv")).exit_code == 2


def test_calibration_prints_residuals():
    out = " ".join(run("network", "calibration").output.split())
    assert "leave-one-out RMSE" in out
    meta = run_json("network", "calibration")["meta"]
    assert meta["metro_overhead_ms"] < 1.0 < meta["overhead_ms"]
