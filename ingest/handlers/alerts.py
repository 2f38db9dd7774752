"""ingest.thresholds.*, ingest.alerts.*, ingest.servers.forget: alert rules and the alerts they raised."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest import store
from ingest.evaluator import resolve
from ingest.events import AlertEventKind, alert_public
from ingest.models import Alert, Threshold
from ingest.runtime import IngestRuntime
from opswire.contract import rpc as calls
from opswire.contract.resources import AlertPublic, ThresholdPublic
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import NotFound, RpcError


def threshold_public(threshold: Threshold) -> ThresholdPublic:
    return ThresholdPublic.model_validate(threshold, from_attributes=True)


def register(rt: IngestRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    @rpc_handler(broker, subjects, calls.THRESHOLDS_LIST)
    async def thresholds_list(req: calls.ThresholdList) -> list[ThresholdPublic]:
        async with rt.sessions() as session:
            rows = await store.list_thresholds(session, req.user_id, req.server_id)
        return [threshold_public(t) for t in rows]

    @rpc_handler(broker, subjects, calls.THRESHOLDS_CREATE)
    async def thresholds_create(req: calls.ThresholdCreateFor) -> ThresholdPublic:
        """The gateway has checked that the user owns the server."""
        threshold = Threshold(**req.model_dump())
        limit = rt.settings.max_thresholds_per_user
        async with rt.sessions.begin() as session:
            if await _rule_count(session, req.user_id) >= limit:
                raise RpcError("conflict", f"Threshold rule limit reached ({limit} per user)")
            session.add(threshold)
        return threshold_public(threshold)

    @rpc_handler(broker, subjects, calls.THRESHOLDS_UPDATE)
    async def thresholds_update(req: calls.ThresholdUpdateFor) -> ThresholdPublic:
        """Partial update; a changed rule starts over (its open alert is resolved)."""
        changes = req.model_dump(
            exclude_unset=True, exclude={"user_id", "threshold_id", "id", "server_id", "created_at"}
        )
        resolved: list[tuple[Alert, AlertEventKind]] = []
        async with rt.sessions.begin() as session:
            threshold = await store.get_threshold(session, req.user_id, req.threshold_id)
            if threshold is None:
                raise NotFound("Threshold not found")
            if req.server_id is not None and req.server_id != threshold.server_id:
                raise RpcError("invalid", "server_id cannot be changed: create a threshold on that server")
            rule_changed = any(getattr(threshold, k) != v for k, v in changes.items())
            for key, value in changes.items():
                setattr(threshold, key, value)
            if rule_changed:
                threshold.breach_since = None
                threshold.latched = False
                resolved = await _resolve_open(session, threshold)
        await rt.publisher.publish_all(resolved)
        return threshold_public(threshold)

    @rpc_handler(broker, subjects, calls.THRESHOLDS_DELETE)
    async def thresholds_delete(req: calls.ThresholdRef) -> None:
        """Delete the rule; its open alert is resolved, past alerts are kept."""
        async with rt.sessions.begin() as session:
            threshold = await store.get_threshold(session, req.user_id, req.threshold_id)
            if threshold is None:
                raise NotFound("Threshold not found")
            resolved = await _resolve_open(session, threshold)
            await session.delete(threshold)
        await rt.publisher.publish_all(resolved)

    @rpc_handler(broker, subjects, calls.SERVERS_FORGET)
    async def servers_forget(req: calls.ByUserServer) -> dict[str, int]:
        """The server is gone: its rules go, its open alerts resolve; past alerts stay listed."""
        async with rt.sessions.begin() as session:
            thresholds = await store.list_thresholds(session, req.user_id, req.server_id)
            resolved: list[tuple[Alert, AlertEventKind]] = []
            for threshold in thresholds:
                resolved += await _resolve_open(session, threshold)
                await session.delete(threshold)
        await rt.publisher.publish_all(resolved)
        return {"thresholds_deleted": len(thresholds), "alerts_resolved": len(resolved)}

    @rpc_handler(broker, subjects, calls.ALERTS_LIST)
    async def alerts_list(req: calls.AlertList) -> list[AlertPublic]:
        """The user's alerts, newest first."""
        async with rt.sessions() as session:
            rows = await store.list_alerts(session, req.user_id, req.status, req.server_id, req.limit)
        return [alert_public(a) for a in rows]

    @rpc_handler(broker, subjects, calls.ALERTS_RESOLVE)
    async def alerts_resolve(req: calls.AlertRef) -> AlertPublic:
        """Resolve by hand (idempotent); the rule stays latched until the breach clears."""
        async with rt.sessions.begin() as session:
            alert = await store.get_alert(session, req.user_id, req.alert_id)
            if alert is None:
                raise NotFound("Alert not found")
            if alert.status == "resolved":
                return alert_public(alert)
            resolve(alert, by=req.user_id)
        await rt.publisher.publish(alert, "resolved")
        return alert_public(alert)


async def _resolve_open(session: AsyncSession, threshold: Threshold) -> list[tuple[Alert, AlertEventKind]]:
    alerts = await store.active_alerts_of(session, threshold.id)
    for alert in alerts:
        resolve(alert, by=None)
    return [(alert, "resolved") for alert in alerts]


async def _rule_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    """The user's rules, counted under a per-user lock held until commit (the ceiling holds
    when creates race)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"ingest.thresholds:{user_id}"}
    )
    result = await session.execute(
        select(func.count()).select_from(Threshold).where(col(Threshold.user_id) == user_id)
    )
    return int(result.scalar_one())
