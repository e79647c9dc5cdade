"""The one place the service calls the scheduler: database rows in, scheduler Decisions out.

The same `SchedulerContext` / policy / `ClusterState` the simulator uses; only the source of the state differs
(site rows minus the capacity held by placed and running jobs). A windowed policy (batch-lp) is driven through
`windows.Windows`, the service's counterpart of the simulator's plans and holds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import pydantic_core

from suanwang.atlas import Atlas, Site
from suanwang.errors import SuanwangError
from suanwang.policy.quotas import Tenancy
from suanwang.scheduler.decision import Decision, verdicts_from_columns
from suanwang.scheduler.state import ClusterState
from suanwang.service.db import JOB_COLUMNS, JobRow, SiteRow
from suanwang.service.sites import room
from suanwang.service.tenancy import quota_book
from suanwang.service.windows import Windows
from suanwang.workload.job import Job

COMMANDS_LABEL = "suanwang:commands"  # the scheduler's label of sites that run tenants' commands


def to_site(row: SiteRow, embedded: tuple[str, ...] = ("local",)) -> Site:
    """The scheduler's Site for a site row. Sites that may run commands (embedded ones: the service's own
    setting; agent sites: their operator's) carry COMMANDS_LABEL, which every job with a command requires."""
    labels = tuple(row.labels or ())
    if row.executor in embedded or row.allow_commands:
        labels = (*labels, COMMANDS_LABEL)
    return Site(
        id=row.id,
        name_zh=row.name_zh,
        name_en=row.name_en,
        kind=row.kind,
        province_id=row.province_id,
        lat=row.lat,
        lon=row.lon,
        pue=row.pue,
        green_share=row.green_share,
        cpu_cores=int(row.cpu_cores),
        gpu_cards=int(row.gpu_cards),
        price_cny_per_kwh=row.price_cny_per_kwh,
        role=row.role,
        hub_id=row.hub_id,
        labels=labels,
    )


def to_job(row: JobRow, tenant: str) -> Job:
    """The scheduler's Job for a job row (every column of db.JOB_COLUMNS); the deadline becomes absolute (hours on
    the scheduler clock), and a job with a command needs COMMANDS_LABEL."""
    values = {f: getattr(row, f) for f in JOB_COLUMNS}
    values.update(
        cpu_cores=int(row.cpu_cores),
        gpu_cards=int(row.gpu_cards),
        deadline_h=None if row.deadline_h is None else row.submit_h + row.deadline_h,
        tenant=tenant,
        labels=(*(row.labels or ()), *((COMMANDS_LABEL,) if row.command is not None else ())),
    )
    return Job(**values)


def explanation_text(decision: Decision) -> str:
    """The decision's explanation as the JSON text the jobs table stores: `Explanation.columns()` (non-finite
    numbers as null), or [] when there is none. `verdicts_of` turns it back into one verdict per site."""
    why = decision.explanation
    return pydantic_core.to_json(why.columns() if why is not None else [], inf_nan_mode="null").decode()


def verdicts_of(stored: list | dict) -> list[dict]:
    """One verdict dict per site ({"site_id", "passed", "reason", "scores"}) from a stored explanation: the
    columnar form, or the per-site list rows placed before it were stored as."""
    return verdicts_from_columns(stored) if isinstance(stored, dict) else stored


