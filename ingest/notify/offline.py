"""The `offline` alert rule, driven by presence events (OPSWIRE_EVENTS `agents.*.*`,
durable INGEST_PRESENCE): a disconnect fires the server's enabled offline rules, a
connect resolves them.

Events are applied in time order per rule (`evaluated_until`), so a redelivered or
late event changes nothing; the disconnect of a connection that was replaced by a
newer one is not an outage.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest.evaluator import active_alerts, resolve
from ingest.events import AlertEventKind, AlertPublisher
from ingest.models import Alert, Threshold
from opswire.contract.events import PresenceEvent

OFFLINE = "offline"


def offline_alert(threshold: Threshold, event: PresenceEvent) -> Alert:
    why = f" ({event.reason})" if event.reason else ""
    return Alert(
        user_id=threshold.user_id,
        server_id=threshold.server_id,
        threshold_id=threshold.id,
        metric_type=OFFLINE,
        comparison=threshold.comparison,
        threshold_value=threshold.threshold_value,
        value=0.0,
        status="active",
        message=f"Server went offline{why}",
        created_at=event.timestamp,
    )


def apply_presence(
    publisher: Callable[[], AlertPublisher],
) -> Callable[[AsyncSession, list[PresenceEvent]], Awaitable[Callable[[], Awaitable[None]] | None]]:
    async def process(
        session: AsyncSession, events: list[PresenceEvent]
    ) -> Callable[[], Awaitable[None]] | None:
        relevant = [e for e in events if not (e.status == "offline" and e.reason == "replaced")]
        servers = sorted({e.server_id for e in relevant})
        if not servers:
            return None
        rows = await session.execute(
            select(Threshold)
            .where(
                col(Threshold.server_id).in_(servers),
                col(Threshold.metric_type) == OFFLINE,
                col(Threshold.enabled),
            )
            .order_by(col(Threshold.id))
            .with_for_update()
        )
        thresholds = list(rows.scalars())
        active: dict[uuid.UUID, Alert | None] = {}
        active.update(await active_alerts(session, [t.id for t in thresholds if t.latched]))
        changes: list[tuple[Alert, AlertEventKind]] = []
        for event in sorted(relevant, key=lambda e: e.timestamp):
            for threshold in (t for t in thresholds if t.server_id == event.server_id):
                if threshold.evaluated_until is not None and event.timestamp <= threshold.evaluated_until:
                    continue
                threshold.evaluated_until = event.timestamp
                if event.status == "offline" and not threshold.latched:
                    alert = offline_alert(threshold, event)
                    session.add(alert)
                    threshold.latched, threshold.breach_since = True, event.timestamp
                    active[threshold.id] = alert
                    changes.append((alert, "fired"))
                elif event.status == "online" and threshold.latched:
                    threshold.latched, threshold.breach_since = False, None
                    if (open_alert := active.pop(threshold.id, None)) is not None:
                        resolve(open_alert, by=None)
                        changes.append((open_alert, "resolved"))

        async def after_commit() -> None:
            await publisher().publish_all(changes)

        return after_commit if changes else None

    return process
