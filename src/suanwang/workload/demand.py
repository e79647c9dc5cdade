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
from collections.abc import Iterator
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
    _check(jobs, days)
    model = _Model(atlas, sites)
    return model.draw(np.random.default_rng(seed), jobs, days, 0.0, 0)


def national_demand_days(
    atlas: Atlas, jobs: int, days: int, seed: int = 0, sites: list[Site] | None = None
) -> Iterator[Demand]:
    """The national default demand one day at a time, for a run too long to hold every job at once: `jobs` jobs
    over `days` whole days, day d (0-based) holding jobs // days jobs, one more for the first jobs % days days.

    Day d is drawn as national_demand draws one day (its own generator, seeded by (seed, d); arrivals shifted by
    24 d hours; shapes scaled to the target load of that day; job ids numbered on from the days before), so a day
    is the same whether the days are read one by one or all at once, and it depends on no other day. Not the same
    jobs as national_demand(atlas, jobs, days, seed), which draws the whole span with one generator."""
    if not (isinstance(days, int) and days >= 1):
        raise DemandError(f"days must be a whole number >= 1 to stream by day, got {days!r} - e.g. --days 365")
    _check(jobs, days)
    model = _Model(atlas, sites)
    first = 0
    for d in range(days):
        n = jobs // days + (1 if d < jobs % days else 0)
        if n:
            yield model.draw(np.random.default_rng([seed, d]), n, 1.0, 24.0 * d, first)
        first += n


def _check(jobs: int, days: float) -> None:
    if not (isinstance(jobs, int) and jobs >= 1):
        raise DemandError(f"jobs must be a whole number >= 1, got {jobs!r} - e.g. --jobs 50000")
    if not (days > 0 and math.isfinite(days)):
        raise DemandError(f"days must be > 0, got {days!r} - e.g. --days 7")


class _Model:
    """What every draw of the national demand shares: the assumptions, origins, trace tables and size caps."""

    def __init__(self, atlas: Atlas, sites: list[Site] | None):
        cfg = self.cfg = load_config()
        sites = atlas.sites if sites is None else sites
        diurnal = np.array(cfg["diurnal"]["weights"], dtype=float)
        self.hour_p = diurnal / diurnal.sum()
        self.adcodes, self.provinces, self.origin_p = origin_weights(atlas, cfg)
        self.latency_p = _mix(cfg["latency_mix"], LATENCY)
        self.data_p = _mix(cfg["data_mix"], DATA_CLASSES)
        self.tables = runtimes()
        self.shapes = job_shapes()
        self.target = float(cfg["scale"]["target_utilisation"])
        self.cpu_cap = float(sum(s.cpu_cores for s in sites))
        self.gpu_cap = float(sum(s.gpu_cards for s in sites))
        share = float(cfg["scale"]["max_job_share"])
        big_cpu = {p: max((s.cpu_cores for s in sites if s.province_id == p), default=0) for p in atlas.provinces}
        big_gpu = {p: max((s.gpu_cards for s in sites if s.province_id == p), default=0) for p in atlas.provinces}
        # size caps by origin city: a share of the biggest site in its province
        prov = self.provinces
        self.cap_cpu = np.maximum(1, np.floor(share * np.array([big_cpu[p] for p in prov]))).astype(np.int64)
        self.cap_gpu = np.maximum(1, np.floor(share * np.array([big_gpu[p] for p in prov]))).astype(np.int64)
        self.lat_of = [list(LatencyClass)[k] for k in range(len(LATENCY))]
        self.dc_of = [list(DataClass)[k] for k in range(len(DATA_CLASSES))]

    def draw(self, rng: np.random.Generator, n: int, days: float, start_h: float, first_id: int) -> Demand:
        """`n` jobs over `days` days from hour `start_h`, ids numbered from `first_id`, drawn from `rng`."""
        cfg = self.cfg
        # arrivals: day x diurnal hour x uniform minute, sorted
        hour = rng.choice(24, size=n, p=self.hour_p)
        submit = np.sort(np.floor(rng.random(n) * days) * 24.0 + hour + rng.random(n))
        submit = np.minimum(submit, days * 24.0 - 1e-6) + start_h
        # origins
        adcodes, provinces = self.adcodes, self.provinces
        origin = rng.choice(len(adcodes), size=n, p=self.origin_p)
        # classes
        lat = rng.choice(len(LATENCY), size=n, p=self.latency_p)
        dcls = rng.choice(len(DATA_CLASSES), size=n, p=self.data_p)
        # runtimes by latency class
        runtime = np.empty(n)
        for k, name in enumerate(LATENCY):
            m = lat == k
            runtime[m] = self.tables[cfg["runtime_source"][name]].sample(rng, int(m.sum()))
        # shapes, scaled to the capacity
        cores, cards = self.shapes.sample(rng, n)
        horizon_h = days * 24.0
        cpu_cap, gpu_cap, target = self.cpu_cap, self.gpu_cap, self.target
        cores, cpu_scale = _scaled(cores, runtime, self.cap_cpu[origin], target * cpu_cap * horizon_h)
        cards, gpu_scale = _scaled(cards, runtime, self.cap_gpu[origin], target * gpu_cap * horizon_h)
        # data and deadlines
        lo = np.array([cfg["input_gb"][c][0] for c in LATENCY])[lat]
        hi = np.array([cfg["input_gb"][c][1] for c in LATENCY])[lat]
        input_gb = np.exp(np.log(lo) + rng.random(n) * (np.log(hi) - np.log(lo)))
        output_gb = input_gb * float(cfg["input_gb"]["output_share"])
        slack = np.array([float(cfg["deadline_slack_h"][c]) for c in LATENCY])[lat]
        deadline = submit + runtime + slack
        lat_of, dc_of = self.lat_of, self.dc_of
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
                data_province=provinces[o],
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
            for i, (o, c, g, r, ig, og, lc, s, dl, dc) in enumerate(cols, first_id)
        ]
        return Demand(
            jobs=out,
            cpu_scale=cpu_scale,
            gpu_scale=gpu_scale,
            offered_cpu_util=float((cores * runtime).sum() / (cpu_cap * horizon_h)),
            offered_gpu_util=float((cards * runtime).sum() / max(gpu_cap * horizon_h, 1e-9)),
            notes={k: v["basis"] for k, v in cfg.items() if isinstance(v, dict) and "basis" in v},
        )
