"""Shapes of the service's non-job answers for the OpenAPI spec: errors (by status) and the health check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Problem(BaseModel):
    """Every error answer: a one-line `detail` naming the field and the fix (422: FastAPI's list of items)."""

    detail: str | list[dict]


class Health(BaseModel):
    """GET /healthz: "ok" when the database takes writes, "degraded" (503) with the reason when it does not."""

    status: Literal["ok", "degraded"]
    db: str
    writable: bool
    detail: str | None = None


_WHY = {
    400: "the body is not JSON this server can read (not UTF-8, nested too deeply)",
    401: "no token, or an unknown or revoked one",
    403: "the token's role may not do this",
    404: "no such object (or not the caller's: ids of other tenants are never confirmed)",
    409: "the object's state forbids it (already exists, already ended, already revoked)",
    413: "request body larger than the server's limit",
    422: "a field is invalid; `detail[].loc` names it",
    503: "the database is unreachable, restarting, full or read-only; retry after `Retry-After` seconds",
}


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI `responses` for these error statuses (a 503 also documents its Retry-After header)."""
    out: dict[int | str, dict] = {}
    for code in codes:
        out[code] = {"model": Problem, "description": _WHY[code]}
        if code == 503:
            out[code]["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return out


ANY_REQUEST = (400, 401, 413, 503)  # what any authenticated API call can meet
