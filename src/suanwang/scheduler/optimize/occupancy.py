"""Where each candidate column holds room, as index arrays, so one column's fit is a single gather: the fast
residual that the LP-guided rounding and the local search of small windows work on.

A column holds cores and cards at its site in the `dur` slots from its start, and moves GB on its link in the
slots of its transfer (columns.py). `Footprint` precomputes, per column, the flat (site, slot) cells it holds
and the (link, slot) cells it moves data in, padded with one cell of infinite room; a `Load` is the room left
per cell. `room(load, idx)` is how many more whole jobs each column of idx fits: the minimum over its cells of
free / per job, per resource - the same rule as round.Residual.fit, in two gathers instead of a sparse table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanwang.scheduler.optimize.columns import Columns

_TOL = 1e-6


@dataclass
class Load:
    """Room left per flat cell (the last cell of each array is the padding: infinite)."""

    cpu: np.ndarray  # [S x rows_h + 1] cores
    gpu: np.ndarray  # [S x rows_h + 1] cards
    link: np.ndarray  # [links x xfer_h + 1] GB

    def copy(self) -> Load:
        """An independent copy."""
        return Load(self.cpu.copy(), self.gpu.copy(), self.link.copy())


class Footprint:
    """Per-column cell indices and amounts over `cols` (see module docstring)."""

    def __init__(self, cols: Columns):
        self.cols = cols
        n_sites, rows_h = cols.cpu_cap.shape
        n = len(cols)
        longest = int(cols.dur.max(initial=1))
        k = np.arange(longest)
        self.pad = n_sites * rows_h
        cell = cols.site[:, None] * rows_h + cols.slot[:, None] + k[None, :]
        self.cell = np.where(k[None, :] < cols.dur[:, None], cell, self.pad)  # [n, longest]
        self.cpu = cols.cpu[cols.cls].astype(float)  # [n] per job
        self.gpu = cols.gpu[cols.cls].astype(float)
        with np.errstate(divide="ignore"):
            self.inv_cpu = np.where(self.cpu > 0, 1.0 / self.cpu, 0.0)
            self.inv_gpu = np.where(self.gpu > 0, 1.0 / self.gpu, 0.0)
        self.uses_cpu, self.uses_gpu = self.cpu > 0, self.gpu > 0
        moves = int(cols.xfer_slots.max(initial=0))
        self.link_pad = cols.n_links * cols.xfer_h
        if moves:
            vol = np.stack([cols.volume_gb(np.arange(n), m) for m in range(moves)], axis=1)  # [n, moves] GB
            key = np.maximum(cols.link, 0)[:, None] * cols.xfer_h + cols.slot[:, None] + np.arange(moves)[None, :]
            self.link_cell = np.where(vol > 0, key, self.link_pad)
            self.vol = vol
        else:
            self.link_cell = np.full((n, 1), self.link_pad, dtype=np.int64)
            self.vol = np.zeros((n, 1))
        self.moves = (self.vol > 0).any(axis=1)
        with np.errstate(divide="ignore"):
            self.inv_vol = np.where(self.vol > 0, 1.0 / np.where(self.vol > 0, self.vol, 1.0), np.inf)

    def empty(self) -> Load:
        """The room of the free profile and the links, nothing placed."""
        cols = self.cols
        return Load(
            np.append(cols.cpu_cap.ravel().astype(float), np.inf),
            np.append(cols.gpu_cap.ravel().astype(float), np.inf),
            np.append(np.full(self.link_pad, cols.link_cap_gb), np.inf),
        )

    def load(self, counts: np.ndarray) -> Load:
        """The room left by whole-job `counts` per column."""
        load = self.empty()
        for i in np.nonzero(counts)[0]:
            self.take(load, int(i), int(counts[i]))
        return load

    def take(self, load: Load, i: int, n: int) -> None:
        """Place `n` more jobs on column i (negative: take them off)."""
        cell = self.cell[i]
        load.cpu[cell] -= self.cpu[i] * n
        load.gpu[cell] -= self.gpu[i] * n
        load.cpu[self.pad] = load.gpu[self.pad] = np.inf
        load.link[self.link_cell[i]] -= self.vol[i] * n
        load.link[self.link_pad] = np.inf

    def room(self, load: Load, idx: np.ndarray) -> np.ndarray:
        """How many more whole jobs each column of `idx` fits (float, >= 0; inf where it needs nothing)."""
        out = np.floor(load.cpu[self.cell[idx]].min(axis=1) * self.inv_cpu[idx] + _TOL)
        out[~self.uses_cpu[idx]] = np.inf
        gpu = idx[self.uses_gpu[idx]]
        if gpu.size:
            out[self.uses_gpu[idx]] = np.minimum(
                out[self.uses_gpu[idx]], np.floor(load.gpu[self.cell[gpu]].min(axis=1) * self.inv_gpu[gpu] + _TOL)
            )
        moving = self.moves[idx]
        if moving.any():
            sub = idx[moving]
            ratio = (load.link[self.link_cell[sub]] * self.inv_vol[sub]).min(axis=1)
            out[moving] = np.minimum(out[moving], np.floor(ratio + _TOL))
        return np.maximum(out, 0.0, out=out)
