"""What the handlers share at run time; filled in by the app's start-up hook."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ingest.events import AlertPublisher
from ingest.settings import IngestSettings
from opswire.contract.subjects import Subjects


@dataclass
class IngestState:
    settings: IngestSettings
    subjects: Subjects
    _engine: AsyncEngine | None = field(default=None, repr=False)
    _sessions: async_sessionmaker[AsyncSession] | None = field(default=None, repr=False)
    _publisher: AlertPublisher | None = field(default=None, repr=False)

    def bind(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        publisher: AlertPublisher,
    ) -> None:
        self._engine, self._sessions, self._publisher = engine, sessions, publisher

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("ingest is not started")
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("ingest is not started")
        return self._sessions

    @property
    def publisher(self) -> AlertPublisher:
        if self._publisher is None:
            raise RuntimeError("ingest is not started")
        return self._publisher
