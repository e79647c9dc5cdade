"""Per-policy results from a simulation run: totals, flows, site load, utilisation, carbon-raising routes.

Units: cost CNY, energy MWh, carbon t (tCO2), waits hours, WAN TB, core-hours.

- carbon_t (totals, site_load) is market-based: energy x grid x (1 - the site's green share);
  carbon_location_t and the carbon of `flows` are location-based: energy x the site's grid intensity over the
  run hours, so a flow compares like with like against `carbon_if_local_t`: the same IT energy at the origin
  province's provincial DC (its PUE and grid).
- wait_h of a done job = end - submit - runtime: queueing, data transfer and work lost to outages.
- deadline_misses: done jobs that ended after their deadline, plus jobs rejected when they could no longer
  finish by it (decision time + runtime > deadline).
- latency and residency violations are re-checked for every run segment from the context's latency matrix and
  the residency rules, independently of the scheduler's filters; both must be 0.
"""

from __future__ import annotations

import numpy as np

from suanwang.policy.residency import DATA_PROVINCE, MAINLAND, ResidencyRules
from suanwang.scheduler import SchedulerContext
from suanwang.sim.columns import JobColumns
from suanwang.sim.records import DONE, FAILED, REJECTED, Run
from suanwang.workload.job import DataClass


def grid_mean(profile: np.ndarray, row: np.ndarray, start_h: np.ndarray, run_h: np.ndarray) -> np.ndarray:
    """Mean of profile[row] (by hour of day) over runs from start_h lasting run_h hours, as Signals.mean_over does:
    the whole-day mean for runs of 24 h or more."""
    n = np.maximum(1, np.ceil(run_h)).astype(np.int64)
    h0 = np.floor(start_h).astype(np.int64) % 24
    cs = np.concatenate([np.zeros((profile.shape[0], 1)), np.cumsum(np.tile(profile, 2), axis=1)], axis=1)
    k = np.minimum(n, 24)
    part = (cs[row, h0 + k] - cs[row, h0]) / k
    return np.where(n >= 24, profile.mean(axis=1)[row], part)


def residency_ok(
    rules: ResidencyRules,
    data: tuple[str, str, str],
    site_province: str,
    site_labels: frozenset,
    site_id: str,
    mainland: frozenset,
) -> bool:
    """Whether placing a job's data (data class, tenant, data province) at a site satisfies every applicable rule
    (an audit, not the filter)."""
    data_class, tenant, data_province = data
    for rule in rules.rules:
        if rule.data_classes and DataClass(data_class) not in rule.data_classes:
            continue
        if rule.tenants and tenant not in rule.tenants:
            continue
        if rule.within == MAINLAND and site_province not in mainland:
            return False
        if rule.within == DATA_PROVINCE and site_province != data_province:
            return False
        if isinstance(rule.within, frozenset) and rule.within and site_province not in rule.within:
            return False
        if rule.labels and not rule.labels <= site_labels:
            return False
        if rule.sites and site_id not in rule.sites:
            return False
    return True


def _q(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q)) if len(x) else 0.0


