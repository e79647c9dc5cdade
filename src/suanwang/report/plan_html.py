"""The planner's self-contained offline HTML report (zh / en): a China map with the candidates, the chosen sites
and their 1 / 5 / 20 ms coverage, the ranked table, the Pareto chart, the sensitivity chart and the simulation
validation with intervals. ECharts and the China map are inlined, as in the simulation report."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from suanwang.report.html import _asset, fmt, script_json

STRINGS = {
    "en": {
        "title": "Where should a new hub go?",
        "map": "Candidates, chosen sites and their latency tiers (capitals within 1 / 5 / 20 ms one-way)",
        "ranked": "Candidates for one new hub, best first",
        "sets": "Best set of k new hubs",
        "pareto": "Cost-carbon trade-off of single candidates (change per year; size: real-time reach)",
        "sensitivity": "Sensitivity: value of the base case's best candidate under each variant",
        "validation": "Simulation of the top candidates and the status quo (mean ± 95 % CI)",
        "conclusions": "Conclusions",
        "meta": "Assumptions",
        "candidates": "candidates",
        "chosen": "chosen",
        "existing": "existing sites",
        "cost": "cost change (CNY/year)",
        "carbon": "carbon change (t/year)",
        "value": "marginal value",
    },
    "zh": {
        "title": "新枢纽应该建在哪里？",
        "map": "候选城市、选定枢纽及其时延圈（1 / 5 / 20 毫秒单向内的省会）",
        "ranked": "单个新枢纽候选排名",
        "sets": "k 个新枢纽的最优组合",
        "pareto": "单个候选的成本与碳排放权衡（每年变化；大小：实时需求覆盖）",
        "sensitivity": "敏感性分析：基准最优候选在各情景下的价值",
        "validation": "前几名候选与现状的仿真（均值 ± 95% 置信区间）",
        "conclusions": "结论",
        "meta": "假设",
        "candidates": "候选城市",
        "chosen": "选定",
        "existing": "现有站点",
        "cost": "成本变化（元/年）",
        "carbon": "碳排放变化（吨/年）",
        "value": "边际价值",
    },
}


METRICS = ("cost_cny", "carbon_t", "wait_p95_h", "deadline_misses", "rejected")


def render_plan_report(payload: dict, lang: str = "en") -> str:
    """The plan report page for a `plan hub` payload (planner.report.hub_payload, with optional sensitivity and
    validation) as one HTML string."""
    t = STRINGS[lang]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters["fmt"] = fmt
    data = {
        "t": t,
        "map": payload["map"],
        "ranked": payload["ranked"],
        "sensitivity": payload.get("sensitivity"),
    }
    meta = [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in payload["meta"].items()]
    return env.from_string(_asset("plan.html.j2")).render(
        lang=lang,
        t=t,
        sets=payload["sets"],
        ranked=payload["ranked"],
        sensitivity=payload.get("sensitivity"),
        validation=payload.get("validation"),
        metrics=METRICS,
        meta=meta,
        echarts_js=_asset("echarts.min.js"),
        china_json=script_json(json.loads(_asset("china.json"))),
        payload_json=script_json(data),
        page_js=_asset("plan.js"),
    )


def write_plan_report(payload: dict, path: Path, lang: str = "en") -> Path:
    """Write the offline plan report to `path` (a directory gets plan.html); returns the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "plan.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_plan_report(payload, lang), encoding="utf-8")
    return path
