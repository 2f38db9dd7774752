"""Helpers for ingest tests: run the service in-process, publish telemetry, read tables."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo

from ingest.app import create_app
from ingest.settings import IngestSettings
from opswire.contract.subjects import Subjects

T = TypeVar("T")


@asynccontextmanager
async def running_ingest(settings: IngestSettings) -> AsyncIterator[None]:
    app = create_app(settings)
    await app.start()
    try:
        yield
    finally:
        await app.stop()


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 10.0
) -> T:
    """Poll `probe` until `done(result)`; for state only visible in the database."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s; last: {result!r}")
        await asyncio.sleep(0.05)


def base_time() -> datetime:
    """A whole second well in the past, so sample timestamps are never 'in the future'."""
    return (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)


def sample(
    server_id: uuid.UUID,
    timestamp: datetime,
    cpu: float = 10.0,
    memory: float = 20.0,
    disks: tuple[float, ...] = (30.0,),
) -> dict[str, Any]:
    return {
        "server_id": str(server_id),
        "cpu_percent": cpu,
        "memory_percent": memory,
        "disk_usage": [
            {
                "path": f"/d{i}",
                "total": 1000,
                "used": int(p * 10),
                "free": 1000 - int(p * 10),
                "percent": p,
            }
            for i, p in enumerate(disks)
        ],
        "network": [{"interface": "eth0", "bytes_sent": 10, "bytes_recv": 20}],
        "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
        "received_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "load_average": [0.5, 0.25, 0.125],
        "vendor_extra": {"kept": [1, "two", None]},
    }


def log_line(server_id: uuid.UUID, timestamp: datetime, level: str, message: str) -> dict[str, Any]:
    return {
        "server_id": str(server_id),
        "level": level,
        "message": message,
        "timestamp": timestamp.isoformat(),
        "source": "syslog",
        "received_at": datetime.now(UTC).isoformat(),
    }


class Telemetry:
    """Publishes like the gateway does and reads the ingest tables directly."""

    def __init__(self, nc: NatsClient, subjects: Subjects, database_url: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = subjects
        self._dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def publish_sample(self, data: dict[str, Any], msg_id: str | None = None) -> None:
        await self.publish_raw(self.subjects.metrics(data["server_id"]), orjson.dumps(data), msg_id)

    async def publish_log(self, data: dict[str, Any]) -> None:
        await self.publish_raw(self.subjects.logs(data["server_id"]), orjson.dumps(data))

    async def publish_raw(self, subject: str, payload: bytes, msg_id: str | None = None) -> None:
        await self.js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id or uuid.uuid4().hex})

    async def consumer_info(self, durable: str) -> ConsumerInfo:
        stream = self.subjects.metrics_stream if "metrics" in durable else self.subjects.logs_stream
        info: ConsumerInfo = await self.js.consumer_info(stream, durable)
        return info

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self._dsn)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        finally:
            await conn.close()

    async def count(self, table: str, server_id: uuid.UUID) -> int:
        rows = await self.fetch(f"SELECT count(*) AS n FROM ingest.{table} WHERE server_id = $1", server_id)
        return int(rows[0]["n"])

    async def wait_count(self, table: str, server_id: uuid.UUID, expected: int) -> None:
        await eventually(lambda: self.count(table, server_id), lambda n: n >= expected)
        assert await self.count(table, server_id) == expected

    async def wait_evaluated(self, threshold_id: str, until: datetime) -> None:
        """Alert evaluation has seen every sample up to `until`."""

        async def probe() -> datetime | None:
            rows = await self.fetch(
                "SELECT evaluated_until FROM ingest.thresholds WHERE id = $1",
                uuid.UUID(threshold_id),
            )
            return rows[0]["evaluated_until"] if rows else None

        await eventually(probe, lambda ts: ts is not None and ts >= until)

    @asynccontextmanager
    async def alert_events(self) -> AsyncIterator[asyncio.Queue[Msg]]:
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_msg(msg: Msg) -> None:
            await queue.put(msg)

        sub = await self.nc.subscribe(self.subjects.all_alerts, cb=on_msg)
        try:
            yield queue
        finally:
            await sub.unsubscribe()


async def next_event(queue: asyncio.Queue[Msg], timeout_s: float = 5.0) -> tuple[str, dict[str, Any]]:
    msg = await asyncio.wait_for(queue.get(), timeout_s)
    return msg.subject, orjson.loads(msg.data)
