"""Initial schema: tenants, tokens, sites, jobs, audit.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("lookup", sa.String(32), nullable=False, index=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id")),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name_zh", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("province_id", sa.String(32), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("pue", sa.Float, nullable=False),
        sa.Column("green_share", sa.Float, nullable=False),
        sa.Column("cpu_cores", sa.BigInteger, nullable=False),
        sa.Column("gpu_cards", sa.BigInteger, nullable=False),
        sa.Column("price_cny_per_kwh", sa.Float, nullable=False),
        sa.Column("carbon_kg_per_kwh", sa.Float, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("hub_id", sa.String(32), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("monitored", sa.Boolean, nullable=False),
        sa.Column("last_heartbeat", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("origin", sa.String(12), nullable=False),
        sa.Column("origin_label", sa.String(100), nullable=False),
        sa.Column("origin_province", sa.String(32), nullable=False),
        sa.Column("cpu_cores", sa.BigInteger, nullable=False),
        sa.Column("gpu_cards", sa.BigInteger, nullable=False),
        sa.Column("mem_gb", sa.Float, nullable=False),
        sa.Column("runtime_h", sa.Float, nullable=False),
        sa.Column("input_gb", sa.Float, nullable=False),
        sa.Column("output_gb", sa.Float, nullable=False),
        sa.Column("data_province", sa.String(32), nullable=False),
        sa.Column("latency_class", sa.String(16), nullable=False),
        sa.Column("max_latency_ms", sa.Float),
        sa.Column("deadline_h", sa.Float),
        sa.Column("data_class", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("command", sa.Text),
        sa.Column("submit_h", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("site_id", sa.String(64), index=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("policy", sa.String(32)),
        sa.Column("cost_cny", sa.Float),
        sa.Column("energy_kwh", sa.Float),
        sa.Column("carbon_kg", sa.Float),
        sa.Column("latency_ms", sa.Float),
        sa.Column("transfer_h", sa.Float),
        sa.Column("verdicts", sa.JSON),
        sa.Column("executor_ref", sa.String(200)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_key"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("object", sa.String(120), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("audit", "jobs", "sites", "tokens", "tenants"):
        op.drop_table(table)
