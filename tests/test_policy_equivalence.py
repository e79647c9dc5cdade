"""One scheduler: the same job stream through the simulator and through the service (SQLite, a controlled
clock) gets the same placements - site and start hour - and the same rejections under every policy.

Five small sites (64 cores, 2 cards each) and runs longer than the stream, so capacity binds and nothing
completes while it is compared: the online pipelines queue, batch-lp plans windows (a start may be shifted where
a later hour is cheaper; on this stream the plan starts every job at once) and falls back to the online pipeline,
and both drivers must agree on each of those steps. The service is ticked at every arrival and every whole hour
(batch-lp's windows and slots: one hour, from the first arrival at hour 0).

One difference is by design and kept out of the stream: the service retries a queued job at every tick, the
simulator when room frees, so a queued job whose deadline passes is rejected at different hours (deadline
slack here outlasts the stream).
"""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from test_service_fixtures import build_world, make_service

from suanwang.scheduler import POLICIES, SchedulerContext
from suanwang.service import sites
from suanwang.service.db import JobRow, SiteRow, Tenant
from suanwang.service.placement import to_job, to_site
from suanwang.sim.records import REJECTED
from suanwang.sim.simulator import Simulation

KEEP = ("beijing-dc", "tianjin-dc", "hebei-dc", "zhangjiakou", "guian")
HORIZON_H = 8
ORIGINS = ("北京", "天津", "石家庄", "保定", "许昌")


def stream(n: int = 36, seed: int = 5) -> list[tuple[float, dict]]:
    """(submit hour on a quarter-hour grid, API body) in submit order; the first at hour 0."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        submit = 0.0 if i == 0 else rng.randrange(0, 4 * HORIZON_H) / 4
        body = {
            "origin": rng.choice(ORIGINS),
            "cpu_cores": rng.choice((8, 16, 32)),
            "gpu_cards": rng.choice((0, 0, 1)),
            "runtime_h": rng.choice((30.0, 40.0)),
            "input_gb": rng.choice((0.0, 20.0, 200.0)),
            "latency_class": rng.choice(("batch", "batch", "interactive", "realtime")),
            "data_class": rng.choice(("public", "public", "internal", "sensitive")),
        }
        if body["latency_class"] == "batch" and rng.random() < 0.3:
            body["deadline_h"] = body["runtime_h"] + rng.choice((10.0, 16.0))  # slack beyond the stream (see doc)
        out.append((submit, body))
    return sorted(out, key=lambda x: x[0])


def through_service(policy: str, tmp_path) -> tuple[dict, set, list]:
    """({job id: (site, hour placed)}, rejected ids, the jobs as the scheduler saw them) from the service."""
    svc = make_service(f"sqlite:///{tmp_path / f'{policy}.db'}", tmp_path / policy, policy=policy, batch_size=1000)
    w = build_world(svc)
    with svc.sessions() as s, s.begin():  # a small world: five sites of 64 cores and 2 cards
        s.execute(sa.delete(SiteRow).where(SiteRow.id.not_in(KEEP)))
        s.execute(sa.update(SiteRow).values(cpu_cores=64, gpu_cards=2))
    events = stream()
    placed, rejected = {}, set()
    ticks = sorted({t for t, _ in events} | set(map(float, range(HORIZON_H + 1))))
    for t in ticks:
        for _, body in (e for e in events if e[0] == t):
            r = w.client.post("/api/v1/jobs", json=body, headers=w.acme)
            assert r.status_code == 201, r.text
            with svc.sessions() as s, s.begin():
                s.execute(sa.update(JobRow).where(JobRow.id == r.json()["id"]).values(submit_h=t))
        svc.loop.clock = lambda t=t: t
        svc.loop.place()
        with svc.sessions() as s:
            for jid, state, site in s.execute(sa.select(JobRow.id, JobRow.state, JobRow.site_id)):
                if state == "placed" and jid not in placed:
                    placed[jid] = (site, t)
                elif state == "rejected":
                    rejected.add(jid)
    with svc.sessions() as s:
        rows = s.execute(sa.select(JobRow, Tenant.name).join(Tenant).order_by(JobRow.seq)).all()
        jobs = [to_job(row, tenant) for row, tenant in rows]
        site_list = [to_site(r) for r in sites.all_sites(s)]
    svc.close()
    return placed, rejected, (jobs, site_list)


@pytest.mark.parametrize("policy", POLICIES)
def test_simulator_and_service_place_the_same_stream_alike(policy, tmp_path):
    placed, rejected, (jobs, site_list) = through_service(policy, tmp_path)
    from suanwang.atlas import load_atlas

    ctx = SchedulerContext.build(load_atlas(), sites=site_list)  # the service's sites, in its order
    run = Simulation(ctx, jobs, policy, horizon_h=HORIZON_H).run()
    first: dict[str, tuple[str, float]] = {}
    for idx, site, start in zip(run.segments.job, run.segments.site, run.segments.start_h, strict=True):
        first.setdefault(jobs[idx].id, (ctx.site_ids[site], float(start)))
    sim_placed = {jid: v for jid, v in first.items() if v[1] <= HORIZON_H}
    sim_rejected = {
        j.id for j, s, e in zip(jobs, run.status, run.end_h, strict=True) if s == REJECTED and e <= HORIZON_H
    }
    assert placed == sim_placed
    assert rejected == sim_rejected
    assert 0 < len(placed) < len(jobs)  # capacity binds: some jobs still wait at the end
