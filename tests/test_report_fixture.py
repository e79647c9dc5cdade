"""The report's sample results (tests/fixtures/results_sample.json): how it is made and that it follows the schema.

The sample is a hand-built stand-in for the simulator's results.json: real atlas sites, provinces and hourly
signals, demand in proportion to population, and seven toy policies that route it by simple rules. Numbers are
consistent with each other (energy = core-hours x watts per core x PUE, carbon = energy x grid x (1 - green)),
not a simulation. Regenerate with: python tests/test_report_fixture.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from suanwang.atlas import load_atlas
from suanwang.atlas.signals import build_signals

FIXTURE = Path(__file__).parent / "fixtures" / "results_sample.json"
POLICIES = ["local-only", "nearest", "cheapest", "greenest", "round-robin", "online", "batch-lp"]
TOTAL_KEYS = {
    "jobs": int,
    "done": int,
    "failed": int,
    "rejected": int,
    "cost_cny": float,
    "energy_mwh": float,
    "carbon_t": float,
    "carbon_location_t": float,
    "wait_p50_h": float,
    "wait_p95_h": float,
    "wait_p99_h": float,
    "deadline_misses": int,
    "latency_violations": int,
    "residency_violations": int,
    "wan_tb": float,
    "west_share": float,
}
# Toy shape of the sample (assumptions for a test fixture, not facts about the world):
CORE_HOURS_PER_JOB = 6000.0  # mean core-hours of one job
DATA_GB_PER_JOB = 40.0  # input data moved when a job leaves its province
LOCAL_ONLY_SHARE = 0.3  # share of each origin's jobs that must stay local (latency / residency) for every policy
DAYS = 7


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0 * math.acos(max(-1.0, min(1.0, c)))


def build_sample(seed: int = 1) -> dict:
    """A results dict in the simulator's results.json schema, built from the atlas with toy routing rules."""
    rng = np.random.default_rng(seed)
    atlas = load_atlas()
    sites = atlas.sites
    signals = build_signals(atlas, sites, 2022)
    grid_mean = signals.grid_kg_per_kwh.mean(axis=1)
    price_mean = signals.price_cny_per_kwh.mean(axis=1)
    w_core = atlas.value("watts_per_core")
    amort = atlas.value("amortisation_cny_per_core_hour")
    transfer = atlas.value("transfer_price_cny_per_gb")
    provinces = list(atlas.provinces.values())
    pop = np.array([p.population_10k for p in provinces])
    jobs_total = 50_000
    jobs_by_origin = np.floor(jobs_total * pop / pop.sum()).astype(int)
    jobs_by_origin[np.argmax(pop)] += jobs_total - jobs_by_origin.sum()
    local_dc = {s.province_id: i for i, s in enumerate(sites) if s.kind == "provincial-dc"}
    clusters = [i for i, s in enumerate(sites) if s.kind == "national-cluster"]
    eff_carbon = np.array([grid_mean[i] * (1 - s.green_share) for i, s in enumerate(sites)])

    def targets(policy: str, o: int) -> dict[int, float]:
        """Share of origin o's movable jobs per site index."""
        pr = provinces[o]
        dist = np.array([_km(pr.lat, pr.lon, sites[i].lat, sites[i].lon) for i in clusters])
        if policy == "local-only":
            return {local_dc[pr.id]: 1.0}
        if policy == "nearest":
            return {clusters[int(np.argmin(dist))]: 1.0}
        if policy == "round-robin":
            return {i: 1.0 / len(clusters) for i in clusters}
        if policy == "cheapest":
            score = np.array([price_mean[i] for i in clusters])
        elif policy == "greenest":
            score = np.array([eff_carbon[i] for i in clusters])
        else:  # online / batch-lp: cost + carbon + distance, normalised
            price = np.array([price_mean[i] for i in clusters])
            carb = np.array([eff_carbon[i] for i in clusters])
            reach = 0.6 if policy == "online" else 0.3
            score = price / price.mean() + carb / carb.mean() + dist / dist.mean() * reach
        top = np.argsort(score)[: 2 if policy in ("cheapest", "greenest") else 3]
        w = np.exp(-(score[top] - score[top].min()) * 4)
        return {clusters[int(t)]: float(x) for t, x in zip(top, w / w.sum(), strict=True)}

    hours = list(range(24 * DAYS))
    diurnal = 1 + 0.35 * np.sin(2 * np.pi * (np.arange(24 * DAYS) % 24 - 9) / 24)
    out_policies = {}
    for policy in POLICIES:
        flows, load = [], np.zeros(len(sites))
        for o, pr in enumerate(provinces):
            n = int(jobs_by_origin[o])
            stay = n if policy == "local-only" else int(round(n * LOCAL_ONLY_SHARE))
            split = {local_dc[pr.id]: float(stay)}
            for i, share in targets(policy, o).items():
                split[i] = split.get(i, 0.0) + (n - stay) * share
            local = local_dc[pr.id]
            for i, jobs_f in split.items():
                jobs = int(round(jobs_f))
                if jobs == 0:
                    continue
                ch = jobs * CORE_HOURS_PER_JOB * float(rng.uniform(0.9, 1.1))
                s = sites[i]
                e_mwh = ch * w_core / 1e6 * s.pue
                e_local = ch * w_core / 1e6 * sites[local].pue
                flows.append(
                    {
                        "origin_province": pr.id,
                        "site_id": s.id,
                        "jobs": jobs,
                        "core_hours": round(ch, 1),
                        "energy_mwh": round(e_mwh, 3),
                        "carbon_t": round(e_mwh * eff_carbon[i], 3),
                        "carbon_if_local_t": round(e_local * grid_mean[local], 3),
                    }
                )
                load[i] += ch
        util_hourly = np.array(
            [np.clip(load[i] / len(hours) / s.cpu_cores * diurnal, 0, 1) for i, s in enumerate(sites)]
        )
        site_load = []
        for i, s in enumerate(sites):
            fl = [f for f in flows if f["site_id"] == s.id]
            if not fl:
                continue
            e = sum(f["energy_mwh"] for f in fl)
            ch = sum(f["core_hours"] for f in fl)
            site_load.append(
                {
                    "site_id": s.id,
                    "jobs": sum(f["jobs"] for f in fl),
                    "core_hours": round(ch, 1),
                    "energy_mwh": round(e, 3),
                    "carbon_t": round(sum(f["carbon_t"] for f in fl), 3),
                    "cost_cny": round(e * 1000 * price_mean[i] + ch * amort, 2),
                    "mean_util": round(float(util_hourly[i].mean()), 4),
                }
            )
        moved = [f for f in flows if atlas.site(f["site_id"]).province_id != f["origin_province"]]
        wan_gb = sum(f["jobs"] for f in moved) * DATA_GB_PER_JOB
        west = sum(f["jobs"] for f in flows if atlas.site(f["site_id"]).role == "west")
        congestion = float(util_hourly.max(axis=1).mean())
        p50 = round(0.1 + 2.0 * congestion * float(rng.uniform(0.8, 1.2)), 3)
        jobs = sum(f["jobs"] for f in flows)
        failed, rejected = int(jobs * 0.002), 0 if policy != "local-only" else int(jobs * 0.004)
        raised = sorted(
            (
                {
                    "origin_province": f["origin_province"],
                    "site_id": f["site_id"],
                    "jobs": f["jobs"],
                    "carbon_t": f["carbon_t"],
                    "carbon_if_local_t": f["carbon_if_local_t"],
                    "increase_t": round(f["carbon_t"] - f["carbon_if_local_t"], 3),
                }
                for f in moved
                if f["carbon_t"] > f["carbon_if_local_t"]
            ),
            key=lambda r: -r["increase_t"],
        )
        totals = {
            "jobs": jobs,
            "done": jobs - failed - rejected,
            "failed": failed,
            "rejected": rejected,
            "cost_cny": round(sum(r["cost_cny"] for r in site_load) + wan_gb * transfer, 2),
            "energy_mwh": round(sum(f["energy_mwh"] for f in flows), 3),
            "carbon_t": round(sum(f["carbon_t"] for f in flows), 3),
            "carbon_location_t": round(
                sum(f["energy_mwh"] * grid_mean[sites.index(atlas.site(f["site_id"]))] for f in flows), 3
            ),
            "wait_p50_h": p50,
            "wait_p95_h": round(p50 * 4.5, 3),
            "wait_p99_h": round(p50 * 9.0, 3),
            "deadline_misses": int(jobs * 0.01 * congestion),
            "latency_violations": 0 if policy in ("local-only", "online", "batch-lp") else int(jobs * 0.02),
            "residency_violations": 0 if policy in ("local-only", "online", "batch-lp") else int(jobs * 0.001),
            "wan_tb": round(wan_gb / 1000, 3),
            "west_share": round(west / jobs, 4),
        }
        entry = {"totals": totals, "flows": flows, "site_load": site_load, "carbon_raised_routes": raised}
        if policy in ("local-only", "online", "batch-lp"):  # the others leave it out: the page must cope
            used = [i for i, s in enumerate(sites) if any(r["site_id"] == s.id for r in site_load)]
            entry["utilisation"] = {
                "hours": hours,
                "site_ids": [sites[i].id for i in used],
                "values": [[round(float(util_hourly[i, h]), 3) for i in used] for h in hours],
            }
        out_policies[policy] = entry

    return {
        "meta": {
            "seed": seed,
            "days": DAYS,
            "start": "2026-01-05",
            "jobs": jobs_total,
            "scenario": "national default",
            "carbon_year": 2022,
            "generated_by": "suanwang 0.1.0 (hand-built report fixture)",
        },
        "sites": [
            {
                "id": s.id,
                "name_zh": s.name_zh,
                "name_en": s.name_en,
                "kind": s.kind,
                "province_id": s.province_id,
                "lat": s.lat,
                "lon": s.lon,
                "role": s.role,
                "cpu_cores": s.cpu_cores,
                "gpu_cards": s.gpu_cards,
                "pue": s.pue,
                "green_share": s.green_share,
            }
            for s in sites
        ],
        "provinces": [
            {
                "id": p.id,
                "name_zh": p.name_zh,
                "name_en": p.name_en,
                "lat": p.lat,
                "lon": p.lon,
                "region": p.region,
                "co2_kg_per_kwh": p.co2(2022),
            }
            for p in provinces
        ],
        "policies": out_policies,
        "baseline": "local-only",
        "signals": {
            "hours": list(range(24)),
            "price_cny_per_kwh": {
                s.id: [round(float(x), 4) for x in signals.price_cny_per_kwh[i]] for i, s in enumerate(sites)
            },
            "grid_kg_per_kwh": {
                s.id: [round(float(x), 4) for x in signals.grid_kg_per_kwh[i]] for i, s in enumerate(sites)
            },
        },
    }


