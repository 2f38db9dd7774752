"""Deleting metrics and logs older than the retention setting, periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from ingest.models import LogEntry, Metric
from opswire.contract.types import utc_now

log = logging.getLogger(__name__)


async def purge_old(engine: AsyncEngine, retention_days: float) -> tuple[int, int]:
    """Delete rows whose sample timestamp is past retention; returns (metrics, logs) deleted."""
    cutoff = utc_now() - timedelta(days=retention_days)
    async with engine.begin() as conn:
        metrics = await conn.execute(delete(Metric).where(col(Metric.timestamp) < cutoff))
        logs = await conn.execute(delete(LogEntry).where(col(LogEntry.timestamp) < cutoff))
    return metrics.rowcount, logs.rowcount


class RetentionTask:
    def __init__(self, engine: AsyncEngine, retention_days: float, interval_s: float) -> None:
        self._engine = engine
        self._retention_days = retention_days
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                metrics, logs = await purge_old(self._engine, self._retention_days)
                if metrics or logs:
                    log.info(
                        "retention purged %d samples, %d log lines",
                        metrics,
                        logs,
                        extra={"metrics": metrics, "logs": logs},
                    )
            except Exception:
                # The next round tries again; retention is never worth stopping ingest for.
                log.exception("retention purge failed")
            await asyncio.sleep(self._interval_s)
