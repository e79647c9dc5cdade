"""The whole-job integer program over the candidate columns, solved with HiGHS under a time limit.

Variables: x_i (integer, 0 <= x_i <= n_c): jobs of column i's class starting at its site and slot.
    minimise   sum_i (w_i - penalty_c(i)) x_i  (+ sum_c penalty_c n_c, a constant)
    s.t.       sum_{i in class c} x_i <= n_c                                   every job at most once
               sum_{i holds (s, tau)} cores_i x_i <= free cores (s, tau)           (cards the same)
               sum_{i moves data on link l in slot tau} GB_i x_i <= link capacity per slot
The capacity rows are written per (site, slot) - the knapsack rows HiGHS's cut and heuristic machinery works
on directly - rather than as the LP's occupancy flows (two entries per column): on small tight windows this
form solves several times faster (measured: 1.5 s against 4.9 s to optimality on a 382-column window). Its LP
relaxation is the same as optimize/lp's.

HiGHS starts from `start` (a feasible whole-job plan, e.g. the greedy one), so the result is never worse than
it. `proven` only when HiGHS reports the model Optimal and the gap is closed (MIP_GAP_TOL); at the time limit the
result carries the incumbent and HiGHS's dual bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from suanwang.scheduler.optimize.columns import Columns
from suanwang.scheduler.optimize.lp import quiet_highs

MIP_GAP_TOL = 1e-6  # relative (objective - dual bound) / max(1, |objective|) under which a plan counts as optimal
_FEASIBLE = int(highspy.SolutionStatus.kSolutionStatusFeasible)


@dataclass
class MipResult:
    """counts [n] of the best whole-job plan found (None: none), HiGHS's dual bound of the objective (CNY-equivalent,
    penalties included), whether optimality is proven, and seconds in HiGHS."""

    counts: np.ndarray | None
    bound: float
    proven: bool
    highs_s: float


def mip_closed(objective: float, bound: float) -> bool:
    """Whether a plan of value `objective` is proven optimal by the dual `bound` (CNY-equivalent)."""
    return objective - bound <= MIP_GAP_TOL * max(1.0, abs(objective))


def capacity_rows(cols: Columns):
    """(row, column, value, upper) of the assignment, per-(site, slot) capacity and per-(link, slot) rows."""
    n = len(cols)
    has = np.nonzero(cols.penalty > 0)[0]
    assign = np.full(len(cols.count), -1, dtype=np.int64)
    assign[has] = np.arange(has.size)
    rr, cc, vv = [assign[cols.cls]], [np.arange(n)], [np.ones(n)]
    upper = [cols.count[has].astype(float)]
    n_rows = has.size
    rows_h = cols.cpu_cap.shape[1]
    dur = cols.dur
    col_rep = np.repeat(np.arange(n), dur)
    offset = np.arange(col_rep.size) - np.repeat(np.cumsum(dur) - dur, dur)
    cell = cols.site[col_rep] * rows_h + cols.slot[col_rep] + offset  # (site, slot) held, one entry per slot
    for amount, cap in ((cols.cpu, cols.cpu_cap), (cols.gpu, cols.gpu_cap)):
        per = amount[cols.cls[col_rep]].astype(float)
        on = per > 0
        used, row = np.unique(cell[on], return_inverse=True)
        rr.append(n_rows + row)
        cc.append(col_rep[on])
        vv.append(per[on])
        upper.append(cap.ravel()[used].astype(float))
        n_rows += used.size
    keys, idx, vol = [], [], []
    for k in range(int(cols.xfer_slots.max(initial=0))):
        gb = cols.volume_gb(np.arange(n), k)
        on = np.nonzero(gb > 0)[0]
        keys.append(cols.link[on] * cols.xfer_h + cols.slot[on] + k)
        idx.append(on)
        vol.append(gb[on])
    if keys:
        used, row = np.unique(np.concatenate(keys), return_inverse=True)
        rr.append(n_rows + row)
        cc.append(np.concatenate(idx))
        vv.append(np.concatenate(vol))
        upper.append(np.full(used.size, cols.link_cap_gb))
        n_rows += used.size
    return np.concatenate(rr), np.concatenate(cc), np.concatenate(vv), np.concatenate(upper), n_rows


# A short polish (primal=True) keeps HiGHS's cut pool small and its LP rows young: on the small tight windows of
# benchmarks/bench_plan_quality.py, with a 0.4 s limit, the median gap to the optimum stayed at 0 % and the p90
# fell from 12 % to 3 % (20 instances, same starts, one run), because the root spends less time separating
# cuts (1,348 on a 523-column window) and reaches the sub-MIP heuristics sooner.
PRIMAL_OPTIONS = {"mip_pool_soft_limit": 50, "mip_lp_age_limit": 1, "mip_pool_age_limit": 5}


def solve_mip(cols: Columns, time_limit_s: float, start: np.ndarray | None = None, primal: bool = False) -> MipResult:
    """The best whole-job plan HiGHS finds over all candidate columns within `time_limit_s` seconds (`primal`:
    settings for a short polish that wants a good plan soon rather than a proof, see PRIMAL_OPTIONS)."""
    n = len(cols)
    constant = float(cols.penalty @ cols.count)
    if n == 0:
        return MipResult(np.zeros(0, dtype=np.int64), constant, True, 0.0)
    r, c, v, upper, n_rows = capacity_rows(cols)
    a = sp.csc_matrix((v, (r, c)), shape=(n_rows, n))
    a.sort_indices()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, n_rows
    lp.col_cost_ = cols.w - cols.penalty[cols.cls]
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = cols.count[cols.cls].astype(float)
    lp.row_lower_ = np.full(n_rows, -highspy.kHighsInf)
    lp.row_upper_ = upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    lp.integrality_ = np.full(n, highspy.HighsVarType.kInteger)
    h = quiet_highs()
    h.passModel(lp)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 0.0)
    for key, value in (PRIMAL_OPTIONS if primal else {}).items():
        h.setOptionValue(key, value)
    if start is not None:
        h.setSolution(n, np.arange(n, dtype=np.int32), start.astype(float))
    t0 = time.perf_counter()
    h.run()
    highs_s = time.perf_counter() - t0
    info = h.getInfo()
    if not (h.getSolution().value_valid and info.primal_solution_status == _FEASIBLE):
        return MipResult(None, -np.inf, False, highs_s)
    counts = np.rint(np.asarray(h.getSolution().col_value)).astype(np.int64)
    objective = constant + float(info.objective_function_value)
    bound = constant + float(info.mip_dual_bound)
    proven = h.getModelStatus() == highspy.HighsModelStatus.kOptimal and mip_closed(objective, bound)
    return MipResult(counts, bound, proven, highs_s)