def summarise(run: Run, ctx: SchedulerContext, carbon_year: int) -> dict:
    """The results of one policy, in the results.json schema (see docs/simulation.md)."""
    sites = ctx.sites
    cols = run.columns if run.columns is not None else JobColumns(ctx, run.jobs)
    n_jobs, n_sites = len(cols), len(sites)
    seg = run.segments
    sj, ss = seg.column("job"), seg.column("site")

    # one array per job field (the run's job columns); segments index them
    job_rt, job_cores, submit = cols.numpy("runtime_h"), cols.numpy("cpu_cores"), cols.numpy("submit_h")
    deadline = cols.numpy("deadline_h")
    job_prov, provs = cols.numpy("province"), cols.provinces
    start, frac = seg.column("start_h"), seg.column("frac")
    cost, energy, carbon = seg.column("cost_cny"), seg.column("energy_kwh"), seg.column("carbon_kg")
    transfer_gb = seg.column("transfer_gb")
    runtime, cores, seg_prov = job_rt[sj], job_cores[sj], job_prov[sj]
    grid = ctx.signals.grid_kg_per_kwh
    carbon_loc = energy * grid_mean(grid, ss, start, runtime * np.maximum(frac, 1e-9))
    # the same IT energy at the origin province's provincial DC
    site_ix = {s.id: i for i, s in enumerate(sites)}
    it_kwh = energy / ctx.pue[ss] if len(ss) else np.zeros(0)
    local = np.array([site_ix.get(f"{p}-dc", -1) for p in provs], dtype=np.int64)[seg_prov]
    has_local = local >= 0
    carbon_if_local = np.zeros(len(sj))
    if has_local.any():
        li = local[has_local]
        carbon_if_local[has_local] = (
            it_kwh[has_local] * ctx.pue[li] * grid_mean(grid, li, start[has_local], runtime[has_local])
        )
    if (~has_local).any():
        pue = ctx.atlas.value("provincial_dc_pue")
        far = seg_prov[~has_local]
        co2 = {k: ctx.atlas.province(provs[k]).co2(carbon_year) for k in np.unique(far).tolist()}
        carbon_if_local[~has_local] = it_kwh[~has_local] * pue * np.array([co2[k] for k in far.tolist()])
    core_h = cores * runtime * frac
    completed = frac >= 1.0
    # outcomes
    status = np.array(run.status)
    done = status == DONE
    end = np.array(run.end_h)
    wait = (end - submit - job_rt)[done]
    misses = int((done & (end > deadline + 1e-9)).sum() + ((status == REJECTED) & (end + job_rt > deadline)).sum())
    # independent audits, once per segment: latency from the matrix, residency from the rules per
    # (data class, tenant, data province) and site
    origin_row = cols.numpy("origin_row")
    bound = cols.numpy("latency_bound_ms")
    lat_viol = int((ctx.latency_ms[origin_row[sj], ss] > bound[sj] + 1e-9).sum())
    job_rule, rule_keys = cols.numpy("rule"), cols.rule_keys
    mainland = frozenset(ctx.atlas.provinces)
    labels = [frozenset(s.labels) for s in sites]
    allowed = np.array(
        [
            [residency_ok(ctx.rules, key, t.province_id, labels[k], t.id, mainland) for k, t in enumerate(sites)]
            for key in rule_keys
        ],
        dtype=bool,
    ).reshape(len(rule_keys), n_sites)
    res_viol = int((~allowed[job_rule[sj], ss]).sum())
    west = np.array([s.role == "west" for s in sites])
    total_core_h = float(core_h.sum())
    util = np.array(run.util) if run.util else np.zeros((0, len(sites)))
    totals = {
        "jobs": n_jobs,
        "done": int(done.sum()),
        "failed": int((status == FAILED).sum()),
        "rejected": int((status == REJECTED).sum()),
        "cost_cny": round(float(cost.sum()), 2),
        "energy_mwh": round(float(energy.sum()) / 1e3, 4),
        "carbon_t": round(float(carbon.sum()) / 1e3, 4),
        "carbon_location_t": round(float(carbon_loc.sum()) / 1e3, 4),
        "wait_p50_h": round(_q(wait, 0.5), 4),
        "wait_p95_h": round(_q(wait, 0.95), 4),
        "wait_p99_h": round(_q(wait, 0.99), 4),
        "deadline_misses": misses,
        "latency_violations": lat_viol,
        "residency_violations": res_viol,
        "wan_tb": round(float(transfer_gb.sum()) / 1e3, 4),
        "west_share": round(float(core_h[west[ss]].sum()) / total_core_h, 4) if total_core_h > 0 else 0.0,
    }
    flows = []
    flow_code = seg_prov * n_sites + ss
    keys = sorted((provs[c // n_sites], c % n_sites) for c in np.unique(flow_code).tolist())
    flow_of_code = np.full(len(provs) * n_sites, -1, dtype=np.int64)
    flow_of_code[[provs.index(p) * n_sites + k for p, k in keys]] = np.arange(len(keys))
    fk = flow_of_code[flow_code]

    def by_flow(x: np.ndarray) -> np.ndarray:
        return np.bincount(fk, weights=x, minlength=len(keys)) if len(keys) else np.zeros(0)

    f_jobs, f_core = by_flow(completed.astype(float)), by_flow(core_h)
    f_energy, f_carbon, f_local = by_flow(energy), by_flow(carbon_loc), by_flow(carbon_if_local)
    for n, (prov, s) in enumerate(keys):
        flows.append(
            {
                "origin_province": prov,
                "site_id": sites[s].id,
                "jobs": int(f_jobs[n]),
                "core_hours": round(float(f_core[n]), 2),
                "energy_mwh": round(float(f_energy[n]) / 1e3, 4),
                "carbon_t": round(float(f_carbon[n]) / 1e3, 4),
                "carbon_if_local_t": round(float(f_local[n]) / 1e3, 4),
            }
        )
    raised = [
        {
            "origin_province": f["origin_province"],
            "site_id": f["site_id"],
            "jobs": f["jobs"],
            "carbon_t": f["carbon_t"],
            "carbon_if_local_t": f["carbon_if_local_t"],
            "increase_t": round(f["carbon_t"] - f["carbon_if_local_t"], 4),
        }
        for f in flows
        if f["carbon_t"] > f["carbon_if_local_t"] and f["site_id"] != f"{f['origin_province']}-dc"
    ]
    raised.sort(key=lambda r: -r["increase_t"])

    def by_site(x: np.ndarray) -> np.ndarray:
        return np.bincount(ss, weights=x, minlength=n_sites) if len(ss) else np.zeros(n_sites)

    s_jobs, s_core, s_energy = by_site(completed.astype(float)), by_site(core_h), by_site(energy)
    s_carbon, s_cost = by_site(carbon), by_site(cost)
    mean_util = util.mean(axis=0) if len(util) else np.zeros(n_sites)
    site_load = [
        {
            "site_id": s.id,
            "jobs": int(s_jobs[i]),
            "core_hours": round(float(s_core[i]), 2),
            "energy_mwh": round(float(s_energy[i]) / 1e3, 4),
            "carbon_t": round(float(s_carbon[i]) / 1e3, 4),
            "cost_cny": round(float(s_cost[i]), 2),
            "mean_util": round(float(mean_util[i]), 4),
        }
        for i, s in enumerate(sites)
    ]
    utilisation = {
        "hours": list(run.util_hours),
        "site_ids": [s.id for s in sites],
        "values": [[round(float(v), 4) for v in row] for row in util],
    }
    return {
        "totals": totals,
        "flows": flows,
        "site_load": site_load,
        "utilisation": utilisation,
        "carbon_raised_routes": raised,
    }
