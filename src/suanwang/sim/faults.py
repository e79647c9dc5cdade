"""The faults a simulation plays: site outages and cut links, and the cuts in force at a moment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanwang.workload.job import Job


@dataclass(frozen=True)
class Outage:
    """Site `site_id` is down from start_h to end_h (hours)."""

    site_id: str
    start_h: float
    end_h: float


@dataclass(frozen=True)
class LinkCut:
    """The link from data province `province_id` to site `site_id` is cut from start_h to end_h (hours)."""

    province_id: str
    site_id: str
    start_h: float
    end_h: float


class LinkCuts:
    """The links cut now: data province -> the site indices its data may not reach."""

    def __init__(self, site_province: np.ndarray):
        self.site_province = site_province
        self.cut: dict[str, set[int]] = {}

    def __bool__(self) -> bool:
        """Whether any link was ever cut (a cheap test before `blocked`)."""
        return bool(self.cut)

    def add(self, province_id: str, s: int) -> None:
        """Cut the link from `province_id` to site s."""
        self.cut.setdefault(province_id, set()).add(s)

    def restore(self, province_id: str, s: int) -> None:
        """Bring the link from `province_id` to site s back."""
        self.cut.get(province_id, set()).discard(s)

    def blocked(self, job: Job, up: np.ndarray) -> list[int]:
        """The sites (up now) `job` may not use because its data would travel over a cut link."""
        cut = self.cut.get(job.data_province) if self.cut else None
        if not cut or job.input_gb + job.output_gb <= 0:
            return []
        return [s for s in cut if self.site_province[s] != job.data_province and up[s]]
