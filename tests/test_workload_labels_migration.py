"""Migration 0003 adds `labels` to the job table: jobs stored before it read back with no labels, on SQLite and
PostgreSQL, and the upgrade can be undone."""

from __future__ import annotations

import importlib.resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from test_service_fixtures import *  # noqa: F403 - fixtures

from suanwang.service.db import JobRow, make_engine
from suanwang.service.placement import to_job


def _alembic(conn: sa.Connection, target: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files("suanwang.service") / "migrations"))
    cfg.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(cfg, target)
    conn.commit()


def test_jobs_stored_before_0003_have_no_labels(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        _alembic(conn, "0002")
        conn.execute(sa.text("INSERT INTO tenants (name, created_at) VALUES ('old', CURRENT_TIMESTAMP)"))
        tid = conn.execute(sa.text("SELECT id FROM tenants WHERE name = 'old'")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, tenant_id, origin, origin_label, origin_province, cpu_cores, gpu_cards, "
                "mem_gb, runtime_h, input_gb, output_gb, data_province, latency_class, data_class, priority, "
                "submit_h, state, reason, attempts, created_at, updated_at) VALUES ('job_old', :t, '411000', "
                "'许昌', 'henan', 4, 0, 0, 2, 0, 0, 'henan', 'batch', 'public', 0, 1.0, 'queued', '', 0, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"t": tid},
        )
        conn.commit()
        _alembic(conn, "0003")
        have = {c["name"] for c in sa.inspect(conn).get_columns("jobs")}  # later migrations add more columns
        columns = [c for c in JobRow.__table__.c if c.name in have]
        row = conn.execute(sa.select(*columns).where(JobRow.__table__.c.id == "job_old")).one()
        assert row.labels == [] and to_job(row, "old").labels == ()
        _alembic(conn, "0002", down=True)
        assert "labels" not in {c["name"] for c in sa.inspect(conn).get_columns("jobs")}
    engine.dispose()
