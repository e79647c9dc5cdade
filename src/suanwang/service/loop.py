"""The scheduling loop: claim queued jobs, place them, dispatch, poll, and watch site heartbeats.

Every step is its own short transaction. On PostgreSQL rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED,
so replicas sharing one database never handle the same job at once; the capacity read-and-reserve is serialised
across replicas by a transaction-scoped advisory lock. SQLite has a single writer (BEGIN IMMEDIATE).
Dispatch is at-least-once: a crash between starting a job and committing 'running' starts it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from suanwang.service import agents, audit, sites, tenancy
from suanwang.service.config import ServiceConfig
from suanwang.service.convert import finite, now_h
from suanwang.service.db import JobRow, SiteRow, Tenant, fault_reason, pg_unnest, utcnow
from suanwang.service.errors import DB_FAULTS
from suanwang.service.executors import ExecRequest, Executor
from suanwang.service.failover import mark_down
from suanwang.service.placement import Placer, explanation_text, to_site
from suanwang.service.prometheus import ServiceMetrics

log = logging.getLogger("suanwang.service")
CAPACITY_LOCK_KEY = 0x5A3E_0002  # arbitrary constant key for pg_advisory_xact_lock
DECIDED = ("state", "site_id", "reason", "policy", "cost_cny", "energy_kwh", "carbon_kg", "latency_ms", "transfer_h")
DECISION = (*DECIDED, "verdicts", "updated_at", "finished_at")
STARTED = ("state", "executor_ref", "started_at", "updated_at")
ENDED = ("state", "exit_code", "reason", "finished_at", "updated_at")
UNFINISHED = ("queued", "placed", "running")


def _update_jobs(conn: sa.Connection, changes: list[dict], names: tuple[str, ...]) -> None:
    """Set the columns `names` of each job in `changes` ({"seq": ..., name: value, ...}) in the caller's
    transaction: one UPDATE ... FROM unnest(...) on PostgreSQL, an executemany UPDATE elsewhere. Values of JSON
    columns come already encoded, as JSON text."""
    if not changes:
        return
    t = JobRow.__table__
    is_json = {n: isinstance(t.c[n].type, sa.JSON) for n in names}
    if conn.dialect.name != "postgresql":
        binds = {n: sa.bindparam(n, type_=sa.Text) if is_json[n] else sa.bindparam(n) for n in names}
        stmt = sa.update(t).where(t.c.seq == sa.bindparam("b_seq")).values(binds)
        conn.execute(stmt, [{"b_seq": c["seq"], **{n: c[n] for n in names}} for c in changes])
        return
    sets = ", ".join(f"{n} = u.{n}::json" if is_json[n] else f"{n} = u.{n}" for n in names)
    sql = f"UPDATE jobs SET {sets} FROM {pg_unnest(t, ('seq', *names))} WHERE jobs.seq = u.seq"
    params = [[c["seq"] for c in changes]] + [[c[n] for c in changes] for n in names]
    conn.exec_driver_sql(sql, tuple(params))


def _event(actor: str, action: str, job_id: str, at, **detail) -> dict:
    """One audit row (for a Core executemany INSERT)."""
    return {"at": at, "actor": actor, "action": action, "object": f"job:{job_id}", "detail": detail}


class SchedulingLoop:
    """One replica's loop. `tick()` runs every step once (tests call it directly); `start()` runs it in a thread."""

    def __init__(
        self,
        sessions: sessionmaker,
        placer: Placer,
        executors: dict[str, Executor],
        cfg: ServiceConfig,
        metrics: ServiceMetrics | None = None,
        clock: Callable[[], float] = now_h,
    ):
        self.sessions = sessions
        self.metrics = metrics or ServiceMetrics()
        self.clock = clock  # the scheduler's clock, hours (see convert.now_h); tests set their own
        self.placer = placer
        self.tenancy = tenancy.TenancyCache(placer.atlas)  # the stored tenancy document, parsed per version
        self.executors = executors
        self.cfg = cfg
        self.actor = f"{audit.SYSTEM}@{cfg.replica}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _claim(self, session: Session, stmt):
        if session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=JobRow.__table__)
        return stmt

    def tick(self, busy: bool = False) -> dict[str, int]:
        """Run each step once; returns how many jobs or sites each step touched.

        busy=True (the previous tick had a full batch): only place and dispatch, so a burst of submissions is
        placed without re-polling the same running jobs and re-reading heartbeats between batches.
        """
        return {
            "down": 0 if busy else self.watch_heartbeats(),
            "placed": self.place(),
            "started": self.dispatch(),
            "finished": 0 if busy else self.poll(),
        }

    def _queued(self, seqs: list[int] | None = None):
        """The claim of queued jobs: the first `batch_size` by priority, then age; or (a tenancy's fair-share
        order chose them) the queued ones among `seqs`."""
        jobs_t = JobRow.__table__
        stmt = (
            sa.select(*(c for c in jobs_t.c if c.name != "verdicts"), Tenant.name.label("tenant_name"))
            .join(Tenant)
            .where(jobs_t.c.state == "queued")
            .order_by(jobs_t.c.priority.desc(), jobs_t.c.seq)
        )
        return stmt.limit(self.cfg.batch_size) if seqs is None else stmt.where(jobs_t.c.seq.in_(seqs))

    def _fair_heads(self, s: Session, rules, site_rows, at_h: float):
        """(seqs, fair share): the `batch_size` queued jobs to try next in fair-share order (FairShare.key: the
        tenant's share, then priority, then age), among the first `batch_size` of each tenant (light rows, nothing
        locked). Jobs that their tenant's quotas bar at every site now come after all others (in the same order):
        they would hold the batch while other tenants' jobs could run, and still get their reason when the batch
        has room for them."""
        fair = tenancy.fair_share(s, rules, *tenancy.network_totals(s), at_h)
        t = JobRow.__table__
        rank = sa.func.row_number().over(partition_by=t.c.tenant_id, order_by=(t.c.priority.desc(), t.c.seq))
        cols = (t.c.seq, t.c.priority, t.c.submit_h, t.c.cpu_cores, t.c.gpu_cards, Tenant.name)
        heads = (
            sa.select(*cols, rank.label("rank"))
            .join(Tenant, Tenant.id == t.c.tenant_id)
            .where(t.c.state == "queued")
            .subquery()
        )
        picked = [heads.c[c.name] for c in cols]
        rows = s.execute(sa.select(*picked).where(heads.c.rank <= self.cfg.batch_size)).all()
        book = tenancy.quota_book(rules, [to_site(r) for r in site_rows], tenancy.holdings(s), self.placer.atlas.hubs)
        rows.sort(
            key=lambda r: (
                tenancy.barred(book, r.name, r.cpu_cores, r.gpu_cards),  # barred jobs only fill what room is left
                tenancy.order_key(fair, r.name, r.priority, r.submit_h, r.seq, at_h),
            )
        )
        return [r.seq for r in rows[: self.cfg.batch_size]], fair

    def place(self) -> int:
        """Claim up to `batch_size` queued jobs (priority, then age; with a tenancy in fair-share order across
        tenants, then priority, then age), place them within the tenants' quotas, record the explanation.

        Core statements, not the ORM: one SELECT claims the batch, one executemany UPDATE stores every decision and
        one executemany INSERT its audit events.
        """
        jobs_t = JobRow.__table__
        with self.sessions() as s, s.begin():
            tenants = self.tenancy.current(s)
            at_h = self.clock()
            seqs, fair, site_rows = None, None, None
            if tenants is not None:  # the fair-share order from the holds ledger (reads only)
                site_rows = sites.all_sites(s)
                seqs, fair = self._fair_heads(s, tenants, site_rows, at_h)
                if not seqs:
                    return 0
            claimed = s.execute(self._claim(s, self._queued(seqs))).all()
            if not claimed:
                return 0
            if s.bind.dialect.name == "postgresql":
                s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CAPACITY_LOCK_KEY})
            unfinished = ()
            if self.placer.windowed:  # plans and holds of jobs that left are let go
                unfinished = s.scalars(sa.select(jobs_t.c.id).where(jobs_t.c.state.in_(UNFINISHED))).all()
            site_rows = site_rows or sites.all_sites(s)  # with a tenancy: as read for the order, just before
            holdings = ()
            if tenants is not None:  # quota usage from the jobs; the ledger's writes under the capacity lock
                claimed.sort(key=lambda r: tenancy.order_key(fair, r.tenant_name, r.priority, r.submit_h, r.seq, at_h))
                tenancy.settle(s, tenants, at_h)
                holdings = tenancy.holdings(s)
            decisions = self.placer.place(
                [(r, r.tenant_name) for r in claimed],
                site_rows,
                sites.held(s),
                at_h,
                unfinished,
                waiting=sites.held(s, ("placed",)),
                tenancy=tenants,
                holdings=holdings,
            )
            now = utcnow()
            changes, events = [], []
            for row, d in zip(claimed, decisions, strict=True):
                change = {
                    "seq": row.seq,
                    "state": row.state,
                    "site_id": row.site_id,
                    "reason": d.reason,
                    "policy": d.policy or self.placer.policy_name,
                    "cost_cny": row.cost_cny,
                    "energy_kwh": row.energy_kwh,
                    "carbon_kg": row.carbon_kg,
                    "latency_ms": row.latency_ms,
                    "transfer_h": row.transfer_h,
                    "verdicts": explanation_text(d),
                    "updated_at": now,
                    "finished_at": row.finished_at,
                }
                if d.placement is not None:
                    p = d.placement
                    change.update(
                        state="placed",
                        site_id=p.site_id,
                        cost_cny=finite(p.cost_cny),
                        energy_kwh=finite(p.energy_kwh),
                        carbon_kg=finite(p.carbon_kg),
                        latency_ms=finite(p.latency_ms),
                        transfer_h=finite(p.transfer_h),
                    )
                    events.append(
                        _event(self.actor, "place", row.id, now, site_id=p.site_id, cost_cny=change["cost_cny"])
                    )
                    self.metrics.placed(p.site_id, (now - row.created_at).total_seconds())
                elif not d.retryable:  # a retryable job stays queued (with the reason) until capacity frees
                    change.update(state="rejected", finished_at=now)
                    events.append(_event(self.actor, "reject", row.id, now, reason=d.reason))
                changes.append(change)
            _update_jobs(s.connection(), changes, DECISION)
            audit.record_many(s.connection(), events)
            if tenants is not None:
                took = [
                    (r.seq, r.tenant_id, int(r.cpu_cores), int(r.gpu_cards))
                    for r, d in zip(claimed, decisions, strict=True)
                    if d.placement is not None
                ]
                tenancy.record_holds(s, took, at_h)
            return len(events) - sum(e["action"] == "reject" for e in events)

    def dispatch(self) -> int:
        """Hand placed jobs to their site's executor and mark them running."""
        t = JobRow.__table__
        cols = (t.c.seq, t.c.id, t.c.command, t.c.cpu_cores, t.c.gpu_cards, t.c.runtime_h, t.c.site_id)
        cols += (t.c.mem_gb, t.c.output_gb)
        with self.sessions() as s, s.begin():
            rows = s.execute(
                self._claim(
                    s,
                    sa.select(*cols, SiteRow.executor)
                    .join(SiteRow, SiteRow.id == t.c.site_id)
                    .where(t.c.state == "placed", SiteRow.executor.in_(list(self.executors)))
                    .order_by(t.c.seq)
                    .limit(self.cfg.batch_size),
                )
            ).all()
            now = utcnow()
            changes, ended, events = [], [], []
            for r in rows:
                ex = self.executors[r.executor]
                try:
                    ref = ex.submit(
                        ExecRequest(
                            r.id, r.command, int(r.cpu_cores), int(r.gpu_cards), r.runtime_h, r.mem_gb, r.output_gb
                        )
                    )
                except (OSError, ValueError) as e:  # the engine refused it: the job fails with the engine's words
                    self.metrics.dispatch_failed(r.site_id)
                    failed = {"state": "failed", "exit_code": None, "reason": f"engine rejected it: {e}"}
                    ended.append({"seq": r.seq, **failed, "finished_at": now, "updated_at": now})
                    events.append(_event(self.actor, "fail", r.id, now, site_id=r.site_id, reason=failed["reason"]))
                    continue
                started = {"state": "running", "executor_ref": f"{ex.name}:{ref}", "started_at": now, "updated_at": now}
                changes.append({"seq": r.seq, **started})
                events.append(_event(self.actor, "start", r.id, now, site_id=r.site_id, executor=ex.name))
            _update_jobs(s.connection(), changes, STARTED)
            _update_jobs(s.connection(), ended, ENDED)
            audit.record_many(s.connection(), events)
            return len(rows)

    def poll(self) -> int:
        """Ask executors about running jobs; record the ones that ended as done or failed."""
        t = JobRow.__table__
        with self.sessions() as s, s.begin():
            rows = s.execute(
                self._claim(
                    s,
                    sa.select(t.c.seq, t.c.id, t.c.executor_ref, t.c.site_id)
                    .join(SiteRow, SiteRow.id == t.c.site_id)
                    .where(t.c.state == "running", SiteRow.executor.in_(list(self.executors)))
                    .order_by(t.c.seq)
                    .limit(1000),
                )
            ).all()
            now = utcnow()
            changes, events = [], []
            for r in rows:
                name, _, ref = (r.executor_ref or "").partition(":")
                ex = self.executors.get(name)
                if ex is None:
                    continue
                st = ex.poll(ref)
                if st.state == "running":
                    continue
                ended = {"state": st.state, "exit_code": st.exit_code, "reason": st.message}
                changes.append({"seq": r.seq, **ended, "finished_at": now, "updated_at": now})
                action = "finish" if st.state == "done" else "fail"
                events.append(_event(self.actor, action, r.id, now, exit_code=st.exit_code, site_id=r.site_id))
            _update_jobs(s.connection(), changes, ENDED)
            audit.record_many(s.connection(), events)
            return len(changes)

    def watch_heartbeats(self) -> int:
        """Mark monitored sites silent for longer than the timeout down and re-queue their jobs; fail (and retry
        elsewhere) the running jobs of agent sites silent for longer than `agent_lost_s`."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.cfg.heartbeat_timeout_s)
        with self.sessions() as s, s.begin():
            stale = s.scalars(
                sa.select(SiteRow)
                .where(SiteRow.monitored, SiteRow.status == "up", SiteRow.last_heartbeat < cutoff)
                .with_for_update(skip_locked=True)
            ).all()
            for site in stale:
                why = f"no heartbeat for {self.cfg.heartbeat_timeout_s:g} s"
                mark_down(s, site, self.executors, self.actor, why, self.cfg.max_attempts)
            lost_cutoff = now - timedelta(seconds=self.cfg.agent_lost_s)
            agents.lost_running(s, lost_cutoff, self.actor, self.cfg.max_attempts)
            return len(stale)

    def _run(self) -> None:
        busy, last_full = False, 0.0
        while not self._stop.is_set():
            try:
                # during a burst, heartbeats and polling still run at least once per loop interval
                skip = busy and time.monotonic() - last_full < self.cfg.loop_interval_s
                if not skip:
                    last_full = time.monotonic()
                done = self.tick(busy=skip)
                busy = max(done["placed"], done["started"]) >= self.cfg.batch_size  # more is waiting: go on
            except DB_FAULTS as e:  # the database is down, full or read-only: one line, and retry next tick
                log.warning("scheduling loop tick failed, database unavailable: %s", fault_reason(e))
                busy = False
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("scheduling loop tick failed")
                busy = False
            self._stop.wait(0 if busy else self.cfg.loop_interval_s)

    def start(self) -> None:
        """Run ticks in a daemon thread until `stop()`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="suanwang-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish its tick and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
