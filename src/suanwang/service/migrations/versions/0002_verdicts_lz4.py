"""PostgreSQL: compress the per-job verdicts column (about 8 kB of JSON per placed job) with lz4 instead of pglz,
where the server supports it (PostgreSQL 14+ built with lz4): the same stored JSON, less CPU per placement.
Values already stored keep their compression; SQLite is unchanged.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HAS_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def _lz4_available() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "postgresql" and bool(bind.execute(sa.text(HAS_LZ4)).scalar())


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE jobs ALTER COLUMN verdicts SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE jobs ALTER COLUMN verdicts SET COMPRESSION default")
