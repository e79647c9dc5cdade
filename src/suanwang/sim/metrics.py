"""Per-policy results from a simulation run: totals, flows, site load, utilisation, carbon-raising routes.

Units: cost CNY, energy MWh, carbon t (tCO2), waits hours, WAN TB, core-hours, card-hours (GPU).

- carbon_t (totals, site_load) is market-based: energy x grid x (1 - the site's green share);
  carbon_location_t and the carbon of `flows` are location-based: energy x the site's grid intensity over the
  run hours, so a flow compares like with like against `carbon_if_local_t`: the same IT energy at the origin
  province's provincial DC (its PUE and grid).
- wait_h of a done job = end - submit - runtime: queueing, data transfer and work lost to outages.
- deadline_misses: done jobs that ended after their deadline, plus jobs rejected when they could no longer
  finish by it (decision time + runtime > deadline).
- latency and residency violations are re-checked for every run segment from the context's latency matrix and
  the residency policy's text (sim/audit.py), independently of the scheduler's filters; both must be 0.
"""

from __future__ import annotations

import numpy as np

from suanwang.scheduler import SchedulerContext
from suanwang.sim.audit import allowed_matrix
from suanwang.sim.columns import JobColumns
from suanwang.sim.records import DONE, FAILED, REJECTED, Run


def grid_mean(profile: np.ndarray, row: np.ndarray, start_h: np.ndarray, run_h: np.ndarray) -> np.ndarray:
    """Mean of profile[row] (by hour of day) over runs from start_h lasting run_h hours, as Signals.mean_over does:
    the whole-day mean for runs of 24 h or more."""
    n = np.maximum(1, np.ceil(run_h)).astype(np.int64)
    h0 = np.floor(start_h).astype(np.int64) % 24
    cs = np.concatenate([np.zeros((profile.shape[0], 1)), np.cumsum(np.tile(profile, 2), axis=1)], axis=1)
    k = np.minimum(n, 24)
    part = (cs[row, h0 + k] - cs[row, h0]) / k
    return np.where(n >= 24, profile.mean(axis=1)[row], part)


def _q(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q)) if len(x) else 0.0


PROVINCIAL_DC = "provincial-dc"  # the site kind a province's own data centre has (atlas/loader.py)


def provincial_dcs(sites) -> dict[str, int]:
    """Province id -> the index of its provincial data centre (the first site of that kind in the province)."""
    out: dict[str, int] = {}
    for i, s in enumerate(sites):
        if s.kind == PROVINCIAL_DC:
            out.setdefault(s.province_id, i)
    return out


class _Segments:
    """Every run segment with the job fields the sections read, as arrays (one row per segment)."""

    def __init__(self, run: Run, ctx: SchedulerContext, cols: JobColumns, carbon_year: int):
        seg = run.segments
        self.job, self.site = seg.column("job"), seg.column("site")
        self.start, self.frac = seg.column("start_h"), seg.column("frac")
        self.cost, self.energy, self.carbon = seg.column("cost_cny"), seg.column("energy_kwh"), seg.column("carbon_kg")
        self.transfer_gb = seg.column("transfer_gb")
        job_rt, job_cores, job_prov = cols.numpy("runtime_h"), cols.numpy("cpu_cores"), cols.numpy("province")
        sj, ss = self.job, self.site
        self.runtime, self.cores, self.prov = job_rt[sj], job_cores[sj], job_prov[sj]
        grid = ctx.signals.grid_kg_per_kwh
        self.carbon_loc = self.energy * grid_mean(grid, ss, self.start, self.runtime * np.maximum(self.frac, 1e-9))
        self.carbon_if_local = self._carbon_if_local(ctx, cols.provinces, carbon_year)
        self.core_h = self.cores * self.runtime * self.frac
        self.card_h = cols.numpy("gpu_cards")[sj] * self.runtime * self.frac
        # a job's last run completes it when the job is done (a run resumed from a checkpoint does less than all)
        last = np.zeros(len(sj), dtype=bool)
        if len(sj):
            _, rev = np.unique(sj[::-1], return_index=True)
            last[len(sj) - 1 - rev] = True
        self.completed = last & (np.asarray(run.status, dtype=np.int64)[sj] == DONE)

    def _carbon_if_local(self, ctx: SchedulerContext, provs: list[str], carbon_year: int) -> np.ndarray:
        """Location-based carbon of the same IT energy at the origin province's provincial DC (its PUE and grid
        over the run hours); the atlas' provincial DC PUE and the province's annual factor where it has none."""
        ss, seg_prov, runtime, start = self.site, self.prov, self.runtime, self.start
        grid = ctx.signals.grid_kg_per_kwh
        dcs = provincial_dcs(ctx.sites)
        it_kwh = self.energy / ctx.pue[ss] if len(ss) else np.zeros(0)
        local = np.array([dcs.get(p, -1) for p in provs], dtype=np.int64)[seg_prov]
        has_local = local >= 0
        out = np.zeros(len(self.job))
        if has_local.any():
            li = local[has_local]
            out[has_local] = it_kwh[has_local] * ctx.pue[li] * grid_mean(grid, li, start[has_local], runtime[has_local])
        if (~has_local).any():
            pue = ctx.atlas.value("provincial_dc_pue")
            far = seg_prov[~has_local]
            co2 = {k: ctx.atlas.province(provs[k]).co2(carbon_year) for k in np.unique(far).tolist()}
            out[~has_local] = it_kwh[~has_local] * pue * np.array([co2[k] for k in far.tolist()])
        return out


