"""The report in a real headless browser (Debian chromium via Playwright): every chart draws, no JS errors, offline.

Needs chromium and CJK fonts (`make browser` installs them); SUANWANG_CHROMIUM overrides the executable path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from offline_page import FLAGS, chromium_path, open_offline
from playwright.sync_api import sync_playwright

from suanwang.report import write_report

FIXTURE = Path(__file__).parent / "fixtures" / "results_sample.json"
CHARTS = ["map", "chart-ratio", "chart-wait", "chart-violations", "heatmap", "chart-price", "chart-grid"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        yield b
        b.close()


def _open(browser, path: Path):
    """A page on the report at `path` that records JS errors and any request that would leave the file."""
    return open_offline(browser, path, "window.suanwangReport && window.suanwangReport.ready")


STATE_JS = """(ids) => ids.map((id) => {
  const el = document.getElementById(id);
  const canvas = el.querySelector('canvas');
  const opt = echarts.getInstanceByDom(el).getOption();
  return {id, w: canvas ? canvas.width : 0, h: canvas ? canvas.height : 0,
          series: (opt.series || []).map((s) => ({type: s.type, n: (s.data || []).length})),
          graphic: (opt.graphic || []).length};
})"""


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_chart_renders_without_errors_offline(browser, tmp_path, lang):
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    page, errors, remote = _open(browser, write_report(results, tmp_path / f"report_{lang}.html", lang))
    state = {c["id"]: c for c in page.evaluate(STATE_JS, CHARTS)}
    for cid in CHARTS:
        assert state[cid]["w"] > 0 and state[cid]["h"] > 0, f"{cid} has a drawn canvas"
    map_series = {s["type"]: s["n"] for s in state["map"]["series"]}
    assert map_series["scatter"] >= len(results["sites"]) * 0.9, "the sites are on the map"
    assert sum(s["n"] for s in state["map"]["series"] if s["type"] == "lines") > 0, "flows are drawn"
    assert state["heatmap"]["series"][0]["n"] > 0
    assert all(s["n"] == len(results["policies"]) for s in state["chart-ratio"]["series"])
    assert len(state["chart-price"]["series"]) == len(results["signals"]["price_cny_per_kwh"])
    geo_regions = page.evaluate(
        "echarts.getInstanceByDom(document.getElementById('map')).getModel()"
        ".getComponent('geo').coordinateSystem.regions.length"
    )
    assert geo_regions >= 34, "the China map is registered with every province"
    page.screenshot(path=str(tmp_path / f"report_{lang}.png"), full_page=True)
    assert not errors, errors
    assert not remote, f"the page tried to reach the network: {remote}"


def test_switching_policy_redraws_and_copes_with_a_missing_series(browser, tmp_path):
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    without_util = next(n for n, p in results["policies"].items() if "utilisation" not in p)
    page, errors, _ = _open(browser, write_report(results, tmp_path / "report.html"))
    before = page.evaluate(STATE_JS, ["map"])[0]
    page.select_option("#policy-select", without_util)
    page.wait_for_timeout(300)
    heat, after = page.evaluate(STATE_JS, ["heatmap", "map"])
    assert heat["graphic"] == 1 and not heat["series"], "the heatmap says it has no data"
    assert after["series"] != before["series"], "the map shows the other policy's flows"
    visible = page.evaluate(
        "[...document.querySelectorAll('section.kpis')].filter(e => !e.hidden).map(e => e.dataset.policy)"
    )
    assert visible == [without_util]
    assert page.inner_text(".policy-name >> nth=0") == without_util
    assert not errors, errors
