"""Regenerate docs/planning.md: the hub planner, its assumptions, and the founding Xuchang claim checked against
the latency model. Run: `python scripts/planner_doc.py` (about a minute; every number comes from the code)."""

from pathlib import Path

from suanwang.atlas import load_atlas
from suanwang.network import Network, calibrate, coverage
from suanwang.network.geo import great_circle_km
from suanwang.planner import mip
from suanwang.planner.candidates import load_defaults, select_places
from suanwang.planner.capacity import __doc__ as capacity_doc
from suanwang.planner.capacity import plan_capacity
from suanwang.planner.hub import plan_hub, ranking_rows, set_rows, ties
from suanwang.planner.instance import default_carbon_year
from suanwang.planner.report import sensitivity_payload, validation_rows
from suanwang.planner.sensitivity import measured_network

OUT = Path(__file__).resolve().parents[1] / "docs/planning.md"
NEIGHBOURS = ["郑州", "武汉", "合肥", "西安", "太原", "济南", "石家庄"]


def table(rows: list[dict], cols: list[str]) -> str:
    """A markdown table of `rows` restricted to `cols`."""
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    return "\n".join(out)


def xuchang_section(atlas, net) -> str:
    xc = atlas.place("许昌")
    cal = calibrate()
    measured, n = measured_network(net)
    models = [
        (f"fitted ({cal.route_factor:g} x km / 200 + {cal.overhead_ms:g} ms)", net),
        ("MIIT direct-link target (1.5 x km / 200, no overhead)", Network(atlas, 1.5, 0.0, {})),
        ("pure fibre floor (km / 200, no overhead)", Network(atlas, 1.0, 0.0, {})),
        (f"fitted + {n} measured pairs", measured),
    ]
    lines = [
        "## The founding claim: Xuchang reaches seven provincial capitals within 5 ms",
        "",
        "The proposal gives no latency model. Ours says (capitals within 5 ms of Xuchang, one-way and round trip):",
        "",
        "| latency model | within 5 ms one-way | within 5 ms round trip |",
        "|---|---|---|",
    ]
    for name, m in models:
        one = [c.place.label for c in coverage(m, xc, 5.0).covered]
        rtt = [c.place.label for c in coverage(m, xc, 5.0, rtt=True).covered]
        lines.append(f"| {name} | {len(one)}: {', '.join(one) or '-'} | {len(rtt)}: {', '.join(rtt) or '-'} |")
    lines += ["", "One-way latency from Xuchang to the seven neighbouring capitals:", ""]
    rows = []
    for city in NEIGHBOURS:
        p = atlas.place(city)
        row = {"capital": p.label, "km": round(float(great_circle_km(xc.lat, xc.lon, p.lat, p.lon)), 1)}
        for name, m in models[:3]:
            row[name.split(" (")[0]] = round(m.one_way_ms(xc, p), 2)
        rows.append(row)
    lines.append(table(rows, list(rows[0])))
    fitted_one = {c.place.short_zh for c in coverage(net, xc, 5.0).covered}
    floor_rtt = {c.place.short_zh for c in coverage(models[2][1], xc, 5.0, rtt=True).covered}
    lines += [
        "",
        f"Under the fitted model (its {cal.overhead_ms:g} ms overhead is switching and access, fitted to published",
        f"east-west measurements) {len(fitted_one)} capital(s) lie within 5 ms one-way and "
        f"{len(coverage(net, xc, 5.0, rtt=True).covered)} within 5 ms round trip.",
        "The seven neighbouring capitals are "
        + ("exactly" if floor_rtt == set(NEIGHBOURS) else "not exactly")
        + " the capitals within 5 ms round trip at the speed of light in straight fibre, and all seven are within 5 ms"
        " one-way under the MIIT direct-link target"
        + (
            ""
            if set(NEIGHBOURS) <= {c.place.short_zh for c in coverage(models[1][1], xc, 5.0).covered}
            else " (not so)"
        )
        + ". So the claim holds for the physical floor or a direct-link network built to the 2023 target, not for the",
        "latency the fitted model predicts over today's routes: the answer depends on that assumption.",
    ]
    return "\n".join(lines)


