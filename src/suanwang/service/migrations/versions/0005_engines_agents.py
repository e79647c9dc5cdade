"""Engines and site agents: a site's engine settings, the capacity its agent reads from the engine, site tokens,
a job's retry bookkeeping (the site to avoid, claim and cancel confirmation times) and logs uploaded by agents.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _site_columns() -> tuple[sa.Column, ...]:
    return (
        sa.Column("engine_settings", sa.JSON, nullable=True),
        sa.Column("allow_commands", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("engine_cpu_total", sa.BigInteger, nullable=True),
        sa.Column("engine_cpu_free", sa.BigInteger, nullable=True),
        sa.Column("engine_gpu_total", sa.BigInteger, nullable=True),
        sa.Column("engine_gpu_free", sa.BigInteger, nullable=True),
        sa.Column("engine_message", sa.Text, nullable=True),
    )


def _job_columns() -> tuple[sa.Column, ...]:
    return (
        sa.Column("avoid_site", sa.String(64), nullable=True),
        sa.Column("claimed_at", sa.DateTime, nullable=True),
        sa.Column("cancel_confirmed_at", sa.DateTime, nullable=True),
    )


def upgrade() -> None:
    with op.batch_alter_table("sites") as b:
        for c in _site_columns():
            b.add_column(c)
    with op.batch_alter_table("jobs") as b:
        for c in _job_columns():
            b.add_column(c)
    with op.batch_alter_table("tokens") as b:
        b.add_column(sa.Column("site_id", sa.String(64), nullable=True))
    op.create_table(
        "job_logs",
        sa.Column("job_id", sa.String(40), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_logs")
    with op.batch_alter_table("tokens") as b:
        b.drop_column("site_id")
    with op.batch_alter_table("jobs") as b:
        for c in _job_columns():
            b.drop_column(c.name)
    with op.batch_alter_table("sites") as b:
        for c in _site_columns():
            b.drop_column(c.name)
