"""Queries on the command history."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from commands.models import CommandRecord
from commands.outcome import as_command_result
from opswire.contract.rpc import CommandHistory
from opswire.runtime.keyset import AnyRow, newest_first_page
from opswire.runtime.rpc import Page


def _result_json(row: AnyRow) -> bytes:
    return as_command_result(row[0]).model_dump_json(by_alias=True).encode()


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

    async def history(self, request: CommandHistory, budget: int) -> Page:
        """Newest first, in pages of at most `budget` bytes (keyset on created_at, command_id)."""
        query = select(CommandRecord).where(col(CommandRecord.server_id) == request.server_id)
        async with self._sessions() as session:
            return await newest_first_page(
                session, query, col(CommandRecord.created_at), col(CommandRecord.command_id), str,
                request, _result_json, budget,
            )
