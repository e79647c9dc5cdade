"""`GET /metrics` in the Prometheus text format (prometheus_client), for operators' dashboards and alerts.

Counted in this process (by the scheduling loop it runs): placements, scheduling latency (submission to
placement, seconds), dispatch failures. Read from the database at each scrape: jobs by state and site, and each
monitored site's heartbeat age (seconds). With `serve --workers N` the loop runs in a process of its own, so the
loop's counters are zero in API workers (scrape a single-process replica, or read the audit log).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.orm import sessionmaker

from suanwang.service.db import JobRow, SiteRow, utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _DatabaseCollector:
    """Gauges read from the database when scraped."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def collect(self):
        by_state = GaugeMetricFamily(
            "suanwang_jobs", "Jobs by state and site (site '' before placement)", labels=["state", "site"]
        )
        age = GaugeMetricFamily(
            "suanwang_site_heartbeat_age_seconds",
            "Seconds since a monitored site's (agent's) last heartbeat",
            labels=["site", "engine"],
        )
        up = GaugeMetricFamily("suanwang_site_up", "1 when a site is up, 0 when down", labels=["site", "engine"])
        now = utcnow()
        with self.sessions() as s:
            counts = s.execute(
                sa.select(JobRow.state, JobRow.site_id, sa.func.count()).group_by(JobRow.state, JobRow.site_id)
            )
            for state, site, n in counts:
                by_state.add_metric([state, site or ""], n)
            for sid, engine, status, monitored, beat in s.execute(
                sa.select(SiteRow.id, SiteRow.executor, SiteRow.status, SiteRow.monitored, SiteRow.last_heartbeat)
            ):
                up.add_metric([sid, engine], 1.0 if status == "up" else 0.0)
                if monitored and isinstance(beat, datetime):
                    age.add_metric([sid, engine], max(0.0, (now - beat).total_seconds()))
        yield by_state
        yield age
        yield up


class ServiceMetrics:
    """One replica's registry: the loop's counters and the database gauges."""

    def __init__(self, sessions: sessionmaker | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        self.placements = Counter("suanwang_placements", "Jobs placed on a site", ["site"], registry=self.registry)
        self.latency = Histogram(
            "suanwang_scheduling_latency_seconds",
            "Seconds from a job's submission to its placement",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.failures = Counter(
            "suanwang_dispatch_failures", "Jobs an engine refused or lost", ["site"], registry=self.registry
        )
        if sessions is not None:
            self.registry.register(_DatabaseCollector(sessions))

    def placed(self, site_id: str, latency_s: float) -> None:
        """Count one placement on `site_id`, `latency_s` seconds after its submission."""
        self.placements.labels(site_id).inc()
        self.latency.observe(max(0.0, latency_s))

    def dispatch_failed(self, site_id: str | None) -> None:
        """Count one job an engine refused or lost at `site_id`."""
        self.failures.labels(site_id or "").inc()

    def text(self) -> bytes:
        """Every metric in the Prometheus text exposition format."""
        return generate_latest(self.registry)
