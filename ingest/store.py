"""Queries behind the RPC handlers: history, logs, thresholds and alerts.

Everything a user can touch is filtered by `user_id` in the query itself, so
"not yours" and "does not exist" are the same empty result.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest.models import Alert, LogEntry, Metric, Threshold
from opswire.contract.telemetry import LogLevel


async def latest_sample(session: AsyncSession, server_id: uuid.UUID) -> dict[str, Any] | None:
    row = await session.execute(
        select(col(Metric.data))
        .where(col(Metric.server_id) == server_id)
        .order_by(col(Metric.timestamp).desc())
        .limit(1)
    )
    return row.scalar_one_or_none()


async def sample_history(
    session: AsyncSession, server_id: uuid.UUID, start: datetime, end: datetime, limit: int
) -> list[dict[str, Any]]:
    """The newest `limit` samples with start <= timestamp < end, oldest first."""
    rows = await session.execute(
        select(col(Metric.data))
        .where(
            col(Metric.server_id) == server_id,
            col(Metric.timestamp) >= start,
            col(Metric.timestamp) < end,
        )
        .order_by(col(Metric.timestamp).desc())
        .limit(limit)
    )
    newest_first: list[dict[str, Any]] = list(rows.scalars())
    newest_first.reverse()
    return newest_first


def log_item(entry: LogEntry) -> dict[str, Any]:
    """The LogLine shape, as dashboards get it live."""
    return {
        "level": LogLevel(entry.level).name.lower(),
        "message": entry.message,
        "timestamp": entry.timestamp,
        "source": entry.source,
        "server_id": str(entry.server_id),
        "received_at": entry.received_at,
    }


async def query_logs(
    session: AsyncSession,
    server_id: uuid.UUID,
    min_level: LogLevel | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(LogEntry).where(col(LogEntry.server_id) == server_id)
    if min_level is not None:
        query = query.where(col(LogEntry.level) >= int(min_level))
    if start is not None:
        query = query.where(col(LogEntry.timestamp) >= start)
    if end is not None:
        query = query.where(col(LogEntry.timestamp) < end)
    query = query.order_by(col(LogEntry.timestamp).desc(), col(LogEntry.id).desc()).limit(limit)
    return [log_item(entry) for entry in (await session.execute(query)).scalars()]


async def list_thresholds(
    session: AsyncSession, user_id: uuid.UUID, server_id: uuid.UUID | None
) -> list[Threshold]:
    query = select(Threshold).where(col(Threshold.user_id) == user_id)
    if server_id is not None:
        query = query.where(col(Threshold.server_id) == server_id)
    query = query.order_by(col(Threshold.created_at), col(Threshold.id))
    return list((await session.execute(query)).scalars())


async def get_threshold(
    session: AsyncSession, user_id: uuid.UUID, threshold_id: uuid.UUID
) -> Threshold | None:
    """The user's threshold, locked against the evaluator for the rest of the transaction."""
    row = await session.execute(
        select(Threshold)
        .where(col(Threshold.id) == threshold_id, col(Threshold.user_id) == user_id)
        .with_for_update()
    )
    return row.scalar_one_or_none()


async def list_alerts(
    session: AsyncSession,
    user_id: uuid.UUID,
    status: str | None,
    server_id: uuid.UUID | None,
    limit: int,
) -> list[Alert]:
    query = select(Alert).where(col(Alert.user_id) == user_id)
    if status is not None:
        query = query.where(col(Alert.status) == status)
    if server_id is not None:
        query = query.where(col(Alert.server_id) == server_id)
    query = query.order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def get_alert(session: AsyncSession, user_id: uuid.UUID, alert_id: uuid.UUID) -> Alert | None:
    row = await session.execute(
        select(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.user_id) == user_id)
        .with_for_update()
    )
    return row.scalar_one_or_none()


async def active_alerts_of(session: AsyncSession, threshold_id: uuid.UUID) -> list[Alert]:
    rows = await session.execute(
        select(Alert)
        .where(col(Alert.threshold_id) == threshold_id, col(Alert.status) == "active")
        .with_for_update()
    )
    return list(rows.scalars())
