"""`suanwang plan hub` end to end on the national atlas: structure, agreement with enumeration and with the
network model's coverage, scenario overrides and one-line errors for bad input."""

import json
import math

import pytest
from typer.testing import CliRunner

from suanwang.cli.main import app
from suanwang.network import calibrate

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["plan", "hub", *args])


@pytest.fixture(scope="module")
def henan():
    res = run("--province", "河南", "--k", "2", "--top", "50", "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_henan_plan_structure(henan):
    ranked, sets = henan["ranked"], henan["sets"]
    assert len(ranked) == henan["meta"]["candidates"] == 18  # Henan's prefecture-level cities
    assert all("河南" in r["province"] for r in ranked)
    assert [s["k"] for s in sets] == [1, 2]
    assert all(0.0 <= s["gap"] <= 1e-6 for s in sets)
    values = [r["value"] for r in ranked]
    assert values == sorted(values, reverse=True)
    # k = 1: the best of the enumerated single candidates (every candidate solved exactly)
    assert sets[0]["value"] == pytest.approx(values[0], abs=1e-6)
    assert [s["method"] for s in sets] == ["enumeration", "mip"]
    assert sets[1]["value"] >= sets[0]["value"] - 1e-9
    for key in ("capacity", "pue", "green_share", "price", "carbon"):
        assert henan["meta"]["assumptions"][key]


def _km(a_lat, a_lon, b_lat, b_lon) -> float:
    p1, p2 = math.radians(a_lat), math.radians(b_lat)
    dp, dl = p2 - p1, math.radians(b_lon - a_lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def test_site_coverage_equals_the_network_model(henan, atlas):
    cal = calibrate()
    site = henan["sites"][0]
    city = atlas.place(site["adcode"])
    for tier in (1.0, 5.0, 20.0):
        for rtt in (False, True):
            expect = []
            for p in atlas.capitals:
                km = _km(city.lat, city.lon, p.lat, p.lon)
                ms = (cal.route_factor * km / 200.0 + cal.overhead_ms) * (2 if rtt else 1)
                if ms <= tier and p.adcode != city.adcode and km > 1.0:
                    expect.append(p.label)
            key = f"capitals_{tier:g}ms_{'rtt' if rtt else 'oneway'}"
            assert sorted(site[key]) == sorted(expect), key


def test_absorbed_demand_fits_capacity(henan):
    for r in henan["sites"]:
        used = sum(r[f"absorbed_{c}_cores"] for c in ("realtime", "interactive", "batch"))
        assert used <= r["assumptions"]["cpu_cores"] + 1


def test_scenario_candidate_overrides_the_default(tmp_path):
    sc = tmp_path / "plan.yaml"
    sc.write_text(
        "name: plan-test\nsites:\n  - id: xc\n    name_zh: 许昌候选\n    city: 许昌\n    pue: 1.1\n"
        "    cpu_cores: 50000\n    gpu_cards: 300\n    green_share: 0.5\n    labels: [candidate]\n"
        "    basis: 'assumption: test override'\n",
        encoding="utf-8",
    )
    res = run("--candidates", "许昌,郑州", "--scenario", str(sc), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    xc = next(r for r in out["ranked"] if r["adcode"] == "411000")
    assert (xc["cpu_cores"], xc["pue"], xc["green_share"]) == (50000, 1.1, 0.5)
    zz = next(r for r in out["ranked"] if r["adcode"] == "410100")
    assert zz["pue"] == 1.25  # the default east cap


def test_csv_and_zh(tmp_path):
    res = run("--candidates", "许昌,郑州", "--csv", str(tmp_path), "--lang", "zh")
    assert res.exit_code == 0, res.output
    assert "排名" in res.output
    for name in ("ranked", "sets", "sites", "routes", "pareto"):
        assert (tmp_path / f"{name}.csv").exists()
    assert "许昌 Xuchang" in (tmp_path / "ranked.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--candidates", "许倡,郑州"], "--candidates: unknown place"),
        (["--province", "河南", "--k", "40"], "--k: 40 is more than the 18 candidate cities"),
        (["--province", "火星"], "--province: unknown province"),
        (["--carbon-year", "1990", "--candidates", "许昌"], "--carbon-year"),
        (["--objective", "fast", "--candidates", "许昌"], "--objective"),
        (["--region", "south"], "--region"),
    ],
)
def test_bad_input_is_one_line(args, needle):
    res = run(*args)
    assert res.exit_code == 2
    assert needle in res.output
    assert "Traceback" not in res.output
    assert res.output.count("error:") == 1 and res.output.startswith("error:")  # one message (rich wraps at 160)


def test_unknown_city_suggests():
    res = run("--candidates", "Xuchan")
    assert res.exit_code == 2 and "Did you mean" in res.output and "Xuchang" in res.output


def test_mip_matches_enumeration_on_the_national_instance(atlas, network):
    from suanwang.planner.candidates import build_candidates, select_places
    from suanwang.planner.instance import build_instance, default_carbon_year
    from suanwang.planner.mip import Model, rank_with_status_quo

    existing, cands = build_candidates(atlas, select_places(atlas, ["许昌", "武汉", "西安", "成都", "合肥"]))
    inst, _ = build_instance(atlas, network, existing, [c.site for c in cands], carbon_year=default_carbon_year(atlas))
    sq, singles = rank_with_status_quo(inst)
    mip = Model(inst).solve_k(1)
    assert mip.gap <= 1e-6
    assert mip.objective == pytest.approx(max(s.objective for s in singles), abs=1e-7)
    assert all(s.objective >= sq.objective - 1e-9 for s in singles)  # opening a site never makes it worse
