"""An independent oracle for the batch optimiser: the per-job integer program, written from the documented model.

It shares no code with `scheduler.optimize*` (no classes, no columns, no rounding) and not `scheduler.costs`
either: every coefficient is recomputed here from the formulas in docs/optimizer.md and scheduler/costs.py's
docstring, from the raw data (site PUE, green share, hourly price and grid profiles, the atlas assumptions).

    binary x[j, s, t]   job j starts at site s in slot t (slot t begins at now_h + t x slot_h)
    minimise   sum w[j, s, t] x[j, s, t] + sum_j penalty_j (1 - sum_{s, t} x[j, s, t])
    s.t.       sum_{s, t} x[j, s, t] <= 1                                              every job at most once
               cores (cards) held at site s in slot tau <= the free cores (cards) there      (every tau)
               GB moved on link (data province -> s) in slot tau <= link capacity per slot   (every tau)

Options (j, s, t) exist only where the hard rules pass, read from their text:
- latency: Network.one_way_ms(origin city, site) <= the job's bound (5 / 20 ms / none by latency class);
- residency (the national rules): internal and stricter data on mainland sites, sensitive data in its own
  province, core data on gov-cloud sites of its province; public data anywhere;
- labels: the site carries every label of the job; the site's total cores and cards are enough;
- time: t >= the release slot ceil((submit_h - now_h) / slot_h), t < horizon, and
  start + transfer + runtime <= the deadline rounded down to the slot grid;
- room: the job alone fits the free profile in every slot it holds.
Coefficients (scheduler/costs.py's docstring):
  energy_kwh = (cores x W/core + cards x W/card) / 1000 x runtime_h x PUE
  cost_cny   = energy_kwh x mean price over the run hours + amortisation (core-h, card-h) + transfer
               (GB in and out x CNY/GB when the site lies outside the data province)
  carbon_kg  = energy_kwh x mean grid intensity over the run hours x (1 - green share)
  the run hours: the whole hours [floor(start), floor(start) + ceil(runtime)) of the day, wrapping; the daily
  mean for runs of 24 h or more
  w = weights["cost"] x cost_cny + weights["carbon"] x carbon_price / 1000 x carbon_kg
A job holds its cores and cards for max(1, ceil((transfer_h + runtime_h) / slot_h)) slots; its input moves at
job_bandwidth_gbps, slot by slot, when it crosses a border. An unplaced job costs penalty_factor x the dearest
option it has (x 1 CNY when that is <= 0), or nothing when it has no option at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from suanwang.atlas import Atlas
from suanwang.network import Network
from suanwang.workload.job import Job

GB_PER_GBPS_HOUR = 3600.0 / 8.0
_EPS = 1e-9


@dataclass
class Instance:
    """One planning problem: the sites, their free profile, the jobs and the optimiser's settings."""

    atlas: Atlas
    site_ids: list[str]
    jobs: list[Job]
    now_h: float
    slot_h: float
    n_slots: int
    cores: np.ndarray  # [S, K] free cores per slot (the last value holds beyond K)
    cards: np.ndarray  # [S, K]
    up: np.ndarray  # [S] bool
    price: np.ndarray  # [S, 24] CNY/kWh by hour of day
    grid: np.ndarray  # [S, 24] kgCO2/kWh by hour of day
    weights: tuple[float, float] = (1.0, 1.0)  # (cost, carbon)
    carbon_price_cny_per_t: float = 80.0
    penalty_factor: float = 10.0


@dataclass
class Option:
    job: int
    site: int
    slot: int
    hold: int  # slots of cores / cards held
    w: float  # weighted cost, CNY-equivalent
    xfer: list[tuple[int, float]]  # (slot, GB) moved on the job's link, empty when it does not cross a border


@dataclass
class OracleResult:
    objective: float
    proven: bool  # HiGHS proved optimality
    assignment: list[tuple[int, int] | None]  # per job: (site, slot) or None
    n_options: int


def _allowed(atlas: Atlas, site, job: Job) -> bool:
    """Residency and labels from the rule text (national rules)."""
    dc = str(job.data_class)
    if dc in ("internal", "sensitive", "core") and site.province_id not in atlas.provinces:
        return False
    if dc in ("sensitive", "core") and site.province_id != job.data_province:
        return False
    if dc == "core" and "gov-cloud" not in site.labels:
        return False
    return set(job.labels) <= set(site.labels)


def _bound_ms(job: Job) -> float:
    if job.max_latency_ms is not None:
        return job.max_latency_ms
    return {"realtime": 5.0, "interactive": 20.0}.get(str(job.latency_class), math.inf)


def _run_mean(profile: np.ndarray, start_h: float, runtime_h: float) -> float:
    n = max(1, math.ceil(runtime_h - _EPS))
    if n >= 24:
        return float(profile.mean())
    h0 = math.floor(start_h + _EPS)
    return float(np.mean([profile[(h0 + k) % 24] for k in range(n)]))


