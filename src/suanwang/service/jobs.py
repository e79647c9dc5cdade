"""Jobs: durable, idempotent submission; tenant-scoped reads; cancel; re-queue when a site goes down."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanwang.atlas import Atlas
from suanwang.errors import UnknownPlaceError
from suanwang.service import audit
from suanwang.service.auth import Principal, Role
from suanwang.service.db import JobRow, Tenant, iso, utcnow
from suanwang.service.errors import Conflict, Forbidden, Invalid, NotFound
from suanwang.service.executors import Executor
from suanwang.service.placement import finite, now_h
from suanwang.service.schemas import JobIn
from suanwang.service.sites import HOLDING, province_of

STATES = ("queued", "placed", "running", "done", "failed", "cancelled", "rejected")
FINAL = ("done", "failed", "cancelled", "rejected")
FIELDS = (
    "cpu_cores",
    "gpu_cards",
    "mem_gb",
    "runtime_h",
    "input_gb",
    "output_gb",
    "data_province",
    "latency_class",
    "max_latency_ms",
    "deadline_h",
    "data_class",
    "priority",
    "command",
)


def job_json(row: JobRow, tenant: str) -> dict:
    """The API's view of a job: identity, state, the submitted fields and the predicted cost and carbon."""
    out = {
        "id": row.id,
        "tenant": tenant,
        "origin": row.origin,
        "origin_label": row.origin_label,
        "state": row.state,
        "site_id": row.site_id,
        "reason": row.reason,
    }
    out.update({f: getattr(row, f) for f in FIELDS})
    out.update(
        cost_cny=finite(row.cost_cny),
        energy_kwh=finite(row.energy_kwh),
        carbon_kg=finite(row.carbon_kg),
        latency_ms=finite(row.latency_ms),
        policy=row.policy,
        attempts=row.attempts,
        exit_code=row.exit_code,
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
        started_at=iso(row.started_at),
        finished_at=iso(row.finished_at),
    )
    return out


def tenant_for_submit(session: Session, who: Principal, requested: str | None) -> tuple[int, str]:
    """(tenant id, name) a submission belongs to: the caller's own, or for an admin the named one."""
    if who.role is Role.TENANT:
        if requested is not None and requested != who.tenant:
            raise Forbidden("tenant: a tenant token submits only for its own tenant - drop the field", "tenant")
        return who.tenant_id, who.tenant
    if who.role is not Role.ADMIN:
        raise Forbidden("operators do not submit jobs - use a tenant token (or an admin token with 'tenant')")
    if requested is None:
        raise Invalid("tenant: required when an admin submits - name the tenant the job belongs to", "tenant")
    tid = session.scalar(sa.select(Tenant.id).where(Tenant.name == requested))
    if tid is None:
        raise Invalid(f"tenant: unknown tenant '{requested}' - create it with POST /api/v1/tenants", "tenant")
    return tid, requested


def build_row(atlas: Atlas, body: JobIn, tenant_id: int, key: str | None, allow_commands: bool) -> JobRow:
    """A new queued job row from a validated body; origin and data province are resolved against the atlas."""
    try:
        place = atlas.place(body.origin)
    except UnknownPlaceError as e:
        raise Invalid(str(e), "origin") from None
    if body.command is not None and not allow_commands:
        raise Invalid("command: this server does not run commands - start it with --allow-commands", "command")
    data_province = (
        province_of(atlas, body.data_province, "data_province").id if body.data_province else place.province_id
    )
    values = body.model_dump(include=set(FIELDS))
    values["data_province"] = data_province
    values["latency_class"] = body.latency_class.value
    values["data_class"] = body.data_class.value
    now = utcnow()
    return JobRow(
        id="job_" + uuid.uuid4().hex[:20],
        tenant_id=tenant_id,
        idempotency_key=key,
        origin=place.adcode,
        origin_label=place.label,
        origin_province=place.province_id,
        submit_h=now_h(),
        state="queued",
        reason="",
        attempts=0,
        created_at=now,
        updated_at=now,
        **values,
    )


def _existing(session: Session, tenant_id: int, key: str) -> JobRow | None:
    return session.scalar(sa.select(JobRow).where(JobRow.tenant_id == tenant_id, JobRow.idempotency_key == key))


