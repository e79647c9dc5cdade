"""The batch LP over candidate columns, solved with HiGHS by column generation with a certified lower bound.

Variables: x_i (jobs of column i's class starting at its site and slot), u_c (jobs of class c left unplaced, at a
penalty), and occupancy O[s, tau] of cores and cards per site and slot (0 <= O <= free capacity).
Rows:
  assign   sum_i x_i (class c) + u_c = n_c
  flow     O[s, tau] - O[s, tau - 1] - (cores starting at tau) + (cores ending at tau) = 0   (same for cards)
  link     sum of GB moved on link l in slot tau <= link capacity per slot
Occupancy flows keep the matrix at two entries per column and resource however long a job runs.

Column generation: start from the cheapest few slots per (class, site), solve, price every candidate with the
row duals, add the most negative columns of each class, repeat. Link rows are added lazily, only once the
solution overdraws a link in a slot (they rarely bind). After each solve the Lagrangian bound
  sum_c n_c min(penalty_c, min_i rc_i) + sum_O cap x min(0, rc_O) + sum_links cap x min(0, y_link)
(rows relaxed with the current duals) is a valid lower bound of the full LP, so the plan's gap is certified even
when generation stops early; when no column prices out it equals the LP optimum.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from functools import cache

import highspy
import numpy as np
import scipy.sparse as sp

from suanwang.scheduler.optimize.columns import Columns

_INF = highspy.kHighsInf


@cache
def _banner_swallowed() -> bool:
    """Construct one Highs with stdout closed at the file-descriptor level: HiGHS prints its banner (C++, once per
    process) on the first construction, before any option can turn output off."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return True


def quiet_highs() -> highspy.Highs:
    """A Highs instance that prints nothing (no banner, no solver log)."""
    _banner_swallowed()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


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
    solve_s: float
    highs_s: float = 0.0  # seconds inside HiGHS (all master solves)
    pricing_s: float = 0.0  # seconds pricing candidates and computing the Lagrangian bound


LAZY_SITES = 48  # above this many sites, a site's flow rows enter the master only once the LP overloads it


class RowIndex:
    """Row numbers: assign rows per class, flow rows per (site, slot); link rows per (link, slot) added lazily.

    Flow rows have a virtual layout - cpu0 + s x h + tau, gpu0 + s x h + tau, as if every site had them - and
    `phys` maps a virtual row to its row in the model (-1 while the site is not in it: `lazy` sites, whose
    capacity rows are added once a solution overloads them). Assign rows are rows 0..n_assign-1 in both."""

    def __init__(self, cols: Columns, lazy: bool = False):
        n_sites = len(cols.cpu_cap)
        self.assign = np.cumsum(cols.penalty > 0) - 1  # [C] row of class c (valid where it has columns)
        self.n_assign = int((cols.penalty > 0).sum())
        self.h = cols.rows_h
        self.cpu0 = self.n_assign
        self.gpu0 = self.cpu0 + n_sites * self.h
        self.n_base = self.gpu0 + n_sites * self.h
        self.n_sites = n_sites
        self.xh = cols.xfer_h
        self.link_row = np.full(cols.n_links * cols.xfer_h, -1, dtype=np.int64)  # (link, slot) -> row or -1
        self.active = np.full(n_sites, not lazy)  # sites whose flow rows are in the model
        self.phys = np.full(self.n_base, -1, dtype=np.int64)
        self.phys[: self.n_assign] = np.arange(self.n_assign)
        self.n_rows = self.n_assign
        if not lazy:
            self.phys[self.n_assign :] = np.arange(self.n_assign, self.n_base)
            self.n_rows = self.n_base

    def site_rows(self, sites: np.ndarray) -> np.ndarray:
        """Virtual flow rows of `sites` (cpu block, then gpu block; site-major, slot-minor)."""
        tau = np.arange(self.h)
        return np.concatenate(
            [(base + sites[:, None] * self.h + tau[None, :]).ravel() for base in (self.cpu0, self.gpu0)]
        )

    def virtual(self, y: np.ndarray) -> np.ndarray:
        """Duals over the virtual layout (0 for rows not in the model) from the model's row duals y."""
        out = np.zeros(self.n_base)
        on = self.phys >= 0
        out[on] = y[self.phys[on]]
        return out


