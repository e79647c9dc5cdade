"""Cluster state: what each site has free now. Shared by the simulator and the service."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanwang.atlas.model import Site
from suanwang.scheduler.quotas import QuotaBook
from suanwang.workload.job import Job


@dataclass
class ClusterState:
    """Free and total capacity per site (arrays aligned with `sites`), and whether each site is up."""

    sites: list[Site]
    cpu_total: np.ndarray
    gpu_total: np.ndarray
    cpu_free: np.ndarray
    gpu_free: np.ndarray
    up: np.ndarray
    quotas: QuotaBook | None = None  # per-tenant quota usage, counted by reserve / release (None: no quotas)

    @classmethod
    def from_sites(cls, sites: list[Site], quotas: QuotaBook | None = None) -> ClusterState:
        """A fresh state with every site up and empty (`quotas`: a fresh book to count tenants' usage in)."""
        cpu = np.array([s.cpu_cores for s in sites], dtype=np.int64)
        gpu = np.array([s.gpu_cards for s in sites], dtype=np.int64)
        return cls(list(sites), cpu, gpu, cpu.copy(), gpu.copy(), np.ones(len(sites), dtype=bool), quotas)

    def index(self, site_id: str) -> int:
        """Position of the site `site_id` in the arrays."""
        for i, s in enumerate(self.sites):
            if s.id == site_id:
                return i
        raise KeyError(site_id)

    def fits(self, job: Job) -> np.ndarray:
        """Boolean vector over sites: up and enough free cores and cards for `job` now."""
        return self.up & (self.cpu_free >= job.cpu_cores) & (self.gpu_free >= job.gpu_cards)

    def could_ever_fit(self, job: Job) -> np.ndarray:
        """Boolean vector over sites: total capacity is enough for `job` (so it may queue there)."""
        return (self.cpu_total >= job.cpu_cores) & (self.gpu_total >= job.gpu_cards)

    def reserve(self, i: int, job: Job) -> None:
        """Take `job`'s cores and cards at site i; refuses to go below zero."""
        cpu, gpu = job.cpu_cores, job.gpu_cards
        cpu_free, gpu_free = self.cpu_free.item(i), self.gpu_free.item(i)  # Python ints: cheaper than numpy scalars
        if cpu_free < cpu or gpu_free < gpu:
            raise ValueError(f"site {self.sites[i].id} lacks capacity for job {job.id}")
        if cpu:
            self.cpu_free[i] = cpu_free - cpu
        if gpu:
            self.gpu_free[i] = gpu_free - gpu
        if self.quotas is not None:
            self.quotas.add(i, job, 1)

    def release(self, i: int, job: Job) -> None:
        """Give `job`'s cores and cards back to site i (never above the total)."""
        if job.cpu_cores:
            self.cpu_free[i] = min(self.cpu_total.item(i), self.cpu_free.item(i) + job.cpu_cores)
        if job.gpu_cards:
            self.gpu_free[i] = min(self.gpu_total.item(i), self.gpu_free.item(i) + job.gpu_cards)
        if self.quotas is not None:
            self.quotas.add(i, job, -1)

    def utilisation(self) -> np.ndarray:
        """Busy fraction per site: the larger of CPU and GPU utilisation."""
        cpu = 1.0 - self.cpu_free / np.maximum(self.cpu_total, 1)
        gpu = np.where(self.gpu_total > 0, 1.0 - self.gpu_free / np.maximum(self.gpu_total, 1), 0.0)
        return np.maximum(cpu, gpu)
