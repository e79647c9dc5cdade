"""The REST API (FastAPI, OpenAPI at /openapi.json, docs at /docs) under /api/v1, plus /healthz and /dashboard.

Routes are plain functions (run in the thread pool) over a synchronous SQLAlchemy session, except the hot path:
authentication (cached tokens) and single-job submission (group commit through `Intake`) run on the event loop
and only wait for the database.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from suanwang.service import audit, jobs, metrics, sites
from suanwang.service.auth import Principal, Role, new_token_string, store_token
from suanwang.service.db import Tenant
from suanwang.service.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from suanwang.service.failover import mark_down
from suanwang.service.fastpath import SubmitFastPath, store_and_answer
from suanwang.service.limits import BodySizeLimit
from suanwang.service.placement import verdicts_of
from suanwang.service.runtime import Service
from suanwang.service.schemas import JobBatchIn, JobIn, SiteIn, SitePatch, TenantIn, TokenIn

log = logging.getLogger("suanwang.service")
bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer <token>`")
StateFilter = Literal["queued", "placed", "running", "done", "failed", "cancelled", "rejected"]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=150)]


class Unauthorized(ServiceError):
    status = 401


async def service(request: Request) -> Service:
    return request.app.state.service


def session(svc: Annotated[Service, Depends(service)]) -> Iterator[Session]:
    with svc.sessions() as s:
        yield s


async def principal(
    svc: Annotated[Service, Depends(service)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller behind the bearer token (cached for `auth_cache_s`); 401 without a valid one."""
    if creds is None or not creds.credentials:
        raise Unauthorized("Authorization: missing - send 'Authorization: Bearer <token>'", "Authorization")
    who = svc.tokens.get(creds.credentials)
    if who is None:
        who = await run_in_threadpool(svc.authenticate, creds.credentials)
    if who is None:
        raise Unauthorized("Authorization: unknown token - ask an admin for one", "Authorization")
    return who


