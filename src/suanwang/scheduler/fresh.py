"""The first sighting of a job, fast: its static scores and their order over the statically feasible sites only.

A job that shares no signature with an earlier one (the simulator's case: continuous sizes) costs a whole
estimate, score matrix, normalisation and sort over every site in the reference pipeline (framework.py,
`_combination` + `cache.combine`). Where every static score is an estimate field itself (`ScorePlugin.
estimate_field`: cost, carbon, latency), the cached pipeline instead computes those fields at the sites its
static mask keeps - the sites a job can never use are pruned before scoring - from the lazy estimate's scalars
and the context's vectors taken once per (static mask, origin, data province, signal window) and reused by
every job with those, whatever its shape or size. Few sites: Python floats, no numpy call; many: numpy on the
subset. Either way each value is the reference's arithmetic, element by element (Python floats and numpy
float64 round alike), so the order and every total equal the reference's bit for bit; the whole-site vectors
(total, raw scores) are built only when a decision reads them (the slow path, an explanation). When a value is
not finite (the reference then sorts non-finite totals among the infeasible sites) the caller falls back to the
reference. `tests/test_scheduler_properties.py` compares the cached pipeline with the uncached reference.
"""

from __future__ import annotations

import math

import numpy as np

from suanwang.scheduler.cache import Entry
from suanwang.scheduler.costs import Estimate, _Parts

PYTHON_SITES = 10  # up to this many statically feasible sites, Python floats beat numpy (measured crossover 10-11)
KERNEL_FIELDS = frozenset({"cost_cny", "carbon_kg", "carbon_location_kg", "energy_kwh", "latency_ms"})


class Subset:
    """The context's vectors at the statically feasible sites of one (static mask, origin, data province), as Python
    lists when they are few (PYTHON_SITES), else as numpy arrays (the price and carbon window's are taken per job,
    `window`), and each score row that is the same for every such job (latency), weighted and normalised once."""

    __slots__ = ("idx", "sites", "k", "full", "pue", "ngs", "moved_f", "moved", "lat", "const", "usable")

    def __init__(self, static: np.ndarray, parts: _Parts, fields: tuple[str, ...], weights, normalise: bool):
        ctx = parts.ctx
        self.idx = np.flatnonzero(static)
        self.sites = self.idx.tolist()
        self.k = len(self.sites)
        self.full = self.k == len(static)  # every site: the window's vectors need no gather
        cols = (ctx.pue, ctx.non_green_share, parts.moved_f, parts.moved, ctx.latency_row(parts.origin))
        taken = [c[self.idx] for c in cols]
        if self.k <= PYTHON_SITES:
            taken = [t.tolist() for t in taken]
        self.pue, self.ngs, self.moved_f, self.moved, self.lat = taken
        self.usable = True  # False: a constant row is not finite (the reference decides)
        self.const: list = [None] * len(fields)
        for r, name in enumerate(fields):
            if name == "latency_ms" and self.k:
                if not math.isfinite(sum(self.lat) if self.k <= PYTHON_SITES else float(self.lat.sum())):
                    self.usable = False
                self.const[r] = _weighted(self.lat, float(weights[r]), normalise, self.k <= PYTHON_SITES)

    def window(self, parts: _Parts) -> tuple:
        """(price, grid) of the job's run window at the subset's sites, in the subset's form."""
        if self.k <= PYTHON_SITES:
            price, grid = parts.price, parts.grid
            return [price.item(i) for i in self.sites], [grid.item(i) for i in self.sites]
        if self.full:
            return parts.price, parts.grid
        return parts.price[self.idx], parts.grid[self.idx]


def _weighted(row, w: float, normalise: bool, python: bool):
    """w x the row min-max normalised over its own values (cache.combine's arithmetic: a constant row counts 0)."""
    if python:
        if normalise:
            lo = min(row)
            span = max(row) - lo
            span = span if span > 0 else math.inf
            row = [(x - lo) / span for x in row]
        return [w * x for x in row]
    if normalise:
        lo = row.min()
        span = row.max() - lo
        row = (row - lo) / (span if span > 0 else math.inf)
    return w * row


def _rows(fields: tuple[str, ...], p: _Parts, sub: Subset, python: bool):
    """Each field's values at the subset's sites (None for a constant row), the estimate's arithmetic."""
    price, grid = sub.window(p)
    e0, amort, per_gb = p.energy0, p.amort, p.per_gb
    out = []
    if python:
        energy = [e0 * x for x in sub.pue]
        for r, name in enumerate(fields):
            if sub.const[r] is not None:
                row = None
            elif name == "cost_cny":
                if 0.0 <= per_gb < math.inf:
                    moved = [f * per_gb for f in sub.moved_f]
                else:
                    moved = [per_gb if m else 0.0 for m in sub.moved]
                row = [e * q + amort + t for e, q, t in zip(energy, price, moved, strict=True)]
            elif name == "carbon_kg":
                row = [e * g * c for e, g, c in zip(energy, grid, sub.ngs, strict=True)]
            elif name == "carbon_location_kg":
                row = [e * g for e, g in zip(energy, grid, strict=True)]
            else:  # energy_kwh
                row = energy
            out.append(row)
        return out
    energy = e0 * sub.pue
    for r, name in enumerate(fields):
        if sub.const[r] is not None:
            row = None
        elif name == "cost_cny":
            moved = sub.moved_f * per_gb if 0.0 <= per_gb < math.inf else np.where(sub.moved, per_gb, 0.0)
            row = energy * price + amort + moved
        elif name == "carbon_kg":
            row = energy * grid * sub.ngs
        elif name == "carbon_location_kg":
            row = energy * grid
        else:
            row = energy
        out.append(row)
    return out