def summarise(run: Run, ctx: SchedulerContext, carbon_year: int) -> dict:
    """The results of one policy, in the results.json schema (see docs/simulation.md)."""
    cols = run.columns if run.columns is not None else JobColumns(ctx, run.jobs)
    seg = _Segments(run, ctx, cols, carbon_year)
    util = np.array(run.util) if run.util else np.zeros((0, len(ctx.sites)))
    flows = _flows(seg, ctx, cols.provinces)
    return {
        "totals": _totals(run, seg, ctx, cols, _audit(seg, ctx, cols)),
        "flows": flows,
        "site_load": _site_load(seg, ctx, util),
        "utilisation": {
            "hours": list(run.util_hours),
            "site_ids": [s.id for s in ctx.sites],
            "values": [[round(float(v), 4) for v in row] for row in util],
        },
        "carbon_raised_routes": _raised(flows, ctx),
    }


def _totals(run: Run, seg: _Segments, ctx: SchedulerContext, cols: JobColumns, violations: dict[str, int]) -> dict:
    """Outcomes, money, energy, carbon, waits, deadline misses, the audits' `violations`, WAN volume and the
    west's share of core-hours."""
    job_rt, submit, deadline = cols.numpy("runtime_h"), cols.numpy("submit_h"), cols.numpy("deadline_h")
    status = np.array(run.status)
    done = status == DONE
    end = np.array(run.end_h)
    wait = (end - submit - job_rt)[done]
    misses = int((done & (end > deadline + 1e-9)).sum() + ((status == REJECTED) & (end + job_rt > deadline)).sum())
    west = np.array([s.role == "west" for s in ctx.sites])
    total_core_h = float(seg.core_h.sum())
    return {
        "jobs": len(cols),
        "done": int(done.sum()),
        "failed": int((status == FAILED).sum()),
        "rejected": int((status == REJECTED).sum()),
        "cost_cny": round(float(seg.cost.sum()), 2),
        "energy_mwh": round(float(seg.energy.sum()) / 1e3, 4),
        "carbon_t": round(float(seg.carbon.sum()) / 1e3, 4),
        "carbon_location_t": round(float(seg.carbon_loc.sum()) / 1e3, 4),
        "wait_p50_h": round(_q(wait, 0.5), 4),
        "wait_p95_h": round(_q(wait, 0.95), 4),
        "wait_p99_h": round(_q(wait, 0.99), 4),
        "deadline_misses": misses,
        **violations,
        "wan_tb": round(float(seg.transfer_gb.sum()) / 1e3, 4),
        "west_share": round(float(seg.core_h[west[seg.site]].sum()) / total_core_h, 4) if total_core_h > 0 else 0.0,
        "core_hours": round(total_core_h, 2),
        "card_hours": round(float(seg.card_h.sum()), 2),
    }


