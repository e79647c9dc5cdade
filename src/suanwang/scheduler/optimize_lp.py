"""The batch LP over candidate columns, solved with HiGHS by column generation with a certified lower bound.

Variables: x_i (jobs of column i's class starting at its site and slot), u_c (jobs of class c left unplaced, at a
penalty), and occupancy O[s, tau] of cores and cards per site and slot (0 <= O <= free capacity).
Rows:
  assign   sum_i x_i (class c) + u_c = n_c
  flow     O[s, tau] - O[s, tau - 1] - (cores starting at tau) + (cores ending at tau) = 0   (same for cards)
  link     sum of GB moved on link l in slot tau <= link capacity per slot
Occupancy flows keep the matrix at two entries per column and resource however long a job runs.

Column generation: start from the cheapest few slots per (class, site), solve, price every candidate with the
row duals, add the columns with negative reduced cost, repeat. After each solve the Lagrangian bound
  sum_c n_c min(penalty_c, min_i rc_i) + sum_O cap x min(0, rc_O) + sum_links cap x min(0, y_link)
(rows relaxed with the current duals) is a valid lower bound of the full LP, so the plan's gap is certified even
when generation stops early; when no column prices out it equals the LP optimum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from suanwang.scheduler.optimize_columns import Columns

_INF = highspy.kHighsInf


@dataclass
class LpResult:
    """Solution over the candidate columns: x [n], u [C]; the lower bound and the restricted LP objective."""

    x: np.ndarray
    u: np.ndarray
    lp_bound: float
    lp_objective: float
    n_vars: int
    rounds: int
    converged: bool
    integral: bool
    solve_s: float


class RowIndex:
    """Row numbers of the model: assign rows per class, flow rows per (site, slot), link rows per (link, slot)."""

    def __init__(self, cols: Columns):
        n_cls, n_sites = len(cols.penalty), len(cols.cpu_cap)
        self.assign = np.cumsum(cols.penalty > 0) - 1  # [C] row of class c (valid where it has columns)
        self.n_assign = int((cols.penalty > 0).sum())
        self.h = cols.rows_h
        self.cpu0 = self.n_assign
        self.gpu0 = self.cpu0 + n_sites * self.h
        self.link0 = self.gpu0 + n_sites * self.h
        self.n_rows = self.link0 + cols.n_links * cols.xfer_h
        self.n_cls = n_cls
        self.n_sites = n_sites

    def cpu(self, s, t):
        return self.cpu0 + s * self.h + t

    def gpu(self, s, t):
        return self.gpu0 + s * self.h + t


def x_entries(cols: Columns, rows: RowIndex, idx: np.ndarray):
    """(row, local column, value) triplets of the x columns `idx`."""
    c, s, t, d = cols.cls[idx], cols.site[idx], cols.slot[idx], cols.dur[idx]
    local = np.arange(idx.size)
    cpu, gpu = cols.cpu[c].astype(float), cols.gpu[c].astype(float)
    parts = [(rows.assign[c], local, np.ones(idx.size))]
    for base, amount in ((rows.cpu0, cpu), (rows.gpu0, gpu)):
        on = amount > 0
        start = base + s * rows.h + t
        parts.append((start[on], local[on], -amount[on]))
        parts.append((start[on] + d[on], local[on], amount[on]))
    for k in range(int(cols.xfer_slots.max(initial=0))):
        vol = cols.volume_gb(idx, k)
        on = vol > 0
        r = rows.link0 + cols.link[idx] * cols.xfer_h + t + k
        parts.append((r[on], local[on], vol[on]))
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def _csc(n_rows: int, n_cols: int, r, c, v):
    m = sp.csc_matrix((v, (r, c)), shape=(n_rows, n_cols))
    m.sort_indices()
    return m


def _fixed_columns(cols: Columns, rows: RowIndex):
    """u and O columns: costs, bounds and matrix (rows, cols, values)."""
    classes = np.nonzero(cols.penalty > 0)[0]
    n_u = classes.size
    h, n_sites = rows.h, rows.n_sites
    s_idx = np.repeat(np.arange(n_sites), h)
    tau = np.tile(np.arange(h), n_sites)
    rr, cc, vv = [rows.assign[classes]], [np.arange(n_u)], [np.ones(n_u)]
    for k, base in enumerate((rows.cpu0, rows.gpu0)):
        col = n_u + k * n_sites * h + np.arange(n_sites * h)
        rr.append(base + s_idx * h + tau)
        cc.append(col)
        vv.append(np.ones(col.size))
        nxt = tau + 1 < h
        rr.append(base + s_idx[nxt] * h + tau[nxt] + 1)
        cc.append(col[nxt])
        vv.append(-np.ones(int(nxt.sum())))
    cost = np.concatenate([cols.penalty[classes], np.zeros(2 * n_sites * h)])
    lower = np.zeros(cost.size)
    upper = np.concatenate([np.full(n_u, _INF), np.repeat(cols.cpu_cap, h), np.repeat(cols.gpu_cap, h)])
    return classes, cost, lower, upper, (np.concatenate(rr), np.concatenate(cc), np.concatenate(vv))


def _row_bounds(cols: Columns, rows: RowIndex):
    lower = np.zeros(rows.n_rows)
    upper = np.zeros(rows.n_rows)
    counts = np.zeros(rows.n_assign)
    classes = np.nonzero(cols.penalty > 0)[0]
    counts[rows.assign[classes]] = cols.count[classes]
    lower[: rows.n_assign] = counts
    upper[: rows.n_assign] = counts
    lower[rows.link0 :] = -_INF
    upper[rows.link0 :] = cols.link_cap_gb
    return lower, upper


def initial_columns(cols: Columns, per_pair: int) -> np.ndarray:
    """Indices of the `per_pair` cheapest slots of every (class, site) pair: the first restricted master."""
    if len(cols) == 0:
        return np.zeros(0, dtype=np.int64)
    pair = cols.cls * (int(cols.site.max()) + 1) + cols.site
    order = np.lexsort((cols.slot, cols.w, pair))
    sorted_pair = pair[order]
    first = np.searchsorted(sorted_pair, sorted_pair, side="left")
    rank = np.arange(order.size) - first
    return np.sort(order[rank < per_pair])


def price_columns(cols: Columns, rows: RowIndex, y: np.ndarray) -> np.ndarray:
    """Lagrangian reduced cost w_i - a_i'y of every candidate column (assign row excluded), vectorised."""
    c, s, t, d = cols.cls, cols.site, cols.slot, cols.dur
    cpu, gpu = cols.cpu[c], cols.gpu[c]
    ay = cpu * (y[rows.cpu0 + s * rows.h + t + d] - y[rows.cpu0 + s * rows.h + t])
    ay += gpu * (y[rows.gpu0 + s * rows.h + t + d] - y[rows.gpu0 + s * rows.h + t])
    y_link = np.minimum(y[rows.link0 :], 0.0)
    for k in range(int(cols.xfer_slots.max(initial=0))):
        vol = cols.volume_gb(np.arange(len(cols)), k)
        on = vol > 0
        ay[on] += vol[on] * y_link[cols.link[on] * cols.xfer_h + t[on] + k]
    return cols.w - ay


