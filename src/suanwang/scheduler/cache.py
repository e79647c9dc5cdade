"""The signature caches of one scheduler (opportunistic batching, see framework.py) and their records.

Eight dictionaries, two eviction rules: any of them cleared when it reaches CACHE_ENTRIES entries; the days of
estimates and their combinations (large) cleared together, with the per-signature records that point into them,
when either reaches DAY_ENTRIES. Records are plain __slots__ classes built once and then only read.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from suanwang.scheduler.costs import AT_FIELDS, HOURLY_FIELDS, Estimate

CACHE_ENTRIES = 32768  # signatures, static masks kept before a cache is cleared (memory bound, not a fact)
DAY_ENTRIES = 2048  # days of estimates (~100 kB each) and their combinations kept before they are cleared


class SignatureCache:
    """What one scheduler remembers between decisions, keyed as signature.py derives (see framework.py)."""

    __slots__ = ("scores", "by_signature", "days", "seen", "static", "static_reasons", "combined", "subsets")

    def __init__(self):
        self.scores: dict[tuple, tuple] = {}  # (static_key, score inputs) -> (total, matrix, order)
        self.by_signature: dict[tuple, Shared] = {}  # signature -> its (static mask, score key) record
        self.days: dict[tuple, Day] = {}  # score_key -> estimates and raw scores for every start hour
        self.seen: dict[tuple, tuple[int, int]] = {}  # score key -> (hour of day first met, sightings in it)
        self.static: dict[tuple, np.ndarray] = {}  # static_key -> static mask
        self.static_reasons: dict[tuple, list[str]] = {}  # reason_key -> each site's static rejection
        self.combined: dict[tuple, Shared] = {}  # (static mask bytes, score_key) -> scores, entry per hour
        self.subsets: dict[tuple, object] = {}  # (static_key, origin, data province) -> fresh.Subset

    @staticmethod
    def remember(cache: dict, key, value):
        """cache[key] = value, clearing `cache` first when it holds CACHE_ENTRIES entries; returns value."""
        if len(cache) >= CACHE_ENTRIES:
            cache.clear()
        cache[key] = value
        return value

    def make_room_for_a_day(self) -> None:
        """Before a new day is cached: start afresh when the days or their combinations reach DAY_ENTRIES (the
        per-signature records refer to days, so they go too)."""
        if len(self.days) >= DAY_ENTRIES or len(self.combined) >= DAY_ENTRIES:
            self.days.clear()
            self.combined.clear()
            self.by_signature.clear()


def combine(matrix: np.ndarray, weights: np.ndarray, static: np.ndarray, normalise: bool) -> np.ndarray:
    """Weighted sum of score rows (`matrix` [scores, sites], or [hours, scores, sites] for many start hours at
    once); with `normalise` each row is first min-max scaled to 0..1 over the statically feasible sites (a row
    that is constant there counts 0). +inf outside `static`. Element by element the same arithmetic whatever the
    leading axes, so one hour of a many-hour call equals the one-hour call exactly."""
    if len(weights) == 0:
        return np.where(static, np.zeros(matrix.shape[:-2] + matrix.shape[-1:]), np.inf)
    feasible = matrix[..., static] if normalise else None
    if feasible is not None and feasible.size:  # some site is statically feasible
        lo = feasible.min(axis=-1, keepdims=True)
        span = feasible.max(axis=-1, keepdims=True) - lo
        matrix = (matrix - lo) / np.where(span > 0, span, np.inf)
    total = weights[0] * matrix[..., 0, :]
    for k in range(1, len(weights)):
        total = total + weights[k] * matrix[..., k, :]
    return np.where(static, total, np.inf)


PREDICTED = AT_FIELDS  # the estimate fields a Placement reports, in its order


class Entry:
    """Cached per (static mask, score key, hour of day): the estimate, static mask and weighted static score."""

    __slots__ = ("estimate", "static", "score", "matrix", "order", "first", "predictions")

    def __init__(self, estimate: Estimate, static, score, matrix, order: list[int], predictions: np.ndarray | None):
        self.estimate = estimate
        self.static = static
        self.score = score  # +inf outside `static`
        self.matrix = matrix  # raw static scores [scores, sites]
        self.order = order  # the statically feasible sites, best score first (lowest index on ties)
        self.first = order[0] if order else -1  # the best of them (-1: none)
        self.predictions = predictions  # [sites, len(PREDICTED)] per site; None: read them from the estimate


class Day:
    """Cached per score key: the estimate and raw static scores for every start hour of the day at once (rows:
    24, or 1 for runs of a day or more), the predictions a placement reports, and each hour's estimate."""

    __slots__ = ("estimate", "matrix", "predictions", "rows")

    def __init__(self, estimate: Estimate, matrix: np.ndarray):
        self.estimate = estimate  # hour-dependent fields [rows, sites]
        self.matrix = matrix  # [rows, scores, sites]
        shape = estimate.cost_cny.shape
        cols = [np.broadcast_to(getattr(estimate, name), shape) for name in PREDICTED]
        self.predictions = np.stack(cols, axis=-1)  # [rows, sites, len(PREDICTED)]
        self.rows: list[Estimate | None] = [None] * shape[0]

    def row(self, r: int) -> Estimate:
        """The estimate of start-hour row r (built on first use)."""
        est = self.rows[r]
        if est is None:
            e = self.estimate
            est = self.rows[r] = replace(e, **{name: getattr(e, name)[r] for name in HOURLY_FIELDS})
        return est


class Shared:
    """Cached per (static mask, score key), shared by every signature with both: the day of the score key, the
    combined scores of every start hour and the best site of each, and the entry of each hour of day, built on
    first use (its site order sorted only when read)."""

    __slots__ = ("static", "day", "totals", "k", "firsts", "entries")

    def __init__(self, static: np.ndarray, day: Day, totals: np.ndarray, k: int):
        self.static, self.day, self.totals, self.k = static, day, totals, k  # k: statically feasible sites
        # A stable sort's first is the row's argmin when no total is NaN (a NaN sorts last but is argmin's pick).
        self.firsts = None if np.isnan(totals).any() else totals.argmin(axis=-1).tolist()
        self.entries: list[Entry | None] = [None] * 24

    def entry(self, hour: int) -> Entry:
        """The entry for a start in `hour` of the day (0..23); a run of a day or more has one for every hour."""
        many = len(self.totals) > 1
        r = hour if many else 0
        day = self.day
        entry = DayEntry(day.row(r), self.static, self.totals[r], day.matrix[r], day.predictions[r], self.k)
        if self.firsts is None or not self.k:
            entry.first = entry.order[0] if entry.order else -1
        else:
            entry.first = self.firsts[r]
        if many:
            self.entries[hour] = entry
        else:
            self.entries[:] = [entry] * 24
        return entry


class DayEntry(Entry):
    """An Entry of a cached day whose site order (the k statically feasible sites, best first, lowest index on
    ties: a stable argsort of the total) is sorted when first read (an unset slot falls through to __getattr__)."""

    __slots__ = ("k",)

    def __init__(self, estimate: Estimate, static, score, matrix, predictions, k: int):
        self.estimate, self.static, self.score, self.matrix, self.predictions = (
            estimate,
            static,
            score,
            matrix,
            predictions,
        )
        self.k = k

    def __getattr__(self, name: str):
        if name != "order":
            raise AttributeError(name)
        value = self.order = np.argsort(self.score, kind="stable")[: self.k].tolist()
        return value
