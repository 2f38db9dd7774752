"""Publishing alert events to JetStream (`subjects.alerts(server_id)`)."""

from __future__ import annotations

import logging
from typing import Literal

from ingest.models import Alert
from opswire.contract.events import AlertEvent
from opswire.contract.resources import AlertPublic
from opswire.contract.subjects import Subjects
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)

AlertEventKind = Literal["fired", "resolved"]


def alert_public(alert: Alert) -> AlertPublic:
    return AlertPublic.model_validate(alert, from_attributes=True)


class AlertPublisher:
    def __init__(self, out: Publisher, subjects: Subjects) -> None:
        self._out = out
        self._subjects = subjects

    async def publish(self, alert: Alert, event: AlertEventKind) -> None:
        """Publish after the alert's change committed: retried until JetStream stores it,
        each retry deduplicated by its Nats-Msg-Id."""
        payload = AlertEvent(**alert_public(alert).model_dump(), event=event)
        taken = self._out.submit(
            self._subjects.alerts(str(alert.server_id)),
            payload.model_dump_json().encode(),
            f"{alert.id}:{event}",
            force=True,
        )
        if not taken:  # only once the publisher is stopped
            log.error(
                "alert event not published",
                extra={"alert_id": str(alert.id), "server_id": str(alert.server_id), "event": event},
            )

    async def publish_all(self, changes: list[tuple[Alert, AlertEventKind]]) -> None:
        for alert, event in changes:
            await self.publish(alert, event)
