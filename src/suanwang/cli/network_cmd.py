"""CLI: `suanwang network latency|coverage|serving|matrix|calibration` - the latency model (数网)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from suanwang.atlas import Site
from suanwang.cli.common import console, emit, for_table, friendly_errors, write_json
from suanwang.cli.options import JsonOpt, ScenarioOpt, atlas_for
from suanwang.network import TIERS_MS, Network, calibrate, coverage, serving_sites
from suanwang.network.calibration import FIBRE_KM_PER_MS
from suanwang.network.geo import great_circle_km

app = typer.Typer(no_args_is_help=True, help="The network model (数网): latency, coverage, serving, matrix.")

RttOpt = Annotated[bool, typer.Option("--rtt", help="Round-trip time (2 x one-way) instead of one-way.")]
FactorOpt = Annotated[
    float | None,
    typer.Option("--route-factor", min=0.0, help="Route inflation over the great circle (default: calibrated)."),
]
OverheadOpt = Annotated[
    float | None, typer.Option("--overhead-ms", min=0.0, help="Fixed one-way overhead in ms (default: calibrated).")
]
MeasuredOpt = Annotated[
    Path | None, typer.Option("--measured", help="CSV a,b,one_way_ms of measured pairs that override the model.")
]
TierOpt = Annotated[
    str,
    typer.Option(
        "--tier", "-t", help=f"Tier in ms, or a tier name: {', '.join(f'{k}={v:g}' for k, v in TIERS_MS.items())}."
    ),
]


def build_network(
    route_factor: float | None = None,
    overhead_ms: float | None = None,
    measured: Path | None = None,
    scenario: Path | None = None,
) -> Network:
    """The network of the atlas (or scenario), with optional sensitivity parameters and measured overrides."""
    if scenario is not None:
        from suanwang.atlas.scenario import load_scenario

        net = load_scenario(scenario).network
    else:
        net = Network(atlas_for(None))
    if route_factor is not None:
        net.route_factor = route_factor
    if overhead_ms is not None:
        net.overhead_ms = overhead_ms
    if measured is not None:
        net.load_measured(measured)
    return net


def parse_tier(tier: str) -> float:
    """A tier in ms from a number ('5', '5ms') or a tier name ('city', 'province', 'hub')."""
    key = tier.strip().lower()
    if key in TIERS_MS:
        return TIERS_MS[key]
    try:
        value = float(key.removesuffix("ms"))
    except ValueError:
        names = ", ".join(TIERS_MS)
        raise typer.BadParameter(f"'{tier}' is neither a number of ms nor a tier name ({names})") from None
    if value <= 0:
        raise typer.BadParameter(f"tier must be > 0 ms, got {tier}")
    return value


def kind_word(rtt: bool) -> str:
    """'round-trip' or 'one-way', as every output states."""
    return "round-trip" if rtt else "one-way"


def node_label(node) -> str:
    """Bilingual label of a place or site."""
    return node.label


@app.command("latency")
@friendly_errors
def latency_cmd(
    a: Annotated[str, typer.Argument(help="City or site (许昌 / Xuchang / 411000 / zhongwei).")],
    b: Annotated[str, typer.Argument(help="City or site.")],
    rtt: RttOpt = False,
    route_factor: FactorOpt = None,
    overhead_ms: OverheadOpt = None,
    measured: MeasuredOpt = None,
    scenario: ScenarioOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Latency between two cities or sites (ms, one-way unless --rtt) and their great-circle distance (km)."""
    net = build_network(route_factor, overhead_ms, measured, scenario)
    na, nb = net.resolve(a), net.resolve(b)
    one_way = net.one_way_ms(na, nb)
    km = float(great_circle_km(na.lat, na.lon, nb.lat, nb.lon))
    overridden = net.is_measured(na, nb)
    ms = 2.0 * one_way if rtt else one_way
    row = {
        "from": node_label(na),
        "to": node_label(nb),
        "latency_ms": round(ms, 3),
        "kind": kind_word(rtt),
        "one_way_ms": round(one_way, 3),
        "rtt_ms": round(2.0 * one_way, 3),
        "km": round(km, 1),
        "basis": "measured override"
        if overridden
        else f"model: {net.route_factor:g} x km / {FIBRE_KM_PER_MS:g} + overhead rising from "
        f"{min(net.metro_overhead_ms, net.overhead_ms):g} ms (same city) to {net.overhead_ms:g} ms "
        f"over ~{net.metro_km:g} km",
    }
    if as_json:
        write_json(row)
        return
    console.print(
        f"{row['from']} -> {row['to']}: [bold]{row['latency_ms']:.2f} ms {row['kind']}[/bold] "
        f"({row['km']:.1f} km great-circle; {row['basis']})",
        highlight=False,
    )


