"""A site goes down: marked so (audited), and its placed and running jobs go back to the queue."""

from __future__ import annotations

from sqlalchemy.orm import Session

from suanwang.service import audit, jobs
from suanwang.service.db import SiteRow, utcnow
from suanwang.service.executors import Executor


def mark_down(session: Session, site: SiteRow, executors: dict[str, Executor], actor: str, why: str) -> int:
    """Mark `site` down (audited) and re-queue its placed and running jobs; returns how many were re-queued."""
    site.status, site.updated_at = "down", utcnow()
    n = jobs.requeue_site(session, site.id, executors, actor, f"site {site.id} down ({why})")
    audit.record(session, actor, "site_down", f"site:{site.id}", why=why, requeued=n)
    return n
