"""Quotas: sites where the job alone would pass one of its tenant's quota rules (job stage), and sites where
placing it now would (dynamic stage); reasons name the rule. Usage is the state's QuotaBook (None: no quotas)."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin


def _reason(cs: CycleState, i: int, now: bool) -> str:
    job, book = cs.job, cs.state.quotas
    b = book.breaking(job, i, now) if book is not None else None
    if b is None:
        return "quota: no rule breaks"
    r, need = b.rule, f"{job.cpu_cores} cores {job.gpu_cards} cards"
    if now and b.lent(job.cpu_cores, job.gpu_cards):
        p = b.pool
        return (
            f"quota {r.id}: tenant {r.tenant} {r.text()}; its room is lent out in cohort {p.cohort} "
            f"({p.cores}/{p.cap_cores} cores, {p.cards}/{p.cap_cards} cards in use), job needs {need}"
        )
    if now:
        return f"quota {r.id}: tenant {r.tenant} {r.text()}; {b.cores} cores {b.cards} cards in use, job needs {need}"
    return f"quota {r.id}: tenant {r.tenant} {r.text()}; the job alone needs {need}"


class QuotaLimitFilter(FilterPlugin):
    """Sites where no quota rule of the job's tenant caps less than the job alone (it could run there some day)."""

    name = "quota-limit"
    stage = "job"
    job_fields = ("tenant", "cpu_cores", "gpu_cards")

    def filter(self, cs: CycleState) -> np.ndarray:
        book = cs.state.quotas
        mask = book.ever(cs.job) if book is not None else None
        return cs.ctx.all_sites if mask is None else mask

    def admits(self, cs: CycleState, i: int) -> bool:
        book = cs.state.quotas
        return book is None or book.breaking(cs.job, i, now=False) is None

    def reason(self, cs: CycleState, i: int) -> str:
        return _reason(cs, i, now=False)


class QuotaFilter(FilterPlugin):
    """Sites where placing the job now keeps its tenant within every quota rule (usage: the state's QuotaBook)."""

    name = "quota"
    stage = "dynamic"
    job_fields = ("tenant", "cpu_cores", "gpu_cards")

    def filter(self, cs: CycleState) -> np.ndarray:
        book = cs.state.quotas
        mask = book.room(cs.job) if book is not None else None
        return cs.ctx.all_sites if mask is None else mask

    def admits(self, cs: CycleState, i: int) -> bool:
        book = cs.state.quotas
        return book is None or book.breaking(cs.job, i) is None

    def reason(self, cs: CycleState, i: int) -> str:
        return _reason(cs, i, now=True)
