"""Candidate columns of the batch LP: every feasible (class, site, start slot) with its cost and footprint.

A column means "one job of class c starts at site s in slot t". Slot t begins at now_h + t x slot_h. The job
holds its cores and cards from its start for ceil((transfer_h + runtime_h) / slot_h) slots (capacity is reserved
while its input moves, as the online scheduler does) and, when the input crosses a province border, moves
input_gb over the (data province -> site) link at the per-job bandwidth, slot by slot.

Coefficients come from scheduler.costs.estimate at now_h, shifted to each start slot with the run-window mean
price and grid intensity of Signals.mean_over: cost is affine in the mean price with slope energy_kwh, carbon is
proportional to the mean grid intensity (tests check this against estimate() at random slots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.costs import estimate
from suanwang.scheduler.optimize.classes import JobClasses, rejection_reason, static_mask
from suanwang.scheduler.state import ClusterState

_EPS = 1e-9
_GB_PER_GBPS_HOUR = 3600.0 / 8.0  # GB moved in one hour at 1 Gbps


@dataclass
class Columns:
    """All candidate columns (index i), sorted by class, then site, then slot; plus the capacities they share."""

    cls: np.ndarray  # [n] class index
    site: np.ndarray  # [n] site index
    slot: np.ndarray  # [n] start slot
    dur: np.ndarray  # [n] slots of cores / cards held
    link: np.ndarray  # [n] link index (-1: no cross-province input)
    xfer_slots: np.ndarray  # [n] slots the input transfer spans
    w: np.ndarray  # [n] weighted objective of one job (CNY-equivalent)
    cost_cny: np.ndarray
    carbon_kg: np.ndarray
    energy_kwh: np.ndarray
    transfer_h: np.ndarray
    transfer_gb: np.ndarray
    class_start: np.ndarray  # [C + 1] columns of class c are class_start[c]:class_start[c + 1]
    penalty: np.ndarray  # [C] CNY-equivalent charged per unplaced job (0 where a class has no column)
    count: np.ndarray  # [C] jobs per class
    members: list[np.ndarray]  # [C] job indices of each class, highest priority first
    cpu: np.ndarray  # [C] cores per job
    gpu: np.ndarray  # [C] cards per job
    input_gb: np.ndarray  # [C]
    cpu_cap: np.ndarray  # [S, rows_h] cores free for the plan in each slot
    gpu_cap: np.ndarray  # [S, rows_h]
    link_cap_gb: float  # GB one link carries per slot
    vol_slot_gb: float  # GB one job moves per slot
    n_links: int
    rows_h: int  # occupancy slots modelled: horizon + the longest hold
    xfer_h: int  # transfer slots modelled: horizon + the longest transfer
    reasons: list[str]  # [C] why a class has no column ('' where it has)

    def __len__(self) -> int:
        return len(self.cls)

    def volume_gb(self, i: np.ndarray, k: int) -> np.ndarray:
        """GB that columns `i` move in the k-th slot of their transfer (0 past its end)."""
        left = self.input_gb[self.cls[i]] - k * self.vol_slot_gb
        return np.where(self.link[i] >= 0, np.clip(left, 0.0, self.vol_slot_gb), 0.0)


def build_columns(
    ctx: SchedulerContext,
    classes: JobClasses,
    state: ClusterState,
    now_h: float,
    slot_h: float,
    horizon_slots: int,
    cost_weight: float,
    carbon_cny_per_kg: float,
    penalty_factor: float,
    free: tuple[np.ndarray, np.ndarray] | None = None,
) -> Columns:
    """Enumerate every feasible (class, site, slot) column with its weighted cost, vectorised over all of them."""
    n_cls, n_sites = len(classes), len(ctx.sites)
    reps = classes.reps
    cpu = np.array([j.cpu_cores for j in reps], dtype=np.int64)
    gpu = np.array([j.gpu_cards for j in reps], dtype=np.int64)
    runtime = np.array([j.runtime_h for j in reps], dtype=float)
    input_gb = np.array([j.input_gb for j in reps], dtype=float)
    ests = [estimate(ctx, j, now_h) for j in reps]
    energy0 = _stack([e.energy_kwh for e in ests], n_sites)
    cost0 = _stack([e.cost_cny for e in ests], n_sites)
    carbon0 = _stack([e.carbon_kg for e in ests], n_sites)
    xfer_h0 = _stack([e.transfer_h for e in ests], n_sites)
    xfer_gb0 = _stack([e.transfer_gb for e in ests], n_sites)

    dur_cs = np.maximum(np.ceil((xfer_h0 + runtime[:, None]) / slot_h - _EPS), 1).astype(np.int64)
    rows_h = horizon_slots + int(dur_cs.max(initial=1))
    cpu_cap, gpu_cap = capacity_profile(state, free, rows_h)
    static = np.array([static_mask(ctx, j) for j in reps]).reshape(n_cls, n_sites)
    fits_now = (cpu_cap.max(axis=1)[None, :] >= cpu[:, None]) & (gpu_cap.max(axis=1)[None, :] >= gpu[:, None])
    first = classes.release_slot
    with np.errstate(invalid="ignore"):
        latest = np.floor((classes.deadline_rel_h[:, None] - xfer_h0 - runtime[:, None]) / slot_h + _EPS)
    # [C] some allowed site could meet the deadline from the first slot the job may start in (room and horizon aside)
    timely = ((np.nan_to_num(latest, nan=np.inf) >= first[:, None]) & static).any(axis=1)
    latest = np.minimum(np.nan_to_num(latest, posinf=horizon_slots - 1), horizon_slots - 1).astype(np.int64)
    n_slots = np.where(static & fits_now, np.maximum(latest - first[:, None] + 1, 0), 0)
    xfer_cs = np.ceil(xfer_h0 / slot_h - _EPS).astype(np.int64)

    pair_c, pair_s = np.nonzero(n_slots)
    reps_n = n_slots[pair_c, pair_s]
    total = int(reps_n.sum())
    cls = np.repeat(pair_c, reps_n)
    site = np.repeat(pair_s, reps_n)
    offsets = np.repeat(np.cumsum(reps_n) - reps_n, reps_n)
    slot = first[cls] + (np.arange(total) - offsets)
    room = _room(cpu_cap, gpu_cap, site, slot, dur_cs[cls, site], cpu[cls], gpu[cls])
    cls, site, slot = cls[room], site[room], slot[room]  # only starts whose whole hold fits the free profile
    total = len(cls)

    runtimes, r_idx = np.unique(runtime, return_inverse=True)
    starts = now_h + np.arange(horizon_slots) * slot_h
    windows = [ctx.signals.window_means(starts, r) for r in runtimes]
    price = np.array([w[0] for w in windows]).reshape(-1, horizon_slots, n_sites)  # [runtime, slot, site] CNY/kWh
    grid = np.array([w[1] for w in windows]).reshape(-1, horizon_slots, n_sites)  # kgCO2/kWh
    ri = r_idx[cls]
    cost = cost0[cls, site] + energy0[cls, site] * (price[ri, slot, site] - price[ri, 0, site])
    g0 = grid[ri, 0, site]
    carbon = carbon0[cls, site] * np.divide(grid[ri, slot, site], g0, out=np.ones_like(g0), where=g0 > 0)
    w = cost_weight * cost + carbon_cny_per_kg * carbon

    class_start = np.searchsorted(cls, np.arange(n_cls + 1))
    has = np.diff(class_start) > 0
    worst = np.zeros(n_cls)  # the dearest column of each class (reduceat over the classes that have columns only:
    if has.any():  # an empty class's start would cut the previous class's last column off)
        worst[has] = np.maximum.reduceat(w, class_start[:-1][has])
    penalty = np.where(has, penalty_factor * np.where(worst > 0, worst, 1.0), 0.0)

    provinces = {p: k for k, p in enumerate(sorted(set(ctx.site_province) | {j.data_province for j in reps}))}
    data_p = np.array([provinces[j.data_province] for j in reps], dtype=np.int64)
    moved = (xfer_h0 > 0) & (input_gb[:, None] > 0)
    raw_link = np.where(moved[cls, site], data_p[cls] * n_sites + site, -1)
    used, link_ids = np.unique(raw_link, return_inverse=True)
    link = link_ids - (1 if used.size and used[0] == -1 else 0)
    link = np.where(raw_link >= 0, link, -1)
    n_links = int(used.size - (1 if used.size and used[0] == -1 else 0))

    a = ctx.atlas
    dur = dur_cs[cls, site]
    xfer_slots = np.where(link >= 0, xfer_cs[cls, site], 0)
    reasons = [
        "" if has[c] else _no_column_reason(ctx, reps[c], bool(static[c].any()), bool(timely[c]), horizon_slots)
        for c in range(n_cls)
    ]
    return Columns(
        cls=cls,
        site=site,
        slot=slot,
        dur=dur,
        link=link,
        xfer_slots=xfer_slots,
        w=w,
        cost_cny=cost,
        carbon_kg=carbon,
        energy_kwh=energy0[cls, site],
        transfer_h=xfer_h0[cls, site],
        transfer_gb=xfer_gb0[cls, site],
        class_start=class_start,
        penalty=penalty,
        count=classes.count,
        members=classes.members,
        cpu=cpu,
        gpu=gpu,
        input_gb=input_gb,
        cpu_cap=cpu_cap,
        gpu_cap=gpu_cap,
        link_cap_gb=a.value("link_capacity_gbps") * slot_h * _GB_PER_GBPS_HOUR,
        vol_slot_gb=a.value("job_bandwidth_gbps") * slot_h * _GB_PER_GBPS_HOUR,
        n_links=n_links,
        rows_h=rows_h,
        xfer_h=horizon_slots + int(xfer_slots.max(initial=0)) + 1,
        reasons=reasons,
    )


def capacity_profile(
    state: ClusterState, free: tuple[np.ndarray, np.ndarray] | None, n_slots: int
) -> tuple[np.ndarray, np.ndarray]:
    """Free (cores, cards) per site and slot [S, n_slots] for the plan: `free` = (cores[S, K], cards[S, K]) per
    slot from now (the last slot's value holds beyond K), or, when None, the free room of `state` now in every
    slot. Sites that are down have none."""
    if free is None:
        free = (state.cpu_free[:, None], state.gpu_free[:, None])
    out = []
    for prof in free:
        prof = np.asarray(prof, dtype=float)
        prof = prof[:, :n_slots]
        if prof.shape[1] < n_slots:
            prof = np.concatenate([prof, np.repeat(prof[:, -1:], n_slots - prof.shape[1], axis=1)], axis=1)
        out.append(np.where(state.up[:, None], np.maximum(prof, 0.0), 0.0))
    return out[0], out[1]


def _room(cpu_cap, gpu_cap, site, slot, dur, cpu, gpu) -> np.ndarray:
    """Whether one job fits in every slot it holds: [n] for columns (site, start slot, slots held, cores, cards)."""
    ok = window_min(cpu_cap, site, slot, dur) >= cpu - _EPS
    return ok & (window_min(gpu_cap, site, slot, dur) >= gpu - _EPS)


def window_min(a: np.ndarray, row: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """min(a[row, start : start + length]) of each query (length >= 1, inside a), from a sparse table: one pass
    over `a` per power of two up to the longest length, then two look-ups per query."""
    out = np.empty(row.size)
    if row.size == 0:
        return out
    level = np.frexp(length.astype(float))[1] - 1  # floor(log2(length))
    table, width = a, 1
    for k in range(int(level.max()) + 1):
        if k:
            table = np.minimum(table[:, :-width], table[:, width:])  # min over [i, i + 2 width)
            width *= 2
        on = level == k
        if on.any():
            r, t = row[on], start[on]
            out[on] = np.minimum(table[r, t], table[r, t + length[on] - width])
    return out


def _stack(rows: list[np.ndarray], n_sites: int) -> np.ndarray:
    return np.array(rows, dtype=float).reshape(len(rows), n_sites)


def _no_column_reason(ctx: SchedulerContext, job, any_static: bool, timely: bool, horizon_slots: int) -> str:
    """Why a class has no column. The rules first, then the deadline (judged at every eligible site, whatever its
    room now: a deadline no eligible site can meet never will be, retrying cannot help), then room (retryable)."""
    if not any_static:
        return rejection_reason(ctx, job)
    if not timely:
        deadline = "none" if job.deadline_h is None else f"{job.deadline_h:g} h"
        return f"deadline: no eligible site can finish transfer + runtime by the deadline ({deadline})"
    return f"capacity: no eligible site is up with room for it in time, within the {horizon_slots}-slot horizon"
