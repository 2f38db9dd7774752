"""Initial ingest schema: metrics, logs, thresholds, alerts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "ingest"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_percent", sa.Float(), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("server_id", "timestamp"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_metrics_timestamp_brin",
        "metrics",
        ["timestamp"],
        schema=SCHEMA,
        postgresql_using="brin",
    )

    op.create_table(
        "logs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_logs_server_timestamp_digest",
        "logs",
        ["server_id", "timestamp", "digest"],
        unique=True,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_logs_server_timestamp", "logs", ["server_id", sa.text("timestamp DESC")], schema=SCHEMA
    )
    op.create_index("ix_logs_timestamp_brin", "logs", ["timestamp"], schema=SCHEMA, postgresql_using="brin")

    op.create_table(
        "thresholds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("metric_type", sa.String(length=16), nullable=False),
        sa.Column("comparison", sa.String(length=8), nullable=False),
        sa.Column("threshold_value", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("breach_since", TS, nullable=True),
        sa.Column("latched", sa.Boolean(), nullable=False),
        sa.Column("evaluated_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("metric_type IN ('cpu', 'memory', 'disk')", name="ck_thresholds_metric_type"),
        sa.CheckConstraint("comparison IN ('gt', 'lt')", name="ck_thresholds_comparison"),
        schema=SCHEMA,
    )
    op.create_index("ix_ingest_thresholds_user_id", "thresholds", ["user_id"], schema=SCHEMA)
    op.create_index("ix_ingest_thresholds_server_id", "thresholds", ["server_id"], schema=SCHEMA)

    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("threshold_id", sa.Uuid(), nullable=True),
        sa.Column("metric_type", sa.String(length=16), nullable=False),
        sa.Column("comparison", sa.String(length=8), nullable=False),
        sa.Column("threshold_value", sa.Float(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["threshold_id"], [f"{SCHEMA}.thresholds.id"], ondelete="SET NULL"),
        sa.CheckConstraint("status IN ('active', 'resolved')", name="ck_alerts_status"),
        schema=SCHEMA,
    )
    op.create_index("ix_ingest_alerts_threshold_id", "alerts", ["threshold_id"], schema=SCHEMA)
    op.create_index("ix_alerts_user_created", "alerts", ["user_id", "created_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("alerts", schema=SCHEMA)
    op.drop_table("thresholds", schema=SCHEMA)
    op.drop_table("logs", schema=SCHEMA)
    op.drop_table("metrics", schema=SCHEMA)
