"""Queries on the command history."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from commands.models import CommandRecord
from commands.outcome import as_command_result
from opswire.contract.rpc import CommandHistory
from opswire.runtime.keyset import AnyRow, newest_first_page
from opswire.runtime.rpc import Page


def _result_json(row: AnyRow) -> bytes:
    return as_command_result(row[0]).model_dump_json(by_alias=True).encode()


PENDING = col(CommandRecord.status) == "pending"


@dataclass(frozen=True, slots=True)
class Quotas:
    per_server: int
    per_user: int


class OverQuota(Exception):
    """Too many commands in flight; `scope` is "server" or "user", `until` when the
    soonest of them reaches its deadline."""

    def __init__(self, scope: str, until: datetime | None) -> None:
        super().__init__(scope)
        self.scope = scope
        self.until = until


class CommandStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def admit(self, record: CommandRecord, quotas: Quotas) -> CommandRecord | None:
        """Record a new command, or return the command already recorded under the same
        Idempotency-Key (nothing added); raise OverQuota if its user or server has too
        many in flight.

        One transaction under advisory locks on the user, then the server (always in that
        order, so two admissions never wait on each other in a cycle): concurrent requests
        on any replica count each other.
        """
        assert record.user_id is not None, "every command has a requester"
        async with self._sessions.begin() as session:
            for key in (f"user:{record.user_id}", f"server:{record.server_id}"):
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"opswire.commands.{key}"},
                )
            if record.idempotency_key is not None:
                existing = await session.execute(
                    select(CommandRecord).where(
                        col(CommandRecord.user_id) == record.user_id,
                        col(CommandRecord.server_id) == record.server_id,
                        col(CommandRecord.idempotency_key) == record.idempotency_key,
                    )
                )
                first = existing.scalar_one_or_none()
                if first is not None:
                    return first
            live = (PENDING, col(CommandRecord.deadline) > func.now())
            server_count, server_soonest = await _in_flight(
                session, col(CommandRecord.server_id) == record.server_id, *live
            )
            if server_count >= quotas.per_server:
                raise OverQuota("server", server_soonest)
            user_count, user_soonest = await _in_flight(
                session, col(CommandRecord.user_id) == record.user_id, *live
            )
            if user_count >= quotas.per_user:
                raise OverQuota("user", user_soonest)
            session.add(record)
        return None

    async def expire(self, changes: Mapping[str, Any], slack_s: float) -> list[CommandRecord]:
        """Close every command still pending `slack_s` past its deadline (its replica died,
        or never got to it) with `changes`; each row is returned to exactly one caller."""
        cutoff = func.now() - timedelta(seconds=slack_s)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(CommandRecord)
                .where(and_(PENDING, col(CommandRecord.deadline) < cutoff))
                .values(**changes)
                .returning(CommandRecord)
                .execution_options(synchronize_session=False)
            )
            return list(result.scalars().all())

    async def forget_keys(self, retention_s: float) -> int:
        """Drop Idempotency-Keys older than the retention; the commands themselves stay."""
        cutoff = func.now() - timedelta(seconds=retention_s)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(CommandRecord)
                .where(
                    col(CommandRecord.idempotency_key).is_not(None),
                    col(CommandRecord.created_at) < cutoff,
                )
                .values(idempotency_key=None)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def discard(self, command_id: str) -> None:
        """Forget a command that never reached an agent."""
        async with self._sessions.begin() as session:
            await session.execute(delete(CommandRecord).where(col(CommandRecord.command_id) == command_id))

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
                session,
                query,
                col(CommandRecord.created_at),
                col(CommandRecord.command_id),
                str,
                request,
                _result_json,
                budget,
            )


async def _in_flight(session: AsyncSession, *where: Any) -> tuple[int, datetime | None]:
    """How many commands match, and the soonest of their deadlines."""
    result = await session.execute(select(func.count(), func.min(CommandRecord.deadline)).where(*where))
    count, soonest = result.one()
    return int(count), soonest