def _audit(seg: _Segments, ctx: SchedulerContext, cols: JobColumns) -> dict:
    """Independent audits, once per segment: latency from the matrix, residency from the policy's text per
    (data class, tenant, data province) and site (sim/audit.py) - not the scheduler's filters or parsed rules."""
    sj, ss = seg.job, seg.site
    origin_row, bound = cols.numpy("origin_row"), cols.numpy("latency_bound_ms")
    lat_viol = int((ctx.latency_ms[origin_row[sj], ss] > bound[sj] + 1e-9).sum())
    job_rule, rule_keys = cols.numpy("rule"), cols.rule_keys
    allowed = allowed_matrix(ctx, rule_keys)  # from the policy's text (sim/audit.py), not the parsed rules
    res_viol = int((~allowed[job_rule[sj], ss]).sum())
    return {"latency_violations": lat_viol, "residency_violations": res_viol}


def _flows(seg: _Segments, ctx: SchedulerContext, provs: list[str]) -> list[dict]:
    """Work by (origin province, site), sorted so: jobs completed, core-hours, energy, location-based carbon
    and the carbon the same work would have caused at home."""
    n_sites = len(ctx.sites)
    flow_code = seg.prov * n_sites + seg.site
    keys = sorted((provs[c // n_sites], c % n_sites) for c in np.unique(flow_code).tolist())
    flow_of_code = np.full(len(provs) * n_sites, -1, dtype=np.int64)
    flow_of_code[[provs.index(p) * n_sites + k for p, k in keys]] = np.arange(len(keys))
    fk = flow_of_code[flow_code]

    def by_flow(x: np.ndarray) -> np.ndarray:
        return np.bincount(fk, weights=x, minlength=len(keys)) if len(keys) else np.zeros(0)

    f_jobs, f_core = by_flow(seg.completed.astype(float)), by_flow(seg.core_h)
    f_energy, f_carbon, f_local = by_flow(seg.energy), by_flow(seg.carbon_loc), by_flow(seg.carbon_if_local)
    return [
        {
            "origin_province": prov,
            "site_id": ctx.sites[s].id,
            "jobs": int(f_jobs[n]),
            "core_hours": round(float(f_core[n]), 2),
            "energy_mwh": round(float(f_energy[n]) / 1e3, 4),
            "carbon_t": round(float(f_carbon[n]) / 1e3, 4),
            "carbon_if_local_t": round(float(f_local[n]) / 1e3, 4),
        }
        for n, (prov, s) in enumerate(keys)
    ]


def _raised(flows: list[dict], ctx: SchedulerContext) -> list[dict]:
    """The flows away from the origin's provincial DC whose carbon exceeds what the same work would have caused
    there, largest increase first."""
    home = {p: ctx.sites[i].id for p, i in provincial_dcs(ctx.sites).items()}
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
        if f["carbon_t"] > f["carbon_if_local_t"] and f["site_id"] != home.get(f["origin_province"])
    ]
    raised.sort(key=lambda r: -r["increase_t"])
    return raised


def _site_load(seg: _Segments, ctx: SchedulerContext, util: np.ndarray) -> list[dict]:
    """Per site: jobs completed, core-hours, card-hours, energy, market-based carbon, cost and mean utilisation."""
    n_sites, ss = len(ctx.sites), seg.site

    def by_site(x: np.ndarray) -> np.ndarray:
        return np.bincount(ss, weights=x, minlength=n_sites) if len(ss) else np.zeros(n_sites)

    s_jobs, s_core, s_energy = by_site(seg.completed.astype(float)), by_site(seg.core_h), by_site(seg.energy)
    s_card = by_site(seg.card_h)
    s_carbon, s_cost = by_site(seg.carbon), by_site(seg.cost)
    mean_util = util.mean(axis=0) if len(util) else np.zeros(n_sites)
    return [
        {
            "site_id": s.id,
            "jobs": int(s_jobs[i]),
            "core_hours": round(float(s_core[i]), 2),
            "card_hours": round(float(s_card[i]), 2),
            "energy_mwh": round(float(s_energy[i]) / 1e3, 4),
            "carbon_t": round(float(s_carbon[i]) / 1e3, 4),
            "cost_cny": round(float(s_cost[i]), 2),
            "mean_util": round(float(mean_util[i]), 4),
        }
        for i, s in enumerate(ctx.sites)
    ]
