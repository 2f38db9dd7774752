"""Agent presence: connect/disconnect events and this gateway's heartbeat.

Events go through the reliable publisher (JetStream, `Nats-Msg-Id` per
connection and status). The heartbeat is core NATS: it only matters while
fresh, and lets auth mark the agents of a vanished gateway offline.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Literal

from nats.aio.client import Client as NatsClient

from opswire.contract.events import PresenceEvent, PresenceHeartbeat
from opswire.contract.subjects import Subjects
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)


class Presence:
    def __init__(
        self,
        nc: NatsClient,
        subjects: Subjects,
        publisher: Publisher,
        gateway_id: str,
        interval_s: float,
        live_server_ids: Callable[[], list[uuid.UUID]],
    ) -> None:
        self._nc = nc
        self._subjects = subjects
        self._publisher = publisher
        self._gateway_id = gateway_id
        self._interval_s = interval_s
        self._live_server_ids = live_server_ids
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat(), name="opswire-presence-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def online(self, server_id: uuid.UUID, connection_id: str) -> None:
        self._publish(server_id, connection_id, "online", None)

    def offline(self, server_id: uuid.UUID, connection_id: str, reason: str) -> None:
        self._publish(server_id, connection_id, "offline", reason)

    def _publish(
        self,
        server_id: uuid.UUID,
        connection_id: str,
        status: Literal["online", "offline"],
        reason: str | None,
    ) -> None:
        event = PresenceEvent(
            server_id=server_id,
            status=status,
            connection_id=connection_id,
            gateway_id=self._gateway_id,
            reason=reason,
        )
        sid = str(server_id)
        subject = (
            self._subjects.agent_connected(sid)
            if status == "online"
            else self._subjects.agent_disconnected(sid)
        )
        # Presence must not be refused for a full telemetry buffer: force it in.
        self._publisher.submit(
            subject, event.model_dump_json().encode(), f"{connection_id}:{status}", force=True
        )

    async def _beat(self) -> None:
        subject = self._subjects.presence_heartbeat()
        while True:
            beat = PresenceHeartbeat(gateway_id=self._gateway_id, server_ids=self._live_server_ids())
            try:
                await self._nc.publish(subject, beat.model_dump_json().encode())
            except Exception as exc:  # NATS away: the next beat will try again
                log.warning("presence heartbeat not sent", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval_s)
