"""What the auth handlers share at run time: the shared service runtime plus tokens and
password hashing. The database part is filled in at start-up, never at import time."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from auth.models import SCHEMA
from auth.passwords import Passwords
from auth.settings import AuthSettings
from auth.throttle import LoginThrottle, OneAtATime
from opswire.runtime.service import ServiceRuntime
from opswire.runtime.tokens import TokenService

MIGRATIONS = Path(__file__).parent / "migrations"


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

    async def wire(self) -> None:
        await self.passwords.warm_up()

    async def publish_core(self, message: BaseModel, subject: str) -> None:
        """Fire-and-forget core NATS publish (control notices are not stored)."""
        await self.broker.publish(message.model_dump_json().encode(), subject)
