"""Bring a database to the newest schema with the Alembic migrations shipped in this package."""

from __future__ import annotations

import importlib.resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

# An arbitrary constant key for pg_advisory_lock, so that two replicas starting together migrate one at a time.
MIGRATION_LOCK_KEY = 0x5A3E_0001


def upgrade(engine: sa.Engine) -> None:
    """Run every pending migration on `engine`'s database (idempotent; safe with concurrent starters)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files("suanwang.service") / "migrations"))
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if postgres:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