def plan_section(atlas, net, year) -> str:
    names = ["许昌", *NEIGHBOURS]
    plan = plan_hub(atlas, net, select_places(atlas, names), k_max=2, carbon_year=year)
    sens = sensitivity_payload(plan)
    val = validation_rows(plan, 3, 5, 2000, 2.0)
    henan = plan_hub(atlas, net, select_places(atlas, province="河南"), k_max=1, carbon_year=year)
    cols = ["rank", "city", "value", "realtime_served_pp", "cost_cny_per_year", "carbon_t_per_year", "reach_5ms_share"]
    vcols = [
        "scenario",
        "cost_cny",
        "cost_cny_ci95",
        "carbon_t",
        "carbon_t_ci95",
        "deadline_misses",
        "deadline_misses_ci95",
    ]
    return "\n".join(
        [
            "## A central-China hub: Xuchang against the neighbouring capitals",
            "",
            f"`suanwang plan hub --candidates {','.join(names)} --k 2 --sensitivity --validate` (carbon year {year},",
            "balanced weights, default candidate assumptions):",
            "",
            table(ranking_rows(plan), cols),
            "",
            table(set_rows(plan), ["k", "sites", "gap", "value", "cost_cny_per_year", "carbon_t_per_year"]),
            "",
            "Sensitivity (the same candidates under every variant):",
            "",
            table(sens["variants"], ["variant", "best", "base_best_rank", "base_best_capitals_5ms"]),
            "",
            *[f"- {c}" for c in sens["conclusions"]],
            "",
            "Validation by simulation (online policy, 2,000 jobs over 2 days, 5 seeds; mean and 95 % CI half-width):",
            "",
            table(val, vcols),
            "",
            _noise(val),
            "",
            "Inside Henan (`suanwang plan hub --province 河南 --k 1`): "
            f"{ties(henan)} of {len(henan.candidates)} cities tie on the objective - every Henan city shares the",
            "province's price and grid factor and Henan's real-time demand is already within 5 ms of the Zhengzhou",
            "provincial DC, so the model cannot tell them apart; the table breaks ties by real-time reach (share of",
            "national real-time demand within 5 ms):",
            "",
            table(ranking_rows(henan, 5), cols),
        ]
    )


def _noise(val: list[dict]) -> str:
    """Whether each simulated candidate's carbon differs from the status quo beyond the 95 % intervals."""
    out = []
    for r in val[1:]:
        d, half = r["carbon_t_vs_first"], r["carbon_t_vs_first_ci95"]
        verdict = "differs" if half is not None and abs(d) > half else "within the noise"
        out.append(f"{r['scenario']} {d:+.3g} ± {half:.2g} t ({verdict})")
    return (
        "Carbon against the status quo, paired by seed (same jobs), mean difference ± 95 % CI: " + "; ".join(out) + "."
    )


def capacity_section(atlas, net, year) -> str:
    growth, miss = 1.5, 0.02
    plan = plan_capacity(atlas, net, growth=growth, max_miss=miss, carbon_year=year)
    rows = [
        {"site": s.label, "add_cores": round(float(c)), "add_cards": round(float(g))}
        for s, c, g in zip(plan.sites, plan.add_cores, plan.add_cards, strict=True)
        if c >= 0.5 or g >= 0.5
    ]
    lines = [
        "## How much capacity: `suanwang plan capacity`",
        "",
        "```",
        capacity_doc.strip(),
        "```",
        "",
        f"`suanwang plan capacity --growth {growth:g} --max-miss {miss:g}` (every site may grow):",
        "",
        table(rows, ["site", "add_cores", "add_cards"]) if rows else "(nothing to add)",
        "",
        f"Annualised capital {plan.capex_cny_per_year:,.0f} CNY/year, "
        f"operating {plan.opex_cny_per_year:,.0f} CNY/year; "
        + ", ".join(f"{k} {v:.1%}" for k, v in plan.served.items())
        + ". Capital per core and per card: "
        + plan.basis["capex_per_core"]
        + "; "
        + plan.basis["capex_per_card"]
        + ". `--grow` limits which sites may grow, `--at 许昌` adds a new site there, `--validate` simulates today's",
        "and the sized network on the grown demand (share of jobs missing their deadline or rejected, 95 % CI).",
        "A target no capacity at the allowed sites can meet is a one-line error naming the class and the fix.",
    ]
    return "\n".join(lines)