def options(inst: Instance) -> tuple[list[Option], np.ndarray]:
    """Every feasible (job, site, slot) with its coefficient, and each job's penalty."""
    a = inst.atlas
    net = Network(a)
    sites = [a.site(i) for i in inst.site_ids]
    v = a.value
    w_cost, w_carbon = inst.weights
    carbon_cny_per_kg = w_carbon * inst.carbon_price_cny_per_t / 1000.0
    gbps = v("job_bandwidth_gbps")
    vol_slot = gbps * inst.slot_h * GB_PER_GBPS_HOUR
    long_rows = inst.n_slots + 400
    cap_c = _extend(inst.cores, long_rows) * inst.up[:, None]
    cap_g = _extend(inst.cards, long_rows) * inst.up[:, None]
    out: list[Option] = []
    penalty = np.zeros(len(inst.jobs))
    for j, job in enumerate(inst.jobs):
        origin = a.place(job.origin)
        release = max(0, math.ceil((job.submit_h - inst.now_h) / inst.slot_h - _EPS))
        deadline = math.inf
        if job.deadline_h is not None:
            deadline = inst.now_h + math.floor((job.deadline_h - inst.now_h) / inst.slot_h + _EPS) * inst.slot_h
        ws = []
        for s, site in enumerate(sites):
            if net.one_way_ms(origin, site) > _bound_ms(job) or not _allowed(a, site, job):
                continue
            if site.cpu_cores < job.cpu_cores or site.gpu_cards < job.gpu_cards:
                continue
            cross = site.province_id != job.data_province
            xfer_h = job.input_gb * 8.0 / (gbps * 3600.0) if cross else 0.0
            hold = max(1, math.ceil((xfer_h + job.runtime_h) / inst.slot_h - _EPS))
            energy = (job.cpu_cores * v("watts_per_core") + job.gpu_cards * v("watts_per_gpu")) / 1000.0
            energy *= job.runtime_h * site.pue
            amort = job.cpu_cores * v("amortisation_cny_per_core_hour") + job.gpu_cards * v(
                "amortisation_cny_per_gpu_hour"
            )
            transfer = (job.input_gb + job.output_gb) * v("transfer_price_cny_per_gb") if cross else 0.0
            moves = []
            if cross and job.input_gb > 0:
                left, k = job.input_gb, 0
                while left > _EPS:
                    moves.append((k, min(vol_slot, left)))
                    left -= vol_slot
                    k += 1
            for t in range(release, inst.n_slots):
                start = inst.now_h + t * inst.slot_h
                if start + xfer_h + job.runtime_h > deadline + _EPS:
                    break
                if (
                    cap_c[s, t : t + hold].min() < job.cpu_cores - _EPS
                    or cap_g[s, t : t + hold].min() < job.gpu_cards - _EPS
                ):
                    continue
                cost = energy * _run_mean(inst.price[s], start, job.runtime_h) + amort * job.runtime_h + transfer
                carbon = energy * _run_mean(inst.grid[s], start, job.runtime_h) * (1.0 - site.green_share)
                w = w_cost * cost + carbon_cny_per_kg * carbon
                ws.append(w)
                out.append(Option(j, s, t, hold, w, [(t + k, gb) for k, gb in moves]))
        if ws:
            worst = max(ws)
            penalty[j] = inst.penalty_factor * (worst if worst > 0 else 1.0)
    return out, penalty


def solve(inst: Instance, time_limit_s: float = 60.0) -> OracleResult:
    """The optimum of the per-job integer program (HiGHS, relative gap 0)."""
    opts, penalty = options(inst)
    n, n_jobs = len(opts), len(inst.jobs)
    long_rows = inst.n_slots + max((o.hold for o in opts), default=1) + 1
    cap_c = _extend(inst.cores, long_rows) * inst.up[:, None]
    cap_g = _extend(inst.cards, long_rows) * inst.up[:, None]
    rows, cols, vals, lo, hi = [], [], [], [], []

    def add_row(entries: list[tuple[int, float]], upper: float) -> None:
        r = len(lo)
        for i, value in entries:
            rows.append(r)
            cols.append(i)
            vals.append(value)
        lo.append(-highspy.kHighsInf)
        hi.append(upper)

    by_job: dict[int, list[tuple[int, float]]] = {}
    held: dict[tuple[str, int, int], list[tuple[int, float]]] = {}
    links: dict[tuple[str, int, int], list[tuple[int, float]]] = {}
    for i, o in enumerate(opts):
        job = inst.jobs[o.job]
        by_job.setdefault(o.job, []).append((i, 1.0))
        for tau in range(o.slot, o.slot + o.hold):
            if job.cpu_cores:
                held.setdefault(("c", o.site, tau), []).append((i, float(job.cpu_cores)))
            if job.gpu_cards:
                held.setdefault(("g", o.site, tau), []).append((i, float(job.gpu_cards)))
        for tau, gb in o.xfer:
            links.setdefault((job.data_province, o.site, tau), []).append((i, gb))
    for entries in by_job.values():
        add_row(entries, 1.0)
    for (kind, s, tau), entries in held.items():
        add_row(entries, float((cap_c if kind == "c" else cap_g)[s, tau]))
    link_cap = inst.atlas.value("link_capacity_gbps") * inst.slot_h * GB_PER_GBPS_HOUR
    for entries in links.values():
        add_row(entries, link_cap)
    constant = float(penalty.sum())
    if n == 0:
        return OracleResult(constant, True, [None] * n_jobs, 0)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-7)
    h.setOptionValue("time_limit", float(time_limit_s))
    a = sp.csc_matrix((vals, (rows, cols)), shape=(len(lo), n))
    a.sort_indices()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, len(lo)
    lp.col_cost_ = np.array([o.w - penalty[o.job] for o in opts])
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    lp.row_lower_ = np.array(lo)
    lp.row_upper_ = np.array(hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h.passModel(lp)
    h.run()
    proven = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    x = np.asarray(h.getSolution().col_value)
    assignment: list[tuple[int, int] | None] = [None] * n_jobs
    for i in np.nonzero(x > 0.5)[0]:
        assignment[opts[i].job] = (opts[i].site, opts[i].slot)
    return OracleResult(constant + h.getInfo().objective_function_value, proven, assignment, n)


def _extend(profile: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(profile, dtype=float)
    if p.shape[1] < n:
        p = np.concatenate([p, np.repeat(p[:, -1:], n - p.shape[1], axis=1)], axis=1)
    return np.maximum(p[:, :n], 0.0)