@app.command("coverage")
@friendly_errors
def coverage_cmd(
    center: Annotated[str, typer.Argument(help="City or site at the centre (许昌, zhongwei, ...).")],
    tier: TierOpt = "province",
    rtt: RttOpt = False,
    all_cities: Annotated[bool, typer.Option("--all-cities", help="All cities, not only provincial capitals.")] = False,
    route_factor: FactorOpt = None,
    overhead_ms: OverheadOpt = None,
    measured: MeasuredOpt = None,
    scenario: ScenarioOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which capitals (or cities) lie within a latency tier of CENTER, with latency, km and covered population."""
    net = build_network(route_factor, overhead_ms, measured, scenario)
    tier_ms = parse_tier(tier)
    node = net.resolve(center)
    cov = coverage(net, node, tier_ms, rtt=rtt, capitals_only=not all_cities)
    rows = [
        {
            "city": c.place.label,
            "adcode": c.place.adcode,
            "province": net.atlas.province(c.place.province_id).name_zh,
            "latency_ms": c.latency_ms,
            "km": c.km,
            "population_10k": c.population_10k,
        }
        for c in cov.covered
    ]
    meta = {
        "center": node_label(node),
        "tier_ms": tier_ms,
        "kind": kind_word(rtt),
        "covered": len(rows),
        "covered_population_10k": cov.population_10k,
        "population_basis": "NBS 2024 province population of each covered provincial capital",
        "route_factor": net.route_factor,
        "overhead_ms": net.overhead_ms,
        "metro_overhead_ms": net.metro_overhead_ms,
        "metro_km": net.metro_km,
    }
    what = "cities" if all_cities else "provincial capitals"
    emit(
        for_table(rows, as_json),
        ["city", "province", "latency_ms", "km", "population_10k"],
        as_json=as_json,
        title=f"{what} within {tier_ms:g} ms {kind_word(rtt)} of {node_label(node)}",
        meta=meta,
    )


@app.command("serving")
@friendly_errors
def serving_cmd(
    city: Annotated[str, typer.Argument(help="City whose serving sites to list.")],
    tier: TierOpt = "province",
    rtt: RttOpt = False,
    route_factor: FactorOpt = None,
    overhead_ms: OverheadOpt = None,
    measured: MeasuredOpt = None,
    scenario: ScenarioOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sites that serve CITY within a latency tier (the reverse of coverage), nearest first."""
    net = build_network(route_factor, overhead_ms, measured, scenario)
    tier_ms = parse_tier(tier)
    place = net.atlas.place(city)
    rows = [
        {
            "site": s.label,
            "id": s.id,
            "kind": s.kind,
            "latency_ms": ms,
            "km": round(float(great_circle_km(place.lat, place.lon, s.lat, s.lon)), 1),
        }
        for s, ms in serving_sites(net, place, tier_ms, rtt=rtt)
    ]
    emit(
        for_table(rows, as_json),
        as_json=as_json,
        title=f"Sites within {tier_ms:g} ms {kind_word(rtt)} of {place.label}",
        meta={"city": place.label, "tier_ms": tier_ms, "kind": kind_word(rtt), "sites": len(rows)},
    )


@app.command("matrix")
@friendly_errors
def matrix_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")],
    rtt: RttOpt = False,
    capitals: Annotated[
        bool, typer.Option("--capitals/--cities", help="Rows: the 31 provincial capitals, or every city (default).")
    ] = False,
    route_factor: FactorOpt = None,
    overhead_ms: OverheadOpt = None,
    measured: MeasuredOpt = None,
    scenario: ScenarioOpt = None,
) -> None:
    """Write the latency matrix as CSV: rows are places, columns are sites, ms one-way unless --rtt."""
    net = build_network(route_factor, overhead_ms, measured, scenario)
    places = net.atlas.capitals if capitals else net.atlas.places
    sites: list[Site] = net.atlas.sites
    m = net.matrix_ms(places, sites) * (2.0 if rtt else 1.0)
    with out.open("w", newline="", encoding="utf-8") as f:
        f.write(f"# {kind_word(rtt)} latency in ms; rows: places (adcode, name); columns: site ids\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["adcode", "name", *[s.id for s in sites]])
        for p, row in zip(places, m, strict=True):
            w.writerow([p.adcode, p.short_zh, *(f"{x:.3f}" for x in row)])
    console.print(f"wrote {len(places)} places x {len(sites)} sites, {kind_word(rtt)} ms, to {out}", highlight=False)


@app.command("calibration")
@friendly_errors
def calibration_cmd(as_json: JsonOpt = False) -> None:
    """The two-regime fit, each published point, the model value, its residual and leave-one-out error."""
    cal = calibrate()
    meta = {
        "model": f"one_way_ms = route_factor x km / {FIBRE_KM_PER_MS:g} + overhead_ms"
        " - (overhead_ms - metro_overhead_ms) x exp(-km / metro_km)",
        "route_factor": cal.route_factor,
        "overhead_ms": cal.overhead_ms,
        "metro_overhead_ms": cal.metro_overhead_ms,
        "metro_km": cal.metro_km,
        "rmse_ms": cal.rmse_ms,
        "max_abs_error_ms": cal.max_abs_error_ms,
        "loo_rmse_ms": cal.loo_rmse_ms,
        "check_rmse_ms": cal.check_rmse_ms,
        "measurements": len(cal.rows),
    }
    emit(
        for_table(cal.rows, as_json),
        ["path", "km", "measured_ms", "model_ms", "error_ms", "loo_error_ms", "use", "kind", "source"],
        as_json=as_json,
        title="Latency model calibration (one-way ms; least squares on the 'fit' rows, leave-one-out errors)",
        meta=meta,
    )
    if not as_json:
        console.print(
            f"route_factor {cal.route_factor:g}, overhead {cal.metro_overhead_ms:g} ms (same city) -> "
            f"{cal.overhead_ms:g} ms (long haul) over ~{cal.metro_km:g} km; RMSE {cal.rmse_ms:g} ms, "
            f"max |error| {cal.max_abs_error_ms:g} ms, leave-one-out RMSE {cal.loo_rmse_ms:g} ms, "
            f"check rows RMSE {cal.check_rmse_ms} ms",
            highlight=False,
        )