async def staff(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Admin or operator."""
    if not who.staff:
        raise Forbidden("needs an admin or operator token")
    return who


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Admin only."""
    if who.role is not Role.ADMIN:
        raise Forbidden("needs an admin token")
    return who


Sess = Annotated[Session, Depends(session)]
Svc = Annotated[Service, Depends(service)]
Who = Annotated[Principal, Depends(principal)]
Staff = Annotated[Principal, Depends(staff)]
Admin = Annotated[Principal, Depends(admin)]

api = APIRouter(prefix="/api/v1")


@api.get("/me", tags=["auth"])
def me(who: Who) -> dict:
    """The caller's role and tenant."""
    return {"tenant": who.tenant, "role": who.role.value}


@api.get("/tenants", tags=["auth"])
def list_tenants(s: Sess, _: Admin) -> list[dict]:
    """Every tenant (admin)."""
    return [{"id": t.id, "name": t.name} for t in s.query(Tenant).order_by(Tenant.id)]


@api.post("/tenants", status_code=201, tags=["auth"])
def create_tenant(body: TenantIn, s: Sess, who: Admin) -> dict:
    """Create a tenant (admin)."""
    t = Tenant(name=body.name)
    s.add(t)
    try:
        s.flush()
    except IntegrityError:
        s.rollback()
        raise Conflict(f"name: tenant '{body.name}' already exists", "name") from None
    audit.record(s, who.actor, "tenant_create", f"tenant:{t.name}")
    s.commit()
    return {"id": t.id, "name": t.name}


@api.post("/tokens", status_code=201, tags=["auth"])
def create_token(body: TokenIn, s: Sess, who: Admin) -> dict:
    """Create an API token (admin). The token is in this answer only; the server keeps a salted hash."""
    tenant_id = None
    if body.tenant is not None:
        tenant_id = s.query(Tenant.id).filter(Tenant.name == body.tenant).scalar()
        if tenant_id is None:
            raise Invalid(f"tenant: unknown tenant '{body.tenant}' - create it with POST /api/v1/tenants", "tenant")
    if body.role == "tenant" and tenant_id is None:
        raise Invalid("tenant: required for role 'tenant'", "tenant")
    token = new_token_string()
    row = store_token(s, token, Role(body.role), tenant_id)
    audit.record(s, who.actor, "token_create", f"token:{row.id}", role=body.role, tenant=body.tenant)
    s.commit()
    return {"token": token, "role": body.role, "tenant": body.tenant}


@api.get("/sites", tags=["sites"])
def list_sites(s: Sess, _: Who) -> list[dict]:
    """Every site with its capacity, free capacity, price, carbon and status."""
    held = sites.held(s)
    return [sites.site_json(r, held.get(r.id, (0, 0))) for r in sites.all_sites(s)]


@api.post("/sites", status_code=201, tags=["sites"])
def register_site(body: SiteIn, s: Sess, svc: Svc, who: Staff) -> dict:
    """Register a site (admin / operator). It is heartbeat-monitored unless `monitored` is false."""
    row = sites.register(s, svc.atlas, body, who.actor)
    s.commit()
    return sites.site_json(row)


@api.patch("/sites/{site_id}", tags=["sites"])
def update_site(site_id: str, body: SitePatch, s: Sess, svc: Svc, who: Staff) -> dict:
    """Change a site's capacity, price, labels, status or monitoring (admin / operator)."""
    was_up = sites.get(s, site_id).status == "up"
    row = sites.update(s, svc.atlas, site_id, body, who.actor)
    if was_up and row.status == "down":
        mark_down(s, row, svc.executors, who.actor, "set down by an operator")
    s.commit()
    return sites.site_json(row, sites.held(s).get(row.id, (0, 0)))


@api.post("/sites/{site_id}/heartbeat", tags=["sites"])
def site_heartbeat(site_id: str, s: Sess, who: Staff) -> dict:
    """Record that the site is alive (admin / operator); turns heartbeat monitoring on for it."""
    row = sites.heartbeat(s, site_id, who.actor)
    s.commit()
    return sites.site_json(row, sites.held(s).get(row.id, (0, 0)))


def _owner(svc: Service, who: Principal, requested: str | None) -> tuple[int, str]:
    with svc.sessions() as s:
        return jobs.tenant_for_submit(s, who, requested)


@api.post("/jobs", status_code=201, tags=["jobs"])
async def submit_job(body: JobIn, svc: Svc, who: Who, key: IdemKey = None) -> dict:
    """Submit one job; it is committed before the answer. The same Idempotency-Key returns the same job (200)."""
    if who.role is Role.TENANT:
        tenant_id, tenant = jobs.tenant_for_submit(None, who, body.tenant)  # no database needed
    else:
        tenant_id, tenant = await run_in_threadpool(_owner, svc, who, body.tenant)
    new = jobs.new_job(svc.atlas, body, tenant_id, tenant, key, who, svc.cfg.allow_commands)
    return await store_and_answer(svc, new)


@api.post("/jobs/batch", status_code=201, tags=["jobs"])
def submit_batch(body: JobBatchIn, response: Response, s: Sess, svc: Svc, who: Who, key: IdemKey = None) -> dict:
    """Submit several jobs in one transaction (all or none)."""
    out, created = jobs.submit(s, svc.atlas, who, body.jobs, key, svc.cfg.allow_commands)
    if not created:
        response.status_code = status.HTTP_200_OK
    return {"jobs": [jobs.job_json(r, t, svc.atlas) for r, t in out]}


@api.get("/jobs", tags=["jobs"])
def list_jobs(
    s: Sess,
    svc: Svc,
    who: Who,
    state: StateFilter | None = None,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    """The caller's jobs (all jobs for admin / operator), newest first."""
    return jobs.page(s, who, state, site_id, limit, offset, svc.atlas)


@api.get("/jobs/{job_id}", tags=["jobs"])
def get_job(job_id: str, s: Sess, svc: Svc, who: Who) -> dict:
    """One job."""
    return jobs.job_json(*jobs.get(s, who, job_id), svc.atlas)


@api.post("/jobs/{job_id}/cancel", tags=["jobs"])
def cancel_job(job_id: str, s: Sess, svc: Svc, who: Who) -> dict:
    """Cancel a job that has not ended; 409 when it has."""
    return jobs.job_json(*jobs.cancel(s, who, job_id, svc.executors), svc.atlas)


@api.get("/jobs/{job_id}/placement", tags=["jobs"])
def job_placement(job_id: str, s: Sess, who: Who) -> dict:
    """Where the job was placed, its predicted cost, energy, carbon, latency, and every site's verdict."""
    row, _ = jobs.get(s, who, job_id)
    if row.verdicts is None:
        raise NotFound(f"job {job_id} has not been scheduled yet (state {row.state})", "job_id")
    return {
        "job_id": row.id,
        "site_id": row.site_id,
        "state": row.state,
        "reason": row.reason,
        "cost_cny": row.cost_cny,
        "energy_kwh": row.energy_kwh,
        "carbon_kg": row.carbon_kg,
        "latency_ms": row.latency_ms,
        "transfer_h": row.transfer_h,
        "policy": row.policy,
        "verdicts": verdicts_of(row.verdicts),
    }


@api.get("/jobs/{job_id}/logs", tags=["jobs"])
def job_logs(job_id: str, s: Sess, svc: Svc, who: Who) -> dict:
    """The job's captured output from its executor (empty before it starts)."""
    row, _ = jobs.get(s, who, job_id)
    name, _, ref = (row.executor_ref or "").partition(":")
    ex = svc.executors.get(name)
    return {"job_id": row.id, "logs": ex.logs(ref) if ex and ref else ""}


@api.get("/audit", tags=["audit"])
def audit_log(s: Sess, _: Staff, limit: Limit = 50, offset: Offset = 0) -> dict:
    """The append-only audit log, newest first (admin / operator)."""
    return audit.page(s, limit, offset)


@api.get("/metrics/summary", tags=["metrics"])
def metrics_summary(s: Sess, who: Who, by: Literal["tenant", "site", "day"] = "tenant") -> list[dict]:
    """Predicted cost (CNY), energy (kWh), carbon (kgCO2) and job count of placed jobs, by tenant, site or day."""
    return metrics.summary(s, who, by)


def _error(exc: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    detail = str(exc)
    if exc.status == 422 and exc.field:
        item = {"loc": ["body", exc.field], "msg": detail, "type": "value_error"}
        suggestions = getattr(exc.__cause__ or exc.__context__, "suggestions", None)
        if suggestions:
            item["suggestions"] = suggestions
        return JSONResponse({"detail": [item]}, status_code=422)
    return JSONResponse({"detail": detail}, status_code=exc.status, headers=headers)


def create_app(svc: Service, fast_submit: bool = True) -> FastAPI:
    """The ASGI app over a started `Service`; the loop thread runs while the app does (if configured).

    fast_submit: serve well-formed single-job submissions by cached tenant tokens without FastAPI's routing
    (`fastpath.py`; answers are the same); False sends every request through FastAPI."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if svc.cfg.loop:
            svc.loop.start()
        try:
            yield
        finally:
            svc.loop.stop()

    app = FastAPI(
        title="suanwang service",
        version="1",
        description="Computing-power network scheduler (东数西算): tenants submit jobs, the loop places them.",
        lifespan=lifespan,
    )
    app.state.service = svc
    if fast_submit:
        app.add_middleware(SubmitFastPath, svc=svc)  # inside the body limit: added first, so it runs second
    app.add_middleware(BodySizeLimit, max_bytes=svc.cfg.max_body_bytes)
    app.add_exception_handler(ServiceError, lambda _r, e: _error(e))

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        """Liveness, and which database this replica uses."""
        return {"status": "ok", "db": svc.dialect}

    app.include_router(api)
    static = Path(str(importlib.resources.files("suanwang.service") / "static"))
    if static.is_dir():
        app.mount("/dashboard", StaticFiles(directory=static, html=True), name="dashboard")
    return app
