"""A site goes down: marked so (audited), and its placed and running jobs go back to the queue (an agent site's
running jobs stay for its restarted agent: `agents.site_down`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from suanwang.service import agents, audit, jobs
from suanwang.service.db import SiteRow, utcnow
from suanwang.service.executors import Executor


def mark_down(
    session: Session, site: SiteRow, executors: dict[str, Executor], actor: str, why: str, max_attempts: int = 3
) -> int:
    """Mark `site` down (audited) and re-queue its placed and running jobs; returns how many were re-queued.
    An agent site keeps its running jobs (see `agents.site_down`)."""
    if site.executor not in executors:
        return agents.site_down(session, site, actor, why, False, max_attempts)
    site.status, site.updated_at = "down", utcnow()
    n = jobs.requeue_site(session, site.id, executors, actor, f"site {site.id} down ({why})")
    audit.record(session, actor, "site_down", f"site:{site.id}", why=why, requeued=n)
    return n
