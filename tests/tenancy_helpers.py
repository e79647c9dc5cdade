"""What the tenancy tests share: the national atlas (loaded once), contexts over a few of its sites, and a job
whose users are in Shanghai (an adcode and a province, as a job file gives them)."""

from __future__ import annotations

from functools import cache

from suanwang.atlas import load_atlas
from suanwang.scheduler import SchedulerContext
from suanwang.workload.job import Job


@cache
def atlas():
    """The national atlas, loaded once per test process."""
    return load_atlas()


@cache
def context_of(*site_ids: str) -> SchedulerContext:
    """A scheduler context over these atlas sites only (few sites: quotas and capacity bind)."""
    a = atlas()
    return SchedulerContext.build(a, sites=[a.site(s) for s in site_ids])


def shanghai_job(job_id: str, tenant: str, cores: int, runtime_h: float = 1.0, submit_h: float = 0.0, **kw) -> Job:
    """A job of `tenant` from Shanghai's users: `cores` CPU cores for `runtime_h` hours, submitted at `submit_h`
    (other Job fields by keyword, e.g. gpu_cards, latency_class)."""
    sh = atlas().place("上海")
    fields = {"latency_class": "batch", **kw}
    return Job(
        id=job_id,
        origin=sh.adcode,
        origin_province=sh.province_id,
        cpu_cores=cores,
        runtime_h=runtime_h,
        submit_h=submit_h,
        tenant=tenant,
        **fields,
    )
