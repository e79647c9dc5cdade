"""The control plane's side of site agents: site tokens, heartbeats with engine capacity, claims, reports, logs,
cancels, sites that go down, and the retry policy for runs an engine lost.

A site whose engine is not embedded (slurm, ray) is driven by its agent: the scheduling loop places jobs there but
never starts them; the agent claims them, submits them to its engine and reports what the engine says. Every change
is audited in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from suanwang.service import audit
from suanwang.service.auth import Role, new_token_string, store_token
from suanwang.service.db import AuditEvent, JobLog, JobRow, SiteRow, utcnow
from suanwang.service.errors import Conflict, Invalid
from suanwang.service.schemas import HeartbeatIn, ReportIn
from suanwang.service.sites import EMBEDDED, get, heartbeat

LOG_KEEP_BYTES = 262_144  # the last 256 KiB of a job's output are kept (an agent uploads at most that much)
ENDING_GRACE_S = 60.0  # an engine run the service saw end this recently is not an orphan yet (it may be ending)
OPERATOR_DOWN = "set down by an operator"  # why a site PATCHed to status down is down: heartbeats do not revive it


def owner_tag(site: SiteRow) -> str:
    """The tag a site's agent writes on every job it submits (Slurm comment, Ray metadata), so its orphan sweep
    touches only its own jobs: the site id (cleaned) and a digest of the id and the site's creation time, so a
    site of the same name in another service (or registered again) has another tag."""
    digest = hashlib.sha256(f"{site.id}|{site.created_at.isoformat()}".encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', site.id)[:40]}.{digest}"


def issue_token(session: Session, site_id: str, actor: str) -> str:
    """A new site token for `site_id` (the caller commits); the plain token is returned once."""
    site = get(session, site_id)
    if site.executor in EMBEDDED:
        raise Invalid(
            f"engine: site '{site_id}' runs on the embedded '{site.executor}' engine - PATCH its engine "
            "to slurm or ray before issuing an agent token",
            "engine",
        )
    token = new_token_string()
    row = store_token(session, token, Role.SITE, None, site_id)
    audit.record(session, actor, "token_create", f"token:{row.id}", role="site", site_id=site_id)
    return token


def agent_heartbeat(
    session: Session, site_id: str, body: HeartbeatIn, actor: str, max_attempts: int, lost_after_s: float = 600.0
) -> SiteRow:
    """Record an agent's heartbeat and the capacity it read. An engine that is not up takes the site down: its
    placed jobs (claimed or not) are re-placed elsewhere; its running jobs stay running, since the engine may still
    run them (slurmd goes on through a slurmctld outage) - the agent's polls decide their fate once the engine
    answers. Only while the engine stays unreachable for longer than `lost_after_s` seconds (counted from when the
    site went down) are its running jobs failed as lost and retried elsewhere (the bound on waiting)."""
    site = get(session, site_id, lock=True)
    if body.engine != site.executor:
        raise Conflict(
            f"engine: site '{site_id}' is bound to engine '{site.executor}', the agent drives "
            f"'{body.engine}' - start the agent with the site's engine or PATCH the site",
            "engine",
        )
    cap = body.capacity
    if cap is not None:
        site.engine_cpu_total, site.engine_cpu_free = cap.cpu_total, cap.cpu_free
        site.engine_gpu_total, site.engine_gpu_free = cap.gpu_total, cap.gpu_free
        site.engine_message = cap.message
    if (cap is not None and not cap.up) or (site.status == "down" and _operator_down(session, site_id)):
        site.last_heartbeat, site.monitored = utcnow(), True
        if site.status == "up":
            what = "engine unreachable" if cap is not None and not cap.reachable else "engine not taking jobs"
            site_down(session, site, actor, f"{what}: {cap.message or 'no reason given'}", True, max_attempts)
        elif cap is not None and not cap.reachable and site.updated_at < utcnow() - timedelta(seconds=lost_after_s):
            why = f"the engine of site {site_id} has been unreachable for more than {lost_after_s:g} s ({cap.message})"
            for row in _held(session, site_id, ("running",)):
                fail_or_retry(session, row, actor, why, max_attempts)
        return site
    return heartbeat(session, site_id, actor)


def _held(session: Session, site_id: str, states: tuple[str, ...]) -> list[JobRow]:
    """The site's jobs in `states`, locked."""
    stmt = sa.select(JobRow).where(JobRow.site_id == site_id, JobRow.state.in_(states)).with_for_update()
    return list(session.scalars(stmt).all())


