"""Local search on a whole-job plan: make room for an unplaced job by taking out cheaper placed ones, then put
those back wherever they fit, and keep the change only when the objective falls ("ruin and recreate").

On small tight windows the LP relaxation is loose (whole jobs do not split over the free room), so a rounded LP
or a greedy plan can leave valuable jobs out while cheaper ones hold the room they need. For each class with
jobs left over (highest penalty first) and each of its columns (cheapest first): take out, one job at a time,
the placed jobs that share the column's site and slots, the least costly to unplace per unit of the short
resource first, until the job fits or nothing can be gained; place it; put the removed jobs back, each on its
cheapest column with room (repair); accept when the objective - placements plus unplaced penalties - decreases.
Every accepted move lowers the objective, capacity and link rows hold throughout (Residual checks room), and
the search stops after `max_evals` tried moves, so it is bounded and deterministic.
"""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.optimize.columns import Columns
from suanwang.scheduler.optimize.round import Residual, objective

_GAIN_TOL = 1e-9


def improve(cols: Columns, counts: np.ndarray, max_evals: int = 400, passes: int = 3) -> np.ndarray:
    """A plan no worse than `counts` (whole jobs per column, feasible), by ruin-and-recreate moves."""
    if len(cols) == 0:
        return counts
    counts = counts.astype(np.int64).copy()
    res = Residual(cols)
    used = np.nonzero(counts)[0]
    res.take(used, counts[used])
    best = objective(cols, counts)
    evals = 0
    for _ in range(passes):
        improved = False
        placed = np.bincount(cols.cls, weights=counts, minlength=len(cols.count)).astype(np.int64)
        left = np.where(np.diff(cols.class_start) > 0, cols.count - placed, 0)
        for c in np.argsort(-cols.penalty, kind="stable"):
            if left[c] <= 0:
                continue
            cand = np.arange(cols.class_start[c], cols.class_start[c + 1])
            for i in cand[np.argsort(cols.w[cand], kind="stable")]:
                if evals >= max_evals:
                    return counts
                evals += 1
                trial = _try(cols, counts, res, int(i), best)
                if trial is not None:
                    counts, res, best = trial
                    improved = True
                    left[c] -= 1
                    if left[c] <= 0:
                        break
        for j in np.nonzero(counts)[0][np.argsort(-(cols.cpu[cols.cls[np.nonzero(counts)[0]]]), kind="stable")]:
            if evals >= max_evals:
                return counts
            if counts[j] <= 0:
                continue
            evals += 1
            trial = _refill(cols, counts, res, int(j), best)
            if trial is not None:
                counts, res, best = trial
                improved = True
        if not improved:
            break
    return counts


def _refill(cols: Columns, counts: np.ndarray, res: Residual, j: int, best: float):
    """Take one job off column j, fill the room it frees with jobs left over (highest penalty first, cheapest
    column with room), put it back anywhere it fits; (counts, residual, objective) if better."""
    s, t, d = cols.site[j], cols.slot[j], cols.dur[j]
    one = np.ones(1, dtype=np.int64)
    trial_counts = counts.copy()
    trial = Residual(cols)
    trial.cpu, trial.gpu, trial.link = res.cpu.copy(), res.gpu.copy(), res.link.copy()
    trial.take(np.array([j]), -one)
    trial_counts[j] -= 1
    placed = np.bincount(cols.cls, weights=trial_counts, minlength=len(cols.count)).astype(np.int64)
    left = np.where(np.diff(cols.class_start) > 0, cols.count - placed, 0)
    left[cols.cls[j]] -= 1  # the job taken off goes back last
    near = (cols.site == s) & (cols.slot < t + d) & (cols.slot + cols.dur > t)
    for c in np.argsort(-cols.penalty, kind="stable"):
        if left[c] <= 0:
            continue
        lo, hi = cols.class_start[c], cols.class_start[c + 1]
        cand = lo + np.nonzero(near[lo:hi])[0]
        if cand.size == 0:
            continue
        cand = cand[np.argsort(cols.w[cand], kind="stable")]
        while left[c] > 0:
            room = trial.fit(cand)
            ok = np.nonzero(room >= 1)[0]
            if ok.size == 0:
                break
            k = int(cand[ok[0]])
            trial.take(np.array([k]), one)
            trial_counts[k] += 1
            left[c] -= 1
    _put_back(cols, trial, trial_counts, j)  # the job taken off, anywhere it fits
    return _if_better(cols, trial_counts, trial, best)


def _try(cols: Columns, counts: np.ndarray, res: Residual, i: int, best: float):
    """Place one job on column i after taking out what blocks it; (counts, residual, objective) if better."""
    c, s, t, d = cols.cls[i], cols.site[i], cols.slot[i], cols.dur[i]
    gain = float(cols.penalty[c] - cols.w[i])  # what placing it is worth, before the cost of what it displaces
    if gain <= _GAIN_TOL:
        return None
    held = np.nonzero(counts)[0]
    held = held[(cols.site[held] == s) & (cols.slot[held] < t + d) & (cols.slot[held] + cols.dur[held] > t)]
    held = held[held != i]
    if held.size == 0:
        return None
    short_cpu = cols.cpu[c] > 0
    short_gpu = cols.gpu[c] > 0
    use = cols.cpu[cols.cls[held]] * short_cpu / max(1, cols.cpu[c]) + cols.gpu[cols.cls[held]] * short_gpu / max(
        1, cols.gpu[c]
    )
    loss = cols.penalty[cols.cls[held]] - cols.w[held]  # what unplacing one of them costs
    held, loss, use = held[use > 0], loss[use > 0], use[use > 0]
    if held.size == 0:
        return None
    order = np.argsort(loss / use, kind="stable")
    trial_counts = counts.copy()
    trial = Residual(cols)
    trial.cpu, trial.gpu, trial.link = res.cpu.copy(), res.gpu.copy(), res.link.copy()
    removed: list[int] = []
    lost = 0.0
    one = np.ones(1, dtype=np.int64)
    for k in order:
        j = int(held[k])
        for _ in range(int(trial_counts[j])):
            if trial.fit(np.array([i]))[0] >= 1:
                break
            if lost + loss[k] >= gain:
                return None
            trial.take(np.array([j]), -one)
            trial_counts[j] -= 1
            removed.append(j)
            lost += float(loss[k])
        if trial.fit(np.array([i]))[0] >= 1:
            break
    if trial.fit(np.array([i]))[0] < 1:
        return None
    trial.take(np.array([i]), one)
    trial_counts[i] += 1
    for j in removed:
        _put_back(cols, trial, trial_counts, j)
    return _if_better(cols, trial_counts, trial, best)


def _put_back(cols: Columns, trial: Residual, trial_counts: np.ndarray, j: int) -> None:
    """Place one more job of column j's class on that class's cheapest column with room (none: it stays off)."""
    cj = cols.cls[j]
    cand = np.arange(cols.class_start[cj], cols.class_start[cj + 1])
    cand = cand[np.argsort(cols.w[cand], kind="stable")]
    ok = np.nonzero(trial.fit(cand) >= 1)[0]
    if ok.size:
        k = int(cand[ok[0]])
        trial.take(np.array([k]), np.ones(1, dtype=np.int64))
        trial_counts[k] += 1


def _if_better(cols: Columns, trial_counts: np.ndarray, trial: Residual, best: float):
    """(counts, residual, objective) of the trial if it beats `best` by more than the tolerance, else None."""
    value = objective(cols, trial_counts)
    if value < best - _GAIN_TOL * max(1.0, abs(best)):
        return trial_counts, trial, value
    return None
