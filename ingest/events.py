"""Publishing alert events to JetStream (`subjects.alerts(server_id)`)."""

from __future__ import annotations

import logging
from typing import Literal

from nats.js import JetStreamContext

from ingest.models import Alert
from opswire.contract.events import AlertEvent
from opswire.contract.resources import AlertPublic
from opswire.subjects import Subjects

log = logging.getLogger(__name__)

AlertEventKind = Literal["fired", "resolved"]


def alert_public(alert: Alert) -> AlertPublic:
    return AlertPublic.model_validate(alert, from_attributes=True)


class AlertPublisher:
    def __init__(self, js: JetStreamContext, subjects: Subjects, timeout_s: float = 5.0) -> None:
        self._js = js
        self._subjects = subjects
        self._timeout_s = timeout_s

    async def publish(self, alert: Alert, event: AlertEventKind) -> None:
        """Publish after the alert's change committed; a retry is deduplicated by Nats-Msg-Id."""
        payload = AlertEvent(**alert_public(alert).model_dump(), event=event)
        try:
            await self._js.publish(
                self._subjects.alerts(str(alert.server_id)),
                payload.model_dump_json().encode(),
                timeout=self._timeout_s,
                headers={"Nats-Msg-Id": f"{alert.id}:{event}"},
            )
        except Exception:
            # The alert itself is committed and visible over REST; only the push is missed.
            log.exception(
                "alert event not published",
                extra={
                    "alert_id": str(alert.id),
                    "server_id": str(alert.server_id),
                    "event": event,
                },
            )

    async def publish_all(self, changes: list[tuple[Alert, AlertEventKind]]) -> None:
        for alert, event in changes:
            await self.publish(alert, event)
