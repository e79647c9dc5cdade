"""Turn the LP's fractional job counts into whole jobs: floor every column, then repair greedily; or, on small
windows, build whole jobs from empty in the LP's order (`guided_round`).

Flooring keeps every capacity row satisfied (all coefficients are non-negative). The jobs left over (fractions
and the LP's unplaced ones) are placed one class at a time, classes with the highest unplaced penalty first, each
on its cheapest candidate column that still has room for it in every slot it holds cores, cards and link
bandwidth; a job that fits nowhere stays unplaced.
"""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.optimize.columns import Columns, window_min
from suanwang.scheduler.optimize.occupancy import Footprint

_TOL = 1e-6
_FEW = 4  # at most this many columns: Residual.take updates their slots directly
_FEW_FIT = 256  # at most this many: Residual.fit gathers their slots instead of building a sparse table


def _few_min(a: np.ndarray, row: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """min(a[row, start : start + length]) of each query by one padded gather (cheap for a few queries; the
    sparse table of columns.window_min is built over all of `a` for every call)."""
    k = np.arange(int(length.max(initial=1)))
    cell = start[:, None] + k[None, :]
    inside = k[None, :] < length[:, None]
    vals = a[row[:, None], np.minimum(cell, a.shape[1] - 1)]
    return np.where(inside, vals, np.inf).min(axis=1)


class Residual:
    """Free cores and cards per (site, slot) and free link GB per (link, slot) left by the jobs placed so far."""

    def __init__(self, cols: Columns):
        self.cols = cols
        self.cpu = cols.cpu_cap.astype(float).copy()
        self.gpu = cols.gpu_cap.astype(float).copy()
        self.link = np.full((cols.n_links, cols.xfer_h), cols.link_cap_gb)

    def take(self, idx: np.ndarray, n: np.ndarray) -> None:
        """Subtract `n` jobs placed on each column of `idx`."""
        cols = self.cols
        c, s, t, d = cols.cls[idx], cols.site[idx], cols.slot[idx], cols.dur[idx]
        if idx.size <= _FEW:  # a few columns: update their slots in place, not a cumulative sum over every site
            for k in range(idx.size):
                self.cpu[s[k], t[k] : t[k] + d[k]] -= cols.cpu[c[k]] * n[k]
                self.gpu[s[k], t[k] : t[k] + d[k]] -= cols.gpu[c[k]] * n[k]
            self._take_links(idx, n)
            return
        for res, amount in ((self.cpu, cols.cpu[c] * n), (self.gpu, cols.gpu[c] * n)):
            diff = np.zeros((res.shape[0], res.shape[1] + 1))
            np.add.at(diff, (s, t), amount)
            np.add.at(diff, (s, t + d), -amount)
            res -= np.cumsum(diff, axis=1)[:, :-1]
        self._take_links(idx, n)

    def _take_links(self, idx: np.ndarray, n: np.ndarray) -> None:
        cols, t = self.cols, self.cols.slot[idx]
        for k in range(int(cols.xfer_slots[idx].max(initial=0))):  # these columns' transfers only
            vol = cols.volume_gb(idx, k) * n
            on = vol > 0
            np.add.at(self.link, (cols.link[idx][on], t[on] + k), -vol[on])

    def ok(self) -> bool:
        """No capacity row is overdrawn."""
        return bool(
            self.cpu.min(initial=0) >= -_TOL and self.gpu.min(initial=0) >= -_TOL and self.link.min(initial=0) >= -_TOL
        )

    def fit(self, idx: np.ndarray) -> np.ndarray:
        """How many more jobs each column of `idx` can take now (whole jobs)."""
        cols = self.cols
        c, s, t, d = cols.cls[idx], cols.site[idx], cols.slot[idx], cols.dur[idx]
        room = np.full(idx.size, np.inf)
        for res, per_job in ((self.cpu, cols.cpu[c]), (self.gpu, cols.gpu[c])):
            need = per_job > 0
            free = _few_min(res, s, t, d) if idx.size <= _FEW_FIT else window_min(res, s, t, d)
            room[need] = np.minimum(room[need], np.floor(free[need] / per_job[need] + _TOL))
        for k in range(int(cols.xfer_slots[idx].max(initial=0))):  # not a pass over every column per call
            vol = cols.volume_gb(idx, k)
            on = vol > 0
            room[on] = np.minimum(room[on], np.floor(self.link[cols.link[idx][on], t[on] + k] / vol[on] + _TOL))
        return np.maximum(room, 0)


def objective(cols: Columns, counts: np.ndarray) -> float:
    """Objective (CNY-equivalent) of whole-job counts per column, unplaced penalties included."""
    placed = np.bincount(cols.cls, weights=counts, minlength=len(cols.count))
    return float(cols.w @ counts + cols.penalty @ (cols.count - placed))


def round_plan(cols: Columns, x: np.ndarray) -> np.ndarray:
    """Whole jobs per column: floor of `x`, then greedy repair of the leftovers. Returns counts [n] (int)."""
    counts = np.floor(x + _TOL).astype(np.int64)
    res = Residual(cols)
    used = np.nonzero(counts)[0]
    res.take(used, counts[used])
    if not res.ok():  # a value just under an integer was rounded up over a full row: be strict
        counts = np.floor(x).astype(np.int64)
        res = Residual(cols)
        used = np.nonzero(counts)[0]
        res.take(used, counts[used])
    placed = np.bincount(cols.cls, weights=counts, minlength=len(cols.count)).astype(np.int64)
    has = np.diff(cols.class_start) > 0
    left = np.where(has, cols.count - placed, 0)
    for c in np.argsort(-cols.penalty, kind="stable"):
        if left[c] <= 0:
            continue
        cand = np.arange(cols.class_start[c], cols.class_start[c + 1])
        cand = cand[np.argsort(cols.w[cand], kind="stable")]
        # room only shrinks as jobs are placed, so a column found full stays full: scan the cheapest first, in
        # growing chunks, from the first column that may still have room
        pos, chunk = 0, 32
        while left[c] > 0 and pos < cand.size:
            part = cand[pos : pos + chunk]
            room = res.fit(part)
            ok = np.nonzero(room >= 1)[0]
            if ok.size == 0:
                pos, chunk = pos + part.size, 2 * chunk
                continue
            pos += int(ok[0])
            i = cand[pos]
            n = int(min(left[c], room[ok[0]]))
            counts[i] += n
            left[c] -= n
            res.take(np.array([i]), np.array([n]))
    return counts


def class_orders(cols: Columns, x: np.ndarray) -> list[np.ndarray]:
    """Class orders for `guided_round`: by unplaced penalty; by the share of the class the LP places, then
    penalty; by that share, then penalty per unit of the room the class holds (cores and cards as shares of
    the free profile, times slots held)."""
    n_cls = len(cols.count)
    share = np.round(np.bincount(cols.cls, weights=x, minlength=n_cls) / np.maximum(cols.count, 1), 6)
    held = np.zeros(n_cls)
    np.maximum.at(held, cols.cls, cols.dur)
    footprint = (cols.cpu / max(float(cols.cpu_cap.sum()), 1.0) + cols.gpu / max(float(cols.gpu_cap.sum()), 1.0)) * held
    density = cols.penalty / np.maximum(footprint, 1e-12)
    return [
        np.argsort(-cols.penalty, kind="stable"),
        np.lexsort((-cols.penalty, -share)),
        np.lexsort((-density, -share)),
    ]


def guided_round(cols: Columns, x: np.ndarray, order: np.ndarray, fp: Footprint | None = None) -> np.ndarray:
    """Whole jobs per column, built from empty: classes in `order`, each job on the column with the most LP weight
    that still fits it (up to ceil of that weight), then on the cheapest column that fits (`fp`: the columns'
    Footprint, when the caller has one). Unlike flooring,
    a job the LP splits over two columns is not dropped while the jobs that share its room keep theirs.
    Returns counts [n] (int)."""
    fp = Footprint(cols) if fp is None else fp
    load = fp.empty()
    counts = np.zeros(len(cols), dtype=np.int64)
    cap = np.where(x > _TOL, np.ceil(x - _TOL), np.inf)  # LP columns first, up to their weight
    for c in order:
        lo, hi = cols.class_start[c], cols.class_start[c + 1]
        left = int(cols.count[c]) if hi > lo else 0
        if left <= 0:
            continue
        cand = lo + np.lexsort((cols.w[lo:hi], -x[lo:hi]))
        lp_first = cand[x[cand] > _TOL]
        for group in (lp_first, cand):
            while left > 0 and group.size:
                allowed = np.minimum(fp.room(load, group), cap[group] - counts[group] if group is lp_first else np.inf)
                ok = np.nonzero(allowed >= 1)[0]
                if ok.size == 0:
                    break
                i = int(group[ok[0]])
                n = int(min(left, allowed[ok[0]]))
                fp.take(load, i, n)
                counts[i] += n
                left -= n
    return counts
