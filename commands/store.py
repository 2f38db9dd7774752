"""Queries on the command history."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from commands.models import CommandRecord


class CommandStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, record: CommandRecord) -> None:
        async with self._sessions.begin() as session:
            session.add(record)

    async def discard(self, command_id: str) -> None:
        """Forget a command that never reached an agent."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(CommandRecord).where(col(CommandRecord.command_id) == command_id)
            )

    async def get(self, command_id: str) -> CommandRecord | None:
        async with self._sessions() as session:
            return await session.get(CommandRecord, command_id)

    async def finish(
        self, command_id: str, changes: Mapping[str, Any], only_if_pending: bool = False
    ) -> CommandRecord | None:
        """Apply a result; None if the row is gone (or, with only_if_pending, already finished)."""
        statement = update(CommandRecord).where(col(CommandRecord.command_id) == command_id)
        if only_if_pending:
            statement = statement.where(col(CommandRecord.status) == "pending")
        async with self._sessions.begin() as session:
            result = await session.execute(
                statement.values(**changes)
                .returning(CommandRecord)
                .execution_options(synchronize_session=False)
            )
            return result.scalar_one_or_none()

    async def answer(
        self, command_id: str, server_id: uuid.UUID, reply_token: str, changes: Mapping[str, Any]
    ) -> CommandRecord | None:
        """Apply the agent's answer if the row is that server's and still takes a reply on
        `reply_token`, and spend the token; None (nothing changed) otherwise.

        One conditional statement, so of two replicas or two copies of a reply only one
        can win.
        """
        statement = (
            update(CommandRecord)
            .where(
                col(CommandRecord.command_id) == command_id,
                col(CommandRecord.server_id) == server_id,
                col(CommandRecord.reply_token) == reply_token,
            )
            .values(**changes, reply_token=None)
            .returning(CommandRecord)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(statement)
            return result.scalar_one_or_none()

    async def history(self, server_id: uuid.UUID, limit: int) -> list[CommandRecord]:
        async with self._sessions() as session:
            result = await session.execute(
                select(CommandRecord)
                .where(col(CommandRecord.server_id) == server_id)
                .order_by(
                    col(CommandRecord.created_at).desc(), col(CommandRecord.command_id).desc()
                )
                .limit(limit)
            )
            return list(result.scalars().all())
