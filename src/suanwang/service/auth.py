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

from suanwang.service.db import Tenant, Token, iso, utcnow
from suanwang.service.errors import Conflict, NotFound


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
    rows = session.execute(
        sa.select(Token, Tenant.name)
        .outerjoin(Tenant)
        .where(Token.lookup == _lookup(token), Token.revoked_at.is_(None))
    )
    found = None
    for row, tenant_name in rows:
        if hmac.compare_digest(row.digest, _digest(row.salt, token)):
            found = Principal(Role(row.role), row.tenant_id, tenant_name, row.id, row.site_id)
    return found


def token_json(row: Token, tenant: str | None) -> dict:
    """The API's view of a token: never the token itself (the server does not keep it), only its metadata."""
    return {
        "id": row.id,
        "role": row.role,
        "tenant": tenant,
        "created_at": iso(row.created_at),
        "revoked_at": iso(row.revoked_at),
    }


def list_tokens(session: Session) -> list[dict]:
    """Every token, revoked ones too, oldest first."""
    rows = session.execute(sa.select(Token, Tenant.name).outerjoin(Tenant).order_by(Token.id))
    return [token_json(row, tenant) for row, tenant in rows]


def revoke(session: Session, token_id: int) -> dict:
    """Mark a token revoked (the caller audits and commits); NotFound / Conflict for an unknown or revoked one.
    Replicas that cached it stop accepting it within their `auth_cache_s`."""
    found = session.execute(
        sa.select(Token, Tenant.name).outerjoin(Tenant).where(Token.id == token_id).with_for_update(of=Token)
    ).first()
    if found is None:
        raise NotFound(f"no token {token_id} - list them with GET /api/v1/tokens", "token_id")
    row, tenant = found
    if row.revoked_at is not None:
        raise Conflict(f"token {token_id} was already revoked at {iso(row.revoked_at)}")
    row.revoked_at = utcnow()
    return token_json(row, tenant)


def ensure_admin_token(session: Session, token: str) -> bool:
    """Make sure `token` is a valid admin token; True when it had to be created (the caller commits). A revoked
    bootstrap token is stored afresh: the configured admin token works after every start."""
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
