"""The national default demand: who submits what, when, from where (assumptions in workload/data/demand.yaml).

- origins: every city of the atlas; a province's share is its GDP (population x GDP per person), the capital
  takes `capital_share` of it and the other cities split the rest;
- arrivals: `jobs` arrival times over `days`, uniform days x the diurnal hour shape (a Poisson process
  conditioned on its count);
- latency and data classes: fixed mixes; run time from the real traces by latency class; shapes (cores,
  cards) from the Alibaba 2023 pods, scaled so the offered load is the target share of modelled capacity;
- input data: log-uniform by latency class; deadline: submit + runtime + slack by latency class.

The same seed gives the same jobs (numpy PCG64), so every policy sees the identical list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import yaml

from suanwang.atlas import Atlas, Site
from suanwang.atlas.loader import read_csv
from suanwang.errors import SuanwangError
from suanwang.workload.job import DataClass, Job, LatencyClass
from suanwang.workload.traces import DATA, job_shapes, runtimes

LATENCY = [c.value for c in LatencyClass]
DATA_CLASSES = [c.value for c in DataClass]


class DemandError(SuanwangError):
    """A demand setting is invalid (names the setting and the fix)."""


@dataclass
class Demand:
    """Generated jobs (sorted by submit_h) and how they were scaled to the capacity."""

    jobs: list[Job]
    cpu_scale: float  # cores per trace core
    gpu_scale: float  # cards per trace card
    offered_cpu_util: float  # offered core-hours / (capacity x horizon)
    offered_gpu_util: float
    notes: dict[str, str] = field(default_factory=dict)


def load_config() -> dict:
    """The demand assumptions (workload/data/demand.yaml)."""
    return yaml.safe_load((DATA / "demand.yaml").read_text(encoding="utf-8"))


def _mix(cfg: dict, keys: list[str]) -> np.ndarray:
    p = np.array([float(cfg[k]) for k in keys])
    return p / p.sum()


def origin_weights(atlas: Atlas, cfg: dict | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """(adcodes, province ids, weights summing to 1) of every demand origin city."""
    cfg = cfg or load_config()
    gdp = {r["province_id"]: float(r["gdp_100m_cny"]) for r in read_csv(DATA / "province_gdp.csv")}
    capital_share = float(cfg["origin_weight"]["capital_share"])
    adcodes, provinces, weights = [], [], []
    for pid in atlas.provinces:
        cities = [p for p in atlas.places if p.province_id == pid]
        if not cities:
            continue
        share = gdp.get(pid, 0.0)
        capital = [c for c in cities if c.level == "capital"]
        others = [c for c in cities if c.level != "capital"]
        if not capital or not others:
            w = {c.adcode: share / len(cities) for c in cities}
        else:
            w = {c.adcode: share * capital_share / len(capital) for c in capital}
            w.update({c.adcode: share * (1 - capital_share) / len(others) for c in others})
        for c in cities:
            adcodes.append(c.adcode)
            provinces.append(pid)
            weights.append(w[c.adcode])
    weights_arr = np.array(weights)
    return adcodes, provinces, weights_arr / weights_arr.sum()


def _scaled(units: np.ndarray, runtime: np.ndarray, cap: np.ndarray, goal: float) -> tuple[np.ndarray, float]:
    """Trace units (cores or cards) x one factor, rounded, at least 1 where the trace asks for any, at most `cap`;
    the factor is raised until the offered unit-hours reach `goal` or every job hits its cap."""
    raw = float((units * runtime).sum())
    scale = goal / raw if raw > 0 else 1.0
    out = units
    for _ in range(12):
        out = np.minimum(np.where(units > 0, np.maximum(1, np.rint(units * scale)), 0), cap).astype(np.int64)
        got = float((out * runtime).sum())
        if got <= 0 or got >= 0.99 * goal:
            break
        scale *= goal / got
    return out, scale


def national_demand(atlas: Atlas, jobs: int, days: float, seed: int = 0, sites: list[Site] | None = None) -> Demand:
    """`jobs` jobs over `days` days from the national default demand, scaled to the capacity of `sites`."""
    if not (isinstance(jobs, int) and jobs >= 1):
        raise DemandError(f"jobs must be a whole number >= 1, got {jobs!r} - e.g. --jobs 50000")
    if not (days > 0 and math.isfinite(days)):
        raise DemandError(f"days must be > 0, got {days!r} - e.g. --days 7")
    cfg = load_config()
    sites = atlas.sites if sites is None else sites
    rng = np.random.default_rng(seed)
    n = jobs
    # arrivals: day x diurnal hour x uniform minute, sorted
    diurnal = np.array(cfg["diurnal"]["weights"], dtype=float)
    hour = rng.choice(24, size=n, p=diurnal / diurnal.sum())
    submit = np.sort(np.floor(rng.random(n) * days) * 24.0 + hour + rng.random(n))
    submit = np.minimum(submit, days * 24.0 - 1e-6)
    # origins
    adcodes, provinces, w = origin_weights(atlas, cfg)
    origin = rng.choice(len(adcodes), size=n, p=w)
    # classes
    lat = rng.choice(len(LATENCY), size=n, p=_mix(cfg["latency_mix"], LATENCY))
    dcls = rng.choice(len(DATA_CLASSES), size=n, p=_mix(cfg["data_mix"], DATA_CLASSES))
    # runtimes by latency class
    tables = runtimes()
    runtime = np.empty(n)
    for k, name in enumerate(LATENCY):
        m = lat == k
        runtime[m] = tables[cfg["runtime_source"][name]].sample(rng, int(m.sum()))
    # shapes, scaled to the capacity
    cores, cards = job_shapes().sample(rng, n)
    horizon_h = days * 24.0
    target = float(cfg["scale"]["target_utilisation"])
    cpu_cap = float(sum(s.cpu_cores for s in sites))
    gpu_cap = float(sum(s.gpu_cards for s in sites))
    share = float(cfg["scale"]["max_job_share"])
    prov_of = np.array(provinces)[origin]
    big_cpu = {p: max((s.cpu_cores for s in sites if s.province_id == p), default=0) for p in atlas.provinces}
    big_gpu = {p: max((s.gpu_cards for s in sites if s.province_id == p), default=0) for p in atlas.provinces}
    cap_cpu = np.maximum(1, np.floor(share * np.array([big_cpu[p] for p in prov_of]))).astype(np.int64)
    cap_gpu = np.maximum(1, np.floor(share * np.array([big_gpu[p] for p in prov_of]))).astype(np.int64)
    cores, cpu_scale = _scaled(cores, runtime, cap_cpu, target * cpu_cap * horizon_h)
    cards, gpu_scale = _scaled(cards, runtime, cap_gpu, target * gpu_cap * horizon_h)
    # data and deadlines
    lo = np.array([cfg["input_gb"][c][0] for c in LATENCY])[lat]
    hi = np.array([cfg["input_gb"][c][1] for c in LATENCY])[lat]
    input_gb = np.exp(np.log(lo) + rng.random(n) * (np.log(hi) - np.log(lo)))
    output_gb = input_gb * float(cfg["input_gb"]["output_share"])
    slack = np.array([float(cfg["deadline_slack_h"][c]) for c in LATENCY])[lat]
    deadline = submit + runtime + slack
    lat_of = [list(LatencyClass)[k] for k in range(len(LATENCY))]
    dc_of = [list(DataClass)[k] for k in range(len(DATA_CLASSES))]
    cols = zip(
        origin.tolist(),
        cores.tolist(),
        cards.tolist(),
        runtime.tolist(),
        np.round(input_gb, 3).tolist(),
        np.round(output_gb, 3).tolist(),
        lat.tolist(),
        submit.tolist(),
        deadline.tolist(),
        dcls.tolist(),
        strict=True,
    )
    out = [
        Job(
            id=f"j{i:08d}",
            origin=adcodes[o],
            origin_province=provinces[o],
            cpu_cores=c,
            gpu_cards=g,
            runtime_h=r,
            input_gb=ig,
            output_gb=og,
            latency_class=lat_of[lc],
            submit_h=s,
            deadline_h=dl,
            data_class=dc_of[dc],
        )
        for i, (o, c, g, r, ig, og, lc, s, dl, dc) in enumerate(cols)
    ]
    return Demand(
        jobs=out,
        cpu_scale=cpu_scale,
        gpu_scale=gpu_scale,
        offered_cpu_util=float((cores * runtime).sum() / (cpu_cap * horizon_h)),
        offered_gpu_util=float((cards * runtime).sum() / max(gpu_cap * horizon_h, 1e-9)),
        notes={k: v["basis"] for k, v in cfg.items() if isinstance(v, dict) and "basis" in v},
    )
