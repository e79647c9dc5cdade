"""Properties of the latency model, coverage, calibration and the measured-matrix override."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanwang.atlas import Place, Site, load_atlas
from suanwang.errors import DataError
from suanwang.network import TIERS_MS, Network, calibrate, coverage, serving_sites
from suanwang.network.calibration import FIBRE_KM_PER_MS
from suanwang.network.geo import great_circle_km

ATLAS = load_atlas()
NODES = [*ATLAS.places, *ATLAS.sites]
node = st.sampled_from(NODES)
factor = st.floats(1.0, 3.0)
overhead = st.floats(0.0, 5.0)


@settings(max_examples=150, deadline=None)
@given(a=node, b=node, f=factor, o=overhead)
def test_symmetric_non_negative_and_rtt_doubles(a, b, f, o):
    net = Network(ATLAS, route_factor=f, overhead_ms=o)
    ab, ba = net.one_way_ms(a, b), net.one_way_ms(b, a)
    assert ab == pytest.approx(ba, rel=1e-12)
    assert ab >= min(o, net.metro_overhead_ms) - 1e-12  # a same-city pair pays the metro overhead
    assert net.rtt_ms(a, b) == pytest.approx(2 * ab)


@settings(max_examples=150, deadline=None)
@given(a=node, b=node, c=node, f=factor, o=overhead)
def test_monotone_in_distance_and_triangle(a, b, c, f, o):
    net = Network(ATLAS, route_factor=f, overhead_ms=o)
    d_ab = float(great_circle_km(a.lat, a.lon, b.lat, b.lon))
    d_ac = float(great_circle_km(a.lat, a.lon, c.lat, c.lon))
    if d_ab < d_ac:
        assert net.one_way_ms(a, b) <= net.one_way_ms(a, c) + 1e-9
    # the overhead is concave in distance and >= 0, so a direct path is never slower than a detour through c
    assert net.one_way_ms(a, b) <= net.one_way_ms(a, c) + net.one_way_ms(c, b) + 1e-9
    assert net.one_way_ms(a, b) >= d_ab / FIBRE_KM_PER_MS  # never faster than light in fibre


@settings(max_examples=60, deadline=None)
@given(a=node, b=node, ms=st.floats(0.0, 50.0))
def test_override_wins_both_directions(a, b, ms):
    net = Network(ATLAS)
    net.set_measured(a, b, ms)
    assert net.one_way_ms(a, b) == ms
    assert net.one_way_ms(b, a) == ms
    assert net.is_measured(b, a)
    m = net.matrix_ms([a, b], [b, a])
    assert m[0, 0] == ms and m[1, 1] == ms


@settings(max_examples=30, deadline=None)
@given(
    origins=st.lists(node, min_size=1, max_size=6),
    targets=st.lists(node, min_size=1, max_size=6),
    f=factor,
    o=overhead,
)
def test_matrix_equals_pairwise(origins, targets, f, o):
    net = Network(ATLAS, route_factor=f, overhead_ms=o)
    net.set_measured(origins[0], targets[-1], 42.0)
    m = net.matrix_ms(origins, targets)
    expected = np.array([[net.one_way_ms(a, b) for b in targets] for a in origins])
    np.testing.assert_allclose(m, expected, rtol=1e-12, atol=1e-12)


def test_set_measured_rejects_bad_values(network, atlas):
    a, b = atlas.place("北京"), atlas.place("上海")
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            network.set_measured(a, b, bad)


def test_calibration_error_bound():
    cal = calibrate()
    assert 1.0 <= cal.route_factor <= 2.5  # between the fibre floor and the 2.1x Internet rule of thumb (+ margin)
    assert 0.0 <= cal.metro_overhead_ms <= cal.overhead_ms <= 4.0
    assert cal.rmse_ms < 1.0
    assert cal.max_abs_error_ms < 1.5
    fitted = [r for r in cal.rows if r["use"] == "fit"]
    assert sum(r["error_ms"] for r in fitted) == pytest.approx(0.0, abs=0.1)  # least squares with an intercept
    for r in cal.rows:
        assert r["source"]
        rise = (cal.overhead_ms - cal.metro_overhead_ms) * math.exp(-r["km"] / cal.metro_km)
        want = cal.route_factor * r["km"] / FIBRE_KM_PER_MS + cal.overhead_ms - rise
        assert r["model_ms"] == pytest.approx(want, abs=0.01)


def test_calibrated_model_reproduces_zhongwei_beijing(network, atlas):
    # measured 8-10 ms one-way (CNS 2022); the model must land in that band
    assert 8.0 <= network.one_way_ms(atlas.site("zhongwei"), atlas.place("北京")) <= 10.0


def test_xuchang_coverage_claim(atlas):
    xuchang = atlas.place("许昌")
    calibrated = coverage(Network(atlas), xuchang, TIERS_MS["province"])
    floor = coverage(Network(atlas, route_factor=1.0, overhead_ms=0.0), xuchang, 5.0)
    rtt = coverage(Network(atlas), xuchang, 5.0, rtt=True)
    assert [c.place.short_zh for c in calibrated.covered] == ["郑州"]
    assert [c.place.short_zh for c in rtt.covered] == ["郑州"]  # 82 km: 2.11 ms one-way, 4.23 ms RTT
    seven = [c.place.short_zh for c in floor.covered[:7]]
    assert set(seven) == {"郑州", "武汉", "合肥", "济南", "太原", "石家庄", "西安"}
    assert floor.covered[6].latency_ms < 2.5
    assert floor.population_10k > calibrated.population_10k > 0


def test_coverage_sorted_within_tier_and_starts_at_the_center(network, atlas):
    center = atlas.place("郑州")
    cov = coverage(network, center, 8.0, capitals_only=False)
    ms = [c.latency_ms for c in cov.covered]
    assert ms == sorted(ms) and all(m <= 8.0 for m in ms)
    assert cov.covered[0].place.adcode == center.adcode  # the city tier: its own city at the metro overhead
    assert cov.covered[0].latency_ms == pytest.approx(network.metro_overhead_ms)
    assert all(c.population_10k is None for c in cov.covered if c.place.level != "capital")


def test_serving_is_reverse_of_coverage(network, atlas):
    city = atlas.place("北京")
    served = {s.id for s, _ in serving_sites(network, city, 5.0)}
    for s in atlas.sites:
        assert (s.id in served) == (network.one_way_ms(city, s) <= 5.0)
    assert "zhangjiakou" in served


def test_transfer_time_and_cost(network):
    gbps = network.atlas.value("job_bandwidth_gbps")
    assert float(network.transfer_h(450.0)) == pytest.approx(450.0 * 8 / (gbps * 3600))
    cost = network.transfer_cost_cny(np.array([10.0, 10.0]), np.array([True, False]))
    assert cost[0] == 0.0 and cost[1] == pytest.approx(10.0 * network.atlas.value("transfer_price_cny_per_gb"))


def test_load_measured_csv(tmp_path, network, atlas):
    f = tmp_path / "m.csv"
    f.write_text("a,b,one_way_ms\n许昌,Zhengzhou,0.9\nzhongwei,北京,8.5\n", encoding="utf-8")
    assert network.load_measured(f) == 2
    assert network.one_way_ms(atlas.place("郑州"), atlas.place("Xuchang")) == 0.9
    assert network.one_way_ms(atlas.place("Beijing"), atlas.site("zhongwei")) == 8.5


@pytest.mark.parametrize(
    ("body", "row", "field"),
    [
        ("a,b,one_way_ms\n许昌,郑州,x\n", 2, "one_way_ms"),
        ("a,b,one_way_ms\n许昌,郑州,1\n许昌,Nowhereville,2\n", 3, "b"),
        ("a,b,one_way_ms\n许昌,郑州,-3\n", 2, "one_way_ms"),
        ("a,b\n许昌,郑州\n", 2, "one_way_ms"),
    ],
)
def test_load_measured_bad_rows(tmp_path, network, body, row, field):
    f = tmp_path / "bad.csv"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(DataError) as e:
        network.load_measured(f)
    assert (e.value.file, e.value.row, e.value.field) == ("bad.csv", row, field)


def test_node_types():
    assert isinstance(ATLAS.sites[0], Site) and isinstance(ATLAS.places[0], Place)


def test_metro_regime_reaches_the_city_tier(network, atlas):
    # a same-city pair pays only the metro overhead: the programme's 1 ms city tier is representable
    beijing = atlas.place("北京")
    assert network.one_way_ms(beijing, atlas.site("beijing-dc")) <= TIERS_MS["city"]
    assert {s.id for s, _ in serving_sites(network, beijing, TIERS_MS["city"])} == {"beijing-dc"}
    assert [c.place.short_zh for c in coverage(network, beijing, TIERS_MS["city"]).covered] == ["北京"]
    # the long-haul regime is unchanged where the old fit was pinned: Zhongwei-Beijing stays in its 8-10 ms band
    assert 8.0 <= network.one_way_ms(atlas.site("zhongwei"), beijing) <= 10.0


def test_calibration_residuals_and_out_of_sample_errors_are_bounded():
    cal = calibrate()
    fitted = [r for r in cal.rows if r["use"] == "fit"]
    assert len(fitted) == 5 and {r["use"] for r in cal.rows} == {"fit", "check"}
    assert all(abs(r["error_ms"]) < 1.0 for r in fitted)  # in-sample residuals
    assert all(r["loo_error_ms"] is not None and abs(r["loo_error_ms"]) < 2.5 for r in fitted)  # leave-one-out
    assert cal.loo_rmse_ms < 1.5
    check = next(r for r in cal.rows if r["use"] == "check")
    assert check["loo_error_ms"] is None and check["error_ms"] < 0  # public internet is slower than DC paths
