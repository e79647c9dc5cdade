"""API tokens and roles. A token is stored as sha256(salt + token); the plain token is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from suanwang.service.db import Tenant, Token


class Role(StrEnum):
    """admin: everything; operator: sites, all jobs, audit; tenant: its own jobs only; site: the agent of one site
    (heartbeat, claim and report that site's jobs, upload their logs) and nothing else."""

    ADMIN = "admin"
    OPERATOR = "operator"
    TENANT = "tenant"
    SITE = "site"


@dataclass(frozen=True)
class Principal:
    """Who is calling: role, the tenant (id, name) for tenant tokens (admins may have none), the site for site
    tokens."""

    role: Role
    tenant_id: int | None
    tenant: str | None
    token_id: int
    site_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.role.value}:{self.tenant or self.site_id or '-'}#{self.token_id}"

    @property
    def staff(self) -> bool:
        """True for admin and operator: they see every tenant's jobs."""
        return self.role in (Role.ADMIN, Role.OPERATOR)


def _lookup(token: str) -> str:
    return hashlib.sha256(b"lookup:" + token.encode()).hexdigest()[:16]


def _digest(salt: str, token: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + token.encode()).hexdigest()


def new_token_string() -> str:
    """A fresh random token (about 256 bits)."""
    return "sw_" + secrets.token_urlsafe(32)


def store_token(session: Session, token: str, role: Role, tenant_id: int | None, site_id: str | None = None) -> Token:
    """Add a hashed token row for `token` (the caller commits); `site_id` for a site token."""
    salt = secrets.token_hex(16)
    row = Token(
        lookup=_lookup(token),
        salt=salt,
        digest=_digest(salt, token),
        role=role.value,
        tenant_id=tenant_id,
        site_id=site_id,
    )
    session.add(row)
    session.flush()
    return row


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal holding `token`, or None. Digests are compared in constant time."""
    rows = session.execute(sa.select(Token, Tenant.name).outerjoin(Tenant).where(Token.lookup == _lookup(token)))
    found = None
    for row, tenant_name in rows:
        if hmac.compare_digest(row.digest, _digest(row.salt, token)):
            found = Principal(Role(row.role), row.tenant_id, tenant_name, row.id, row.site_id)
    return found


def ensure_admin_token(session: Session, token: str) -> bool:
    """Make sure `token` is a valid admin token; True when it had to be created (the caller commits)."""
    principal = authenticate(session, token)
    if principal and principal.role is Role.ADMIN:
        return False
    store_token(session, token, Role.ADMIN, None)
    return True


class TokenCache:
    """Principals of recently seen tokens, so most requests authenticate without a database round trip.

    Keyed by the token's full SHA-256 (the plain token is never kept). An entry lives `ttl_s` seconds: a token
    deleted from the database keeps working on a replica that has cached it for at most that long. Unknown tokens
    are not cached. `ttl_s` = 0 turns the cache off.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> Principal | None:
        """The cached principal for `token`, or None when absent or expired."""
        if self.ttl_s <= 0:
            return None
        found = self._entries.get(self._key(token))
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, token: str, principal: Principal) -> None:
        """Remember `principal` for `token` for `ttl_s` seconds."""
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._key(token)] = (principal, time.monotonic() + self.ttl_s)

    def clear(self) -> None:
        """Forget every cached token (e.g. after a revocation on this replica)."""
        self._entries.clear()