def x_entries(cols: Columns, rows: RowIndex, idx: np.ndarray):
    """(row, local column, value) triplets of the x columns `idx` over the rows that exist."""
    c, s, t, d = cols.cls[idx], cols.site[idx], cols.slot[idx], cols.dur[idx]
    local = np.arange(idx.size)
    cpu, gpu = cols.cpu[c].astype(float), cols.gpu[c].astype(float)
    parts = [(rows.assign[c], local, np.ones(idx.size))]
    for base, amount in ((rows.cpu0, cpu), (rows.gpu0, gpu)):
        start = base + s * rows.h + t
        for row, sign in ((rows.phys[start], -1.0), (rows.phys[start + d], 1.0)):
            on = (amount > 0) & (row >= 0)
            parts.append((row[on], local[on], sign * amount[on]))
    for key, vol in _transfers(cols, idx):
        r = np.where(key >= 0, rows.link_row[np.maximum(key, 0)], -1)
        on = r >= 0
        parts.append((r[on], local[on], vol[on]))
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def _transfers(cols: Columns, idx: np.ndarray):
    """For each transfer slot k: ((link, slot) key, GB) of the columns `idx` that move data then (-1 / 0 else)."""
    for k in range(int(cols.xfer_slots[idx].max(initial=0))):
        vol = cols.volume_gb(idx, k)
        key = np.where(vol > 0, cols.link[idx] * cols.xfer_h + cols.slot[idx] + k, -1)
        yield key, vol


def _csc(n_rows: int, n_cols: int, r, c, v):
    m = sp.csc_matrix((v, (r, c)), shape=(n_rows, n_cols))
    m.sort_indices()
    return m


def _fixed_columns(cols: Columns, rows: RowIndex):
    """u columns and the O columns of the active sites: costs, bounds and matrix (rows, cols, values)."""
    classes = np.nonzero(cols.penalty > 0)[0]
    n_u = classes.size
    o_cost, o_lower, o_upper, (orr, occ, ovv) = occupancy_columns(cols, rows, np.nonzero(rows.active)[0], n_u)
    rr, cc, vv = [rows.assign[classes], orr], [np.arange(n_u), occ], [np.ones(n_u), ovv]
    cost = np.concatenate([cols.penalty[classes], o_cost])
    lower = np.concatenate([np.zeros(n_u), o_lower])
    upper = np.concatenate([np.full(n_u, _INF), o_upper])
    return classes, cost, lower, upper, (np.concatenate(rr), np.concatenate(cc), np.concatenate(vv))


def occupancy_columns(cols: Columns, rows: RowIndex, sites: np.ndarray, first_col: int):
    """O columns of `sites` (cores, then cards; site-major, slot-minor), numbered from `first_col`: costs (0),
    bounds (0 .. free capacity) and matrix entries in their flow rows (which must be in the model)."""
    h = rows.h
    s_idx = np.repeat(sites, h)
    tau = np.tile(np.arange(h), sites.size)
    rr, cc, vv, upper = [], [], [], []
    for k, (base, cap) in enumerate(((rows.cpu0, cols.cpu_cap), (rows.gpu0, cols.gpu_cap))):
        col = first_col + k * s_idx.size + np.arange(s_idx.size)
        rr.append(rows.phys[base + s_idx * h + tau])
        cc.append(col)
        vv.append(np.ones(col.size))
        nxt = tau + 1 < h
        rr.append(rows.phys[base + s_idx[nxt] * h + tau[nxt] + 1])
        cc.append(col[nxt])
        vv.append(-np.ones(int(nxt.sum())))
        upper.append(cap[sites].ravel())
    n = 2 * s_idx.size
    entries = (np.concatenate(rr), np.concatenate(cc), np.concatenate(vv))
    return np.zeros(n), np.zeros(n), np.concatenate(upper), entries


