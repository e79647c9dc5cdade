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
        "ranked": "Candidates for one new hub, best first (by marginal value of the objective)",
        "sets": "Best set of k new hubs (highest objective; gap: HiGHS's proven relative gap)",
        "pareto": (
            "Cost-carbon trade-off of single candidates (change in national batch totals per year; size: "
            "real-time reach)"
        ),
        "sensitivity": "Sensitivity: marginal value of the base case's best candidate under each variant",
        "basis_note": (
            "“Best” = the highest value of the planning objective{weights}: {objective}. Cost and carbon are "
            "changes in the national totals of batch work per year at the demand model's steady load (totals, "
            "not per unit of work: every candidate serves the same demand), CPU cores and GPU cards both counted "
            "(energy = (cores × W per core + cards × W per card) × PUE). Carbon: {carbon}; grid factors of "
            "{year}."
        ),
        "objective": (
            "w_rt × real-time share served within 5 ms + w_int × interactive share served within 20 ms − w_cost × "
            "batch cost / reference − w_carbon × batch carbon / reference (reference: every province's batch at "
            "its own provincial DC)"
        ),
        "market": "market-based (grid factor × (1 − green share))",
        "location": "location-based (grid factor alone)",
        "validation": "Simulation of the top candidates and the status quo (mean ± 95 % CI)",
        "conclusions": "Conclusions",
        "meta": "Assumptions",
        "candidates": "candidates",
        "chosen": "chosen",
        "existing": "existing sites",
        "cost": "cost change (CNY/year, total)",
        "carbon": "carbon change (t/year, total, {carbon_short})",
        "carbon_short_market": "market-based",
        "carbon_short_location": "location-based",
        "value": "marginal value (objective)",
    },
    "zh": {
        "title": "新枢纽应该建在哪里？",
        "map": "候选城市、选定枢纽及其时延圈（1 / 5 / 20 毫秒单向内的省会）",
        "ranked": "单个新枢纽候选排名（按目标函数的边际价值从高到低）",
        "sets": "k 个新枢纽的最优组合（目标函数最高；gap：HiGHS 证明的相对间隙）",
        "pareto": "单个候选的成本与碳排放权衡（全国批处理总量的每年变化；大小：实时需求覆盖）",
        "sensitivity": "敏感性分析：基准最优候选在各情景下的边际价值",
        "basis_note": (
            "“最优”= 规划目标函数值最高{weights}：{objective}。成本与碳排放为全国批处理工作每年总量的变化"
            "（需求模型的稳态负载下；为总量而非单位工作量：各候选服务相同的需求），CPU 核与 GPU 卡均计入"
            "（能耗 =（核数 × 每核功率 + 卡数 × 每卡功率）× PUE）。碳排放：{carbon}；电网排放因子年份 {year}。"
        ),
        "objective": (
            "w_rt × 5 毫秒内实时需求覆盖率 + w_int × 20 毫秒内交互需求覆盖率 − w_cost × 批处理成本 / 参考值"
            " − w_carbon × 批处理碳排放 / 参考值（参考值：各省批处理均在本省数据中心运行）"
        ),
        "market": "市场法（电网排放因子 ×（1 − 绿电占比））",
        "location": "位置法（仅电网排放因子）",
        "validation": "前几名候选与现状的仿真（均值 ± 95% 置信区间）",
        "conclusions": "结论",
        "meta": "假设",
        "candidates": "候选城市",
        "chosen": "选定",
        "existing": "现有站点",
        "cost": "成本变化（元/年，总量）",
        "carbon": "碳排放变化（吨/年，总量，{carbon_short}）",
        "carbon_short_market": "市场法",
        "carbon_short_location": "位置法",
        "value": "边际价值（目标函数）",
    },
}


METRICS = ("cost_cny", "carbon_t", "wait_p95_h", "deadline_misses", "rejected")


def plan_strings(lang: str, meta: dict) -> dict[str, str]:
    """The plan report's strings for `lang`, the "best" note and the carbon headers stating their basis from the
    payload's meta (objective, objective_weights, carbon_basis, carbon_year); a missing field is left out."""
    t = dict(STRINGS[lang])
    basis = "location" if str(meta.get("carbon_basis", "market")).startswith("location") else "market"
    weights = meta.get("objective_weights")
    shown = ", ".join(f"{k} {v:g}" for k, v in weights.items()) if isinstance(weights, dict) else ""
    t["basis_note"] = t["basis_note"].format(
        weights=f" ({shown})" if shown else "",
        objective=str(meta.get("objective") or t["objective"]) if lang == "en" else t["objective"],
        carbon=t[basis],
        year=meta.get("carbon_year", "—"),
    )
    t["carbon"] = t["carbon"].format(carbon_short=t[f"carbon_short_{basis}"])
    return t


def render_plan_report(payload: dict, lang: str = "en") -> str:
    """The plan report page for a `plan hub` payload (planner.report.hub_payload, with optional sensitivity and
    validation) as one HTML string."""
    t = plan_strings(lang, payload.get("meta") if isinstance(payload.get("meta"), dict) else {})
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