def _load() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_fixture_follows_the_schema():
    r = _load()
    assert r["baseline"] in r["policies"]
    for name, p in r["policies"].items():
        for key, typ in TOTAL_KEYS.items():
            assert isinstance(p["totals"][key], typ | int if typ is float else typ), (name, key)
        assert p["totals"]["jobs"] == sum(f["jobs"] for f in p["flows"]), name
        assert 0.0 <= p["totals"]["west_share"] <= 1.0
        if "utilisation" in p:
            u = p["utilisation"]
            assert len(u["values"]) == len(u["hours"])
            assert all(len(row) == len(u["site_ids"]) and all(0 <= v <= 1 for v in row) for row in u["values"])
    for series in ("price_cny_per_kwh", "grid_kg_per_kwh"):
        assert all(len(v) == 24 for v in r["signals"][series].values())


def test_fixture_uses_real_atlas_ids():
    r, atlas = _load(), load_atlas()
    site_ids, province_ids = {s.id for s in atlas.sites}, set(atlas.provinces)
    assert {s["id"] for s in r["sites"]} <= site_ids
    assert {p["id"] for p in r["provinces"]} <= province_ids
    for p in r["policies"].values():
        assert {f["site_id"] for f in p["flows"]} <= site_ids
        assert {f["origin_province"] for f in p["flows"]} <= province_ids


def test_raised_routes_really_raised_carbon():
    for p in _load()["policies"].values():
        for row in p["carbon_raised_routes"]:
            assert row["carbon_t"] > row["carbon_if_local_t"]
            assert math.isclose(row["increase_t"], row["carbon_t"] - row["carbon_if_local_t"], abs_tol=2e-3)


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(build_sample(), ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(FIXTURE, FIXTURE.stat().st_size, "bytes")
