"""Tenancy: the tenancy document the service enforces (quotas, fair-share weights, half-life), the holdings ledger
(which job took how many cores and cards at which scheduler hour, while it holds them) and each tenant's decayed
usage of the holdings that have ended (fair share).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenancy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=False),
    )
    op.create_table(
        "holds",
        sa.Column("job_seq", sa.Integer, sa.ForeignKey("jobs.seq", ondelete="CASCADE"), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("cpu_cores", sa.BigInteger, nullable=False),
        sa.Column("gpu_cards", sa.BigInteger, nullable=False),
        sa.Column("hold_h", sa.Float, nullable=False),
    )
    op.create_table(
        "tenant_usage",
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("core_h", sa.Float, nullable=False),
        sa.Column("card_h", sa.Float, nullable=False),
        sa.Column("at_h", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_usage")
    op.drop_table("holds")
    op.drop_table("tenancy")
