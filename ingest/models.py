"""Tables of the ingest service, all in the `ingest` schema (DESIGN §6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Table,
    Uuid,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from opswire.contract.types import utc_now

SCHEMA = "ingest"


def _ts(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class Metric(SQLModel, table=True):
    """One sample; `data` is the MetricsSample exactly as it was published."""

    __tablename__ = "metrics"
    __table_args__ = (
        # Retention deletes by time across all servers; rows arrive roughly in time order.
        Index("ix_metrics_timestamp_brin", "timestamp", postgresql_using="brin"),
        {"schema": SCHEMA},
    )

    server_id: uuid.UUID = Field(primary_key=True)
    timestamp: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    received_at: datetime = _ts(nullable=False)
    cpu_percent: float
    memory_percent: float
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


class LogEntry(SQLModel, table=True):
    __tablename__ = "logs"
    __table_args__ = (
        Index("uq_logs_server_timestamp_digest", "server_id", "timestamp", "digest", unique=True),
        Index("ix_logs_server_timestamp", "server_id", Column("timestamp").desc()),
        Index("ix_logs_timestamp_brin", "timestamp", postgresql_using="brin"),
        {"schema": SCHEMA},
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    server_id: uuid.UUID
    timestamp: datetime = _ts(nullable=False)
    received_at: datetime = _ts(nullable=False)
    level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    message: str
    source: str | None = None
    digest: str = Field(max_length=64)


class Threshold(SQLModel, table=True):
    """An alert rule plus its evaluation state (one breach at a time)."""

    __tablename__ = "thresholds"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(index=True)
    server_id: uuid.UUID = Field(index=True)
    metric_type: str = Field(max_length=16)
    comparison: str = Field(max_length=8)
    threshold_value: float
    duration_s: int = 0
    enabled: bool = True
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    # Evaluation state. `latched` is true while an alert for the current breach exists
    # (active, or resolved by hand), so one breach never fires twice.
    breach_since: datetime | None = _ts(nullable=True)
    latched: bool = False
    # Newest sample timestamp already evaluated: redelivered or late samples are skipped,
    # which keeps evaluation in time order and idempotent.
    evaluated_until: datetime | None = _ts(nullable=True)


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_user_created", "user_id", "created_at"),
        # The notification outbox's scan for events not queued yet (migration 0003).
        Index(
            "ix_alerts_to_queue",
            "created_at",
            postgresql_where=text("NOT fired_queued OR (status = 'resolved' AND NOT resolved_queued)"),
        ),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID
    server_id: uuid.UUID
    threshold_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            Uuid,
            ForeignKey(f"{SCHEMA}.thresholds.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
    )
    metric_type: str = Field(max_length=16)
    comparison: str = Field(max_length=8)
    threshold_value: float
    value: float
    status: str = Field(max_length=16)
    message: str
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    resolved_at: datetime | None = _ts(nullable=True)
    resolved_by: uuid.UUID | None = None
    # Which of its events are in the notification outbox already (ingest/notify/outbox.py).
    fired_queued: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    resolved_queued: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


def _tier_table(name: str) -> Table:
    """One history tier: a chart-ready point per server and bucket (ingest.tiers)."""
    return Table(
        name,
        SQLModel.metadata,
        Column("server_id", Uuid, primary_key=True),
        Column("bucket", DateTime(timezone=True), primary_key=True),
        Column("samples", Integer, nullable=False),
        Column("point", JSONB, nullable=False),
        Index(f"ix_{name}_bucket_brin", "bucket", postgresql_using="brin"),
        schema=SCHEMA,
    )


METRICS_1M = _tier_table("metrics_1m")
METRICS_10M = _tier_table("metrics_10m")
METRICS_1H = _tier_table("metrics_1h")