def _operator_down(session: Session, site_id: str) -> bool:
    """True when the site's last up/down event is an operator's PATCH to down (it stays down until PATCHed up)."""
    last = session.scalar(
        sa.select(AuditEvent.detail)
        .where(AuditEvent.object == f"site:{site_id}", AuditEvent.action.in_(("site_down", "site_up")))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return isinstance(last, dict) and last.get("why") == OPERATOR_DOWN


def site_down(session: Session, site: SiteRow, actor: str, why: str, engine_down: bool, max_attempts: int) -> int:
    """Mark an agent site down (audited). Placed jobs no agent has claimed go back to the queue at once; when the
    engine is not up (`engine_down`), claimed jobs go back too (it takes no submissions). Running jobs always stay:
    the engine may be running them (only the agent is silent, an operator drains the site, or the engine's
    controller is unreachable while its nodes go on); the agent reports them once it and its engine answer, and a
    run the engine answers it has lost is retried then (`report` with `lost`). Returns how many jobs moved."""
    site.status, site.updated_at = "down", utcnow()
    moved = 0
    for row in _held(session, site.id, ("placed",)):
        if row.claimed_at is None or engine_down:
            _requeue(session, row, actor, f"site {site.id} down ({why})", avoid=None)
            moved += 1
    audit.record(session, actor, "site_down", f"site:{site.id}", why=why, requeued=moved)
    return moved


def lost_running(session: Session, cutoff, actor: str, max_attempts: int) -> int:
    """Fail (and retry) the running and claimed jobs of agent sites that are down and silent since before
    `cutoff`."""
    rows = session.scalars(
        sa.select(JobRow)
        .join(SiteRow, SiteRow.id == JobRow.site_id)
        .where(
            sa.or_(JobRow.state == "running", sa.and_(JobRow.state == "placed", JobRow.claimed_at.is_not(None))),
            SiteRow.status == "down",
            SiteRow.executor.not_in(EMBEDDED),
            SiteRow.last_heartbeat < cutoff,
        )
        .with_for_update(of=JobRow)
    ).all()
    for row in rows:
        fail_or_retry(session, row, actor, f"site {row.site_id} down and its agent silent", max_attempts)
    return len(rows)


def _requeue(session: Session, row: JobRow, actor: str, why: str, avoid: str | None) -> None:
    audit.record(session, actor, "requeue", f"job:{row.id}", site_id=row.site_id, why=why, attempt=row.attempts + 1)
    row.state, row.site_id, row.executor_ref, row.claimed_at = "queued", None, None, None
    row.reason, row.avoid_site = f"re-queued: {why}", avoid
    row.attempts += 1
    row.updated_at = utcnow()
    row.started_at = None


def fail_or_retry(session: Session, row: JobRow, actor: str, why: str, max_attempts: int) -> bool:
    """A run the engine lost: audited as failed; retried (re-queued, never on the same site) while fewer than
    `max_attempts` runs have been tried, else failed for good. True when it was retried."""
    site_id = row.site_id
    audit.record(session, actor, "fail", f"job:{row.id}", site_id=site_id, reason=why, lost=True)
    if row.attempts + 1 < max_attempts:
        _requeue(session, row, actor, why, avoid=site_id)
        audit.record(session, actor, "retry", f"job:{row.id}", attempt=row.attempts + 1, avoid_site=site_id)
        return True
    row.state, row.exit_code = "failed", None
    row.reason = f"{why}; gave up after {row.attempts + 1} attempts (max_attempts {max_attempts})"
    row.attempts += 1
    row.finished_at = row.updated_at = utcnow()
    return False


def _spec(row: JobRow) -> dict:
    return {
        "id": row.id,
        "command": row.command,
        "cpu_cores": int(row.cpu_cores),
        "gpu_cards": int(row.gpu_cards),
        "runtime_h": row.runtime_h,
        "attempt": row.attempts + 1,
        "claimed_before": row.claimed_at is not None,
    }


def claim(
    session: Session,
    site_id: str,
    limit: int,
    actor: str,
    engine_jobs: list | None = None,
    swept: list | None = None,
) -> dict:
    """What the agent of `site_id` has to do: `submit` (placed jobs, oldest first; `claimed_before` means an agent
    may already have submitted it, so look it up in the engine first), `running` (id and engine reference, to
    poll), `cancel` (cancelled jobs whose stop the engine has not confirmed) and, when the agent listed the live
    jobs of its tag in its engine (`engine_jobs`, EngineJobIn items), `orphans`: those to cancel there (see
    `orphans`). `swept` (EngineJobIn items) are orphans the agent says it cancelled: audited `orphan_cancel`.
    Jobs with a command on a site that does not allow commands fail here."""
    site = get(session, site_id)
    for item in swept or ():
        audit.record(session, actor, "orphan_cancel", f"job:{item.job_id}", site_id=site_id, ref=item.ref, why=item.why)
    now = utcnow()
    placed = session.scalars(
        sa.select(JobRow)
        .where(JobRow.site_id == site_id, JobRow.state == "placed")
        .order_by(JobRow.seq)
        .limit(limit)
        .with_for_update(of=JobRow)
    ).all()
    submit = []
    for row in placed:
        if row.command is not None and not site.allow_commands:
            row.state, row.reason, row.finished_at, row.updated_at = (
                "failed",
                f"site {site_id} does not run commands (its operator has not allowed them)",
                now,
                now,
            )
            audit.record(session, actor, "fail", f"job:{row.id}", site_id=site_id, reason=row.reason)
            continue
        submit.append(_spec(row))
        if row.claimed_at is None:
            row.claimed_at = now
            audit.record(session, actor, "claim", f"job:{row.id}", site_id=site_id)
    refs = session.execute(
        sa.select(JobRow.id, JobRow.executor_ref, JobRow.state).where(
            JobRow.site_id == site_id,
            sa.or_(
                JobRow.state == "running",
                sa.and_(
                    JobRow.state == "cancelled", JobRow.executor_ref.is_not(None), JobRow.cancel_confirmed_at.is_(None)
                ),
            ),
        )
    ).all()
    running = [{"id": i, "ref": _ref(r)} for i, r, st in refs if st == "running"]
    cancel = [{"id": i, "ref": _ref(r)} for i, r, st in refs if st == "cancelled"]
    out = {"submit": submit, "running": running, "cancel": cancel}
    if engine_jobs is not None:
        out["orphans"] = orphans(session, site_id, engine_jobs, {c["id"] for c in cancel})
    return out


def orphans(session: Session, site_id: str, engine_jobs: list, cancelling: set[str]) -> list[dict]:
    """Of the jobs an agent found in its engine under its site's tag (EngineJobIn items), those that must not run
    there, with why: unknown to the service, ended (done, failed, cancelled), queued or placed on another site, or
    running here under another engine reference (a stale copy). A job placed on this site (the agent may have
    submitted it and not said so yet), one whose cancel is pending (`cancelling`: the agent stops it anyway) and
    the very run that ended or was stopped less than ENDING_GRACE_S ago (an engine takes a moment to end a job)
    are not orphans."""
    ids = {item.job_id for item in engine_jobs}
    rows = {}
    for at in range(0, len(ids), 500):
        chunk = sorted(ids)[at : at + 500]
        cols = (JobRow.id, JobRow.site_id, JobRow.state, JobRow.executor_ref, JobRow.finished_at)
        stmt = sa.select(*cols, JobRow.cancel_confirmed_at).where(JobRow.id.in_(chunk))
        rows.update({r.id: r for r in session.execute(stmt)})
    out = []
    recent = utcnow() - timedelta(seconds=ENDING_GRACE_S)
    for item in engine_jobs:
        row = rows.get(item.job_id)
        if item.job_id in cancelling:
            continue
        if row is not None and row.site_id == site_id and _ref(row.executor_ref) == item.ref:
            ended_at = max((t for t in (row.finished_at, row.cancel_confirmed_at) if t is not None), default=None)
            if ended_at is not None and ended_at > recent:
                continue  # that very run ended (or was stopped) just now: the engine may still be ending it
        if row is None:
            why = "unknown to the service"
        elif row.site_id != site_id:
            why = f"{row.state} on site {row.site_id}" if row.site_id else f"{row.state}, not on this site"
        elif row.state in ("done", "failed", "cancelled"):
            why = f"{row.state} in the service"
        elif row.state == "running" and row.executor_ref and _ref(row.executor_ref) != item.ref:
            why = f"a stale copy: the service runs it as {_ref(row.executor_ref)}"
        else:
            continue
        out.append({"job_id": item.job_id, "ref": item.ref, "why": why})
    return out


def _ref(executor_ref: str | None) -> str:
    return (executor_ref or "").partition(":")[2]


def report(session: Session, site_id: str, job_id: str, body: ReportIn, actor: str, max_attempts: int) -> JobRow:
    """Apply what the agent of `site_id` says about one of its jobs. Conflict when the job is no longer this site's
    to run (re-placed, cancelled, ended): the agent then stops it in its engine."""
    site = get(session, site_id)
    row = session.scalar(sa.select(JobRow).where(JobRow.id == job_id).with_for_update())
    if row is None or row.site_id != site_id:
        raise Conflict(f"job {job_id} is not placed on site {site_id} - stop it in the engine", "job_id")
    if body.state == "cancelled" and row.state != "cancelled":
        raise Conflict(f"job {job_id} is {row.state}, not cancelled", "state")
    if body.state != "cancelled" and row.state not in ("placed", "running"):
        raise Conflict(f"job {job_id} is {row.state} - stop it in the engine", "state")
    now = utcnow()  # nothing has changed before this point: a Conflict leaves the transaction as it was
    if body.logs is not None:
        save_logs(session, job_id, body.logs)
    if body.state == "cancelled":
        if row.cancel_confirmed_at is None:
            row.cancel_confirmed_at = now
            row.reason = f"cancelled; stopped in the {site.executor} engine"
            audit.record(session, actor, "cancel_confirmed", f"job:{row.id}", site_id=site_id)
        return row
    if body.ref is not None and (row.executor_ref is None or row.state == "placed"):
        row.executor_ref = f"{site.executor}:{body.ref}"
    if row.state == "placed" and body.state in ("running", "done", "failed") and not body.lost:
        row.state, row.started_at, row.updated_at = "running", now, now
        audit.record(session, actor, "start", f"job:{row.id}", site_id=site_id, executor=site.executor, ref=body.ref)
    if body.state == "running":
        return row
    if body.lost:
        fail_or_retry(session, row, actor, body.reason or "lost by the engine", max_attempts)
        return row
    row.state, row.exit_code = body.state, body.exit_code
    row.reason = body.reason or ("exit code 0" if body.state == "done" else "failed in the engine")
    row.finished_at = row.updated_at = now
    action = "finish" if body.state == "done" else "fail"
    audit.record(session, actor, action, f"job:{row.id}", site_id=site_id, exit_code=body.exit_code, reason=row.reason)
    return row


def report_many(session: Session, site_id: str, reports: list, actor: str, max_attempts: int) -> list[dict]:
    """Apply several reports (ReportManyIn items) in the caller's transaction; one result per report, in order:
    {"job_id", "ok", "state"} or {"job_id", "ok": False, "detail"} for a job no longer this site's."""
    out = []
    for item in reports:
        try:
            row = report(session, site_id, item.job_id, item, actor, max_attempts)
            out.append({"job_id": item.job_id, "ok": True, "state": row.state})
        except Conflict as e:
            out.append({"job_id": item.job_id, "ok": False, "detail": str(e)})
    return out


def save_logs(session: Session, job_id: str, text: str) -> None:
    """Store a job's output (its last LOG_KEEP_BYTES), replacing what was uploaded before."""
    data = text.encode("utf-8", errors="replace")
    if len(data) > LOG_KEEP_BYTES:
        text = data[-LOG_KEEP_BYTES:].decode("utf-8", errors="ignore")
    found = session.get(JobLog, job_id)
    if found is None:
        session.add(JobLog(job_id=job_id, text=text, updated_at=utcnow()))
    else:
        found.text, found.updated_at = text, utcnow()


def stored_logs(session: Session, job_id: str) -> str:
    """The output an agent uploaded for the job, or empty."""
    found = session.get(JobLog, job_id)
    return found.text if found is not None else ""
