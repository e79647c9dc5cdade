"""Turn the LP's fractional job counts into whole jobs: floor every column, then repair greedily.

Flooring keeps every capacity row satisfied (all coefficients are non-negative). The jobs left over (fractions
and the LP's unplaced ones) are placed one class at a time, classes with the highest unplaced penalty first, each
on its cheapest candidate column that still has room for it in every slot it holds cores, cards and link
bandwidth; a job that fits nowhere stays unplaced.
"""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.optimize.columns import Columns, window_min

_TOL = 1e-6


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
        for res, amount in ((self.cpu, cols.cpu[c] * n), (self.gpu, cols.gpu[c] * n)):
            diff = np.zeros((res.shape[0], res.shape[1] + 1))
            np.add.at(diff, (s, t), amount)
            np.add.at(diff, (s, t + d), -amount)
            res -= np.cumsum(diff, axis=1)[:, :-1]
        for k in range(int(cols.xfer_slots.max(initial=0))):
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
            free = window_min(res, s, t, d)
            room[need] = np.minimum(room[need], np.floor(free[need] / per_job[need] + _TOL))
        for k in range(int(cols.xfer_slots.max(initial=0))):
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
