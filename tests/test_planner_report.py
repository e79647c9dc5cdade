"""The plan report in headless chromium (Debian chromium via Playwright, `make browser`): every chart draws, no JS
error, nothing is fetched from the network; zh and en."""

from __future__ import annotations

import json

import pytest
from offline_page import FLAGS, chromium_path, open_offline
from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from suanwang.cli.main import app
from suanwang.report.plan_html import write_plan_report

CHARTS = ["map", "pareto", "sensitivity"]
STATE_JS = """(ids) => ids.map((id) => {
  const el = document.getElementById(id);
  const canvas = el.querySelector('canvas');
  const opt = echarts.getInstanceByDom(el).getOption();
  return {id, w: canvas ? canvas.width : 0, h: canvas ? canvas.height : 0,
          series: (opt.series || []).map((s) => ({type: s.type, n: (s.data || []).length}))};
})"""


@pytest.fixture(scope="module")
def payload():
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "hub",
            "--candidates",
            "许昌,郑州,武汉,西安",
            "--k",
            "2",
            "--sensitivity",
            "--validate",
            "--seeds",
            "2",
            "--sim-jobs",
            "200",
            "--sim-days",
            "0.5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_plan_report_renders_offline(payload, tmp_path, lang):
    path = write_plan_report(payload, tmp_path / f"plan_{lang}.html", lang)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        page, errors, remote = open_offline(browser, path, "window.suanwangPlan && window.suanwangPlan.ready")
        state = {c["id"]: c for c in page.evaluate(STATE_JS, CHARTS)}
        browser.close()
    for cid in CHARTS:
        assert state[cid]["w"] > 0 and state[cid]["h"] > 0, cid
    types = {s["type"]: s["n"] for s in state["map"]["series"]}
    assert types["effectScatter"] == 2  # the two chosen sites
    lines = [s["n"] for s in state["map"]["series"] if s["type"] == "lines"]
    assert sum(lines) > 0, "coverage lines are drawn"
    assert state["pareto"]["series"][0]["n"] == len(payload["ranked"])
    assert state["sensitivity"]["series"][0]["n"] == len(payload["sensitivity"]["variants"])
    assert not errors, errors
    assert not remote, remote