SWEEP = """## Studies that outgrow one machine: `suanwang sweep`

A grid of scenarios x policies x seeds x days from a YAML file (`examples/sweep-xuchang.yaml`) or flags
(`--scenarios national,examples/scenario-xuchang-hub.yaml --policies local-only,online --seeds 5 --days 2,7`). Each
run is a pure function of (scenario, policy, seed, days, jobs), so local worker processes (`--workers`, default 2)
and a Ray cluster (`--ray ADDRESS` or `--ray auto`; needs the `ray` extra) give the same per-run summaries - tested
on a two-node Ray cluster started on one host. A failed run is listed with its cause; the others finish. `--out DIR`
writes `runs.json` (every run) and `aggregate.csv` (mean and 95 % CI over seeds per scenario, policy and days).
Scenario files must be readable at the same path on every Ray node."""


def main() -> None:
    atlas = load_atlas()
    net = Network(atlas)
    year = default_carbon_year(atlas)
    d = load_defaults()
    assumptions = "\n".join(
        f"| {k} | {v.get('value', v.get('rule', ''))} | {v.get('source') or v.get('assumption')} |"
        for k, v in d.items()
    )
    text = f"""# The planner: where a new hub should go

<!-- generated by `python scripts/planner_doc.py`; do not edit by hand -->

`suanwang plan hub` ranks candidate cities for one new hub, chooses the best set of k new hubs jointly, and says
whom each would serve within the 1 / 5 / 20 ms tiers and what it would change in the national cost and carbon of
batch work. Options: `--candidates 许昌,郑州`, `--province 河南`, `--region central`, `--k N`, `--objective
balanced|coverage|cost|carbon` and `--w-realtime/--w-interactive/--w-cost/--w-carbon`, `--basis demand|population`,
`--cores/--cards/--green-share` (every candidate), `--scenario FILE`, `--carbon-year`, `--json`, `--csv DIR`,
`--lang zh`, `--sensitivity`, `--validate` (`--validate-top`, `--seeds`, `--sim-jobs`, `--sim-days`).

## The program

```
{mip.__doc__.strip()}
```

Demand is the national demand model as a steady load (busy cores and cards): each latency class's share of
core-hours and card-hours from one draw of the model, split over the 363 cities by its origin weights (GDP shares;
the capital takes 40 %). `--basis population` weighs coverage by province population split the same way. Each site
may be loaded to `--max-util` (0.85, an assumption leaving headroom for queueing) of its cores and cards.
For k = 1 every candidate is evaluated exactly (one warm-started LP per candidate); for every k the MIP is solved by
HiGHS and its proven relative gap is printed (0 = optimal). Not modelled: residency rules and queueing; the
simulation validation (`--validate`) runs the real scheduler, with both, on the sized network.

## Candidate assumptions (planner/data/candidates.yaml)

| key | value | basis |
|---|---|---|
{assumptions}

A scenario file overrides them per city: a site whose `labels` include `candidate` is planned as the candidate of
the city nearest it, with its own numbers and `basis`, and is not counted as an existing site.

{xuchang_section(atlas, net)}

{plan_section(atlas, net, year)}

{capacity_section(atlas, net, year)}

{SWEEP}
"""
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.name}")


if __name__ == "__main__":
    main()