def submit(
    session: Session, atlas: Atlas, who: Principal, bodies: list[JobIn], key: str | None, allow_commands: bool
) -> tuple[list[tuple[JobRow, str]], bool]:
    """Insert the jobs and commit; returns ([(row, tenant)], created).

    With an idempotency key a repeated request returns the jobs stored the first time (created=False); a batch
    uses key#0, key#1, ... per job. A concurrent duplicate loses on the unique constraint and reads the winner.
    """
    owners = [tenant_for_submit(session, who, b.tenant) for b in bodies]
    keys = [None if key is None else (key if len(bodies) == 1 else f"{key}#{i}") for i in range(len(bodies))]
    if key is not None:
        found = [_existing(session, tid, k) for (tid, _), k in zip(owners, keys, strict=True)]
        if all(found):
            return [(r, name) for r, (_, name) in zip(found, owners, strict=True)], False
    rows = [build_row(atlas, b, tid, k, allow_commands) for b, (tid, _), k in zip(bodies, owners, keys, strict=True)]
    session.add_all(rows)
    for row, (_, name) in zip(rows, owners, strict=True):
        audit.record(session, who.actor, "submit", f"job:{row.id}", tenant=name, origin=row.origin)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if key is None:
            raise
        found = [_existing(session, tid, k) for (tid, _), k in zip(owners, keys, strict=True)]
        if not all(found):
            raise Conflict("Idempotency-Key: reused for a different set of jobs - send a fresh key") from None
        return [(r, name) for r, (_, name) in zip(found, owners, strict=True)], False
    return list(zip(rows, (n for _, n in owners), strict=True)), True


def visible(who: Principal) -> sa.ColumnElement[bool]:
    """The WHERE clause limiting a caller to the jobs it may see."""
    return sa.true() if who.staff else JobRow.tenant_id == who.tenant_id


def get(session: Session, who: Principal, job_id: str, lock: bool = False) -> tuple[JobRow, str]:
    """(row, tenant name) of a job the caller may see; NotFound otherwise (never Forbidden: ids do not leak)."""
    stmt = sa.select(JobRow, Tenant.name).join(Tenant).where(JobRow.id == job_id, visible(who))
    if lock:
        stmt = stmt.with_for_update(of=JobRow)
    found = session.execute(stmt).first()
    if found is None:
        raise NotFound(f"no job '{job_id}' - list yours with GET /api/v1/jobs", "job_id")
    return found[0], found[1]


def page(session: Session, who: Principal, state: str | None, site_id: str | None, limit: int, offset: int) -> dict:
    """Jobs newest first, filtered by state and site: {"items": [...], "total": n}."""
    where = [visible(who)]
    if state:
        where.append(JobRow.state == state)
    if site_id:
        where.append(JobRow.site_id == site_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(JobRow).where(*where))
    rows = session.execute(
        sa.select(JobRow, Tenant.name)
        .join(Tenant)
        .where(*where)
        .order_by(JobRow.seq.desc())
        .limit(limit)
        .offset(offset)
    )
    return {"items": [job_json(r, t) for r, t in rows], "total": total}


def cancel(session: Session, who: Principal, job_id: str, executors: dict[str, Executor]) -> tuple[JobRow, str]:
    """Cancel a job that has not finished; a running one is stopped at its executor. Conflict when final."""
    row, tenant = get(session, who, job_id, lock=True)
    if row.state in FINAL:
        raise Conflict(f"job {job_id} is already {row.state}")
    if row.state == "running" and row.executor_ref:
        stop(executors, row)
    row.state, row.updated_at, row.finished_at = "cancelled", utcnow(), utcnow()
    audit.record(session, who.actor, "cancel", f"job:{row.id}", site_id=row.site_id)
    session.commit()
    return row, tenant


def stop(executors: dict[str, Executor], row: JobRow) -> None:
    """Ask the job's executor to stop it (best effort: the site may already be gone)."""
    name, _, ref = (row.executor_ref or "").partition(":")
    ex = executors.get(name)
    if ex is not None and ref:
        try:
            ex.cancel(ref)
        except (OSError, ValueError):
            pass


def requeue_site(session: Session, site_id: str, executors: dict[str, Executor], actor: str, why: str) -> int:
    """Send every placed or running job of a site back to the queue (to be placed elsewhere); returns the count."""
    rows = session.scalars(
        sa.select(JobRow).where(JobRow.site_id == site_id, JobRow.state.in_(HOLDING)).with_for_update()
    ).all()
    for row in rows:
        if row.state == "running":
            stop(executors, row)
        audit.record(session, actor, "requeue", f"job:{row.id}", site_id=site_id, why=why)
        row.state, row.site_id, row.executor_ref = "queued", None, None
        row.reason = f"re-queued: {why}"
        row.attempts += 1
        row.updated_at = utcnow()
        row.started_at = None
    return len(rows)
