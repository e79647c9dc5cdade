"""The offline HTML report: structure, both languages, numbers, tolerance to missing keys, clear errors."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanwang.errors import SuanwangError
from suanwang.report import render_report, write_report
from suanwang.report.html import MAX_MAP_FLOWS, fmt, pct_change
from suanwang.report.i18n import STRINGS, ReportLanguageError
from suanwang.report.view import ResultsError, build_view, ratio

FIXTURE = Path(__file__).parent / "fixtures" / "results_sample.json"
RESULTS = json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def results() -> dict:
    return copy.deepcopy(RESULTS)


@pytest.fixture(scope="module")
def pages(results) -> dict[str, str]:
    return {lang: render_report(results, lang) for lang in ("en", "zh")}


def _payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "the page carries its data block"
    return json.loads(m.group(1))


def _core_hours(policy: dict) -> float:
    return sum(r["core_hours"] for r in policy["site_load"])


def _per_core_hour_ratio(results: dict, name: str, key: str) -> float:
    """A policy's total `key` per core-hour over the baseline's."""
    p, b = results["policies"][name], results["policies"][results["baseline"]]
    return (p["totals"][key] / _core_hours(p)) / (b["totals"][key] / _core_hours(b))


def _best_policy(results: dict) -> str:
    """Independent re-statement of the rule: no residency violations, then most work done (nearest percent), then
    the lowest mean of the two per-core-hour ratios."""
    scored = []
    for name, p in results["policies"].items():
        if name == results["baseline"]:
            continue
        t = p["totals"]
        mean_ratio = (
            _per_core_hour_ratio(results, name, "cost_cny") + _per_core_hour_ratio(results, name, "carbon_t")
        ) / 2
        scored.append((t["residency_violations"] > 0, -round(t["done"] / t["jobs"], 2), mean_ratio, name))
    return min(scored)[3]


def test_page_is_self_contained(pages):
    for html in pages.values():
        assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I), "no external scripts"
        assert not re.search(r"<link[^>]*\bhref\s*=", html, re.I), "no external stylesheets"
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I), "no remote src/href"
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I), "no remote CSS url()"
        assert "@import" not in html
        assert "echarts.registerMap" in html and '"UTF8Encoding":true' in html, "ECharts and the map are inline"
        assert len(html.encode()) < 2_500_000


def test_both_languages_render_their_strings(pages):
    assert '<html lang="en">' in pages["en"] and '<html lang="zh-CN">' in pages["zh"]
    for lang, html in pages.items():
        for key in ("title", "map_title", "compare_title", "util_title", "signals_title", "raised_title"):
            assert STRINGS[lang][key].replace("&", "&amp;") in html, (lang, key)
        assert "审图号" in html, "the footer says the map has no approval number"
    assert "张家口集群 Zhangjiakou" in _payload(pages["zh"])["site_names"].values()
    assert "Zhangjiakou 张家口集群" in _payload(pages["en"])["site_names"].values()


def test_every_policy_total_appears_in_the_comparison(results, pages):
    for html in pages.values():
        table = html[html.index('id="compare-table"') : html.index("</table>", html.index('id="compare-table"'))]
        for name, p in results["policies"].items():
            row = table[table.index(f'data-row-policy="{name}"') :]
            row = row[: row.index("</tr>")]
            t = p["totals"]
            for value, digits in ((t["cost_cny"], 0), (t["carbon_t"], 1), (t["wait_p95_h"], 2), (t["wan_tb"], 1)):
                assert fmt(value, digits) in row, (name, value)
            assert f"{_per_core_hour_ratio(results, name, 'cost_cny'):.3f}" in row
            assert f"{_per_core_hour_ratio(results, name, 'carbon_t'):.3f}" in row


def test_default_policy_is_the_best_non_baseline(results, pages):
    best = _best_policy(results)
    assert best != results["baseline"]
    for html in pages.values():
        assert _payload(html)["default_policy"] == best
        assert f'<option value="{best}" selected>' in html
        assert re.search(rf'<section class="kpis" data-policy="{re.escape(best)}">', html), "its KPIs are shown"


def test_carbon_raised_table_lists_the_largest_increase(results, pages):
    best = _best_policy(results)
    routes = results["policies"][best]["carbon_raised_routes"]
    assert routes, "the fixture has raised routes for the best policy"
    top = max(routes, key=lambda r: r["increase_t"])
    html = pages["en"]
    block = html[html.index(f'<div class="raised" data-policy="{best}">') :]
    block = block[: block.index("</table>")]
    assert "+" + fmt(top["increase_t"], 2) in block


def test_map_flows_leave_their_province_and_are_heaviest_first(results, pages):
    payload = _payload(pages["en"])
    province_of = {s["id"]: s["province_id"] for s in results["sites"]}
    for name, per in payload["per_policy"].items():
        flows = per["flows"]
        assert len(flows) <= MAX_MAP_FLOWS
        assert all(f["coords"][0] != f["coords"][1] for f in flows)
        assert [f["jobs"] for f in flows] == sorted((f["jobs"] for f in flows), reverse=True)
        assert all(f["raised"] == (f["carbon_t"] > f["carbon_if_local_t"]) for f in flows)
        flows_in = results["policies"][name]["flows"]
        moved = [f for f in flows_in if province_of[f["site_id"]] != f["origin_province"]]
        assert bool(flows) == bool(moved), name


def test_write_report_writes_the_file_and_accepts_a_directory(results, tmp_path):
    out = write_report(results, tmp_path / "deep" / "r.html", lang="zh")
    assert out == tmp_path / "deep" / "r.html" and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert write_report(results, tmp_path) == tmp_path / "report.html"


def test_names_from_results_are_escaped(results):
    r = copy.deepcopy(results)
    r["sites"][0]["name_en"] = "</script><script>alert(1)</script>"
    r["meta"]["scenario"] = "<b>bold</b> & co"
    html = render_report(r, "en")
    assert "<script>alert(1)" not in html
    assert html.count("<script") == 4, "only the page's own four script elements"
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html


def test_minimal_results_render():
    html = render_report({"policies": {"only": {"totals": {"cost_cny": 5.0}}}}, "en")
    payload = _payload(html)
    assert payload["baseline"] == payload["default_policy"] == "only"
    assert payload["per_policy"]["only"]["util"] is None


@pytest.mark.parametrize("key", ["meta", "sites", "provinces", "baseline", "signals"])
def test_each_optional_top_level_key_may_be_missing(results, key):
    r = {k: v for k, v in results.items() if k != key}
    payload = _payload(render_report(r, "zh"))
    assert payload["per_policy"], key
    if key == "sites":  # the atlas fills in the sites the flows need
        assert any(per["flows"] for per in payload["per_policy"].values())


_POLICY_KEYS = ["totals", "flows", "site_load", "utilisation", "carbon_raised_routes"]
_TOTAL_KEYS = ["cost_cny", "carbon_t", "wait_p95_h", "residency_violations", "west_share", "jobs"]


@settings(max_examples=15, deadline=None)
@given(
    drop_policy_keys=st.lists(st.sampled_from(_POLICY_KEYS), unique=True),
    drop_total_keys=st.lists(st.sampled_from(_TOTAL_KEYS), unique=True),
    junk=st.sampled_from([None, "n/a", float("nan"), float("inf"), True, [], {}]),
    which=st.integers(min_value=0, max_value=6),
)
def test_missing_or_junk_values_never_crash(drop_policy_keys, drop_total_keys, junk, which):
    r = copy.deepcopy(RESULTS)
    names = list(r["policies"])
    victim = r["policies"][names[which % len(names)]]
    for k in drop_policy_keys:
        victim.pop(k, None)
    baseline_totals = r["policies"][r["baseline"]].setdefault("totals", {})
    for k in drop_total_keys:
        baseline_totals[k] = junk
    if victim.get("flows"):
        victim["flows"][0]["jobs"] = junk
    view = build_view(r)
    if "cost_cny" in drop_total_keys:  # every junk value is a non-number: no baseline cost, no ratio
        assert all(p.cost_ratio is None for p in view.policies)
    html = render_report(r, "en")
    assert "</html>" in html and _payload(html)["policies"] == names


def test_bad_input_gives_a_clear_error():
    with pytest.raises(ResultsError, match="policies"):
        build_view({"meta": {}})
    with pytest.raises(ResultsError, match="policies"):
        build_view({"policies": []})
    with pytest.raises(ResultsError, match="JSON object"):
        build_view([1, 2])
    with pytest.raises(ReportLanguageError, match=r"'lang'.*en, zh"):
        render_report({"policies": {"a": {}}}, "fr")
    assert issubclass(ResultsError, SuanwangError) and issubclass(ReportLanguageError, SuanwangError)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=1e-6, max_value=1e12))
def test_a_policy_against_itself_is_ratio_one(x):
    assert ratio(x, x) == 1.0
    assert pct_change(ratio(x, x)) == "±0.0%"


@given(st.one_of(st.none(), st.booleans(), st.text(), st.integers(), st.floats()), st.integers(0, 4))
def test_fmt_never_fails(x, digits):
    out = fmt(x, digits)
    assert isinstance(out, str) and out


def test_a_run_on_another_scenario_is_not_completed_from_the_national_atlas(results):
    r = json.loads(json.dumps(results))
    used = r["policies"][next(iter(r["policies"]))]["site_load"][0]["site_id"]
    r["sites"] = [s for s in r["sites"] if s["id"] != used]
    r.pop("provinces", None)
    assert used in build_view(r).sites  # a national run: the atlas fills the gap
    r["meta"]["scenario"] = "my-region"
    view = build_view(r)
    assert used not in view.sites and not view.provinces  # another scenario: its own results only
