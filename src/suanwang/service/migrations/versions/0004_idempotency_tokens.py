"""The hash of the request an Idempotency-Key was first used with (a reuse with another body is refused), and token
revocation (a revoked token stays listed, for the audit trail, but no longer authenticates).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("request_hash", sa.String(64), nullable=True))
    op.add_column("tokens", sa.Column("revoked_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as t:
        t.drop_column("revoked_at")
    with op.batch_alter_table("jobs") as t:
        t.drop_column("request_hash")
