"""What the auth handlers share at run time: sessions, tokens, passwords, the broker.

Built in `create_app`; the database part is filled in at start-up, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faststream.nats import NatsBroker
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from auth.passwords import Passwords
from auth.settings import AuthSettings
from opswire.contract.subjects import Subjects
from opswire.runtime.tokens import TokenService


@dataclass
class AuthRuntime:
    settings: AuthSettings
    subjects: Subjects
    broker: NatsBroker
    tokens: TokenService
    passwords: Passwords = field(default_factory=Passwords)
    engine: AsyncEngine | None = None
    _sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("the auth service has not started")
        return self._sessions

    def bind(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.engine = engine
        self._sessions = sessions

    async def publish_core(self, message: BaseModel, subject: str) -> None:
        """Fire-and-forget core NATS publish (control notices are not stored)."""
        await self.broker.publish(message.model_dump_json().encode(), subject)
