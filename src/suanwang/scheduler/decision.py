"""What a scheduling decision returns: the placement with its predicted cost and carbon, and why."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class Placement(NamedTuple):
    """Job -> site at start_h, with predictions: CNY, kWh, kgCO2, one-way ms, transfer hours, transfer GB.

    A typed, immutable record (a NamedTuple: built by one tuple allocation, about a third of the time of a frozen
    dataclass, whose constructor sets each field through object.__setattr__ - a large share of a cached
    decision's time)."""

    job_id: str
    site_id: str
    site_index: int
    start_h: float
    cost_cny: float
    energy_kwh: float
    carbon_kg: float
    latency_ms: float
    transfer_h: float
    transfer_gb: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """One site's verdict for one job: passed or the rule that rejected it, and its scores."""

    site_id: str
    passed: bool
    reason: str = ""  # e.g. "residency R2: data class sensitive, site in gansu != henan"
    scores: dict[str, float] = field(default_factory=dict)


class Explanation:
    """Why every site was or was not chosen, kept as columns over sites (the scheduler's own arrays, not copied):
    the first rule that rejected each site ('' when it passed), its raw static scores (in each score's unit) and
    its weighted total (lower is better; +inf where a static rule rejected it). `verdicts()` gives one Verdict
    per site; `columns()` the JSON-ready columnar form the service stores (about 10x cheaper to build)."""

    __slots__ = ("site_ids", "reasons", "score_names", "matrix", "total")

    def __init__(
        self,
        site_ids: Sequence[str],
        reasons: list[str],
        score_names: Sequence[str],
        matrix: np.ndarray,
        total: np.ndarray,
    ):
        self.site_ids = site_ids
        self.reasons = reasons
        self.score_names = tuple(score_names)
        self.matrix = matrix  # [scores, sites]
        self.total = total  # [sites]

    def verdicts(self) -> list[Verdict]:
        """One Verdict per site, in site order: scores by name, and 'total' where it is finite."""
        rows = self.matrix.tolist()
        totals = self.total.tolist()
        out = []
        for i, site_id in enumerate(self.site_ids):
            scores = {name: row[i] for name, row in zip(self.score_names, rows, strict=True)}
            if math.isfinite(totals[i]):
                scores["total"] = totals[i]
            out.append(Verdict(site_id, not self.reasons[i], self.reasons[i], scores))
        return out

    def columns(self) -> dict:
        """{"sites": [...], "reasons": [...], "scores": {name: [...]}, "total": [...]}: one list per column, in site
        order, floats as Python floats (a JSON encoder writes the non-finite ones as null)."""
        return {
            "sites": list(self.site_ids),
            "reasons": self.reasons,
            "scores": dict(zip(self.score_names, self.matrix.tolist(), strict=True)),
            "total": self.total.tolist(),
        }


def verdicts_from_columns(columns: dict) -> list[dict]:
    """`Explanation.columns()` (after a JSON round trip: non-finite numbers as None) as one verdict dict per site:
    {"site_id", "passed", "reason", "scores": {name: value, "total": value where it is finite}}."""
    names = list(columns["scores"])
    rows = [columns["scores"][n] for n in names]
    out = []
    columns_by_site = zip(columns["sites"], columns["reasons"], columns["total"], strict=True)
    for i, (site_id, reason, total) in enumerate(columns_by_site):
        scores = {n: row[i] for n, row in zip(names, rows, strict=True)}
        if total is not None:
            scores["total"] = total
        out.append({"site_id": site_id, "passed": not reason, "reason": reason, "scores": scores})
    return out


@dataclass
class Decision:
    """The outcome for one job: a placement, or None with `reason`; `explanation` says why, for every site."""

    job_id: str
    placement: Placement | None
    reason: str = ""
    explanation: Explanation | None = None
    policy: str = ""
    retryable: bool = False  # True: some site passes every static rule but none has room now - keep it queued

    @property
    def placed(self) -> bool:
        return self.placement is not None

    @property
    def verdicts(self) -> list[Verdict] | None:
        """Every site's Verdict (built from the explanation on each call); None when not explained."""
        return None if self.explanation is None else self.explanation.verdicts()
