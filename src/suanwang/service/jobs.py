"""Jobs: durable, idempotent submission; tenant-scoped reads; cancel; re-queue when a site goes down."""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
from sqlalchemy.orm import Session, defer

from suanwang.atlas import Atlas, Place
from suanwang.errors import UnknownPlaceError
from suanwang.service import audit
from suanwang.service.auth import Principal, Role
from suanwang.service.convert import finite, now_h
from suanwang.service.db import AuditEvent, JobRow, Tenant, iso, pg_unnest, utcnow
from suanwang.service.errors import Conflict, Forbidden, Invalid, NotFound
from suanwang.service.executors import Executor
from suanwang.service.schemas import SUBMITTED, JobIn
from suanwang.service.sites import HOLDING, province_of

STATES = ("queued", "placed", "running", "done", "failed", "cancelled", "rejected")
FINAL = ("done", "failed", "cancelled", "rejected")
# The submitted Job fields a job row stores and the API shows as given; the origin and the tenant are resolved
# first (the city's adcode, label and province; tenant_id).
FIELDS = tuple(f for f in SUBMITTED if f not in ("origin", "tenant"))


def _place_or_none(atlas: Atlas | None, adcode: str) -> Place | None:
    """The city of an adcode, or None without an atlas or for a city the atlas no longer has."""
    try:
        return atlas.place(adcode) if atlas is not None else None
    except UnknownPlaceError:
        return None


def job_json(row: Any, tenant: str, atlas: Atlas | None = None) -> dict:
    """The API's view of a job (a JobRow, or any object with its column names as attributes): identity, state, the
    submitted fields and the predicted cost (CNY), energy (kWh), carbon (kgCO2) and latency (ms). With `atlas`, the
    origin city's coordinates (degrees) too, for maps."""
    origin = _place_or_none(atlas, row.origin)
    out = {
        "id": row.id,
        "tenant": tenant,
        "origin": row.origin,
        "origin_label": row.origin_label,
        "origin_lat": origin.lat if origin else None,
        "origin_lon": origin.lon if origin else None,
        "state": row.state,
        "site_id": row.site_id,
        "reason": row.reason,
    }
    out.update({f: getattr(row, f) for f in FIELDS})
    out["labels"] = list(out["labels"] or [])  # rows stored before migration 0003 hold NULL
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


# Columns of a new job that start empty; they fill in as the job is placed, run and ends.
UNSET = (
    "site_id",
    "policy",
    "cost_cny",
    "energy_kwh",
    "carbon_kg",
    "latency_ms",
    "transfer_h",
    "verdicts",
    "executor_ref",
    "exit_code",
    "started_at",
    "finished_at",
    "avoid_site",
    "claimed_at",
    "cancel_confirmed_at",
)


@dataclass
class NewJob:
    """A validated submission waiting to be stored: the row's column values, its tenant's name and the actor."""

    values: dict
    tenant: str
    actor: str

    @property
    def key(self) -> tuple[int, str | None]:
        return self.values["tenant_id"], self.values["idempotency_key"]


_ids = random.Random()  # seeded from the OS; a generator of its own, so nothing that seeds `random` repeats ids
os.register_at_fork(after_in_child=_ids.seed)  # a forked worker draws its own sequence


def new_job_id() -> str:
    """A fresh job id: 'job_' and 80 random bits in hex, from a generator of this module's own, seeded from the OS
    (and again in forked children); ids need to be unique, not secret: other tenants get 404 for them anyway."""
    return f"job_{_ids.getrandbits(80):020x}"


