"""Batch optimiser ("batch-lp"): place a window of jobs at once with an LP over (class, site, start slot).

    opt = BatchOptimizer(ctx, weights={"cost": 1.0, "carbon": 1.0}, slot_h=0.25, horizon_slots=96)
    plan = opt.plan(jobs, state, now_h)        # plan.decisions, plan.objective, plan.lp_bound, plan.gap

Model (details in optimize/columns / optimize/lp / optimize/round): jobs are grouped into classes of
interchangeable jobs; a variable counts the jobs of a class that start at a site in a slot; constraints assign
every job or charge an unplaced penalty, keep cores and cards within each site's free capacity in every slot, keep
cross-province input transfers within each (data province -> site) link's capacity per slot, and meet deadlines.
Columns exist only for (class, site, slot) that pass the hard rules, so residency and latency hold by construction.
The objective is   weights["cost"] x cost_cny + weights["carbon"] x carbon_price x carbon_kg   (CNY-equivalent),
with the hourly price and grid intensity of the run window, so temporal shifting to cheaper or greener hours
falls out. The LP (every column at once up to mip_max_cols columns, else column generation) gives the bound and
a rounded, repaired plan; then the whole-job integer program (optimize/mip) runs from that plan under a time
limit - mip_time_limit_s up to mip_max_cols columns, polish_time_limit_s up to polish_max_cols otherwise - and a
bounded local search (optimize/search) on small windows. Every plan reports its LP bound, HiGHS's bound when the
integer program ran, and its gaps; `exact` only when the plan meets a proven bound.

Assumptions:
- carbon price: DEFAULT_CARBON_PRICE_CNY_PER_T = 80 CNY per tonne CO2 (0.08 CNY/kg). Assumption: the order of
  magnitude of China's national carbon market (CEA) allowance price, which traded around 60-100 CNY/t in
  2023-2024 (Shanghai Environment and Energy Exchange daily quotes). Override with `carbon_price_cny_per_t`.
- unplaced penalty: a job left unplaced costs `penalty_factor` (default 10) times the dearest placement its class
  could get, so the plan always prefers placing a job when there is room.
- capacity: by default the free cores / cards in `state` at now_h stay free for the plan for the whole horizon
  (jobs already running are assumed to hold theirs); a caller that knows more (the simulator knows when running
  jobs end and what earlier plans hold) passes a per-slot free profile `free`. The plan does not reserve
  anything - the caller reserves each job when it starts (Placement.start_h) and releases it at the end.
- deadlines are rounded down to the slot grid; start times are slot starts.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from suanwang.errors import SuanwangError
from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.decision import Decision, Placement
from suanwang.scheduler.optimize.classes import group_jobs, static_mask
from suanwang.scheduler.optimize.columns import Columns, build_columns
from suanwang.scheduler.optimize.lp import solve
from suanwang.scheduler.optimize.mip import mip_closed, solve_mip
from suanwang.scheduler.optimize.occupancy import Footprint
from suanwang.scheduler.optimize.round import Residual, class_orders, guided_round, round_plan
from suanwang.scheduler.optimize.round import objective as counts_objective
from suanwang.scheduler.optimize.search import improve
from suanwang.scheduler.state import ClusterState
from suanwang.workload.job import Job

DEFAULT_CARBON_PRICE_CNY_PER_T = 80.0  # assumption, see module docstring
WEIGHT_KEYS = ("cost", "carbon")

__all__ = ["BatchOptimizer", "OptimizerConfigError", "Plan", "static_mask"]


class OptimizerConfigError(SuanwangError):
    """A batch optimiser setting is invalid; the message names the setting and the fix."""


@dataclass
class Plan:
    """A batch plan: one Decision per job (input order), its objective (CNY-equivalent) and certificates."""

    decisions: list[Decision]
    objective: float  # weighted cost + carbon of the whole-job plan, unplaced penalties included
    lp_bound: float  # a proven lower bound: no plan of this model can do better
    solve_s: float  # seconds in the LP / MIP solver and column pricing
    build_s: float  # seconds grouping jobs and building coefficients
    round_s: float  # seconds rounding, repairing and writing decisions
    n_vars: int  # LP columns in the final model
    n_classes: int = 0
    n_candidates: int = 0  # feasible (class, site, slot) columns in the full model
    rounds: int = 0  # column-generation rounds
    exact: bool = False  # proven optimal: HiGHS closed the integer program's gap (never at a time limit)
    mip_bound: float = -math.inf  # HiGHS's dual bound of the integer program, when one was solved (CNY-equivalent)
    totals: dict[str, float] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)  # seconds per step (see BatchOptimizer.plan)

    @property
    def gap(self) -> float:
        """(objective - lp_bound) / |lp_bound|: how far the plan can be from optimal, at most (fraction)."""
        if self.lp_bound == 0:
            return 0.0 if abs(self.objective) < 1e-9 else math.inf
        return (self.objective - self.lp_bound) / abs(self.lp_bound)

    @property
    def bound(self) -> float:
        """The best proven lower bound of the integer optimum: max(lp_bound, mip_bound) (CNY-equivalent)."""
        return max(self.lp_bound, self.mip_bound)

    @property
    def mip_gap(self) -> float:
        """(objective - bound) / |bound|: how far the whole-job plan can be from the integer optimum, at most
        (fraction; 0 when exact)."""
        if self.exact:
            return 0.0
        b = self.bound
        if b == 0:
            return 0.0 if abs(self.objective) < 1e-9 else math.inf
        return max(0.0, (self.objective - b) / abs(b))

    @property
    def placed(self) -> int:
        """Number of jobs placed."""
        return sum(d.placed for d in self.decisions)


class BatchOptimizer:
    """Plans a window of jobs at once: LP over (class, site, slot), whole jobs by rounding, MIP and local search."""

    name = "batch-lp"

    def __init__(
        self,
        ctx: SchedulerContext,
        weights: dict[str, float] | None = None,
        slot_h: float = 0.25,
        horizon_slots: int = 96,
        *,
        carbon_price_cny_per_t: float = DEFAULT_CARBON_PRICE_CNY_PER_T,
        penalty_factor: float = 10.0,
        mip_max_cols: int = 2000,
        mip_time_limit_s: float = 10.0,
        per_pair: int = 2,
        per_class: int = 20,
        max_rounds: int = 100,
        bound_tol: float = 1e-3,
        polish_time_limit_s: float = 0.5,
        polish_max_cols: int = 3000,
        search_evals: int = 200,
    ):
        """mip_max_cols / mip_time_limit_s (s): the integer program's budget on models that small (the default
        mode); polish_max_cols / polish_time_limit_s (s): its budget on larger models up to that size (what
        `mip_max_cols=0`, the simulator's LP mode, gets on small windows); search_evals: local-search moves on
        models up to polish_max_cols columns. 0 turns each off."""
        self.ctx = ctx
        self.weights = _check_weights(weights)
        _require(slot_h, "slot_h", "a slot length in hours > 0, e.g. 0.25", positive=True)
        if not isinstance(horizon_slots, int | np.integer) or horizon_slots < 1:
            raise OptimizerConfigError(f"horizon_slots must be a whole number >= 1, got {horizon_slots!r}")
        _require(carbon_price_cny_per_t, "carbon_price_cny_per_t", "a price in CNY per tonne >= 0, e.g. 80")
        _require(penalty_factor, "penalty_factor", "a factor >= 1, e.g. 10", minimum=1.0)
        for name, value in (("mip_time_limit_s", mip_time_limit_s), ("polish_time_limit_s", polish_time_limit_s)):
            _require(value, name, "seconds >= 0 (0: no integer program), e.g. 0.5")
        for name, value in (
            ("mip_max_cols", mip_max_cols),
            ("polish_max_cols", polish_max_cols),
            ("search_evals", search_evals),
        ):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
                raise OptimizerConfigError(f"{name} must be a whole number >= 0, got {value!r}")
        self.slot_h = float(slot_h)
        self.horizon_slots = int(horizon_slots)
        self.carbon_price_cny_per_t = float(carbon_price_cny_per_t)
        self.penalty_factor = float(penalty_factor)
        self.mip_max_cols = int(mip_max_cols)
        self.mip_time_limit_s = float(mip_time_limit_s)
        self.per_pair = int(per_pair)
        self.per_class = int(per_class)
        self.max_rounds = int(max_rounds)
        self.bound_tol = float(bound_tol)
        self.polish_time_limit_s = float(polish_time_limit_s)
        self.polish_max_cols = int(polish_max_cols)
        self.search_evals = int(search_evals)

    @property
    def carbon_cny_per_kg(self) -> float:
        """CNY-equivalent charged per kg CO2 in the objective: carbon weight x carbon price / 1000."""
        return self.weights["carbon"] * self.carbon_price_cny_per_t / 1000.0

    def columns(
        self, jobs: list[Job], state: ClusterState, now_h: float, free: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[Columns, list[int]]:
        """The full candidate model for `jobs` and each job's class index (`free`: see plan)."""
        self._check_state(state)
        self._check_free(state, free)
        classes = group_jobs(jobs, now_h, self.slot_h)
        cols = build_columns(
            self.ctx,
            classes,
            state,
            now_h,
            self.slot_h,
            self.horizon_slots,
            self.weights["cost"],
            self.carbon_cny_per_kg,
            self.penalty_factor,
            free,
        )
        return cols, _job_class(cols, len(jobs))

    def plan(
        self, jobs: list[Job], state: ClusterState, now_h: float, free: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Plan:
        """Place `jobs` from `now_h` (hours) on the sites of `state` within the horizon; `state` is not changed.

        free: optional (cores, cards) arrays [sites, K] of the room free for this plan in each slot from now_h
        (slot k starts at now_h + k x slot_h; the last value holds beyond K) - e.g. the state's free room plus
        what running jobs release when they end, minus what earlier plans hold. Default: the free room of
        `state` now, in every slot. Sites down in `state` get none either way."""
        t0 = time.perf_counter()
        if not jobs:
            return Plan([], 0.0, 0.0, 0.0, 0.0, 0.0, 0)
        cols, job_class = self.columns(jobs, state, now_h, free)
        t1 = time.perf_counter()
        exact_try = 0 < len(cols) <= self.mip_max_cols
        greedy = round_plan(cols, np.zeros(len(cols)))  # cheapest column with room, class by class
        t_greedy = time.perf_counter()
        lp = solve(
            cols,
            per_pair=self.per_pair,
            per_class=self.per_class,
            max_rounds=self.max_rounds,
            bound_tol=self.bound_tol,
            all_columns=exact_try,
            seed=np.nonzero(greedy)[0],
        )
        t2 = time.perf_counter()
        plans = [greedy, round_plan(cols, lp.x)]
        small = len(cols) <= self.polish_max_cols
        if small:  # small windows: whole jobs built in the LP's order, a few class orders (cheap there)
            fp = Footprint(cols)
            plans += [guided_round(cols, lp.x, order, fp) for order in class_orders(cols, lp.x)]
        if free is None and small:  # and the nearest baseline as a floor
            plans.append(self._nearest_counts(jobs, cols, job_class, state, now_h))
        counts = min(plans, key=lambda c: counts_objective(cols, c))  # the first of the cheapest
        t_round = time.perf_counter()
        mip = None
        budget_s = self.mip_time_limit_s if exact_try else self.polish_time_limit_s
        if 0 < len(cols) <= (self.mip_max_cols if exact_try else self.polish_max_cols) and budget_s > 0:
            if not mip_closed(counts_objective(cols, counts), lp.lp_bound):
                # starts from the plan so far: never worse; a short polish keeps HiGHS's cut pool small
                mip = solve_mip(cols, budget_s, start=counts, primal=not exact_try)
                if mip.counts is not None and counts_objective(cols, mip.counts) < counts_objective(cols, counts):
                    counts = mip.counts
        t_mip = time.perf_counter()
        bound = max(lp.lp_bound, -math.inf if mip is None else mip.bound)
        proven = len(cols) == 0 or mip_closed(counts_objective(cols, counts), bound)
        if self.search_evals > 0 and not proven and small:  # small windows: cheap there
            counts = improve(cols, counts, max_evals=self.search_evals)
        t_search = time.perf_counter()
        decisions, objective, totals = self._decisions(jobs, cols, counts, now_h)
        t3 = time.perf_counter()
        timings = {
            "columns": t1 - t0,  # classes, coefficients and candidate columns
            "greedy": t_greedy - t1,  # the greedy plan (a fallback and the first master's seed)
            "lp_highs": lp.highs_s,  # inside HiGHS: every master solve
            "lp_pricing": lp.pricing_s,  # pricing every candidate and the Lagrangian bound, per round
            "lp_other": t2 - t_greedy - lp.highs_s - lp.pricing_s,  # building and growing the master, link checks
            "round": t_round - t2,  # floor + greedy repair
            "mip": t_mip - t_round,  # the whole-job integer program (optimize/mip), when it runs
            "search": t_search - t_mip,  # local search (optimize/search), when the plan is not proven optimal
            "decisions": t3 - t_search,  # one Decision per job
        }
        return Plan(
            decisions=decisions,
            objective=objective,
            lp_bound=lp.lp_bound,
            solve_s=lp.solve_s + (t_mip - t_round),
            build_s=t1 - t0 + (t2 - t1 - lp.solve_s),
            round_s=t3 - t2 - (t_mip - t_round),
            n_vars=lp.n_vars,
            n_classes=len(cols.count),
            n_candidates=len(cols),
            rounds=lp.rounds,
            # the plan meets a proven lower bound (no candidate column: placing nothing is the only plan)
            exact=proven,
            mip_bound=-math.inf if mip is None else mip.bound,
            totals=totals,
            timings_s=timings,
        )

    def objective_of(
        self,
        jobs: list[Job],
        decisions: list[Decision],
        state: ClusterState,
        now_h: float,
        free: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> float:
        """The plan objective (CNY-equivalent) of any decisions for `jobs` - e.g. an online baseline's - priced like
        the optimiser's: weighted cost + carbon of each placement, the class penalty for each job left unplaced
        (`free`: the capacity profile the plan was made with, see plan)."""
        cols, job_class = self.columns(jobs, state, now_h, free)
        by_id = {d.job_id: d for d in decisions}
        total = 0.0
        for job, c in zip(jobs, job_class, strict=True):
            d = by_id.get(job.id)
            if d is not None and d.placement is not None:
                total += self.weights["cost"] * d.placement.cost_cny + self.carbon_cny_per_kg * d.placement.carbon_kg
            else:
                total += float(cols.penalty[c])
        return total

    # --- internals -------------------------------------------------------------------------------------------
    def _nearest_counts(self, jobs: list[Job], cols: Columns, job_class, state: ClusterState, now_h: float):
        """The `nearest` baseline's placements at now_h as whole-job counts over the columns (a placement without a
        slot-0 column - e.g. a job released later - is left out): a plan candidate, so a small window's plan is
        never worse than that baseline's where the state's room is the whole capacity model."""
        from suanwang.scheduler.baselines import nearest

        sched, st = nearest(self.ctx), copy.deepcopy(state)
        counts = np.zeros(len(cols), dtype=np.int64)
        res = Residual(cols)
        one = np.ones(1, dtype=np.int64)
        for job, c in zip(jobs, job_class, strict=True):
            d = sched.place(job, st, now_h)
            if not d.placed:
                continue
            lo, hi = cols.class_start[c], cols.class_start[c + 1]
            hit = lo + np.nonzero((cols.site[lo:hi] == d.placement.site_index) & (cols.slot[lo:hi] == 0))[0]
            if hit.size and res.fit(hit[:1])[0] >= 1:
                res.take(hit[:1], one)
                counts[hit[0]] += 1
        return counts

    def _decisions(self, jobs: list[Job], cols: Columns, counts: np.ndarray, now_h: float):
        ctx = self.ctx
        col_of = np.full(len(jobs), -1, dtype=np.int64)
        for c, members in enumerate(cols.members):
            lo, hi = cols.class_start[c], cols.class_start[c + 1]
            if hi > lo:
                per = counts[lo:hi]
                order = np.argsort(cols.w[lo:hi], kind="stable")
                chosen = np.repeat(lo + order, per[order])
                col_of[members[: chosen.size]] = chosen
        placed = col_of >= 0
        idx = col_of[placed]
        objective = float(cols.w[idx].sum())
        job_class = _job_class(cols, len(jobs))
        objective += float(cols.penalty[job_class[~placed]].sum())
        origin_row = np.array([ctx.place_index.get(j.origin, -1) for j in jobs], dtype=np.int64)
        site_ids = [s.id for s in ctx.sites]
        # per-job values as Python lists: one vectorised gather instead of 100k numpy scalar look-ups
        safe = np.maximum(col_of, 0)

        def per_job(a: np.ndarray) -> np.ndarray:  # the value of each job's column (any value where unplaced)
            return a[safe] if len(cols) else np.zeros(len(jobs), dtype=a.dtype)

        site = per_job(cols.site)
        lat = np.where(origin_row >= 0, ctx.latency_ms[np.maximum(origin_row, 0), site], math.nan)
        start = (now_h + per_job(cols.slot) * self.slot_h).tolist()
        cost, energy, carbon, xfer_h, xfer_gb = (
            per_job(a).tolist()
            for a in (cols.cost_cny, cols.energy_kwh, cols.carbon_kg, cols.transfer_h, cols.transfer_gb)
        )
        site, lat, col, cls_of = site.tolist(), lat.tolist(), col_of.tolist(), job_class.tolist()
        horizon_h = self.horizon_slots * self.slot_h
        decisions: list[Decision] = []
        for j, job in enumerate(jobs):
            if col[j] >= 0:
                s = site[j]
                p = Placement(
                    job.id, site_ids[s], s, start[j], cost[j], energy[j], carbon[j], lat[j], xfer_h[j], xfer_gb[j]
                )
                decisions.append(Decision(job.id, p, policy=self.name))
            else:
                reason = cols.reasons[cls_of[j]] or f"capacity: no room for it within the {horizon_h:g} h horizon"
                # capacity refusals may succeed later (room frees up); rule and deadline refusals never will
                retryable = reason.startswith("capacity:")
                decisions.append(Decision(job.id, None, reason=reason, policy=self.name, retryable=retryable))
        totals = {
            "cost_cny": float(cols.cost_cny[idx].sum()),
            "carbon_kg": float(cols.carbon_kg[idx].sum()),
            "energy_kwh": float(cols.energy_kwh[idx].sum()),
            "placed": int(placed.sum()),
            "unplaced": int((~placed).sum()),
        }
        return decisions, objective, totals

    def _check_free(self, state: ClusterState, free: tuple[np.ndarray, np.ndarray] | None) -> None:
        if free is None:
            return
        n = len(state.sites)
        fix = (
            f"free must be (cores, cards): two arrays [sites={n}, slots>=1] of the finite room free in each slot "
            "from now_h - or None to use the state's free room in every slot"
        )
        try:
            arrays = [np.asarray(f, dtype=float) for f in free]
        except (TypeError, ValueError):
            raise OptimizerConfigError(f"{fix}; got {type(free).__name__}") from None
        if len(arrays) != 2 or any(a.ndim != 2 or a.shape[0] != n or a.shape[1] < 1 for a in arrays):
            raise OptimizerConfigError(f"{fix}; got shapes {[a.shape for a in arrays]}")
        if not all(np.isfinite(a).all() for a in arrays):
            raise OptimizerConfigError(f"{fix}; got a NaN or infinite value")

    def _check_state(self, state: ClusterState) -> None:
        if [s.id for s in state.sites] != [s.id for s in self.ctx.sites]:
            raise OptimizerConfigError(
                "state.sites must list the same sites in the same order as the context's sites - "
                "build both from one list: ClusterState.from_sites(ctx.sites)"
            )


def _job_class(cols: Columns, n_jobs: int) -> np.ndarray:
    job_class = np.empty(n_jobs, dtype=np.int64)
    for c, members in enumerate(cols.members):
        job_class[members] = c
    return job_class


def _check_weights(weights: dict[str, float] | None) -> dict[str, float]:
    out = {"cost": 1.0, "carbon": 1.0}
    for key, value in (weights or {}).items():
        if key not in WEIGHT_KEYS:
            raise OptimizerConfigError(
                f"weights: unknown key '{key}' - the batch optimiser weighs {', '.join(WEIGHT_KEYS)}"
            )
        _require(value, f"weights['{key}']", "a number >= 0")
        out[key] = float(value)
    if out["cost"] == 0 and out["carbon"] == 0:
        raise OptimizerConfigError("weights: cost and carbon are both 0 - give at least one a weight > 0")
    return out


def _require(value, name: str, fix: str, *, positive: bool = False, minimum: float = 0.0) -> None:
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > 0 if positive else value >= minimum)
    if not ok:
        raise OptimizerConfigError(f"{name} must be {fix}, got {value!r}")
