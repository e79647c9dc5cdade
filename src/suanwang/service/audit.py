"""The append-only audit log: every state change of a job, site, tenant or token is one event."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from suanwang.service.db import AuditEvent, iso, pg_unnest

SYSTEM = "system:scheduler"


def record(session: Session, actor: str, action: str, obj: str, **detail: Any) -> None:
    """Append one event in the caller's transaction, so it commits (or not) with the change it describes."""
    session.add(AuditEvent(actor=actor, action=action, object=obj, detail=detail))


_COLUMNS = ("at", "actor", "action", "object", "detail")


def record_many(conn: sa.Connection, events: list[dict]) -> None:
    """Append events ({at, actor, action, object, detail}) in the caller's transaction with one statement."""
    if not events:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(sa.insert(AuditEvent.__table__), events)
        return
    rows = pg_unnest(AuditEvent.__table__, _COLUMNS)
    sql = f"INSERT INTO audit ({', '.join(_COLUMNS)}) SELECT at, actor, action, object, detail::json FROM {rows}"
    params = [[e[c] for e in events] for c in _COLUMNS[:-1]] + [[json.dumps(e["detail"]) for e in events]]
    conn.exec_driver_sql(sql, tuple(params))


def page(session: Session, limit: int, offset: int) -> dict:
    """Events newest first: {"items": [...], "total": n}."""
    total = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    rows = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset))
    items = [
        {"id": e.id, "at": iso(e.at), "actor": e.actor, "action": e.action, "object": e.object, "detail": e.detail}
        for e in rows
    ]
    return {"items": items, "total": total}
