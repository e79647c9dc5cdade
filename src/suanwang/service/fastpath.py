"""The hot path of the API: a well-formed single-job submission by a known tenant token, served without FastAPI's
routing and dependency resolution (about half of a submission's CPU when it goes through them).

`SubmitFastPath` is ASGI middleware in front of the FastAPI app. It takes `POST /api/v1/jobs` only when the request
is the common, valid case: a JSON body, `Authorization: Bearer <token>` whose tenant principal is in the replica's
token cache, an `Idempotency-Key` (if any) within bounds, and a body that validates as `JobIn` and resolves against
the atlas. It then does exactly what the route does - the same functions, in the same order - and answers.

Everything else goes to FastAPI with the body replayed untouched: an unknown or uncached token, an admin token, a
body that does not validate, an unknown city, a tenant mismatch. So every error answer (401, 403, 422 with its
field, 413) is FastAPI's own and stays identical. The only errors the fast path answers itself come after the
decision, from the same code the route runs (`store_and_answer`, `errors.error_response`): an Idempotency-Key
reused for another request (422), a database fault (503). Nothing is written before that decision is made, so
a request is never stored twice.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import status
from fastapi.responses import JSONResponse

from suanwang.service import jobs
from suanwang.service.auth import Principal, Role
from suanwang.service.errors import DB_FAULTS, ServiceError, db_fault_response, error_response
from suanwang.service.limits import KEY_MAX_CHARS
from suanwang.service.runtime import Service
from suanwang.service.schemas import JobIn

PATH = "/api/v1/jobs"


async def store_and_answer(svc: Service, new: jobs.NewJob) -> JSONResponse:
    """Store one new job through the replica's group commit and build the answer: 201 with the job, or 200 with the
    stored job when its Idempotency-Key was already used for the same request (Invalid when for another)."""
    row, created = await svc.intake.submit(new)
    if not created:
        jobs.check_retry(new, row, new.values["idempotency_key"])
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse(jobs.job_json(row, new.tenant, svc.atlas), status_code=code)


def _headers(scope) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(content-type, authorization, idempotency-key) as sent: the first of each, None when absent."""
    ctype = authz = key = None
    for name, value in scope["headers"]:
        if name == b"content-type" and ctype is None:
            ctype = value
        elif name == b"authorization" and authz is None:
            authz = value
        elif name == b"idempotency-key" and key is None:
            key = value
    return ctype, authz, key


class SubmitFastPath:
    """ASGI middleware: serves the common single-job submission directly, hands every other request to `app`."""

    def __init__(self, app, svc: Service):
        self.app = app
        self.svc = svc

    def _principal(self, authz: bytes | None) -> Principal | None:
        """The cached tenant principal of a `Bearer` token, else None (FastAPI then authenticates and answers)."""
        if authz is None:
            return None
        scheme, _, token = authz.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        who = self.svc.tokens.get(token)
        return who if who is not None and who.role is Role.TENANT else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            return await self.app(scope, receive, send)
        ctype, authz, raw_key = _headers(scope)
        who = self._principal(authz)
        key = None if raw_key is None else raw_key.decode("latin-1")
        fast = (
            who is not None
            and ctype is not None
            and ctype.split(b";", 1)[0].strip().lower() == b"application/json"
            and (key is None or 1 <= len(key) <= KEY_MAX_CHARS)
        )
        if not fast:
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away before sending its body
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        new = self._prepare(raw, who, key)
        if new is None:
            return await self.app(scope, _replay(raw, receive), send)
        try:
            response = await store_and_answer(self.svc, new)
        except ServiceError as e:  # an Idempotency-Key reused for another request: the route's own answer
            response = error_response(e)
        except DB_FAULTS as e:  # the database is down, full or read-only: the route's own 503
            response = db_fault_response(e)
        await response(scope, receive, send)

    def _prepare(self, raw: bytes, who: Principal, key: str | None) -> jobs.NewJob | None:
        """The new job when the request is valid as the route would judge it; None to let FastAPI judge it."""
        try:
            body = JobIn.model_validate(json.loads(raw))  # what FastAPI does with a JSON body (stdlib json)
            tenant_id, tenant = jobs.tenant_for_submit(None, who, body.tenant)  # a tenant token needs no database
            return jobs.new_job(self.svc.atlas, body, tenant_id, tenant, key, who, self.svc.cfg.allow_commands)
        except Exception:  # anything the route would refuse (bad JSON, too deep, not UTF-8, invalid): FastAPI judges
            return None


def _replay(raw: bytes, receive):
    """A `receive` that hands over the already-read body once, then whatever the client sends next."""
    sent = False

    async def again() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again