class Placer:
    """Places jobs with a named policy; rebuilds the scheduler context only when the site set changes."""

    def __init__(self, atlas: Atlas, policy: str = "online", make_policy: Callable | None = None):
        self.atlas = atlas
        self.policy_name = policy
        self._make_policy = make_policy  # (name, ctx) -> policy; default: suanwang.scheduler.make_policy
        self._key: tuple | None = None
        self._ctx = None
        self._inner = None  # the named policy over the current site set
        self._policy = None  # it, wrapped with the tenancy's spill-over tiers when it has any
        self._spill: dict | None = None  # the spill-over the wrapper was built for
        self._windows: Windows | None = None  # a windowed policy's plans and holds (over the current site set)

    @property
    def windowed(self) -> bool:
        """Whether the policy defers jobs to plans (the loop then passes the ids of unfinished jobs)."""
        from suanwang.scheduler.registry import WINDOWED

        return self.policy_name in WINDOWED

    def _ensure(self, sites: list[Site], tenancy: Tenancy | None = None):
        key = tuple(sites)
        spill = (tenancy.spill_over or None) if tenancy is not None else None
        if key != self._key:
            from suanwang.scheduler.context import SchedulerContext

            make_policy = self._make_policy
            if make_policy is None:
                from suanwang.scheduler import make_policy
            self._ctx = SchedulerContext.build(self.atlas, sites=sites)
            self._inner = make_policy(self.policy_name, self._ctx)
            self._key, self._policy = key, None
        if self._policy is None or spill != self._spill:
            from suanwang.scheduler.registry import with_spill_over

            # the tenancy's ordered places per tenant, as the simulator applies them (unchanged without)
            self._policy, self._spill = with_spill_over(self._inner, self._ctx, tenancy), spill
            # plans and holds refer to site indices and to the policy: a new site set or new spill-over tiers
            # start afresh (deferred jobs are re-planned)
            self._windows = Windows(self._policy, len(sites)) if self._policy.window_h is not None else None
        return self._ctx, self._policy

    def policy_for(self, sites: list[Site], tenancy: Tenancy | None = None):
        """(scheduler context, policy) over `sites` (rebuilt only when the site set or the tenancy's spill-over
        changes)."""
        return self._ensure(sites, tenancy)

    def state(
        self,
        site_rows: list[SiteRow],
        held: dict[str, tuple[int, int]],
        waiting: dict[str, tuple[int, int]] | None = None,
        tenancy: Tenancy | None = None,
        holdings: Sequence = (),
    ) -> tuple[list[Site], ClusterState]:
        """The cluster state now: every site, up or down, with its free room (`sites.room`: declared capacity
        minus the (cores, cards) `held` by its jobs, or the capacity its agent read from the engine minus the
        placed jobs `waiting` to start there). With a `tenancy`, the state carries a QuotaBook counting
        `holdings` (service/tenancy.py `Held`: tenant, site_id, cores, cards held by placed and running jobs)."""
        sites = [to_site(r) for r in site_rows]
        book = None if tenancy is None else quota_book(tenancy, sites, holdings, self.atlas.hubs)
        state = ClusterState.from_sites(sites, book)
        waiting = waiting or {}
        for i, row in enumerate(site_rows):
            cpu, cpu_free, gpu, gpu_free = room(row, held.get(row.id, (0, 0)), waiting.get(row.id, (0, 0)))
            state.cpu_total[i], state.cpu_free[i], state.gpu_total[i], state.gpu_free[i] = cpu, cpu_free, gpu, gpu_free
            state.up[i] = row.status == "up"
        return sites, state

    def place(
        self,
        jobs: list[tuple[JobRow, str]],
        site_rows: list[SiteRow],
        held: dict[str, tuple[int, int]],
        at_h: float,
        unfinished: Collection[str] = (),
        waiting: dict[str, tuple[int, int]] | None = None,
        tenancy: Tenancy | None = None,
        holdings: Sequence = (),
    ) -> list[Decision]:
        """One decision per (job row, tenant name), in order; capacity taken by one job is gone for the next.
        `unfinished`: the ids of every queued, placed or running job (read by windowed policies only); `waiting`:
        (cores, cards) per site held by placed jobs not yet started. A job with `avoid_site` (a retry) sees that
        site as down (online policies). `tenancy` and `holdings`: the quotas and their usage (see `state`)."""
        sites, state = self.state(site_rows, held, waiting, tenancy, holdings)
        if not sites:
            return [Decision(r.id, None, "no sites registered", None, self.policy_name, True) for r, _ in jobs]
        _, policy = self._ensure(sites, tenancy)
        if self._windows is not None:
            return self._windows.place([to_job(row, tenant) for row, tenant in jobs], state, at_h, set(unfinished))
        index = {s.id: i for i, s in enumerate(sites)}
        out = []
        for row, tenant in jobs:
            avoid = index.get(getattr(row, "avoid_site", None))
            was_up = avoid is not None and bool(state.up[avoid])
            if was_up:
                state.up[avoid] = False
            try:
                out.append(policy.place(to_job(row, tenant), state, at_h, explain=True))
            except SuanwangError as e:
                out.append(Decision(row.id, None, str(e), None, self.policy_name, False))
            finally:
                if was_up:
                    state.up[avoid] = True
        return out
