"""Deleting metrics, logs and history tier points older than their retention, periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from ingest.models import LogEntry, Metric
from ingest.settings import IngestSettings
from ingest.tiers import TIER_BY_NAME
from opswire.contract.types import utc_now

log = logging.getLogger(__name__)


async def purge_tiers(engine: AsyncEngine, retention_days: dict[str, float]) -> int:
    """Delete tier points past their tier's retention; returns how many."""
    deleted = 0
    async with engine.begin() as conn:
        for name, days in retention_days.items():
            table = TIER_BY_NAME[name].table
            cutoff = utc_now() - timedelta(days=days)
            deleted += (await conn.execute(delete(table).where(table.c.bucket < cutoff))).rowcount
    return deleted


async def purge_old(engine: AsyncEngine, retention_days: float) -> tuple[int, int]:
    """Delete rows whose sample timestamp is past retention; returns (metrics, logs) deleted."""
    cutoff = utc_now() - timedelta(days=retention_days)
    async with engine.begin() as conn:
        metrics = await conn.execute(delete(Metric).where(col(Metric.timestamp) < cutoff))
        logs = await conn.execute(delete(LogEntry).where(col(LogEntry.timestamp) < cutoff))
    return metrics.rowcount, logs.rowcount


class RetentionTask:
    def __init__(self, engine: AsyncEngine, settings: IngestSettings) -> None:
        self._engine = engine
        self._settings = settings
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
                metrics, logs = await purge_old(self._engine, self._settings.retention_days)
                points = await purge_tiers(self._engine, self._settings.tier_retention_days())
                if metrics or logs or points:
                    log.info(
                        "retention purged %d samples, %d log lines, %d tier points",
                        metrics,
                        logs,
                        points,
                        extra={"metrics": metrics, "logs": logs, "tier_points": points},
                    )
            except Exception:
                # The next round tries again; retention is never worth stopping ingest for.
                log.exception("retention purge failed")
            await asyncio.sleep(self._settings.retention_interval_s)