def site_overloads(cols: Columns, rows: RowIndex, idx: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Sites without flow rows where the solution `x` on columns `idx` holds more cores or cards than free in
    some slot."""
    over = np.zeros(rows.n_sites, dtype=bool)
    lazy = ~rows.active[cols.site[idx]] & (x > 0)
    if not lazy.any():
        return np.zeros(0, dtype=np.int64)
    i, xi = idx[lazy], x[lazy]
    c, s, t, d = cols.cls[i], cols.site[i], cols.slot[i], cols.dur[i]
    for amount, cap in ((cols.cpu[c] * xi, cols.cpu_cap), (cols.gpu[c] * xi, cols.gpu_cap)):
        diff = np.zeros((rows.n_sites, rows.h + 1))
        np.add.at(diff, (s, t), amount)
        np.add.at(diff, (s, t + d), -amount)
        over |= (np.cumsum(diff, axis=1)[:, :-1] > cap * (1 + 1e-9) + 1e-9).any(axis=1)
    return np.nonzero(over & ~rows.active)[0]


INIT_SITES = 48  # sites per class in the first restricted master (all of them on the national 42)


def initial_columns(cols: Columns, per_pair: int, sites: int = INIT_SITES) -> np.ndarray:
    """Indices of the `per_pair` cheapest slots of every (class, site) pair, for each class's `sites` cheapest
    sites (by their cheapest slot): the first restricted master. Capping the sites keeps that master at
    classes x sites x per_pair columns however large the network (at 400 sites, 300k columns uncapped);
    column generation brings in the other sites' columns that price out, and the Lagrangian bound holds for
    any restricted master."""
    if len(cols) == 0:
        return np.zeros(0, dtype=np.int64)
    pair = cols.cls * (int(cols.site.max()) + 1) + cols.site
    best = _best_per_group(pair, cols.w, cols.slot, per_pair)
    if int(cols.site.max()) + 1 <= sites:
        return best
    head = _best_per_group(pair[best], cols.w[best], cols.slot[best], 1)  # each pair's cheapest column
    keep_pair = pair[best][
        head[_best_per_group(cols.cls[best][head], cols.w[best][head], cols.site[best][head], sites)]
    ]
    return best[np.isin(pair[best], keep_pair)]


def _best_per_group(group: np.ndarray, value: np.ndarray, tie: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest `value`s of every group (ties: smaller `tie`), sorted."""
    n = group.size
    if n and k <= 4:
        d_group, d_tie = np.diff(group), np.diff(tie)
        if (d_group >= 0).all() and ((d_tie > 0) | (d_group > 0)).all():
            return _best_per_run(group, value, k)  # groups in runs, `tie` rising in each: k linear passes
    order = np.lexsort((tie, value, group))
    g = group[order]
    rank = np.arange(order.size) - np.searchsorted(g, g, side="left")
    return np.sort(order[rank < k])


def _best_per_run(group: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """_best_per_group where each group is one run of positions and ties go to the earlier position: the first
    minimum of each run, k times (no sort of all positions; the candidate columns are in that order)."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, group.size]))
    v = value.astype(float)  # a copy: taken positions become inf
    picked = []
    for _ in range(k):
        low = np.minimum.reduceat(v, starts)
        hit = np.flatnonzero((v == low[run]) & np.isfinite(v))
        first = hit[np.r_[True, run[hit][1:] != run[hit][:-1]]] if hit.size else hit
        picked.append(first)
        v[first] = np.inf
    return np.sort(np.concatenate(picked))


class Pricer:
    """Reduced costs w_i - a_i'y of every candidate column (assign row excluded) for any duals y, vectorised.

    The gather indices and transfer volumes do not change between rounds, so they are computed once here and each
    round only gathers duals."""

    def __init__(self, cols: Columns, rows: RowIndex):
        self.cols, self.rows = cols, rows
        c = cols.cls
        self.cpu, self.gpu = cols.cpu[c].astype(float), cols.gpu[c].astype(float)
        self.start = cols.site * rows.h + cols.slot  # occupancy row (site, slot) within a resource's block
        self.end = self.start + cols.dur
        self.transfers = []  # per transfer slot k: (columns moving data then, their (link, slot) keys, GB)
        for key, vol in _transfers(cols, np.arange(len(cols))):
            on = np.nonzero(key >= 0)[0]
            self.transfers.append((on, key[on], vol[on]))

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Reduced costs [n] (CNY-equivalent per job) under the row duals y."""
        rows = self.rows
        yv = rows.virtual(y)
        y_cpu, y_gpu = yv[rows.cpu0 : rows.gpu0], yv[rows.gpu0 : rows.n_base]
        ay = self.cpu * (y_cpu[self.end] - y_cpu[self.start]) + self.gpu * (y_gpu[self.end] - y_gpu[self.start])
        if rows.link_row.max(initial=-1) >= 0:
            y_link = _link_duals(rows, y)
            for on, key, vol in self.transfers:
                ay[on] += vol * y_link[key]
        return self.cols.w - ay


def price_columns(cols: Columns, rows: RowIndex, y: np.ndarray) -> np.ndarray:
    """Lagrangian reduced cost w_i - a_i'y of every candidate column (assign row excluded), vectorised."""
    return Pricer(cols, rows)(y)


def _link_duals(rows: RowIndex, y: np.ndarray) -> np.ndarray:
    """Duals of the link rows by (link, slot) key, clipped to <= 0 (0 for rows not in the model)."""
    out = np.zeros(rows.link_row.size)
    has = rows.link_row >= 0
    out[has] = np.minimum(y[rows.link_row[has]], 0.0)
    return out


def lagrangian_bound(cols: Columns, rows: RowIndex, y: np.ndarray, rc: np.ndarray) -> float:
    """A valid lower bound of the full LP from any duals y (see module docstring)."""
    classes = np.nonzero(cols.penalty > 0)[0]
    min_rc = np.minimum.reduceat(rc, cols.class_start[classes])
    bound = float(np.sum(cols.count[classes] * np.minimum(cols.penalty[classes], min_rc)))
    yv = rows.virtual(y)  # rows not in the model relaxed with multiplier 0
    for base, cap in ((rows.cpu0, cols.cpu_cap), (rows.gpu0, cols.gpu_cap)):
        yy = yv[base : base + rows.n_sites * rows.h].reshape(rows.n_sites, rows.h)
        a_o = yy.copy()
        a_o[:, :-1] -= yy[:, 1:]
        bound += float(np.sum(cap * np.minimum(0.0, -a_o)))
    bound += float(np.sum(cols.link_cap_gb * _link_duals(rows, y)))
    return bound


def link_overdraws(cols: Columns, rows: RowIndex, idx: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(link, slot) keys without a row whose GB moved by the solution `x` on columns `idx` exceed the capacity."""
    use = np.zeros(rows.link_row.size)
    for key, vol in _transfers(cols, idx):
        on = key >= 0
        np.add.at(use, key[on], vol[on] * x[on])
    return np.nonzero((use > cols.link_cap_gb * (1 + 1e-9)) & (rows.link_row < 0))[0]


class _Model:
    """The HiGHS model of the restricted master: fixed u / O columns, then x columns in `order`."""

    def __init__(self, cols: Columns, rows: RowIndex, chosen: np.ndarray):
        self.cols, self.rows = cols, rows
        self.h = quiet_highs()
        self.classes, cost, lower, upper, (fr, fc, fv) = _fixed_columns(cols, rows)
        self.n_fixed = cost.size
        xr, xc, xv = x_entries(cols, rows, chosen)
        r = np.concatenate([fr, xr])
        c = np.concatenate([fc, xc + self.n_fixed])
        a = _csc(rows.n_rows, self.n_fixed + chosen.size, r, c, np.concatenate([fv, xv]))
        row_lo = np.zeros(rows.n_rows)
        row_lo[rows.assign[self.classes]] = cols.count[self.classes]
        lp = highspy.HighsLp()
        lp.num_col_ = int(a.shape[1])
        lp.num_row_ = rows.n_rows
        lp.col_cost_ = np.concatenate([cost, cols.w[chosen]])
        lp.col_lower_ = np.concatenate([lower, np.zeros(chosen.size)])
        lp.col_upper_ = np.concatenate([upper, np.full(chosen.size, _INF)])
        lp.row_lower_ = row_lo
        lp.row_upper_ = row_lo.copy()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        self.h.passModel(lp)
        self.order = chosen.copy()
        self.x_col = self.n_fixed + np.arange(chosen.size)  # the model column of each x in `order`
        self.in_model = np.zeros(len(cols), dtype=bool)
        self.in_model[chosen] = True

    def add_columns(self, idx: np.ndarray) -> None:
        er, ec, ev = x_entries(self.cols, self.rows, idx)
        m = _csc(self.rows.n_rows, idx.size, er, ec, ev)
        zeros = np.zeros(idx.size)
        first = self.h.getNumCol()
        self.h.addCols(idx.size, self.cols.w[idx], zeros, np.full(idx.size, _INF), m.nnz, m.indptr, m.indices, m.data)
        self.order = np.concatenate([self.order, idx])
        self.x_col = np.concatenate([self.x_col, first + np.arange(idx.size)])
        self.in_model[idx] = True

    def add_sites(self, sites: np.ndarray) -> None:
        """Put the flow rows and O columns of `sites` (lazy so far) into the model, with the entries of the x
        columns already in it."""
        rows = self.rows
        virtual = rows.site_rows(sites)
        old_rows = rows.n_rows
        rows.phys[virtual] = old_rows + np.arange(virtual.size)
        rows.n_rows += virtual.size
        rows.active[sites] = True
        at = np.nonzero(np.isin(self.cols.site[self.order], sites))[0]  # only x columns at those sites hold them
        er, ec, ev = x_entries(self.cols, rows, self.order[at])
        new = er >= old_rows
        m = sp.csr_matrix(
            (ev[new], (er[new] - old_rows, self.x_col[at][ec[new]])), shape=(virtual.size, self.h.getNumCol())
        )
        m.sort_indices()
        zeros = np.zeros(virtual.size)
        self.h.addRows(virtual.size, zeros, zeros, m.nnz, m.indptr, m.indices, m.data)
        cost, lower, upper, (orr, occ, ovv) = occupancy_columns(self.cols, rows, sites, 0)
        o = _csc(rows.n_rows, cost.size, orr, occ, ovv)
        self.h.addCols(cost.size, cost, lower, upper, o.nnz, o.indptr, o.indices, o.data)

    def add_link_rows(self, keys: np.ndarray) -> None:
        rows = self.rows
        rows.link_row[keys] = rows.n_rows + np.arange(keys.size)
        rows.n_rows += keys.size
        local = np.full(rows.link_row.size, -1, dtype=np.int64)
        local[keys] = np.arange(keys.size)
        rr, cc, vv = [], [], []
        for key, vol in _transfers(self.cols, self.order):
            on = key >= 0
            hit = np.zeros(key.size, dtype=bool)
            hit[on] = local[key[on]] >= 0
            rr.append(local[key[hit]])
            cc.append(self.x_col[np.nonzero(hit)[0]])
            vv.append(vol[hit])
        m = sp.csr_matrix(
            (np.concatenate(vv), (np.concatenate(rr), np.concatenate(cc))), shape=(keys.size, self.h.getNumCol())
        )
        m.sort_indices()
        lo = np.full(keys.size, -_INF)
        hi = np.full(keys.size, self.cols.link_cap_gb)
        self.h.addRows(keys.size, lo, hi, m.nnz, m.indptr, m.indices, m.data)

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """(x over all candidate columns, u over classes) of the current solution."""
        v = np.asarray(self.h.getSolution().col_value)
        x = np.zeros(len(self.cols))
        x[self.order] = v[self.x_col]
        u = np.zeros(len(self.cols.penalty))
        u[self.classes] = v[: self.classes.size]
        return x, u


def solve(
    cols: Columns,
    *,
    per_pair: int = 2,
    per_class: int = 20,
    max_rounds: int = 100,
    bound_tol: float = 1e-3,
    all_columns: bool = False,
    seed: np.ndarray | None = None,
    init_sites: int = INIT_SITES,
    lazy_sites: int = LAZY_SITES,
) -> LpResult:
    """Solve the LP by column generation or, with `all_columns`, over every candidate column at once.

    `seed`: extra column indices for the first restricted master (e.g. those a greedy plan uses); `init_sites`:
    sites per class in it (see initial_columns); `lazy_sites`: on networks of more sites, a site's capacity
    rows enter the master only once a solution overloads it (column generation only)."""
    t0 = time.perf_counter()
    rows = RowIndex(cols, lazy=not all_columns and len(cols.cpu_cap) > lazy_sites)
    n = len(cols)
    first = np.arange(n) if all_columns else initial_columns(cols, per_pair, init_sites)
    if seed is not None and not all_columns:
        first = np.union1d(first, seed).astype(np.int64)
    model = _Model(cols, rows, first)
    h = model.h
    if all_columns and n:  # every link row up front
        keys = np.unique(np.concatenate([key[key >= 0] for key, _ in _transfers(cols, model.order)] or [[]]))
        if keys.size:
            model.add_link_rows(keys.astype(np.int64))
    price = Pricer(cols, rows) if n else None
    best_bound, rounds, converged, obj = -np.inf, 0, False, 0.0
    highs_s = pricing_s = 0.0
    while rounds < 10 * max_rounds:
        rounds += 1
        ta = time.perf_counter()
        h.run()
        highs_s += time.perf_counter() - ta
        obj = h.getInfo().objective_function_value
        x, _ = model.values()
        over = link_overdraws(cols, rows, model.order, x[model.order])
        if over.size:  # a link is overdrawn: add its rows and solve again
            model.add_link_rows(over)
            continue
        full = site_overloads(cols, rows, model.order, x[model.order])
        if full.size:  # a lazy site is overloaded: add its capacity rows and solve again
            model.add_sites(full)
            continue
        ta = time.perf_counter()
        y = np.asarray(h.getSolution().row_dual)
        rc = price(y) if n else np.zeros(0)
        best_bound = max(best_bound, lagrangian_bound(cols, rows, y, rc)) if n else obj
        pricing_s += time.perf_counter() - ta
        scale = max(1.0, abs(obj))
        rc_full = rc - y[rows.assign[cols.cls]] if n else rc
        negative = ~model.in_model & (rc_full < -1e-9 * scale)
        if not negative.any() or best_bound >= obj:  # no column prices out, or the bound proves obj optimal
            converged, best_bound = True, obj
            break
        if rounds >= max_rounds or obj - best_bound <= bound_tol * scale:
            break
        cand = np.nonzero(negative)[0]
        model.add_columns(np.sort(cand[_best_per_group(cols.cls[cand], rc_full[cand], cols.slot[cand], per_class)]))
    x, u = model.values()
    return LpResult(
        x,
        u,
        best_bound,
        obj,
        h.getNumCol(),
        rounds,
        converged,
        time.perf_counter() - t0,
        highs_s=highs_s,
        pricing_s=pricing_s,
    )
