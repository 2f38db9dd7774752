"""What the auth handlers share at run time: the shared service runtime plus tokens and
password hashing. The database part is filled in at start-up, never at import time."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from auth.models import SCHEMA
from auth.passwords import Passwords
from auth.settings import AuthSettings
from auth.throttle import LoginThrottle, OneAtATime
from opswire.contract.events import PresenceEvent
from opswire.runtime.publisher import Publisher
from opswire.runtime.service import ServiceRuntime
from opswire.runtime.tokens import TokenService

MIGRATIONS = Path(__file__).parent / "migrations"
# Presence events auth tells itself (a server swept offline or found again): a few at most.
EVENT_BUFFER = 1_000


class AuthRuntime(ServiceRuntime):
    settings: AuthSettings

    def __init__(self, settings: AuthSettings) -> None:
        super().__init__(settings, "auth", schema=SCHEMA, migrations=MIGRATIONS)
        self.tokens = TokenService(
            settings.jwt_secret, settings.access_token_ttl_s, settings.refresh_token_ttl_s
        )
        self.passwords = Passwords()
        self.throttle = LoginThrottle.from_settings(settings)
        self.checking = OneAtATime()
        self._events: Publisher | None = None

    async def wire(self) -> None:
        await self.passwords.warm_up()
        self._events = await self.start(Publisher(self.nc, capacity=EVENT_BUFFER))

    def tell_presence(self, event: PresenceEvent) -> None:
        """Publish a presence change auth made itself (retried until stored)."""
        if self._events is None:
            return
        sid = str(event.server_id)
        online = event.status == "online"
        subject = self.subjects.agent_connected(sid) if online else self.subjects.agent_disconnected(sid)
        msg_id = f"{sid}:{event.status}:{event.timestamp.isoformat()}:{event.gateway_id}"
        self._events.submit(subject, event.model_dump_json().encode(), msg_id, force=True)

    async def publish_core(self, message: BaseModel, subject: str) -> None:
        """Fire-and-forget core NATS publish (control notices are not stored)."""
        await self.broker.publish(message.model_dump_json().encode(), subject)
