"""Errors of the service layer; each maps to one HTTP status and names the field and the fix."""

from __future__ import annotations

from starlette.responses import JSONResponse

from suanwang.errors import SuanwangError


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
