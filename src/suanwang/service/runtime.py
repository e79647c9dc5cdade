"""A running service: engine, migrated schema, seeded sites, the placer, executors and the scheduling loop."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from suanwang.atlas import Atlas, load_atlas
from suanwang.service import audit, migrate, sites, tenancy
from suanwang.service.auth import Principal, TokenCache, authenticate, ensure_admin_token
from suanwang.service.config import ServiceConfig
from suanwang.service.db import WriteHealth, dialect_name, make_engine, make_sessionmaker
from suanwang.service.executors import Executor, LocalExecutor
from suanwang.service.intake import Intake
from suanwang.service.loop import SchedulingLoop
from suanwang.service.placement import Placer
from suanwang.service.prometheus import ServiceMetrics


class Service:
    """Everything one replica holds. Construction migrates the database, seeds sites and ensures the admin token."""

    def __init__(self, cfg: ServiceConfig, atlas: Atlas | None = None, make_policy: Callable | None = None):
        self.cfg = cfg
        self.atlas = atlas or load_atlas()
        self.dialect = dialect_name(cfg.db_url)
        self.engine = make_engine(cfg.db_url)
        migrate.upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        with self.sessions() as s, s.begin():
            if self.dialect == "postgresql":  # two replicas starting together seed once
                s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": migrate.MIGRATION_LOCK_KEY})
            added = sites.seed(s, self.atlas)
            if added:
                audit.record(s, audit.SYSTEM, "site_seed", "sites", added=added)
            if cfg.quotas is not None:
                tenancy.store(s, cfg.quotas, audit.SYSTEM)
            if cfg.admin_token and ensure_admin_token(s, cfg.admin_token):
                audit.record(s, audit.SYSTEM, "token_create", "token:bootstrap", role="admin")
        self.executors: dict[str, Executor] = {
            "local": LocalExecutor(cfg.workdir, cfg.simulated_run_s, cfg.allow_commands)
        }
        self.placer = Placer(self.atlas, cfg.policy, make_policy)
        self.metrics = ServiceMetrics(self.sessions)
        self.loop = SchedulingLoop(self.sessions, self.placer, self.executors, cfg, self.metrics)
        self.health = WriteHealth()
        self.intake = Intake(self.engine, cfg.intake_batch, self.health)
        self.tokens = TokenCache(cfg.auth_cache_s)

    def authenticate(self, token: str) -> Principal | None:
        """The principal holding `token` (from the cache, else the database), or None."""
        who = self.tokens.get(token)
        if who is None:
            with self.sessions() as s:
                who = authenticate(s, token)
            if who is not None:
                self.tokens.put(token, who)
        return who

    def close(self) -> None:
        """Stop the loop and the intake, and release database connections."""
        self.loop.stop()
        self.intake.stop()
        self.engine.dispose()
