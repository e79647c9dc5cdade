"""Errors of the service layer; each maps to one HTTP status and names the field and the fix. Database faults
(unreachable, restarting, full, read-only) map to 503 with Retry-After."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from starlette.responses import JSONResponse

from suanwang.errors import SuanwangError
from suanwang.service.db import fault_reason


class ServiceError(SuanwangError):
    """A request the service refuses; `status` is the HTTP status it answers with."""

    status = 400

    def __init__(self, message: str, field: str | None = None, where: str = "body"):
        super().__init__(message)
        self.field = field
        self.where = where  # where the field is: "body", "header", "path" or "query"


class NotFound(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class Invalid(ServiceError):
    """A value that passes the schema but not the service's rules (unknown tenant, province...)."""

    status = 422


def error_response(exc: ServiceError) -> JSONResponse:
    """The JSON answer to a refused request: {"detail": message}, or for a 422 naming a field FastAPI's own shape
    {"detail": [{"loc": [where, field], "msg": ..., "type": "value_error"}]}. 401 asks for a bearer token."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    detail = str(exc)
    if exc.status == 422 and exc.field:
        item = {"loc": [exc.where, exc.field], "msg": detail, "type": "value_error"}
        suggestions = getattr(exc.__cause__ or exc.__context__, "suggestions", None)
        if suggestions:
            item["suggestions"] = suggestions
        return JSONResponse({"detail": [item]}, status_code=422)
    return JSONResponse({"detail": detail}, status_code=exc.status, headers=headers)


# Faults of the database rather than of the request: unreachable or restarting (OperationalError,
# DisconnectionError), full (OperationalError), read-only (sqlite3: OperationalError; PostgreSQL's
# read_only_sql_transaction: InternalError), no pooled connection in time (TimeoutError). They are answered 503.
DB_FAULTS = (sa_exc.OperationalError, sa_exc.InternalError, sa_exc.DisconnectionError, sa_exc.TimeoutError)
RETRY_AFTER_S = 2  # what a 503 asks the client to wait; an assumption: about one loop interval plus a reconnect


def db_fault_response(exc: BaseException) -> JSONResponse:
    """503 with a JSON body and Retry-After, for a request that met a database fault (nothing was stored)."""
    detail = (
        f"database unavailable ({fault_reason(exc)}) - retry in {RETRY_AFTER_S} s "
        "(with the same Idempotency-Key, a retry never stores a job twice)"
    )
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
