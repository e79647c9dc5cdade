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
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from suanwang.service import agents, audit, auth, jobs, metrics, sites, tenancy_routes, visibility
from suanwang.service.answers import ANY_REQUEST, Health, errors
from suanwang.service.auth import Principal, Role, new_token_string, store_token
from suanwang.service.db import Tenant, fault_reason
from suanwang.service.errors import (
    DB_FAULTS,
    RETRY_AFTER_S,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    db_fault_response,
    error_response,
)
from suanwang.service.failover import mark_down
from suanwang.service.fastpath import SubmitFastPath, store_and_answer
from suanwang.service.limits import KEY_MAX_CHARS, BodySizeLimit
from suanwang.service.placement import verdicts_of
from suanwang.service.prometheus import CONTENT_TYPE
from suanwang.service.runtime import Service
from suanwang.service.schemas import (
    ClaimIn,
    HeartbeatIn,
    JobBatchIn,
    JobIn,
    ReportIn,
    ReportManyIn,
    SiteIn,
    SitePatch,
    TenantIn,
    TokenIn,
)

log = logging.getLogger("suanwang.service")
bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer <token>`")
StateFilter = Literal["queued", "placed", "running", "done", "failed", "cancelled", "rejected"]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=KEY_MAX_CHARS)]


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


async def user(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Any caller but a site agent (site tokens act only on their site's agent endpoints)."""
    if who.role is Role.SITE:
        raise Forbidden("a site token acts only on its site's agent endpoints (/api/v1/sites/{site_id}/agent/...)")
    return who


async def agent(site_id: str, who: Annotated[Principal, Depends(principal)]) -> Principal:
    """The site token of `site_id` (or an admin)."""
    if who.role is Role.ADMIN or (who.role is Role.SITE and who.site_id == site_id):
        return who
    raise Forbidden(f"needs the site token of site '{site_id}'")


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
Who = Annotated[Principal, Depends(user)]
Agent = Annotated[Principal, Depends(agent)]
Staff = Annotated[Principal, Depends(staff)]
Admin = Annotated[Principal, Depends(admin)]

RETRY = {200: {"description": "an exact retry (same Idempotency-Key, same request): what was stored the first time"}}
api = APIRouter(prefix="/api/v1", responses=errors(*ANY_REQUEST))


@api.get("/me", tags=["auth"])
def me(who: Annotated[Principal, Depends(principal)]) -> dict:
    """The caller's role, tenant and (site tokens) site."""
    out = {"tenant": who.tenant, "role": who.role.value}
    return out if who.site_id is None else dict(out, site_id=who.site_id)


@api.get("/tenants", tags=["auth"], responses=errors(403))
def list_tenants(s: Sess, _: Admin) -> list[dict]:
    """Every tenant (admin)."""
    return [{"id": t.id, "name": t.name} for t in s.query(Tenant).order_by(Tenant.id)]


@api.post("/tenants", status_code=201, tags=["auth"], responses=errors(403, 409, 422))
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


@api.post("/tokens", status_code=201, tags=["auth"], responses=errors(403, 422))
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


@api.get("/tokens", tags=["auth"], responses=errors(403))
def list_tokens(s: Sess, _: Admin) -> list[dict]:
    """Every API token's id, role, tenant, creation and revocation time (admin); never the token itself."""
    return auth.list_tokens(s)


@api.delete("/tokens/{token_id}", tags=["auth"], responses=errors(403, 404, 409, 422))
def revoke_token(token_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], s: Sess, svc: Svc, who: Admin) -> dict:
    """Revoke a token (admin; audited). This replica refuses it at once, every other one within `auth_cache_s`
    seconds (its token cache). An admin cannot revoke the token it calls with (409): use another admin token."""
    if token_id == who.token_id:
        raise Conflict("token_id: this is the token of this request - revoke it with another admin token")
    out = auth.revoke(s, token_id)
    audit.record(s, who.actor, "token_revoke", f"token:{token_id}", role=out["role"], tenant=out["tenant"])
    s.commit()
    svc.tokens.clear()
    return out


@api.get("/sites", tags=["sites"])
def list_sites(s: Sess, who: Who) -> list[dict]:
    """Every site with its capacity, price, carbon, status and engine. Free capacity (as the scheduler sees it) for
    admins and operators; a tenant gets null there and what its own jobs hold (cpu_cores_mine, gpu_cards_mine) -
    see service/visibility.py."""
    held, waiting = sites.held(s), sites.held(s, ("placed",))
    mine = None if who.staff else sites.held(s, tenant_id=who.tenant_id)
    return visibility.sites_for(who, sites.all_sites(s), held, waiting, mine)


@api.post("/sites", status_code=201, tags=["sites"], responses=errors(403, 409, 422))
def register_site(body: SiteIn, s: Sess, svc: Svc, who: Staff) -> dict:
    """Register a site (admin / operator). It is heartbeat-monitored unless `monitored` is false."""
    row = sites.register(s, svc.atlas, body, who.actor)
    s.commit()
    return sites.site_json(row)


@api.patch("/sites/{site_id}", tags=["sites"], responses=errors(403, 404, 422))
def update_site(site_id: str, body: SitePatch, s: Sess, svc: Svc, who: Staff) -> dict:
    """Change a site's capacity, price, labels, status or monitoring (admin / operator)."""
    was_up = sites.get(s, site_id).status == "up"
    row = sites.update(s, svc.atlas, site_id, body, who.actor)
    if was_up and row.status == "down":
        mark_down(s, row, svc.executors, who.actor, agents.OPERATOR_DOWN, svc.cfg.max_attempts)
    s.commit()
    return sites.site_json(row, sites.held(s).get(row.id, (0, 0)))


@api.post("/sites/{site_id}/tokens", status_code=201, tags=["agents"], responses=errors(403, 404, 409, 422))
def create_site_token(site_id: str, s: Sess, who: Staff) -> dict:
    """Issue the site token its agent uses (admin / operator); shown in this answer only."""
    token = agents.issue_token(s, site_id, who.actor)
    s.commit()
    return {"token": token, "role": "site", "site_id": site_id}


@api.get("/sites/{site_id}/agent/config", tags=["agents"], responses=errors(403, 404, 409, 422))
def agent_config(site_id: str, s: Sess, svc: Svc, _: Agent) -> dict:
    """What the site's agent drives (site token): engine, engine settings, whether commands may run, the
    heartbeat timeout (s) it must beat, and the tag its engine jobs carry (`engine_owner`)."""
    row = sites.get(s, site_id)
    return {
        "site_id": row.id,
        "engine": row.executor,
        "engine_settings": dict(row.engine_settings or {}),
        "allow_commands": bool(row.allow_commands),
        "heartbeat_timeout_s": svc.cfg.heartbeat_timeout_s,
        "engine_owner": agents.owner_tag(row),
    }


@api.post("/sites/{site_id}/agent/heartbeat", tags=["agents"], responses=errors(403, 404, 409, 422))
def agent_heartbeat(site_id: str, body: HeartbeatIn, s: Sess, svc: Svc, who: Agent) -> dict:
    """The site's agent is alive and read this capacity from its engine (site token); an engine that does not
    answer takes the site down. Answers the site and the heartbeat timeout (s) the agent must beat."""
    row = agents.agent_heartbeat(s, site_id, body, who.actor, svc.cfg.max_attempts, svc.cfg.agent_lost_s)
    s.commit()
    held, waiting = sites.held(s), sites.held(s, ("placed",))
    out = sites.site_json(row, held.get(row.id, (0, 0)), waiting.get(row.id, (0, 0)))
    return {"site": out, "heartbeat_timeout_s": svc.cfg.heartbeat_timeout_s}


@api.post("/sites/{site_id}/agent/claim", tags=["agents"], responses=errors(403, 404, 409, 422))
def agent_claim(site_id: str, body: ClaimIn, s: Sess, who: Agent) -> dict:
    """The jobs the site's agent must submit, poll and cancel, and the engine jobs of its tag to cancel as orphans
    (site token)."""
    out = agents.claim(s, site_id, body.limit, who.actor, body.engine_jobs, body.swept)
    s.commit()
    return out


@api.post("/sites/{site_id}/agent/reports", tags=["agents"], responses=errors(403, 404, 409, 422))
def agent_reports(site_id: str, body: ReportManyIn, s: Sess, svc: Svc, who: Agent) -> dict:
    """Several reports at once, in one transaction (site token): one result per report, in order; `ok: false`
    means that job is not this site's to run any more - stop it in the engine."""
    results = agents.report_many(s, site_id, body.reports, who.actor, svc.cfg.max_attempts)
    s.commit()
    for item in body.reports:
        if item.state == "failed" and (item.lost or item.exit_code is None):
            svc.metrics.dispatch_failed(site_id)
    return {"results": results}


@api.post("/sites/{site_id}/agent/jobs/{job_id}/report", tags=["agents"], responses=errors(403, 404, 409, 422))
def agent_report(site_id: str, job_id: str, body: ReportIn, s: Sess, svc: Svc, who: Agent) -> dict:
    """What the engine says about one job: running (with its engine reference), done, failed (exit code, engine
    reason; `lost` retries it elsewhere) or cancelled (the stop is confirmed); optional logs (site token).
    409: the job is not this site's to run any more - stop it in the engine."""
    row = agents.report(s, site_id, job_id, body, who.actor, svc.cfg.max_attempts)
    s.commit()
    if body.state == "failed" and (body.lost or body.exit_code is None):  # refused or lost by the engine
        svc.metrics.dispatch_failed(site_id)
    return {"job_id": row.id, "state": row.state, "attempts": row.attempts}


@api.post("/sites/{site_id}/heartbeat", tags=["sites"], responses=errors(403, 404))
def site_heartbeat(site_id: str, s: Sess, who: Staff) -> dict:
    """Record that the site is alive (admin / operator); turns heartbeat monitoring on for it."""
    row = sites.heartbeat(s, site_id, who.actor)
    s.commit()
    return sites.site_json(row, sites.held(s).get(row.id, (0, 0)))


def _owner(svc: Service, who: Principal, requested: str | None) -> tuple[int, str]:
    with svc.sessions() as s:
        return jobs.tenant_for_submit(s, who, requested)


@api.post("/jobs", status_code=201, tags=["jobs"], responses={**errors(403, 422), **RETRY})
async def submit_job(body: JobIn, svc: Svc, who: Who, key: IdemKey = None) -> dict:
    """Submit one job; it is committed before the answer. The same Idempotency-Key with the same body returns the
    same job (200); with another body it is refused (422)."""
    if who.role is Role.TENANT:
        tenant_id, tenant = jobs.tenant_for_submit(None, who, body.tenant)  # no database needed
    else:
        tenant_id, tenant = await run_in_threadpool(_owner, svc, who, body.tenant)
    new = jobs.new_job(svc.atlas, body, tenant_id, tenant, key, who, svc.cfg.allow_commands)
    return await store_and_answer(svc, new)


@api.post("/jobs/batch", status_code=201, tags=["jobs"], responses={**errors(403, 409, 422), **RETRY})
def submit_batch(body: JobBatchIn, response: Response, s: Sess, svc: Svc, who: Who, key: IdemKey = None) -> dict:
    """Submit several jobs in one transaction (all or none). The same Idempotency-Key with the same jobs returns
    them (200); with other jobs, or another number of them, it is refused (422)."""
    out, created = jobs.submit(s, svc.atlas, who, body.jobs, key, svc.cfg.allow_commands)
    if not created:
        response.status_code = status.HTTP_200_OK
    return {"jobs": [jobs.job_json(r, t, svc.atlas) for r, t in out]}


@api.get("/jobs", tags=["jobs"], responses=errors(422))
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


@api.get("/jobs/{job_id}", tags=["jobs"], responses=errors(404))
def get_job(job_id: str, s: Sess, svc: Svc, who: Who) -> dict:
    """One job."""
    return jobs.job_json(*jobs.get(s, who, job_id), svc.atlas)


@api.post("/jobs/{job_id}/cancel", tags=["jobs"], responses=errors(404, 409))
def cancel_job(job_id: str, s: Sess, svc: Svc, who: Who) -> dict:
    """Cancel a job that has not ended; 409 when it has."""
    return jobs.job_json(*jobs.cancel(s, who, job_id, svc.executors), svc.atlas)


@api.get("/jobs/{job_id}/placement", tags=["jobs"], responses=errors(404))
def job_placement(job_id: str, s: Sess, who: Who) -> dict:
    """Where the job was placed, its predicted cost, energy, carbon, latency, and every site's verdict (for a
    tenant without other tenants' load: no free capacity, no utilisation score)."""
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
        "verdicts": visibility.verdicts_for(who, verdicts_of(row.verdicts)),
    }


@api.get("/jobs/{job_id}/logs", tags=["jobs"], responses=errors(404))
def job_logs(job_id: str, s: Sess, svc: Svc, who: Who) -> dict:
    """The job's captured output from its executor (empty before it starts)."""
    row, _ = jobs.get(s, who, job_id)
    name, _, ref = (row.executor_ref or "").partition(":")
    ex = svc.executors.get(name)
    text = ex.logs(ref) if ex and ref else agents.stored_logs(s, row.id)
    return {"job_id": row.id, "logs": text}


@api.get("/audit", tags=["audit"], responses=errors(403, 422))
def audit_log(s: Sess, _: Staff, limit: Limit = 50, offset: Offset = 0) -> dict:
    """The append-only audit log, newest first (admin / operator)."""
    return audit.page(s, limit, offset)


@api.get("/metrics/summary", tags=["metrics"], responses=errors(422))
def metrics_summary(s: Sess, who: Who, by: Literal["tenant", "site", "day"] = "tenant") -> list[dict]:
    """Predicted cost (CNY), energy (kWh), carbon (kgCO2) and job count of placed jobs, by tenant, site or day."""
    return metrics.summary(s, who, by)


tenancy_routes.install(api, {"Sess": Sess, "Svc": Svc, "Who": Who, "Staff": Staff})  # /quotas, /usage, /quotes


def _parse_error(exc: StarletteHTTPException) -> str:
    """The detail of an HTTP error; FastAPI's 'error parsing the body' says what was wrong with it (one line)."""
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        return "body: JSON nested too deeply to parse (about 1,000 levels at most) - send a flatter document"
    if isinstance(cause, UnicodeDecodeError):
        return f"body: not UTF-8 (byte {cause.start} is 0x{cause.object[cause.start]:02x}) - send JSON in UTF-8"
    return exc.detail


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
    app.add_exception_handler(ServiceError, lambda _r, e: error_response(e))

    def _db_fault(_r: Request, exc: Exception) -> JSONResponse:
        svc.health.failed(fault_reason(exc))
        log.warning("database fault answered 503: %s", fault_reason(exc))
        return db_fault_response(exc)

    for fault in DB_FAULTS:
        app.add_exception_handler(fault, _db_fault)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": _parse_error(exc)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _internal(_r: Request, exc: Exception) -> JSONResponse:  # a bug: JSON still, and logged by the server
        return JSONResponse({"detail": "internal error - it is logged; please report it"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse, responses=errors(401, 403))
    def prometheus_metrics(_: Staff) -> PlainTextResponse:
        """Prometheus text format: jobs by state and site, placements, scheduling latency, dispatch failures,
        site heartbeat ages (docs/engines.md)."""
        return PlainTextResponse(svc.metrics.text(), media_type=CONTENT_TYPE)

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=Health,
        responses={503: {"model": Health, "description": "the database does not take writes now"}},
    )
    def healthz():
        """Whether this replica's database takes writes now (a write rolled back, and the replica's last failed
        write), and which database it is; 503 with Retry-After when it does not."""
        why = svc.health.check(svc.engine)
        if why is None:
            return Health(status="ok", db=svc.dialect, writable=True)
        body = Health(status="degraded", db=svc.dialect, writable=False, detail=why).model_dump()
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    app.include_router(api)
    static = Path(str(importlib.resources.files("suanwang.service") / "static"))
    if static.is_dir():
        app.mount("/dashboard", StaticFiles(directory=static, html=True), name="dashboard")
    return app
