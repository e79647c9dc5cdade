"""Trace-derived distributions (job shapes, runtimes) and trace replay.

The shipped tables in `workload/data` are derived from public traces by scripts/derive_distributions.py:
job_shapes.csv (Alibaba GPU 2023 pods: cores x cards) and runtime_quantiles.csv (Alibaba pod lifetimes and
Philly DL runtimes, hours). Sampling is by inverse CDF (runtimes) and by weight (shapes), with numpy.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from suanwang.atlas import Atlas
from suanwang.atlas.loader import read_csv
from suanwang.workload.io import load_jobs
from suanwang.workload.job import Job

DATA = importlib.resources.files("suanwang.workload") / "data"


@dataclass(frozen=True)
class Shapes:
    """Joint (cores, cards) shapes of trace pods with their frequency."""

    cpu_cores: np.ndarray
    gpu_cards: np.ndarray
    weight: np.ndarray  # sums to 1

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n draws of (cores, cards)."""
        i = rng.choice(len(self.weight), size=n, p=self.weight)
        return self.cpu_cores[i], self.gpu_cards[i]


@dataclass(frozen=True)
class Quantiles:
    """An empirical distribution as a quantile table: value at each probability level q (0..1)."""

    q: np.ndarray
    value: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n draws by inverse CDF (linear between the tabulated quantiles)."""
        return np.interp(rng.random(n), self.q, self.value)

    def mean(self) -> float:
        """The mean of the piecewise-linear distribution."""
        return float(np.trapezoid(self.value, self.q))


@cache
def job_shapes() -> Shapes:
    """The Alibaba 2023 pod shapes (cores, cards, share of pods)."""
    rows = read_csv(DATA / "job_shapes.csv")
    n = np.array([float(r["pods"]) for r in rows])
    return Shapes(
        np.array([int(r["cpu_cores"]) for r in rows]), np.array([int(r["gpu_cards"]) for r in rows]), n / n.sum()
    )


@cache
def runtimes() -> dict[str, Quantiles]:
    """Runtime quantile tables in hours, keyed by column: alibaba_lifetime_h, philly_runtime_h."""
    rows = read_csv(DATA / "runtime_quantiles.csv")
    q = np.array([float(r["q"]) for r in rows])
    cols = [c for c in rows[0] if c != "q"]
    return {c: Quantiles(q, np.array([float(r[c]) for r in rows])) for c in cols}


def replay(path: str | Path, atlas: Atlas | None = None) -> list[Job]:
    """Jobs of a trace file (CSV or JSON with the job-file columns), sorted by submit_h (stable)."""
    return sorted(load_jobs(path, atlas), key=lambda j: j.submit_h)
