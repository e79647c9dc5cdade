"""The facility-location program of `plan hub`, solved with HiGHS.

    maximise  sum_c w_c sum_o weight[c,o] sum_s x[c,o,s]                    (latency-bound demand served)
              - w_cost sum_p,s b[p,s] cost[p,s] / cost_ref - w_carbon sum_p,s b[p,s] carbon[p,s] / carbon_ref
    s.t.      sum_s x[c,o,s] <= 1            x[c,o,s] >= 0 only where lat[o,s] <= bound_c
              sum_s b[p,s] = 1               (all batch demand is served somewhere)
              load of cores and of cards at s <= capacity_s            (existing sites)
              load of cores and of cards at j <= capacity_j open_j     (candidates)
              x[c,o,j] <= open_j                                        (strong linking, real-time class)
              sum_j open_j = k,  open_j in {0, 1}

x[c,o,s] is the share of origin o's class-c demand served at s, b[p,s] the share of province p's batch.
`evaluate` solves the LP for a fixed set of open candidates (on the instance restricted to them); `rank_single`
evaluates every single candidate; `Model.solve_k` solves the MIP and reports HiGHS's proven gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import highspy
import numpy as np
import scipy.sparse as sp

from suanwang.planner.instance import Instance
from suanwang.scheduler.optimize.lp import quiet_highs

_INF = highspy.kHighsInf


@dataclass
class Solution:
    """One solved plan: the open candidates (indices into the candidates), objective and its parts."""

    open: tuple[int, ...]
    objective: float
    served: np.ndarray  # [C] share of each latency-bound class served within its bound
    cost_cny_h: float  # batch cost, CNY per hour
    carbon_kg_h: float  # batch carbon (market-based), kg per hour
    site_cores: np.ndarray  # [C + 1, S'] busy cores by class (last row: batch)
    batch_share: np.ndarray  # [P, S'] b
    sites: np.ndarray  # [S'] the sites of site_cores / batch_share: indices into the instance's sites
    gap: float = 0.0  # relative MIP gap proven by HiGHS (0 for a fixed set)
    bound: float | None = None  # best proven upper bound on the objective
    solve_s: float = 0.0
    method: str = "lp"  # how the set was found: lp (fixed set), mip (HiGHS branch and bound), enumeration


class Model:
    """The LP / MIP of one instance, built once; column layout [open | x | b]."""

    def __init__(self, inst: Instance, strong: bool = True):
        self.inst = inst
        n_c, n_o = inst.tier_cores.shape
        n_s, n_e, n_j = len(inst.site_ids), inst.n_existing, inst.n_candidates
        n_p = inst.batch_cores.size
        w = inst.weights
        tier_w = np.array([w.realtime, w.interactive])[:n_c]
        # x columns: feasible (class, origin, site) with some demand
        cls, org, site = [], [], []
        for c in range(n_c):
            has = (inst.tier_cores[c] + inst.tier_cards[c] > 0) | (inst.tier_weight[c] > 0)
            o_ix, s_ix = np.nonzero((inst.lat_ms <= inst.tier_bound_ms[c]) & has[:, None])
            cls.append(np.full(o_ix.size, c))
            org.append(o_ix)
            site.append(s_ix)
        self.x_cls, self.x_org, self.x_site = (np.concatenate(a).astype(np.int64) for a in (cls, org, site))
        n_x = self.x_cls.size
        self.b_prov = np.repeat(np.arange(n_p), n_s)
        self.b_site = np.tile(np.arange(n_s), n_p)
        n_b = self.b_prov.size
        self.off_x, self.off_b = n_j, n_j + n_x
        n_col = n_j + n_x + n_b
        # rows: [tier demand (c, o)] [batch p] [cap cores s] [cap cards s] [cardinality] [linking]
        r_dem = self.x_cls * n_o + self.x_org
        r_bat = n_c * n_o + self.b_prov
        r_cap = n_c * n_o + n_p
        link = np.nonzero((self.x_cls == 0) & (self.x_site >= n_e))[0] if strong else np.zeros(0, dtype=np.int64)
        blink = np.nonzero(self.b_site >= n_e)[0] if strong == "all" else np.zeros(0, dtype=np.int64)
        r_card = r_cap + 2 * n_s
        n_row = r_card + 1 + link.size + blink.size
        xc = np.arange(n_x) + self.off_x
        bc = np.arange(n_b) + self.off_b
        jc = np.arange(n_j)
        rows = [
            r_dem,
            r_cap + self.x_site,
            r_cap + n_s + self.x_site,
            r_bat,
            r_cap + self.b_site,
            r_cap + n_s + self.b_site,
            r_cap + n_e + jc,
            r_cap + n_s + n_e + jc,
            np.full(n_j, r_card),
            r_card + 1 + np.arange(link.size),
            r_card + 1 + np.arange(link.size),
            r_card + 1 + link.size + np.arange(blink.size),
            r_card + 1 + link.size + np.arange(blink.size),
        ]
        cols = [
            *(xc, xc, xc, bc, bc, bc, jc, jc, jc),
            link + self.off_x,
            self.x_site[link] - n_e,
            blink + self.off_b,
            self.b_site[blink] - n_e,
        ]
        vals = [
            np.ones(n_x),
            inst.tier_cores[self.x_cls, self.x_org],
            inst.tier_cards[self.x_cls, self.x_org],
            np.ones(n_b),
            inst.batch_cores[self.b_prov],
            inst.batch_cards[self.b_prov],
            -inst.cap_cores[n_e:],
            -inst.cap_cards[n_e:],
            np.ones(n_j),
            np.ones(link.size),
            -np.ones(link.size),
            np.ones(blink.size),
            -np.ones(blink.size),
        ]
        a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_row, n_col))
        a.sum_duplicates()
        cost = np.concatenate(
            [
                np.zeros(n_j),
                tier_w[self.x_cls] * inst.tier_weight[self.x_cls, self.x_org],
                -w.cost * inst.batch_cost.ravel() / inst.cost_ref
                - w.carbon * inst.batch_carbon.ravel() / inst.carbon_ref,
            ]
        )
        row_lo = np.full(n_row, -_INF)
        row_hi = np.zeros(n_row)
        row_hi[: n_c * n_o] = 1.0
        row_lo[r_bat[0] : r_bat[0] + n_p] = 1.0
        row_hi[r_bat[0] : r_bat[0] + n_p] = 1.0
        row_hi[r_cap : r_cap + n_e] = inst.cap_cores[:n_e]
        row_hi[r_cap + n_s : r_cap + n_s + n_e] = inst.cap_cards[:n_e]
        row_hi[r_card] = _INF
        self.r_card = r_card
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n_col, n_row
        lp.col_cost_ = cost
        lp.col_lower_ = np.zeros(n_col)
        lp.col_upper_ = np.concatenate([np.zeros(n_j), np.full(n_x + n_b, _INF)])
        lp.row_lower_, lp.row_upper_ = row_lo, row_hi
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        self.lp = lp
        self.h = quiet_highs()
        self.h.passModel(lp)
        self.n_cols, self.n_rows = n_col, n_row

    # --- the MIP ---------------------------------------------------------------------------------------
    def solve_k(self, k: int, time_limit_s: float = 60.0, rel_gap: float = 1e-6, start=None) -> Solution:
        """The best set of exactly `k` candidates (MIP), with the relative gap HiGHS proved; `start`: a set of k
        candidates whose LP solution is handed to HiGHS as the first incumbent."""
        n_j = self.inst.n_candidates
        t0 = time.perf_counter()
        h = quiet_highs()
        h.passModel(self.lp)
        h.changeColsBounds(n_j, np.arange(n_j, dtype=np.int32), np.zeros(n_j), np.ones(n_j))
        kinds = np.full(n_j, highspy.HighsVarType.kInteger.value, dtype=np.uint8)
        h.changeColsIntegrality(n_j, np.arange(n_j, dtype=np.int32), kinds)
        h.changeRowBounds(self.r_card, float(k), float(k))
        h.setOptionValue("time_limit", float(time_limit_s))
        h.setOptionValue("mip_rel_gap", rel_gap)
        if start is not None and len(start) == k:
            v = np.zeros(n_j)
            v[list(start)] = 1.0  # a partial solution: HiGHS completes the continuous part itself
            h.setSolution(n_j, np.arange(n_j, dtype=np.int32), v)
        h.run()
        sol = h.getSolution()
        if not sol.value_valid:
            raise RuntimeError(f"HiGHS found no plan for k={k}: {h.modelStatusToString(h.getModelStatus())}")
        x = np.asarray(sol.col_value)
        chosen = tuple(int(j) for j in np.nonzero(x[:n_j] > 0.5)[0])
        info = h.getInfo()
        out = evaluate(self.inst, chosen)  # the continuous part of the chosen set, solved exactly as an LP
        out.gap = max(0.0, float(info.mip_gap)) if np.isfinite(info.mip_gap) else 0.0
        out.bound = float(info.mip_dual_bound)
        out.method = "mip"
        out.solve_s = time.perf_counter() - t0
        return out


def evaluate(inst: Instance, open_set=()) -> Solution:
    """The LP optimum of `inst` with exactly the candidates in `open_set` open (indices into the candidates):
    solved on the instance restricted to the existing sites and those candidates (a small LP)."""
    t0 = time.perf_counter()
    open_set = tuple(sorted(int(j) for j in open_set))
    sub, keep = inst.restrict(open_set)
    m = Model(sub, strong=False)
    n_j = sub.n_candidates
    m.h.changeColsBounds(n_j, np.arange(n_j, dtype=np.int32), np.ones(n_j), np.ones(n_j))
    m.h.run()
    status = m.h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"plan with candidates {open_set}: HiGHS says {m.h.modelStatusToString(status)}")
    return _solution(m, open_set, keep, time.perf_counter() - t0)


def rank_single(inst: Instance) -> list[Solution]:
    """evaluate(inst, (j,)) for every candidate j - the exact value of opening each one alone - from one LP with a
    single candidate slot, re-targeted to each candidate in turn and warm-started from the previous basis."""
    return rank_with_status_quo(inst)[1]


def rank_with_status_quo(inst: Instance) -> tuple[Solution, list[Solution]]:
    """(evaluate(inst), rank_single(inst)) from the same warm-started LP: the status quo is the slot with no
    capacity and no reachable origin."""
    if inst.n_candidates == 0:
        return evaluate(inst), []
    n_e = inst.n_existing
    template, _ = inst.restrict((0,))
    template.lat_ms = template.lat_ms.copy()
    template.lat_ms[:, n_e] = 0.0  # the slot gets a column for every origin; bounds switch them per candidate
    m = Model(template, strong=False)
    h = m.h
    h.changeColBounds(0, 1.0, 1.0)
    slot_x = np.nonzero(m.x_site == n_e)[0]
    slot_b = np.nonzero(m.b_site == n_e)[0]
    x_cols = (slot_x + m.off_x).astype(np.int32)
    b_cols = (slot_b + m.off_b).astype(np.int32)
    bound = inst.tier_bound_ms[m.x_cls[slot_x]]
    origin = m.x_org[slot_x]
    w = inst.weights
    r_cap = m.r_card - 2 * (n_e + 1)
    t0 = time.perf_counter()
    h.changeColsBounds(x_cols.size, x_cols, np.zeros(x_cols.size), np.zeros(x_cols.size))
    h.changeColsCost(b_cols.size, b_cols, np.zeros(b_cols.size))
    h.changeColsBounds(b_cols.size, b_cols, np.zeros(b_cols.size), np.zeros(b_cols.size))
    h.changeCoeff(r_cap + n_e, 0, 0.0)
    h.changeCoeff(r_cap + 2 * n_e + 1, 0, 0.0)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"status quo: HiGHS says {h.modelStatusToString(h.getModelStatus())}")
    m.inst = template
    sq = _solution(m, (), np.arange(n_e + 1), time.perf_counter() - t0)
    keep = np.arange(n_e)
    sq = replace(sq, site_cores=sq.site_cores[:, :n_e], batch_share=sq.batch_share[:, :n_e], sites=keep)
    h.changeColsBounds(b_cols.size, b_cols, np.zeros(b_cols.size), np.full(b_cols.size, _INF))
    out = []
    for j in range(inst.n_candidates):
        t0 = time.perf_counter()
        s = n_e + j
        upper = np.where(inst.lat_ms[origin, s] <= bound, _INF, 0.0)
        h.changeColsBounds(x_cols.size, x_cols, np.zeros(x_cols.size), upper)
        prov = m.b_prov[slot_b]
        cost = (
            -w.cost * inst.batch_cost[prov, s] / inst.cost_ref - w.carbon * inst.batch_carbon[prov, s] / inst.carbon_ref
        )
        h.changeColsCost(b_cols.size, b_cols, cost)
        h.changeCoeff(r_cap + n_e, 0, -float(inst.cap_cores[s]))
        h.changeCoeff(r_cap + 2 * n_e + 1, 0, -float(inst.cap_cards[s]))
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"plan with candidate {j}: HiGHS says {h.modelStatusToString(status)}")
        sub, keep = inst.restrict((j,))
        m.inst = sub
        out.append(_solution(m, (j,), keep, time.perf_counter() - t0))
    return sq, out


def _solution(m: Model, open_set: tuple[int, ...], keep: np.ndarray, seconds: float) -> Solution:
    inst = m.inst
    v = np.asarray(m.h.getSolution().col_value)
    x = v[m.off_x : m.off_b]
    b = v[m.off_b :]
    n_c = inst.tier_cores.shape[0]
    n_s, n_p = len(inst.site_ids), inst.batch_cores.size
    served = np.bincount(m.x_cls, weights=x * inst.tier_weight[m.x_cls, m.x_org], minlength=n_c).astype(float)
    site_cores = np.zeros((n_c + 1, n_s))
    np.add.at(site_cores, (m.x_cls, m.x_site), x * inst.tier_cores[m.x_cls, m.x_org])
    share = b.reshape(n_p, n_s)
    site_cores[n_c] = (share * inst.batch_cores[:, None]).sum(axis=0)
    return Solution(
        open=open_set,
        objective=float(m.h.getInfo().objective_function_value),
        served=served,
        cost_cny_h=float((share * inst.batch_cost).sum()),
        carbon_kg_h=float((share * inst.batch_carbon).sum()),
        site_cores=site_cores,
        batch_share=share,
        sites=keep,
        solve_s=seconds,
    )
