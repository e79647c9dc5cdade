"""Cost (CNY), energy (kWh) and carbon (kgCO2) of running a job at each site, vectorised over sites.

energy_kwh = (cores x W/core + cards x W/card) / 1000 x runtime_h x PUE
cost_cny   = energy_kwh x price(run hours) + amortisation (core-hours, card-hours) + inter-province transfer
carbon_kg  = energy_kwh x grid intensity(run hours) x (1 - green share)          (market-based)
carbon_location_kg = energy_kwh x grid intensity(run hours)                       (location-based, grid mix only)
Constants come from atlas/data/assumptions.yaml with their sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from suanwang.scheduler.context import SchedulerContext
from suanwang.workload.job import Job


@dataclass(slots=True)
class Estimate:
    """Predictions for one job over all sites (arrays aligned with ctx.sites; from `estimate_day`, the cost and
    carbon fields carry a leading axis of start hours). Read-only by convention once built: caches share them.
    (A __slots__ dataclass, not frozen: a frozen constructor sets each field through object.__setattr__, which
    costs a first-sighting decision several percent.)"""

    energy_kwh: np.ndarray
    cost_cny: np.ndarray
    carbon_kg: np.ndarray
    carbon_location_kg: np.ndarray
    latency_ms: np.ndarray  # one-way from the job's origin
    transfer_gb: np.ndarray  # data moved between provinces
    transfer_h: np.ndarray  # time to move the input before the job can start

    def at(self, i: int) -> list[float]:
        """(cost CNY, energy kWh, carbon kgCO2, latency ms, transfer h, transfer GB) at site i, Python floats (the
        order of Placement's predictions). For an estimate of one start."""
        return [getattr(self, name).item(i) for name in AT_FIELDS]

    def transfer_h_at(self, i: int) -> float:
        """transfer_h at site i (hours), a Python float; a lazy estimate computes it without the vector."""
        return self.transfer_h.item(i)


AT_FIELDS = ("cost_cny", "energy_kwh", "carbon_kg", "latency_ms", "transfer_h", "transfer_gb")  # Estimate.at order
_FIELD_ORDER = tuple(f.name for f in fields(Estimate))
_FIELDS = frozenset(_FIELD_ORDER)  # the fields a lazy estimate computes on first read
_SLOTS = {name: vars(Estimate)[name] for name in _FIELD_ORDER}  # each field's slot descriptor


class _Parts(NamedTuple):
    """What a lazy estimate computes its fields from: the job's scalars and the context's vectors over sites."""

    ctx: SchedulerContext
    moved: np.ndarray  # bool [sites]: the input crosses a provincial border
    moved_f: np.ndarray  # the same as 1.0 / 0.0
    moved_gb: float  # GB moved in and out
    hours: float  # hours to move the input across a border
    per_gb: float  # CNY to move the data across a border
    energy0: float  # kWh before PUE
    amort: float  # amortisation CNY over the run
    price: np.ndarray  # mean CNY/kWh over the run [sites]
    grid: np.ndarray  # mean kgCO2/kWh over the run [sites]
    origin: str  # adcode


class _LazyEstimate(Estimate):
    """`estimate(..., lazy=True)`: the job's scalars now (`parts`), each field's vector over sites when it is first
    read (an unset slot falls through to __getattr__, which computes and stores it), and `at(i)` from scalars alone -
    a decision that reads one site's predictions and one vector skips the rest. Every value is the same arithmetic
    as `_predict`'s, element by element (Python floats and numpy float64 round alike)."""

    __slots__ = ("parts",)

    def __init__(self, parts: _Parts):  # the fields stay unset until read
        self.parts = parts

    def __getattr__(self, name: str):  # only for fields not read yet (a read one is in its slot)
        if name not in _FIELDS:
            raise AttributeError(name)
        p = self.parts
        ctx = p.ctx
        if name == "transfer_gb":
            value = _where_moved(p.moved, p.moved_f, p.moved_gb)
        elif name == "transfer_h":
            value = _where_moved(p.moved, p.moved_f, p.hours)
        elif name == "energy_kwh":
            value = p.energy0 * ctx.pue
        elif name == "cost_cny":
            value = self.energy_kwh * p.price + p.amort + _where_moved(p.moved, p.moved_f, p.per_gb)
        elif name == "carbon_location_kg":
            value = self.energy_kwh * p.grid
        elif name == "carbon_kg":
            value = self.carbon_location_kg * ctx.non_green_share
        else:
            value = ctx.latency_row(p.origin)
        setattr(self, name, value)
        return value

    def computed(self) -> list[str]:
        """The fields computed so far (read at least once), in field order."""
        out = []
        for name in _FIELD_ORDER:
            try:
                _SLOTS[name].__get__(self, Estimate)  # the slot itself: an unset one raises, computing nothing
            except AttributeError:
                continue
            out.append(name)
        return out

    def transfer_h_at(self, i: int) -> float:
        p = self.parts
        return _moved_at(p.moved, p.moved_f.item(i), i, p.hours)  # equal to the vector's element i

    def at(self, i: int) -> list[float]:
        ctx, moved, moved_f, moved_gb, hours, per_gb, energy0, amort, price, grid, origin = self.parts
        f = moved_f.item(i)
        energy = energy0 * ctx.pue.item(i)
        carbon_location = energy * grid.item(i)
        return [
            energy * price.item(i) + amort + _moved_at(moved, f, i, per_gb),
            energy,
            carbon_location * ctx.non_green_share.item(i),
            ctx.latency_row(origin).item(i),
            _moved_at(moved, f, i, hours),
            _moved_at(moved, f, i, moved_gb),
        ]


def _moved_at(moved: np.ndarray, f: float, i: int, value: float) -> float:
    """_where_moved(moved, moved_f, value)[i] with f = moved_f[i], as a Python float."""
    if 0.0 <= value < math.inf:
        return f * value
    return value if moved.item(i) else 0.0


HOURLY_FIELDS = ("cost_cny", "carbon_kg", "carbon_location_kg")  # the Estimate fields that depend on the start hour

# The Job fields each Estimate field depends on (besides the start hour, see HOURLY_FIELDS): a score plugin that
# names the estimate fields it reads (ScorePlugin.reads) lets the scheduler share its scores between jobs that
# differ in nothing those fields depend on - e.g. latency depends on the origin alone, whatever the data size.
_SHAPE = ("cpu_cores", "gpu_cards", "runtime_h")
FIELD_INPUTS: dict[str, tuple[str, ...]] = {
    "energy_kwh": _SHAPE,
    "cost_cny": (*_SHAPE, "data_province", "input_gb", "output_gb"),
    "carbon_kg": _SHAPE,
    "carbon_location_kg": _SHAPE,
    "latency_ms": ("origin",),
    "transfer_gb": ("data_province", "input_gb", "output_gb"),
    "transfer_h": ("data_province", "input_gb"),
}


def it_power_kw(ctx: SchedulerContext, cpu_cores, gpu_cards):
    """IT power in kW of busy cores and cards (before PUE): a float for numbers, an array for arrays."""
    a = ctx.atlas
    if isinstance(cpu_cores, (int, float)) and isinstance(gpu_cards, (int, float)):  # one job: no numpy call
        return (cpu_cores * a.value("watts_per_core") + gpu_cards * a.value("watts_per_gpu")) / 1e3
    return (np.asarray(cpu_cores) * a.value("watts_per_core") + np.asarray(gpu_cards) * a.value("watts_per_gpu")) / 1e3


def estimate(ctx: SchedulerContext, job: Job, start_h: float | None = None, lazy: bool = False) -> Estimate:
    """Energy, cost, carbon, latency and transfer of `job` at every site if it starts at `start_h` (hours).
    `lazy`: each field is computed when first read, and `at(i)` reads one site without computing any (the same
    values)."""
    start = job.submit_h if start_h is None else start_h
    price, grid = ctx.mean_signals(start, job.runtime_h)
    if not lazy:
        return _predict(ctx, job, price, grid)
    power, amort, moved_gb, hours = _job_terms(ctx, job)
    moved, moved_f = ctx.moved_masks(job.data_province)
    per_gb = moved_gb * ctx.transfer_cny_per_gb
    return _LazyEstimate(
        _Parts(ctx, moved, moved_f, moved_gb, hours, per_gb, power * job.runtime_h, amort, price, grid, job.origin)
    )


def estimate_day(ctx: SchedulerContext, job: Job) -> Estimate:
    """`estimate` for every start hour of the day at once: cost_cny, carbon_kg and carbon_location_kg are
    [24, sites] (row h: the run starts in hour h of the day), or [1, sites] for runs of a day or more (every start
    sees the daily mean); the other fields are [sites] as in `estimate`. Row h equals estimate(ctx, job, h) exactly
    (the same arithmetic, element by element)."""
    if math.ceil(job.runtime_h) >= 24:
        price, grid = ctx.mean_signals(0.0, job.runtime_h)
        return _predict(ctx, job, price[None, :], grid[None, :])
    return _predict(ctx, job, *ctx.day_signals(job.runtime_h))


def _constants(ctx: SchedulerContext) -> tuple[float, float, float, float, float]:
    """(W per core, W per card, amortisation CNY per core-hour, CNY per card-hour, per-job bandwidth Gbit/s) of
    the context's atlas, read once per context (the assumptions are fixed once a context is built)."""
    k = ctx.cost_constants
    if k is None:
        a = ctx.atlas
        names = ("watts_per_core", "watts_per_gpu", "amortisation_cny_per_core_hour", "amortisation_cny_per_gpu_hour")
        k = ctx.cost_constants = (*(a.value(n) for n in names), a.value("job_bandwidth_gbps"))
    return k


def _job_terms(ctx: SchedulerContext, job: Job) -> tuple:
    """The job's own terms of every estimate, the same at every site: (IT power kW, amortisation CNY over the run,
    GB moved in and out, hours to move the input across a border - as Network.transfer_h)."""
    w_core, w_gpu, am_core, am_gpu, gbps = _constants(ctx)
    cores, cards, runtime, input_gb = job.cpu_cores, job.gpu_cards, job.runtime_h, job.input_gb
    if isinstance(cores, (int, float)) and isinstance(cards, (int, float)):
        power = (cores * w_core + cards * w_gpu) / 1e3  # it_power_kw for one job, without a numpy call
    else:
        power = it_power_kw(ctx, cores, cards)
    amort = (cores * am_core + cards * am_gpu) * runtime
    return power, amort, input_gb + job.output_gb, input_gb * 8.0 / (gbps * 3600.0)


def _predict(ctx: SchedulerContext, job: Job, price: np.ndarray, grid: np.ndarray) -> Estimate:
    """The estimate of `job` given the mean price (CNY/kWh) and grid intensity (kgCO2/kWh) over its run, per site
    ([sites]) or per start hour and site ([hours, sites]). Scalars are combined first (Python floats, the same
    IEEE arithmetic numpy applies element by element), so a first-sighting decision costs few array operations."""
    power, amort, moved_gb, hours = _job_terms(ctx, job)
    moved, moved_f = ctx.moved_masks(job.data_province)  # the input crosses a provincial border (bool, 0/1)
    transfer_gb = _where_moved(moved, moved_f, moved_gb)
    transfer_h = _where_moved(moved, moved_f, hours)
    energy = power * job.runtime_h * ctx.pue
    transfer_cost = _where_moved(moved, moved_f, moved_gb * ctx.transfer_cny_per_gb)
    carbon_location = energy * grid
    return Estimate(
        energy,
        energy * price + amort + transfer_cost,
        carbon_location * ctx.non_green_share,
        carbon_location,
        ctx.latency_row(job.origin),
        transfer_gb,
        transfer_h,
    )


def _where_moved(moved: np.ndarray, moved_f: np.ndarray, value: float) -> np.ndarray:
    """`value` at the sites in `moved`, 0.0 elsewhere: np.where(moved, value, 0.0), as one multiplication by the
    0/1 vector `moved_f` when that is exact (value finite and >= 0: x * 1.0 = x, x * 0.0 = +0.0)."""
    if 0.0 <= value < math.inf:
        return moved_f * value
    return np.where(moved, value, 0.0)
