"""Storing JetStream batches: validate, COPY, commit, then ack.

Ack policy, message by message:
- invalid (can never be stored)        -> term + log; it must not block the stream
- stored, or already stored (conflict) -> ack, after the commit
- database unreachable / failing       -> nak with a delay: redelivered, never dropped
- one row the database refuses (bad data that passed validation) -> term + log,
  the rest of the batch is stored row by row

A batch is written with one COPY. COPY cannot skip rows stored already, so a batch
holding a redelivered row is written again through a per-connection staging table and
`INSERT … SELECT … ON CONFLICT DO NOTHING`. The consumer fetches and decodes the next
batch while this one commits (`pipeline` 2); the commit-and-ack step runs one batch at
a time, in fetch order.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from nats.aio.msg import Msg
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest.decode import (
    LOGS_COLUMNS,
    METRICS_COLUMNS,
    DecodedSample,
    InvalidMessage,
    decode_log,
    decode_sample,
)
from opswire.runtime import metrics
from opswire.runtime.outage import OutageLog

log = logging.getLogger(__name__)

Item = TypeVar("Item")
# Messages decoded between two turns of the event loop (see BatchWriter._accept).
DECODE_SLICE = 100
Record = tuple[Any, ...]
# Errors that belong to one row's data, not to the database being unavailable.
ROW_ERRORS = (
    DataError,
    IntegrityError,
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
)
DB_UNAVAILABLE = (
    SQLAlchemyError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


@dataclass(frozen=True)
class CopyTarget:
    """Where a batch goes: `table` (schema-qualified) and the columns COPY fills."""

    table: str
    columns: tuple[str, ...]

    @property
    def stage(self) -> str:
        return "stage_" + self.table.rsplit(".", 1)[-1]


# Connections that have the staging table already (temporary tables live per connection).
_staged: weakref.WeakKeyDictionary[asyncpg.Connection, set[str]] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def pg_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection as asyncpg itself (for COPY and set-based statements)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        pg: asyncpg.Connection = raw.driver_connection
        yield pg


async def copy_rows(engine: AsyncEngine, target: CopyTarget, records: Sequence[Record]) -> None:
    """COPY `records` into the target (redelivered rows skipped), committed.

    Straight into the table first: that is the whole cost of a batch of new rows. Only
    when a row is there already (a redelivery) does the batch go through the staging
    table, whose `ON CONFLICT DO NOTHING` skips it.
    """
    schema, table = target.table.split(".", 1)
    async with pg_connection(engine) as pg, pg.transaction():
        try:
            async with pg.transaction():  # a savepoint: a conflict undoes only the COPY
                await pg.copy_records_to_table(
                    table, schema_name=schema, records=records, columns=target.columns
                )
        except asyncpg.UniqueViolationError:
            await _copy_skipping_stored(pg, target, records)


async def _copy_skipping_stored(
    pg: asyncpg.Connection, target: CopyTarget, records: Sequence[Record]
) -> None:
    columns = ", ".join(target.columns)
    staged = _staged.setdefault(pg, set())
    if target.stage not in staged:
        await pg.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {target.stage} ON COMMIT DELETE ROWS "
            f"AS SELECT {columns} FROM {target.table} WITH NO DATA"
        )
        staged.add(target.stage)
    await pg.copy_records_to_table(target.stage, records=records, columns=target.columns)
    await pg.execute(
        f"INSERT INTO {target.table} ({columns}) SELECT {columns} FROM {target.stage} ON CONFLICT DO NOTHING"
    )


class BatchWriter(Generic[Item]):
    """The handler of one durable consumer: a batch of messages in, rows committed, acks out."""

    def __init__(
        self,
        name: str,
        engine: AsyncEngine,
        target: CopyTarget,
        decode: Callable[[str, bytes], Item],
        to_record: Callable[[Item], Record],
        retry_delay_s: float,
        after_commit: Callable[[list[Item]], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._engine = engine
        self._target = target
        self._decode = decode
        self._to_record = to_record
        self._retry_delay_s = retry_delay_s
        self._after_commit = after_commit
        self._outage = OutageLog(log, f"{name}: batches not stored, will be redelivered")
        # Batches decode side by side but commit (and evaluate alerts) one at a time, in order.
        self._committing = asyncio.Lock()

    async def __call__(self, msgs: Sequence[Msg]) -> None:
        accepted = await self._accept(msgs)
        if not accepted:
            return
        async with self._committing:
            await self._commit(accepted)

    async def _accept(self, msgs: Sequence[Msg]) -> list[tuple[Msg, Item]]:
        accepted: list[tuple[Msg, Item]] = []
        for n, msg in enumerate(msgs, 1):
            if n % DECODE_SLICE == 0:
                # Decoding a whole batch at once would hold the event loop for tens of ms
                # while the previous batch's COPY waits to send its rows and read the commit.
                await asyncio.sleep(0)
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
        return accepted

    async def _commit(self, accepted: list[tuple[Msg, Item]]) -> None:
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
            await copy_rows(self._engine, self._target, [self._to_record(item) for _, item in accepted])
            return accepted
        except ROW_ERRORS:
            log.warning("batch refused by the database; storing row by row", extra={"consumer": self.name})
        stored: list[tuple[Msg, Item]] = []
        for msg, item in accepted:
            try:
                await copy_rows(self._engine, self._target, [self._to_record(item)])
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


METRICS_TARGET = CopyTarget("ingest.metrics", METRICS_COLUMNS)
LOGS_TARGET = CopyTarget("ingest.logs", LOGS_COLUMNS)


def metrics_writer(
    engine: AsyncEngine,
    retry_delay_s: float,
    after_commit: Callable[[list[DecodedSample]], Awaitable[None]],
) -> BatchWriter[DecodedSample]:
    return BatchWriter(
        "ingest-metrics",
        engine,
        METRICS_TARGET,
        decode_sample,
        lambda s: s.row,
        retry_delay_s,
        after_commit,
    )


def logs_writer(engine: AsyncEngine, retry_delay_s: float) -> BatchWriter[Record]:
    return BatchWriter("ingest-logs", engine, LOGS_TARGET, decode_log, lambda row: row, retry_delay_s)