def lagrangian_bound(cols: Columns, rows: RowIndex, y: np.ndarray, rc: np.ndarray) -> float:
    """A valid lower bound of the full LP from any duals y (see module docstring)."""
    classes = np.nonzero(cols.penalty > 0)[0]
    min_rc = np.minimum.reduceat(rc, cols.class_start[classes])
    bound = float(np.sum(cols.count[classes] * np.minimum(cols.penalty[classes], min_rc)))
    for base, cap in ((rows.cpu0, cols.cpu_cap), (rows.gpu0, cols.gpu_cap)):
        yy = y[base : base + rows.n_sites * rows.h].reshape(rows.n_sites, rows.h)
        a_o = yy.copy()
        a_o[:, :-1] -= yy[:, 1:]
        bound += float(np.sum(cap[:, None] * np.minimum(0.0, -a_o)))
    bound += float(np.sum(cols.link_cap_gb * np.minimum(0.0, y[rows.link0 :])))
    return bound


def solve(
    cols: Columns,
    *,
    per_pair: int = 2,
    max_rounds: int = 8,
    bound_tol: float = 1e-4,
    mip: bool = False,
    mip_time_limit_s: float = 10.0,
) -> LpResult:
    """Solve the LP (column generation) or, with `mip`, the exact integer program over all columns."""
    t0 = time.perf_counter()
    rows = RowIndex(cols)
    n = len(cols)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    classes, f_cost, f_lo, f_hi, (fr, fc, fv) = _fixed_columns(cols, rows)
    n_fixed = f_cost.size
    r_lo, r_hi = _row_bounds(cols, rows)
    chosen = np.arange(n) if mip else initial_columns(cols, per_pair)
    xr, xc, xv = x_entries(cols, rows, chosen)
    a = _csc(
        rows.n_rows,
        n_fixed + chosen.size,
        np.concatenate([fr, xr]),
        np.concatenate([fc, xc + n_fixed]),
        np.concatenate([fv, xv]),
    )
    lp = highspy.HighsLp()
    lp.num_col_ = int(a.shape[1])
    lp.num_row_ = rows.n_rows
    lp.col_cost_ = np.concatenate([f_cost, cols.w[chosen]])
    lp.col_lower_ = np.concatenate([f_lo, np.zeros(chosen.size)])
    lp.col_upper_ = np.concatenate([f_hi, np.full(chosen.size, _INF)])
    lp.row_lower_ = r_lo
    lp.row_upper_ = r_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    h.passModel(lp)

    in_model = np.zeros(n, dtype=bool)
    in_model[chosen] = True
    order = list(chosen)
    best_bound, rounds, converged = -np.inf, 0, False
    while True:
        rounds += 1
        h.run()
        obj = h.getInfo().objective_function_value
        y = np.asarray(h.getSolution().row_dual)
        rc = price_columns(cols, rows, y)
        best_bound = max(best_bound, lagrangian_bound(cols, rows, y, rc)) if n else obj
        alpha = y[rows.assign[cols.cls]] if n else np.zeros(0)
        scale = max(1.0, abs(obj))
        enter = np.nonzero(~in_model & (rc - alpha < -1e-9 * scale))[0]
        if enter.size == 0:
            converged, best_bound = True, obj
            break
        if rounds >= max_rounds or obj - best_bound <= bound_tol * scale:
            break
        er, ec, ev = x_entries(cols, rows, enter)
        m = _csc(rows.n_rows, enter.size, er, ec, ev)
        h.addCols(
            enter.size,
            cols.w[enter],
            np.zeros(enter.size),
            np.full(enter.size, _INF),
            m.nnz,
            m.indptr,
            m.indices,
            m.data,
        )
        in_model[enter] = True
        order.extend(enter.tolist())
    lp_objective = obj
    integral = False
    values = np.asarray(h.getSolution().col_value)
    if mip:
        integer = np.concatenate([np.arange(classes.size), np.arange(n_fixed, n_fixed + n)]).astype(np.int32)
        kinds = np.full(integer.size, highspy.HighsVarType.kInteger.value, dtype=np.uint8)
        h.changeColsIntegrality(integer.size, integer, kinds)
        h.setOptionValue("time_limit", float(mip_time_limit_s))
        h.setOptionValue("mip_rel_gap", 0.0)
        h.run()
        sol = h.getSolution()
        if sol.value_valid:
            values, integral = np.asarray(sol.col_value), True
    x = np.zeros(n)
    x[np.asarray(order, dtype=np.int64)] = values[n_fixed:]
    u = np.zeros(len(cols.penalty))
    u[classes] = values[: classes.size]
    return LpResult(
        x, u, best_bound, lp_objective, h.getNumCol(), rounds, converged, integral, time.perf_counter() - t0
    )
