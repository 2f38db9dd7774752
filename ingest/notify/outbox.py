"""Alerts -> the owners' notification outbox, derived from the alerts table itself.

Each alert row carries whether its `fired` and `resolved` events were queued
(`fired_queued`, `resolved_queued`, added by migration 0003). Every pass takes the
alerts with an event not queued yet, queues one delivery per enabled channel of the
owner and marks the event, in one transaction. So every alert change that committed is
notified, whichever code path made it, and nothing needs a consumer on OPSWIRE_ALERTS
(a service durable there would make the permission table refuse other systems' ordered
consumers on that stream, see docs/dashboard.md).
"""

from __future__ import annotations

from sqlalchemy import Boolean, and_, literal_column, not_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest.events import AlertEventKind
from ingest.models import SCHEMA, Alert
from ingest.notify import message
from ingest.notify import store as notify_store
from opswire.contract.events import AlertEvent
from opswire.contract.resources import AlertPublic

# The two columns live in the alerts table beside the Alert model's (which does not need them).
FIRED = literal_column("fired_queued", Boolean)
RESOLVED = literal_column("resolved_queued", Boolean)
MARK = text(f"UPDATE {SCHEMA}.alerts SET fired_queued = true, resolved_queued = :resolved WHERE id = :id")
BATCH = 200


def event_of(alert: Alert, kind: AlertEventKind) -> AlertEvent:
    public = AlertPublic.model_validate(alert, from_attributes=True)
    if kind == "fired":  # as it was when it fired, even if it is resolved by now
        public = public.model_copy(update={"status": "active", "resolved_at": None, "resolved_by": None})
    return AlertEvent(**public.model_dump(), event=kind)


async def queue_new_alert_events(session: AsyncSession, public_url: str) -> int:
    """Queue the alert events not queued yet (a batch); the number of alerts handled.
    Rows are locked with SKIP LOCKED: replicas never queue the same event twice."""
    pending = or_(not_(FIRED), and_(col(Alert.status) == "resolved", not_(RESOLVED)))
    rows = await session.execute(
        select(Alert, FIRED, RESOLVED)
        .where(pending)
        .order_by(col(Alert.created_at))
        .limit(BATCH)
        .with_for_update(of=Alert, skip_locked=True)
    )
    found = rows.all()
    for alert, fired_queued, resolved_queued in found:
        kinds: list[AlertEventKind] = [] if fired_queued else ["fired"]
        if alert.status == "resolved" and not resolved_queued:
            kinds.append("resolved")
        for kind in kinds:
            event = event_of(alert, kind)
            await notify_store.enqueue(
                session,
                alert.user_id,
                f"{alert.id}:{kind}",
                message.title(event),
                message.body(event, public_url),
            )
        await session.execute(MARK, {"id": alert.id, "resolved": alert.status == "resolved"})
    return len(found)
