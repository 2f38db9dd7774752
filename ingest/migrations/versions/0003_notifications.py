"""Notification channels, their delivery outbox, which alert events were queued for
sending, and the `offline` threshold metric.

Revision ID: 0003_notifications
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_notifications"
down_revision: str | None = "0002_history_tiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "ingest"
TS = sa.DateTime(timezone=True)


def _metric_types(values: str) -> None:
    op.drop_constraint("ck_thresholds_metric_type", "thresholds", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "ck_thresholds_metric_type", "thresholds", f"metric_type IN ({values})", schema=SCHEMA
    )


def upgrade() -> None:
    _metric_types("'cpu', 'memory', 'disk', 'offline'")
    # Which of an alert's events are in the outbox already; alerts from before are not news.
    for column in ("fired_queued", "resolved_queued"):
        op.add_column(
            "alerts",
            sa.Column(column, sa.Boolean(), nullable=False, server_default=sa.false()),
            schema=SCHEMA,
        )
    op.execute(f"UPDATE {SCHEMA}.alerts SET fired_queued = true, resolved_queued = true")
    op.create_index(
        "ix_alerts_to_queue",
        "alerts",
        ["created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT fired_queued OR (status = 'resolved' AND NOT resolved_queued)"),
    )
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_sent_at", TS, nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_ingest_notification_channels_user_id",
        "notification_channels",
        ["user_id"],
        schema=SCHEMA,
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("event_key", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("body", postgresql.JSONB(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], [f"{SCHEMA}.notification_channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", "event_key"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["next_attempt_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("notification_deliveries", schema=SCHEMA)
    op.drop_table("notification_channels", schema=SCHEMA)
    op.drop_index("ix_alerts_to_queue", "alerts", schema=SCHEMA)
    for column in ("fired_queued", "resolved_queued"):
        op.drop_column("alerts", column, schema=SCHEMA)
    op.execute(f"DELETE FROM {SCHEMA}.thresholds WHERE metric_type = 'offline'")
    _metric_types("'cpu', 'memory', 'disk'")