def request_hash(bodies: list[JobIn]) -> str:
    """SHA-256 (hex) of the canonical form of a submission: every field of every job, defaults filled in, keys
    sorted - so the same request hashes the same however its JSON was spelled."""
    canonical = json.dumps([b.model_dump(mode="json") for b in bodies], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_job(
    atlas: Atlas,
    body: JobIn,
    tenant_id: int,
    tenant: str,
    key: str | None,
    who: Principal,
    allow_commands: bool,
    digest: str | None = None,
) -> NewJob:
    """A new queued job from a validated body; origin and data province are resolved against the atlas. With an
    idempotency key the job keeps the request's hash (`digest`, default: of this one body) to tell a retry from a
    reuse."""
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
    values.update(
        id=new_job_id(),
        tenant_id=tenant_id,
        idempotency_key=key,
        request_hash=None if key is None else digest or request_hash([body]),
        origin=place.adcode,
        origin_label=place.label,
        origin_province=place.province_id,
        submit_h=now_h(),
        state="queued",
        reason="",
        attempts=0,
        created_at=now,
        updated_at=now,
        **dict.fromkeys(UNSET),
    )
    return NewJob(values, tenant, who.actor)


_INSERT_AUDIT = sa.insert(AuditEvent.__table__)


@cache
def _insert_jobs(dialect: str) -> sa.Insert:
    """INSERT INTO jobs ... ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id (built once)."""
    insert = sa.dialects.postgresql.insert if dialect == "postgresql" else sa.dialects.sqlite.insert
    stmt = insert(JobRow.__table__).on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
    return stmt.returning(JobRow.__table__.c.id)


def _submit_detail(new: NewJob) -> dict:
    return {"tenant": new.tenant, "origin": new.values["origin"]}


@cache
def _pg_store_sql() -> tuple[str, list[str]]:
    """One statement: unnest one array per column into INSERT ... ON CONFLICT DO NOTHING, and the audit events
    of exactly the inserted jobs in the same statement (so in the same transaction)."""
    table = JobRow.__table__
    names = [c.name for c in table.columns if c.name not in UNSET and c.name != "seq"]
    picked = ", ".join(f"{n}::json" if isinstance(table.c[n].type, sa.JSON) else n for n in names)
    return (
        f"WITH ins AS (INSERT INTO jobs ({', '.join(names)}) SELECT {picked} FROM {pg_unnest(table, names)} "
        "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id, created_at), "
        "ev AS (INSERT INTO audit (at, actor, action, object, detail) "
        "SELECT ins.created_at, a.actor, 'submit', 'job:' || ins.id, a.detail::json "
        "FROM ins JOIN unnest(%b::text[], %b::text[], %b::text[]) AS a(id, actor, detail) ON a.id = ins.id) "
        "SELECT id FROM ins"
    ), names


def _store_pg(conn: sa.Connection, new: list[NewJob]) -> set[str]:
    """PostgreSQL: store jobs and their audit events in one round trip; the ids actually inserted."""
    sql, names = _pg_store_sql()
    json_cols = {c for c in names if isinstance(JobRow.__table__.c[c].type, sa.JSON)}
    params = [[json.dumps(n.values[c]) if c in json_cols else n.values[c] for n in new] for c in names]
    params += [[n.values["id"] for n in new], [n.actor for n in new], [json.dumps(_submit_detail(n)) for n in new]]
    return {r[0] for r in conn.exec_driver_sql(sql, tuple(params))}


def store(conn: sa.Connection, new: list[NewJob]) -> list[tuple[Any, bool]]:
    """Insert the jobs and their 'submit' audit events in the caller's transaction; [(job, created)] in order.

    One INSERT ... ON CONFLICT DO NOTHING for all jobs: a job whose (tenant, Idempotency-Key) is already stored is
    not inserted again, gets no audit event, and comes back as the stored row with created=False. The same key twice
    in one call stores one job.
    """
    jobs_t = JobRow.__table__
    if conn.dialect.name == "postgresql":
        inserted = _store_pg(conn, new)
    else:
        inserted = {r.id for r in conn.execute(_insert_jobs(conn.dialect.name), [n.values for n in new])}
        events = [
            {
                "at": n.values["created_at"],
                "actor": n.actor,
                "action": "submit",
                "object": f"job:{n.values['id']}",
                "detail": _submit_detail(n),
            }
            for n in new
            if n.values["id"] in inserted
        ]
        if events:
            conn.execute(_INSERT_AUDIT, events)
    lost = {n.key for n in new if n.values["id"] not in inserted}
    stored = {}
    if lost:
        by_key = sa.tuple_(jobs_t.c.tenant_id, jobs_t.c.idempotency_key).in_(list(lost))
        stored = {(r.tenant_id, r.idempotency_key): r for r in conn.execute(sa.select(jobs_t).where(by_key))}
    out = []
    for n in new:
        if n.values["id"] in inserted:
            out.append((SimpleNamespace(**n.values), True))
        else:
            out.append((stored[n.key], False))
    return out


def check_retry(new: NewJob, stored: Any, key: str) -> None:
    """Invalid (422 naming the header) when `stored`, the job already holding the request's Idempotency-Key, came
    from a different request; a job stored before hashes were kept passes as a retry."""
    was = getattr(stored, "request_hash", None)
    if was is not None and was != new.values["request_hash"]:
        raise Invalid(
            f"Idempotency-Key: '{key}' was already used for a different request (job {stored.id}) - resend the "
            "original request unchanged, or use a fresh key for a new one",
            "Idempotency-Key",
            where="header",
        )


def submit(
    session: Session, atlas: Atlas, who: Principal, bodies: list[JobIn], key: str | None, allow_commands: bool
) -> tuple[list[tuple[Any, str]], bool]:
    """Insert the jobs in one transaction and commit, all or none; returns ([(job, tenant)], created).

    With an idempotency key a repeated request returns the jobs stored the first time (created=False); a batch
    uses key#0, key#1, ... per job, each stored with the hash of the whole batch, so a key reused with other jobs
    or another number of jobs is Invalid (422). A key set that is only partly stored is a Conflict.
    """
    owners = [tenant_for_submit(session, who, b.tenant) for b in bodies]
    keys = [None if key is None else (key if len(bodies) == 1 else f"{key}#{i}") for i in range(len(bodies))]
    digest = None if key is None else request_hash(bodies)  # of the whole batch: each job's key checks all of it
    new = [
        new_job(atlas, b, tid, name, k, who, allow_commands, digest)
        for b, (tid, name), k in zip(bodies, owners, keys, strict=True)
    ]
    session.rollback()  # end the read transaction of the tenant lookup
    with session.begin():
        if key is not None and len(bodies) > 1:  # the bare key taken by a one-job request: another request
            single = session.execute(
                sa.select(JobRow.id, JobRow.request_hash).where(
                    JobRow.tenant_id == new[0].values["tenant_id"], JobRow.idempotency_key == key
                )
            ).first()
            if single is not None:
                check_retry(new[0], single, key)
        stored = store(session.connection(), new)
        for n, (row, was_created) in zip(new, stored, strict=True):
            if not was_created:
                check_retry(n, row, key)
        created = [c for _, c in stored]
        if any(created) and not all(created):
            raise Conflict("Idempotency-Key: reused for a different set of jobs - send a fresh key")
    return [(job, n.tenant) for (job, _), n in zip(stored, new, strict=True)], all(created)


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


def page(
    session: Session,
    who: Principal,
    state: str | None,
    site_id: str | None,
    limit: int,
    offset: int,
    atlas: Atlas | None = None,
) -> dict:
    """Jobs newest first, filtered by state and site: {"items": [...], "total": n}."""
    where = [visible(who)]
    if state:
        where.append(JobRow.state == state)
    if site_id:
        where.append(JobRow.site_id == site_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(JobRow).where(*where))
    rows = session.execute(
        sa.select(JobRow, Tenant.name)
        .options(defer(JobRow.verdicts))  # not part of a listing; large
        .join(Tenant)
        .where(*where)
        .order_by(JobRow.seq.desc())
        .limit(limit)
        .offset(offset)
    )
    return {"items": [job_json(r, t, atlas) for r, t in rows], "total": total}


def cancel(session: Session, who: Principal, job_id: str, executors: dict[str, Executor]) -> tuple[JobRow, str]:
    """Cancel a job that has not finished; a running one is stopped at its executor. Conflict when final."""
    row, tenant = get(session, who, job_id, lock=True)
    if row.state in FINAL:
        raise Conflict(f"job {job_id} is already {row.state}")
    if row.state == "running" and row.executor_ref:
        stop(executors, row)
        if row.executor_ref.partition(":")[0] not in executors:  # an agent's engine: the agent stops it
            row.reason = "cancelled; waiting for the site's agent to stop it in the engine"
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
