"""Storing JetStream batches: validate, one INSERT per batch, commit, then ack.

Ack policy, message by message:
- invalid (can never be stored)        -> term + log; it must not block the stream
- stored, or already stored (conflict) -> ack, after the commit
- database unreachable / failing       -> nak with a delay: redelivered, never dropped
- one row the database refuses (bad data that passed validation) -> term + log,
  the rest of the batch is stored row by row
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from nats.aio.msg import Msg
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from ingest.decode import DecodedSample, InvalidMessage, decode_log, decode_sample
from opswire.runtime import metrics
from opswire.runtime.outage import OutageLog

log = logging.getLogger(__name__)

Item = TypeVar("Item")
# Errors that belong to one row's data, not to the database being unavailable.
ROW_ERRORS = (DataError, IntegrityError)
DB_UNAVAILABLE = (SQLAlchemyError, OSError, TimeoutError)


async def insert_rows(
    engine: AsyncEngine, table: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING for all rows, committed.

    Executed as an executemany: SQLAlchemy caches the compiled statement and
    sends the rows as multi-row VALUES pages ("insertmanyvalues", up to 1000
    rows each), instead of compiling a new 500-row statement every batch.
    """
    async with engine.begin() as conn:
        await conn.execute(insert(table).on_conflict_do_nothing(), list(rows))


class BatchWriter(Generic[Item]):
    """The handler of one durable consumer: a batch of messages in, rows committed, acks out."""

    def __init__(
        self,
        name: str,
        engine: AsyncEngine,
        table: type[SQLModel],
        decode: Callable[[str, bytes], Item],
        to_row: Callable[[Item], dict[str, Any]],
        retry_delay_s: float,
        after_commit: Callable[[list[Item]], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._engine = engine
        self._table = table
        self._decode = decode
        self._to_row = to_row
        self._retry_delay_s = retry_delay_s
        self._after_commit = after_commit
        self._outage = OutageLog(log, f"{name}: batches not stored, will be redelivered")

    async def __call__(self, msgs: Sequence[Msg]) -> None:
        accepted: list[tuple[Msg, Item]] = []
        for msg in msgs:
            try:
                accepted.append((msg, self._decode(msg.subject, msg.data)))
            except InvalidMessage as exc:
                log.warning(
                    "%s: refused message on %s: %s",
                    self.name,
                    msg.subject,
                    exc,
                    extra={"consumer": self.name, "subject": msg.subject, "reason": str(exc)},
                )
                await msg.term()
        if not accepted:
            return
        try:
            with metrics.ingest_batch_timer(self.name, len(accepted)):
                accepted = await self._store(accepted)
            if self._after_commit is not None:
                await self._run_after_commit([item for _, item in accepted])
        except DB_UNAVAILABLE as exc:
            # Rows already committed are harmless on redelivery (ON CONFLICT DO NOTHING).
            self._outage.failed(exc, consumer=self.name, size=len(accepted))
            for msg, _ in accepted:
                await msg.nak(delay=self._retry_delay_s)
            return
        self._outage.recovered(consumer=self.name)
        for msg, _ in accepted:
            await msg.ack()

    async def _run_after_commit(self, items: list[Item]) -> None:
        assert self._after_commit is not None
        try:
            await self._after_commit(items)
        except DB_UNAVAILABLE:
            raise
        except Exception:
            # A bug here must not wedge the stream: the data is stored, so ack anyway.
            log.exception("after-commit step failed", extra={"consumer": self.name})

    async def _store(self, accepted: list[tuple[Msg, Item]]) -> list[tuple[Msg, Item]]:
        try:
            await insert_rows(
                self._engine, self._table, [self._to_row(item) for _, item in accepted]
            )
            return accepted
        except ROW_ERRORS:
            log.warning(
                "batch refused by the database; storing row by row", extra={"consumer": self.name}
            )
        stored: list[tuple[Msg, Item]] = []
        for msg, item in accepted:
            try:
                await insert_rows(self._engine, self._table, [self._to_row(item)])
            except ROW_ERRORS as exc:
                log.warning(
                    "%s: database refused message on %s: %s",
                    self.name,
                    msg.subject,
                    type(exc).__name__,
                    extra={
                        "consumer": self.name,
                        "subject": msg.subject,
                        "reason": type(exc).__name__,
                    },
                )
                await msg.term()
                continue
            stored.append((msg, item))
        return stored


def metrics_writer(
    engine: AsyncEngine,
    table: type[SQLModel],
    retry_delay_s: float,
    after_commit: Callable[[list[DecodedSample]], Awaitable[None]],
) -> BatchWriter[DecodedSample]:
    return BatchWriter(
        "ingest-metrics", engine, table, decode_sample, lambda s: s.row, retry_delay_s, after_commit
    )


def logs_writer(
    engine: AsyncEngine, table: type[SQLModel], retry_delay_s: float
) -> BatchWriter[dict[str, Any]]:
    return BatchWriter("ingest-logs", engine, table, decode_log, lambda row: row, retry_delay_s)