def _total(rows: list, sub: Subset, weights: list[float], normalise: bool, python: bool):
    """The weighted sum of the normalised rows at the subset's sites, as cache.combine sums them."""
    total = None
    for r, row in enumerate(rows):
        term = sub.const[r] if row is None else _weighted(row, weights[r], normalise, python)
        if total is None:
            total = term
        elif python:
            total = [t + x for t, x in zip(total, term, strict=True)]
        else:
            total = total + term
    return total


class FreshEntry(Entry):
    """An Entry whose site order and whole-site vectors - the total (+inf outside the static mask) and the raw
    scores - are built from the subset's totals and the lazy estimate when first read (an unset slot falls through
    to __getattr__); `first`, the best site, is known at once."""

    __slots__ = ("sub", "totals", "fields")

    def __init__(self, estimate: Estimate, static: np.ndarray, first: int, sub: Subset, totals, fields):
        self.estimate, self.static, self.first, self.predictions = estimate, static, first, None
        self.sub, self.totals, self.fields = sub, totals, fields

    def __getattr__(self, name: str):
        if name == "order":  # a stable argsort, as the reference's
            totals = self.totals
            if isinstance(totals, list):
                sites = self.sub.sites
                value = [sites[j] for j in sorted(range(len(totals)), key=totals.__getitem__)]
            else:
                value = self.sub.idx[np.argsort(totals, kind="stable")].tolist()
        elif name == "score":
            value = np.full(len(self.static), np.inf)
            value[self.sub.idx] = self.totals
        elif name == "matrix":
            value = np.array([getattr(self.estimate, f) for f in self.fields], dtype=float)
        else:
            raise AttributeError(name)
        setattr(self, name, value)
        return value


ONLINE = ("cost_cny", "carbon_kg", "latency_ms")  # the online policy's static scores, fused below


def _online_python(p: _Parts, sub: Subset, weights: list[float], normalise: bool) -> list[float]:
    """_total for the online policy's scores (ONLINE) at few sites, in one pass per stage (the same arithmetic)."""
    price, grid = sub.window(p)
    e0, amort, per_gb = p.energy0, p.amort, p.per_gb
    energy = [e0 * x for x in sub.pue]
    if 0.0 <= per_gb < math.inf:
        cost = [e * q + amort + f * per_gb for e, q, f in zip(energy, price, sub.moved_f, strict=True)]
    else:
        cost = [e * q + amort + (per_gb if m else 0.0) for e, q, m in zip(energy, price, sub.moved, strict=True)]
    carbon = [e * g * c for e, g, c in zip(energy, grid, sub.ngs, strict=True)]
    w0, w1 = weights[0], weights[1]
    latency = sub.const[2]
    if not normalise:
        return [w0 * c + w1 * k + x for c, k, x in zip(cost, carbon, latency, strict=True)]
    lo0, lo1 = min(cost), min(carbon)
    s0, s1 = max(cost) - lo0, max(carbon) - lo1
    s0, s1 = (s0 if s0 > 0 else math.inf), (s1 if s1 > 0 else math.inf)
    return [w0 * ((c - lo0) / s0) + w1 * ((k - lo1) / s1) + x for c, k, x in zip(cost, carbon, latency, strict=True)]


def _online_numpy(p: _Parts, sub: Subset, weights: list[float], normalise: bool) -> np.ndarray:
    """_total for the online policy's scores (ONLINE) at many sites, in place where it can (the same arithmetic;
    a row's least and greatest value read at its argmin / argmax, a fifth of the cost of min() / max())."""
    price, grid = sub.window(p)
    energy = p.energy0 * sub.pue
    cost = energy * price
    cost += p.amort
    per_gb = p.per_gb
    cost += sub.moved_f * per_gb if 0.0 <= per_gb < math.inf else np.where(sub.moved, per_gb, 0.0)
    carbon = energy * grid
    carbon *= sub.ngs
    for row, w in ((cost, weights[0]), (carbon, weights[1])):
        if normalise:
            lo = row.item(row.argmin())
            span = row.item(row.argmax()) - lo
            row -= lo
            row /= span if span > 0 else math.inf
        row *= w
    cost += carbon
    cost += sub.const[2]
    return cost


def fresh_entry(est: Estimate, static: np.ndarray, sub: Subset, fields, weights, normalise) -> FreshEntry | None:
    """The entry of a first sighting from its lazy estimate `est` and static mask's `sub`set (see the module
    docstring); None when the reference must decide (a value that is not finite)."""
    if not sub.usable:
        return None
    if sub.k == 0:  # no statically feasible site: every total +inf, nothing to order
        return FreshEntry(est, static, -1, sub, [], fields)
    python = sub.k <= PYTHON_SITES
    p = est.parts
    if fields == ONLINE and sub.const[2] is not None:
        total = _online_python(p, sub, weights, normalise) if python else _online_numpy(p, sub, weights, normalise)
    else:
        total = _total(_rows(fields, p, sub, python), sub, weights, normalise, python)
    if python:
        if not math.isfinite(sum(total)):  # a non-finite value (NaN or inf) anywhere: the reference decides
            return None
        j = min(range(sub.k), key=total.__getitem__)  # the first of the lowest, as a stable sort's first
        return FreshEntry(est, static, sub.sites[j], sub, total, fields)
    j = int(total.argmin())
    # Normalised, finite raw values give finite totals, and a NaN anywhere is argmin's pick; unnormalised, an
    # infinite total may sit anywhere. Either way a non-finite one leaves the decision to the reference.
    if not math.isfinite(total.item(j) if normalise else total.sum()):
        return None
    return FreshEntry(est, static, sub.sites[j], sub, total, fields)
