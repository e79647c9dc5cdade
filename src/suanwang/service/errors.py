"""Errors of the service layer; each maps to one HTTP status and names the field and the fix."""

from __future__ import annotations

from suanwang.errors import SuanwangError


class ServiceError(SuanwangError):
    """A request the service refuses; `status` is the HTTP status it answers with."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class Invalid(ServiceError):
    """A value that passes the schema but not the service's rules (unknown tenant, province...)."""

    status = 422
