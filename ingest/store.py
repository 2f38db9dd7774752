"""Queries behind the RPC handlers: the latest sample, thresholds and alerts (history: history.py).

Everything a user can touch is filtered by `user_id` in the query itself, so
"not yours" and "does not exist" are the same empty result.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest.models import Alert, Metric, Threshold


async def latest_sample(session: AsyncSession, server_id: uuid.UUID) -> dict[str, Any] | None:
    row = await session.execute(
        select(col(Metric.data))
        .where(col(Metric.server_id) == server_id)
        .order_by(col(Metric.timestamp).desc())
        .limit(1)
    )
    return row.scalar_one_or_none()


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
        select(Alert).where(col(Alert.id) == alert_id, col(Alert.user_id) == user_id).with_for_update()
    )
    return row.scalar_one_or_none()


async def active_alerts_of(session: AsyncSession, threshold_id: uuid.UUID) -> list[Alert]:
    rows = await session.execute(
        select(Alert)
        .where(col(Alert.threshold_id) == threshold_id, col(Alert.status) == "active")
        .with_for_update()
    )
    return list(rows.scalars())
