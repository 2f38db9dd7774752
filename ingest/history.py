"""History answers in pages (DESIGN §5, §9 'History'): metrics ascending (raw or a tier),
logs newest first.

Samples are relayed as PostgreSQL renders the stored JSONB (`data::text`): no decode and
re-encode of up to 10,000 samples in Python.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ingest.models import LogEntry, Metric
from ingest.tiers import TIER_BY_NAME, TIERS
from opswire.contract import rpc as calls
from opswire.contract.telemetry import LogLevel
from opswire.contract.types import utc_now
from opswire.runtime.keyset import AnyRow, newest_first_page, streamed
from opswire.runtime.rpc import Page, RpcError, decode_cursor, encode_cursor, fill_page

DEFAULT_WINDOW = timedelta(hours=1)


def history_window(req: calls.MetricsHistory) -> tuple[datetime, datetime]:
    """[start, end) of a history request: default the hour up to now; a client cursor
    (the oldest sample of the page it had) ends the window there."""
    end = req.end or utc_now()
    start = req.start or end - DEFAULT_WINDOW
    if req.cursor is not None:
        end = min(end, decode_cursor(req.cursor)[0])
    if start >= end and req.cursor is None:
        raise RpcError("invalid", "start must be before end")
    return start, end


# Interval of the raw samples for choosing a resolution (OPSWIRE_METRICS_INTERVAL_S).
MAX_POINTS = 1000


def choose_resolution(start: datetime, end: datetime, sample_interval_s: float) -> str:
    """The finest resolution whose points in [start, end) stay within MAX_POINTS."""
    window_s = (end - start).total_seconds()
    if window_s / sample_interval_s <= MAX_POINTS:
        return "raw"
    for tier in TIERS:
        if window_s / tier.width.total_seconds() <= MAX_POINTS:
            return tier.name
    return TIERS[-1].name


def _series(resolution: str) -> tuple[Any, Any, Any]:
    """(server column, time column, JSON text) of raw samples or of a tier's points."""
    if resolution == "raw":
        return col(Metric.server_id), col(Metric.timestamp), cast(col(Metric.data), Text)
    table = TIER_BY_NAME[resolution].table
    return table.c.server_id, table.c.bucket, cast(table.c.point, Text)


async def metrics_page(
    session: AsyncSession, req: calls.MetricsHistory, budget: int, sample_interval_s: float
) -> Page:
    """The newest `limit` samples (or tier points) of the window, ascending, one page.

    The first page finds the oldest item of the answer (the `limit`-th newest) and
    starts there; each later page resumes after the last item sent, up to the same end
    and at the same resolution (both carried in the resume token).
    """
    more = None
    if req.resume is not None:
        after, key = decode_cursor(req.resume)
        end_text, _, resolution = key.partition("|")
        end = _resume_end(end_text)
        if resolution != "raw" and resolution not in TIER_BY_NAME:
            raise RpcError("invalid", "Malformed resume token")
        server, ts, data = _series(resolution)
        window = (ts > after, ts < end)
    else:
        start, end = history_window(req)
        resolution = req.resolution or choose_resolution(start, end, sample_interval_s)
        server, ts, data = _series(resolution)
        found = await session.execute(
            select(ts)
            .where(server == req.server_id, ts >= start, ts < end)
            .order_by(ts.desc())
            .offset(req.limit - 1)
            .limit(2)
        )
        edge: list[datetime] = list(found.scalars())
        oldest = edge[0] if edge else start
        if len(edge) == 2:
            more = encode_cursor(oldest)
        window = (ts >= oldest, ts < end)
    query = select(ts, data).where(server == req.server_id, *window).order_by(ts).limit(req.limit)
    key = f"{end.isoformat()}|{resolution}"

    def encoded(row: AnyRow) -> tuple[bytes, str]:
        return row[1].encode(), encode_cursor(row[0], key)

    async with streamed(session, query, encoded) as rows:
        page = await fill_page(rows, req.limit, budget)
    page.more = more
    return page


def _resume_end(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise RpcError("invalid", "Malformed resume token") from None


def _log_json(row: AnyRow) -> bytes:
    """The LogLine shape, as dashboards get it live."""
    return orjson.dumps(
        {
            "level": LogLevel(row.level).name.lower(),
            "message": row.message,
            "timestamp": row.timestamp,
            "source": row.source,
            "server_id": str(row.server_id),
            "received_at": row.received_at,
        },
        option=orjson.OPT_UTC_Z,
    )


async def logs_page(session: AsyncSession, req: calls.LogsQuery, budget: int) -> Page:
    """Log lines at or above `level` in the window, newest first, one page of them."""
    if req.start and req.end and req.start >= req.end:
        raise RpcError("invalid", "start must be before end")
    query = select(
        col(LogEntry.id),
        col(LogEntry.server_id),
        col(LogEntry.timestamp),
        col(LogEntry.received_at),
        col(LogEntry.level),
        col(LogEntry.message),
        col(LogEntry.source),
    ).where(col(LogEntry.server_id) == req.server_id)
    if req.level is not None:
        query = query.where(col(LogEntry.level) >= int(LogLevel.parse(req.level)))
    if req.start is not None:
        query = query.where(col(LogEntry.timestamp) >= req.start)
    if req.end is not None:
        query = query.where(col(LogEntry.timestamp) < req.end)
    return await newest_first_page(
        session, query, col(LogEntry.timestamp), col(LogEntry.id), int, req, _log_json, budget
    )
