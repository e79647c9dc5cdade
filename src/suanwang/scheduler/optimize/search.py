"""Local search on a whole-job plan of a small window: ruin and recreate, seeded, bounded by a count of moves.

On small tight windows the LP relaxation is loose (whole jobs do not split over the free room), so a rounded
plan can leave a valuable job out while cheaper ones hold the room it needs - often a job that needs a whole
site for several slots, whose placement moves many others. Each move
- ruins part of the plan: either (half the moves) picks a job left over and one of its columns, takes out
  placed jobs that hold room in that column's cells (site and slots, or link and transfer slots) - all of
  them, or (two times in three) one at a time until the job fits, the cheapest to lose first (with noise) or
  in random order - and puts the job there first; or takes out one to
  six placed jobs at one site around one placed job's slots;
- recreates: puts every job left over back, one class at a time, each on its cheapest column with room - the
  classes by unplaced penalty, by penalty with +-30 % noise, or in random order (drawn per move);
- keeps the result when the objective (placements plus unplaced penalties) is not higher, and returns the
  best plan seen.
So the plan never gets worse, capacity and link rows hold throughout (occupancy.Footprint checks room), moves
of equal value let the search drift across plateaus, and with its seed and `max_evals` the result is
deterministic. Each move is a few gathers per class over index arrays (about a millisecond on 100-200 jobs).
"""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.optimize.columns import Columns
from suanwang.scheduler.optimize.occupancy import Footprint
from suanwang.scheduler.optimize.round import objective

_GAIN_TOL = 1e-9


def improve(cols: Columns, counts: np.ndarray, max_evals: int = 200, seed: int = 0) -> np.ndarray:
    """A plan no worse than `counts` (whole jobs per column, feasible) after `max_evals` ruin-and-recreate moves."""
    if len(cols) == 0 or max_evals <= 0:
        return counts
    rng = np.random.default_rng(seed)
    fp = Footprint(cols)
    n_cls = len(cols.count)
    has = np.diff(cols.class_start) > 0
    cheapest = [
        cols.class_start[c] + np.argsort(cols.w[cols.class_start[c] : cols.class_start[c + 1]]) for c in range(n_cls)
    ]
    counts = counts.astype(np.int64).copy()
    load = fp.load(counts)
    best = current = objective(cols, counts)
    best_counts = counts
    for _ in range(max_evals):
        used = np.nonzero(counts)[0]
        placed = np.bincount(cols.cls, weights=counts, minlength=n_cls).astype(np.int64)
        left = np.where(has, cols.count - placed, 0)
        waiting = np.nonzero(left > 0)[0]
        if used.size == 0 or waiting.size == 0:
            break
        trial, trial_load = counts.copy(), load.copy()
        first = -1
        if rng.random() < 0.5:  # make room for one job left over on one of its columns
            c = waiting[rng.integers(waiting.size)]
            first = int(cols.class_start[c] + rng.integers(cols.class_start[c + 1] - cols.class_start[c]))
            cells = fp.cell[first][fp.cell[first] < fp.pad]
            links = fp.link_cell[first][fp.link_cell[first] < fp.link_pad]
            blocks = np.isin(fp.cell[used], cells).any(axis=1)
            if links.size:  # and those that move data on its link in its transfer slots
                blocks |= np.isin(fp.link_cell[used], links).any(axis=1)
            out = used[blocks]
            draw = rng.random()
            if draw < 0.67:  # take blockers out only until the job fits: cheapest to lose first (noisy) or random
                loss = cols.penalty[cols.cls[out]] - cols.w[out]
                out = out[np.argsort(loss * rng.uniform(0.5, 1.5, out.size) if draw < 0.33 else rng.random(out.size))]
                first_col = np.array([first])
                for i in out:
                    while trial[i] > 0 and fp.room(trial_load, first_col)[0] < 1:
                        fp.take(trial_load, int(i), -1)
                        trial[i] -= 1
                    if fp.room(trial_load, first_col)[0] >= 1:
                        break
                out = out[:0]
        else:  # free up a few jobs at one site around one placed job's slots
            i0 = used[rng.integers(used.size)]
            span = int(rng.integers(1, 6))
            near = used[
                (cols.site[used] == cols.site[i0])
                & (cols.slot[used] < cols.slot[i0] + cols.dur[i0] + span)
                & (cols.slot[used] + cols.dur[used] > cols.slot[i0] - span)
            ]
            out = rng.choice(near, size=min(near.size, int(rng.integers(1, 7))), replace=False)
        for i in out:
            fp.take(trial_load, int(i), -int(trial[i]))
            trial[i] = 0
        if first >= 0 and fp.room(trial_load, np.array([first]))[0] >= 1:
            fp.take(trial_load, first, 1)
            trial[first] += 1
        _recreate(cols, fp, trial, trial_load, cheapest, has, rng)
        value = objective(cols, trial)
        if value <= current + _GAIN_TOL * max(1.0, abs(current)):  # equal moves too: drift across plateaus
            counts, load, current = trial, trial_load, value
            if value < best:
                best, best_counts = value, counts
    return best_counts


def _recreate(cols: Columns, fp: Footprint, counts, load, cheapest, has, rng) -> None:
    """Put the jobs left over back, class by class in a drawn order, each on its cheapest column with room."""
    placed = np.bincount(cols.cls, weights=counts, minlength=len(cols.count)).astype(np.int64)
    left = np.where(has, cols.count - placed, 0)
    waiting = np.nonzero(left > 0)[0]
    draw = rng.random()
    if draw < 0.5:
        key = cols.penalty[waiting] * rng.uniform(0.7, 1.3, waiting.size)
    elif draw < 0.8:
        key = cols.penalty[waiting]
    else:
        key = rng.random(waiting.size)
    order = waiting[np.argsort(-key, kind="stable")]
    # one gather over every waiting class's columns first: most have no room anywhere and are skipped (room
    # only shrinks as jobs go back)
    fits = np.zeros(len(cols.count), dtype=bool)
    fits[cols.cls[fp.room(load, np.arange(len(cols))) >= 1]] = True
    for c in order[fits[order]]:
        cand = cheapest[c]
        while left[c] > 0:
            room = fp.room(load, cand)
            ok = np.nonzero(room >= 1)[0]
            if ok.size == 0:
                break
            i = int(cand[ok[0]])
            n = int(min(left[c], room[ok[0]]))
            fp.take(load, i, n)
            counts[i] += n
            left[c] -= n
